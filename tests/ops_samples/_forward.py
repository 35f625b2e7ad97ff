"""Shared pieces of the forward sample tables (tests/ops_samples/<family>.py):
how inputs are drawn, a sample (`s`), an op's spec (`Spec`), the tables for
unary, binary and reduction ops, and references used by several families."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest


RTOL = 1e-12

def each(fn: Callable) -> Callable:
    """A scalar Python function mapped over broadcast arrays (math.*, not np.*)."""
    vec = np.vectorize(lambda *xs: float(fn(*map(float, xs))), otypes=[np.float64])
    return lambda *arrays: np.asarray(vec(*arrays), dtype=np.float64)

def ref_logsumexp(x, axis=None, keepdims=False):
    # Shift by the max along the reduced axes so no exp overflows.
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)

def ref_matmul(a, b):
    """NumPy matmul rules, by einsum: vectors are promoted, then squeezed."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = np.einsum("...ij,...jk->...ik", a2, b2)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out

def index_key(items):
    return tuple(i[1] if i[0] == "i" else slice(*i[1:]) for i in items)

def ref_reduce(fn):
    return lambda x, axis=None, keepdims=False: fn(x, axis=axis, keepdims=keepdims)

@dataclass(frozen=True)
class Sample:
    inputs: tuple            # arrays (one per tensor input)
    attrs: dict              # as `ops.apply` takes them (every attribute given)
    ref: Callable | None     # (*inputs, **attrs) -> expected; None: the Spec's reference
    label: str

@dataclass(frozen=True)
class Spec:
    samples: list[Sample]
    ref: Callable | None = None
    symbolic: Any = "any"    # "same": shape(x) exactly; "any": some SymShape; or a shape
    sym_attrs: dict | None = None   # attrs for the symbolic case (default: the first sample's)

_rng = np.random.default_rng(20240601)

def U(*shape, lo=-2.0, hi=2.0):
    return _rng.uniform(lo, hi, shape)

def P(*shape):
    """Positive, away from 0."""
    return U(*shape, lo=0.25, hi=3.0)

def Ints(*shape, lo=-2, hi=3):
    """Small whole numbers: ties for comparisons, max, min and logic."""
    return _rng.integers(lo, hi, shape).astype(np.float64)

def Matrix(*shape):
    """2I + noise: well conditioned, so inv/det/solve are accurate to ~1e-15."""
    n = shape[-1]
    return 2.0 * np.broadcast_to(np.eye(n), shape) + U(*shape, lo=-0.5, hi=0.5)

def Probs(*shape, axis=-1):
    p = U(*shape, lo=0.1, hi=1.0)
    return p / p.sum(axis=axis, keepdims=True)

def s(*inputs, label: str, ref: Callable | None = None, **attrs) -> Sample:
    return Sample(tuple(np.asarray(i, dtype=np.float64) for i in inputs), attrs, ref, label)

# Shapes every elementwise op is tried on; pairs and triples broadcast.
UNARY_SHAPES = [(), (3,), (2, 3), (2, 1, 3)]

BINARY_SHAPES = [((3,), (2, 1)), ((), (2, 3)), ((2, 3), ()), ((2, 3), (2, 3)), ((4, 1, 3), (5, 1)),
                 ((1,), (3,))]

def unary(ref, draw=U, extra=()):
    return Spec([s(draw(*shape), label=f"{shape}") for shape in UNARY_SHAPES] + list(extra),
                ref=ref, symbolic="same")

def binary(ref, draw=U, draw_b=None, extra=()):
    draw_b = draw_b or draw
    return Spec([s(draw(*a), draw_b(*b), label=f"{a}{b}") for a, b in BINARY_SHAPES] + list(extra),
                ref=ref, symbolic="same")

def reduction(fn, draw=U):
    full = dict(axis=None, keepdims=False)
    return Spec([s(draw(2, 3, 4), **full, label="all"),
                 s(draw(), **full, label="scalar"),
                 s(draw(2, 3, 4), axis=(0,), keepdims=False, label="axis0"),
                 s(draw(2, 3, 4), axis=(-1,), keepdims=False, label="axis-1"),
                 s(draw(2, 3, 4), axis=(0, 2), keepdims=False, label="axes02"),
                 s(draw(2, 3, 4), axis=(1,), keepdims=True, label="axis1-keepdims"),
                 s(draw(2, 3), axis=None, keepdims=True, label="all-keepdims"),
                 s(draw(5), axis=(0,), keepdims=False, label="vector")],
                ref=ref_reduce(fn), symbolic=(), sym_attrs=full)

def frange(a, b, step):
    if b is None:
        a, b = 0.0, a
    n = max(0, math.ceil((b - a) / step))
    return [a + i * step for i in range(n)]
