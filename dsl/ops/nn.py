"""Neural-network ops: softmax, log_softmax, cross_entropy, one_hot."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, OpDef, apply, const, register
from .sym import broadcast_like, div, mul, neg, op, sub, sum_


def _softmax_vjp(ct, out, ins, attrs):
    # s' = s·(ct - Σ ct·s)
    ax = attrs.get("axis", -1)
    return (mul(out, sub(ct, broadcast_like(sum_(mul(ct, out), (ax,), True), out))),)


def _log_softmax_vjp(ct, out, ins, attrs):
    # (x - lse)' : ct - softmax·Σct
    ax = attrs.get("axis", -1)
    return (sub(ct, mul(op("exp", out), broadcast_like(sum_(ct, (ax,), True), out))),)


def _log_softmax_jvp(ts, out, ins, attrs):
    ax = attrs.get("axis", -1)
    t = ts[0]
    return sub(t, broadcast_like(sum_(mul(op("exp", out), t), (ax,), True), out))


def _batch_size(z, attrs):
    """The number of rows cross_entropy averages over."""
    if isinstance(z.shape, tuple):
        ax = attrs.get("axis", -1) % len(z.shape)
        return const(shapes.size(z.shape) / z.shape[ax])
    rows = op("sum", z, axis=(attrs.get("axis", -1),), keepdims=False)
    return sum_(broadcast_like(const(1.0), rows))


def _cross_entropy_vjp(ct, out, ins, attrs):
    # ∂/∂z of -Σ y·log_softmax(z) = softmax(z)·Σy - y, averaged over the batch.
    z, y = ins
    ax = attrs.get("axis", -1)
    scale = div(ct, _batch_size(z, attrs))
    sy = broadcast_like(sum_(y, (ax,), True), z)
    gz = mul(scale, sub(mul(op("softmax", z, axis=ax), sy), y))
    gy = neg(mul(scale, op("log_softmax", z, axis=ax)))
    return gz, gy


def _cross_entropy_jvp(ts, out, ins, attrs):
    gz, gy = _cross_entropy_vjp(const(1.0), out, ins, attrs)
    total = None
    for t, g in zip(ts, (gz, gy)):
        if t is not None:
            term = sum_(mul(t, g))
            total = term if total is None else op("add", total, term)
    return total


def _axis_shape(shs, attrs, span):
    s = shs[0]
    if isinstance(s, tuple):
        if len(s) == 0:
            raise BpShapeError(f"{attrs.get('_name', 'softmax')} needs a tensor of rank at least 1, "
                               f"got a scalar", span)
        shapes.normalize_axes((attrs.get("axis", -1),), len(s), span)
    return s


def _log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _softmax(x, axis=-1):
    return np.exp(_log_softmax(x, axis))


def _cross_entropy_shape(shs, attrs, span):
    a, b = shs
    for s in shs:
        if isinstance(s, tuple) and len(s) == 0:
            raise BpShapeError("cross_entropy needs logits and targets of rank at least 1, "
                               "got a scalar", span)
    if isinstance(a, tuple) and isinstance(b, tuple):
        if a != b:
            raise BpShapeError(f"cross_entropy of logits {shapes.fmt(a)} and targets "
                               f"{shapes.fmt(b)}: shapes differ", span)
        _axis_shape([a], attrs, span)
    return ()


def _cross_entropy(logits, targets, axis=-1):
    # Mean over the batch (every axis but `axis`) of -sum(targets * log_softmax).
    per = -np.sum(targets * _log_softmax(logits, axis), axis=axis)
    return np.mean(per) if per.ndim else per


def _one_hot_shape(shs, attrs, span):
    n = attrs["n"]
    if n < 0:
        raise BpValueError(f"one_hot needs a non-negative number of classes, got {n}", span)
    s = shs[0]
    return s + (n,) if isinstance(s, tuple) else shapes.SymShape()


def _one_hot(labels, n):
    if np.any(labels != np.round(labels)) or np.any((labels < 0) | (labels >= n)):
        raise BpValueError(f"one_hot labels must be whole numbers from 0 to {n - 1}")
    return np.eye(n)[labels.astype(np.int64)]


AXIS = (Attr("axis", "int", -1),)
register(OpDef(name="softmax", kernel=_softmax, shape=_axis_shape, attrs=AXIS,
               vjp=_softmax_vjp,
               jvp=lambda ts, out, ins, a: _softmax_vjp(ts[0], out, ins, a)[0],
               doc="exp(x) / sum(exp(x)) along axis=, computed stably"))
register(OpDef(name="log_softmax", kernel=_log_softmax, shape=_axis_shape, attrs=AXIS,
               vjp=_log_softmax_vjp, jvp=_log_softmax_jvp, doc="x - logsumexp(x) along axis=, computed stably"))
register(OpDef(name="cross_entropy", kernel=_cross_entropy, shape=_cross_entropy_shape,
               params=("logits", "targets"), attrs=AXIS,
               vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp, doc="mean over the batch of -sum(targets * log_softmax(logits))"))
register(OpDef(name="one_hot", kernel=_one_hot, shape=_one_hot_shape, params=("labels",),
               attrs=(Attr("n", "int", required=True),), differentiable=False,
               doc="rows of the identity picked by whole-number labels"))
