"""Neural-network ops: softmax, log_softmax, cross_entropy, one_hot, gelu."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, Jax, OpDef, apply, const, register
from . import series as _series
from .batched import FALLBACK
from .elementwise import unary
from .special import _ERF_CODE, _erfc
from .sym import add, broadcast_like, c, div, mul, neg, op, sub, sum_, where


# Where one entry of a softmax is within ~1e-13 of 1, `1 - p` computed by subtraction
# keeps 2-3 digits.  The rules below never form it: an entry above 1/2 (at most one per
# slice: the *dominant* one) is handled through the sum of the others.

def _along(x, ax):
    """Σ x along ax, spread back over x's shape."""
    return broadcast_like(sum_(x, (ax,), True), x)


def _dominant(s):
    return op("greater", s, const(0.5))


def _centred(v, s, ax):
    """v - Σ v·s along ax, stably.  It does not change when v shifts by a constant
    along ax (Σ s = 1); shifted by its value at the dominant entry, that entry's term
    drops out exactly and 1 - s appears only as the sum of the other entries."""
    v = sub(v, _along(mul(v, _dominant(s)), ax))
    return sub(v, _along(mul(v, s), ax))


def _zero_sum(g, s, ax):
    """g, whose entries sum to 0 along ax, with its dominant entry recomputed as minus
    the sum of the others (where computing it directly would cancel)."""
    dom = _dominant(s)
    rest = where(dom, const(0.0), g)
    return where(dom, neg(_along(rest, ax)), rest)


def _softmax_vjp(ct, out, ins, attrs):
    # s' = s·(ct - Σ ct·s)
    return (mul(out, _centred(ct, out, attrs.get("axis", -1))),)


def _softmax_jvp(ts, out, ins, attrs):
    return mul(out, _centred(ts[0], out, attrs.get("axis", -1)))


def _log_softmax_vjp(ct, out, ins, attrs):
    # (x - lse)' : ct - softmax·Σct
    ax = attrs.get("axis", -1)
    s = op("softmax", ins[0], axis=ax)
    return (_zero_sum(sub(ct, mul(s, _along(ct, ax))), s, ax),)


def _log_softmax_jvp(ts, out, ins, attrs):
    ax = attrs.get("axis", -1)
    return _centred(ts[0], op("softmax", ins[0], axis=ax), ax)


def _batch_size(z, attrs):
    """The number of rows cross_entropy averages over."""
    if isinstance(z.shape, tuple):
        ax = attrs.get("axis", -1) % len(z.shape)
        return const(shapes.size(z.shape) / z.shape[ax])
    rows = op("sum", z, axis=(attrs.get("axis", -1),), keepdims=False)
    return sum_(broadcast_like(const(1.0), rows))


def _cross_entropy_vjp(ct, out, ins, attrs):
    # ∂/∂z of -Σ y·log_softmax(z) = softmax(z)·Σy - y (one node), averaged over the batch.
    z, y = ins
    ax = attrs.get("axis", -1)
    scale = div(ct, _batch_size(z, attrs))
    gz = mul(scale, op("cross_entropy_back", z, y, axis=ax))
    gy = neg(mul(scale, op("log_softmax", z, axis=ax)))
    return gz, gy


def _back_vjp(ct, out, ins, attrs):
    # g = s·Σy - y: ∂g/∂z is Σy times softmax's Jacobian; ∂gᵢ/∂yⱼ = sᵢ - δᵢⱼ.
    z, y = ins
    ax = attrs.get("axis", -1)
    s = op("softmax", z, axis=ax)
    return (mul(_along(y, ax), mul(s, _centred(ct, s, ax))),
            sub(_along(mul(ct, s), ax), ct))


def _back_jvp(ts, out, ins, attrs):
    z, y = ins
    ax = attrs.get("axis", -1)
    s = op("softmax", z, axis=ax)
    tz = None if ts[0] is None else mul(_along(y, ax), mul(s, _centred(ts[0], s, ax)))
    ty = None if ts[1] is None else sub(mul(s, _along(ts[1], ax)), ts[1])
    return tz if ty is None else ty if tz is None else op("add", tz, ty)


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


def _shifted_exp(x, axis):
    """x - max(x) and its exp, the max taken as 0 where it is not finite.
    (Through the ufuncs: np.max's Python wrapper costs more than the work on
    small arrays.)"""
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    finite = np.isfinite(m)
    if not finite.all():
        m = np.where(finite, m, 0.0)
    z = np.subtract(x, m)
    return z, np.exp(z)


def _log_softmax(x, axis=-1):
    # x - max - log(1 + r), r the sum of exp over the entries other than the largest:
    # log1p keeps the largest entry's value (-r, for small r) to full precision.
    if x.shape[axis] == 0:
        return np.array(x, dtype=np.float64)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    if np.isfinite(m).all():
        z = np.subtract(x, m)
        top = z == 0                               # the largest entries (ties too)
        e = np.where(top, 0.0, np.exp(z))
        r = np.add.reduce(e, axis=axis, keepdims=True) + (np.add.reduce(top, axis=axis,
                                                                         keepdims=True) - 1)
        return z - np.log1p(r)
    # A slice whose max is not finite (all -inf, or an inf or nan entry).
    z, e = _shifted_exp(x, axis)
    top = np.argmax(x, axis=axis, keepdims=True)
    e_top = np.take_along_axis(e, top, axis)
    np.put_along_axis(e, top, 0.0, axis)
    r = np.add.reduce(e, axis=axis, keepdims=True)
    return z - np.where(e_top == 1.0, np.log1p(r), np.log(e_top + r))


def _softmax(x, axis=-1):
    if x.shape[axis] == 0:
        return np.array(x, dtype=np.float64)
    _, e = _shifted_exp(x, axis)
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


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


def _back_shape(shs, attrs, span):
    a, b = shs
    if isinstance(a, tuple) and isinstance(b, tuple) and a != b:
        raise BpShapeError(f"cross_entropy of logits {shapes.fmt(a)} and targets "
                           f"{shapes.fmt(b)}: shapes differ", span)
    return _axis_shape([a], attrs, span)


def _cross_entropy_back(logits, targets, axis=-1):
    """softmax(logits)·Σtargets - targets; the entries sum to 0 along axis, and the
    one at a softmax entry above ½ (where s·Σy - y would cancel) is minus the sum
    of the others."""
    s = _softmax(logits, axis)
    g = s * np.add.reduce(targets, axis=axis, keepdims=True) - targets
    top = s > 0.5
    if top.any():
        rest = np.where(top, 0.0, g)
        g = np.where(top, -np.add.reduce(rest, axis=axis, keepdims=True), rest)
    return g


_cross_entropy_back.bp_quiet = _cross_entropy_back.bp_fresh = True   # for dsl/evaluate.py


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


# The JAX forms (dsl/codegen.py): the same numbers without the kernels' Python-side tests
# of values (one formula per slice, chosen by jnp.where) and in-place writes.
_JAX_SOFTMAX = ('''
def _shifted_exp(x, axis):
    m = jnp.max(x, axis=axis, keepdims=True)
    z = x - jnp.where(jnp.isfinite(m), m, 0.0)
    return z, jnp.exp(z)
''', '''
def _softmax(x, axis=-1):
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.shape[axis] == 0:
        return x
    _, e = _shifted_exp(x, axis)
    return e / jnp.sum(e, axis=axis, keepdims=True)
''', '''
def _log_softmax(x, axis=-1):
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.shape[axis] == 0:
        return x
    z, e = _shifted_exp(x, axis)
    top = jnp.argmax(x, axis=axis, keepdims=True)
    at = jnp.arange(x.shape[axis]).reshape([-1 if d == axis % x.ndim else 1
                                            for d in range(x.ndim)]) == top
    e_top = jnp.take_along_axis(e, top, axis)
    r = jnp.sum(jnp.where(at, 0.0, e), axis=axis, keepdims=True)
    return z - jnp.where(e_top == 1.0, jnp.log1p(r), jnp.log(e_top + r))
''', '''
def _cross_entropy(logits, targets, axis=-1):
    per = -jnp.sum(targets * _log_softmax(logits, axis), axis=axis)
    return jnp.mean(per) if per.ndim else per
''', '''
def _cross_entropy_back(logits, targets, axis=-1):
    s = _softmax(logits, axis)
    g = s * jnp.sum(targets, axis=axis, keepdims=True) - targets
    top = s > 0.5
    rest = jnp.where(top, 0.0, g)
    return jnp.where(top, -jnp.sum(rest, axis=axis, keepdims=True), rest)
''')


def _jax(code, *parts):
    return Jax(code, tuple(_JAX_SOFTMAX[i] for i in parts))


AXIS = (Attr("axis", "int", -1),)
register(OpDef(name="softmax", kernel=_softmax, shape=_axis_shape, attrs=AXIS,
               vjp=_softmax_vjp, jvp=_softmax_jvp, batch=FALLBACK, taylor=_series.softmax,
               export="_softmax({0}, {axis})", helpers=(_shifted_exp, _softmax),
               jax=_jax("_softmax({0}, {axis})", 0, 1),
               doc="exp(x) / sum(exp(x)) along axis=, computed stably"))
register(OpDef(name="log_softmax", kernel=_log_softmax, shape=_axis_shape, attrs=AXIS,
               vjp=_log_softmax_vjp, jvp=_log_softmax_jvp, batch=FALLBACK, taylor=_series.log_softmax,
               export="_log_softmax({0}, {axis})", helpers=(_shifted_exp, _log_softmax),
               jax=_jax("_log_softmax({0}, {axis})", 0, 2), doc="x - logsumexp(x) along axis=, computed stably"))
register(OpDef(name="cross_entropy", kernel=_cross_entropy, shape=_cross_entropy_shape,
               params=("logits", "targets"), attrs=AXIS,
               vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp, batch=FALLBACK,
               taylor=_series.cross_entropy,
               export="_cross_entropy({0}, {1}, {axis})",
               helpers=(_shifted_exp, _log_softmax, _cross_entropy),
               jax=_jax("_cross_entropy({0}, {1}, {axis})", 0, 2, 3), doc="mean over the batch of -sum(targets * log_softmax(logits))"))
register(OpDef(name="cross_entropy_back", kernel=_cross_entropy_back, shape=_back_shape,
               params=("logits", "targets"), attrs=AXIS, builtin=False,
               vjp=_back_vjp, jvp=_back_jvp, batch=FALLBACK,
               export="_cross_entropy_back({0}, {1}, {axis})",
               helpers=(_shifted_exp, _softmax, _cross_entropy_back),
               jax=_jax("_cross_entropy_back({0}, {1}, {axis})", 0, 1, 4),
               doc="softmax(logits) * sum(targets) - targets along axis=, computed stably: "
                   "cross_entropy's gradient, one node"))
register(OpDef(name="one_hot", kernel=_one_hot, shape=_one_hot_shape, params=("labels",),
               attrs=(Attr("n", "int", required=True),), differentiable=False,
               batch="not differentiable: no derivative carries a seed into it",
               export="np.eye({n})[np.asarray({0}).astype(np.intp)]",
               doc="rows of the identity picked by whole-number labels"))


# gelu, the exact form: x Φ(x) = x/2 · erfc(-x/√2) (torch.nn.functional.gelu's default,
# jax.nn.gelu(approximate=False)); erfc keeps it accurate far into the negative tail.
_SQRT_HALF = 0.7071067811865476                 # 1/√2
_INV_SQRT_2PI = 0.3989422804014327              # 1/√(2π)


def _gelu(x):
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * _erfc(-x * _SQRT_HALF)


def _gelu_d(x, out):
    # gelu' = Φ(x) + x φ(x)
    phi = mul(c(_INV_SQRT_2PI), op("exp", mul(c(-0.5), mul(x, x))))
    return add(mul(c(0.5), op("erfc", mul(c(-_SQRT_HALF), x))), mul(x, phi))


unary("gelu", _gelu, "x Φ(x) = x/2 · erfc(-x/√2), the exact (erf) form", "_gelu({0})",
      d=_gelu_d, taylor=_series.gelu, helpers=_ERF_CODE + (_erfc, f"_SQRT_HALF = {_SQRT_HALF!r}", _gelu),
      jax=Jax("0.5 * {0} * jax.scipy.special.erfc({0} * -0.7071067811865476)"))
