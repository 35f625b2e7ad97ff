"""A loop whose iterations do not depend on one another, run all at once (docs/design.md,
"Loops: iterations run at once").

The loop node stays what it is (one node over a body graph, printed, differentiated
and exported as a loop); this is how `dsl/loops.py` evaluates it when it can.  Many
loops written one element at a time only read the counter and values from outside
the loop, and fold the result into an accumulator:

    s = 0
    for i in range(size(x) - 1) { s = s + 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2 }

Each carried value then falls into one of three classes, read off the body once:

    keep    the body leaves it as it is (a cotangent in an adjoint loop)
    sum     c' = c + h or c - h, h not reading any carried value but kept ones
    last    c' = v, v not reading any carried value but kept ones

and each emitted value (a tape) is such a v, or a carried value itself.  The h's and
v's are then one graph over the counter, the kept values and the captured ones; it is
batched over the counter (dsl/batching.py, the rules jacobian uses), so T iterations are
one plan run over k = 0, 1, …, T-1: the sums add their rows, `last` takes the last row,
a tape is the rows, and a carried value's tape is its value before each iteration
(a running sum for `sum`).  A loop's derivatives are loops of the same kind (the
tangent of a sum is a sum; the adjoint loop keeps its cotangent and emits the rows it
scatters), so they run at once too.

Only a loop without a condition qualifies (a `for` over range(n) without `break`):
its trip count is known before it runs.  Iterations run in chunks of at most
CHUNK_ELEMENTS elements per batched intermediate, so the memory is bounded whatever
T is; a body whose intermediates are too big for MIN_CHUNK iterations at once, or
that holds an op without a batching rule, runs one iteration at a time as before.
A read x[f(k)] whose index reads only the counter and scalars (x[i], x[i+1], an
adjoint's x[T-1-j]) takes its index from a small plan of its own, run once per chunk and
values of those scalars and kept as NumPy integers: the whole-number checks of an index
are paid when it is made, not at every call.  A loop that computes nothing but its trip
count (loops.COUNT, what an adjoint reading no tape runs instead of the saving loop)
returns it at once.  Sums are then added in NumPy's pairwise order rather than one after another, which
changes the last bits of a long sum (closer to the exact sum, not further).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .autodiff import substitute
from .batching import batch_map
from .errors import BpError, BpInterrupted
from .evaluate import Plan, _fp_ignore, _fp_restore
from .graph import Node, make_input, topo_order
from .ops import apply
from .ops.gather import _whole

CHUNK_ELEMENTS = 1 << 18     # elements of one batched intermediate in one chunk (2 MB)
MIN_CHUNK = 16               # fewer iterations at once than this: not worth a batch
MIN_TRIPS = 2                # a loop of fewer iterations runs as it is
MAX_TERMS = 64               # terms of one accumulator's update, at most
PLANS_KEPT = 8               # batched plans kept per body (shapes and chunk sizes seen)


class Form:
    """What a body's carried and emitted values are (the module docstring's classes)."""

    __slots__ = ("carried", "emits", "outs", "keep", "rows", "running")

    def __init__(self, carried, emits, outs, keep):
        self.carried = carried      # per carried: ("keep",) | ("sum", [(i, ±1)]) | ("last", i)
        self.emits = emits          # per emitted value: ("map", i) | ("carried", j)
        self.outs = outs            # the nodes batched over the counter (i indexes them)
        self.keep = keep            # the positions of the kept carried values
        # what a tape needs kept whole: the outputs whose rows are a tape, and the sums
        # whose running value is (their increments)
        emitted = [carried[j] for kind, j in emits if kind == "carried"]
        self.rows = sorted({i for kind, i in emits if kind == "map"} |
                           {how[1] for how in emitted if how[0] == "last"})
        self.running = sorted({j for kind, j in emits if kind == "carried" and carried[j][0] == "sum"})


def form(body) -> Form | None:
    """The body's Form, or None when an iteration reads what an earlier one made."""
    if body.cond is not None:
        return None
    kept = [j for j, (c, nx) in enumerate(zip(body.carried, body.next)) if nx is c]
    moving = {id(c) for j, c in enumerate(body.carried) if j not in kept}
    dep = set(moving)
    for node in topo_order(body.outputs()):
        if id(node) not in dep and any(id(i) in dep for i in node.inputs):
            dep.add(id(node))
    outs: list[Node] = []

    def out(node: Node) -> int:
        outs.append(node)
        return len(outs) - 1

    carried = []
    for j, (c, nx) in enumerate(zip(body.carried, body.next)):
        if j in kept:
            carried.append(("keep",))
        elif id(nx) not in dep:
            carried.append(("last", out(nx)))
        else:
            terms = _terms(nx, c, dep)
            if terms is None:
                return None
            carried.append(("sum", [(out(t), sign) for t, sign in terms]))
    emits = []
    for e in body.emit:
        pos = next((j for j, c in enumerate(body.carried) if c is e), None)
        if pos is not None:
            emits.append(("carried", pos))
        elif id(e) not in dep:
            emits.append(("map", out(e)))
        else:
            return None
    return Form(carried, emits, outs, kept)


def _terms(nx: Node, c: Node, dep: set):
    """nx as c + Σ ± t over a tree of add and sub, each t reading no moving carried
    value, as [(t, ±1)]; None if it is not that."""
    terms, seen_c, stack = [], 0, [(nx, 1)]
    while stack:
        node, sign = stack.pop()
        if len(terms) > MAX_TERMS:
            return None
        if node is c:
            if sign < 0:
                return None
            seen_c += 1
        elif id(node) not in dep:
            terms.append((node, sign))
        elif node.op in ("add", "sub"):
            a, b = node.inputs
            stack += [(a, sign), (b, sign if node.op == "add" else -sign)]
        else:
            return None
    return terms if seen_c == 1 else None


class Batched:
    """The form's outputs as one plan over (k of shape (m,), kept…, captured…[, index…]),
    with what a run needs read off the form once (the plan is run on every call)."""

    __slots__ = ("plan", "batched", "m", "ks", "sums", "lasts", "index_plan", "index_at",
                 "indices")

    def __init__(self, plan: Plan, batched: list[bool], m: int, fm: Form,
                 index_plan: Plan | None = None, index_at: tuple = ()):
        self.plan, self.batched, self.m = plan, batched, m
        self.ks = np.arange(m, dtype=float)       # the first chunk's counter (read-only)
        self.ks.flags.writeable = False
        # per sum: (carried position, [(output, sign, batched)]); per last: (position,
        # output, batched)
        self.sums = [(j, [(i, sign, batched[i]) for i, sign in kind[1]])
                     for j, kind in enumerate(fm.carried) if kind[0] == "sum"]
        self.lasts = [(j, kind[1], batched[kind[1]])
                      for j, kind in enumerate(fm.carried) if kind[0] == "last"]
        # The indices of the body's reads x[f(k)] whose f reads only k and scalars: a plan
        # of their own, run once per chunk and values of those scalars, kept as NumPy
        # integers (the checks of a whole number paid once, not at every call).
        self.index_plan = index_plan
        self.index_at = index_at                  # the inputs (after k) the scalars are
        self.indices: dict = {}

    def index_arrays(self, ks, start: int, arrays: list) -> list:
        """The index inputs for this chunk (computed once per chunk start and scalars)."""
        key = (start, *[float(arrays[i]) for i in self.index_at])
        got = self.indices.get(key)
        if got is None:
            outs = self.index_plan.run([ks, *[arrays[i] for i in self.index_at]], False, None)
            got = [_whole(v) for v in outs]       # a fraction: a value error (the plain loop's)
            for v in got:
                v.flags.writeable = False
            if len(self.indices) >= INDICES_KEPT:
                self.indices.clear()
            self.indices[key] = got
        return got


INDICES_KEPT = 16            # index sets kept per batched plan (chunk starts and scalars)


def _batched(body, fm: Form, trips: int, arrays: list[np.ndarray], starts: tuple) -> Batched | None:
    """The batched plan for these input shapes (`starts`: the carried values' initial
    shapes), built once and kept (None is kept too)."""
    cache = body._derived.get("map")
    if cache is None:
        cache = body._derived["map"] = OrderedDict()
    shapes_key = (tuple([a.shape for a in arrays]), starts)
    last = body._derived.get("map_last")          # the last call's: no move, no search
    if last is not None and last[0] == shapes_key and last[1] == trips:
        return last[2]
    for key in ((shapes_key, trips), (shapes_key, None)):
        if key in cache:
            cache.move_to_end(key)
            hit = cache[key]
            if hit is None or key[1] is not None or hit.m < trips:
                body._derived["map_last"] = (shapes_key, trips, hit)
                return hit
    made, whole = _build(body, fm, trips, arrays, starts)
    cache[(shapes_key, trips if whole else None)] = made
    while len(cache) > PLANS_KEPT:
        cache.popitem(last=False)
    body._derived["map_last"] = (shapes_key, trips, made)
    return made


def _build(body, fm: Form, trips: int, arrays: list[np.ndarray], starts: tuple):
    """(the batched plan or None, whether it runs all `trips` iterations at once)."""
    phs = [body.carried[j] for j in fm.keep] + list(body.captured)
    k0 = make_input("k", ())
    concrete = [make_input(ph.attr("name"), a.shape) for ph, a in zip(phs, arrays)]
    mapping = {id(body.k): k0}
    mapping.update({id(ph): c for ph, c in zip(phs, concrete)})
    try:
        outs = substitute(fm.outs, mapping)
    except BpError:                 # these shapes do not fit: the plain loop says why
        return None, True
    for kind, start in zip(fm.carried, starts):
        if kind[0] == "last" and outs[kind[1]].shape != start:
            return None, True           # a carried value would change shape: the loop says so
        for i, _ in kind[1] if kind[0] == "sum" else ():
            h = outs[i].shape
            if not isinstance(h, tuple) or _broadcast(h, start) != start:
                return None, True
    biggest = 1
    on_k = {id(k0)}
    for node in topo_order(outs):
        if id(node) not in on_k and any(id(i) in on_k for i in node.inputs):
            on_k.add(id(node))
            if not isinstance(node.shape, tuple):
                return None, True
            biggest = max(biggest, math.prod(node.shape))
    per_chunk = CHUNK_ELEMENTS // biggest
    if per_chunk < min(MIN_CHUNK, trips):
        return None, True
    m = min(trips, per_chunk)
    kb = make_input("k", (m,))
    outs, index_nodes, index_inputs, index_at = _hoist_indices(outs, k0, concrete, arrays, on_k)
    index_plan = None
    repl = {id(k0): kb}
    index_b = [make_input("i", (m,) + ph.shape) for ph in index_inputs]
    repl.update({id(ph): b for ph, b in zip(index_inputs, index_b)})
    try:
        res = batch_map(outs, repl, m, broadcast=False)
        if res is not None and index_nodes:
            idx = batch_map(index_nodes, {id(k0): kb}, m)
            if idx is None:
                res = None
            else:
                index_plan = Plan([kb, *[concrete[i] for i in index_at]], idx)
    except BpError:
        return None, True
    if res is None:
        return None, True
    plan = Plan([kb, *concrete, *index_b], [node for node, _ in res])
    return Batched(plan, [b for _, b in res], m, fm, index_plan, tuple(index_at)), m == trips


def _hoist_indices(outs, k0, concrete, arrays, on_k):
    """The reads take(x, f(k)) whose index f(k) reads only k, constants and scalar inputs:
    (outs with each such read taking an index input of its own, the index nodes, those
    inputs, the positions of the scalar inputs they read).  The index nodes stay what
    they are wherever else they are read."""
    scalar = {id(c): i for i, (c, a) in enumerate(zip(concrete, arrays)) if a.shape == ()}
    ok = {id(k0)} | set(scalar)
    order = topo_order(outs)
    for node in order:
        if node.op == "const" or node.op != "input" and node.inputs and \
                all(id(i) in ok for i in node.inputs):
            ok.add(id(node))
    found: dict[int, Node] = {}
    for node in order:
        if node.op == "take" and len(node.inputs) == 2:
            idx = node.inputs[1]
            if id(idx) in on_k and id(idx) in ok and isinstance(idx.shape, tuple):
                found.setdefault(id(idx), idx)
    if not found:
        return outs, [], [], []
    index_nodes = list(found.values())
    inputs = [make_input("i", n.shape) for n in index_nodes]
    ph = {id(n): p for n, p in zip(index_nodes, inputs)}
    new: dict[int, Node] = {}
    for node in order:
        ins = [new.get(id(i), i) for i in node.inputs]
        if node.op == "take" and len(ins) == 2 and id(node.inputs[1]) in ph:
            ins[1] = ph[id(node.inputs[1])]
        if all(a is b for a, b in zip(ins, node.inputs)):
            new[id(node)] = node
        else:
            new[id(node)] = apply(node.op, ins, dict(node.attrs), node.span, node.origin)
    used = {scalar[id(node)] for node in topo_order(index_nodes) if id(node) in scalar}
    return [new[id(o)] for o in outs], index_nodes, inputs, sorted(used)


def _broadcast(a: tuple, b: tuple):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def run(body, limit: float, carried: list, captured: list, cap: int, flag, check_nan: bool):
    """The loop's results (as loops.run gives them), or None: run it one iteration at a
    time (not this kind of loop, too short, too big, over the iteration cap, or an
    error, which the plain loop then gives as it always has)."""
    derived = body._derived
    fm = derived.get("form", False)
    if fm is False:
        fm = derived["form"] = form(body)
    if fm is None or not math.isfinite(limit):
        return None
    trips = math.ceil(limit)
    if trips > cap:
        return None
    if not body.carried and not body.emit:      # loops.COUNT: only the trip count
        return (np.asarray(float(trips)),)
    if trips < MIN_TRIPS:
        return None
    asarray = np.asarray
    arrays = [asarray(carried[j]) for j in fm.keep] + [asarray(a) for a in captured]
    made = _batched(body, fm, trips, arrays, tuple([np.shape(c) for c in carried]))
    if made is None:
        return None
    m, batched = made.m, made.batched
    sums = {j: asarray(carried[j]) for j, _ in made.sums}
    last: dict[int, np.ndarray] = {}
    rows: dict[int, list] = {i: [] for i in fm.rows}      # output → its rows, chunk by chunk
    incs: dict[int, list] = {j: [] for j in fm.running}   # carried → its increments, by chunk
    index_plan = made.index_plan
    for start in range(0, trips, m):
        r = min(m, trips - start)
        ks = made.ks if start == 0 else made.ks + start
        if r < m:
            ks[r:] = trips - 1              # pad the last chunk with a valid iteration
        try:
            if index_plan is not None:
                outs = made.plan.run([ks, *arrays, *made.index_arrays(ks, start if r == m else
                                                                      (start, trips), arrays)],
                                     check_nan, flag)
            else:
                outs = made.plan.run([ks, *arrays], check_nan, flag)
        except BpInterrupted:
            raise
        except BpError:             # an index out of range, a nan (--check-nan): the plain
            return None             # loop stops at the same iteration, with its own message
        fp = _fp_ignore()           # the sums' state: the plans' own, set after they ran
        try:
            _gather(made, fm, outs, r, m, carried, rows, incs, sums, last)
        finally:
            _fp_restore(fp)
        if flag is not None and flag.is_set():
            flag.clear()
            raise BpInterrupted("the statement was interrupted", None)
    finals = []
    for j, kind in enumerate(fm.carried):
        finals.append(asarray(carried[j]) if kind[0] == "keep" else
                      asarray(sums[j]) if kind[0] == "sum" else asarray(last[j]))
    if not fm.emits:
        finals.append(asarray(float(trips)))
        return tuple(finals)
    tapes = []
    for kind in fm.emits:
        if kind[0] == "map":
            tapes.append(_cat(rows[kind[1]]))
            continue
        j = kind[1]
        c0 = asarray(carried[j])
        how = fm.carried[j]
        if how[0] == "keep":
            tapes.append(np.broadcast_to(c0, (trips,) + c0.shape).copy())
        elif how[0] == "last":               # the value before iteration k: c0, v_0, …, v_{T-2}
            hs = _cat(rows[how[1]])
            tapes.append(np.concatenate([c0[None], hs[:-1].reshape((trips - 1,) + c0.shape)]))
        else:                                # c0, then the running sum before each iteration
            fp = _fp_ignore()
            try:
                running = np.cumsum(_cat(incs[j])[:-1], axis=0)
                tapes.append(np.concatenate([c0[None], c0 + running]))
            finally:
                _fp_restore(fp)
    return (*finals, *tapes, asarray(float(trips)))


def _gather(made, fm, outs, r, m, carried, rows, incs, sums, last) -> None:
    """One chunk's outputs into the rows, increments, sums and last values."""
    batched = made.batched
    for i, got in rows.items():
        got.append(_rows(outs[i], batched[i], r))
    for j, terms in made.sums:
        if j in incs:                   # its tape is read: keep every increment
            inc = 0.0
            for i, sign, _ in terms:
                h = _rows(outs[i], batched[i], r)
                inc = inc + h if sign > 0 else inc - h
            inc = np.broadcast_to(inc, (r,) + np.shape(carried[j]))
            incs[j].append(inc)
            sums[j] = sums[j] + inc.sum(axis=0)
            continue
        for i, sign, b in terms:
            h = outs[i]
            step = (h[:r] if r < m else h).sum(axis=0) if b else r * h
            sums[j] = sums[j] + step if sign > 0 else sums[j] - step
    for j, i, b in made.lasts:
        h = outs[i]
        last[j] = h[r - 1] if b else h


def _rows(h: np.ndarray, batched: bool, r: int) -> np.ndarray:
    """The first r rows of a batched output, or an unbatched one repeated r times."""
    if batched:
        return h if r == h.shape[0] else h[:r]
    return np.broadcast_to(h, (r,) + np.shape(h))


def _cat(chunks: list) -> np.ndarray:
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
