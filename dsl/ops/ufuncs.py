"""More of NumPy's elementwise functions, each as NumPy defines it (names, argument
order, edge values): atan2 hypot asinh acosh atanh ceil mod log2 log10 exp2 cbrt
logaddexp square reciprocal nan_to_num isnan isfinite.

Where a derivative is undefined the rule gives what JAX gives: atan2 at (0, 0) is
nan (0/0), hypot at (0, 0) is 0, cbrt at 0 is inf; mod(a, b) is a - b·floor(a/b)
with ∂/∂b = -floor(a/b); nan_to_num passes the gradient where x is finite, 0 where
it replaced a value.
"""
from __future__ import annotations

import math

import numpy as np

from . import Attr, Infix
from . import series as _series
from .elementwise import _bt, _flag, binary, unary
from .sym import add, c, div, mul, neg, op, sub, unbroadcast, where


def _binary_rule(da, db):
    """VJP and JVP of an op of two broadcasting tensors from its partial derivatives
    da(a, b, out) and db(a, b, out) as graph nodes."""
    def vjp(ct, out, ins, attrs):
        a, b = ins
        return unbroadcast(mul(ct, da(a, b, out)), a), unbroadcast(mul(ct, db(a, b, out)), b)

    def jvp(ts, out, ins, attrs):
        a, b = ins
        ta = None if ts[0] is None else mul(ts[0], da(a, b, out))
        tb = None if ts[1] is None else mul(ts[1], db(a, b, out))
        return _bt(add(ta, tb), out)
    return vjp, jvp


# ── of one tensor ────────────────────────────────────────────────────────

unary("asinh", np.arcsinh, "inverse hyperbolic sine", "np.arcsinh({0})",
      taylor=_series.asinh, d=lambda x, out: div(c(1), op("sqrt", add(mul(x, x), c(1)))))
unary("acosh", np.arccosh, "inverse hyperbolic cosine (x ≥ 1; nan below)", "np.arccosh({0})",
      taylor=_series.acosh, d=lambda x, out: div(c(1), op("sqrt", sub(mul(x, x), c(1)))))
unary("atanh", np.arctanh, "inverse hyperbolic tangent (|x| < 1; ±inf at ±1)", "np.arctanh({0})",
      taylor=_series.atanh, d=lambda x, out: div(c(1), sub(c(1), mul(x, x))))
unary("ceil", np.ceil, "smallest whole number ≥ x; derivative 0", "np.ceil({0})")
unary("log2", np.log2, "base-2 logarithm", "np.log2({0})",
      taylor=_series.log2, d=lambda x, out: div(c(1 / math.log(2)), x))
unary("log10", np.log10, "base-10 logarithm", "np.log10({0})",
      taylor=_series.log10, d=lambda x, out: div(c(1 / math.log(10)), x))
unary("exp2", np.exp2, "2^x", "np.exp2({0})",
      taylor=_series.exp2, d=lambda x, out: mul(c(math.log(2)), out))
unary("cbrt", np.cbrt, "cube root, real for negative x; cbrt'(0) = inf", "np.cbrt({0})",
      taylor=_series.cbrt, d=lambda x, out: div(c(1 / 3), mul(out, out)))
unary("square", np.square, "x^2", "np.square({0})",
      taylor=_series.square_, d=lambda x, out: mul(c(2), x))
unary("reciprocal", np.reciprocal, "1/x", "np.reciprocal({0})",
      taylor=_series.reciprocal, d=lambda x, out: neg(mul(out, out)))
unary("isnan", _flag(np.isnan), "1 where x is nan, else 0", "np.isnan({0}).astype(np.float64)")
unary("isfinite", _flag(np.isfinite), "1 where x is neither inf nor nan, else 0",
      "np.isfinite({0}).astype(np.float64)")


def _number(v) -> str:
    """A float as module code that reads back to it (inf and nan by name)."""
    if v is None:
        return "None"
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "(-np.inf)"
    return repr(float(v))


def _nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


unary("nan_to_num", _nan_to_num,
      "nan → nan=, inf → posinf=, -inf → neginf= (NumPy's defaults: 0 and the largest "
      "finite numbers); gradient 1 where x is finite, else 0",
      lambda args, a: (f"np.nan_to_num({args[0]}, nan={_number(a['nan'])}, "
                       f"posinf={_number(a['posinf'])}, neginf={_number(a['neginf'])})"),
      d=lambda x, out: op("isfinite", x),
      attrs=(Attr("nan", "float", 0.0), Attr("posinf", "float", None),
             Attr("neginf", "float", None)))


# ── of two tensors ───────────────────────────────────────────────────────

def _sum_of_squares(a, b):
    return add(mul(a, a), mul(b, b))


_vjp, _jvp = _binary_rule(lambda a, b, out: div(b, _sum_of_squares(a, b)),
                          lambda a, b, out: neg(div(a, _sum_of_squares(a, b))))
binary("atan2", np.arctan2, "the angle of the point (x, y) from the x axis: atan2(y, x), "
       "NumPy's arctan2; the derivative at (0, 0) is nan", "np.arctan2({0}, {1})",
       vjp=_vjp, jvp=_jvp, builtin=True, params=("y", "x"), taylor=_series.atan2)


def _hypot_part(a, out):
    # a / hypot, and 0 at (0, 0) (JAX's value there)
    return where(op("equal", out, c(0)), c(0), div(a, where(op("equal", out, c(0)), c(1), out)))


_vjp, _jvp = _binary_rule(lambda a, b, out: _hypot_part(a, out),
                          lambda a, b, out: _hypot_part(b, out))
binary("hypot", np.hypot, "sqrt(a^2 + b^2) without overflow; derivative 0 at (0, 0)",
       "np.hypot({0}, {1})", vjp=_vjp, jvp=_jvp, builtin=True, taylor=_series.hypot)


# mod: NumPy's np.mod (remainder): the result has the sign of b; a % b in bp.
_vjp, _jvp = _binary_rule(lambda a, b, out: c(1.0),
                          lambda a, b, out: neg(op("floor", div(a, b))))
binary("mod", np.mod, "a % b: NumPy's mod, a - b·floor(a/b), with the sign of b; "
       "∂/∂a = 1, ∂/∂b = -floor(a/b)", "np.mod({0}, {1})", Infix("%", 8),
       vjp=_vjp, jvp=_jvp, builtin=True)


# logaddexp: ∂/∂a = exp(a - out) = sigmoid(a - b), which stays finite for large |a - b|
_vjp, _jvp = _binary_rule(lambda a, b, out: op("sigmoid", sub(a, b)),
                          lambda a, b, out: op("sigmoid", sub(b, a)))
binary("logaddexp", np.logaddexp, "log(exp(a) + exp(b)), computed stably",
       "np.logaddexp({0}, {1})", vjp=_vjp, jvp=_jvp, builtin=True, taylor=_series.logaddexp)
