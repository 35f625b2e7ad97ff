"""Samples for dsl/ops/special.py (special functions).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import math

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def ref_mpmath(fn):
    """An elementwise reference from mpmath (an optional oracle: skip without it)."""
    def ref(x, **attrs):
        mp = pytest.importorskip("mpmath")
        return np.vectorize(lambda v: float(fn(mp, v, **attrs)), otypes=[np.float64])(x)
    return ref


FORWARD = {
    "lgamma": unary(ref_mpmath(lambda mp, v: mp.log(abs(mp.gamma(v)))), draw=P,
                    extra=[s([-1.5, -2.7, 0.25, 30.5, 170.5], label="negative-and-large"),
                           s([0.0, -3.0], label="poles", ref=lambda x: np.full(2, np.inf))]),
    "digamma": Spec([s(P(3), n=0, label="psi"), s(P(2, 3), n=1, label="trigamma"),
                     s(P(3), n=3, label="order3"), s(U(), n=2, label="scalar"),
                     s([-1.5, -0.3, -7.25], n=0, label="negative"),
                     s([-1.5, -0.3, -7.25], n=2, label="negative-order2"),
                     s([25.0, 0.01, 1e5], n=1, label="wide"),
                     s([0.0, -2.0], n=0, label="poles", ref=lambda x, n: np.full(2, np.nan))],
                    ref=ref_mpmath(lambda mp, v, n: mp.psi(n, v)), symbolic="same"),
}

GRAD = {
    "lgamma": g.unary_samples(g.P) + [g.S(g.U(3, lo=-2.8, hi=-2.2), label="negative")],
    "digamma": [g.S(g.P(3), n=0, label="psi"), g.S(g.P(2, 3), n=1, label="trigamma"),
                g.S(g.U(3, lo=-1.8, hi=-1.2), n=0, label="negative"),
                g.S(g.U(3, lo=-0.8, hi=-0.2), n=2, label="negative-order2")],
}

NONDIFF = {

}


# ── erf, erfc: against mpmath, and math.erf / math.erfc (both to 1 ulp-ish) ──

ERF_POINTS = np.array([0.0, -0.0, 1e-300, 1e-10, 0.25, -0.5, 0.5000001, 0.9, 1.7, -2.5, 3.3, 5.9,
                       10.0, 26.0, 27.5, np.inf, -np.inf, np.nan])
FORWARD.update({
    "erf": unary(ref_mpmath(lambda mp, v: mp.erf(v)),
                 extra=[s(ERF_POINTS, label="edges", ref=each(math.erf)),
                        s(U(50, lo=-6.0, hi=6.0), label="wide")]),
    "erfc": unary(ref_mpmath(lambda mp, v: mp.erfc(v)),
                  extra=[s(ERF_POINTS, label="edges", ref=each(math.erfc)),
                         s(U(50, lo=-6.0, hi=27.0), label="wide")]),
})
GRAD.update({
    "erf": g.unary_samples(g.U),
    "erfc": g.unary_samples(g.U),
})
