"""Structured loops: one graph node per loop, owning a body graph (docs/design.md, "Loops").

A loop is the op `loop`.  Its inputs are the trip count n (a scalar; inf for a
`while`), the initial carried values and the captured values (the body's free
variables: parameters, globals, anything computed outside the loop); its
attributes are the `Body` and `part`, which of the loop's results the node is.
Every result of one loop is its own node (`loop(…, part=j)`, as the parts of a
decomposition are), with the same inputs and body, so each is an ordinary
tensor to autodiff, batching and printing; a plan runs the loop once for all
of its parts (dsl/evaluate.py).  The results, in order:

  parts 0 … P-1         the carried values after the last iteration
  parts P … P+R-1       the values the body emits each iteration, stacked
                        (scan's ys: a tape of shape (T,) + shape, T unknown
                        until it runs, so its shape is symbolic)
  part  P+R             T, the number of iterations run

A `Body` is a closed graph over its own placeholders (input nodes): the
iteration index k (0, 1, …), the carried values c and the captured values x;
its outputs are the next carried values, the emitted values and an optional
condition, read before each iteration (the loop stops at the first 0).  The
body is built once per loop, not per iteration, and evaluated by a compiled
`Plan` of it; a nested loop is a loop node inside a body, so no walk recurses.

Derivatives are loops too (`_jvp`, `_vjp`, registered on the op like every
rule): forward mode carries tangents beside the values; reverse mode runs the
loop again emitting each iterate (a tape) and then an adjoint loop from the
last iteration back, reading the tape with `loop_read`.  Both hold the number
of iterations fixed: the condition and n get no derivative.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from . import loop_map, ops, shapes
from .autodiff import jvp_graph, substitute, vjp_graph
from .errors import BpInterrupted, BpShapeError, BpValueError, Span
from .evaluate import Plan
from .graph import Node, make_input, topo_order
from .ops import ACTIVE, OpDef, apply, building, const, limit_error, register

_ids = itertools.count(1)


class Body:
    """A loop's body: placeholders k, carried, captured; outputs next, emit, cond."""

    __slots__ = ("k", "carried", "captured", "next", "emit", "cond", "uid", "names",
                 "_plans", "_derived", "__weakref__")

    def __init__(self, k: Node, carried, captured, next, emit=(), cond: Node | None = None,
                 names: tuple = ()):
        self.k = k
        self.carried = tuple(carried)
        self.captured = tuple(captured)
        self.next = tuple(next)
        self.emit = tuple(emit)
        self.cond = cond
        self.uid = next_uid()
        self.names = tuple(names)         # the carried values' names in the source, if any
        self._plans = None
        self._derived: dict = {}

    @property
    def inputs(self) -> list[Node]:
        return [self.k, *self.carried, *self.captured]

    @property
    def n_parts(self) -> int:
        return len(self.carried) + len(self.emit) + 1

    def outputs(self) -> list[Node]:
        """Every node the body computes from its placeholders (for walks)."""
        return [*self.next, *self.emit] + ([self.cond] if self.cond is not None else [])

    def plans(self):
        """(step, first condition or None): `step` maps (k, c…, x…) to (c'…, y…[, cond at
        k+1 and c']), so one plan run per iteration also decides the next."""
        if self._plans is None:
            step_outputs = [*self.next, *self.emit]
            first = None
            if self.cond is not None:
                mapping = {id(self.k): apply("add", [self.k, const(1.0)])}
                mapping.update({id(c): n for c, n in zip(self.carried, self.next)})
                step_outputs.append(substitute([self.cond], mapping)[0])
                first = Plan(self.inputs, [self.cond])
            self._plans = (Plan(self.inputs, step_outputs), first)
        return self._plans

    def __repr__(self) -> str:
        return f"<loop body {self.uid}>"


def next_uid() -> int:
    return next(_ids)


# A loop that computes nothing: its one part is the number of iterations of a loop of n
# without a condition (what a reverse-mode adjoint needs when it reads no tape).
COUNT = Body(make_input("k", ()), (), (), ())


# ── parts ────────────────────────────────────────────────────────────────

def trip_part(body: Body) -> int:
    return len(body.carried) + len(body.emit)


def part(loop_inputs: list[Node], body: Body, j: int, span: Span | None = None) -> Node:
    return apply("loop", loop_inputs, {"body": body, "part": j}, span)


def parts(loop_inputs: list[Node], body: Body, span: Span | None = None) -> list[Node]:
    if all(i.op == "const" for i in loop_inputs):       # folds: run it once, not per part
        return [const(v, span) for v in run(*[i.value for i in loop_inputs], body=body, span=span)]
    return [part(loop_inputs, body, j, span) for j in range(body.n_parts)]


def _shape(shs, attrs, span):
    body: Body = attrs["body"]
    j = attrs["part"]
    p, r = len(body.carried), len(body.emit)
    if len(shs) != 1 + p + len(body.captured):
        raise BpValueError("a loop node's inputs do not match its body", span)
    n = shs[0]
    if isinstance(n, tuple) and n != ():
        raise BpShapeError(f"a loop's trip count must be a scalar, got shape {shapes.fmt(n)}", span)
    if j < p:
        init, ph = shs[1 + j], body.carried[j].shape
        if isinstance(init, tuple) and isinstance(ph, tuple) and init != ph:
            raise BpShapeError(f"the loop's carried value {_name(body, j)} starts with shape "
                               f"{shapes.fmt(init)} but the body is built for {shapes.fmt(ph)}", span)
        return ph
    if j < p + r:
        return shapes.SymShape()
    return ()


def _name(body: Body, j: int) -> str:
    return f"'{body.names[j]}'" if j < len(body.names) and body.names[j] else f"#{j}"


def check_carried_shapes(body: Body, span: Span | None) -> None:
    """A carried value keeps its shape from one iteration to the next."""
    for j, (c, n) in enumerate(zip(body.carried, body.next)):
        if isinstance(c.shape, tuple) and isinstance(n.shape, tuple) and c.shape != n.shape:
            raise BpShapeError(f"the loop changes the shape of {_name(body, j)} from "
                               f"{shapes.fmt(c.shape)} to {shapes.fmt(n.shape)}; a value carried "
                               f"from one iteration to the next must keep its shape", span)


# ── evaluation ───────────────────────────────────────────────────────────

def run(n, *arrays, body: Body, span: Span | None = None) -> tuple:
    """Every result of the loop, as a tuple (what a plan's loop step computes)."""
    p, q = len(body.carried), len(body.captured)
    carried = list(arrays[:p])
    captured = list(arrays[p:p + q])
    limit = float(n)
    if not limit >= 0:                       # nan, or negative: no iterations
        limit = 0.0
    active = ACTIVE
    cap = active.limits.max_iterations
    flag = active.interrupt
    check_nan = active.limits.check_nan
    if body.cond is None and limit > 0:
        at_once = loop_map.run(body, limit, carried, captured, cap, flag, check_nan)
        if at_once is not None:
            return at_once
    step, first = body.plans()
    r = len(body.emit)
    tapes: list = [None] * r              # each a buffer that doubles as rows come in
    go = True
    if first is not None and limit > 0:
        go = bool(first.run([np.asarray(0.0), *carried, *captured], check_nan, flag)[0] != 0)
    if go and limit > 0:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _iterate(body, step, limit, carried, captured, tapes, cap, flag, check_nan, span)
    return _results(body, carried, tapes, 0)


def _iterate(body, step, limit, carried, captured, tapes, cap, flag, check_nan, span):
    p, r = len(body.carried), len(body.emit)
    run_step = step.stepper(check_nan, flag)
    asarray = np.asarray
    k = 0
    go = True
    while go and k < limit:
        if k >= cap:
            raise limit_error("this loop ran too many iterations" if body.cond is None else
                              "this while loop's condition was still true after the iteration cap",
                              "max_iterations", cap, span)
        out = run_step([asarray(float(k)), *carried, *captured])
        for i in range(r):
            row, tape = out[p + i], tapes[i]
            if tape is None or tape.shape[1:] != row.shape:
                if tape is not None:
                    raise BpValueError("a loop emitted values of different shapes", span)
                tape = tapes[i] = np.empty((16,) + row.shape)
            elif k == tape.shape[0]:
                tape = tapes[i] = np.concatenate([tape, np.empty_like(tape)])
            tape[k] = row
        carried = out[:p]
        k += 1
        if body.cond is not None:
            go = bool(out[p + r] != 0)
        if flag is not None and flag.is_set():
            flag.clear()
            raise BpInterrupted("the statement was interrupted", span)
    return _results(body, carried, tapes, k)


def _results(body, carried, tapes, k):
    for i, tape in enumerate(tapes):
        if tape is None:
            sh = body.emit[i].shape
            tapes[i] = np.zeros((0,) + (sh if isinstance(sh, tuple) else ()))
        else:
            tapes[i] = tape[:k].copy() if 2 * k < tape.shape[0] else tape[:k]
    return (*carried, *tapes, np.asarray(float(k)))


def _kernel(n, *arrays, body, part):
    """One part, running the whole loop (constant folding; a plan shares one run)."""
    return run(n, *arrays, body=body)[part]


_kernel.run = run                    # what dsl/evaluate.py's loop step calls


def runs_at_once(loop_parts: list[Node]) -> bool:
    """Whether the loop of these parts runs its iterations at once (dsl/loop_map.py): a
    body of one of loop_map's forms whose every op on the counter's and the carried
    values' path has a batching rule and known shapes (or a loop that folded)."""
    node = loop_parts[0]
    if node.op != "loop":
        return all(p.op == "const" for p in loop_parts)
    body: Body = node.attr("body")
    fm = body._derived.get("form", False)
    if fm is False:
        fm = body._derived["form"] = loop_map.form(body)
    if fm is None:
        return False
    from .batching import has_rule
    dep = {id(body.k)} | {id(c) for c in body.carried}
    for nd in topo_order(body.outputs()):
        if id(nd) not in dep and any(id(i) in dep for i in nd.inputs):
            dep.add(id(nd))
            if not isinstance(nd.shape, tuple) or not has_rule(nd.op):
                return False
    return True


# ── building a loop from nodes over placeholders and outer nodes ─────────

def make_loop(n: Node, init: list[Node], k: Node, carried: list[Node], next: list[Node],
              emit: list[Node] = (), cond: Node | None = None, names: tuple = (),
              span: Span | None = None) -> list[Node]:
    """The loop's parts, from a body built over the placeholders k and `carried` that may
    also read any outer node: each outer node the body reads (that is not a constant)
    becomes a captured input, read through a placeholder of its own."""
    outs = [*next, *emit] + ([cond] if cond is not None else [])
    order = topo_order(outs)
    dep = {id(k)} | {id(c) for c in carried}
    for node in order:
        if id(node) not in dep and any(id(i) in dep for i in node.inputs):
            dep.add(id(node))
    free: dict[int, Node] = {}
    for node in order:
        if id(node) in dep:
            for i in node.inputs:
                if id(i) not in dep and i.op != "const":
                    free.setdefault(id(i), i)
    for o in outs:
        if id(o) not in dep and o.op != "const":
            free.setdefault(id(o), o)
    outer = list(free.values())
    captured = [make_input(_capture_name(x), x.shape, x.span) for x in outer]
    mapping = {id(x): ph for x, ph in zip(outer, captured)}
    new = substitute(outs, mapping)
    p = len(next)
    body = Body(k, carried, captured, new[:p], new[p:p + len(emit)],
                new[-1] if cond is not None else None, names)
    check_carried_shapes(body, span)
    return parts([n, *init, *outer], body, span)


def _capture_name(x: Node) -> str:
    return x.attr("name") if x.op == "input" else "x"


def placeholders(shapes_: list, names: list[str] | None = None, span=None) -> list[Node]:
    names = names or ["c"] * len(shapes_)
    return [make_input(nm, sh, span) for nm, sh in zip(names, shapes_)]


def counter(span=None) -> Node:
    return make_input("k", (), span)


# ── derivatives ──────────────────────────────────────────────────────────

def _split(node: Node):
    body: Body = node.attr("body")
    p, q = len(body.carried), len(body.captured)
    ins = node.inputs
    return body, ins[0], list(ins[1:1 + p]), list(ins[1 + p:1 + p + q])


def _jvp(tangents, out, inputs, attrs):
    """Forward mode: a loop carrying (c, ċ), capturing (x, ẋ); the same trip count."""
    body, n, init, cap = _split(out)
    j = attrs["part"]
    p, r = len(body.carried), len(body.emit)
    if j == p + r:
        return None
    t_init = list(tangents[1:1 + p])
    t_cap = list(tangents[1 + p:])
    mask = tuple(t is not None for t in t_cap)
    key = ("jvp", mask)
    tbody = body._derived.get(key)
    if tbody is None:
        ct = [make_input("∂" + (body.names[i] if i < len(body.names) and body.names[i] else "c"),
                         c.shape, c.span) for i, c in enumerate(body.carried)]
        xt = [make_input("∂x", x.shape, x.span) for x, m in zip(body.captured, mask) if m]
        wrt = list(body.carried) + [x for x, m in zip(body.captured, mask) if m]
        outs = [*body.next, *body.emit]
        tans = jvp_graph(outs, wrt, ct + xt)
        tbody = Body(body.k, [*body.carried, *ct], [*body.captured, *xt],
                     [*body.next, *tans[:p]], [*body.emit, *tans[p:]], body.cond,
                     body.names + tuple("∂" + nm for nm in body.names))
        body._derived[key] = tbody
    t0 = [t if t is not None else ops.zeros(c.shape, c) for t, c in zip(t_init, init)]
    loop_in = [n, *init, *t0, *cap, *[t for t in t_cap if t is not None]]
    if j < p:
        return part(loop_in, tbody, p + j)
    return part(loop_in, tbody, 2 * p + r + (j - p))


def _vjp(ct, out, inputs, attrs):
    """Reverse mode: the loop again, emitting every state it starts an iteration with
    (the tape), then an adjoint loop over k = T-1, …, 0 reading it."""
    body, n, init, cap = _split(out)
    j = attrs["part"]
    p, q, r = len(body.carried), len(body.captured), len(body.emit)
    none = (None,) * len(inputs)
    if j == p + r:
        return none
    emitted = j >= p
    # A graph built to be run (ops.built_to_run) leaves out the tapes the adjoint does not
    # read (an accumulator's, whose cotangent is the same at every iteration), and when
    # it reads none, counts the iterations with a loop that computes nothing (COUNT):
    # the forward iterations are then not run at all.  A graph to be printed keeps the
    # saving loop as it always was.
    lean = bool(ACTIVE.to_run)
    key = ("vjp", j if emitted else None) + (("lean",) if lean else ())
    made = body._derived.get(key)
    if made is None:
        made = body._derived[key] = _adjoint_body(body, j - p if emitted else None, lean)
    abody, layout, read = made
    s_in = [n, *init, *cap]
    if read or body.cond is not None:
        sbody = body._derived.get("save")
        if sbody is None:
            sbody = Body(body.k, body.carried, body.captured, body.next, body.carried, body.cond,
                         body.names)
            body._derived["save"] = sbody
        tapes = [part(s_in, sbody, p + i) for i in read]
        trips = part(s_in, sbody, 2 * p)
    else:
        tapes, trips = [], part([n], COUNT, 0)
    zero_c = [ops.zeros(c.shape, c) for c in init]
    a_init = [ct if (not emitted and i == j) else zero_c[i] for i in range(p)]
    a_init += [ops.zeros(x.shape, x) for x, how in zip(cap, layout) if how[0] == "dense"]
    a_cap = [*tapes, *cap, trips] + ([ct] if emitted else [])
    loop_in = [trips, *a_init, *a_cap]
    cts = [part(loop_in, abody, i) for i in range(p)]
    n_carried = len(abody.carried)
    for x, how in zip(cap, layout):
        if how[0] == "dense":
            cts.append(part(loop_in, abody, how[1]))
            continue
        total = None                  # the rows read: one scatter of all of them, after
        for e_idx, e_val in how[1]:
            idx = part(loop_in, abody, n_carried + e_idx)
            val = part(loop_in, abody, n_carried + e_val)
            g = apply("scatter_add", [ops.zeros(x.shape, x), idx, val], {"axis": 0})
            total = g if total is None else apply("add", [total, g])
        cts.append(total)
    return (None, *cts)


def _scatter_terms(g: Node, x: Node):
    """g as a sum of scatter_add(0 like x, idx, v, axis=0) (and loop_write(v, x, k), a
    tape's row), as [(idx, v)], or None.
    That is the cotangent of x read at a runtime index (x[i], take): a loop's adjoint
    then emits (idx, v) each iteration and scatters them all once after the loop,
    instead of adding a tensor of x's size every iteration (O(T·size(x)))."""
    if x.shape == ():
        return None
    terms, stack = [], [g]
    while stack:
        t = stack.pop()
        if t.op == "add" and t.inputs[0].shape == t.shape == t.inputs[1].shape:
            stack.extend(t.inputs)
            continue
        if t.op == "loop_write" and t.inputs[1] is x:    # a tape's row k (reverse over reverse)
            terms.append((t.inputs[2], t.inputs[0]))
            continue
        if t.op != "scatter_add" or not isinstance(x.shape, tuple) \
                or t.attr("axis", 0) % len(x.shape) != 0:
            return None
        base, idx, v = t.inputs
        if not (base.op == "zeros_like" and base.inputs[0] is x or
                base.op == "const" and base.shape == x.shape and not base.value.any()):
            return None
        if not (isinstance(idx.shape, tuple) and isinstance(v.shape, tuple)):
            return None
        target = idx.shape + x.shape[1:]
        if v.shape != target:
            v = apply("broadcast_to", [v], {"shape": target})
        terms.append((idx, v))
    return terms


def _adjoint_body(body: Body, emitted: int | None, lean: bool = False):
    """The adjoint of one iteration: carried (ĉ…, x̄ of the dense captured values…),
    captured (tape…, x…, T[, ȳ tape]), emitting (idx, v) for each read of a captured value
    at a runtime index (_scatter_terms).  Returns the body and, per captured value,
    ("dense", its carried position) or ("sparse", [(idx, v) emitted positions])."""
    p = len(body.carried)
    jj = counter()
    c_bar = [make_input("ĉ", c.shape, c.span) for c in body.carried]
    tape_ph = [make_input("τ", shapes.SymShape(), c.span) for c in body.carried]
    trips = make_input("T", ())
    y_tape = make_input("ȳ", shapes.SymShape()) if emitted is not None else None
    carried, nxt, emits, layout = list(c_bar), [], [], []
    with building("d", None):
        kk = apply("sub", [apply("sub", [trips, const(1.0)]), jj])
        reads = [apply("loop_read", [t, kk], {"shape": c.shape}) for t, c in zip(tape_ph, body.carried)]
        outs = list(body.next)
        cts = list(c_bar)
        if emitted is not None:
            y = body.emit[emitted]
            outs.append(y)
            cts.append(apply("loop_read", [y_tape, kk], {"shape": y.shape}))
        grads = vjp_graph(outs, cts, list(body.carried) + list(body.captured))
        mapping = {id(body.k): kk}
        mapping.update({id(c): rd for c, rd in zip(body.carried, reads)})
        grads = substitute(grads, mapping)
        nxt = grads[:p]
        for x, g in zip(body.captured, grads[p:]):
            terms = _scatter_terms(g, x)
            if terms is not None:
                where = []
                for idx, v in terms:
                    where.append((len(emits), len(emits) + 1))
                    emits += [idx, v]
                layout.append(("sparse", where))
                continue
            xb = make_input("x̄", x.shape, x.span)
            layout.append(("dense", len(carried)))
            carried.append(xb)
            nxt.append(apply("add", [xb, g]))
    read = list(range(p))
    if lean:                        # only the tapes the adjoint reads
        seen = {id(nd) for nd in topo_order([*nxt, *emits])}
        read = [i for i, t in enumerate(tape_ph) if id(t) in seen]
    captured = [*[tape_ph[i] for i in read], *body.captured, trips] + \
        ([y_tape] if y_tape is not None else [])
    return Body(jj, carried, captured, nxt, emits, None,
                tuple("∂" + nm for nm in body.names)), layout, read


def _needed_carried(body: Body, j: int) -> list[int]:
    """The carried values part j reads: j itself (if carried), everything the emitted
    values and the condition read, and what those read in turn (a fixed point)."""
    p = len(body.carried)
    pos = {id(c): i for i, c in enumerate(body.carried)}
    reads = []
    for nx in body.next:
        reads.append({pos[id(nd)] for nd in topo_order([nx]) if id(nd) in pos})
    always = set()
    for o in list(body.emit) + ([body.cond] if body.cond is not None else []):
        always |= {pos[id(nd)] for nd in topo_order([o]) if id(nd) in pos}
    keep = always | ({j} if j < p else set())
    todo = list(keep)
    while todo:
        i = todo.pop()
        for r in reads[i] - keep:
            keep.add(r)
            todo.append(r)
    return sorted(keep)


def pruned(node: Node) -> Node:
    """The part as a loop that carries only what it needs (dead carried values, such as
    the cotangents of captured values nobody asked for, dropped), or the node itself."""
    body, n, init, cap = _split(node)
    j = node.attr("part")
    p = len(body.carried)
    keep = _needed_carried(body, j)
    if len(keep) == p:
        return node
    key = ("prune", tuple(keep))
    pb = body._derived.get(key)
    if pb is None:
        pb = Body(body.k, [body.carried[i] for i in keep], body.captured,
                  [body.next[i] for i in keep], body.emit, body.cond,
                  tuple(body.names[i] if i < len(body.names) else "" for i in keep))
        body._derived[key] = pb
    new_j = keep.index(j) if j < p else j - p + len(keep)
    return part([n, *[init[i] for i in keep], *cap], pb, new_j, node.span)


def _batch(node, ins, m):
    """The loop with a leading batch axis on what depends on the batched inputs (a
    Jacobian's seed): the body batched as a graph.  The condition and the trip count
    must not depend on the batch (each lane would stop at its own iteration), nor may
    an emitted tape: then no rule (the Jacobian takes one derivative per direction)."""
    small = pruned(node)
    if small is not node:                 # batch only the carried values this part reads
        body0, p0 = node.attr("body"), len(node.attr("body").carried)
        keep = _needed_carried(body0, node.attr("part"))
        sub_ins = [ins[0]] + [ins[1 + i] for i in keep] + list(ins[1 + p0:])
        return _batch(small, sub_ins, m)
    body, n, init, cap = _split(node)
    p, q, r = len(body.carried), len(body.captured), len(body.emit)
    if ins[0][1]:
        return None
    cap_b = [b for _, b in ins[1 + p:]]
    car_b = [b for _, b in ins[1:1 + p]]
    # which carried values become batched: a fixed point over the body's dependences
    while True:
        seeds = {id(c) for c, b in zip(body.carried, car_b) if b} | \
            {id(x) for x, b in zip(body.captured, cap_b) if b}
        dep = set(seeds)
        for nd in topo_order(body.outputs()):
            if id(nd) not in dep and any(id(i) in dep for i in nd.inputs):
                dep.add(id(nd))
        grown = [b or id(nx) in dep for b, nx in zip(car_b, body.next)]
        if grown == car_b:
            break
        car_b = grown
    if body.cond is not None and id(body.cond) in dep or any(id(y) in dep for y in body.emit):
        return None
    if not all(isinstance(ph.shape, tuple) for ph, b in zip(body.carried + body.captured,
                                                             car_b + cap_b) if b):
        return None
    key = ("batch", m, tuple(car_b), tuple(cap_b))
    bbody = body._derived.get(key)
    if bbody is None:
        from .batching import batch_map
        repl = {}
        carried = []
        for c, b in zip(body.carried, car_b):
            c2 = make_input(c.attr("name"), (m,) + c.shape, c.span) if b else c
            repl.update({id(c): c2} if b else {})
            carried.append(c2)
        captured = []
        for x, b in zip(body.captured, cap_b):
            x2 = make_input(x.attr("name"), (m,) + x.shape, x.span) if b else x
            repl.update({id(x): x2} if b else {})
            captured.append(x2)
        outs = batch_map(list(body.next), repl, m, broadcast=False)
        if outs is None:
            return None
        nxt = []
        for (nx, b), want in zip(outs, car_b):
            nxt.append(nx if b or not want else apply("broadcast_to", [nx], {"shape": (m,) + nx.shape}))
        cond = None
        if body.cond is not None:
            cond = body.cond
        bbody = Body(body.k, carried, captured, nxt, body.emit, cond, body.names)
        body._derived[key] = bbody
    new_init = []
    for (x, b), want, c in zip(ins[1:1 + p], car_b, body.carried):
        new_init.append(x if b or not want else apply("broadcast_to", [x], {"shape": (m,) + c.shape}))
    loop_in = [n, *new_init, *[x for x, _ in ins[1 + p:]]]
    j = node.attr("part")
    out = part(loop_in, bbody, j)
    return (out, j < p and car_b[j])


_batch.symbolic_ok = True      # unbatched tapes (of unknown length) may be captured


def _bp_loop(body, cond, n, carried, captured, r, cap):
    """A loop of an exported module: body(k, *carried, *captured) gives the next carried
    values and the emitted ones; cond (or None) is read before each iteration."""
    carried, k, emitted = list(carried), 0, [[] for _ in range(r)]
    n = float(n)
    while k < n and (cond is None or cond(np.float64(k), *carried, *captured) != 0):
        if k >= cap:
            raise ValueError(f"a loop ran more than {cap} iterations")
        out = body(np.float64(k), *carried, *captured)
        carried = list(out[:len(carried)])
        for rows, y in zip(emitted, out[len(carried):]):
            rows.append(y)
        k += 1
    tapes = [np.stack(rows) if rows else np.zeros((0,)) for rows in emitted]
    return (*carried, *tapes, np.float64(k))


# The loop's JAX form (`export … as jax`, the JAX engine): the module's loop helper
# as jax.lax.while_loop, text of the JAX module's preamble (it reads jax and jnp).
_JAX_LOOP = '''
def _bp_loop(body, cond, n, carried, captured, r, cap, rows):
    """A loop as jax.lax.while_loop: body(k, *carried, *captured) gives the next carried
    values and the emitted ones, each written into row k of a tape of `rows` rows (a
    bound on the trip count, known when the module was written).  A loop still going
    after `cap` iterations stops there with nan for its carried values (jit cannot raise)."""
    carried = tuple(jnp.asarray(c, dtype=jnp.float64) for c in carried)
    n = jnp.asarray(n, dtype=jnp.float64)
    k0 = jnp.float64(0.0)
    if r:
        shapes = jax.eval_shape(lambda: body(k0, *carried, *captured))[len(carried):]
        tapes = tuple(jnp.zeros((rows,) + s.shape) for s in shapes)
    else:
        tapes = ()

    def going(state):
        k, cs, ts = state
        more = (k < n) & (k < cap)
        if cond is None:
            return more
        return more & (cond(k, *cs, *captured) != 0)

    def step(state):
        k, cs, ts = state
        out = body(k, *cs, *captured)
        ts = tuple(t.at[k.astype(jnp.int64)].set(y) for t, y in zip(ts, out[len(cs):]))
        return k + 1.0, tuple(jnp.asarray(c, dtype=jnp.float64) for c in out[:len(cs)]), ts
    k, carried, tapes = jax.lax.while_loop(going, step, (k0, carried, tapes))
    capped = (k >= cap) & (k < n)
    if cond is not None:
        capped = capped & (cond(k, *carried, *captured) != 0)
    carried = tuple(jnp.where(capped, jnp.nan, c) for c in carried)
    return (*carried, *tapes, k)
'''


def _export(args, attrs):
    raise NotImplementedError("dsl/codegen.py writes a loop as a call of a function per body")


register(OpDef(name="loop", kernel=_kernel, shape=_shape, params=("n",), variadic=True,
               attrs=(), builtin=False, vjp=_vjp, jvp=_jvp,
               batch=_batch,
               export=_export, helpers=(_bp_loop,),
               jax=ops.Jax(_export, helpers=(_JAX_LOOP,)),
               doc="a structured loop: one of the results of running its body graph"))


# ── reading the tape ────────────────────────────────────────────────────

def _read_shape(shs, attrs, span):
    return attrs["shape"]


def _read(tape, k, shape):
    i = int(k)
    if tape.ndim == 0 or not 0 <= i < tape.shape[0]:
        raise BpValueError(f"loop_read: row {i} of a tape of {tape.shape[0] if tape.ndim else 0}")
    return tape[i]


_read.bp_quiet = True                # a row of the tape: nothing to warn about (dsl/evaluate.py)


def _loop_write(g, tape, k):
    out = np.zeros(tape.shape)
    out[int(k)] = g
    return out


def _write_shape(shs, attrs, span):
    return shs[1]


register(OpDef(name="loop_read", kernel=_read, shape=_read_shape, params=("tape", "k"),
               attrs=(ops.Attr("shape", "shape", required=True),), builtin=False,
               vjp=lambda ct, out, ins, a: (apply("loop_write", [ct, ins[0], ins[1]]), None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else
               apply("loop_read", [ts[0], ins[1]], a),
               batch="a tape's row count is known only when the loop runs",
               export="{0}[int({1})]",
               jax=ops.Jax("jnp.take({0}, jnp.asarray({1}).astype(jnp.int64), axis=0)"),
               doc="row k of a loop's tape (what a loop's reverse-mode derivative reads)"))

register(OpDef(name="loop_write", kernel=_loop_write, shape=_write_shape, params=("g", "tape", "k"),
               builtin=False,
               vjp=lambda ct, out, ins, a: (apply("loop_read", [ct, ins[2]], {"shape": ins[0].shape}),
                                            None, None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else
               apply("loop_write", [ts[0], ins[1], ins[2]]),
               batch="a tape's row count is known only when the loop runs",
               export="_loop_write({0}, {1}, {2})", helpers=(_loop_write,),
               jax=ops.Jax("jnp.zeros(jnp.shape({1})).at[jnp.asarray({2}).astype(jnp.int64)].set({0})"),
               doc="zeros of a tape's shape with row k set to g (the adjoint of loop_read)"))
