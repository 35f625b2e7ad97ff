"""Shared pieces of the gradient sample tables (tests/ops_samples/<family>.py,
imported there as `g`): how a differentiated input is drawn (domains away
from kinks and singularities), fixed and constant inputs, a sample (`S`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class In:
    """A differentiated input: `draw(rng)` gives its value."""
    draw: Callable[[np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Fixed:
    """A graph input that is not differentiated (where's condition): its
    cotangent must be an exact zero."""
    value: Any


@dataclass(frozen=True)
class Const:
    """A constant node (pow's constant exponent, a constant base)."""
    value: Any


def U(*shape, lo=-2.0, hi=2.0):
    """Uniform in [lo, hi]."""
    return In(lambda rng: rng.uniform(lo, hi, shape))


def P(*shape, lo=0.5, hi=2.0):
    """Positive: log, sqrt, a base with a tensor exponent."""
    return U(*shape, lo=lo, hi=hi)


def Zero(*shape):
    """Exactly 0: a power's base or exponent at the point where its rule has a case."""
    return In(lambda rng: np.zeros(shape))


def Away(*shape, lo=0.3, hi=2.0):
    """|x| in [lo, hi], random sign: away from the kink of abs/relu and from 0 in a divisor."""
    return In(lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape))


def Distinct(*shape, gap=0.3):
    """Pairwise distinct values (at least gap/2 apart) for max/min: no ties."""
    n = int(np.prod(shape))

    def draw(rng):
        base = (rng.permutation(n) - n / 2) * gap
        return (base + rng.uniform(-gap / 4, gap / 4, n)).reshape(shape)
    return In(draw)


def Matrix(*shape):
    """Diagonally dominant (2I + noise): eigenvalues in about [0.5, 3.5], so
    inv/det/solve are well conditioned."""
    n = shape[-1]

    def draw(rng):
        return 2.0 * np.broadcast_to(np.eye(n), shape) + rng.uniform(-0.5, 0.5, shape)
    return In(draw)


def Probs(*shape, axis=-1):
    """Positive weights summing to 1 along `axis` (cross_entropy targets)."""
    def draw(rng):
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum(axis=axis, keepdims=True)
    return In(draw)


@dataclass(frozen=True)
class Sample:
    args: tuple
    attrs: dict
    label: str


def S(*args, label="", **attrs):
    return Sample(tuple(args), attrs, label)


R = dict(axis=None, keepdims=False)      # a reduction over everything
ROW = (("i", 1), ("s", 0, 2, None))      # x[1, 0:2]



def unary_samples(arg):
    return [S(arg(3), label="vec"), S(arg(2, 3), label="mat"), S(arg(), label="scalar")]
