"""Linear algebra: matmul (@), transpose, swapaxes, outer, trace, diag, inv, det, solve,
and matmul_vjp (the cotangents of @ for operands of any rank).

Rules that depend on rank read it from a concrete shape only; at an unknown rank (a
parameter without annotation) they build rank-generic nodes (swapaxes, matmul_vjp, or
solve's derivative through inv(A) @ b) that fold to the concrete forms as soon as the
shapes are known, so a printed derivative is right for every rank (docs/design.md,
"Rank-generic derivatives").
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, CallForm, Infix, OpDef, apply, const, register
from . import series as _series
from .batched import FALLBACK, Rebatch, lift, on_last_axes
from .shape import _reshape_back, known_shape
from .sym import add, mul, neg, op, transpose, unbroadcast


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
    if len(s) < 2:
        raise BpShapeError(f"trace needs a matrix (or a stack of them), got shape "
                           f"{shapes.fmt(s)}", span)
    return s[:-2]


def _diagonal_length(m: int, n: int, k: int) -> int:
    """How many entries diagonal k of an m×n matrix has (NumPy's diagonal)."""
    return max(0, min(m, n - k) if k >= 0 else min(m + k, n))


def diag_shape(shs, attrs, span):
    s, k = shs[0], attrs.get("k", 0)
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) == 1:
        return (s[0] + abs(k),) * 2
    if len(s) >= 2:
        return s[:-2] + (_diagonal_length(s[-2], s[-1], k),)
    raise BpShapeError(f"diag takes a vector, a matrix or a stack of matrices, got shape "
                       f"{shapes.fmt(s)}", span)


def _trace(x, offset=0):
    """The sum of diagonal `offset` of every matrix of a stack (numpy.linalg.trace;
    np.trace's default axes are the first two)."""
    return np.trace(x, offset, -2, -1)


def _diag(x, k=0):
    """np.diag for a vector (onto diagonal k) or a matrix (its diagonal k), and
    diagonal k of every matrix of a stack (numpy.linalg.diagonal) for rank 3 and up."""
    x = np.asarray(x)
    return np.diag(x, k) if x.ndim <= 2 else np.diagonal(x, k, -2, -1).copy()


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
        # x has b's shape when A is one matrix; a stack of A adds its batch axes
        return b if isinstance(a, tuple) and len(a) == 2 else shapes.SymShape()
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


def _rank(x) -> int | None:
    """The rank of a node when its shape says (None for a parameter without annotation)."""
    return len(x.shape) if isinstance(x.shape, tuple) else None


def _swap(x):
    """x with its last two axes exchanged (the matrix transpose of a stack): swapaxes,
    which is x' as soon as the rank is known to be 2."""
    return op("swapaxes", x, axis1=-1, axis2=-2)


# ── swapaxes ─────────────────────────────────────────────────────────────

def _swap_perm(rank: int, attrs, span) -> tuple[int, ...]:
    i, = shapes.normalize_axes((attrs["axis1"],), rank, span)
    j, = shapes.normalize_axes((attrs["axis2"],), rank, span)
    perm = list(range(rank))
    perm[i], perm[j] = j, i
    return tuple(perm)


def swapaxes_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    return tuple(s[k] for k in _swap_perm(len(s), attrs, span))


def _fold_swapaxes(ins, attrs, shape):
    x, = ins
    if isinstance(x.shape, tuple):            # a known rank: the permutation it is
        perm = _swap_perm(len(x.shape), attrs, None)
        return x if perm == tuple(range(len(perm))) else transpose(x, perm)
    if x.op == "swapaxes" and {x.attr("axis1"), x.attr("axis2")} == {attrs["axis1"], attrs["axis2"]}:
        return x.inputs[0]                    # the same two axes swapped back
    return None


def _swapaxes_rule(ts_or_ct, attrs):
    return op("swapaxes", ts_or_ct, axis1=attrs["axis1"], axis2=attrs["axis2"])


# ── matmul and its cotangents ────────────────────────────────────────────

def _matmul_vjp(ct, out, ins, attrs):
    a, b = ins
    return op("matmul_vjp", a, b, ct, wrt=0), op("matmul_vjp", a, b, ct, wrt=1)


def matmul_vjp_shape(shs, attrs, span):
    a, b, g = shs
    wrt = attrs.get("wrt", 0)
    if wrt not in (0, 1):
        raise BpValueError(f"matmul_vjp: wrt= is 0 (the cotangent of a) or 1 (of b), got {wrt}", span)
    if isinstance(a, tuple) and isinstance(b, tuple):
        out = matmul_shape((a, b), {}, span)
        if isinstance(g, tuple) and g != out:
            raise BpShapeError(f"matmul_vjp: g has shape {shapes.fmt(g)}, but a @ b has shape "
                               f"{shapes.fmt(out)}", span)
    return shs[wrt]


def _matmul_vjp_kernel(a, b, g, wrt=0):
    """The cotangent of a (wrt=0) or b (wrt=1) in a @ b for the output cotangent g, for
    every rank NumPy's matmul accepts: a vector operand becomes a row (a) or a column (b),
    g gains the axes matmul dropped, and the product is summed down to the operand's shape."""
    a, b, g = np.asarray(a), np.asarray(b), np.asarray(g)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g[..., None] if b.ndim == 1 else g
    g2 = g2[..., None, :] if a.ndim == 1 else g2
    if wrt == 0:
        r, like = np.matmul(g2, np.swapaxes(b2, -1, -2)), a2
    else:
        r, like = np.matmul(np.swapaxes(a2, -1, -2), g2), b2
    if r.ndim > like.ndim:
        r = r.sum(axis=tuple(range(r.ndim - like.ndim)))
    axes = tuple(i for i, d in enumerate(like.shape) if d == 1 and r.shape[i] != 1)
    if axes:
        r = r.sum(axis=axes, keepdims=True)
    return r.reshape((a if wrt == 0 else b).shape)


def _matmul_cotangent(a, b, ct, wrt):
    """matmul_vjp at known ranks, in the matrix-calculus forms: ḡ bᵀ and aᵀ ḡ, outer
    products for a matrix and a vector, and sums over a stack's batch axes."""
    ra, rb = len(a.shape), len(b.shape)
    if wrt == 0:
        if rb == 1:
            g = mul(ct, b) if ra == 1 else op("outer", ct, b) if ra == 2 else \
                mul(op("expand_dims", ct, axis=(-1,)), b)
        elif ra == 1:
            g = op("matmul", b, ct) if rb == 2 else \
                op("sum", mul(b, op("expand_dims", ct, axis=(-2,))), axis=(-1,), keepdims=False)
        else:
            g = op("matmul", ct, _swap(b))
        return unbroadcast(g, a)
    if ra == 1:
        g = mul(ct, a) if rb == 1 else op("outer", a, ct) if rb == 2 else \
            mul(op("expand_dims", a, axis=(-1,)), op("expand_dims", ct, axis=(-2,)))
    elif rb == 1:
        g = op("matmul", _swap(a), ct) if ra == 2 else \
            op("sum", mul(a, op("expand_dims", ct, axis=(-1,))), axis=(-2,), keepdims=False)
    else:
        g = op("matmul", _swap(a), ct)
    return unbroadcast(g, b)


def _fold_matmul_vjp(ins, attrs, shape):
    a, b, g = ins
    if _rank(a) is None or _rank(b) is None:
        return None                           # the rank decides the form: wait for it
    return _matmul_cotangent(a, b, g, attrs.get("wrt", 0))


def _matmul_vjp_vjp(ct, out, ins, attrs):
    # y = ∂⟨g, a @ b⟩/∂a is linear in g and b (a gives only its shape), and
    # ⟨u, y⟩ = ⟨g, u @ b⟩; likewise for wrt=1 with ⟨u, y⟩ = ⟨g, a @ u⟩.
    a, b, g = ins
    if attrs.get("wrt", 0) == 0:
        return None, op("matmul_vjp", ct, b, g, wrt=1), op("matmul", ct, b)
    return op("matmul_vjp", a, ct, g, wrt=0), None, op("matmul", a, ct)


def _matmul_vjp_jvp(ts, out, ins, attrs):
    a, b, g = ins
    ta, tb, tg = ts
    if attrs.get("wrt", 0) == 0:
        return add(None if tb is None else op("matmul_vjp", a, tb, g, wrt=0),
                   None if tg is None else op("matmul_vjp", a, b, tg, wrt=0))
    return add(None if ta is None else op("matmul_vjp", ta, b, g, wrt=1),
               None if tg is None else op("matmul_vjp", a, b, tg, wrt=1))


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
    # ḡ times the mask of the diagonal: a constant where the shape is known, else the
    # diagonal of ones_like(x) (ḡ given two axes, which broadcast for a single matrix)
    x, k = ins[0], attrs.get("offset", 0)
    if _rank(x) == 2:
        return (mul(ct, const(np.eye(x.shape[-2], x.shape[-1], k))),)
    if isinstance(x.shape, tuple):
        mask = const(np.eye(x.shape[-2], x.shape[-1], k))
    else:
        mask = op("triu", op("tril", op("broadcast_like", const(1.0), x), k=k), k=k)
    return (mul(op("expand_dims", ct, axis=(-1, -2)), mask),)


def _diag_vjp(ct, out, ins, attrs):
    s, k = known_shape(ins[0], "diag"), attrs.get("k", 0)
    if len(s) == 1:
        return (op("diag", ct, k=k),)
    # ḡ on diagonal k of zeros: indexed by row (k ≥ 0) or by column (k < 0), padded
    # with zeros to that many rows or columns, times the mask of the diagonal
    m, n = s[-2:]
    size = m if k >= 0 else n
    short = size - _diagonal_length(m, n, k)
    if short:
        ct = op("concat", ct, const(np.zeros(s[:-2] + (short,))), axis=-1)
    spread = op("expand_dims", ct, axis=(-1,) if k >= 0 else (-2,))
    return (mul(const(np.eye(m, n, k)), spread),)


def _batch_diag(node, ins, m):
    """diag of a matrix or a stack takes diagonals of the last two axes, whatever
    leads them; a batched vector would read as a matrix: one per direction."""
    (x, _), = ins
    if len(node.inputs[0].shape) < 2:
        return None
    return apply("diag", [x], dict(node.attrs))


def _inv_vjp(ct, out, ins, attrs):
    # d(A⁻¹) = -A⁻¹ dA A⁻¹, so Ā = -A⁻ᵀ C A⁻ᵀ.
    t = _swap(out)
    return (neg(op("matmul", op("matmul", t, ct), t)),)


def _inv_jvp(ts, out, ins, attrs):
    return neg(op("matmul", op("matmul", out, ts[0]), out))


def _det_vjp(ct, out, ins, attrs):
    # d det(A) = det(A) tr(A⁻¹ dA), so Ā = c·det(A)·A⁻ᵀ (one scale per matrix of a stack).
    scale = mul(ct, out)
    if _rank(ins[0]) != 2:
        scale = op("expand_dims", scale, axis=(-1, -2))
    return (mul(scale, _swap(op("inv", ins[0]))),)


def _det_jvp(ts, out, ins, attrs):
    # tr(A⁻¹ dA) = sum(A⁻ᵀ ∘ dA) over the last two axes, whatever leads them.
    axis = None if _rank(ins[0]) == 2 else (-2, -1)
    return mul(out, op("sum", mul(_swap(op("inv", ins[0])), ts[0]), axis=axis, keepdims=False))


# solve(A, b) follows NumPy 2: b is one vector when it has one axis (broadcast over a
# stack of A), else a stack of matrices.  So the rules depend on b's rank; where it is
# unknown they use solve(A, b) = inv(A) @ b, whose matmul carries b's rank at run time.

def _solve_vjp(ct, out, ins, attrs):
    # x = A⁻¹b: b̄ = A⁻ᵀ x̄, Ā = -b̄ xᵀ.
    a, b = ins
    rb = _rank(b)
    if rb is None:
        # b̄ = the cotangent of b in A⁻¹ @ b; Ā = -A⁻ᵀ C A⁻ᵀ with C that of A⁻¹ (which
        # needs only A's shape).
        ai = op("inv", a)
        t = _swap(ai)
        c = op("matmul_vjp", a, b, ct, wrt=0)
        return neg(op("matmul", op("matmul", t, c), t)), op("matmul_vjp", ai, b, ct, wrt=1)
    if rb == 1:
        if _rank(a) == 2:
            gx = op("solve", _swap(a), ct)
            return neg(op("outer", gx, out)), gx
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
    # dx = A⁻¹(db - dA x)
    a, b = ins
    ta, tb = ts
    dx = None if tb is None else op("solve", a, tb)
    if ta is None:
        return dx
    rb = _rank(b)
    if rb is None:                                   # (A⁻¹ dA A⁻¹) @ b keeps b's rank
        ai = op("inv", a)
        return add(dx, neg(op("matmul", op("matmul", op("matmul", ai, ta), ai), b)))
    if rb == 1 and _rank(a) != 2:                    # x is a stack of vectors: as columns
        ax = op("matmul", ta, op("expand_dims", out, axis=(-1,)))
        return add(dx, neg(op("sum", op("solve", a, ax), axis=(-1,), keepdims=False)))
    return add(dx, neg(op("solve", a, op("matmul", ta, out))))


def _outer_vjp(ct, out, ins, attrs):
    """np.outer flattens its operands: ā = ḡ @ flatten(b), b̄ = flatten(a) @ ḡ, each
    put back in its operand's shape (known or not)."""
    a, b = ins
    return (_reshape_back(op("matmul", ct, op("reshape", b, shape=(-1,))), a),
            _reshape_back(op("matmul", op("reshape", a, shape=(-1,)), ct), b))


def _outer_jvp(ts, out, ins, attrs):
    a, b = ins
    return add(None if ts[0] is None else op("outer", ts[0], b),
               None if ts[1] is None else op("outer", a, ts[1]))


def _is_eye(x) -> bool:
    v = x.value if x.op == "const" else None
    return v is not None and v.ndim == 2 and v.shape[0] == v.shape[1] \
        and bool((v == np.eye(v.shape[0])).all())


def _fold_matmul(ins, attrs, shape):
    """eye(n) @ a and a @ eye(n) are a (where a already has the product's shape)."""
    a, b = ins
    if _is_eye(a) and b.shape == shape:
        return b
    if _is_eye(b) and a.shape == shape:
        return a
    return None


def _fold_transpose(ins, attrs, shape):
    """A transpose of a transpose is one permutation, or none: A'' is A."""
    x, = ins
    if x.op != "transpose" or not isinstance(shape, tuple) or not isinstance(x.shape, tuple):
        return None
    rank = len(shape)
    inner = x.attr("axes") or tuple(reversed(range(rank)))
    outer = attrs.get("axes") or tuple(reversed(range(rank)))
    perm = tuple(inner[k % rank] % rank for k in outer)
    if perm == tuple(range(rank)):
        return x.inputs[0]
    return transpose(x.inputs[0], None if perm == tuple(reversed(range(rank))) else perm)


# ── batching rules (dsl/ops/batched.py) ──────────────────────────────────

def _batch_matmul(node, ins, m):
    (a, ab), (b, bb) = ins
    ra, rb = len(node.inputs[0].shape), len(node.inputs[1].shape)
    if ab and bb:
        return None                   # quadratic in the seed: not a linear map
    if ab:
        if ra == 1:
            return apply("matmul", [a, b]) if rb <= 2 else None
        return apply("matmul", [lift(a, True, max(ra, rb), m), b])
    if rb == 1:
        if ra == 1:
            return apply("matmul", [b, a])
        return apply("matmul", [b, apply("transpose", [a], {"axes": None})]) if ra == 2 else None
    return apply("matmul", [a, lift(b, True, max(ra, rb), m)])


def _batch_solve(node, ins, m):
    (a, ab), (b, bb) = ins
    if ab or len(a.shape) > 2:
        return None                   # batched or stacked matrices: one solve per direction
    col = apply("expand_dims", [b], {"axis": (-1,)}) if len(node.inputs[1].shape) == 1 else b
    return apply("reshape", [apply("solve", [a, col])], {"shape": (m,) + node.shape})


def _batch_swapaxes(node, ins, m):
    (x, _), = ins
    rank = len(node.shape)
    return apply("swapaxes", [x], {"axis1": node.attr("axis1") % rank + 1,
                                   "axis2": node.attr("axis2") % rank + 1})


def _batch_transpose(node, ins, m):
    (x, _), = ins
    rank = len(node.shape)
    axes = node.attr("axes")
    perm = tuple(reversed(range(rank))) if axes is None else tuple(a % rank for a in axes)
    return apply("transpose", [x], {"axes": (0,) + tuple(a + 1 for a in perm)})


def _batch_matmul_vjp(node, ins, m):
    """matmul_vjp folds to its known-rank form wherever shapes are known (and batching
    needs them), so this meets it only if a graph kept one: batch that form, seeded
    where the one batched operand is (linear in it; two batched operands are not)."""
    batched = [k for k, (_, b) in enumerate(ins) if b]
    if len(batched) != 1:
        return None
    k = batched[0]
    a, b, g = node.inputs
    return Rebatch([_matmul_cotangent(a, b, g, node.attr("wrt", 0))], node.inputs[k], ins[k][0])


_NO_BATCH = FALLBACK + " (its own derivatives use it: those Jacobians take the per-row fallback)"


register(OpDef(name="matmul", kernel=np.matmul, shape=matmul_shape, params=("a", "b"),
               vjp=_matmul_vjp, jvp=_matmul_jvp, fold=_fold_matmul, taylor=_series.multilinear,
               fmt=Infix("@", 8), builtin=False, batch=_batch_matmul, export="np.matmul({0}, {1})",
               doc="a @ b: matrix product, NumPy matmul rules"))
register(OpDef(name="matmul_vjp", kernel=_matmul_vjp_kernel, shape=matmul_vjp_shape,
               params=("a", "b", "g"), attrs=(Attr("wrt", "int", 0),), fold=_fold_matmul_vjp,
               vjp=_matmul_vjp_vjp, jvp=_matmul_vjp_jvp, batch=_batch_matmul_vjp,
               taylor=_series.multilinear,
               export="_matmul_vjp_kernel({0}, {1}, {2}, {wrt})", helpers=(_matmul_vjp_kernel,),
               doc="the cotangent of a (wrt=0) or b (wrt=1) in a @ b for the output cotangent g, "
                   "for operands of any rank (how a derivative of @ prints when ranks are unknown)"))
register(OpDef(name="swapaxes", kernel=lambda x, axis1, axis2: np.swapaxes(x, axis1, axis2),
               shape=swapaxes_shape, attrs=(Attr("axis1", "int", required=True),
                                            Attr("axis2", "int", required=True)),
               fold=_fold_swapaxes, vjp=lambda ct, out, ins, a: (_swapaxes_rule(ct, a),),
               jvp=lambda ts, out, ins, a: _swapaxes_rule(ts[0], a),
               batch=_batch_swapaxes, export="np.swapaxes({0}, {axis1}, {axis2})",
               doc="x with two axes exchanged (NumPy swapaxes); swapaxes(x, -1, -2) transposes "
                   "every matrix of a stack"))
register(OpDef(name="transpose", kernel=_transpose, shape=transpose_shape,
               attrs=(Attr("axes", "perm", None),), vjp=_transpose_vjp, fold=_fold_transpose,
               jvp=lambda ts, out, ins, a: transpose(ts[0], a.get("axes")),
               batch=_batch_transpose, export="np.transpose({0}, {axes!r})",
               doc="reverse the axes (like x'), or permute them with axes="))
register(OpDef(name="outer", kernel=np.outer, shape=outer_shape, params=("a", "b"),
               vjp=_outer_vjp, jvp=_outer_jvp, batch=_NO_BATCH, export="np.outer({0}, {1})",
               taylor=_series.multilinear,
               doc="outer product of two vectors"))
register(OpDef(name="trace", kernel=_trace, shape=trace_shape, attrs=(Attr("offset", "int", 0),),
               vjp=_trace_vjp, batch=on_last_axes, export="np.trace({0}, {offset}, -2, -1)",
               jvp=lambda ts, out, ins, a: op("trace", ts[0], **a),
               doc="sum of diagonal offset= of a matrix (of each matrix of a stack)"))
register(OpDef(name="diag", kernel=_diag, shape=diag_shape, attrs=(Attr("k", "int", 0),),
               vjp=_diag_vjp, batch=_batch_diag, export="_diag({0}, {k})", helpers=(_diag,),
               jvp=lambda ts, out, ins, a: op("diag", ts[0], **a),
               doc="a vector onto diagonal k of a square matrix, or diagonal k of a matrix (of "
                   "each matrix of a stack) as a vector"))
register(OpDef(name="inv", kernel=np.linalg.inv, shape=inv_shape, vjp=_inv_vjp, jvp=_inv_jvp,
               taylor=_series.inv,
               batch=FALLBACK, export="np.linalg.inv({0})",
               doc="matrix inverse"))
register(OpDef(name="det", kernel=np.linalg.det, shape=det_shape, vjp=_det_vjp, jvp=_det_jvp,
               taylor=_series.det,
               batch=FALLBACK, export="np.linalg.det({0})",
               doc="determinant"))
register(OpDef(name="solve", kernel=_solve, shape=solve_shape, params=("A", "b"),
               vjp=_solve_vjp, jvp=_solve_jvp, batch=_batch_solve, export="_solve({0}, {1})",
               taylor=_series.by_solves,
               helpers=(_solve,), doc="x with A @ x = b"))
