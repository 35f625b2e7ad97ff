"""x[idx] with an index tensor, runtime indices, dynamic slices X[s : s + n], their
updates, and stop_gradient, through the language (the ops themselves are walked
by tests/test_ops_*.py with the samples in tests/ops_samples/gather.py).

Expected values come from NumPy on the same arrays, or by hand.
"""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import dsl

X = np.arange(24.0).reshape(2, 3, 4) * 0.5 - 3


def bp_with(**values) -> dsl.Interpreter:
    bp = dsl.Interpreter(stdout=io.StringIO())
    for k, v in values.items():
        bp[k] = v
    return bp


def error(src: str, **values) -> dsl.BpError:
    with pytest.raises(dsl.BpError) as info:
        bp_with(**values).exec(src)
    return info.value


def numeric_grad(fn, a, h=1e-6):
    g = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += h
        down[i] -= h
        g[i] = (fn(up) - fn(down)) / (2 * h)
    return g


INDEXING = [  # bp index text, NumPy index
    ("[0, 1, 1], [2, 0, -1]", (np.array([0, 1, 1]), np.array([2, 0, -1]))),
    ("[[1], [0]], 2, [0, 3]", (np.array([[1], [0]]), 2, np.array([0, 3]))),
    (":, [0, 2, 2], [-1, 1, 1]", (slice(None), np.array([0, 2, 2]), np.array([-1, 1, 1]))),
    ("[1, 0, 1]", np.array([1, 0, 1])),
    ("[[0], [1]]", np.array([[0], [1]])),
    (":, [2, 0, 2]", (slice(None), np.array([2, 0, 2]))),
    (":, :, [-1, 0]", (slice(None), slice(None), np.array([-1, 0]))),
    ("1, [2, 0]", (1, np.array([2, 0]))),
    ("1, [2, 0], 3", (1, np.array([2, 0]), 3)),
    ("[1, 1], 1:", (np.array([1, 1]), slice(1, None))),
    (":, 0, [[1, 3], [0, 0]]", (slice(None), 0, np.array([[1, 3], [0, 0]]))),
    ("[1, 0], :, 1:", (np.array([1, 0]), slice(None), slice(1, None))),
]


@pytest.mark.parametrize("text, key", INDEXING, ids=[t for t, _ in INDEXING])
def test_an_index_tensor_gathers_as_numpy_advanced_indexing(text, key):
    bp = bp_with(X=X)
    assert np.array_equal(bp.eval(f"X[{text}]"), X[key])
    # the same through a function, so the index is lowered into a graph
    bp.exec(f"def f(x) = x[{text}]")
    assert np.array_equal(bp.eval("f(X)"), X[key])
    # its gradient: the cotangent scattered back, repeats adding up
    w = np.random.default_rng(1).standard_normal(X[key].shape)
    bp["W"] = w
    expected = np.zeros(X.shape)
    np.add.at(expected, key, w)
    assert np.allclose(bp.eval(f"grad(x -> sum(x[{text}] * W))(X)"), expected, rtol=0, atol=1e-15)


def test_picking_one_element_per_row_with_two_index_tensors():
    """logp[arange(n), labels], the usual negative log-likelihood."""
    bp = bp_with(Z=X[0])
    bp.exec("def nll(z: [3, 4], y) = -mean(log_softmax(z)[arange(3), y])")
    z, y = X[0], np.array([3, 0, 1])
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert float(bp.eval("nll(Z, [3, 0, 1])")) == pytest.approx(-logp[np.arange(3), y].mean(),
                                                                 rel=1e-14)
    soft = np.exp(logp)
    expected = (soft - np.eye(4)[y]) / 3
    assert np.allclose(bp.eval("grad(nll)(Z, [3, 0, 1])"), expected, rtol=1e-13, atol=1e-16)
    text = bp.show("grad(nll)")
    bp.exec(f"g = {text}")
    assert np.allclose(bp.eval("g(Z, [3, 0, 1])"), expected, rtol=1e-13, atol=1e-16)
    # an update through two index tensors, a repeated pair getting the mean
    bp.exec("W = zeros(2, 3)\nW[[0, 1, 1], [1, 2, 2]] = [5, 6, 8]")
    assert np.array_equal(bp["W"], [[0, 5, 0], [0, 0, 7]])


def test_a_runtime_scalar_index_and_an_index_computed_in_the_function():
    bp = bp_with(X=X)
    bp.exec("def row(x, i) = x[i]\ndef cell(x, i) = x[1, i + 1, 2]")
    assert np.array_equal(bp.eval("row(X, 1)"), X[1])
    assert float(bp.eval("cell(X, 1)")) == X[1, 2, 2]
    assert np.array_equal(bp.eval("grad((x, i) -> sum(row(x, i)))(X, 1)"),
                          np.stack([np.zeros((3, 4)), np.ones((3, 4))]))
    assert float(bp.eval("grad(row, wrt=i)(1, 0)" if False else "cell(X, -2)")) == X[1, -1, 2]


def test_second_derivatives_and_jacobians_through_a_gather():
    bp = bp_with(x=np.array([0.5, -1.0, 2.0]))
    # f = x0^3 + 2 x2^3 (index 2 twice): H = diag(6 x0, 0, 12 x2)
    bp.exec("def f(x) = sum(x[[0, 2, 2]]^3)")
    assert np.allclose(bp.eval("hessian(f)(x)"), np.diag([3.0, 0.0, 24.0]), rtol=1e-15)
    j = bp.eval("jacobian(x -> x[[[2, 0], [1, 1]]])(x)")
    expected = np.zeros((2, 2, 3))
    for (a, b), k in np.ndenumerate(np.array([[2, 0], [1, 1]])):
        expected[a, b, k] = 1
    assert np.array_equal(j, expected)


def test_gather_mistakes_are_located():
    e = error("y = X[[0, 1], 1, [4, 0]]", X=X)
    assert e.kind == "value error" and "out of bounds" in e.message
    e = error("y = X[[0, 1], :, [1, 2]]", X=X)
    assert e.kind == "value error" and "x[i][:, j]" in e.message
    e = error("y = X[0, :, [1, 2]]", X=X)
    assert e.kind == "value error" and "x[i][:, j]" in e.message
    e = error("y = X[[0.5]]", X=X)
    assert e.kind == "value error" and "whole number" in e.message and e.column == 5
    e = error("y = X[[0, 2]]", X=X)
    assert e.kind == "value error" and "out of bounds" in e.message
    e = error("def f(x, i) = x[i]\ny = f(X, 7)", X=X)
    assert e.kind == "value error" and e.line == 1
    e = error('y = X[(1, 2)]', X=X)
    assert e.kind == "type error"


# ── dynamic slices ───────────────────────────────────────────────────────

def test_a_slice_with_a_runtime_start_and_a_constant_length():
    D = np.arange(20.0).reshape(10, 2)
    bp = bp_with(D=D)
    bp.exec("B = 3\ndef batch(X, i) = X[i*B : i*B + B]\n"       # a global is a constant
            "def middle(X, s) = X[:, s + 1 : 3 + s]\n"
            "def loss(X, i) = sum(batch(X, i)^2)")
    for i in range(3):
        assert np.array_equal(bp.eval(f"batch(D, {i})"), D[3 * i:3 * i + 3])
    assert np.array_equal(bp.eval("middle(D', 4)"), D.T[:, 5:7])
    # the derivative is a dynamic update of zeros
    expected = np.zeros(D.shape)
    expected[3:6] = 2 * D[3:6]
    assert np.array_equal(bp.eval("grad(loss)(D, 1)"), expected)
    assert np.array_equal(bp.eval("hessian(X -> loss(X, 2))(D)").reshape(20, 20),
                          np.diag(np.r_[np.zeros(12), 2 * np.ones(6), np.zeros(2)]))
    assert float(bp.eval("grad(loss, wrt=i)(D, 1)")) == 0.0


def test_a_dynamic_slice_in_a_loop_over_minibatches():
    bp = bp_with(D=np.arange(12.0))
    bp.exec("def total(X) {\n  s = 0\n  for k in range(4) { s = s + sum(X[k*3 : k*3 + 3]) }\n"
            "  return s\n}")
    assert float(bp.eval("total(D)")) == np.arange(12.0).sum()
    assert np.array_equal(bp.eval("grad(total)(D)"), np.ones(12))


def test_dynamic_slice_mistakes_are_located():
    e = error("def f(X, i, j) = X[i : j]\nf(D, 1, 2)", D=np.ones(5))
    assert e.kind == "value error" and "known when the function is built" in e.message
    assert (e.line, e.column) == (1, 20)
    e = error("def f(X, i) = X[i :]\nf(D, 1)", D=np.ones(5))
    assert e.kind == "value error" and "constant length" in e.message
    e = error("def f(X, i) = X[i : i + 2 : 2]\nf(D, 1)", D=np.ones(5))
    assert e.kind == "value error" and "step" in e.message
    e = error("def f(X, i) = X[i : i + 3]\nf(D, 3)", D=np.ones(5))
    assert e.kind == "value error" and "out of bounds" in e.message and e.line == 1
    e = error("def f(X, i) = X[i : i + 1.5]\nf(D, 1)", D=np.ones(5))
    assert e.kind == "value error" and "whole number" in e.message


def test_printed_derivatives_of_gathers_and_dynamic_slices_read_back_and_export(tmp_path):
    D = np.arange(12.0).reshape(6, 2) / 7
    bp = bp_with(D=D)
    bp.exec("def loss(X, i) = sum(sin(X[i*2 : i*2 + 2, [1, 0, 1]]))")
    # by hand: rows 2i, 2i+1; column 1 twice, column 0 once
    expected = np.zeros(D.shape)
    expected[2:4, 1] = 2 * np.cos(D[2:4, 1])
    expected[2:4, 0] = np.cos(D[2:4, 0])
    assert np.allclose(bp.eval("grad(loss)(D, 1)"), expected, rtol=1e-15)
    text = bp.show("grad(loss)")
    bp.exec(f"g = {text}")
    assert np.allclose(bp.eval("g(D, 1)"), expected, rtol=1e-15)
    path = tmp_path / "m.py"
    bp.exec(f'export grad(loss) to "{path}"')
    code = (f"import sys, numpy as np; sys.path.insert(0, {str(tmp_path)!r}); import m; "
            f"D = np.arange(12.0).reshape(6, 2) / 7; "
            f"print(repr(m.grad_loss(D, np.array(1.0)).tolist()))")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert np.allclose(eval(got), expected, rtol=1e-15)


# ── updates with tensor indices and dynamic slices ───────────────────────

def test_updates_through_an_index_tensor_follow_numpy():
    bp = bp_with(x=np.array([1.0, 2.0, 3.0, 4.0]))
    bp.exec("y = x\nx[[3, 0]] = [10, 20]\nz = y\nz[[1, 1, 2]] += 5\nw = y\nw[[0, 0]] = [1, 2]")
    expected = np.array([1.0, 2.0, 3.0, 4.0])
    expected[[3, 0]] = [10, 20]
    assert np.array_equal(bp["x"], expected)
    # NumPy's x[i] += v with a repeated index adds once (it is x[i] = x[i] + v)
    expected = np.array([1.0, 2.0, 3.0, 4.0])
    expected[[1, 1, 2]] += 5
    assert np.array_equal(bp["z"], expected)
    # a repeated position assigned two values gets their mean (NumPy leaves it unspecified)
    assert np.array_equal(bp["w"], [1.5, 2.0, 3.0, 4.0])
    assert np.array_equal(bp["y"], [1.0, 2.0, 3.0, 4.0])
    # scatter_add adds every one, as np.add.at
    expected = np.array([1.0, 2.0, 3.0, 4.0])
    np.add.at(expected, [1, 1, 2], 5)
    assert np.array_equal(bp.eval("scatter_add(y, [1, 1, 2], 5)"), expected)


@pytest.mark.parametrize("op", ["=", "+=", "*="])
def test_update_derivatives_through_index_tensors_and_dynamic_slices(op):
    bp = dsl.Interpreter()
    bp.exec(f"def f(x, v, i) {{\n  x[[2, 0, 2]] {op} v\n  x[i : i + 2] {op} 2 * v[:2]\n"
            f"  return sum(x^3)\n}}")
    rng = np.random.default_rng(5)
    x, v = rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 3)

    def f(x, v):
        x = x.copy()
        fn = {"=": lambda a, b: b, "+=": np.add, "*=": np.multiply}[op]
        new = fn(x[[2, 0, 2]], v)
        x[[2, 0]] = 0
        count = np.zeros(5)
        np.add.at(count, [2, 0, 2], 1)
        acc = np.zeros(5)
        np.add.at(acc, [2, 0, 2], new)
        x = np.where(count > 0, acc / np.maximum(count, 1), x)
        x[3:5] = fn(x[3:5], 2 * v[:2])
        return float(np.sum(x ** 3))

    bp["X"], bp["V"] = x, v
    assert float(bp.eval("f(X, V, 3)")) == pytest.approx(f(x, v), rel=1e-14)
    gx, gv = bp.eval("grad(f, wrt=(x, v))(X, V, 3)")
    assert np.allclose(gx, numeric_grad(lambda a: f(a, v), x), atol=1e-7)
    assert np.allclose(gv, numeric_grad(lambda b: f(x, b), v), atol=1e-7)
    h = bp.eval("hessian(f, wrt=v)(X, V, 3)")
    fd = np.stack([(bp.eval(f"grad(f, wrt=v)(X, V + [{', '.join(map(str, e))}], 3)") -
                    bp.eval(f"grad(f, wrt=v)(X, V - [{', '.join(map(str, e))}], 3)")) / 2e-6
                   for e in np.eye(3) * 1e-6], axis=-1)
    assert np.allclose(h, fd, atol=1e-5)


# ── stop_gradient ────────────────────────────────────────────────────────

def test_stop_gradient_is_the_value_with_derivative_zero():
    bp = bp_with(x=np.array([1.0, -2.0, 3.0]))
    assert np.array_equal(bp.eval("stop_gradient(x)"), [1.0, -2.0, 3.0])
    # d/dx sum(sg(x) * x) = sg(x) = x; d²: 0 from the stopped side, 1 from the other … diag(1)
    assert np.array_equal(bp.eval("grad(x -> sum(stop_gradient(x) * x))(x)"), [1.0, -2.0, 3.0])
    assert np.array_equal(bp.eval("hessian(x -> sum(stop_gradient(x) * x^2))(x)"),
                          np.diag([2.0, -4.0, 6.0]))
    assert np.array_equal(bp.eval("grad(x -> sum(stop_gradient(x^2)))(x)"), np.zeros(3))
    assert bp.show("x -> stop_gradient(x) * 2") == "x -> 2*stop_gradient(x)"
    assert bp.show("grad(x -> sum(stop_gradient(x) * x))") == "x -> stop_gradient(x)"


# ── printed first and second derivatives read back ───────────────────────

READ_BACK = [  # a function of x (a 2×3 matrix), sums to a scalar
    "sum(take(x, [2, 0, 2], axis=1) * [1, 2, 3])",
    "sum(take(x, [[4], [0]]) * [[1], [2]])",
    "sum(scatter_add(x, [1, 1], x[0] * [1, 2, 3]) ^ 2)",
    "sum(take_along_axis(x, [[2], [0]], axis=1) * [[1], [2]])",
    "sum(scatter_add_along_axis(x, [[1, 1, 0]], x[:1] * 2, axis=0) ^ 2)",
    "sum(stop_gradient(x) * x^2)",
    "sum(x[:, [2, 2, 0]] * [1, 2, 3])",
    "sum(x[1, [0, 0]])",
]


@pytest.mark.parametrize("annotated", [True, False], ids=["annotated", "any-shape"])
@pytest.mark.parametrize("body", READ_BACK)
def test_printed_first_and_second_derivatives_read_back(body, annotated):
    bp = dsl.Interpreter()
    x0 = np.array([[0.7, -1.3, 2.1], [0.4, 1.1, -0.6]])
    bp["x0"] = x0
    bp.exec(f"def f(x{': [2, 3]' if annotated else ''}) = {body}\n"
            f"def s(x) = sum(sin(x) * x0)")
    for transform in ("grad(f)", "grad(y -> sum(grad(f)(sin(y)) * x0))"):
        text = bp.show(transform)
        bp.exec(f"g = {text}")
        np.testing.assert_allclose(bp.eval("g(x0)"), bp.eval(f"{transform}(x0)"), rtol=1e-14,
                                   atol=1e-14, err_msg=text)
    if "stop_gradient" in body:         # its derivative is 0 on purpose: no differences
        return
    # and the gradient itself against central differences
    fx = lambda a: float(bp.function("f")(a))
    np.testing.assert_allclose(bp.eval("grad(f)(x0)"), numeric_grad(fx, x0), atol=1e-7)
