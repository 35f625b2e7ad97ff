"""Samples for dsl/ops/elementwise.py (arithmetic, comparisons, logic and the unary builtins).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import math

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


ROUNDING = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49, -1.51, 3.0])

FLOORING = np.array([-1.5, -1.0, -0.2, 0.0, 0.7, 2.0, 2.999])

SIGNS = np.array([-2.0, -0.0, 0.0, 0.3, 5.0])


FORWARD = {
    "neg": unary(each(lambda x: -x)),
    "abs": unary(each(math.fabs), extra=[s(SIGNS, label="zeros")]),
    "sign": unary(each(lambda x: (x > 0) - (x < 0)), extra=[s(SIGNS, label="zeros")]),
    "exp": unary(each(math.exp)),
    "log": unary(each(math.log), draw=P),
    "log1p": unary(each(math.log1p), draw=lambda *sh: U(*sh, lo=-0.9, hi=3.0),
                   extra=[s([1e-10, -1e-12], label="tiny")]),
    "expm1": unary(each(math.expm1), extra=[s([1e-10, -1e-12], label="tiny")]),
    "sqrt": unary(each(math.sqrt), draw=P),
    "sin": unary(each(math.sin)),
    "cos": unary(each(math.cos)),
    "tan": unary(each(math.tan), draw=lambda *sh: U(*sh, lo=-1.4, hi=1.4)),
    "asin": unary(each(math.asin), draw=lambda *sh: U(*sh, lo=-0.99, hi=0.99)),
    "acos": unary(each(math.acos), draw=lambda *sh: U(*sh, lo=-0.99, hi=0.99)),
    "atan": unary(each(math.atan)),
    "sinh": unary(each(math.sinh)),
    "cosh": unary(each(math.cosh)),
    "tanh": unary(each(math.tanh)),
    "sigmoid": unary(each(lambda x: 1 / (1 + math.exp(-x))),
                     extra=[s([-30.0, -5.0, 0.0, 5.0, 30.0], label="tails")]),
    "relu": unary(each(lambda x: x if x > 0 else 0.0), extra=[s(SIGNS, label="zeros")]),
    "softplus": unary(each(lambda x: math.log1p(math.exp(x))),
                      extra=[s([-30.0, -1.0, 0.0, 1.0, 30.0], label="tails"),
                             s([800.0], label="large", ref=lambda x: x)]),
    "floor": unary(each(math.floor), extra=[s(FLOORING, label="edges")]),
    "round": unary(each(round), extra=[s(ROUNDING, label="half-to-even")]),
    "not": unary(each(lambda x: float(x == 0)), draw=Ints),
    "add": binary(each(lambda a, b: a + b)),
    "sub": binary(each(lambda a, b: a - b)),
    "mul": binary(each(lambda a, b: a * b)),
    "div": binary(each(lambda a, b: a / b), draw_b=P),
    "pow": binary(each(math.pow), draw=P,
                  extra=[s([-2.0, -1.5, 3.0], [3.0, 2.0, -1.0], label="negative-base-whole-exponent"),
                         s(U(2, 3), 2.0, label="square")]),
    "maximum": binary(each(max), draw=Ints),
    "minimum": binary(each(min), draw=Ints),
    "less": binary(each(lambda a, b: a < b), draw=Ints),
    "less_equal": binary(each(lambda a, b: a <= b), draw=Ints),
    "greater": binary(each(lambda a, b: a > b), draw=Ints),
    "greater_equal": binary(each(lambda a, b: a >= b), draw=Ints),
    "equal": binary(each(lambda a, b: a == b), draw=Ints),
    "not_equal": binary(each(lambda a, b: a != b), draw=Ints),
    "and": binary(each(lambda a, b: bool(a) and bool(b)), draw=lambda *sh: Ints(*sh, lo=0, hi=2)),
    "or": binary(each(lambda a, b: bool(a) or bool(b)), draw=lambda *sh: Ints(*sh, lo=0, hi=2)),
    "where": Spec([s(Ints(2, 3, lo=0, hi=2), U(2, 3), U(2, 3), label="same"),
                   s(Ints(3, lo=0, hi=2), U(2, 1), U(), label="bcast3"),
                   s(Ints(lo=0, hi=2), U(2, 3), U(3), label="scalar-cond"),
                   s([-1.0, 0.0, 2.0], U(3), U(3), label="nonzero-is-true")],
                  ref=each(lambda c, a, b: a if c != 0 else b), symbolic="same"),
}

GRAD = {
    "neg": g.unary_samples(g.U),
    "abs": g.unary_samples(g.Away),
    "exp": g.unary_samples(g.U),
    "log": g.unary_samples(g.P),
    "log1p": g.unary_samples(lambda *s: g.U(*s, lo=-0.5, hi=2.0)),
    "expm1": g.unary_samples(g.U),
    "sqrt": g.unary_samples(g.P),
    "sin": g.unary_samples(g.U),
    "cos": g.unary_samples(g.U),
    "tan": g.unary_samples(lambda *s: g.U(*s, lo=-1.2, hi=1.2)),
    "asin": g.unary_samples(lambda *s: g.U(*s, lo=-0.8, hi=0.8)),
    "acos": g.unary_samples(lambda *s: g.U(*s, lo=-0.8, hi=0.8)),
    "atan": g.unary_samples(g.U),
    "sinh": g.unary_samples(g.U),
    "cosh": g.unary_samples(g.U),
    "tanh": g.unary_samples(g.U),
    "sigmoid": g.unary_samples(lambda *s: g.U(*s, lo=-4.0, hi=4.0)),
    "relu": g.unary_samples(g.Away),
    "softplus": g.unary_samples(lambda *s: g.U(*s, lo=-4.0, hi=4.0)),
    "add": [g.S(g.U(3), g.U(2, 1), label="bcast"), g.S(g.U(), g.U(2, 3), label="scalar+mat"),
            g.S(g.U(2, 3), g.U(2, 3), label="same")],
    "sub": [g.S(g.U(3), g.U(2, 1), label="bcast"), g.S(g.U(2, 3), g.U(), label="mat-scalar"),
            g.S(g.U(2, 3), g.U(1, 3), label="row")],
    "mul": [g.S(g.U(3), g.U(2, 1), label="bcast"), g.S(g.U(), g.U(2, 3), label="scalar*mat"),
            g.S(g.U(2, 3), g.U(2, 3), label="same")],
    "div": [g.S(g.U(3), g.Away(2, 1), label="bcast"), g.S(g.U(), g.Away(2, 3), label="scalar/mat"),
            g.S(g.U(2, 3), g.Away(), label="mat/scalar")],
    "pow": [g.S(g.P(3), g.U(2, 1), label="tensor-exponent"), g.S(g.P(2, 3), g.U(), label="scalar-exponent"),
            g.S(g.U(2, 3), g.Const(2.0), label="square"), g.S(g.U(3), g.Const(3.0), label="cube"),
            g.S(g.Away(3), g.Const(-1.0), label="reciprocal"), g.S(g.P(2, 2), g.Const(0.5), label="sqrt"),
            g.S(g.Const(2.0), g.U(3), label="const-base"),
            # At 0: x^2 and x^3 are smooth there to every order (a constant exponent gets
            # no derivative); 0^b for b > 0 is 0, so every derivative in b is 0; at b = 0
            # with a > 0 the mixed second derivative is 1/a (only a = b = 0 is masked).
            g.S(g.Zero(3), g.Const(2.0), label="square-at-0"), g.S(g.Zero(2, 2), g.Const(3.0), label="cube-at-0"),
            g.S(g.Const(np.array([0.0, 0.0, 1.5])), g.P(3), label="zero-base"),
            g.S(g.P(3), g.Zero(3), label="zero-exponent"), g.S(g.P(2, 3), g.Zero(), label="zero-scalar-exponent")],
    "maximum": [g.S(g.U(3, lo=-0.9, hi=0.9), g.Away(2, 1, lo=1.1, hi=1.9), label="bcast"),
                g.S(g.Away(lo=1.1, hi=1.9), g.U(2, 3, lo=-0.9, hi=0.9), label="scalar")],
    "minimum": [g.S(g.U(3, lo=-0.9, hi=0.9), g.Away(2, 1, lo=1.1, hi=1.9), label="bcast"),
                g.S(g.Away(2, 3, lo=1.1, hi=1.9), g.U(3, lo=-0.9, hi=0.9), label="row")],
    "where": [g.S(g.Fixed([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), g.U(2, 3), g.U(3), label="bcast"),
              g.S(g.Fixed([1.0, 0.0, 1.0]), g.U(), g.U(2, 3), label="scalar-branch")],
}

NONDIFF = {
    "sign": ((g.U(2, 3),), {}),
    "floor": ((g.U(2, 3),), {}),
    "round": ((g.U(2, 3),), {}),
    "not": ((g.In(lambda r: r.integers(0, 2, (3,)).astype(float)),), {}),
    **{name: ((g.U(3), g.U(2, 1)), {}) for name in
       ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")},
    "and": ((g.In(lambda r: r.integers(0, 2, (3,)).astype(float)), g.U(2, 1)), {}),
    "or": ((g.In(lambda r: r.integers(0, 2, (3,)).astype(float)), g.U(2, 1)), {}),
}
