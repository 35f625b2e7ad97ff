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


def _swapaxes(node, ins, m):
    (x, _), = ins
    rank = len(node.shape)
    return apply("swapaxes", [x], {"axis1": node.attr("axis1") % rank + 1,
                                   "axis2": node.attr("axis2") % rank + 1})


def _matmul_vjp(node, ins, m):
    """matmul_vjp folds to its known-rank form wherever shapes are known (and batching
    needs them), so this meets it only if a graph kept one: batch that form, seeded
    where the one batched operand is (linear in it; two batched operands are not)."""
    from .ops.linalg import _matmul_cotangent
    batched = [k for k, (_, b) in enumerate(ins) if b]
    if len(batched) != 1:
        return None
    k = batched[0]
    a, b, g = node.inputs
    out = batch([_matmul_cotangent(a, b, g, node.attr("wrt", 0))], node.inputs[k], ins[k][0])
    return None if out is None else out[0]


def _zeros_like(node, ins, m):
    return const(np.zeros((m,) + node.shape))


def _on_last_axes(node, ins, m):
    """An op that acts on its input's last axes whatever leads them (the packed
    triangles): the op itself, on the batched input."""
    (x, _), = ins
    return apply(node.op, [x], dict(node.attrs))


_RULES = {"sum": _reduce, "mean": _reduce, "prod": _reduce, "max": _reduce, "min": _reduce,
          "logsumexp": _reduce, "expand_dims": _expand_dims, "reshape": _reshape_to_own_shape,
          "broadcast_to": _broadcast_to, "broadcast_like": _broadcast_like,
          "reshape_like": _reshape_to_own_shape,
          "unbroadcast": _unbroadcast, "transpose": _transpose, "index": _index,
          "unindex": _unindex, "concat": _join, "stack": _join, "matmul": _matmul,
          "matmul_vjp": _matmul_vjp, "swapaxes": _swapaxes,
          "solve": _solve, "zeros_like": _zeros_like, "triu_unpack": _on_last_axes,
          "triu_pack": _on_last_axes, "digamma": _elementwise}


def _rule(op: str):
    if op in _RULES:
        return _RULES[op]
    opdef = REGISTRY.get(op)
    if opdef is not None and opdef.shape in (same_shape, broadcast_shape):
        return _elementwise
    return None


def has_rule(op: str) -> bool:
    return _rule(op) is not None


# ── an identity seed kept as bands ───────────────────────────────────────
#
# A Jacobian's seed is the identity, and batching it densely turns every value
# on the way into an (m, n) matrix, O(n²) work per op even where the Jacobian
# is banded (the Hessian of a function of neighbouring elements, x[1:] - x[:-1]).
# batch_identity keeps such a value as bands instead: {d: w_d} stands for the
# batched value B[k, j] = w_d[j] where k = j + d, and 0 elsewhere.  The seed is
# {0: ones}; an elementwise op with an unbatched operand acts on each w_d; a
# slice x[a:b] moves band d to d + a and slices w_d; its adjoint (unindex)
# moves it back.  Every nonzero entry of a w_d stays inside the matrix (k in
# [0, m)), so the result is written into the dense (m, n) array once, at the
# end, by a strided placement.  Ops without a banded rule give None, and the
# caller batches the dense identity instead.

Bands = dict          # offset d -> w_d, a vector node


def batch_identity(outputs: list[Node], seed: Node) -> list[Node] | None:
    """`batch(outputs, seed, eye(m))` for a vector seed of m elements, on bands;
    None if some op on the way has no banded rule."""
    if not isinstance(seed.shape, tuple) or len(seed.shape) != 1:
        return None
    m = seed.shape[0]
    new: dict[int, Node | Bands] = {id(seed): {0: const(np.ones(m))}}
    banded: set[int] = {id(seed)}
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        if not any(id(i) in banded for i in node.inputs):
            continue
        if not isinstance(node.shape, tuple) or len(node.shape) != 1:
            return None
        rule = _BANDED.get(node.op)
        if rule is None:
            return None
        with building("d", node.span):
            bands = rule(node, [new[id(i)] if id(i) in banded else None for i in node.inputs])
        if bands is None:
            return None
        new[id(node)] = bands
        banded.add(id(node))
    out = []
    for o in outputs:
        if id(o) not in banded:
            out.append(apply("broadcast_to", [o], {"shape": (m,) + o.shape}))
            continue
        if not isinstance(o.shape, tuple) or len(o.shape) != 1:
            return None
        dense = _dense(new[id(o)], m, o.shape[0])
        if dense is None:
            return None
        out.append(dense)
    return out


def _map(bands: Bands, fn) -> Bands:
    return {d: fn(w) for d, w in bands.items()}


def _banded_mul(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if (ba is None) == (bb is None):
        return None                        # quadratic in the seed, or neither
    mine, other = (a, b) if ba is not None else (b, a)
    if mine.shape != node.shape or other.shape not in ((), node.shape):
        return None
    if ba is not None:
        return _map(ba, lambda w: apply("mul", [w, b]))
    return _map(bb, lambda w: apply("mul", [a, w]))


def _banded_div(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if ba is None or bb is not None or a.shape != node.shape or b.shape not in ((), node.shape):
        return None
    return _map(ba, lambda w: apply("div", [w, b]))


def _banded_neg(node, ins):
    return _map(ins[0], lambda w: apply("neg", [w]))


def _banded_sum_of_two(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if ba is None or bb is None or a.shape != node.shape or b.shape != node.shape:
        return None                        # an affine term, or a broadcast operand
    out = dict(ba)
    for d, w in bb.items():
        if node.op == "sub":
            out[d] = apply("sub", [out[d], w]) if d in out else apply("neg", [w])
        else:
            out[d] = apply("add", [out[d], w]) if d in out else w
    return out


def _slice_start(node, length: int) -> int | None:
    """The start of a single step-1 slice x[a:b] of a vector, counted from 0."""
    items = node.attr("items")
    if len(items) != 1 or items[0][0] != "s" or items[0][3] not in (None, 1):
        return None
    return slice(*items[0][1:]).indices(length)[0]


def _banded_index(node, ins):
    start = _slice_start(node, node.inputs[0].shape[0])
    if start is None:
        return None
    return {d + start: apply("index", [w], dict(node.attrs)) for d, w in ins[0].items()}


def _banded_unindex(node, ins):
    g, like = node.inputs
    if ins[0] is None or ins[1] is not None:
        return None
    start = _slice_start(node, like.shape[0])
    if start is None:
        return None
    return {d - start: apply("unindex", [w, like], dict(node.attrs)) for d, w in ins[0].items()}


def _banded_same_shape(node, ins):
    """broadcast_like / unbroadcast that change nothing: the shapes are equal."""
    if ins[0] is None or node.inputs[0].shape != node.shape:
        return None
    return ins[0]


_BANDED = {"mul": _banded_mul, "div": _banded_div, "neg": _banded_neg,
           "add": _banded_sum_of_two, "sub": _banded_sum_of_two, "index": _banded_index,
           "unindex": _banded_unindex, "broadcast_like": _banded_same_shape,
           "unbroadcast": _banded_same_shape}


def _dense(bands: Bands, m: int, n: int) -> Node | None:
    """The (m, n) matrix of the bands: out[j + d, j] = w_d[j].

    Row k holds the bands side by side: out[k, k - d] for d from hi down to lo,
    at flat positions k·(n + 1) - d.  So each band is shifted to s_d[k] =
    w_d[k - d] (zeros where k - d falls outside), the shifted bands are stacked
    as the columns of T (m, nb), T is written into a zero (m + 1, n + 1) array at
    [1:, :nb], and the matrix is read back as one flat slice of it: the entries
    land on their diagonals, and the zeros of T outside the matrix on cells
    that no band owns or outside the slice."""
    bands = {d: w for d, w in bands.items() if -n < d < m}
    if not bands:
        return const(np.zeros((m, n)))
    lo, hi = min(bands), max(bands)
    nb = hi - lo + 1
    if nb > n + 1 or nb > 64:
        return None
    zero = const(np.zeros(m))
    columns = [_shifted(bands[d], d, m, n) if d in bands else zero for d in range(hi, lo - 1, -1)]
    t = apply("stack", columns, {"axis": 1})
    placed = apply("unindex", [t, const(np.zeros((m + 1, n + 1)))],
                   {"items": (("s", 1, None, None), ("s", 0, nb, None))})
    flat = apply("reshape", [placed], {"shape": (-1,)})
    start = n + 1 + hi
    rows = apply("index", [flat], {"items": (("s", start, start + m * n, None),)})
    return apply("reshape", [rows], {"shape": (m, n)})


def _shifted(w: Node, d: int, m: int, n: int) -> Node:
    """s[k] = w[k - d] for k in [0, m), 0 where k - d is outside [0, n)."""
    lo, hi = max(0, -d), min(n, m - d)            # the part of w that lands inside
    part = w if (lo, hi) == (0, n) else apply("index", [w], {"items": (("s", lo, hi, None),)})
    if (lo + d, hi + d) == (0, m):
        return part
    return apply("unindex", [part, const(np.zeros(m))], {"items": (("s", lo + d, hi + d, None),)})
