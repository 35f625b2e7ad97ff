"""Samples for dsl/ops/reduce.py (reductions).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


FORWARD = {
    "sum": reduction(np.sum),
    "mean": reduction(np.mean),
    "prod": reduction(np.prod),
    "max": reduction(np.max, draw=Ints),
    "min": reduction(np.min, draw=Ints),
    "logsumexp": Spec(reduction(lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis,
                                                                        keepdims=keepdims))).samples
                      + [s(U(2, 3) + 1000.0, axis=(1,), keepdims=False, label="large",
                           ref=lambda x, **_: ref_logsumexp(x - 1000.0, axis=(1,)) + 1000.0),
                         s([-np.inf, -np.inf], axis=None, keepdims=False, label="all-minus-inf",
                           ref=lambda x, **_: np.array(-np.inf))],
                      ref=lambda x, axis=None, keepdims=False:
                          np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
                      symbolic=(), sym_attrs=dict(axis=None, keepdims=False)),
}

GRAD = {
    "sum": [g.S(g.U(2, 3), **g.R, label="all"), g.S(g.U(2, 3), axis=(0,), keepdims=False, label="axis0"),
            g.S(g.U(2, 3, 2), axis=(0, 2), keepdims=True, label="axes-keepdims"),
            g.S(g.U(), **g.R, label="scalar")],
    "mean": [g.S(g.U(2, 3), **g.R, label="all"), g.S(g.U(2, 3), axis=(1,), keepdims=True, label="keepdims"),
             g.S(g.U(2, 3, 2), axis=(-1,), keepdims=False, label="last")],
    "prod": [g.S(g.Away(2, 3, lo=0.5, hi=1.5), **g.R, label="all"),
             g.S(g.Away(2, 3, lo=0.5, hi=1.5), axis=(0,), keepdims=True, label="axis0-keepdims")],
    "max": [g.S(g.Distinct(2, 3), **g.R, label="all"), g.S(g.Distinct(2, 3), axis=(1,), keepdims=False,
                                                  label="axis1"),
            g.S(g.Distinct(2, 3, 2), axis=(0, 2), keepdims=True, label="axes-keepdims")],
    "min": [g.S(g.Distinct(2, 3), **g.R, label="all"), g.S(g.Distinct(2, 3), axis=(0,), keepdims=True,
                                                  label="axis0-keepdims")],
    "logsumexp": [g.S(g.U(2, 3), **g.R, label="all"),
                  g.S(g.U(2, 3), axis=(1,), keepdims=False, label="axis1"),
                  g.S(g.U(2, 3, 2), axis=(0,), keepdims=True, label="keepdims")],
}

NONDIFF = {

}
