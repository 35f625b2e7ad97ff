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


# ── var, std, any, all, argmax, argmin; norm (a Macro) ───────────────────

def ref_var(x, axis=None, ddof=0, keepdims=False):
    """Σ (x - mean)² / (N - ddof), the mean and the sum written out."""
    n = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
    mean = np.sum(x, axis=axis, keepdims=True) / n
    return np.sum((x - mean) ** 2, axis=axis, keepdims=keepdims) / (n - ddof)


def _stat(ref):
    samples = [s(U(2, 3, 4), axis=None, ddof=0, keepdims=False, label="all"),
               s(U(2, 3, 4), axis=(1,), ddof=1, keepdims=False, label="axis1-ddof1"),
               s(U(2, 3, 4), axis=(0, 2), ddof=0, keepdims=True, label="axes-keepdims"),
               s(U(5), axis=(0,), ddof=2, keepdims=False, label="vector-ddof2"),
               s(U(), axis=None, ddof=0, keepdims=False, label="scalar")]
    return Spec(samples, ref=ref, symbolic=(), sym_attrs=dict(axis=None, ddof=0, keepdims=False))


def ref_first_index(pick):
    """The index of the first largest (pick=max) or smallest element, by a Python loop."""
    def one(v):
        v = list(v)
        return float(v.index(pick(v)))

    def ref(x, axis=None, keepdims=False):
        if axis is None:
            out = np.array(one(x.ravel()))
            return out.reshape((1,) * x.ndim) if keepdims else out
        out = np.apply_along_axis(one, axis, x)
        return np.expand_dims(out, axis) if keepdims else out
    return ref


def _arg(pick):
    samples = [s(Ints(2, 3, 4), axis=None, keepdims=False, label="all"),
               s(Ints(2, 3, 4), axis=1, keepdims=False, label="axis1"),
               s(Ints(2, 3, 4), axis=-1, keepdims=True, label="last-keepdims"),
               s(Ints(2, 3), axis=None, keepdims=True, label="all-keepdims"),
               s([3.0, 1.0, 3.0, 1.0], axis=0, keepdims=False, label="ties")]
    return Spec(samples, ref=ref_first_index(pick), symbolic=(),
                sym_attrs=dict(axis=None, keepdims=False))


FORWARD.update({
    "var": _stat(ref_var),
    "std": _stat(lambda x, **a: np.sqrt(ref_var(x, **a))),
    "any": reduction(lambda x, axis, keepdims: np.max(x != 0, axis=axis, keepdims=keepdims),
                     draw=lambda *sh: Ints(*sh, lo=0, hi=2) * Ints(*sh, lo=0, hi=2)),
    "all": reduction(lambda x, axis, keepdims: np.min(x != 0, axis=axis, keepdims=keepdims),
                     draw=lambda *sh: Ints(*sh, lo=0, hi=4)),
    "argmax": _arg(max),
    "argmin": _arg(min),
})
GRAD.update({
    "var": [g.S(g.U(2, 3), axis=None, ddof=0, keepdims=False, label="all"),
            g.S(g.U(2, 3), axis=(1,), ddof=1, keepdims=True, label="axis1-ddof1"),
            g.S(g.U(2, 3, 2), axis=(0, 2), ddof=0, keepdims=False, label="axes")],
    "std": [g.S(g.U(2, 3), axis=None, ddof=0, keepdims=False, label="all"),
            g.S(g.U(2, 3), axis=(1,), ddof=1, keepdims=True, label="axis1-ddof1"),
            g.S(g.U(4), axis=(0,), ddof=0, keepdims=False, label="vector")],
})
NONDIFF.update({
    "any": ((g.U(2, 3),), dict(axis=(1,), keepdims=False)),
    "all": ((g.U(2, 3),), dict(axis=None, keepdims=True)),
    "argmax": ((g.Distinct(2, 3),), dict(axis=1, keepdims=False)),
    "argmin": ((g.Distinct(2, 3),), dict(axis=None, keepdims=False)),
})

_A = U(2, 3)
_V = U(4)
_INF = np.inf
MACROS = [
    # numpy.linalg.norm's orders, by hand: sums and maxima of |x|
    ("norm", "norm(v, 1)", dict(v=_V), float(np.sum(np.abs(_V)))),
    ("norm", "norm(v, inf)", dict(v=_V), float(np.max(np.abs(_V)))),
    ("norm", "norm(v, -inf)", dict(v=_V), float(np.min(np.abs(_V)))),
    ("norm", "norm(v, 0)", dict(v=np.array([0.0, 2.0, 0.0, -1.0])), 2.0),
    ("norm", "norm(v, 3)", dict(v=_V), float(np.sum(np.abs(_V) ** 3) ** (1 / 3))),
    ("norm", "norm(A, axis=1)", dict(A=_A), np.sqrt(np.sum(_A * _A, axis=1))),
    ("norm", "norm(A, 1, axis=0, keepdims=1)", dict(A=_A), np.sum(np.abs(_A), axis=0, keepdims=True)),
    ("norm", "norm(A, \"fro\")", dict(A=_A), float(np.sqrt(np.sum(_A * _A)))),
    ("norm", "norm(A, 1)", dict(A=_A), float(np.max(np.sum(np.abs(_A), axis=0)))),
    ("norm", "norm(A, -1)", dict(A=_A), float(np.min(np.sum(np.abs(_A), axis=0)))),
    ("norm", "norm(A, inf)", dict(A=_A), float(np.max(np.sum(np.abs(_A), axis=1)))),
    ("norm", "norm(A, -inf)", dict(A=_A), float(np.min(np.sum(np.abs(_A), axis=1)))),
    ("norm", "norm(A, inf, axis=(1, 0), keepdims=1)", dict(A=_A),
     np.max(np.sum(np.abs(_A), axis=0, keepdims=True), axis=1, keepdims=True)),
]
