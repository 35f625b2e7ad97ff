"""The elementwise functions, reductions and scans of issue 14 beyond the registry
walks: erf's accuracy in ulps, printed derivatives that read back, cumprod's
gradient at zeros, and the derivatives at the points where they are undefined
(what JAX gives)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dsl

X = [0.7, -1.3, 2.1]
P3 = [0.7, 1.3, 2.1]
# (the builtin's call on x, a point): each printed gradient and second derivative must
# read back to the same numbers
CALLS = [("erf(x)", X), ("erfc(x)", X), ("gelu(x)", X), ("asinh(x)", X), ("acosh(x + 2)", X),
         ("atanh(x / 3)", X), ("log2(x)", P3), ("log10(x)", P3), ("exp2(x)", X), ("cbrt(x)", X),
         ("square(x)", X), ("reciprocal(x)", X), ("nan_to_num(x)", X), ("atan2(x, 0.5)", X),
         ("atan2(0.5, x)", X), ("hypot(x, 0.5)", X), ("mod(x, 0.6)", X), ("x % 0.6", X),
         ("mod(2.5, x)", P3), ("logaddexp(x, 0.3)", X), ("var(x)", X), ("std(x, ddof=1)", X),
         ("cumsum(x)", X), ("cumprod(x)", X), ("norm(x, 3)", X), ("norm(x, inf)", X),
         ("ceil(x) * x", X)]


@pytest.mark.parametrize("call, point", CALLS, ids=[c for c, _ in CALLS])
def test_stdlib_printed_derivatives_read_back(call, point):
    bp = dsl.Interpreter()
    bp.exec(f"def f(x: [3]) = sum({call} * [1, 2, 3])\nx0 = {point}")
    for transform in ("grad(f)", "grad(y -> sum(grad(f)(y) * [0.5, -1, 2]))"):
        text = bp.show(transform)
        bp.exec(f"g = {text}")
        want, got = bp.eval(f"{transform}(x0)"), bp.eval("g(x0)")
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13, err_msg=text)


def test_stdlib_erf_within_ulps_of_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(14)
    xs = np.concatenate([rng.uniform(-6, 6, 1500), rng.uniform(-0.6, 0.6, 500),
                         rng.uniform(0, 27, 500), np.linspace(-0.5, 0.5, 11)])
    bp = dsl.Interpreter()
    bp["xs"] = xs
    for name, ulps in (("erf", 1), ("erfc", 3)):
        got = bp.eval(f"{name}(xs)")
        ref = np.array([float(getattr(mp, name)(x)) for x in xs])
        normal = np.abs(ref) > 1e-300
        err = np.abs(got - ref)[normal] / np.spacing(np.abs(ref[normal]))
        assert err.max() <= ulps, (name, float(err.max()), xs[normal][err.argmax()])


def test_stdlib_cumprod_gradient_at_zeros():
    """∂/∂xᵢ Σⱼ wⱼ yⱼ with yⱼ = Πₖ≤ⱼ xₖ is Σⱼ≥ᵢ wⱼ Πₖ≤ⱼ,ₖ≠ᵢ xₖ: written out by hand."""
    bp = dsl.Interpreter()
    w = np.array([1.0, -2.0, 0.5, 3.0, 1.5])
    for x in ([2.0, 0.0, 3.0, -1.0, 0.5], [0.0, 0.0, 2.0, 1.0, 4.0], [0.0] * 5, [1.5, 2.0, -1.0, 0.0, 0.0]):
        bp["w"], bp["x0"] = w, np.array(x)
        got = bp.eval("grad(x -> sum(w * cumprod(x)))(x0)")
        want = [sum(w[j] * math.prod(x[k] for k in range(j + 1) if k != i) for j in range(i, 5))
                for i in range(5)]
        np.testing.assert_array_equal(got, want)
        hess = bp.eval("hessian(x -> sum(w * cumprod(x)))(x0)")
        want2 = [[sum(w[j] * math.prod(x[k] for k in range(j + 1) if k not in (i, l))
                      for j in range(max(i, l), 5)) if i != l else 0.0 for l in range(5)]
                 for i in range(5)]
        np.testing.assert_allclose(hess, want2, rtol=1e-14, atol=1e-14)


def test_stdlib_derivatives_where_undefined_are_jaxs():
    bp = dsl.Interpreter()
    ev = lambda src: np.asarray(bp.eval(src))                          # noqa: E731
    assert np.all(np.isnan(ev("grad(x -> norm(x))([0, 0])")))          # 0/0, as jax.grad(norm)
    assert np.array_equal(ev("grad(x -> norm(x, 1))([0, 2])"), [0.0, 1.0])   # sign(0) = 0
    assert np.array_equal(ev("grad(x -> norm(x, inf))([3, -3])"), [0.5, -0.5])  # ties share
    assert np.all(np.isnan(ev("grad((y, x) -> atan2(y, x), wrt=(0, 1))(0, 0)")))   # 0/0
    assert float(ev("grad(a -> hypot(a, 0))(0)")) == 0.0
    assert float(ev("grad(x -> cbrt(x))(0)")) == np.inf
    assert np.all(np.isnan(ev("grad(x -> std(x))([2, 2, 2])")))        # sqrt' at 0 times 0
    assert np.array_equal(ev("grad(x -> sum(nan_to_num(x)))([1, inf, nan])"), [1.0, 0.0, 0.0])
    assert float(ev("grad(b -> mod(7, b))(3)")) == -2.0                 # -floor(7/3)
    assert float(ev("grad(b -> 7 % b)(-3)")) == 3.0                     # -floor(-7/3)


def test_stdlib_gelu_is_the_exact_form():
    """x Φ(x) to rounding (not the tanh approximation, which differs by ~1e-3 near ±2)."""
    bp = dsl.Interpreter()
    xs = np.array([-3.0, -2.0, -0.5, 0.0, 1.0, 2.0])
    want = np.array([x / 2 * math.erfc(-x / math.sqrt(2)) for x in xs])
    np.testing.assert_allclose(bp.eval(f"gelu({xs.tolist()})"), want, rtol=3e-16 * 8, atol=1e-300)
    tanh_form = 0.5 * xs * (1 + np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs ** 3)))
    assert np.max(np.abs(want - tanh_form)) > 1e-4


@pytest.mark.parametrize("src, words", [
    ("norm(ones(2, 2), 3)", "not a matrix norm"),
    ('norm(ones(3), "fro")', "matrix norm"), ("norm(ones(2, 2, 2), 1)", "axis="),
    ("argmax(zeros(0))", "empty"), ("cumsum(1, axis=0)", "rank"), ("var(ones(3), axis=1)", "range"),
])
def test_stdlib_errors_are_located(src, words):
    with pytest.raises(dsl.BpError) as info:
        dsl.Interpreter().exec(f"y = {src}", filename="m.bp")
    assert words in info.value.message and info.value.span is not None


def test_norm_orders_of_singular_values_follow_numpy():
    """ord='nuc', 2 and -2 of a matrix (and of each matrix over two axes of a stack) are
    the sum, the largest and the smallest singular value; their gradients U Vh and
    u1 v1ᵀ (distinct singular values, full rank) by hand from the SVD."""
    rng = np.random.default_rng(3)
    A, S = rng.normal(size=(2, 3)), rng.normal(size=(2, 3, 4))
    bp = dsl.Interpreter()
    bp["A"], bp["S"] = A, S
    for src, ord_ in (('"nuc"', "nuc"), ("2", 2), ("-2", -2)):
        np.testing.assert_allclose(bp.eval(f"norm(A, {src})"), np.linalg.norm(A, ord_), rtol=1e-13)
        for axis, keep in (((0, 2), 0), ((2, 1), 1), ((-2, -1), 0)):
            np.testing.assert_allclose(bp.eval(f"norm(S, {src}, axis={axis}, keepdims={keep})"),
                                       np.linalg.norm(S, ord_, axis=axis, keepdims=bool(keep)),
                                       rtol=1e-13)
    U, s, Vh = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(bp.eval('grad(B -> norm(B, "nuc"))(A)'), U @ Vh, rtol=1e-12)
    np.testing.assert_allclose(bp.eval("grad(B -> norm(B, 2))(A)"), np.outer(U[:, 0], Vh[0]),
                               rtol=1e-12)
    np.testing.assert_allclose(bp.eval("grad(B -> norm(B, -2))(A)"), np.outer(U[:, -1], Vh[-1]),
                               rtol=1e-12)


@pytest.mark.parametrize("call, numpy_call", [
    ("concat([[1, 2], [3, 4]])", lambda: np.concatenate([[1, 2], [3, 4]])),
    ("concat([a, b])", lambda: np.concatenate([[1, 2], [5, 6, 7]][:1] + [[5, 6]])),
    ("concat(([1, 2], [3]))", lambda: np.concatenate(([1, 2], [3]))),
    ("concat(M, axis=1)", lambda: np.concatenate(np.arange(12.0).reshape(2, 3, 2), axis=1)),
    ("stack([[1, 2], [3, 4]])", lambda: np.stack([[1, 2], [3, 4]])),
    ("stack([a, b], axis=1)", lambda: np.stack([[1, 2], [5, 6]], axis=1)),
    ("stack(M, axis=2)", lambda: np.stack(np.arange(12.0).reshape(2, 3, 2), axis=2)),
    ("stack([1, 2, 3])", lambda: np.stack([1, 2, 3])),
])
def test_concat_and_stack_of_one_sequence_are_numpys(call, numpy_call):
    """concat/stack with one argument take it as NumPy takes one: a tuple is the
    sequence of pieces, a tensor the sequence of its rows (so concat([a, b]) of a list
    literal joins a and b rather than returning the stacked matrix)."""
    bp = dsl.Interpreter()
    bp.exec("a = [1, 2]\nb = [5, 6]\nM = reshape(arange(12), (2, 3, 2))")
    got = bp.eval(call)
    want = numpy_call()
    assert got.shape == want.shape and np.array_equal(got, want)


def test_concat_of_one_tensor_of_unknown_shape_asks_for_the_pieces():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = concat(x)")
    with pytest.raises(dsl.BpError) as err:
        bp.graph("f")
    assert "pass the pieces" in str(err.value) and err.value.span is not None
    assert bp.eval("f([[1, 2], [3, 4]])").tolist() == [1, 2, 3, 4]


def test_concat_of_an_empty_sequence_is_a_located_error():
    bp = dsl.Interpreter()
    for src in ("y = concat([]')", "y = stack(zeros(0, 3))", "y = concat(())"):
        with pytest.raises(dsl.BpError) as err:
            bp.exec(src)
        assert err.value.kind != "internal error" and err.value.span is not None, src
