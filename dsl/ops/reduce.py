"""Reductions, each with optional axis= (an int or a tuple) and keepdims=."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpValueError
from . import Attr, OpDef, apply, const, register
from . import series as _series
from .batched import reduction as _batch_reduction
from .sym import broadcast_like, div, mul, op, sub, sum_

REDUCE_ATTRS = (Attr("axis", "axes", None), Attr("keepdims", "flag", False))


def reduce_shape(shs, attrs, span):
    s, axis, keep = shs[0], attrs.get("axis"), attrs.get("keepdims", False)
    if isinstance(s, shapes.SymShape):
        return () if axis is None and not keep else shapes.SymShape()
    axes = range(len(s)) if axis is None else shapes.normalize_axes(axis, len(s), span)
    if keep:
        return tuple(1 if i in axes else d for i, d in enumerate(s))
    return tuple(d for i, d in enumerate(s) if i not in axes)


def _logsumexp(x, axis=None, keepdims=False):
    # Shift by the max so exp never overflows; an all -inf slice stays -inf.
    # (The ufuncs' reduce rather than np.max/np.sum: the same results, less overhead.)
    x = np.asarray(x)
    m = np.maximum.reduce(x, axis=axis, keepdims=True) if x.size else np.zeros((1,) * x.ndim)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


# The ufuncs' reduce, not np.sum/np.mean/np.max: the same loops and results without
# the Python wrappers (2 µs a call on a small array).  For the plan compiler
# (dsl/evaluate.py): they cannot warn through Python's warnings, and the result is
# a new array.
def _sum(x, axis=None, keepdims=False):
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def _mean(x, axis=None, keepdims=False):
    x = np.asarray(x)
    total = np.add.reduce(x, axis=axis, keepdims=keepdims)
    return total / (x.size // total.size if total.size else 1)     # as np.mean divides


def _max(x, axis=None, keepdims=False):
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims)


def _min(x, axis=None, keepdims=False):
    return np.minimum.reduce(x, axis=axis, keepdims=keepdims)


def _prod(x, axis=None, keepdims=False):
    return np.multiply.reduce(x, axis=axis, keepdims=keepdims)


for _fn in (_sum, _mean, _max, _min, _prod, _logsumexp):
    _fn.bp_quiet = _fn.bp_fresh = True       # no warnings; a new array, never a view


def keep_axes(ct, attrs):
    """A reduction's result with its reduced axes put back as size 1."""
    axis, keep = attrs.get("axis"), attrs.get("keepdims", False)
    return ct if keep or axis is None else apply("expand_dims", [ct], {"axis": axis})


def back(ct, x, attrs):
    """The cotangent of a reduction spread back over its input's shape."""
    return broadcast_like(keep_axes(ct, attrs), x)


def count(x, out, attrs):
    """How many elements each result of the reduction came from."""
    if isinstance(x.shape, tuple) and isinstance(out.shape, tuple):
        return const(shapes.size(x.shape) / max(shapes.size(out.shape), 1))
    if attrs.get("axis") is None:                       # all of x: size(x), as written
        return apply("size_of", [x])
    return sum_(broadcast_like(const(1.0), x), attrs.get("axis"), attrs.get("keepdims", False))


def _share_of_ties(x, out, attrs):
    """1/k on each of the k elements equal to the max (or min), 0 elsewhere."""
    hit = op("equal", x, broadcast_like(keep_axes(out, attrs), x))
    return div(hit, broadcast_like(sum_(hit, attrs.get("axis"), True), x))


def reduce_export(fn: str):
    """The export of a reduction: `fn(x, axis=…, keepdims=…)`."""
    return lambda args, a: f"{fn}({args[0]}, axis={a['axis']!r}, keepdims={bool(a['keepdims'])})"


def reduction(name, kernel, doc, vjp, jvp, export, helpers=(), **more):
    """Register a reduction over axis= (an int or a tuple; None: all) with keepdims=; it
    batches by shifting its axes.  `export` is the NumPy function's name in the module."""
    return register(OpDef(name=name, kernel=kernel, shape=reduce_shape, attrs=REDUCE_ATTRS,
                          vjp=vjp, jvp=jvp, doc=doc, batch=_batch_reduction,
                          export=reduce_export(export), helpers=helpers, **more))


_reduction = reduction


def _reduce(t, attrs, name="sum"):
    return apply(name, [t], attrs)


_reduction("sum", _sum, "sum of the elements (over axis=)", export="np.sum",
           vjp=lambda ct, out, ins, a: (back(ct, ins[0], a),),
           jvp=lambda ts, out, ins, a: _reduce(ts[0], a))
_reduction("mean", _mean, "mean of the elements (over axis=)", export="np.mean",
           vjp=lambda ct, out, ins, a: (back(div(ct, count(ins[0], out, a)), ins[0], a),),
           jvp=lambda ts, out, ins, a: _reduce(ts[0], a, "mean"))
def _prod_of_others(x, out, attrs):
    """∂prod/∂xᵢ = the product of the other elements: prod/xᵢ where xᵢ ≠ 0; where
    xᵢ = 0, the product of the nonzero elements if xᵢ is the only zero, else 0."""
    zero = op("equal", x, const(0.0))
    nonzero = op("where", zero, const(1.0), x)
    keep = {"axis": attrs.get("axis"), "keepdims": True}
    others = mul(apply("prod", [nonzero], keep), op("equal", apply("sum", [zero], keep), const(1.0)))
    return op("where", zero, broadcast_like(others, x), div(back(out, x, attrs), x))


_reduction("prod", _prod, "product of the elements (over axis=)", export="np.prod",
           vjp=lambda ct, out, ins, a: (mul(back(ct, ins[0], a), _prod_of_others(ins[0], out, a)),),
           jvp=lambda ts, out, ins, a: _reduce(mul(ts[0], _prod_of_others(ins[0], out, a)), a))
_reduction("max", _max, "largest element (over axis=); tied elements share the gradient",
           export="np.max",
           vjp=lambda ct, out, ins, a: (mul(back(ct, ins[0], a), _share_of_ties(ins[0], out, a)),),
           jvp=lambda ts, out, ins, a: _reduce(mul(ts[0], _share_of_ties(ins[0], out, a)), a))
_reduction("min", _min, "smallest element (over axis=); tied elements share the gradient",
           export="np.min",
           vjp=lambda ct, out, ins, a: (mul(back(ct, ins[0], a), _share_of_ties(ins[0], out, a)),),
           jvp=lambda ts, out, ins, a: _reduce(mul(ts[0], _share_of_ties(ins[0], out, a)), a))


def _softmax_weights(x, out, attrs):
    """exp(x - logsumexp(x)).  Over one axis (or a whole tensor) it is a softmax node,
    which a softmax the program computes shares and whose derivatives are stable
    where an entry is near 1; over some of several axes, exp(x - out)."""
    axis = attrs.get("axis")
    if isinstance(x.shape, tuple) and x.shape:
        rank = len(x.shape)
        axes = set(range(rank)) if axis is None else {a % rank for a in axis}
        if len(axes) == 1:
            return op("softmax", x, axis=axes.pop())
        if len(axes) == rank:
            flat = op("softmax", apply("reshape", [x], {"shape": (-1,)}), axis=0)
            return apply("reshape", [flat], {"shape": x.shape})
    return op("exp", sub(x, broadcast_like(keep_axes(out, attrs), x)))


_reduction("logsumexp", _logsumexp, "log(sum(exp(x))) (over axis=), computed stably",
           export="_logsumexp", helpers=(_logsumexp,), taylor=_series.logsumexp,
           vjp=lambda ct, out, ins, a: (mul(back(ct, ins[0], a), _softmax_weights(ins[0], out, a)),),
           jvp=lambda ts, out, ins, a: _reduce(mul(ts[0], _softmax_weights(ins[0], out, a)), a))


# ── var and std (with ddof=), NumPy's np.var and np.std ──────────────────

STAT_ATTRS = (Attr("axis", "axes", None), Attr("ddof", "int", 0), Attr("keepdims", "flag", False))


def _spread(x, out, attrs):
    """(x - mean(x)) / (N - ddof), spread over x's shape: half of var's gradient."""
    keep = {"axis": attrs.get("axis"), "keepdims": True}
    dev = sub(x, broadcast_like(apply("mean", [x], keep), x))
    return div(dev, sub(count(x, out, attrs), const(float(attrs.get("ddof", 0)))))


def _stat_export(fn: str):
    return lambda args, a: (f"np.{fn}({args[0]}, axis={a['axis']!r}, ddof={a['ddof']}, "
                            f"keepdims={bool(a['keepdims'])})")


def _var(x, axis=None, ddof=0, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std(x, axis=None, ddof=0, keepdims=False):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


register(OpDef(name="var", kernel=_var, shape=reduce_shape, attrs=STAT_ATTRS, taylor=_series.var,
               vjp=lambda ct, out, ins, a: (mul(back(mul(const(2.0), ct), ins[0], a),
                                                _spread(ins[0], out, a)),),
               jvp=lambda ts, out, ins, a: mul(const(2.0), sum_(mul(ts[0], _spread(ins[0], out, a)),
                                                                a.get("axis"), a.get("keepdims", False))),
               batch=_batch_reduction, export=_stat_export("var"),
               doc="variance: mean((x - mean(x))^2) with N - ddof in the denominator (over axis=)"))
# std = sqrt(var): its derivative is var's over 2·std, nan where std is 0 (as JAX gives)
register(OpDef(name="std", kernel=_std, shape=reduce_shape, attrs=STAT_ATTRS, taylor=_series.std,
               vjp=lambda ct, out, ins, a: (mul(back(div(ct, out), ins[0], a),
                                                _spread(ins[0], out, a)),),
               jvp=lambda ts, out, ins, a: div(sum_(mul(ts[0], _spread(ins[0], out, a)),
                                                    a.get("axis"), a.get("keepdims", False)), out),
               batch=_batch_reduction, export=_stat_export("std"),
               doc="standard deviation sqrt(var(x, ddof=)) (over axis=); its derivative is nan "
                   "where it is 0"))


# ── any, all, argmax, argmin: no gradient ────────────────────────────────

def _any(x, axis=None, keepdims=False):
    return np.any(x != 0, axis=axis, keepdims=keepdims).astype(np.float64)


def _all(x, axis=None, keepdims=False):
    return np.all(x != 0, axis=axis, keepdims=keepdims).astype(np.float64)


for _name, _fn, _doc in (("any", _any, "1 if any element is nonzero (nan counts), else 0"),
                         ("all", _all, "1 if every element is nonzero (nan counts), else 0")):
    register(OpDef(name=_name, kernel=_fn, shape=reduce_shape, attrs=REDUCE_ATTRS,
                   differentiable=False, batch=_batch_reduction,
                   export=(lambda fn: lambda args, a: (
                       f"np.{fn}({args[0]} != 0, axis={a['axis']!r}, "
                       f"keepdims={bool(a['keepdims'])}).astype(np.float64)"))(_name),
                   doc=_doc + " (over axis=); no gradient"))


def _arg_shape(shs, attrs, span):
    s, axis, keep = shs[0], attrs.get("axis"), attrs.get("keepdims", False)
    if isinstance(s, shapes.SymShape):
        return () if axis is None and not keep else shapes.SymShape()
    if axis is None:
        return (1,) * len(s) if keep else ()
    ax, = shapes.normalize_axes((axis,), len(s), span)
    if s[ax] == 0:
        raise BpValueError("argmax and argmin of an empty axis have no answer", span)
    return tuple(1 if i == ax else d for i, d in enumerate(s)) if keep else s[:ax] + s[ax + 1:]


def _argmax(x, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.float64)


def _argmin(x, axis=None, keepdims=False):
    return np.argmin(x, axis=axis, keepdims=keepdims).astype(np.float64)


ARG_ATTRS = (Attr("axis", "int", None), Attr("keepdims", "flag", False))
for _name, _fn, _doc in (("argmax", _argmax, "the index of the largest element"),
                         ("argmin", _argmin, "the index of the smallest element")):
    register(OpDef(name=_name, kernel=_fn, shape=_arg_shape, attrs=ARG_ATTRS, differentiable=False,
                   batch="not differentiable: no derivative carries a seed into it",
                   export=(lambda fn: lambda args, a: (
                       f"np.{fn}({args[0]}, axis={a['axis']!r}, "
                       f"keepdims={bool(a['keepdims'])}).astype(np.float64)"))(_name),
                   doc=_doc + " (along axis=; of the flattened x without), as a number; the "
                              "first one at a tie or nan (NumPy); no gradient"))
