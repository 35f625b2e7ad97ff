"""Linear algebra: matmul (@), transpose, outer, trace, diag, inv, det, solve."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError
from . import Attr, CallForm, Infix, OpDef, apply, const, register
from .shape import known_shape
from .sym import add, div, mul, neg, op, transpose, unbroadcast


def _concrete(shs):
    return all(isinstance(s, tuple) for s in shs)


def matmul_shape(shs, attrs, span):
    a, b = shs
    if not _concrete(shs):
        return shapes.SymShape()
    if len(a) == 0 or len(b) == 0:
        raise BpShapeError(f"matmul of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                           f"@ needs tensors of rank at least 1", span)
    a2 = a if len(a) > 1 else (1,) + a
    b2 = b if len(b) > 1 else b + (1,)
    if a2[-1] != b2[-2]:
        raise BpShapeError(f"matmul of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                           f"inner dimensions differ", span)
    batch = shapes.broadcast(a2[:-2], b2[:-2], span=span, what="batch-broadcast")
    out = batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
    return out


def transpose_shape(shs, attrs, span):
    s, axes = shs[0], attrs.get("axes")
    if not _concrete(shs):
        return shapes.SymShape()
    if axes is None:
        return tuple(reversed(s))
    if sorted(shapes.normalize_axes(axes, len(s), span)) != list(range(len(s))):
        raise BpShapeError(f"axes {tuple(axes)} are not a permutation of the {len(s)} axes "
                           f"of a tensor of shape {shapes.fmt(s)}", span)
    return tuple(s[a] for a in shapes.normalize_axes(axes, len(s), span))


def _transpose(x, axes=None):
    return np.transpose(x, axes)


def outer_shape(shs, attrs, span):
    if not _concrete(shs):
        return shapes.SymShape()
    return (shapes.size(shs[0]), shapes.size(shs[1]))


def _square(s, name, span):
    if len(s) < 2 or s[-1] != s[-2]:
        raise BpShapeError(f"{name} needs a square matrix (or a stack of them), "
                           f"got shape {shapes.fmt(s)}", span)


def trace_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) != 2:
        raise BpShapeError(f"trace needs a matrix, got shape {shapes.fmt(s)}", span)
    return ()


def diag_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) == 1:
        return (s[0], s[0])
    if len(s) == 2:
        return (min(s),)
    raise BpShapeError(f"diag takes a vector or a matrix, got shape {shapes.fmt(s)}", span)


def inv_shape(shs, attrs, span):
    if not _concrete(shs):
        return shs[0]
    _square(shs[0], "inv", span)
    return shs[0]


def det_shape(shs, attrs, span):
    if not _concrete(shs):
        return shapes.SymShape()
    _square(shs[0], "det", span)
    return shs[0][:-2]


def solve_shape(shs, attrs, span):
    a, b = shs
    if not _concrete(shs):
        return shs[1]
    _square(a, "solve", span)
    if len(b) == 1:
        if b[0] != a[-1]:
            raise BpShapeError(f"solve of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                               f"sizes differ", span)
        return a[:-2] + b
    if len(b) < 2 or b[-2] != a[-1]:
        raise BpShapeError(f"solve of {shapes.fmt(a)} and {shapes.fmt(b)}: sizes differ", span)
    return shapes.broadcast(a[:-2], b[:-2], span=span) + b[-2:]


def _solve(a, b):
    """np.linalg.solve with NumPy 2's rule on every NumPy: b is one vector (broadcast
    over a stack of A) when it has one axis, else a stack of matrices whose batch axes
    broadcast with A's.  (NumPy 1 took b as a stack of vectors whenever b.ndim was
    A.ndim - 1.)  Both operands are given the full batch, so no NumPy has to guess."""
    a, b = np.asarray(a), np.asarray(b)
    if b.ndim == 1:
        column = np.broadcast_to(b[:, None], a.shape[:-1] + (1,))
        return np.linalg.solve(a, column)[..., 0]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(a, batch + a.shape[-2:]),
                           np.broadcast_to(b, batch + b.shape[-2:]))


def _swap(x):
    """x with its last two axes exchanged (the matrix transpose of a stack)."""
    rank = len(x.shape) if isinstance(x.shape, tuple) else 2
    if rank < 2:
        return x
    return transpose(x, tuple(range(rank - 2)) + (rank - 1, rank - 2))


def _matmul_vjp(ct, out, ins, attrs):
    a, b = ins
    ra = len(a.shape) if isinstance(a.shape, tuple) else 2
    rb = len(b.shape) if isinstance(b.shape, tuple) else 2
    if ra == 1 and rb == 1:                       # a·b
        return mul(ct, b), mul(ct, a)
    if ra == 1:                                   # (k) @ (…, k, n) → (…, n)
        ga = op("matmul", b, ct) if rb == 2 else \
            op("sum", mul(b, op("expand_dims", ct, axis=(-2,))), axis=(-1,), keepdims=False)
        return (unbroadcast(ga, a),
                unbroadcast(mul(op("expand_dims", a, axis=(-1,)), op("expand_dims", ct, axis=(-2,))), b))
    if rb == 1:                                   # (…, m, k) @ (k) → (…, m)
        gb = op("matmul", _swap(a), ct) if ra == 2 else \
            op("sum", mul(a, op("expand_dims", ct, axis=(-1,))), axis=(-2,), keepdims=False)
        return (unbroadcast(mul(op("expand_dims", ct, axis=(-1,)), b), a), unbroadcast(gb, b))
    return unbroadcast(op("matmul", ct, _swap(b)), a), unbroadcast(op("matmul", _swap(a), ct), b)


def _matmul_jvp(ts, out, ins, attrs):
    a, b = ins
    return add(None if ts[0] is None else op("matmul", ts[0], b),
               None if ts[1] is None else op("matmul", a, ts[1]))


def _inverse_perm(axes):
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a % len(axes)] = i
    return tuple(inv)


def _transpose_vjp(ct, out, ins, attrs):
    axes = attrs.get("axes")
    return (transpose(ct, None if axes is None else _inverse_perm(axes)),)


def _trace_vjp(ct, out, ins, attrs):
    m, n = known_shape(ins[0], "trace")[:2]
    return (mul(ct, const(np.eye(m, n))),)


def _diag_vjp(ct, out, ins, attrs):
    s = known_shape(ins[0], "diag")
    if len(s) == 1:
        return (op("diag", ct),)
    m, n = s
    column = ct if m > n else op("expand_dims", ct, axis=(-1,))
    return (mul(const(np.eye(m, n)), column),)


def _inv_vjp(ct, out, ins, attrs):
    # d(A⁻¹) = -A⁻¹ dA A⁻¹, so Ā = -A⁻ᵀ C A⁻ᵀ.
    t = _swap(out)
    return (neg(op("matmul", op("matmul", t, ct), t)),)


def _inv_jvp(ts, out, ins, attrs):
    return neg(op("matmul", op("matmul", out, ts[0]), out))


def _det_vjp(ct, out, ins, attrs):
    # d det(A) = det(A) tr(A⁻¹ dA), so Ā = c·det(A)·A⁻ᵀ.
    scale = op("expand_dims", mul(ct, out), axis=(-1, -2))
    return (mul(scale, _swap(op("inv", ins[0]))),)


def _det_jvp(ts, out, ins, attrs):
    x = op("matmul", op("inv", ins[0]), ts[0])
    return mul(out, op("sum", mul(x, const(np.eye(known_shape(ins[0], "det")[-1]))),
                       axis=(-2, -1), keepdims=False))


def _solve_vjp(ct, out, ins, attrs):
    # x = A⁻¹b: b̄ = A⁻ᵀ x̄, Ā = -b̄ xᵀ.
    a, b = ins
    if isinstance(b.shape, tuple) and len(b.shape) == 1:
        if isinstance(a.shape, tuple) and len(a.shape) == 2:
            gx = op("solve", _swap(a), ct)
        else:
            # x̄ is a stack of vectors, one per matrix of A (b was broadcast over the
            # stack): solve them as columns, then sum b̄ over the stack.
            column = op("solve", _swap(a), op("expand_dims", ct, axis=(-1,)))
            gx = op("sum", column, axis=(-1,), keepdims=False)
        ga = neg(mul(op("expand_dims", gx, axis=(-1,)), op("expand_dims", out, axis=(-2,))))
        return unbroadcast(ga, a), unbroadcast(gx, b)
    gb = op("solve", _swap(a), ct)
    ga = neg(op("matmul", gb, _swap(out)))
    return unbroadcast(ga, a), unbroadcast(gb, b)


def _solve_jvp(ts, out, ins, attrs):
    a, b = ins
    rhs = None
    if ts[1] is not None:
        rhs = ts[1]
    if ts[0] is not None:
        ax = op("matmul", ts[0], out)
        rhs = neg(ax) if rhs is None else op("sub", rhs, ax)
    return op("solve", a, rhs)


def _outer_vjp(ct, out, ins, attrs):
    a, b = ins
    return (op("reshape", op("matmul", ct, op("reshape", b, shape=(-1,))), shape=known_shape(a, "outer")),
            op("reshape", op("matmul", op("reshape", a, shape=(-1,)), ct), shape=known_shape(b, "outer")))


def _outer_jvp(ts, out, ins, attrs):
    a, b = ins
    return add(None if ts[0] is None else op("outer", ts[0], b),
               None if ts[1] is None else op("outer", a, ts[1]))


register(OpDef(name="matmul", kernel=np.matmul, shape=matmul_shape, params=("a", "b"),
               vjp=_matmul_vjp, jvp=_matmul_jvp,
               fmt=Infix("@", 8), builtin=False, doc="a @ b: matrix product, NumPy matmul rules"))
register(OpDef(name="transpose", kernel=_transpose, shape=transpose_shape,
               attrs=(Attr("axes", "perm", None),), vjp=_transpose_vjp,
               jvp=lambda ts, out, ins, a: transpose(ts[0], a.get("axes")),
               doc="reverse the axes (like x'), or permute them with axes="))
register(OpDef(name="outer", kernel=np.outer, shape=outer_shape, params=("a", "b"),
               vjp=_outer_vjp, jvp=_outer_jvp, doc="outer product of two vectors"))
register(OpDef(name="trace", kernel=np.trace, shape=trace_shape, vjp=_trace_vjp,
               jvp=lambda ts, out, ins, a: op("trace", ts[0]), doc="sum of the diagonal"))
register(OpDef(name="diag", kernel=np.diag, shape=diag_shape, vjp=_diag_vjp,
               jvp=lambda ts, out, ins, a: op("diag", ts[0]),
               doc="a vector to a diagonal matrix, or a matrix's diagonal as a vector"))
register(OpDef(name="inv", kernel=np.linalg.inv, shape=inv_shape, vjp=_inv_vjp, jvp=_inv_jvp,
               doc="matrix inverse"))
register(OpDef(name="det", kernel=np.linalg.det, shape=det_shape, vjp=_det_vjp, jvp=_det_jvp,
               doc="determinant"))
register(OpDef(name="solve", kernel=_solve, shape=solve_shape, params=("A", "b"),
               vjp=_solve_vjp, jvp=_solve_jvp, doc="x with A @ x = b"))
