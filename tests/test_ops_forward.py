"""Every registered op's forward behaviour: kernel values and shape rules.

Walks `ops.REGISTRY` (STYLE B7), so a new op is covered as soon as it has
a row in `SAMPLES`; an op without one fails `test_ops_forward_table_covers_registry`.
For each sample (several shapes per op, broadcasting included):

- value: `ops.apply` on constant inputs (which folds by running the kernel)
  equals a NumPy/`math` reference written here, to 1e-12 relative;
- shape: the same op applied to *input* nodes (nothing folds) has the shape
  of the reference result;
- symbolic: on inputs of the symbolic shape `shape(x)` the node's shape is a
  SymShape, or exactly what the rule can prove (`Spec.symbolic`).

Then shape rules against NumPy on random shapes (hypothesis), the shape
errors each family must raise, and the builtins that are Macros (mse,
clip, norm, …) through `Interpreter.eval`.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl
from dsl import graph, ops, shapes
from dsl.errors import BpShapeError

RTOL = 1e-12


def assert_close(actual, expected) -> None:
    """Relative to 1e-12 elementwise, with an absolute floor of 1e-12 × the
    result's largest magnitude (relative error means nothing at a rounded 0)."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    assert actual.dtype == np.float64
    finite = expected[np.isfinite(expected)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, equal_nan=True)


# ── independent references ───────────────────────────────────────────────

def each(fn: Callable) -> Callable:
    """A scalar Python function mapped over broadcast arrays (math.*, not np.*)."""
    vec = np.vectorize(lambda *xs: float(fn(*map(float, xs))), otypes=[np.float64])
    return lambda *arrays: np.asarray(vec(*arrays), dtype=np.float64)


def ref_logsumexp(x, axis=None, keepdims=False):
    # Shift by the max along the reduced axes so no exp overflows.
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def ref_log_softmax(x, axis=-1):
    return x - ref_logsumexp(x, axis=(axis,), keepdims=True)


def ref_softmax(x, axis=-1):
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def ref_cross_entropy_back(logits, targets, axis=-1):
    return ref_softmax(logits, axis) * np.sum(targets, axis=axis, keepdims=True) - targets


def ref_cross_entropy(logits, targets, axis=-1):
    per = -np.sum(targets * ref_log_softmax(logits, axis), axis=axis)
    return np.mean(per)


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


def ref_matmul_vjp(a, b, g, wrt):
    """By linearity: element i of the cotangent is <g, e_i @ b> (wrt=0) or <g, a @ e_i>."""
    x = (a, b)[wrt]
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = 1.0
        out[idx] = np.sum(g * (ref_matmul(e, b) if wrt == 0 else ref_matmul(a, e)))
    return out


def ref_det(a):
    """Leibniz's formula over permutations, per matrix of a stack."""
    n = a.shape[-1]
    out = np.zeros(a.shape[:-2])
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        term = np.ones(a.shape[:-2]) * (-1.0) ** inversions
        for row, col in enumerate(perm):
            term = term * a[..., row, col]
        out = out + term
    return out


def ref_inv(a):
    return np.linalg.solve(a, np.broadcast_to(np.eye(a.shape[-1]), a.shape))


def ref_solve(a, b):
    inv = ref_inv(a)
    return ref_matmul(inv, b) if b.ndim > 1 else np.einsum("...ij,j->...i", inv, b)


def ref_trace(x):
    return math.fsum(x[i, i] for i in range(min(x.shape)))


def ref_diag(x):
    if x.ndim == 1:
        out = np.zeros((len(x), len(x)))
        for i, v in enumerate(x):
            out[i, i] = v
        return out
    return np.array([x[i, i] for i in range(min(x.shape))])


def ref_unbroadcast(g, like):
    """Sum g over the axes broadcasting added to like's shape."""
    while g.ndim > like.ndim:
        g = g.sum(axis=0)
    for axis, n in enumerate(like.shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _index_key(items):
    return tuple(i[1] if i[0] == "i" else slice(*i[1:]) for i in items)


def ref_unindex(g, like, items):
    out = np.zeros(like.shape)
    out[_index_key(items)] = g
    return out


def ref_one_hot(labels, n):
    return (labels[..., None] == np.arange(n)).astype(np.float64)


def ref_expand_dims(x, axis):
    rank = x.ndim + len(axis)
    new = {a % rank for a in axis}
    it = iter(x.shape)
    return x.reshape(tuple(1 if i in new else next(it) for i in range(rank)))


def ref_transpose(x, axes=None):
    letters = "abcdefgh"[: x.ndim]
    order = reversed(range(x.ndim)) if axes is None else (a % x.ndim for a in axes)
    return np.einsum(f"{letters}->{''.join(letters[a] for a in order)}", x)


def ref_reduce(fn):
    return lambda x, axis=None, keepdims=False: fn(x, axis=axis, keepdims=keepdims)


# ── the table ────────────────────────────────────────────────────────────

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


ROUNDING = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49, -1.51, 3.0])
FLOORING = np.array([-1.5, -1.0, -0.2, 0.0, 0.7, 2.0, 2.999])
SIGNS = np.array([-2.0, -0.0, 0.0, 0.3, 5.0])

def ref_mpmath(fn):
    """An elementwise reference from mpmath (an optional oracle: skip without it)."""
    def ref(x, **attrs):
        mp = pytest.importorskip("mpmath")
        return np.vectorize(lambda v: float(fn(mp, v, **attrs)), otypes=[np.float64])(x)
    return ref


def ref_triu_unpack(v, n, k):
    """v's last axis laid row by row into the places with j − i ≥ k."""
    out = np.zeros(v.shape[:-1] + (n, n))
    for lead in np.ndindex(v.shape[:-1]):
        entries = iter(v[lead])
        for i, j in itertools.product(range(n), range(n)):
            if j - i >= k:
                out[lead + (i, j)] = next(entries)
    return out


def ref_triu_pack(a, k):
    n = a.shape[-1]
    rows = [[a[lead + (i, j)] for i, j in itertools.product(range(n), range(n)) if j - i >= k]
            for lead in np.ndindex(a.shape[:-2])]
    return np.array(rows).reshape(a.shape[:-2] + (len(rows[0]),))


SAMPLES: dict[str, Spec] = {
    # ── elementwise, unary ──
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
    # ── elementwise, binary ──
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
    # ── reductions ──
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
    # ── linear algebra ──
    "matmul": Spec([s(U(2, 3), U(3, 4), label="mat@mat"), s(U(3), U(3), label="vec@vec"),
                    s(U(3), U(3, 4), label="vec@mat"), s(U(2, 3), U(3), label="mat@vec"),
                    s(U(2, 1, 3, 4), U(5, 4, 2), label="batch-bcast"),
                    s(U(4, 2, 3), U(3), label="batch@vec"), s(U(3), U(4, 3, 2), label="vec@batch")],
                   ref=ref_matmul),
    "matmul_vjp": Spec([s(U(2, 3), U(3), U(2), wrt=0, label="mat@vec-a"),
                        s(U(2, 3), U(3), U(2), wrt=1, label="mat@vec-b"),
                        s(U(3), U(3), U(), wrt=0, label="vec@vec-a"),
                        s(U(3), U(3, 4), U(4), wrt=1, label="vec@mat-b"),
                        s(U(3), U(4, 3, 2), U(4, 2), wrt=0, label="vec@batch-a"),
                        s(U(4, 2, 3), U(3), U(4, 2), wrt=1, label="batch@vec-b"),
                        s(U(2, 1, 3, 4), U(5, 4, 2), U(2, 5, 3, 2), wrt=0, label="batch-bcast-a"),
                        s(U(2, 1, 3, 4), U(5, 4, 2), U(2, 5, 3, 2), wrt=1, label="batch-bcast-b")],
                       ref=ref_matmul_vjp, symbolic="same"),
    "swapaxes": Spec([s(U(2, 3), axis1=-1, axis2=-2, label="mat"),
                      s(U(2, 3, 4), axis1=-1, axis2=-2, label="stack"),
                      s(U(2, 3, 4), axis1=0, axis2=2, label="outer-axes"),
                      s(U(2, 3), axis1=1, axis2=1, label="same-axis")],
                     ref=lambda x, axis1, axis2: np.swapaxes(x, axis1, axis2)),
    "transpose": Spec([s(U(2, 3), axes=None, label="mat"), s(U(2, 3, 4), axes=None, label="rank3"),
                       s(U(2, 3, 4), axes=(1, 0, 2), label="perm"),
                       s(U(2, 3, 4), axes=(-1, 0, 1), label="negative-axes"),
                       s(U(3), axes=None, label="vector"), s(U(), axes=None, label="scalar")],
                      ref=ref_transpose),
    "outer": Spec([s(U(3), U(4), label="vectors"), s(U(2, 2), U(3), label="flattens"),
                   s(U(), U(2), label="scalar")],
                  ref=lambda a, b: a.ravel()[:, None] * b.ravel()[None, :]),
    "trace": Spec([s(U(3, 3), label="square"), s(U(2, 4), label="wide"),
                   s(U(1, 1), label="1x1")], ref=ref_trace),
    "diag": Spec([s(U(3), label="vector"), s(U(3, 3), label="square"), s(U(2, 4), label="wide")],
                 ref=ref_diag),
    "inv": Spec([s(Matrix(3, 3), label="3x3"), s(Matrix(1, 1), label="1x1"),
                 s(Matrix(2, 3, 3), label="stack")], ref=ref_inv, symbolic="same"),
    "det": Spec([s(Matrix(3, 3), label="3x3"), s(Matrix(2, 2), label="2x2"),
                 s(Matrix(4, 2, 2), label="stack"), s([[0.0, 1.0], [1.0, 0.0]], label="swap")],
                ref=ref_det),
    "solve": Spec([s(Matrix(3, 3), U(3), label="vector"), s(Matrix(3, 3), U(3, 2), label="matrix"),
                   s(Matrix(2, 3, 3), U(2, 3, 4), label="stack"),
                   s(Matrix(2, 3, 3), U(3), label="stack-vector")], ref=ref_solve),
    # ── shapes ──
    "reshape": Spec([s(U(2, 3), shape=(3, 2), label="mat"), s(U(6), shape=(2, -1), label="infer"),
                     s(U(), shape=(1, 1), label="scalar"), s(U(2, 3, 4), shape=(4, 6), label="rank3"),
                     s(U(2, 3), shape=(-1,), label="flatten")],
                    ref=lambda x, shape: x.reshape(shape), symbolic=(3, 2)),
    "concat": Spec([s(U(2, 3), U(1, 3), axis=0, label="rows"),
                    s(U(2, 3), U(2, 1), axis=1, label="cols"),
                    s(U(3), U(2), U(1), axis=0, label="three-vectors"),
                    s(U(2, 3), U(2, 2), axis=-1, label="negative-axis"),
                    s(U(2, 3), axis=0, label="one")],
                   ref=lambda *xs, axis: np.concatenate(xs, axis=axis)),
    "stack": Spec([s(U(3), U(3), axis=0, label="rows"), s(U(3), U(3), axis=1, label="cols"),
                   s(U(2, 3), U(2, 3), U(2, 3), axis=-1, label="negative-axis"),
                   s(U(), U(), axis=0, label="scalars")],
                  ref=lambda *xs, axis: np.stack(xs, axis=axis)),
    "broadcast_to": Spec([s(U(3), shape=(2, 3), label="vec"), s(U(), shape=(2, 3), label="scalar"),
                          s(U(2, 1), shape=(2, 4), label="col"),
                          s(U(1, 3), shape=(2, 1, 3), label="new-axis")],
                         ref=lambda x, shape: x + np.zeros(shape), symbolic=(2, 3)),
    "index": Spec([s(U(3, 4), items=(("i", 1),), label="row"),
                   s(U(3, 4), items=(("i", -1), ("s", 1, 3, None)), label="int-slice"),
                   s(U(5), items=(("s", None, None, -1),), label="reverse"),
                   s(U(5), items=(("s", None, None, 2),), label="strided"),
                   s(U(2, 3, 4), items=(("s", None, None, None), ("i", 0)), label="colon-int")],
                  ref=lambda x, items: x[_index_key(items)]),
    "unindex": Spec([s(U(4), U(3, 4), items=(("i", 1),), label="row"),
                     s(U(3), U(5), items=(("s", None, None, 2),), label="strided"),
                     s(U(), U(2, 3), items=(("i", 1), ("i", -1)), label="element")],
                    ref=ref_unindex),
    "unbroadcast": Spec([s(U(2, 3), U(3), label="lead"), s(U(2, 3), U(2, 1), label="keep"),
                         s(U(2, 3), U(), label="scalar"), s(U(2, 3), U(2, 3), label="same"),
                         s(U(4, 2, 3), U(2, 1), label="both")],
                        ref=ref_unbroadcast, symbolic="same"),
    "unjoin": Spec([s(U(5, 2), U(2, 2), U(3, 2), k=1, axis=0, stacking=0, label="concat"),
                    s(U(2, 5), U(2, 2), U(2, 3), k=0, axis=1, stacking=0, label="concat-axis1"),
                    s(U(2, 3), U(3), U(3), k=1, axis=0, stacking=1, label="stack"),
                    s(U(3, 2), U(3), U(3), k=0, axis=-1, stacking=1, label="stack-last")],
                   ref=lambda ct, *xs, k, axis, stacking: (np.take(ct, k, axis=axis) if stacking else
                       np.split(ct, np.cumsum([x.shape[axis] for x in xs])[:-1], axis=axis)[k])),
    "reshape_like": Spec([s(U(6), U(2, 3), label="flat"), s(U(2, 3), U(3, 2), label="matrix"),
                          s(U(1), U(), label="scalar")],
                         ref=lambda g, like: g.ravel().reshape(like.shape)),
    "broadcast_like": Spec([s(U(3), U(2, 3), label="vec"), s(U(), U(2, 3), label="scalar"),
                            s(U(2, 1), U(2, 4), label="col"), s(U(2, 3), U(2, 3), label="same")],
                           ref=lambda g, like: g + np.zeros(like.shape), symbolic="same"),
    "expand_dims": Spec([s(U(3), axis=(0,), label="front"), s(U(3), axis=(-1,), label="back"),
                         s(U(2, 3), axis=(0, 2), label="two"), s(U(), axis=(0,), label="scalar")],
                        ref=ref_expand_dims),
    "zeros_like": Spec([s(U(2, 3), label="mat"), s(U(), label="scalar")],
                       ref=lambda x: np.zeros(x.shape), symbolic="same"),
    # ── neural networks ──
    "softmax": Spec([s(U(4), axis=-1, label="vector"), s(U(2, 3), axis=-1, label="rows"),
                     s(U(2, 3), axis=0, label="cols"), s(U(2, 3, 4), axis=1, label="middle"),
                     s(U(2, 3) + 1000.0, axis=-1, label="large")],
                    ref=ref_softmax, symbolic="same"),
    "log_softmax": Spec([s(U(4), axis=-1, label="vector"), s(U(2, 3), axis=-1, label="rows"),
                         s(U(2, 3), axis=0, label="cols"),
                         s(U(2, 3) + 1000.0, axis=-1, label="large",
                           ref=lambda x, axis: ref_log_softmax(x - 1000.0, axis))],
                        ref=ref_log_softmax, symbolic="same"),
    "cross_entropy": Spec([s(U(2, 3), Probs(2, 3), axis=-1, label="batch"),
                           s(U(3), Probs(3), axis=-1, label="one"),
                           s(U(2, 3), Probs(2, 3, axis=0), axis=0, label="axis0"),
                           s(U(2, 3) + 1000.0, Probs(2, 3), axis=-1, label="large")],
                          ref=ref_cross_entropy, symbolic=()),
    "cross_entropy_back": Spec([s(U(2, 3), Probs(2, 3), axis=-1, label="batch"),
                                s(U(3), Probs(3), axis=-1, label="one"),
                                s(U(2, 3), Probs(2, 3, axis=0), axis=0, label="axis0"),
                                s(U(2, 3) + 1000.0, Probs(2, 3), axis=-1, label="large")],
                               ref=ref_cross_entropy_back, symbolic="any"),
    # ── special functions ──
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
    # ── packed triangles ──
    "triu_unpack": Spec([s(U(6), n=3, k=0, label="upper"), s(U(2, 3), n=3, k=1, label="strict-stack"),
                         s(U(4), n=2, k=-1, label="whole"), s(U(1), n=1, k=0, label="1x1")],
                        ref=ref_triu_unpack),
    "triu_pack": Spec([s(U(3, 3), k=0, label="upper"), s(U(2, 4, 4), k=1, label="strict-stack"),
                       s(U(2, 2), k=-1, label="whole")], ref=ref_triu_pack),
    "one_hot": Spec([s([0.0, 2.0, 1.0], n=3, label="vector"), s([[1.0, 0.0], [3.0, 3.0]], n=4,
                                                                label="matrix"),
                     s(2.0, n=3, label="scalar")], ref=ref_one_hot),
    # ── constructors (no tensor inputs) ──
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
                   ref=lambda a, b, step: np.array([x for x in _frange(a, b, step)])),
    "linspace": Spec([s(a=0.0, b=1.0, n=5, label="five"), s(a=2.0, b=-2.0, n=3, label="down"),
                      s(a=0.0, b=1.0, n=1, label="one"), s(a=0.0, b=1.0, n=0, label="none")],
                     ref=lambda a, b, n: np.array([a + (b - a) * i / (n - 1) if n > 1 else a
                                                   for i in range(n)])),
    "randn": Spec([s(shape=(2, 3), seed=7, label="mat"), s(shape=(), seed=0, label="scalar")],
                  ref=lambda shape, seed: np.random.default_rng(seed).standard_normal(shape)),
    "rand": Spec([s(shape=(2, 3), seed=7, label="mat"), s(shape=(4,), seed=1, label="vector")],
                 ref=lambda shape, seed: np.random.default_rng(seed).random(shape)),
}


def _frange(a, b, step):
    if b is None:
        a, b = 0.0, a
    n = max(0, math.ceil((b - a) / step))
    return [a + i * step for i in range(n)]


def _cases():
    for name in sorted(ops.REGISTRY):
        spec = SAMPLES.get(name)
        for sample in spec.samples if spec else ():
            yield pytest.param(name, sample, id=f"{name}-{sample.label}")


CASES = list(_cases())


def _reference(name: str, sample: Sample) -> np.ndarray:
    ref = sample.ref or SAMPLES[name].ref
    with np.errstate(all="ignore"):
        return np.asarray(ref(*sample.inputs, **sample.attrs), dtype=np.float64)


# ── coverage ─────────────────────────────────────────────────────────────

def test_ops_forward_table_covers_registry():
    # host and host_vjp run the user's Python: tests/test_host.py covers them.
    missing = sorted(set(ops.REGISTRY) - set(SAMPLES) - {"host", "host_vjp"})
    assert not missing, f"ops without forward samples in tests/test_ops_forward.py: {missing}"


def test_ops_forward_table_has_no_stale_rows():
    stale = sorted(set(SAMPLES) - set(ops.REGISTRY))
    assert not stale, f"rows for ops that are not registered: {stale}"


def test_ops_forward_samples_give_every_attribute():
    for name, spec in SAMPLES.items():
        opdef = ops.REGISTRY.get(name)
        if opdef is None:
            continue
        for sample in spec.samples:
            assert set(sample.attrs) >= {a.name for a in opdef.attrs}, (name, sample.label)
            if not opdef.variadic:
                assert len(sample.inputs) == len(opdef.params), (name, sample.label)


# ── (a) values, (b) shape rules ──────────────────────────────────────────

@pytest.mark.parametrize("name, sample", CASES)
def test_ops_forward_kernel_matches_reference(name, sample):
    expected = _reference(name, sample)
    node = ops.apply(name, [ops.const(x) for x in sample.inputs], dict(sample.attrs))
    assert node.op == "const", f"{name} on constants did not fold"
    assert_close(node.value, expected)


@pytest.mark.parametrize("name, sample", CASES)
def test_ops_forward_shape_rule_matches_kernel(name, sample):
    expected = _reference(name, sample)
    opdef = ops.REGISTRY[name]
    assert opdef.shape([x.shape for x in sample.inputs], dict(sample.attrs), None) == expected.shape
    inputs = [graph.make_input(f"x{i}", x.shape) for i, x in enumerate(sample.inputs)]
    node = ops.apply(name, inputs, dict(sample.attrs))
    assert node.shape == expected.shape


# Random shapes (zero-size axes included) and attributes: the rule gives
# NumPy's shape exactly when NumPy accepts, and raises a BpError when it refuses.

DIMS = st.lists(st.sampled_from([0, 1, 1, 2, 3]), max_size=4).map(tuple)
SLICE_PART = st.sampled_from([None, -4, -1, 0, 1, 2, 5])
INDEX_ITEM = st.one_of(st.tuples(st.just("i"), st.integers(-3, 3)),
                       st.tuples(st.just("s"), SLICE_PART, SLICE_PART,
                                 st.sampled_from([None, -2, -1, 1, 2, 3])))
SHAPE_RULES = settings(max_examples=200, deadline=None, derandomize=True)


def assert_rule_agrees_with_numpy(name, input_shapes, attrs, numpy_fn):
    try:
        want = np.shape(numpy_fn(*[np.ones(sh) for sh in input_shapes]))
    except (ValueError, IndexError, TypeError) as err:
        with pytest.raises(dsl.BpError):
            ops.REGISTRY[name].shape(list(input_shapes), attrs, None)
        return
    assert ops.REGISTRY[name].shape(list(input_shapes), attrs, None) == want


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_broadcast_matches_numpy(a, b):
    assert_rule_agrees_with_numpy("add", [a, b], {}, np.add)


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_matmul_matches_numpy(a, b):
    assert_rule_agrees_with_numpy("matmul", [a, b], {}, np.matmul)


@SHAPE_RULES
@given(DIMS, st.one_of(st.none(), st.lists(st.integers(-5, 4), max_size=3).map(tuple)),
       st.booleans())
def test_ops_forward_shape_rule_reduction_matches_numpy(a, axis, keepdims):
    assert_rule_agrees_with_numpy("sum", [a], {"axis": axis, "keepdims": keepdims},
                                  lambda x: np.sum(x, axis=axis, keepdims=keepdims))


@SHAPE_RULES
@given(DIMS, st.lists(INDEX_ITEM, max_size=3).map(tuple))
def test_ops_forward_shape_rule_index_matches_numpy(a, items):
    assert_rule_agrees_with_numpy("index", [a], {"items": items}, lambda x: x[_index_key(items)])


@SHAPE_RULES
@given(DIMS, st.lists(st.sampled_from([-1, 0, 1, 2, 3, 6]), max_size=3).map(tuple))
def test_ops_forward_shape_rule_reshape_matches_numpy(a, target):
    assert_rule_agrees_with_numpy("reshape", [a], {"shape": target}, lambda x: np.reshape(x, target))


@SHAPE_RULES
@given(st.lists(DIMS, min_size=1, max_size=3), st.integers(-3, 3), st.booleans())
def test_ops_forward_shape_rule_concat_stack_match_numpy(shs, axis, stacking):
    if stacking:
        assert_rule_agrees_with_numpy("stack", shs, {"axis": axis},
                                      lambda *xs: np.stack(xs, axis=axis))
    else:
        assert_rule_agrees_with_numpy("concat", shs, {"axis": axis},
                                      lambda *xs: np.concatenate(xs, axis=axis))


@SHAPE_RULES
@given(DIMS, st.lists(st.integers(-5, 4), min_size=1, max_size=2).map(tuple))
def test_ops_forward_shape_rule_expand_dims_matches_numpy(a, axis):
    assert_rule_agrees_with_numpy("expand_dims", [a], {"axis": axis},
                                  lambda x: np.expand_dims(x, axis))


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_broadcast_to_matches_numpy(a, target):
    assert_rule_agrees_with_numpy("broadcast_to", [a], {"shape": target},
                                  lambda x: np.broadcast_to(x, target))


@SHAPE_RULES
@given(DIMS, st.data())
def test_ops_forward_shape_rule_transpose_matches_numpy(a, data):
    axes = data.draw(st.one_of(st.none(), st.permutations(range(len(a))).map(tuple),
                               st.lists(st.integers(-3, 3), min_size=len(a), max_size=len(a))
                               .map(tuple)))
    assert_rule_agrees_with_numpy("transpose", [a], {"axes": axes}, lambda x: np.transpose(x, axes))


# ── (c) symbolic shapes ──────────────────────────────────────────────────

S = shapes.SymShape.of("x")


def _symbolic_node(name: str, input_shapes) -> graph.Node:
    spec = SAMPLES[name]
    attrs = dict(spec.sym_attrs if spec.sym_attrs is not None else spec.samples[0].attrs)
    inputs = [graph.make_input("x", sh) for sh in input_shapes]
    return ops.apply(name, inputs, attrs)


SYMBOLIC_OPS = [name for name in sorted(ops.REGISTRY)
                if name in SAMPLES and SAMPLES[name].samples[0].inputs]


@pytest.mark.parametrize("name", SYMBOLIC_OPS)
def test_ops_forward_symbolic_shape(name):
    spec = SAMPLES[name]
    node = _symbolic_node(name, [S] * len(spec.samples[0].inputs))
    if spec.symbolic == "any":
        assert isinstance(node.shape, shapes.SymShape), node.shape
    elif spec.symbolic == "same":
        assert node.shape == S and isinstance(node.shape, shapes.SymShape), node.shape
    else:
        assert node.shape == spec.symbolic and isinstance(node.shape, tuple), node.shape


ELEMENTWISE_BINARY = [name for name in SYMBOLIC_OPS
                      if SAMPLES[name].symbolic == "same" and len(SAMPLES[name].samples[0].inputs) == 2
                      and name not in ("unbroadcast", "broadcast_like")]


@pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
def test_ops_forward_symbolic_broadcast_with_scalar_is_same(name):
    assert _symbolic_node(name, [S, ()]).shape == S
    assert _symbolic_node(name, [(), S]).shape == S


@pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
def test_ops_forward_symbolic_broadcast_with_other_shape_stays_symbolic(name):
    for other in [(3,), (2, 1), shapes.SymShape.of("y")]:
        shape = _symbolic_node(name, [S, other]).shape
        assert isinstance(shape, shapes.SymShape) and shape != S, (other, shape)


def test_ops_forward_symbolic_where_of_three():
    assert _symbolic_node("where", [S, S, ()]).shape == S
    assert isinstance(_symbolic_node("where", [(), S, (3,)]).shape, shapes.SymShape)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "logsumexp"])
def test_ops_forward_symbolic_partial_reduction_is_symbolic(name):
    x = graph.make_input("x", S)
    for attrs in [dict(axis=(0,), keepdims=False), dict(axis=None, keepdims=True)]:
        assert isinstance(ops.apply(name, [x], attrs).shape, shapes.SymShape), attrs


def test_ops_forward_symbolic_reshape_with_inferred_dim_is_symbolic():
    x = graph.make_input("x", S)
    assert isinstance(ops.apply("reshape", [x], {"shape": (-1, 2)}).shape, shapes.SymShape)


def test_ops_forward_symbolic_same_shape_node_is_hash_consed():
    x = graph.make_input("x", S)
    assert ops.apply("tanh", [x]) is ops.apply("tanh", [x])


# ── (d) shape errors ─────────────────────────────────────────────────────

SHAPE_ERRORS = [
    ("matmul", [(2, 3), (4, 2)], {}, "inner dimensions"),
    ("matmul", [(3,), (4,)], {}, "inner dimensions"),
    ("matmul", [(2, 2, 3), (3, 3, 2)], {}, "broadcast"),
    ("matmul", [(), (3,)], {}, "rank"),
    ("add", [(3,), (4,)], {}, "broadcast"),
    ("mul", [(2, 3), (3, 2)], {}, "broadcast"),
    ("less", [(2,), (3, 3)], {}, "broadcast"),
    ("where", [(2,), (3,), (3,)], {}, "broadcast"),
    ("maximum", [(5, 2), (5,)], {}, "broadcast"),
    ("concat", [(2, 3), (3,)], {"axis": 0}, "rank"),
    ("concat", [(2, 3), (2, 4)], {"axis": 0}, "differ"),
    ("concat", [(), ()], {"axis": 0}, "rank"),
    ("concat", [(2, 3)], {"axis": 2}, "axis"),
    ("stack", [(3,), (4,)], {"axis": 0}, "equal"),
    ("stack", [(3,), (3,)], {"axis": 2}, "axis"),
    ("reshape", [(2, 3)], {"shape": (4, 2)}, "reshape"),
    ("reshape", [(2, 3)], {"shape": (4, -1)}, "reshape"),
    ("reshape", [(0, 3)], {"shape": (0, -1)}, "reshape"),
    ("broadcast_to", [(3,)], {"shape": (2, 4)}, "broadcast"),
    ("broadcast_to", [(2, 3)], {"shape": (3,)}, "broadcast"),
    ("inv", [(2, 3)], {}, "square"),
    ("inv", [(3,)], {}, "square"),
    ("det", [(3, 2)], {}, "square"),
    ("solve", [(3, 3), (2,)], {}, "differ"),
    ("solve", [(2, 3), (2,)], {}, "square"),
    ("trace", [(3,)], {}, "matrix"),
    ("trace", [(2, 2, 2)], {}, "matrix"),
    ("diag", [(2, 2, 2)], {}, "vector or a matrix"),
    ("transpose", [(2, 3)], {"axes": (0, 0)}, "axis"),
    ("transpose", [(2, 3)], {"axes": (0, 1, 2)}, "axis"),
    ("sum", [(2, 3)], {"axis": (2,), "keepdims": False}, "out of range"),
    ("logsumexp", [(2, 3)], {"axis": (0, 0), "keepdims": False}, "repeated"),
    ("mean", [()], {"axis": (0,), "keepdims": False}, "out of range"),
    ("softmax", [()], {"axis": -1}, "rank"),
    ("log_softmax", [(2, 3)], {"axis": 2}, "out of range"),
    ("cross_entropy", [(2, 3), (3, 2)], {"axis": -1}, "differ"),
    ("index", [(3,)], {"items": (("i", 0), ("i", 0))}, "too many"),
    ("expand_dims", [(3,)], {"axis": (3,)}, "out of range"),
    ("broadcast_like", [(3,), (2, 4)], {}, "broadcast"),
    ("triu_unpack", [(5,)], {"n": 3, "k": 0}, "entries"),
    ("triu_unpack", [()], {"n": 3, "k": 1}, "entries"),
    ("triu_pack", [(2, 3)], {"k": 0}, "square"),
]


@pytest.mark.parametrize("name, input_shapes, attrs, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{c[1]}" for c in SHAPE_ERRORS])
def test_ops_forward_shape_error_is_raised(name, input_shapes, attrs, words):
    if name not in ops.REGISTRY:
        pytest.skip(f"{name} is not registered")
    inputs = [graph.make_input(f"x{i}", sh) for i, sh in enumerate(input_shapes)]
    with pytest.raises(BpShapeError) as info:
        ops.apply(name, inputs, attrs)
    assert words in info.value.message


@pytest.mark.parametrize("name, input_shapes, attrs, words", SHAPE_ERRORS[:12],
                         ids=[f"{c[0]}-{c[1]}" for c in SHAPE_ERRORS[:12]])
def test_ops_forward_shape_error_on_constants_too(name, input_shapes, attrs, words):
    inputs = [ops.const(np.ones(sh)) for sh in input_shapes]
    with pytest.raises(BpShapeError):
        ops.apply(name, inputs, attrs)


def test_ops_forward_shape_error_carries_its_span():
    span = dsl.errors.Span("m.bp", 3, 14, 3, 20)
    a, b = graph.make_input("a", (3, 2)), graph.make_input("b", (3,))
    with pytest.raises(BpShapeError) as info:
        ops.apply("matmul", [a, b], {}, span)
    assert info.value.span == span
    assert str(info.value).startswith("m.bp:3:14: shape error: matmul of [3, 2] and [3]")


# ── special values and identities the builder must respect ──────────────

def test_ops_forward_pow_follows_numpy_for_fractional_power_of_negative():
    node = ops.apply("pow", [ops.const(-8.0), ops.const(1.0 / 3.0)])
    assert np.isnan(node.value)


def test_ops_forward_constant_folding_keeps_nan_and_inf():
    inf, nan = ops.const(np.inf), ops.const(np.nan)
    assert np.isnan(ops.apply("sub", [inf, inf]).value)
    assert np.isnan(ops.apply("mul", [nan, ops.const(0.0)]).value)
    assert ops.apply("div", [ops.const(1.0), ops.const(0.0)]).value == np.inf
    assert ops.apply("log", [ops.const(0.0)]).value == -np.inf


@pytest.mark.parametrize("exponent", [np.inf, -np.inf, np.nan])
def test_ops_forward_pow_with_nonfinite_constant_exponent_builds(exponent):
    x = graph.make_input("x", (3,))
    node = ops.apply("pow", [x, ops.const(exponent)])
    assert node.shape == (3,)


@pytest.mark.parametrize("exponent", [np.inf, np.nan])
def test_ops_forward_pow_with_nonfinite_exponent_in_a_function(exponent):
    bp = dsl.Interpreter()
    bp["p"] = exponent
    bp.exec("def h(x) = x^p")
    with np.errstate(all="ignore"):
        expected = np.power(np.array([0.5, 1.0, 2.0]), exponent)
    assert_close(bp.eval("h([0.5, 1, 2])"), expected)


@pytest.mark.parametrize("src", ["mean([])", "mean(zeros(0, 3), axis=0)",
                                 "cross_entropy(zeros(0, 3), zeros(0, 3))"])
def test_ops_forward_empty_mean_is_nan_without_a_python_warning(src):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = dsl.Interpreter().eval(src)
    assert np.all(np.isnan(got))
    assert not caught, [str(w.message) for w in caught]


# ── builtins that are Macros, through bp source ─────────────────────────

def _session(**arrays) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    for name, value in arrays.items():
        bp[name] = value
    return bp


A23, B23 = U(2, 3), U(2, 3)
V3, W3 = U(3), U(3)
M34 = U(3, 4)


def _macro_cases():
    lo, hi = U(2, 3, lo=-1.0, hi=0.0), U(3, lo=0.0, hi=1.0)
    return [
        ("mse", "mse(A, B)", dict(A=A23, B=B23), np.mean((A23 - B23) ** 2)),
        ("mse", "mse(A, v)", dict(A=A23, v=V3), np.mean((A23 - V3) ** 2)),
        ("mse", "mse(s, v)", dict(s=np.array(0.5), v=V3), np.mean((0.5 - V3) ** 2)),
        ("clip", "clip(A, lo, hi)", dict(A=A23, lo=lo, hi=hi), np.minimum(np.maximum(A23, lo), hi)),
        ("clip", "clip(v, -0.5, 0.5)", dict(v=V3), np.clip(V3, -0.5, 0.5)),
        ("norm", "norm(v)", dict(v=V3), math.sqrt(math.fsum(V3 ** 2))),
        ("norm", "norm(A)", dict(A=A23), math.sqrt(math.fsum((A23 ** 2).ravel()))),
        ("norm", "norm(s)", dict(s=np.array(-3.0)), 3.0),
        ("dot", "dot(v, w)", dict(v=V3, w=W3), math.fsum(V3 * W3)),
        ("dot", "dot(A, M)", dict(A=A23, M=M34), ref_matmul(A23, M34)),
        ("dot", "dot(A, v)", dict(A=A23, v=V3), ref_matmul(A23, V3)),
        ("flatten", "flatten(A)", dict(A=A23), np.array([A23[i, j] for i in range(2) for j in range(3)])),
        ("flatten", "flatten(s)", dict(s=np.array(2.0)), np.array([2.0])),
        ("size", "size(A)", dict(A=A23), 6.0),
        ("size", "size(s)", dict(s=np.array(2.0)), 1.0),
        ("ndim", "ndim(A)", dict(A=A23), 2.0),
        ("ndim", "ndim(s)", dict(s=np.array(2.0)), 0.0),
        ("randn", "randn(2, 3, seed=7)", {}, np.random.default_rng(7).standard_normal((2, 3))),
        ("randn", "randn((4,), seed=1)", {}, np.random.default_rng(1).standard_normal(4)),
        ("rand", "rand(2, 3, seed=7)", {}, np.random.default_rng(7).random((2, 3))),
        ("rand", "rand(seed=3)", {}, np.random.default_rng(3).random(())),
    ]


MACRO_CASES = _macro_cases()


def test_ops_forward_macro_table_covers_builtins():
    macros = {n for n, b in ops.BUILTINS.items() if isinstance(b, ops.Macro)}
    tested = {c[0] for c in MACRO_CASES} | {"shape", "range"}
    assert not macros - tested, f"Macro builtins without a forward test: {sorted(macros - tested)}"


@pytest.mark.parametrize("name, src, arrays, expected", MACRO_CASES,
                         ids=[c[1] for c in MACRO_CASES])
def test_ops_forward_macro_matches_numpy(name, src, arrays, expected):
    assert_close(_session(**arrays).eval(src), expected)


def test_ops_forward_macro_shape_is_a_tuple_of_scalars():
    bp = _session(A=U(2, 3, 4), s=np.array(1.0))
    got = bp.eval("shape(A)")
    assert isinstance(got, tuple) and [float(d) for d in got] == [2.0, 3.0, 4.0]
    assert all(np.asarray(d).shape == () for d in got)
    assert bp.eval("shape(s)") == ()
    assert_close(bp.eval("zeros(shape(A))"), np.zeros((2, 3, 4)))


def test_ops_forward_macro_random_without_seed_is_reproducible_per_session():
    first, second = dsl.Interpreter(), dsl.Interpreter()
    a, b = first.eval("randn(3)"), first.eval("randn(3)")
    assert a.shape == (3,) and not np.array_equal(a, b)
    assert np.array_equal(second.eval("randn(3)"), a)
    assert not np.array_equal(dsl.Interpreter(seed=1).eval("randn(3)"), a)
    u = dsl.Interpreter().eval("rand(1000)")
    assert u.min() >= 0.0 and u.max() < 1.0 and 0.4 < u.mean() < 0.6


def test_ops_forward_macro_range_outside_a_loop_is_a_type_error():
    with pytest.raises(dsl.BpTypeError):
        dsl.Interpreter().eval("range(3)")


@pytest.mark.parametrize("src, kind", [
    ("mse(ones(3), ones(4))", dsl.BpShapeError),
    ("dot(ones(2, 3), ones(2))", dsl.BpShapeError),
    ("clip(ones(3), ones(2), 1)", dsl.BpShapeError),
    ("mse(ones(3))", dsl.BpTypeError),
    ("norm((1, 2))", dsl.BpTypeError),
])
def test_ops_forward_macro_errors(src, kind):
    with pytest.raises(kind):
        dsl.Interpreter().eval(src)


# ── (c) export: every op's NumPy code gives the kernel's values ──────────

@pytest.mark.parametrize("name, sample", [c for c in CASES if ops.REGISTRY[c.values[0]].params])
def test_ops_forward_export_matches_kernel(name, sample):
    """The code `export` writes for the op, run alone (only NumPy in scope),
    against the op's kernel on the same inputs."""
    got, want, _ = run_exported(name, sample, [f"x{i}" for i in range(len(sample.inputs))])
    assert_close(got, want)


def run_exported(name, sample, names):
    """The op alone on inputs called `names`, exported and run with only NumPy in scope,
    and the op's kernel on the same inputs: (exported result, kernel result, source)."""
    from dsl import codegen
    from dsl.evaluate import Plan
    inputs = [graph.make_input(n, np.shape(x)) for n, x in zip(names, sample.inputs)]
    node = ops.apply(name, inputs, dict(sample.attrs))
    source = codegen.module({"f": (names, inputs, node)}, {})
    scope: dict = {}
    exec(compile(source, f"<export of {name}>", "exec"), scope)
    with np.errstate(all="ignore"):
        got = scope["f"](*sample.inputs)
        want = Plan(inputs, [node]).run([np.asarray(x, dtype=float) for x in sample.inputs])[0]
    return got, want, source
