"""Gathers and scatters (SPEC §13 "Indexing and updates"): take, take_along_axis,
scatter_add, scatter_add_along_axis, stop_gradient.

Indices are tensors of whole numbers (float64, like every bp tensor), negative
from the end as in NumPy, checked when the kernel runs: a fraction or an index
out of range is a located value error.  No gradient flows into an index.  The
ops close under differentiation: take's adjoint is scatter_add into zeros and
scatter_add's is take, and the same for the along-axis pair, so every
derivative prints as bp calls and reads back.

`x[idx]` with a tensor index, `x[i]` with a runtime scalar and the dynamic slice
`X[s : s + n]` lower to `take` (dsl/lower.py); so do their updates.
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, Jax, OpDef, apply, register
from .batched import lift, with_batch
from .sym import unbroadcast


def _whole(idx) -> np.ndarray:
    """An index tensor as NumPy integers; a value error for a fraction, inf or nan.
    (One cast and one comparison: nan, inf and fractions do not survive the round trip.)"""
    idx = np.asarray(idx)
    if idx.dtype.kind in "iub":
        return idx.astype(np.intp, copy=False)
    with np.errstate(invalid="ignore"):
        whole = idx.astype(np.intp)
        if idx.size and (whole != idx).any():
            bad = idx[~(np.isfinite(idx) & (idx == np.round(idx)))]
            if bad.size:                    # else only numbers too big for an index
                raise BpValueError(f"an index must be a whole number, got {bad.flat[0]:g}")
    return whole


def _fits(v: tuple, target: tuple) -> bool:
    """Whether values of shape v broadcast to target (NumPy's rule, target unchanged)."""
    return len(v) <= len(target) and all(a in (1, b) for a, b in zip(reversed(v), reversed(target)))


def _concrete(*shs) -> bool:
    return all(isinstance(s, tuple) for s in shs)


# ── take(x, idx, axis=None): np.take ─────────────────────────────────────

def _take_shape(shs, attrs, span):
    x, idx = shs
    axis = attrs.get("axis")
    if axis is None:
        return idx if isinstance(idx, tuple) else shapes.SymShape()
    if not _concrete(x, idx):
        return shapes.SymShape()
    if x == ():
        raise BpShapeError("take with axis= needs a tensor of rank 1 or more, got a scalar", span)
    ax, = shapes.normalize_axes((axis,), len(x), span)
    return x[:ax] + idx + x[ax + 1:]


def _take(x, idx, axis=None):
    return np.take(x, _whole(idx), axis=axis)


def _take_vjp(ct, out, ins, attrs):
    x, idx = ins
    axis = attrs.get("axis")
    zero = apply("zeros_like", [x])
    if axis is None:              # the flattened x: scatter into a flat zero, then x's shape
        flat = apply("reshape", [zero], {"shape": (-1,)})
        g = apply("scatter_add", [flat, idx, ct], {"axis": 0})
        back = apply("reshape", [g], {"shape": x.shape}) if isinstance(x.shape, tuple) else \
            apply("reshape_like", [g, x])
        return back, None
    return apply("scatter_add", [zero, idx, ct], {"axis": axis}), None


def _take_jvp(ts, out, ins, attrs):
    return None if ts[0] is None else apply("take", [ts[0], ins[1]], dict(attrs))


def _take_batch(node, ins, m):
    (x, xb), (idx, ib) = ins
    axis = node.attr("axis")
    if ib and xb:
        return None
    if ib:                         # the batch axis comes in where axis was; move it first
        out = apply("take", [x, idx], dict(node.attrs))
        if axis is None or axis % len(x.shape) == 0:
            return out
        ax = axis % len(x.shape)
        perm = (ax,) + tuple(i for i in range(len(out.shape)) if i != ax)
        return apply("transpose", [out], {"axes": perm})
    if axis is None:
        return apply("take", [apply("reshape", [x], {"shape": (m, -1)}), idx], {"axis": 1})
    return apply("take", [x, idx], {"axis": axis % len(node.inputs[0].shape) + 1})


register(OpDef(name="take", kernel=_take, shape=_take_shape, params=("x", "indices"),
               attrs=(Attr("axis", "int", None),),
               vjp=_take_vjp, jvp=_take_jvp, batch=_take_batch,
               export=lambda args, a: f"np.take({args[0]}, _as_indices({args[1]}), axis={a.get('axis')})",
               helpers=("def _as_indices(i):\n    return np.asarray(i).astype(np.intp)\n",),
               doc="the elements of x at the whole-number indices along axis (np.take; without "
                   "axis, of the flattened x); negative indices count from the end"))


# ── scatter_add(x, idx, v, axis=0): np.add.at on a copy ──────────────────

def _scatter_target(x, idx, axis, span):
    """The shape v must broadcast to: that of take(x, idx, axis)."""
    if x == ():
        raise BpShapeError("scatter_add needs a tensor of rank 1 or more, got a scalar", span)
    ax, = shapes.normalize_axes((axis,), len(x), span)
    return ax, x[:ax] + idx + x[ax + 1:]


def _scatter_shape(shs, attrs, span):
    x, idx, v = shs
    if _concrete(x, idx, v):
        _, target = _scatter_target(x, idx, attrs.get("axis", 0), span)
        if not _fits(v, target):
            raise BpShapeError(f"scatter_add: the values have shape {shapes.fmt(v)}, which does "
                               f"not broadcast to {shapes.fmt(target)}, the shape of "
                               f"take(x, indices, axis)", span)
    return x


def _scatter_add(x, idx, v, axis=0):
    ax = axis % x.ndim
    ind = _whole(idx)
    target = x.shape[:ax] + ind.shape + x.shape[ax + 1:]
    out = np.array(x, dtype=np.float64, copy=True)
    np.add.at(out, (slice(None),) * ax + (ind,), np.broadcast_to(v, target))
    return out


def _scatter_vjp(ct, out, ins, attrs):
    x, idx, v = ins
    return ct, None, unbroadcast(apply("take", [ct, idx], {"axis": attrs.get("axis", 0)}), v)


def _scatter_jvp(ts, out, ins, attrs):
    tx, _, tv = ts
    if tv is None:
        return tx
    base = tx if tx is not None else apply("zeros_like", [ins[0]])
    return apply("scatter_add", [base, ins[1], tv], dict(attrs))


def _scatter_batch(node, ins, m):
    (x, xb), (idx, ib), (v, vb) = ins
    if ib:
        return None
    x0 = node.inputs[0]
    ax = node.attr("axis", 0) % len(x0.shape)
    rank = len(x0.shape) - 1 + len(node.inputs[1].shape)
    return apply("scatter_add", [with_batch(x, xb, m), idx, lift(v, vb, rank, m)], {"axis": ax + 1})


_SCATTER_JAX = '''
def _scatter_add(x, idx, v, axis):
    ax = axis % jnp.ndim(x)
    ind = jnp.asarray(idx).astype(jnp.int64)
    out = jnp.asarray(x, dtype=jnp.float64)
    target = out.shape[:ax] + ind.shape + out.shape[ax + 1:]
    return out.at[(slice(None),) * ax + (ind,)].add(jnp.broadcast_to(v, target))
'''

_SCATTER_CODE = '''
def _scatter_add(x, idx, v, axis):
    ax = axis % np.ndim(x)
    ind = np.asarray(idx).astype(np.intp)
    out = np.array(x, dtype=np.float64, copy=True)
    target = out.shape[:ax] + ind.shape + out.shape[ax + 1:]
    np.add.at(out, (slice(None),) * ax + (ind,), np.broadcast_to(v, target))
    return out
'''

register(OpDef(name="scatter_add", kernel=_scatter_add, shape=_scatter_shape,
               params=("x", "indices", "values"), attrs=(Attr("axis", "int", 0),),
               vjp=_scatter_vjp, jvp=_scatter_jvp, batch=_scatter_batch,
               export="_scatter_add({0}, {1}, {2}, {axis})", helpers=(_SCATTER_CODE,),
               jax=Jax("_scatter_add({0}, {1}, {2}, {axis})", (_SCATTER_JAX,)),
               doc="a copy of x with values added where take(x, indices, axis) reads; duplicate "
                   "indices add up (np.add.at, JAX's x.at[i].add)"))


# ── take_along_axis(x, idx, axis): np.take_along_axis ────────────────────

def _along_shape(shs, attrs, span, what="take_along_axis"):
    x, idx = shs[0], shs[1]
    if not _concrete(x, idx):
        return shapes.SymShape()
    if len(x) != len(idx) or x == ():
        raise BpShapeError(f"{what}: the indices must have the rank of x ({len(x)}), got shape "
                           f"{shapes.fmt(idx)}" if x != () else f"{what} needs a tensor of rank 1 "
                           f"or more, got a scalar", span)
    ax, = shapes.normalize_axes((attrs["axis"],), len(x), span)
    rest = shapes.broadcast(x[:ax] + (1,) + x[ax + 1:], idx[:ax] + (1,) + idx[ax + 1:], span=span,
                            what=what)
    return rest[:ax] + (idx[ax],) + rest[ax + 1:]


def _along_index(shape, ind, ax):
    """The full NumPy index of take_along_axis(x of `shape`, ind, ax), broadcast to the
    output's shape: which element of x each output element is."""
    out = np.broadcast_shapes(shape[:ax] + (1,) + shape[ax + 1:], ind.shape)
    out = out[:ax] + (ind.shape[ax],) + out[ax + 1:]
    key = []
    for d, n in enumerate(out):
        if d == ax:
            key.append(np.broadcast_to(ind, out))
        else:
            i = np.arange(n) if shape[d] != 1 else np.zeros(n, dtype=np.intp)
            key.append(np.broadcast_to(i.reshape((n,) + (1,) * (len(out) - d - 1)), out))
    return tuple(key)


def _take_along(x, idx, axis):
    ind = _whole(idx)
    ax = axis % x.ndim
    n = x.shape[ax]
    if ind.size and (ind.max() >= n or ind.min() < -n):
        bad = ind.max() if ind.max() >= n else ind.min()
        raise BpValueError(f"index {bad} is out of bounds for axis {ax} with size {n}")
    return x[_along_index(x.shape, ind, ax)]


def _along_vjp(ct, out, ins, attrs):
    x, idx = ins
    zero = apply("zeros_like", [x])
    return apply("scatter_add_along_axis", [zero, idx, ct], dict(attrs)), None


def _along_jvp(ts, out, ins, attrs):
    return None if ts[0] is None else apply("take_along_axis", [ts[0], ins[1]], dict(attrs))


def _along_batch(node, ins, m):
    (x, xb), (idx, ib) = ins
    if ib:
        return None
    idx = apply("reshape", [idx], {"shape": (1,) + idx.shape})
    return apply("take_along_axis", [x, idx], {"axis": node.attr("axis") % len(node.shape) + 1})


register(OpDef(name="take_along_axis", kernel=_take_along, shape=_along_shape,
               params=("x", "indices"), attrs=(Attr("axis", "int", required=True),),
               vjp=_along_vjp, jvp=_along_jvp, batch=_along_batch,
               export="_take_along_axis({0}, {1}, {axis})", helpers=(
                   "def _take_along_axis(x, idx, axis):\n"
                   "    return np.take_along_axis(x, np.asarray(idx).astype(np.intp), axis)\n",),
               doc="the elements of x at the whole-number indices along axis, the other axes "
                   "broadcast (np.take_along_axis)"))


def _scatter_along_shape(shs, attrs, span):
    x, idx, v = shs
    if _concrete(x, idx, v):
        target = _along_shape((x, idx), attrs, span, "scatter_add_along_axis")
        if not _fits(v, target):
            raise BpShapeError(f"scatter_add_along_axis: the values have shape {shapes.fmt(v)}, "
                               f"which does not broadcast to {shapes.fmt(target)}, the shape of "
                               f"take_along_axis(x, indices, axis)", span)
    return x


def _scatter_along(x, idx, v, axis):
    ind = _whole(idx)
    ax = axis % x.ndim
    key = _along_index(x.shape, ind, ax)
    out = np.array(x, dtype=np.float64, copy=True)
    np.add.at(out, key, np.broadcast_to(v, key[0].shape))
    return out


def _scatter_along_vjp(ct, out, ins, attrs):
    x, idx, v = ins
    return ct, None, unbroadcast(apply("take_along_axis", [ct, idx], dict(attrs)), v)


def _scatter_along_jvp(ts, out, ins, attrs):
    tx, _, tv = ts
    if tv is None:
        return tx
    base = tx if tx is not None else apply("zeros_like", [ins[0]])
    return apply("scatter_add_along_axis", [base, ins[1], tv], dict(attrs))


def _scatter_along_batch(node, ins, m):
    (x, xb), (idx, ib), (v, vb) = ins
    if ib:
        return None
    rank = len(node.shape)
    idx = apply("reshape", [idx], {"shape": (1,) + idx.shape})
    return apply("scatter_add_along_axis", [with_batch(x, xb, m), idx, lift(v, vb, rank, m)],
                 {"axis": node.attr("axis") % rank + 1})


_SCATTER_ALONG_CODE = '''
def _scatter_add_along_axis(x, idx, v, axis):
    ind = np.asarray(idx).astype(np.intp)
    ax = axis % np.ndim(x)
    shape = np.shape(x)
    out = np.broadcast_shapes(shape[:ax] + (1,) + shape[ax + 1:], ind.shape)
    out = out[:ax] + (ind.shape[ax],) + out[ax + 1:]
    key = []
    for d, n in enumerate(out):
        i = ind if d == ax else (np.arange(n) if shape[d] != 1 else np.zeros(n, dtype=np.intp))
        key.append(np.broadcast_to(i if d == ax else i.reshape((n,) + (1,) * (len(out) - d - 1)), out))
    result = np.array(x, dtype=np.float64, copy=True)
    np.add.at(result, tuple(key), np.broadcast_to(v, out))
    return result
'''
# JAX: the same with the write as x.at[key].add (jax.numpy arrays are immutable)
_SCATTER_ALONG_JAX = _SCATTER_ALONG_CODE.replace(
    "np.add.at(result, tuple(key), np.broadcast_to(v, out))\n    return result",
    "return jnp.asarray(result).at[tuple(key)].add(jnp.broadcast_to(v, out))")

register(OpDef(name="scatter_add_along_axis", kernel=_scatter_along, shape=_scatter_along_shape,
               params=("x", "indices", "values"), attrs=(Attr("axis", "int", required=True),),
               vjp=_scatter_along_vjp, jvp=_scatter_along_jvp, batch=_scatter_along_batch,
               export="_scatter_add_along_axis({0}, {1}, {2}, {axis})", helpers=(_SCATTER_ALONG_CODE,),
               jax=Jax("_scatter_add_along_axis({0}, {1}, {2}, {axis})", (_SCATTER_ALONG_JAX,)),
               doc="a copy of x with values added where take_along_axis(x, indices, axis) reads; "
                   "duplicates add up (PyTorch's x.scatter_add(axis, indices, values))"))


# ── stop_gradient(x) ─────────────────────────────────────────────────────

register(OpDef(name="stop_gradient", kernel=lambda x: np.array(x, dtype=np.float64, copy=True),
               shape=lambda shs, a, span: shs[0], differentiable=False,
               batch="never depends on a seed: its derivative is zero",
               export="np.array({0}, dtype=np.float64)",
               doc="x, with derivative 0: no gradient flows through it (jax.lax.stop_gradient)"))
