"""Samples for dsl/ops/scan.py (cumsum, cumprod).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py), cumprod's at exact zeros too.
"""
from __future__ import annotations

import itertools
import operator

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, …)


def ref_scan(fn):
    """Running fn along axis (of the flattened x without), from the end with reverse=,
    by itertools.accumulate."""
    def ref(x, axis=None, reverse=False):
        def one(v):
            v = list(v)[::-1] if reverse else list(v)
            out = list(itertools.accumulate(v, fn))
            return np.array(out[::-1] if reverse else out, dtype=np.float64)
        return one(x.ravel()) if axis is None else np.apply_along_axis(one, axis, x)
    return ref


def _scan(fn, extra_attrs):
    return Spec([s(U(2, 3), axis=None, **extra_attrs, label="flat"),
                 s(U(2, 3, 4), axis=1, **extra_attrs, label="axis1"),
                 s(U(2, 3), axis=-1, **extra_attrs, label="last"),
                 s(U(5), axis=0, **extra_attrs, label="vector"),
                 s(U(), axis=None, **extra_attrs, label="scalar"),
                 s([2.0, 0.0, 3.0, -1.0], axis=0, **extra_attrs, label="zero")],
                ref=ref_scan(fn), symbolic="any", sym_attrs=dict(axis=None, **extra_attrs))


def _reversed_samples():
    return [s(U(2, 3), axis=0, reverse=True, label="reverse-axis0"),
            s(U(2, 3), axis=None, reverse=True, label="reverse-flat")]


FORWARD = {
    "cumsum": Spec(_scan(operator.add, {"reverse": False}).samples + _reversed_samples(),
                   ref=ref_scan(operator.add), symbolic="any",
                   sym_attrs=dict(axis=None, reverse=False)),
    "cumprod": _scan(operator.mul, {}),
}


def _with_zeros(*shape):
    """Random values with exact zeros at fixed places (cumprod's hard case)."""
    def draw(rng):
        x = rng.uniform(-2.0, 2.0, shape)
        x.flat[1::3] = 0.0
        return x
    return g.In(draw)


GRAD = {
    "cumsum": [g.S(g.U(2, 3), axis=None, reverse=False, label="flat"),
               g.S(g.U(2, 3), axis=1, reverse=False, label="axis1"),
               g.S(g.U(3, 2), axis=0, reverse=True, label="reverse")],
    "cumprod": [g.S(g.U(5), axis=None, label="flat"),
                g.S(g.U(2, 3), axis=1, label="axis1"),
                g.S(g.U(3, 2), axis=-2, label="axis0"),
                g.S(_with_zeros(6), axis=0, label="zeros"),
                g.S(g.Zero(4), axis=0, label="all-zero"),
                g.S(_with_zeros(2, 4), axis=None, label="zeros-flat")],
}
