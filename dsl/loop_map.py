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
Sums are then added in NumPy's pairwise order rather than one after another, which
changes the last bits of a long sum (closer to the exact sum, not further).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .autodiff import substitute
from .batching import batch_map
from .errors import BpError, BpInterrupted
from .evaluate import Plan
from .graph import Node, make_input, topo_order

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
    """The form's outputs as one plan over (k of shape (m,), kept…, captured…)."""

    __slots__ = ("plan", "batched", "m", "ks")

    def __init__(self, plan: Plan, batched: list[bool], m: int):
        self.plan, self.batched, self.m = plan, batched, m
        self.ks = np.arange(m, dtype=float)       # the first chunk's counter (read-only)
        self.ks.flags.writeable = False


def _batched(body, fm: Form, trips: int, arrays: list[np.ndarray], starts: tuple) -> Batched | None:
    """The batched plan for these input shapes (`starts`: the carried values' initial
    shapes), built once and kept (None is kept too)."""
    cache = body._derived.setdefault("map", OrderedDict())
    shapes_key = (tuple(a.shape for a in arrays), starts)
    for key in ((shapes_key, trips), (shapes_key, None)):
        if key in cache:
            cache.move_to_end(key)
            hit = cache[key]
            if hit is None or key[1] is not None or hit.m < trips:
                return hit
    made, whole = _build(body, fm, trips, arrays, starts)
    cache[(shapes_key, trips if whole else None)] = made
    while len(cache) > PLANS_KEPT:
        cache.popitem(last=False)
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
    try:
        res = batch_map(outs, {id(k0): kb}, m, broadcast=False)
    except BpError:
        return None, True
    if res is None:
        return None, True
    plan = Plan([kb, *concrete], [node for node, _ in res])
    return Batched(plan, [b for _, b in res], m), m == trips


def _broadcast(a: tuple, b: tuple):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def run(body, limit: float, carried: list, captured: list, cap: int, flag, check_nan: bool):
    """The loop's results (as loops.run gives them), or None: run it one iteration at a
    time (not this kind of loop, too short, too big, over the iteration cap, or an
    error, which the plain loop then gives as it always has)."""
    fm = body._derived.get("form", False)
    if fm is False:
        fm = body._derived["form"] = form(body)
    if fm is None or not math.isfinite(limit):
        return None
    trips = math.ceil(limit)
    if trips < MIN_TRIPS or trips > cap:
        return None
    arrays = [np.asarray(carried[j]) for j in fm.keep] + [np.asarray(a) for a in captured]
    made = _batched(body, fm, trips, arrays, tuple(np.shape(c) for c in carried))
    if made is None:
        return None
    m, batched = made.m, made.batched
    sums = {j: np.asarray(carried[j]) for j, kind in enumerate(fm.carried) if kind[0] == "sum"}
    last: dict[int, np.ndarray] = {}
    rows: dict[int, list] = {i: [] for i in fm.rows}      # output → its rows, chunk by chunk
    incs: dict[int, list] = {j: [] for j in fm.running}   # carried → its increments, by chunk
    for start in range(0, trips, m):
        r = min(m, trips - start)
        ks = made.ks if start == 0 else made.ks + start
        if r < m:
            ks[r:] = trips - 1              # pad the last chunk with a valid iteration
        try:
            outs = made.plan.run([ks, *arrays], check_nan, flag)
        except BpInterrupted:
            raise
        except BpError:             # an index out of range, a nan (--check-nan): the plain
            return None             # loop stops at the same iteration, with its own message
        for i, got in rows.items():
            got.append(_rows(outs[i], batched[i], r))
        for j, kind in enumerate(fm.carried):
            if kind[0] == "sum":
                if j in incs:               # its tape is read: keep every increment
                    inc = 0.0
                    for i, sign in kind[1]:
                        h = _rows(outs[i], batched[i], r)
                        inc = inc + h if sign > 0 else inc - h
                    inc = np.broadcast_to(inc, (r,) + np.shape(carried[j]))
                    incs[j].append(inc)
                    sums[j] = sums[j] + inc.sum(axis=0)
                    continue
                for i, sign in kind[1]:
                    h = outs[i]
                    step = (h[:r] if r < m else h).sum(axis=0) if batched[i] else r * h
                    sums[j] = sums[j] + step if sign > 0 else sums[j] - step
            elif kind[0] == "last":
                h = outs[kind[1]]
                last[j] = h[r - 1] if batched[kind[1]] else h
        if flag is not None and flag.is_set():
            flag.clear()
            raise BpInterrupted("the statement was interrupted", None)
    finals = []
    for j, kind in enumerate(fm.carried):
        finals.append(np.asarray(carried[j]) if kind[0] == "keep" else
                      np.asarray(sums[j]) if kind[0] == "sum" else np.asarray(last[j]))
    tapes = []
    for kind in fm.emits:
        if kind[0] == "map":
            tapes.append(_cat(rows[kind[1]]))
            continue
        j = kind[1]
        c0 = np.asarray(carried[j])
        how = fm.carried[j]
        if how[0] == "keep":
            tapes.append(np.broadcast_to(c0, (trips,) + c0.shape).copy())
        elif how[0] == "last":               # the value before iteration k: c0, v_0, …, v_{T-2}
            hs = _cat(rows[how[1]])
            tapes.append(np.concatenate([c0[None], hs[:-1].reshape((trips - 1,) + c0.shape)]))
        else:                                # c0, then the running sum before each iteration
            running = np.cumsum(_cat(incs[j])[:-1], axis=0)
            tapes.append(np.concatenate([c0[None], c0 + running]))
    return (*finals, *tapes, np.asarray(float(trips)))


def _rows(h: np.ndarray, batched: bool, r: int) -> np.ndarray:
    """The first r rows of a batched output, or an unbatched one repeated r times."""
    if batched:
        return h if r == h.shape[0] else h[:r]
    return np.broadcast_to(h, (r,) + np.shape(h))


def _cat(chunks: list) -> np.ndarray:
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
