"""Taylor mode: truncated Taylor series pushed through a graph (SPEC §13).

`taylor_graph(outputs, wrt, directions, n)` gives, for each output y, the
coefficients y₀ … yₙ of t ↦ y(x + t·v) at t = 0 (yₖ is the k-th directional
derivative over k!).  It walks the graph once, in topological order, as
forward mode does, but carries n coefficients per node instead of one
tangent: each op's `taylor` rule (dsl/ops/series.py) maps its inputs'
coefficients to its output's with O(n²) nodes, so the n-th derivative of a
composite of k ops costs O(k·n²) nodes where nested differentiation grows
exponentially (issue 16).  Every coefficient is a node of registered ops:
the expansion prints, evaluates, exports and is differentiated again.

An op without a rule is linear in its moving inputs when its JVP does not
depend on them (nor on its own output) through any derivative: the
coefficients are then its JVP applied to each coefficient, which is how the
shape, indexing, reduction and piecewise-linear ops (relu, abs, where,
maximum) are handled without a rule of their own.  An op that is neither is
a located error naming it.
"""
from __future__ import annotations

from contextlib import nullcontext

from .errors import BpValueError
from .graph import Node, make_input, topo_order
from .ops import REGISTRY, apply, building, plain_arithmetic
from .ops.series import moves, still


class NoRule(BpValueError):
    """An op on the way has no Taylor rule and is not linear (raised located)."""


def taylor_graph(outputs: list[Node], wrt: list[Node], directions: list[Node], n: int,
                 what: str = "taylor") -> list[list]:
    """The series [y₀, y₁, …, yₙ] of each output along x(t) = x + t·v; a
    coefficient that is None is zero.  Built twice, with the builder's algebra (whose
    canonical forms collapse tanh's coefficients into a short polynomial in tanh(x))
    and with arithmetic as written (where expanding each coefficient into monomials
    repeats what the recurrence shares: x^x's 8th is 354 nodes one way, 133 the other);
    the smaller is kept, the canonical one where they are the same size."""
    with_algebra = _taylor_graph(outputs, wrt, directions, n, what, False)
    as_written = _taylor_graph(outputs, wrt, directions, n, what, True)
    return min((with_algebra, as_written), key=_size)   # a tie reads better canonical


def _size(series: list[list]) -> int:
    return sum(1 for node in topo_order([c for s in series for c in s if c is not None])
               if node.inputs)


def _taylor_graph(outputs, wrt, directions, n: int, what: str, plain: bool) -> list[list]:
    order = topo_order(outputs)
    series: dict[int, list] = {id(w): ([w, v] + [None] * (n - 1))[:n + 1]
                               for w, v in zip(wrt, directions)}
    linear_ok: dict = {}
    for node in order:
        if id(node) in series or not node.inputs:
            continue
        if not any(id(i) in series for i in node.inputs):
            continue
        opdef = REGISTRY[node.op]
        if not opdef.differentiable:
            continue
        ins = tuple(series.get(id(i)) or still(i, n) for i in node.inputs)
        attrs = dict(node.attrs)
        with building("d", node.span), (plain_arithmetic() if plain else nullcontext()):
            got = None if opdef.taylor is None else opdef.taylor(ins, node, node.inputs, attrs, n)
            if got is None and opdef.jvp is not None and _linear(opdef, node, ins, attrs, linear_ok):
                got = [node] + [_jvp_of(opdef, tuple(s[k] for s in ins), node, attrs)
                                for k in range(1, n + 1)]
            if got is None:         # a rule gives None where it does not apply (a rank unknown)
                raise NoRule(f"{what}: {node.op} has no Taylor rule (it is not linear in its "
                             f"argument, and Taylor mode knows no recurrence for it)", node.span)
            got = [node] + [_full(c, node) for c in got[1:]]
        if moves(got):
            series[id(node)] = got
    return [series.get(id(o)) or still(o, n) for o in outputs]


def _jvp_of(opdef, ts: tuple, node: Node, attrs: dict) -> Node | None:
    return None if all(t is None for t in ts) else opdef.jvp(ts, node, node.inputs, attrs)


def _full(c: Node | None, like: Node) -> Node | None:
    """A coefficient with the output's own shape where both are known (a rule may leave
    it broadcastable); as jvp does, a shape known only at call time is left as it is."""
    if c is None or c.shape == like.shape or not isinstance(c.shape, tuple) \
            or not isinstance(like.shape, tuple):
        return c
    return apply("broadcast_like", [c, like])


def _linear(opdef, node: Node, ins: tuple, attrs: dict, cache: dict) -> bool:
    """Whether the op's JVP at this node is free of the moving inputs and of the output:
    then the op is linear (or piecewise linear) in them and its higher coefficients are
    its JVP of theirs.  Decided by forward mode on the JVP's own graph."""
    mask = tuple(moves(s) for s in ins)
    try:
        key = (node.op, node.attrs, tuple(i.shape for i in node.inputs),
               tuple(i.op == "const" for i in node.inputs), mask)
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in cache:
        return cache[key]
    taus = tuple(make_input("∂τ", i.shape, node.span) if m else None
                 for i, m in zip(node.inputs, mask))
    t = opdef.jvp(taus, node, node.inputs, attrs)
    seeds = [node] + [i for i, m in zip(node.inputs, mask) if m]
    answer = t is None or not _depends(t, seeds)
    if key is not None:
        cache[key] = answer
    return answer


def _depends(t: Node, seeds: list[Node]) -> bool:
    """Whether t has a nonzero derivative with respect to any of the seeds: forward
    mode over t's graph, stopping at the first node that gets a tangent."""
    tan = {id(s): True for s in seeds}
    probe = {}
    for node in topo_order([t]):
        if id(node) in tan or not node.inputs:
            continue
        if not any(id(i) in tan for i in node.inputs):
            continue
        opdef = REGISTRY[node.op]
        if opdef.jvp is None or not opdef.differentiable:
            continue
        ts = []
        for i in node.inputs:
            if id(i) in tan:
                if id(i) not in probe:
                    probe[id(i)] = make_input("∂σ", i.shape, node.span)
                ts.append(probe[id(i)])
            else:
                ts.append(None)
        got = opdef.jvp(tuple(ts), node, node.inputs, dict(node.attrs))
        if got is not None and not (got.op == "const" and not got.value.any()):
            tan[id(node)] = True
            probe[id(node)] = got
            if node is t:
                return True
    return any(t is s for s in seeds)
