"""Fused plan steps (dsl/evaluate.py): sum(x^2) as one dot product, p + a @ b of an
outer product made a block at a time, an output of + - * / computed into a temporary
made for it, and the outer product's kernel (small ufunc buffers, +0 only where a
product can be zero).

Expected values are computed here independently (math.fsum, NumPy's own matmul and
arithmetic), never taken from bp.  Each rewrite is checked to fire where it should and
not where the temporary it removes is read elsewhere; --check-nan still names the node
of the fused ones that first made a nan or inf.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dsl
from dsl import evaluate


def _fn(src: str, call: str, check_nan: bool = False):
    bp = dsl.Interpreter(check_nan=check_nan)
    bp.exec(src)
    return bp, bp.function(call)


def _plan(bp):
    return next(iter(bp._plans.values()))[0]


def _kernel_names(plan) -> list[str]:
    return [getattr(evaluate._base(k), "__name__", "") for k, *_ in plan.steps]


def _ops(plan) -> list[str]:
    return [step[4].op for step in plan.steps]


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


# ── sum(x^2) over every axis: one dot product ────────────────────────────────

@pytest.mark.parametrize("shape", [(3,), (4, 5), (2, 3, 4), (300, 300), (70001,)])
@pytest.mark.parametrize("body", ["sum(x^2)", "sum(x * x)"])
def test_sum_of_squares_is_one_step(shape, body):
    bp, f = _fn(f"def f(x) {{ return {body} }}", "f")
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    got = f(x)
    expected = math.fsum(float(v) * float(v) for v in x.ravel())
    assert float(got) == pytest.approx(expected, rel=1e-13)
    plan = _plan(bp)
    assert _kernel_names(plan) == ["sum_of_squares"] and _ops(plan) == ["sum"]
    assert float(f(x)) == float(got)          # generated code: the same number as the loop
    assert np.asarray(got).shape == ()


def test_sum_of_squares_over_all_axes_by_name_and_keepdims():
    bp, f = _fn("def f(x) { return sum(x^2, axis=(0, 1), keepdims=1) }", "f")
    x = np.arange(12.0).reshape(3, 4) - 5.5
    got = f(x)
    assert got.shape == (1, 1)
    assert float(got[0, 0]) == math.fsum(v * v for v in x.ravel())
    assert _kernel_names(_plan(bp)) == ["sum_of_squares"]


def test_sum_of_squares_not_fused_where_the_square_is_read_elsewhere():
    # x^2 is read by the sum and by the product: it stays a step of its own.
    bp, f = _fn("def f(x) { return x^2 * sum(x^2) }", "f")
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(f(x), np.array([1.0, 4.0, 9.0]) * 14.0, rtol=1e-15)
    assert "sum_of_squares" not in _kernel_names(_plan(bp))
    assert "pow" in _ops(_plan(bp))


def test_sum_of_squares_not_fused_over_some_axes_or_other_products():
    bp, f = _fn("def f(x) { return sum(x^2, axis=0) }", "f")
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(x), np.array([0 + 9, 1 + 16, 4 + 25.0]))
    assert "sum_of_squares" not in _kernel_names(_plan(bp))
    bp, f = _fn("def f(x, y) { return sum(x * y) }", "f")
    assert float(f(np.array([1.0, 2.0]), np.array([3.0, -4.0]))) == -5.0
    assert "sum_of_squares" not in _kernel_names(_plan(bp))


def test_gradient_of_an_l2_term():
    bp, f = _fn("def f(w) { return 0.5 * sum(w^2) }", "value_and_grad(f)")
    w = np.array([[1.0, -2.0], [3.0, 0.5]])
    v, g = f(w)
    assert float(v) == 0.5 * (1 + 4 + 9 + 0.25)
    np.testing.assert_array_equal(g, w)


def test_check_nan_names_the_square_or_the_sum():
    bp, f = _fn("def f(x) { return sum(x^2) }", "f", check_nan=True)
    with pytest.raises(dsl.BpValueError) as info:
        f(np.array([1.0, 1e200]))                 # 1e400 overflows in the square
    assert "pow gave inf" in str(info.value)
    bp, f = _fn("def f(x) { return sum(x^2) }", "f", check_nan=True)
    with pytest.raises(dsl.BpValueError) as info:
        f(np.full(4, 1e154))                      # each square finite, their sum not
    assert "sum gave inf" in str(info.value)
    assert float(f(np.array([3.0, 4.0]))) == 25.0


# ── the outer product's kernel ────────────────────────────────────────────

SPECIALS = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-200, -1e-200, 5e-324]


@pytest.mark.parametrize("m, n", [(40, 30), (200, 100), (784, 256), (3, 600)])
def test_outer_product_is_matmul_to_the_bit(m, n):
    rng = np.random.default_rng(m * n)
    for trial in range(40):
        a, b = rng.standard_normal((m, 1)), rng.standard_normal((1, n))
        for arr in (a, b):
            for _ in range(trial % 4):
                arr.flat[rng.integers(arr.size)] = SPECIALS[rng.integers(len(SPECIALS))]
        if trial == 5:
            a[:] = np.inf                          # inf * 0 = nan: no product is zero
        if trial == 6:
            b[:] = -0.0                            # every product -0: matmul gives +0
        with np.errstate(all="ignore"):
            expected = np.matmul(a, b)
            got = evaluate._outer_product(a, b)
        same = (np.isnan(expected) & np.isnan(got)) | (
            (expected == got) & (np.signbit(expected) == np.signbit(got)))
        assert same.all(), (m, n, trial)


def test_outer_product_in_a_plan():
    bp, f = _fn("def f(a, b) { return a @ b }", "f")
    a = np.linspace(-1, 1, 301).reshape(301, 1)    # a[150] is 0: its products are +0
    b = -np.linspace(0.5, 2, 200).reshape(1, 200)
    got = f(a, b)
    assert a[150, 0] == 0 and _same_bits(got, np.matmul(a, b)) and not np.signbit(got[150]).any()
    assert _kernel_names(_plan(bp)) == ["_outer_product"]


# ── p + a @ b made a block at a time ──────────────────────────────────────

def test_add_of_an_outer_product_is_one_step():
    bp, f = _fn("def f(p, a, b) { return p + a @ b }", "f")
    rng = np.random.default_rng(7)
    p, a, b = rng.standard_normal((300, 200)), rng.standard_normal((300, 1)), rng.standard_normal((1, 200))
    expected = p + np.matmul(a, b)
    for _ in range(3):                             # the loop, then generated code
        assert _same_bits(f(p, a, b), expected)
    assert _kernel_names(_plan(bp)) == ["add_outer"]
    bp, f = _fn("def f(p, a, b) { return a @ b + p }", "f")
    assert _same_bits(f(p, a, b), np.matmul(a, b) + p)


def test_scaled_add_of_an_outer_product_takes_the_scaling_in():
    bp, f = _fn("def f(q, a, b) { return 3 * q + a @ b }", "f")
    rng = np.random.default_rng(8)
    q, a, b = rng.standard_normal((100, 257)), rng.standard_normal((100, 1)), rng.standard_normal((1, 257))
    a[3] = -0.0
    q[3] = -0.0                                    # -0 + (-0 * b): +0 as matmul makes it
    expected = 3.0 * q + np.matmul(a, b)
    for _ in range(3):
        assert _same_bits(f(q, a, b), expected)
    assert _kernel_names(_plan(bp)) == ["add_outer"]


def test_weight_gradient_at_a_batch_of_one():
    src = "def f(W) { return sum(tanh(x @ W)) + 0.01 * sum(W^2) }"
    bp = dsl.Interpreter()
    rng = np.random.default_rng(9)
    x, W = rng.standard_normal((1, 120)), rng.standard_normal((120, 90))
    bp["x"] = x
    bp.exec(src)
    g = bp.function("grad(f)")
    expected = x.T @ (1 - np.tanh(x @ W) ** 2) + 0.02 * W
    for _ in range(3):
        np.testing.assert_allclose(g(W), expected, rtol=1e-13, atol=1e-15)
    names = _kernel_names(_plan(bp))
    assert "add_outer" in names and "sum_of_squares" not in names   # grad alone: no sum of squares
    vg = bp.function("value_and_grad(f)")
    v, gv = vg(W)
    assert float(v) == pytest.approx(np.tanh(x @ W).sum() + 0.01 * math.fsum((W * W).ravel()), rel=1e-13)
    np.testing.assert_allclose(gv, expected, rtol=1e-13, atol=1e-15)


def test_add_of_an_outer_product_not_fused_where_the_product_is_read_elsewhere():
    bp, f = _fn("def f(p, a, b) { return sum(p + a @ b) + sum(a @ b) }", "f")
    p, a, b = np.ones((100, 100)), np.full((100, 1), 2.0), np.full((1, 100), 3.0)
    assert float(f(p, a, b)) == 100 * 100 * 7.0 + 100 * 100 * 6.0
    names = _kernel_names(_plan(bp))
    assert "add_outer" not in names and "_outer_product" in names


def test_check_nan_names_the_outer_product():
    bp, f = _fn("def f(p, a, b) { return p + a @ b }", "f", check_nan=True)
    p, a, b = np.zeros((100, 100)), np.ones((100, 1)), np.ones((1, 100))
    a[7] = 1e200
    b[0, 3] = 1e200
    with pytest.raises(dsl.BpValueError) as info:
        f(p, a, b)
    assert "matmul gave inf" in str(info.value)
    p[1, 1] = 1e308
    b[0, 3] = 1.0
    a[7] = 1.0
    a[1] = 1e308
    with pytest.raises(dsl.BpValueError) as info:
        f(p, a, b)                                # each finite, their sum not
    assert "add gave inf" in str(info.value)


# ── an output computed into a temporary made for it ───────────────────────

def test_output_computed_into_its_fresh_operand():
    bp, f = _fn("def f(x, y) { return x * y + y }", "f")
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((100, 100)), rng.standard_normal((100, 100))
    x0, y0 = x.copy(), y.copy()
    results = [f(x, y) for _ in range(4)]
    for r in results:
        assert _same_bits(r, x0 * y0 + y0)
    for r, s in zip(results, results[1:]):
        assert not np.shares_memory(r, s)          # each call's result is its own
    assert _same_bits(x, x0) and _same_bits(y, y0)
    plan = _plan(bp)
    assert _kernel_names(plan)[-1] == "into" and plan.taken


def test_output_not_computed_into_an_operand_read_elsewhere():
    bp, f = _fn("def f(x, y) { return (x * y + y) * sum(x * y) }", "f")
    x, y = np.full((100, 100), 2.0), np.full((100, 100), 0.5)
    for _ in range(3):
        np.testing.assert_array_equal(f(x, y), np.full((100, 100), 1.5 * 10000.0))
    plan = _plan(bp)
    product = next(step[2] for step in plan.steps if step[4].op == "mul" and step[4].inputs[0].op == "input")
    assert product not in plan.taken


def test_unbroadcast_over_axes_of_length_one_is_a_reshape():
    bp = dsl.Interpreter()
    bp.exec("def f(b) { return sum(tanh(x @ W + b)) }")
    rng = np.random.default_rng(11)
    x, W, b = rng.standard_normal((1, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    bp["x"], bp["W"] = x, W
    g = bp.function("grad(f)")
    expected = (1 - np.tanh(x @ W + b) ** 2)[0]
    results = [g(b) for _ in range(3)]
    for r in results:
        np.testing.assert_allclose(r, expected, rtol=1e-15)
        assert r.shape == (4,) and r.base is None        # an array of its own, not a view
    assert not np.shares_memory(results[1], results[2])
    assert "unbroadcast" in _ops(_plan(bp)) and "<lambda>" in _kernel_names(_plan(bp))


def test_check_nan_sees_an_output_computed_into_its_operand():
    bp, f = _fn("def f(x, y) { return x * y + y }", "f", check_nan=True)
    x, y = np.ones((100, 100)), np.full((100, 100), 1e308)   # x * y finite, + y not
    with pytest.raises(dsl.BpValueError) as info:
        f(x, y)
    assert "add gave inf" in str(info.value)
    assert _kernel_names(_plan(bp))[-1] == "into"
    np.testing.assert_array_equal(f(x, np.full((100, 100), 2.0)), np.full((100, 100), 4.0))
