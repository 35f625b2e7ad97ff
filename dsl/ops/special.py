"""Special functions: lgamma and the digamma family (polygamma of any order).

lgamma' = digamma, and digamma(x, n)' = digamma(x, n + 1), so the family is
closed under differentiation and every order of derivative is exact.  The
kernels use only NumPy and `math`: ψ⁽ⁿ⁾ by the recurrence
ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x + 1) − (−1)ⁿ n!/xⁿ⁺¹ up to x ≥ 20, then the asymptotic
(Bernoulli) series; negative x by the reflection formula.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import BpValueError
from . import Attr, OpDef, register
from .batched import elementwise as _batch
from .elementwise import same_shape
from .sym import mul, op

# B₂, B₄, …, B₂₀: the asymptotic series' coefficients.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798, -174611 / 330)
_SHIFT = 20.0          # from here on, ten terms of the series are exact to rounding


def _lgamma_one(x: float) -> float:
    try:
        return math.lgamma(x)
    except ValueError:                  # a pole (0, −1, −2, …): log|Γ| is +inf there
        return math.inf


_lgamma_each = np.frompyfunc(_lgamma_one, 1, 1)


def _lgamma(x):
    return np.asarray(_lgamma_each(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _asymptotic(x, n: int):
    """ψ⁽ⁿ⁾(x) for x ≥ 20 from the Bernoulli series."""
    if n == 0:
        out = np.log(x) - 0.5 / x
        for k, b in enumerate(_BERNOULLI, start=1):
            out = out - b / (2 * k * x ** (2 * k))
        return out
    total = math.factorial(n - 1) / x ** n + math.factorial(n) / (2 * x ** (n + 1))
    for k, b in enumerate(_BERNOULLI, start=1):
        total = total + b * math.factorial(2 * k + n - 1) / (math.factorial(2 * k) * x ** (2 * k + n))
    return (-1) ** (n + 1) * total


def _positive(x, n: int):
    """ψ⁽ⁿ⁾ on x > 0: shift up to x ≥ 20 by the recurrence, then the series."""
    x = x.copy()
    acc = np.zeros_like(x)
    step = (-1) ** n * math.factorial(n)
    while True:
        low = x < _SHIFT
        if not low.any():
            break
        acc = acc - np.where(low, step / np.where(low, x, 1.0) ** (n + 1), 0.0)
        x = np.where(low, x + 1.0, x)
    return _asymptotic(x, n) + acc


def _cot_derivative(c, n: int):
    """dⁿ/dxⁿ cot(πx) as a polynomial in c = cot(πx): D₀ = c, D′ = dD/dc · (−π)(1 + c²)."""
    poly = np.polynomial.Polynomial([0.0, 1.0])
    for _ in range(n):
        poly = poly.deriv() * np.polynomial.Polynomial([-math.pi, 0.0, -math.pi])
    return poly(c)


def _digamma(x, n=0):
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    pole = finite & (x <= 0) & (x == np.floor(x))
    pos = finite & (x > 0)
    neg = finite & (x < 0) & ~pole
    if pos.any():
        out[pos] = _positive(x[pos], n)
    if neg.any():
        # Reflection: ψ⁽ⁿ⁾(x) = (−1)ⁿ ψ⁽ⁿ⁾(1 − x) − π dⁿ/dxⁿ cot(πx).
        xn = x[neg]
        cot = 1.0 / np.tan(math.pi * xn)
        out[neg] = (-1) ** n * _positive(1.0 - xn, n) - math.pi * _cot_derivative(cot, n)
    out[x == np.inf] = np.inf if n == 0 else 0.0
    return out


# What export writes for them: the kernels' own source, so the exported functions
# compute exactly what bp does.
_LGAMMA_CODE = ("import math", _lgamma_one, "_lgamma_each = np.frompyfunc(_lgamma_one, 1, 1)\n",
                _lgamma)
_DIGAMMA_CODE = ("import math", f"_BERNOULLI = {_BERNOULLI!r}", f"_SHIFT = {_SHIFT!r}\n",
                 _asymptotic, _positive, _cot_derivative, _digamma)


def _digamma_order(shs, attrs, span):
    if attrs.get("n", 0) < 0:
        raise BpValueError(f"digamma: the order n must be at least 0, got {attrs['n']}", span)
    return same_shape(shs, attrs, span)


def _next_order(x, attrs):
    return op("digamma", x, n=attrs.get("n", 0) + 1)


register(OpDef(name="lgamma", kernel=_lgamma, shape=same_shape,
               vjp=lambda ct, out, ins, a: (mul(ct, op("digamma", ins[0], n=0)),),
               jvp=lambda ts, out, ins, a: mul(ts[0], op("digamma", ins[0], n=0)),
               batch=_batch, export="_lgamma({0})", helpers=_LGAMMA_CODE,
               doc="log|Γ(x)|, the log-gamma function; +inf at the poles 0, -1, -2, …"))
register(OpDef(name="digamma", kernel=_digamma, shape=_digamma_order,
               attrs=(Attr("n", "int", 0),),
               vjp=lambda ct, out, ins, a: (mul(ct, _next_order(ins[0], a)),),
               jvp=lambda ts, out, ins, a: mul(ts[0], _next_order(ins[0], a)),
               batch=_batch, export="_digamma({0}, {n})", helpers=_DIGAMMA_CODE,
               doc="ψ(x) = lgamma'(x); with n=k its k-th derivative ψ⁽ᵏ⁾ (polygamma); "
                   "nan at the poles"))
