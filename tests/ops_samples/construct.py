"""Samples for dsl/ops/construct.py (constructors).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


FORWARD = {
    "zeros": Spec([s(shape=(2, 3), label="mat"), s(shape=(), label="scalar"),
                   s(shape=(0, 2), label="empty")], ref=lambda shape: np.zeros(shape)),
    "ones": Spec([s(shape=(2, 3), label="mat"), s(shape=(), label="scalar")],
                 ref=lambda shape: np.ones(shape)),
    "full": Spec([s(shape=(2, 3), value=2.5, label="mat"), s(shape=(), value=-1.0, label="scalar")],
                 ref=lambda shape, value: np.ones(shape) * value),
    "eye": Spec([s(n=3, label="3"), s(n=1, label="1"), s(n=0, label="0")],
                ref=lambda n: np.array([[float(i == j) for j in range(n)] for i in range(n)])
                .reshape(n, n)),
    "arange": Spec([s(a=5.0, b=None, step=1.0, label="count"),
                    s(a=1.0, b=2.0, step=0.25, label="step"),
                    s(a=3.0, b=0.0, step=-1.0, label="down"),
                    s(a=0.0, b=0.3, step=0.1, label="inexact"),
                    s(a=2.0, b=1.0, step=1.0, label="empty")],
                   ref=lambda a, b, step: np.array([x for x in frange(a, b, step)])),
    "linspace": Spec([s(a=0.0, b=1.0, n=5, label="five"), s(a=2.0, b=-2.0, n=3, label="down"),
                      s(a=0.0, b=1.0, n=1, label="one"), s(a=0.0, b=1.0, n=0, label="none")],
                     ref=lambda a, b, n: np.array([a + (b - a) * i / (n - 1) if n > 1 else a
                                                   for i in range(n)])),
    "randn": Spec([s(shape=(2, 3), seed=7, label="mat"), s(shape=(), seed=0, label="scalar")],
                  ref=lambda shape, seed: np.random.default_rng(seed).standard_normal(shape)),
    "rand": Spec([s(shape=(2, 3), seed=7, label="mat"), s(shape=(4,), seed=1, label="vector")],
                 ref=lambda shape, seed: np.random.default_rng(seed).random(shape)),
}

GRAD = {

}

NONDIFF = {
    "zeros": ((), {"shape": (2, 3)}),
    "ones": ((), {"shape": (2, 3)}),
    "full": ((), {"shape": (2, 3), "value": 1.5}),
    "eye": ((), {"n": 3}),
    "arange": ((), {"a": 0.0, "b": 3.0, "step": 0.5}),
    "linspace": ((), {"a": 0.0, "b": 1.0, "n": 5}),
    "randn": ((), {"shape": (2, 3), "seed": 1}),
    "rand": ((), {"shape": (2, 3), "seed": 1}),
}
