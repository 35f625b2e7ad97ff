"""Elementwise ops: arithmetic, comparisons, logic, and the unary builtins.

Each entry is one place: kernel, shape rule, print form.  Comparisons and
logic give 1.0 or 0.0 and carry no gradient (SPEC §5).
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from . import CallForm, Infix, OpDef, Prefix, register


def same_shape(shs, attrs, span):
    return shs[0]


def broadcast_shape(shs, attrs, span):
    return shapes.broadcast(*shs, span=span)


def _unary(name, kernel, doc, differentiable=True, builtin=True, fmt=None):
    return register(OpDef(name=name, kernel=kernel, shape=same_shape, params=("x",),
                          differentiable=differentiable, builtin=builtin, fmt=fmt, doc=doc))


def _binary(name, kernel, doc, fmt=None, differentiable=True, builtin=False, params=("a", "b")):
    return register(OpDef(name=name, kernel=kernel, shape=broadcast_shape, params=params,
                          differentiable=differentiable, builtin=builtin, fmt=fmt, doc=doc))


def _sigmoid(x):
    # Stable on both tails: exp only ever sees -|x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _flag(fn):
    return lambda *xs: fn(*xs).astype(np.float64)


# ── arithmetic (the operators of SPEC §3) ────────────────────────────────
_binary("add", np.add, "a + b", Infix("+", 7))
_binary("sub", np.subtract, "a - b", Infix("-", 7))
_binary("mul", np.multiply, "a * b", Infix("*", 8))
_binary("div", np.divide, "a / b", Infix("/", 8))
_binary("pow", np.power, "a ^ b: NumPy power; (-8)^(1/3) is nan", Infix("^", 10, "right"))
_unary("neg", np.negative, "-x", builtin=False, fmt=Prefix("-", 9))

# ── comparisons and logic: 1.0 or 0.0, derivative 0 ─────────────────────
for _name, _fn, _sym in (("less", np.less, "<"), ("less_equal", np.less_equal, "<="),
                         ("greater", np.greater, ">"), ("greater_equal", np.greater_equal, ">="),
                         ("equal", np.equal, "=="), ("not_equal", np.not_equal, "!=")):
    _binary(_name, _flag(_fn), f"a {_sym} b: 1 where true, else 0", Infix(_sym, 6, "none"),
            differentiable=False)
_binary("and", _flag(lambda a, b: (a != 0) & (b != 0)), "a and b, elementwise on 0/1",
        Infix("and", 4), differentiable=False)
_binary("or", _flag(lambda a, b: (a != 0) | (b != 0)), "a or b, elementwise on 0/1",
        Infix("or", 3), differentiable=False)
_unary("not", _flag(lambda x: x == 0), "not x, elementwise on 0/1", differentiable=False,
       builtin=False, fmt=Prefix("not", 5))

# ── the elementwise builtins of SPEC §6 ──────────────────────────────────
_unary("abs", np.abs, "absolute value; abs'(0) = 0")
_unary("sign", np.sign, "-1, 0 or 1; derivative 0", differentiable=False)
_unary("exp", np.exp, "e^x")
_unary("log", np.log, "natural logarithm; log(0) = -inf")
_unary("log1p", np.log1p, "log(1 + x), accurate near 0")
_unary("expm1", np.expm1, "exp(x) - 1, accurate near 0")
_unary("sqrt", np.sqrt, "square root; sqrt(-1) = nan")
_unary("sin", np.sin, "sine")
_unary("cos", np.cos, "cosine")
_unary("tan", np.tan, "tangent")
_unary("asin", np.arcsin, "inverse sine")
_unary("acos", np.arccos, "inverse cosine")
_unary("atan", np.arctan, "inverse tangent")
_unary("sinh", np.sinh, "hyperbolic sine")
_unary("cosh", np.cosh, "hyperbolic cosine")
_unary("tanh", np.tanh, "hyperbolic tangent")
_unary("sigmoid", _sigmoid, "1 / (1 + exp(-x)), computed stably")
_unary("relu", lambda x: np.maximum(x, 0.0), "max(x, 0); relu'(0) = 0")
_unary("softplus", lambda x: np.logaddexp(0.0, x), "log(1 + exp(x)), computed stably")
_unary("floor", np.floor, "largest whole number ≤ x; derivative 0", differentiable=False)
_unary("round", np.round, "nearest whole number, half to even (NumPy); derivative 0",
       differentiable=False)

_binary("maximum", np.maximum, "elementwise maximum; a tie gives each side half the gradient",
        builtin=True)
_binary("minimum", np.minimum, "elementwise minimum; a tie gives each side half the gradient",
        builtin=True)

register(OpDef(name="where", kernel=lambda c, a, b: np.where(c != 0, a, b),
               shape=broadcast_shape, params=("c", "a", "b"), fmt=CallForm("where"),
               doc="a where c is nonzero, else b; the gradient goes to the chosen side only"))
