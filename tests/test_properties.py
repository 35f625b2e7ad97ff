"""Properties of derivatives over generated bp functions (hypothesis).

Functions of one and two tensor arguments are written as bp source from a
small grammar of the registry's smooth ops (sin, cos, tanh, exp of a
bounded argument, log(1 + e^2), sigmoid, softplus, sqrt(1 + e^2), + - *,
division by 1 + e^2, ^2, ^3, reductions, matmul with fixed matrices).
Each generated expression also carries a NumPy twin, the oracle for the
function's values and for finite differences.  Checked:

(a) `grad` matches central finite differences;
(b) printing round-trips: `g = <bp.show("grad(f)")>` equals `grad(f)`, and
    likewise `diff(f, 2)` for scalar functions;
(c) `hessian` is symmetric;
(d) ⟨vjp(f)(x, u)[1], v⟩ = ⟨u, jvp(f)(x, v)[1]⟩ for vector-valued f;
(e) `hvp(f)(x, v)` matches finite differences of `grad(f)` along v.

Each property also has one deterministic test with a fixed function, so a
failure is easy to read.  Bugs the properties found are kept as
deterministic regression tests at the end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import dsl

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
# On a failure hypothesis describes the recursive strategy, and warns that the text is long.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# Fixed matrices, bound as globals A and B in every session.
A = np.array([[0.8, -0.3, 0.5], [0.2, 0.6, -0.7], [-0.4, 0.1, 0.9]])
B = np.array([[0.5, -1.0, 0.25], [1.5, 0.3, -0.6]])
X_SHAPE, Y_SHAPE = (3,), (2, 3)      # y broadcasts against x

H = 1e-4                 # 4th-order central stencil: truncation ≈ h⁴, rounding ≈ ε/h
FD_RTOL = 1e-6           # exact derivative vs finite differences
EXACT_RTOL = 1e-9        # two exact computations of the same quantity


# ── the grammar: bp text with a NumPy twin ───────────────────────────────

@dataclass(frozen=True)
class Expr:
    text: str
    fn: Callable[[dict], np.ndarray]     # env {"x": …, "y": …} -> value
    has_var: bool                        # depends on a parameter
    shaped: bool                         # has the parameters' shape (not a scalar)

    def __repr__(self) -> str:
        return self.text


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _logsumexp(a):
    m = np.max(a)
    return m + np.log(np.sum(np.exp(a - m)))


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "logsumexp": _logsumexp}

UNARY: list[tuple[str, Callable]] = [
    ("sin({})", np.sin),
    ("cos({})", np.cos),
    ("tanh({})", np.tanh),
    ("exp(tanh({}))", lambda a: np.exp(np.tanh(a))),         # exp of a bounded argument
    ("exp(sin({}))", lambda a: np.exp(np.sin(a))),
    ("log(1 + ({})^2)", lambda a: np.log(1 + a**2)),         # log of a positive argument
    ("sigmoid({})", _sigmoid),
    ("softplus({})", lambda a: np.logaddexp(0.0, a)),
    ("sqrt(1 + ({})^2)", lambda a: np.sqrt(1 + a**2)),
    ("({})^2", lambda a: a**2),
    ("({})^3", lambda a: a**3),
    ("(-({}))", np.negative),
]
# (template, NumPy twin, whether the first operand is reduced to a scalar)
BINARY: list[tuple[str, Callable, bool]] = [
    ("({} + {})", np.add, False),
    ("({} - {})", np.subtract, False),
    ("({} * {})", np.multiply, False),
    ("({} / (1 + ({})^2))", lambda a, b: a / (1 + b**2), False),
    *[(f"({name}({{}}) * {{}})", lambda a, b, r=r: r(a) * b, True)
      for name, r in REDUCTIONS.items()],
]


def _unary(template, fn, e: Expr) -> Expr:
    return Expr(template.format(e.text), lambda env: fn(e.fn(env)), e.has_var, e.shaped)


def _binary(template, fn, reduces, a: Expr, b: Expr) -> Expr:
    return Expr(template.format(a.text, b.text), lambda env: fn(a.fn(env), b.fn(env)),
                a.has_var or b.has_var, b.shaped if reduces else a.shaped or b.shaped)


def _matmul(e: Expr) -> Expr:
    # Only a subexpression of the parameters' shape has a last axis of 3; a scalar stays as it is.
    if not e.shaped:
        return e
    return Expr(f"({e.text} @ A)", lambda env: e.fn(env) @ A, True, True)


def _leaf(token: str) -> Expr:
    if token in ("x", "y"):
        return Expr(token, lambda env: env[token], True, True)
    return Expr(token, lambda env: np.float64(float(token)), False, False)


def exprs(names: tuple[str, ...], matmul: bool = True,
          vector: bool = False) -> st.SearchStrategy[Expr]:
    """Expressions in `names` (with `@ A` when the variables are vectors); with
    `vector`, only those of the parameters' shape rather than a scalar."""
    leaves = st.sampled_from(list(names) * 3 + ["0.5", "2", "1.5"]).map(_leaf)

    def extend(children):
        unary = st.tuples(st.sampled_from(UNARY), children).map(lambda p: _unary(*p[0], p[1]))
        binary = st.tuples(st.sampled_from(BINARY), children, children).map(
            lambda p: _binary(*p[0], p[1], p[2]))
        # one_of picks a branch uniformly: weight 2:2:1 towards the op tables.
        matmuls = [children.map(_matmul)] if matmul else []
        return st.one_of([unary, binary, unary, binary] + matmuls)

    return st.recursive(leaves, extend, max_leaves=10).filter(
        lambda e: e.has_var and (e.shaped or not vector))


def points(shape) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, shape, elements=st.floats(-1.5, 1.5, allow_nan=False))


reductions = st.sampled_from(sorted(REDUCTIONS))


# ── sessions, finite differences, comparisons ────────────────────────────

def session(**bound) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    bp["A"], bp["B"] = A, B
    for name, value in bound.items():
        bp[name] = value
    return bp


def fd_grad(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """∂f/∂xᵢ for every i, by the 4th-order central stencil."""
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        def at(t):
            xt = x.copy()
            xt[i] += t
            return float(f(xt))
        out[i] = (8 * (at(H) - at(-H)) - (at(2 * H) - at(-2 * H))) / (12 * H)
    return out


def assert_close(actual, expected, rtol: float, what: str, atol: float = 0.0):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}")
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(np.max(np.abs(expected), initial=0.0))
    assert err <= rtol * scale + atol, (
        f"{what}: max error {err:.3e} (scale {scale:.3e})\nbp:\n{actual}\nexpected:\n{expected}")


def fd_atol(value) -> float:
    """What finite differences cannot resolve: rounding of f's value over the step."""
    return 1e-9 * max(1.0, float(np.max(np.abs(value), initial=0.0)))


def check_grad_fd(bp: dsl.Interpreter, call: str, f_np, x: np.ndarray, what: str):
    got = bp.eval(call)
    assert_close(got, fd_grad(f_np, x), FD_RTOL, what, atol=fd_atol(f_np(x)))


def check_round_trip(bp: dsl.Interpreter, transform: str, call_args: str):
    """`g = <printed transform>` gives the same numbers as the transform itself."""
    text = bp.show(transform)
    bp.exec("g = " + text)
    # atol: a result that cancels to ~0 may come out as 0 or as 2e-16 after reordering.
    assert_close(bp.eval(f"g({call_args})"), bp.eval(f"{transform}({call_args})"), EXACT_RTOL,
                 f"printed {transform} = {text}", atol=1e-12)


def check_hessian_symmetric(bp: dsl.Interpreter, what: str):
    hess = bp.eval("hessian(f)(x0)")
    assert hess.shape == X_SHAPE + X_SHAPE
    scale = max(float(np.max(np.abs(hess))), 1.0)
    assert np.max(np.abs(hess - hess.T)) <= EXACT_RTOL * scale, (
        f"hessian of {what} is not symmetric:\n{hess}")


def check_vjp_jvp(bp: dsl.Interpreter, u: np.ndarray, v: np.ndarray, what: str):
    bp["u0"], bp["v0"] = u, v
    value, ut_j = bp.eval("vjp(f)(x0, u0)")
    value2, j_v = bp.eval("jvp(f)(x0, v0)")
    assert_close(value, value2, 0.0, f"{what}: vjp and jvp return different values")
    assert ut_j.shape == v.shape and j_v.shape == u.shape
    left, right = float(np.sum(ut_j * v)), float(np.sum(u * j_v))
    scale = max(float(np.sum(np.abs(u * j_v))), float(np.sum(np.abs(ut_j * v))), 1e-300)
    assert abs(left - right) <= EXACT_RTOL * scale + 1e-15, (
        f"{what}: ⟨vjp(u), v⟩ = {left!r} but ⟨u, jvp(v)⟩ = {right!r}")


# ── (a) grad against finite differences ──────────────────────────────────

@SETTINGS
@given(e=exprs(("x",)), reduce=reductions, x=points(X_SHAPE))
def test_properties_grad_matches_finite_differences(e, reduce, x):
    bp = session(x0=x)
    bp.exec(f"def f(x) = {reduce}({e.text})")

    def f_np(xv):
        return REDUCTIONS[reduce](e.fn({"x": xv}))
    assert_close(bp.eval("f(x0)"), f_np(x), EXACT_RTOL, "f against its NumPy twin", atol=1e-12)
    check_grad_fd(bp, "grad(f)(x0)", f_np, x, f"grad of {reduce}({e.text})")


@SETTINGS
@given(e=exprs(("x", "y")), reduce=reductions, x=points(X_SHAPE), y=points(Y_SHAPE))
def test_properties_grad_of_two_arguments_matches_finite_differences(e, reduce, x, y):
    bp = session(x0=x, y0=y)
    bp.exec(f"def f(x, y) = {reduce}({e.text})")

    def f_np(xv, yv):
        return REDUCTIONS[reduce](e.fn({"x": xv, "y": yv}))
    check_grad_fd(bp, "grad(f)(x0, y0)", lambda xv: f_np(xv, y), x, f"∂/∂x of {e.text}")
    check_grad_fd(bp, "grad(f, wrt=1)(x0, y0)", lambda yv: f_np(x, yv), y, f"∂/∂y of {e.text}")


def test_properties_grad_fixed_function():
    x = np.array([0.3, -1.2, 0.7])
    bp = session(x0=x)
    bp.exec("def f(x) = logsumexp(tanh(x @ A) * x) + sum(log(1 + x^2) / (1 + x^2))")

    def f_np(xv):
        return _logsumexp(np.tanh(xv @ A) * xv) + np.sum(np.log(1 + xv**2) / (1 + xv**2))
    check_grad_fd(bp, "grad(f)(x0)", f_np, x, "grad of the fixed function")


def test_properties_grad_fixed_function_of_two_arguments():
    x, y = np.array([0.3, -1.2, 0.7]), np.array([[0.5, 1.0, -0.4], [-1.1, 0.2, 0.9]])
    bp = session(x0=x, y0=y)
    bp.exec("def f(x, y) = mean(sigmoid(x * y) + softplus(y - x)^2)")

    def f_np(xv, yv):
        return np.mean(_sigmoid(xv * yv) + np.logaddexp(0, yv - xv) ** 2)
    check_grad_fd(bp, "grad(f)(x0, y0)", lambda xv: f_np(xv, y), x, "∂/∂x (x broadcast)")
    check_grad_fd(bp, "grad(f, wrt=1)(x0, y0)", lambda yv: f_np(x, yv), y, "∂/∂y")


# ── (b) printing round-trips ─────────────────────────────────────────────

@SETTINGS
@given(e=exprs(("x",)), reduce=reductions, x=points(X_SHAPE))
def test_properties_printed_grad_round_trips(e, reduce, x):
    bp = session(x0=x)
    bp.exec(f"def f(x) = {reduce}({e.text})")
    check_round_trip(bp, "grad(f)", "x0")


@SETTINGS
@given(e=exprs(("x", "y")), reduce=reductions, x=points(X_SHAPE), y=points(Y_SHAPE))
def test_properties_printed_grad_of_two_arguments_round_trips(e, reduce, x, y):
    bp = session(x0=x, y0=y)
    bp.exec(f"def f(x, y) = {reduce}({e.text})")
    check_round_trip(bp, "grad(f)", "x0, y0")
    check_round_trip(bp, "grad(f, wrt=1)", "x0, y0")


@SETTINGS
@given(e=exprs(("x",), matmul=False), x=st.floats(-1.5, 1.5))
def test_properties_printed_second_derivative_round_trips(e, x):
    bp = session(x0=np.float64(x))
    bp.exec(f"def f(x) = {e.text}")
    check_round_trip(bp, "diff(f, 2)", "x0")
    # diff(f, 2) against finite differences of the exact diff(f): a second derivative by
    # finite differences, so held a little looser (1e-5) than a first one.
    d1 = bp.function("diff(f)")
    fd = fd_grad(d1, np.asarray(x))
    assert_close(bp.eval("diff(f, 2)(x0)"), fd, 1e-5, f"diff({e.text}, 2)",
                 atol=fd_atol(d1(np.float64(x))))


def test_properties_printed_round_trip_fixed_functions():
    bp = session(x0=np.array([0.3, -1.2, 0.7]), s0=np.float64(0.4))
    bp.exec("def f(x) = sum(tanh(x)^3 * sqrt(1 + x^2)) + mean(exp(sin(x @ A)))")
    check_round_trip(bp, "grad(f)", "x0")
    bp.exec("def h(x) = sigmoid(x) * softplus(x)")
    check_round_trip(bp, "diff(h, 2)", "s0")


# ── (c) hessian symmetry ─────────────────────────────────────────────────

@SETTINGS
@given(e=exprs(("x",)), reduce=reductions, x=points(X_SHAPE))
def test_properties_hessian_is_symmetric(e, reduce, x):
    bp = session(x0=x)
    bp.exec(f"def f(x) = {reduce}({e.text})")
    check_hessian_symmetric(bp, f"{reduce}({e.text})")


def test_properties_hessian_fixed_function():
    bp = session(x0=np.array([0.3, -1.2, 0.7]))
    bp.exec("def f(x) = logsumexp(x @ A) * sum(x^3) + sum(sin(x) * cos(x @ A))")
    check_hessian_symmetric(bp, "the fixed function")


# ── (d) ⟨u, J v⟩ from both modes ─────────────────────────────────────────

@SETTINGS
@given(e=exprs(("x",), vector=True), project=st.booleans(), x=points(X_SHAPE),
       seed=st.integers(0, 2**32 - 1))
def test_properties_vjp_and_jvp_agree(e, project, x, seed):
    bp = session(x0=x)
    body = f"B @ {e.text}" if project else e.text       # (2,) or elementwise (3,)
    bp.exec(f"def f(x) = {body}")
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((2,) if project else X_SHAPE)
    check_vjp_jvp(bp, u, rng.standard_normal(X_SHAPE), body)


def test_properties_vjp_and_jvp_agree_fixed_function():
    bp = session(x0=np.array([0.3, -1.2, 0.7]))
    bp.exec("def f(x) = B @ (tanh(x @ A) * x^2)")
    check_vjp_jvp(bp, np.array([0.7, -1.3]), np.array([1.0, 0.5, -2.0]), "B @ (tanh(x @ A) * x^2)")


# ── (e) hvp ──────────────────────────────────────────────────────────────

def check_hvp(bp: dsl.Interpreter, x: np.ndarray, v: np.ndarray, what: str):
    """hvp(f)(x, v) = d/dt grad(f)(x + t v), and = hessian(f)(x) @ v."""
    bp["v0"] = v
    got = bp.eval("hvp(f)(x0, v0)")
    grad = bp.function("grad(f)")
    stencil = (8 * (grad(x + H * v) - grad(x - H * v))
               - (grad(x + 2 * H * v) - grad(x - 2 * H * v))) / (12 * H)
    # 1e-5: a second derivative by finite differences (of the exact gradient) is held a
    # little looser than a first one.
    assert_close(got, stencil, 1e-5, f"hvp of {what}", atol=fd_atol(grad(x)))
    assert_close(got, bp.eval("hessian(f)(x0)") @ v, EXACT_RTOL, f"hvp vs hessian @ v of {what}",
                 atol=1e-12)


@SETTINGS
@given(e=exprs(("x",)), reduce=reductions, x=points(X_SHAPE), v=points(X_SHAPE))
def test_properties_hvp_matches_finite_differences(e, reduce, x, v):
    bp = session(x0=x)
    bp.exec(f"def f(x) = {reduce}({e.text})")
    check_hvp(bp, x, v, f"{reduce}({e.text})")


def test_properties_hvp_fixed_function():
    bp = session(x0=np.array([0.3, -1.2, 0.7]))
    bp.exec("def f(x) = sum(sin(x) * x^2) * logsumexp(tanh(x @ A))")
    check_hvp(bp, np.array([0.3, -1.2, 0.7]), np.array([1.0, -0.5, 2.0]), "the fixed function")


# ── bugs these tests found (fixed), one minimal reproduction each ───────

def test_properties_hvp_of_linear_function_is_zero():
    bp = session(x0=np.array([0.3, -1.2, 0.7]), v0=np.ones(3))
    assert_close(bp.eval("hvp(x -> sum(x))(x0, v0)"), np.zeros(3), 0.0, "hvp(x -> sum(x))")


def test_properties_grad_of_two_reductions_has_parameter_shape():
    x = np.array([0.3, -1.2, 0.7])
    bp = session(x0=x)
    got = bp.eval("grad(x -> sum(x) + mean(x))(x0)")
    assert got.shape == (3,), f"grad(x -> sum(x) + mean(x))(x0) has shape {got.shape}: {got}"
    assert_close(got, np.full(3, 4 / 3), 1e-12, "grad(x -> sum(x) + mean(x))")


def test_properties_hessian_of_sum_times_x():
    """sum(sum(x) * x) = sum(x)^2: its hessian is all 2s."""
    bp = session(x0=np.array([0.3, -1.2, 0.7]))
    try:
        got = bp.eval("hessian(x -> sum(sum(x) * x))(x0)")
    except dsl.BpError as err:
        pytest.fail(f"hessian(x -> sum(sum(x) * x))(x0) raised {err.kind}: {err.message}")
    assert_close(got, np.full((3, 3), 2.0), 1e-12, "hessian(x -> sum(sum(x) * x))")


def test_properties_grad_through_vector_times_batched_matrix():
    x, c = np.array([0.3, -1.2, 0.7]), np.arange(12.0).reshape(2, 3, 2)
    bp = session(x0=x, C=c)
    got = bp.eval("grad(x -> sum(x @ C))(x0)")
    assert_close(got, c.sum(axis=(0, 2)), 1e-12, "grad(x -> sum(x @ C))")
