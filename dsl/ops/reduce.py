"""Reductions, each with optional axis= (an int or a tuple) and keepdims=."""
from __future__ import annotations

import numpy as np

from .. import shapes
from . import Attr, OpDef, register

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
    m = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros((1,) * x.ndim)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None else None)


def _reduction(name, kernel, doc, differentiable=True):
    register(OpDef(name=name, kernel=kernel, shape=reduce_shape, attrs=REDUCE_ATTRS,
                   differentiable=differentiable, doc=doc))


_reduction("sum", np.sum, "sum of the elements (over axis=)")
_reduction("mean", np.mean, "mean of the elements (over axis=)")
_reduction("prod", np.prod, "product of the elements (over axis=)")
_reduction("max", np.max, "largest element (over axis=); tied elements share the gradient")
_reduction("min", np.min, "smallest element (over axis=); tied elements share the gradient")
_reduction("logsumexp", _logsumexp, "log(sum(exp(x))) (over axis=), computed stably")
