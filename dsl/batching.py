"""Batching: one graph for many seeds at once (vmap over a linear map).

A Jacobian needs the VJP for every output direction (or the JVP for every
input direction).  Instead of building the derivative graph once per
direction, the derivative is built once with a placeholder seed, and
`batch` rewrites the part of the graph that depends on the seed so that
every value there carries a leading axis of size m: one graph computes
all m directions.  Each op's rule says how it acts on a batched operand.
An op without a rule makes `batch` give up (None), and the caller falls
back to one derivative per direction.  Shapes must be known.
"""
from __future__ import annotations

import numpy as np

from .graph import Node, topo_order
from .ops import REGISTRY, apply, building, const
from .ops.elementwise import broadcast_shape, same_shape

Batched = tuple[Node, bool]          # the new node, and whether it has the batch axis


def batch(outputs: list[Node], seed: Node, replacement: Node) -> list[Node] | None:
    """`outputs` with `seed` (shape s) replaced by `replacement` (shape (m,) + s),
    each output gaining a leading axis of size m; None if some op has no rule."""
    m = replacement.shape[0]
    new: dict[int, Batched] = {id(seed): (replacement, True)}
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        ins = [new.get(id(i), (i, False)) for i in node.inputs]
        if not any(b for _, b in ins):
            new[id(node)] = (node, False)
            continue
        if not all(isinstance(i.shape, tuple) for i in node.inputs) or not isinstance(node.shape, tuple):
            return None
        rule = _rule(node.op)
        if rule is None:
            return None
        with building("d", node.span):
            result = rule(node, ins, m)
        if result is None:
            return None
        new[id(node)] = result if isinstance(result, tuple) else (result, True)
    out = []
    for o in outputs:
        n, batched = new[id(o)]
        out.append(n if batched else apply("broadcast_to", [n], {"shape": (m,) + o.shape}))
    return out


# ── helpers ──────────────────────────────────────────────────────────────

def _lift(x: Node, batched: bool, rank: int, m: int) -> Node:
    """A batched operand reshaped to (m, 1, …, 1, *s) so it broadcasts like the
    unbatched operand of rank `rank` would; an unbatched one as it is."""
    if not batched:
        return x
    s = x.shape[1:]
    if len(s) >= rank:
        return x
    return apply("reshape", [x], {"shape": (m,) + (1,) * (rank - len(s)) + s})


def _with_batch(x: Node, batched: bool, m: int) -> Node:
    return x if batched else apply("broadcast_to", [x], {"shape": (m,) + x.shape})


def _shift(axes, rank: int) -> tuple:
    return tuple(a % rank + 1 for a in axes)


# ── rules ────────────────────────────────────────────────────────────────

def _elementwise(node, ins, m):
    rank = len(node.shape)
    return apply(node.op, [_lift(x, b, rank, m) for x, b in ins], dict(node.attrs))


def _reduce(node, ins, m):
    (x, _), = ins
    attrs = dict(node.attrs)
    rank = len(node.inputs[0].shape)
    axis = attrs.get("axis")
    attrs["axis"] = tuple(range(1, rank + 1)) if axis is None else _shift(axis, rank)
    return apply(node.op, [x], attrs)


def _expand_dims(node, ins, m):
    (x, _), = ins
    return apply("expand_dims", [x], {"axis": _shift(node.attr("axis"), len(node.shape))})


def _reshape_to_own_shape(node, ins, m):
    (x, _), = ins
    return apply("reshape", [x], {"shape": (m,) + node.shape})


def _broadcast_to(node, ins, m):
    (x, _), = ins
    return apply("broadcast_to", [_lift(x, True, len(node.shape), m)], {"shape": (m,) + node.shape})


def _broadcast_like(node, ins, m):
    (g, gb), (like, lb) = ins
    if not gb:                       # only the shape donor depends on the seed
        return apply("broadcast_like", [g, node.inputs[1]]), False
    return apply("broadcast_to", [_lift(g, True, len(node.shape), m)], {"shape": (m,) + node.shape})


def _unbroadcast(node, ins, m):
    (g, gb), _ = ins
    if not gb:
        return apply("unbroadcast", [g, node.inputs[1]]), False
    target = node.shape
    extra = len(g.shape) - 1 - len(target)
    if extra > 0:
        g = apply("sum", [g], {"axis": tuple(range(1, extra + 1)), "keepdims": False})
    axes = tuple(i + 1 for i, d in enumerate(target) if d == 1 and g.shape[i + 1] != 1)
    if axes:
        g = apply("sum", [g], {"axis": axes, "keepdims": True})
    return g


def _transpose(node, ins, m):
    (x, _), = ins
    rank = len(node.shape)
    axes = node.attr("axes")
    perm = tuple(reversed(range(rank))) if axes is None else tuple(a % rank for a in axes)
    return apply("transpose", [x], {"axes": (0,) + tuple(a + 1 for a in perm)})


def _index(node, ins, m):
    (x, _), = ins
    return apply("index", [x], {"items": (("s", None, None, None),) + node.attr("items")})


def _unindex(node, ins, m):
    (g, gb), _ = ins
    if not gb:
        return apply("unindex", [g, node.inputs[1]], dict(node.attrs)), False
    like = const(np.zeros((m,) + node.shape))
    return apply("unindex", [g, like], {"items": (("s", None, None, None),) + node.attr("items")})


def _join(node, ins, m):
    rank = len(node.shape)
    axis = node.attr("axis", 0) % rank + 1
    return apply(node.op, [_with_batch(x, b, m) for x, b in ins], {"axis": axis})


def _matmul(node, ins, m):
    (a, ab), (b, bb) = ins
    ra, rb = len(node.inputs[0].shape), len(node.inputs[1].shape)
    if ab and bb:
        return None                   # quadratic in the seed: not a linear map
    if ab:
        if ra == 1:
            return apply("matmul", [a, b]) if rb <= 2 else None
        return apply("matmul", [_lift(a, True, max(ra, rb), m), b])
    if rb == 1:
        if ra == 1:
            return apply("matmul", [b, a])
        return apply("matmul", [b, apply("transpose", [a], {"axes": None})]) if ra == 2 else None
    return apply("matmul", [a, _lift(b, True, max(ra, rb), m)])


def _solve(node, ins, m):
    (a, ab), (b, bb) = ins
    if ab or len(a.shape) > 2:
        return None                   # batched or stacked matrices: one solve per direction
    col = apply("expand_dims", [b], {"axis": (-1,)}) if len(node.inputs[1].shape) == 1 else b
    return apply("reshape", [apply("solve", [a, col])], {"shape": (m,) + node.shape})


def _zeros_like(node, ins, m):
    return const(np.zeros((m,) + node.shape))


_RULES = {"sum": _reduce, "mean": _reduce, "prod": _reduce, "max": _reduce, "min": _reduce,
          "logsumexp": _reduce, "expand_dims": _expand_dims, "reshape": _reshape_to_own_shape,
          "broadcast_to": _broadcast_to, "broadcast_like": _broadcast_like,
          "unbroadcast": _unbroadcast, "transpose": _transpose, "index": _index,
          "unindex": _unindex, "concat": _join, "stack": _join, "matmul": _matmul,
          "solve": _solve, "zeros_like": _zeros_like}


def _rule(op: str):
    if op in _RULES:
        return _RULES[op]
    opdef = REGISTRY.get(op)
    if opdef is not None and opdef.shape in (same_shape, broadcast_shape):
        return _elementwise
    return None


def has_rule(op: str) -> bool:
    return _rule(op) is not None
