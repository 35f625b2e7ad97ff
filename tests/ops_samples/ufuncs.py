"""Samples for dsl/ops/ufuncs.py (more of NumPy's elementwise functions).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
References are `math` or written out by hand, never the kernel's NumPy call.
"""
from __future__ import annotations

import math

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, refs …)

EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0])


def ref_mod(a, b):
    """a - b·floor(a/b) as Python's float % (the sign of b); nan where b is 0."""
    return each(lambda x, y: math.nan if y == 0 else x % y)(a, b)


def ref_logaddexp(a, b):
    return each(lambda x, y: max(x, y) + math.log1p(math.exp(-abs(x - y))))(a, b)


def ref_nan_to_num(x, nan, posinf, neginf):
    big = np.finfo(np.float64).max
    table = {"nan": nan, "inf": big if posinf is None else posinf,
             "-inf": -big if neginf is None else neginf}
    return each(lambda v: table["nan"] if math.isnan(v) else table["inf"] if v == math.inf
                else table["-inf"] if v == -math.inf else v)(x)


def _nan_to_num_spec():
    full = dict(nan=0.0, posinf=None, neginf=None)
    return Spec([s(U(2, 3), **full, label="finite"), s(EDGES, **full, label="defaults"),
                 s(EDGES, nan=-1.0, posinf=7.0, neginf=-7.0, label="given"),
                 s(U(), **full, label="scalar")], ref=ref_nan_to_num, symbolic="same")


FORWARD = {
    "asinh": unary(each(math.asinh), extra=[s([1e-10, -30.0, 1e8], label="wide")]),
    "acosh": unary(each(math.acosh), draw=lambda *sh: U(*sh, lo=1.0, hi=5.0),
                   extra=[s([1.0, 0.5], label="edge", ref=lambda x: np.array([0.0, np.nan]))]),
    "atanh": unary(each(math.atanh), draw=lambda *sh: U(*sh, lo=-0.99, hi=0.99),
                   extra=[s([1.0, -1.0], label="edge", ref=lambda x: np.array([np.inf, -np.inf]))]),
    "ceil": unary(each(math.ceil), extra=[s([-1.5, -1.0, -0.2, 0.0, 0.7, 2.0], label="edges")]),
    "log2": unary(each(math.log2), draw=P, extra=[s([1024.0, 0.125], label="powers")]),
    "log10": unary(each(math.log10), draw=P, extra=[s([1000.0, 1e-5], label="powers")]),
    "exp2": unary(each(lambda x: 2.0 ** x), extra=[s([10.0, -3.0], label="whole")]),
    "cbrt": unary(each(lambda x: math.copysign(abs(x) ** (1 / 3), x)),
                  extra=[s([-27.0, 8.0, 0.0], label="cubes", ref=lambda x: np.array([-3.0, 2.0, 0.0]))]),
    "square": unary(each(lambda x: x * x)),
    "reciprocal": unary(each(lambda x: 1 / x), draw=P),
    "isnan": unary(each(lambda x: float(math.isnan(x))), extra=[s(EDGES, label="edges")]),
    "isfinite": unary(each(lambda x: float(math.isfinite(x))), extra=[s(EDGES, label="edges")]),
    "nan_to_num": _nan_to_num_spec(),
    "atan2": binary(each(math.atan2),
                    extra=[s([0.0, 1.0, -1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], label="axes",
                             ref=lambda y, x: np.array([math.pi, math.pi / 2, -math.pi / 2, 0.0]))]),
    "hypot": binary(each(math.hypot), extra=[s([3.0, 1e300], [4.0, 1e300], label="exact-and-large",
                                               ref=lambda a, b: np.array([5.0, 1e300 * math.sqrt(2)]))]),
    "mod": binary(ref_mod, draw_b=lambda *sh: U(*sh, lo=0.5, hi=2.0) * np.sign(U(*sh)),
                  extra=[s([-7.0, 7.0, -7.0, 7.0, 1.0], [3.0, -3.0, -3.0, 3.0, 0.0], label="signs",
                           ref=lambda a, b: np.array([2.0, -2.0, -1.0, 1.0, np.nan]))]),
    "logaddexp": binary(ref_logaddexp, extra=[s([800.0, -800.0], [800.0, -801.0], label="large")]),
}


GRAD = {
    "asinh": g.unary_samples(g.U),
    "acosh": g.unary_samples(lambda *sh: g.U(*sh, lo=1.2, hi=3.0)),
    "atanh": g.unary_samples(lambda *sh: g.U(*sh, lo=-0.8, hi=0.8)),
    "log2": g.unary_samples(g.P),
    "log10": g.unary_samples(g.P),
    "exp2": g.unary_samples(g.U),
    "cbrt": g.unary_samples(g.Away),
    "square": g.unary_samples(g.U),
    "reciprocal": g.unary_samples(g.Away),
    "nan_to_num": [g.S(g.U(3), nan=0.0, posinf=None, neginf=None, label="finite"),
                   g.S(g.U(2, 3), nan=1.0, posinf=2.0, neginf=-2.0, label="given")],
    "atan2": [g.S(g.Away(3), g.U(2, 1), label="bcast"), g.S(g.Away(2, 3), g.Away(), label="scalar-x")],
    "hypot": [g.S(g.Away(3), g.U(2, 1), label="bcast"), g.S(g.U(), g.Away(2, 3), label="scalar")],
    # a/b kept inside (0, 1) or (-1, 0): floor(a/b) is constant around the point
    "mod": [g.S(g.U(3, lo=0.1, hi=0.9), g.U(2, 1, lo=1.1, hi=1.9), label="positive"),
            g.S(g.U(3, lo=-0.9, hi=-0.1), g.U(3, lo=1.1, hi=1.9), label="negative-a"),
            g.S(g.U(3, lo=0.1, hi=0.9), g.U(3, lo=-1.9, hi=-1.1), label="negative-b")],
    "logaddexp": [g.S(g.U(3), g.U(2, 1), label="bcast"), g.S(g.U(2, 3), g.U(), label="scalar")],
}

NONDIFF = {
    "ceil": ((g.U(2, 3),), {}),
    "isnan": ((g.U(2, 3),), {}),
    "isfinite": ((g.U(2, 3),), {}),
}
