"""Graph-level optimisations of derivative graphs (docs/performance.md,
"Graph-level optimisations"): what the graph looks like, and that its values
are the exact derivatives, first and second order, against formulas written
out by hand in NumPy."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import dsl

LOOP = """
def rosenbrock_loop(x) {
    s = 0
    for i in range(size(x) - 1) {
        s = s + 100 * (x[i + 1] - x[i]^2)^2 + (1 - x[i])^2
    }
    return s
}
"""


def rosen_grad(x):
    t = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * t - 2 * (1 - x[:-1])
    g[1:] += 200 * t
    return g


def rosen_hessian(x):
    n = len(x)
    h = np.zeros((n, n))
    i = np.arange(n - 1)
    h[i, i] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    h[i + 1, i + 1] += 200
    h[i, i + 1] = h[i + 1, i] = -400 * x[:-1]
    return h


def ops_of(bp, src):
    return Counter(n.op for n in bp.graph(src).nodes)


@pytest.fixture
def bp():
    session = dsl.Interpreter()
    session.exec(LOOP)
    return session


# ── the cotangents of scalar reads, gathered ─────────────────────────────

def test_reads_of_every_element_gather_into_one_stack(bp):
    bp.exec("def r(x: [10]) = rosenbrock_loop(x)")
    ops = ops_of(bp, "grad(r)")
    assert ops["stack"] == 1 and ops["unindex"] == 0
    x = np.linspace(-1.2, 1.1, 10)
    np.testing.assert_allclose(bp.function("grad(r)")(x), rosen_grad(x), rtol=1e-13)


def test_gathered_gradient_of_the_loop_at_100(bp):
    x = np.linspace(-1, 1, 100)
    np.testing.assert_allclose(bp.function("grad(rosenbrock_loop)")(x), rosen_grad(x), rtol=1e-13)


def test_gathered_reads_differentiate_again(bp):
    """hessian = jacobian(grad): the stack's own VJP (and batching) give the Hessian;
    hvp goes forward through the stack."""
    x = np.array([0.3, -1.2, 0.9, 1.4, -0.5, 0.2])
    v = np.array([1.0, -2.0, 0.5, 0.25, 3.0, -1.0])
    np.testing.assert_allclose(bp.function("hessian(rosenbrock_loop)")(x), rosen_hessian(x),
                               rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(bp.function("hvp(rosenbrock_loop)")(x, v), rosen_hessian(x) @ v,
                               rtol=1e-13, atol=1e-12)


def test_sparse_reads_stay_single_writes(bp):
    """Two reads of a vector of 10: a stack would be mostly zeros."""
    bp.exec("def f(x: [10]) = x[2] * x[7]")
    ops = ops_of(bp, "grad(f)")
    assert ops["stack"] == 0 and ops["unindex"] == 2
    x = np.arange(10.0)
    expected = np.zeros(10)
    expected[2], expected[7] = 7.0, 2.0
    np.testing.assert_array_equal(bp.function("grad(f)")(x), expected)


def test_a_single_read_is_a_single_write(bp):
    bp.exec("def f(x: [2]) = sin(x[1])")
    assert ops_of(bp, "grad(f)")["stack"] == 0
    np.testing.assert_allclose(bp.function("grad(f)")(np.array([0.0, 0.5])), [0.0, np.cos(0.5)])


def test_negative_and_positive_indices_of_one_position_add_up(bp):
    bp.exec("def f(x: [3]) = x[-1] * x[2] + x[0] + 3 * x[-3]")
    x = np.array([1.5, -2.0, 0.5])
    np.testing.assert_allclose(bp.function("grad(f)")(x), [4.0, 0.0, 1.0])
    assert ops_of(bp, "grad(f)")["unindex"] == 0


def test_matrix_element_reads_gather_into_a_reshaped_stack(bp):
    bp.exec("def f(A: [2, 3]) { s = 0; for i in range(2) { for j in range(3) "
            "{ s = s + (i + j + 1) * A[i, j]^2 } }; return s }")
    ops = ops_of(bp, "grad(f)")
    assert ops["stack"] == 1 and ops["reshape"] == 1 and ops["unindex"] == 0
    A = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    weights = np.add.outer(np.arange(2), np.arange(3)) + 1
    np.testing.assert_allclose(bp.function("grad(f)")(A), 2 * weights * A, rtol=1e-15)
    np.testing.assert_allclose(bp.function("hessian(f)")(A),
                               np.diag((2 * weights).ravel()).reshape(2, 3, 2, 3), rtol=1e-15)


def test_row_reads_and_element_reads_of_one_matrix(bp):
    """x[i] (a row) and x[i, j] (an element) are gathered apart and added."""
    bp.exec("def f(A: [2, 2]) = sum(A[0] * A[1]) + A[0, 1]^2 + A[1, 0] * A[1, 1]")
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array([[3.0, 4.0 + 4.0], [1.0 + 4.0, 2.0 + 3.0]])
    np.testing.assert_allclose(bp.function("grad(f)")(A), expected, rtol=1e-15)


def test_reads_of_an_intermediate_are_gathered_before_its_own_rule(bp):
    bp.exec("def f(x: [3]) { y = exp(x); return y[0] * y[1] + y[2] + y[1]^2 }")
    x = np.array([0.1, -0.3, 0.7])
    y = np.exp(x)
    expected = np.array([y[1], y[0] + 2 * y[1], 1.0]) * y
    np.testing.assert_allclose(bp.function("grad(f)")(x), expected, rtol=1e-14)
    assert ops_of(bp, "grad(f)")["stack"] == 1


def test_reads_under_a_branch_keep_the_branch_not_taken_exact(bp):
    bp.exec("def f(x: [2]) = if x[0] > 0 then sqrt(x[0]) * x[1] else x[1]")
    np.testing.assert_array_equal(bp.function("grad(f)")(np.array([0.0, 2.0])), [0.0, 1.0])
    np.testing.assert_allclose(bp.function("grad(f)")(np.array([4.0, 2.0])), [0.5, 2.0])


def test_stack_kernel_along_axis_0_matches_numpy_stack():
    from dsl.ops import REGISTRY
    kernel = REGISTRY["stack"].kernel
    pieces = [np.array(1.5), np.float64(-2.0), np.array(0.25)]
    np.testing.assert_array_equal(kernel(*pieces, axis=0), np.stack(pieces))
    rows = [np.arange(3.0), np.arange(3.0) * 2]
    for axis in (0, 1, -1):
        got = kernel(*rows, axis=axis)
        np.testing.assert_array_equal(got, np.stack(rows, axis=axis))
        assert got.dtype == np.float64


# ── Jacobians on bands (batching.batch_identity) ─────────────────────────

BANDED = {
    "rosen": "sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)",
    "neighbours": "sum(sin(x[1:] * x[:-1]) / (2 + x[:-1]^2))",
    "second difference": "sum((x[2:] - 2 * x[1:-1] + x[:-2])^2 * exp(x[1:-1]))",
    "wide": "sum(x[3:] * x[:-3]) - sum(x[1:] * tanh(x[:-1])) + sum(x^3)",
    "tail": "sum(x[-2:] * x[:2]) + x[0] * x[-1]",
}


def dense_session(monkeypatch):
    """A session whose Jacobians batch the dense identity (the path before bands)."""
    from dsl import batching
    monkeypatch.setattr(batching, "batch_identity", lambda outputs, seed: None)
    return dsl.Interpreter()


@pytest.mark.parametrize("name", sorted(BANDED))
@pytest.mark.parametrize("n", [2, 4, 9])
def test_banded_hessian_equals_the_dense_batched_one(name, n, monkeypatch):
    body = BANDED[name]
    if "x[3:]" in body and n < 4 or "x[2:]" in body and n < 3:
        pytest.skip("slices longer than the vector")
    x = np.random.default_rng(n).uniform(-1.5, 1.5, n)
    banded = dsl.Interpreter()
    banded.exec(f"def f(x) = {body}")
    got = banded.function("hessian(f)")(x)
    dense = dense_session(monkeypatch)
    dense.exec(f"def f(x) = {body}")
    expected = dense.function("hessian(f)")(x)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * np.max(np.abs(expected)))
    np.testing.assert_allclose(got, got.T, rtol=1e-13, atol=1e-13 * np.max(np.abs(got)))


def test_banded_hessian_is_the_formula_and_uses_bands():
    from dsl import batching
    calls = []
    original = batching.batch_identity

    def spy(outputs, seed):
        got = original(outputs, seed)
        calls.append(got is not None)
        return got
    bp = dsl.Interpreter()
    bp.exec(f"def f(x) = {BANDED['rosen']}")
    x = np.linspace(-1.2, 1.3, 50)
    batching.batch_identity = spy
    try:
        h = bp.function("hessian(f)")(x)
    finally:
        batching.batch_identity = original
    assert calls == [True]
    np.testing.assert_allclose(h, rosen_hessian(x), rtol=1e-13, atol=1e-10)
    assert h.flags.c_contiguous and h.shape == (50, 50)


def test_jacobian_through_bands_in_forward_mode():
    """3 inputs, 4 outputs: the JVP is batched, here through a write x → w[1:]."""
    bp = dsl.Interpreter()
    bp.exec("def f(x: [3]) = grad(z -> sum(z[1:] * sin(x)))([0, 0, 0, 0]) * [1, 2, 3, 4]")
    x = np.array([0.3, -0.7, 1.1])
    expected = np.zeros((4, 3))
    expected[1:, :] = np.diag(np.cos(x)) * np.array([2, 3, 4])[:, None]
    np.testing.assert_allclose(bp.function("jacobian(f)")(x), expected, rtol=1e-15)


@pytest.mark.parametrize("body", ["sum(x) * x[1:]", "x[1:] @ [[1, 2], [3, 4]]",
                                  "cumsum_free(x)"])
def test_jacobians_without_a_banded_rule_fall_back_to_dense(body):
    """sum, matmul: no banded rule, so the dense identity (same values as before)."""
    if body == "cumsum_free(x)":
        body = "concat(x[1:], x[:1]) * x"              # concat has no banded rule either
    bp = dsl.Interpreter()
    bp.exec(f"def f(x: [3]) = {body}")
    jac = bp.function("jacobian(f)")
    x = np.array([0.5, -1.0, 2.0])
    h = 1e-6
    fd = np.stack([(bp.function("f")(x + h * e) - bp.function("f")(x - h * e)) / (2 * h)
                   for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(jac(x), fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("src, n", [("x[1:4] * x[:3]", 5), ("x[2:] * sin(x[:-2])", 6),
                                    ("x[:2] / (1 + x[3:]^2)", 5), ("-(x[1:] - x[:-1])", 4)])
def test_banded_jacobians_of_fewer_outputs_than_inputs(src, n, monkeypatch):
    """Reverse mode (m < n): the bands of a VJP seed over the outputs."""
    x = np.random.default_rng(n).standard_normal(n)
    banded = dsl.Interpreter()
    banded.exec(f"def f(x: [{n}]) = {src}")
    got = banded.function("jacobian(f)")(x)
    dense = dense_session(monkeypatch)
    dense.exec(f"def f(x: [{n}]) = {src}")
    np.testing.assert_allclose(got, dense.function("jacobian(f)")(x), rtol=1e-14, atol=1e-15)
