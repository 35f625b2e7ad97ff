"""Long sums of like terms run as vector sums (dsl/reroll.py, issue 19).

A plan's build groups the terms of a long sum by form and runs each group whose
reads step evenly as one batched vector expression and a sum; what is printed
stays as written.  The values here are derived by hand (the gradients and
Hessians written out with NumPy, not computed by bp), the terms are chosen to
hit each case the grouping distinguishes (steps of 1, 2 and -1, negative
indices, a matrix read along either axis, reads that do not step evenly, terms
of two forms interleaved, a shared scalar parameter, a partial sum used twice),
and the parameters carry names a transform or the printer could capture.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl
from dsl import reroll

N_TERMS = max(reroll.MIN_TERMS, 40)


def _session(src: str, **globals_):
    bp = dsl.Interpreter()
    for k, v in globals_.items():
        bp[k] = v
    bp.exec(src)
    return bp


def _plan_steps(bp) -> int:
    return len(list(bp._plans.values())[-1][0].steps)


def _rosen_source(n: int, name: str = "x") -> str:
    terms = (f"100*({name}[{i + 1}] - {name}[{i}]^2)^2 + (1 - {name}[{i}])^2" for i in range(n - 1))
    return f"def f({name}) = " + " + ".join(terms)


def _rosen_grad(x):
    """∂/∂x of Σ 100 (x_{i+1} - x_i²)² + (1 - x_i)², by hand."""
    t = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * t - 2 * (1 - x[:-1])
    g[1:] += 200 * t
    return g


def _rosen_hessian(x):
    """The tridiagonal Hessian of the same sum, by hand."""
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] += -400 * x[i]
        h[i + 1, i] += -400 * x[i]
    return h


@pytest.mark.parametrize("name", ["x", "v", "t1", "u", "z", "sum", "lambda"])
def test_the_unrolled_rosenbrock_gradient_is_a_vector_plan(name):
    n = N_TERMS + 1
    x = np.linspace(-1.2, 1.3, n)
    bp = _session(_rosen_source(n, name))
    got = bp.function("grad(f)")(x)
    np.testing.assert_allclose(got, _rosen_grad(x), rtol=1e-12, atol=1e-10)
    # written out, the gradient is ~12 steps a term; as vectors, a few in all
    assert _plan_steps(bp) < 30
    value = float(bp.function("f")(x))
    want = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(n - 1))
    assert value == pytest.approx(want, rel=1e-13)
    assert _plan_steps(bp) < 20


def test_second_derivatives_through_a_rerolled_sum():
    n = N_TERMS + 1
    x = np.linspace(-0.7, 1.1, n)
    bp = _session(_rosen_source(n))
    np.testing.assert_allclose(bp.function("hessian(f)")(x), _rosen_hessian(x), rtol=1e-12,
                               atol=1e-9)
    bp.exec("def g(x) = grad(f)(x)")
    v = np.cos(np.arange(n))
    bp["w"] = v
    np.testing.assert_allclose(bp.function("x -> sum(jacobian(g)(x) @ w)")(x),
                               (_rosen_hessian(x) @ v).sum(), rtol=1e-12)
    np.testing.assert_allclose(bp.function("grad(x -> sum(g(x) * w))")(x), _rosen_hessian(x) @ v,
                               rtol=1e-12, atol=1e-9)


def _check(src: str, x, value, grad, steps_below=None, **globals_):
    bp = _session(src, **globals_)
    assert float(bp.function("f")(x)) == pytest.approx(value, rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(bp.function("grad(f)")(x), grad, rtol=1e-12, atol=1e-12)
    if steps_below is not None:
        assert _plan_steps(bp) < steps_below
    return bp


def test_steps_of_two_and_of_minus_one_and_negative_indices():
    n = 2 * N_TERMS + 2
    x = np.linspace(0.1, 2.0, n)
    evens = " + ".join(f"sin(x[{2 * i}]) * x[{2 * i + 1}]" for i in range(N_TERMS))
    backwards = " + ".join(f"x[{-1 - i}]^3" for i in range(N_TERMS))       # x[-1], x[-2], …
    g = np.zeros(n)
    g[0:2 * N_TERMS:2] += np.cos(x[0:2 * N_TERMS:2]) * x[1:2 * N_TERMS:2]
    g[1:2 * N_TERMS:2] += np.sin(x[0:2 * N_TERMS:2])
    g[n - N_TERMS:] += 3 * x[n - N_TERMS:] ** 2
    value = float(np.sum(np.sin(x[0:2 * N_TERMS:2]) * x[1:2 * N_TERMS:2]) + np.sum(x[n - N_TERMS:] ** 3))
    _check(f"def f(x) = {evens} + {backwards}", x, value, g, steps_below=30)


def test_a_matrix_read_along_either_axis_and_one_that_moves_on_both():
    A = np.arange(1.0, 1 + N_TERMS * N_TERMS).reshape(N_TERMS, N_TERMS) / N_TERMS ** 2
    down = " + ".join(f"exp(A[{i}, 2])" for i in range(N_TERMS))
    across = " + ".join(f"A[3, {i}] * A[3, {i}]" for i in range(N_TERMS))
    diagonal = " + ".join(f"tanh(A[{i}, {i}])" for i in range(N_TERMS))     # not one axis
    g = np.zeros_like(A)
    g[:, 2] += np.exp(A[:, 2])
    g[3, :] += 2 * A[3, :]
    idx = np.arange(N_TERMS)
    g[idx, idx] += 1 - np.tanh(A[idx, idx]) ** 2
    value = float(np.exp(A[:, 2]).sum() + (A[3] ** 2).sum() + np.tanh(np.diag(A)).sum())
    _check(f"def f(A) = {down} + {across} + {diagonal}", A, value, g)


def test_reads_that_do_not_step_evenly_stay_as_written_and_right():
    n = N_TERMS
    x = np.linspace(-1.0, 1.0, n) + 0.05
    positions = [(i * i) % n for i in range(N_TERMS)]
    src = "def f(x) = " + " + ".join(f"x[{p}] * cos(x[{p}])" for p in positions)
    g = np.zeros(n)
    for p in positions:
        g[p] += np.cos(x[p]) - x[p] * np.sin(x[p])
    value = sum(x[p] * np.cos(x[p]) for p in positions)
    _check(src, x, value, g)


def test_interleaved_forms_a_leftover_term_and_a_shared_scalar():
    n = N_TERMS
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    terms = []
    for i in range(n):
        terms += [f"(lambda_ * x[{i}] - y[{i}])^2", f"0.5 * x[{i}]^4"]
    src = "def f(x) = " + " + ".join(terms) + " + x[0] * x[5]"
    lam = 0.75
    g = 2 * lam * (lam * x - y) + 2 * x ** 3
    g[0] += x[5]
    g[5] += x[0]
    value = float(np.sum((lam * x - y) ** 2) + np.sum(0.5 * x ** 4) + x[0] * x[5])
    _check(src, x, value, g, steps_below=40, y=y, lambda_=lam)
    # the shared scalar as a parameter differentiated too
    bp = _session("def h(x, lambda_) = " + " + ".join(terms), y=y)
    gx, glam = bp.function("grad(h, wrt=(0, 1))")(x, lam)
    np.testing.assert_allclose(gx, 2 * lam * (lam * x - y) + 2 * x ** 3, rtol=1e-12)
    assert float(glam) == pytest.approx(float(np.sum(2 * (lam * x - y) * x)), rel=1e-12)


def test_a_partial_sum_used_twice():
    x = np.linspace(0.2, 0.9, N_TERMS)
    body = " + ".join(f"x[{i}]^2" for i in range(N_TERMS))
    src = f"def f(x) {{\n  s = {body}\n  return s * s + s\n}}"
    s = float(np.sum(x ** 2))
    _check(src, x, s * s + s, (2 * s + 1) * 2 * x)


def test_a_short_sum_and_the_printed_derivative_stay_as_written():
    bp = _session(_rosen_source(N_TERMS + 1))
    printed = str(bp.eval("grad(f)"))
    assert f"x[{N_TERMS}]" in printed and "sum(" not in printed
    small = _session(_rosen_source(reroll.MIN_TERMS // 2))
    x = np.linspace(-1.2, 1.3, reroll.MIN_TERMS // 2)
    np.testing.assert_allclose(small.function("grad(f)")(x), _rosen_grad(x), rtol=1e-12)
    assert _plan_steps(small) > reroll.MIN_TERMS
