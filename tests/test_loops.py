"""Structured loops (dsl/loops.py, issue 15): the IR, evaluation and derivatives.

Loops are built here with graph-building code (dsl.loops.make_loop over
ops.apply); expected values come from NumPy loops written out below or from
calculus by hand, derivatives are also checked against central differences
and against the same computation unrolled into straight-line graph nodes.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from dsl import evaluate, loops, ops
from dsl.autodiff import jvp_graph, vjp_graph
from dsl.errors import BpError, BpInterrupted, BpShapeError, Span
from dsl.evaluate import Plan
from dsl.graph import make_input, topo_order
from dsl.ops import apply, const


def A(name, *xs, **attrs):
    return apply(name, list(xs), attrs)


def C(x):
    return const(x)


def loop_of(n, init, body, cond=None, emit=None, names=(), span=None):
    """The parts of a loop: body(k, *c) -> next values, cond(k, *c) -> scalar, emit(k, *c)."""
    k = loops.counter()
    cs = [make_input(names[i] if i < len(names) else f"c{i}", x.shape) for i, x in enumerate(init)]
    nxt = body(k, *cs)
    nxt = list(nxt) if isinstance(nxt, (list, tuple)) else [nxt]
    em = emit(k, *cs) if emit else []
    em = list(em) if isinstance(em, (list, tuple)) else [em]
    return loops.make_loop(n, list(init), k, cs, nxt, em,
                           cond(k, *cs) if cond else None, names=names, span=span)


def run(inputs, outputs, *arrays):
    plan = Plan(inputs, outputs)
    first = plan.run([np.asarray(a, dtype=np.float64) for a in arrays])
    second = plan.run([np.asarray(a, dtype=np.float64) for a in arrays])   # generated code
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    return first


@pytest.fixture(autouse=True, params=["plain", "generated", "scalar"])
def engine(request, monkeypatch):
    monkeypatch.setattr(evaluate, "ENGINE", request.param)
    monkeypatch.setattr(evaluate, "STRICT", True)
    return request.param


def central(f, x, h=1e-5):
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ── Newton's method with a tolerance: sqrt(a) ────────────────────────────

def newton_sqrt(a, x0, tol=1e-12):
    return loop_of(C(np.inf), [x0],
                   lambda k, x: A("mul", C(0.5), A("add", x, A("div", a, x))),
                   cond=lambda k, x: A("greater", A("abs", A("sub", A("mul", x, x), a)), C(tol)),
                   names=("x",))


def test_loops_newton_value_and_trip_count():
    a, x0 = make_input("a", ()), make_input("x0", ())
    x, T = newton_sqrt(a, x0)
    got, trips = run([a, x0], [x, T], 2.0, 1.0)
    # the same iteration in NumPy
    v, k = 1.0, 0
    while abs(v * v - 2.0) > 1e-12:
        v, k = 0.5 * (v + 2.0 / v), k + 1
    assert float(got) == v and float(trips) == k
    assert abs(float(got) - np.sqrt(2.0)) < 1e-15


def test_loops_newton_derivatives_hold_the_iterations_fixed():
    """d sqrt(a)/da = 1/(2 sqrt a), d²/da² = -1/4 a^(-3/2); the trip count depends on a
    and gets no derivative; x0 has (almost) no influence on a converged result."""
    a, x0 = make_input("a", ()), make_input("x0", ())
    x, _ = newton_sqrt(a, x0)
    ga, gx0 = vjp_graph([x], [C(1.0)], [a, x0])
    (ta,) = jvp_graph([x], [a], [C(1.0)])
    (gga,) = vjp_graph([ga], [C(1.0)], [a])
    (hva,) = jvp_graph([ga], [a], [C(1.0)])
    got = run([a, x0], [ga, gx0, ta, gga, hva], 3.0, 1.0)
    np.testing.assert_allclose(got[0], 0.5 / np.sqrt(3.0), rtol=1e-12)
    assert abs(float(got[1])) < 1e-10
    np.testing.assert_allclose(got[2], 0.5 / np.sqrt(3.0), rtol=1e-12)
    np.testing.assert_allclose(got[3], -0.25 * 3.0 ** -1.5, rtol=1e-9)
    np.testing.assert_allclose(got[4], -0.25 * 3.0 ** -1.5, rtol=1e-9)


# ── RK4 with a runtime step count ────────────────────────────────────────

def rk4_graph(y0, lam, h, n):
    """y' = -lam * y + sin(y), n steps of RK4 of size h; the state is (y, t)."""
    def f(y):
        return A("add", A("neg", A("mul", lam, y)), A("sin", y))

    def step(k, y):
        k1 = f(y)
        k2 = f(A("add", y, A("mul", A("mul", C(0.5), h), k1)))
        k3 = f(A("add", y, A("mul", A("mul", C(0.5), h), k2)))
        k4 = f(A("add", y, A("mul", h, k3)))
        s = A("add", A("add", k1, A("mul", C(2.0), k2)), A("add", A("mul", C(2.0), k3), k4))
        return A("add", y, A("mul", A("div", h, C(6.0)), s))
    return loop_of(n, [y0], step, names=("y",))


def rk4_numpy(y0, lam, h, n):
    f = lambda y: -lam * y + np.sin(y)   # noqa: E731
    y = np.array(y0, dtype=np.float64)
    for _ in range(int(n)):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def rk4_unrolled(y0, lam, h, n):
    y = y0
    f = lambda y: A("add", A("neg", A("mul", lam, y)), A("sin", y))   # noqa: E731
    for _ in range(n):
        k1 = f(y)
        k2 = f(A("add", y, A("mul", A("mul", C(0.5), h), k1)))
        k3 = f(A("add", y, A("mul", A("mul", C(0.5), h), k2)))
        k4 = f(A("add", y, A("mul", h, k3)))
        s = A("add", A("add", k1, A("mul", C(2.0), k2)), A("add", A("mul", C(2.0), k3), k4))
        y = A("add", y, A("mul", A("div", h, C(6.0)), s))
    return y


def test_loops_rk4_runtime_steps_against_numpy_unrolled_and_differences():
    y0, lam, h, n = make_input("y0", (3,)), make_input("lam", ()), make_input("h", ()), \
        make_input("n", ())
    yT, T = rk4_graph(y0, lam, h, n)
    loss = A("sum", A("mul", yT, yT), axis=None, keepdims=False)
    g_y0, g_lam, g_h = vjp_graph([loss], [C(1.0)], [y0, lam, h])
    Y0 = np.array([0.3, -1.2, 2.0])
    got = run([y0, lam, h, n], [yT, T, g_y0, g_lam, g_h], Y0, 0.7, 0.05, 25)
    np.testing.assert_allclose(got[0], rk4_numpy(Y0, 0.7, 0.05, 25), rtol=1e-14)
    assert float(got[1]) == 25
    L = lambda y0_, lam_, h_: float(np.sum(rk4_numpy(y0_, lam_, h_, 25) ** 2))   # noqa: E731
    np.testing.assert_allclose(got[2], central(lambda v: L(v, 0.7, 0.05), Y0), rtol=1e-7)
    np.testing.assert_allclose(got[3], central(lambda v: L(Y0, v, 0.05), 0.7), rtol=1e-7)
    np.testing.assert_allclose(got[4], central(lambda v: L(Y0, 0.7, v), 0.05), rtol=1e-7)
    # the unrolled form: the same numbers from straight-line nodes
    yu = rk4_unrolled(y0, lam, h, 25)
    lu = A("sum", A("mul", yu, yu), axis=None, keepdims=False)
    want = run([y0, lam, h], [yu, *vjp_graph([lu], [C(1.0)], [y0, lam, h])], Y0, 0.7, 0.05)
    for a, b in zip(want, [got[0], *got[2:]]):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    # second order: the Hessian-vector product in lam and h (forward over reverse) and
    # reverse over reverse, against the unrolled form's
    hv = jvp_graph([g_lam, g_h], [lam, h], [C(1.0), C(-2.0)])
    gg = vjp_graph([g_lam], [C(1.0)], [lam, h, y0])
    hv_u = jvp_graph(vjp_graph([lu], [C(1.0)], [lam, h]), [lam, h], [C(1.0), C(-2.0)])
    got2 = run([y0, lam, h, n], hv + gg, Y0, 0.7, 0.05, 25)
    want2 = run([y0, lam, h], hv_u + vjp_graph([vjp_graph([lu], [C(1.0)], [lam])[0]], [C(1.0)],
                                                  [lam, h, y0]), Y0, 0.7, 0.05)
    for a, b in zip(want2, got2):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


def test_loops_zero_and_fractional_trip_counts():
    """range(n) of n <= 0 runs nothing: the result is the initial value, its gradient 1."""
    x, n = make_input("x", (2,)), make_input("n", ())
    y, T = loop_of(n, [x], lambda k, c: A("mul", C(2.0), c))
    (g,) = vjp_graph([A("sum", y, axis=None, keepdims=False)], [C(1.0)], [x])
    for count, want in ((0, 1.0), (-3, 1.0), (3, 8.0)):
        got = run([x, n], [y, T, g], [1.0, 2.0], count)
        np.testing.assert_array_equal(got[0], np.array([1.0, 2.0]) * want)
        assert float(got[1]) == max(count, 0)
        np.testing.assert_array_equal(got[2], [want, want])


# ── gradient descent to convergence ─────────────────────────────────────

def test_loops_gradient_descent_to_convergence_and_its_derivative():
    """argmin_x (x - p)² + q x⁴ by gradient descent until the step is small: the result
    x*(p) solves 2(x - p) + 4 q x³ = 0, so dx*/dp = 2 / (2 + 12 q x*²)
    (implicit differentiation), which the loop's derivative approaches."""
    p, q = make_input("p", ()), C(0.5)
    lr = C(0.05)

    def grad_f(x):
        return A("add", A("mul", C(2.0), A("sub", x, p)), A("mul", A("mul", C(4.0), q), A("pow", x, C(3.0))))

    def step(k, x):
        return A("sub", x, A("mul", lr, grad_f(x)))
    x, T = loop_of(C(np.inf), [C(0.0)], step,
                   cond=lambda k, x: A("greater", A("abs", A("mul", lr, grad_f(x))), C(1e-13)))
    (dp,) = vjp_graph([x], [C(1.0)], [p])
    (tp,) = jvp_graph([x], [p], [C(1.0)])
    (ddp,) = vjp_graph([dp], [C(1.0)], [p])
    got = run([p], [x, T, dp, tp, ddp], 1.3)
    xs = float(got[0])
    assert abs(2 * (xs - 1.3) + 2.0 * xs ** 3) < 1e-10
    want = 2 / (2 + 6 * xs ** 2)
    np.testing.assert_allclose(got[2], want, rtol=1e-9)
    np.testing.assert_allclose(got[3], want, rtol=1e-9)
    # d²x*/dp²: differentiate 2 / (2 + 6 x*(p)²) once more
    np.testing.assert_allclose(got[4], -2 * 12 * xs * want / (2 + 6 * xs ** 2) ** 2, rtol=1e-6)
    # against differences of the loop's own value
    f = lambda v: float(run([p], [x], v)[0])      # noqa: E731
    np.testing.assert_allclose(got[2], central(f, 1.3, 1e-6), rtol=1e-6)


# ── several carried values, emitted values, captured values ──────────────

def test_loops_carried_values_of_different_shapes_and_a_tape():
    """(v, s) ← (tanh(W @ v), s + sum(v)), emitting v·v each step."""
    W, v0 = make_input("W", (3, 3)), make_input("v0", (3,))
    n = C(4.0)

    def body(k, v, s):
        return [A("tanh", A("matmul", W, v)), A("add", s, A("sum", v, axis=None, keepdims=False))]
    v, s, ys, T = loop_of(n, [v0, C(0.0)], body,
                          emit=lambda k, v, s: A("sum", A("mul", v, v), axis=None, keepdims=False),
                          names=("v", "s"))
    loss = A("add", A("add", A("sum", A("mul", v, v), axis=None, keepdims=False), A("mul", s, s)),
             A("sum", A("mul", ys, ys), axis=None, keepdims=False))
    gW, gv0 = vjp_graph([loss], [C(1.0)], [W, v0])
    rng = np.random.default_rng(0)
    Wv, v0v = rng.normal(size=(3, 3)) * 0.6, rng.normal(size=3)

    def ref(Wv, v0v):
        vv, ss, tape = v0v, 0.0, []
        for _ in range(4):
            tape.append(vv @ vv)
            vv, ss = np.tanh(Wv @ vv), ss + vv.sum()
        return vv, ss, np.array(tape)
    got = run([W, v0], [v, s, ys, gW, gv0], Wv, v0v)
    rv, rs, rt = ref(Wv, v0v)
    np.testing.assert_allclose(got[0], rv, rtol=1e-14)
    np.testing.assert_allclose(got[1], rs, rtol=1e-14)
    np.testing.assert_allclose(got[2], rt, rtol=1e-14)
    L = lambda Wv, v0v: (lambda r: r[0] @ r[0] + r[1] ** 2 + r[2] @ r[2])(ref(Wv, v0v))  # noqa
    np.testing.assert_allclose(got[3], central(lambda w: L(w, v0v), Wv), rtol=1e-7)
    np.testing.assert_allclose(got[4], central(lambda u: L(Wv, u), v0v), rtol=1e-7)
    # W, read inside the body, is a captured input of the loop node; so is nothing else
    body_ = v.attr("body")
    assert [x for x in v.inputs[3:]] == [W]
    assert len(body_.captured) == 1


def test_loops_loop_invariant_code_is_captured_once():
    """exp(W) does not depend on the iteration: it is computed outside, as an input."""
    W, x0 = make_input("W", (2,)), make_input("x0", (2,))
    eW = A("exp", W)
    x, _ = loop_of(C(3.0), [x0], lambda k, x: A("mul", A("exp", W), x))
    assert eW in x.inputs
    body = x.attr("body")
    assert not any(nd.op == "exp" for nd in topo_order(body.next))
    got = run([W, x0], [x], [0.1, -0.2], [1.0, 2.0])
    np.testing.assert_allclose(got[0], np.exp(3 * np.array([0.1, -0.2])) * [1.0, 2.0], rtol=1e-14)


def test_loops_the_counter_and_a_nested_loop():
    """s = Σ_{i<n} Σ_{j<i} x^j (a loop in a loop's body), and its derivative in x."""
    x, n = make_input("x", ()), make_input("n", ())

    def outer(i, s):
        inner, _ = loop_of(i, [C(0.0)], lambda j, t: A("add", t, A("pow", x, j)))
        return A("add", s, inner)
    s, _ = loop_of(n, [C(0.0)], outer)
    (g,) = vjp_graph([s], [C(1.0)], [x])
    (t,) = jvp_graph([s], [x], [C(1.0)])
    (gg,) = vjp_graph([g], [C(1.0)], [x])
    X, N = 1.3, 5
    want = sum(X ** j for i in range(N) for j in range(i))
    dwant = sum(j * X ** (j - 1) for i in range(N) for j in range(1, i))
    ddwant = sum(j * (j - 1) * X ** (j - 2) for i in range(N) for j in range(2, i))
    got = run([x, n], [s, g, t, gg], X, N)
    np.testing.assert_allclose(got, [want, dwant, dwant, ddwant], rtol=1e-12)


# ── limits ───────────────────────────────────────────────────────────────

def test_loops_iteration_cap_is_a_located_value_error(monkeypatch):
    x = make_input("x", ())
    where = Span("f.bp", 3, 5, 3, 20)
    y, _ = loop_of(C(np.inf), [x], lambda k, c: A("add", c, C(1.0)),
                   cond=lambda k, c: A("greater", c, C(-1.0)), span=where)
    monkeypatch.setattr(ops.ACTIVE, "limits", ops.Limits(max_iterations=1000))
    with pytest.raises(BpError) as err:
        Plan([x], [y]).run([np.asarray(0.0)])
    assert err.value.kind == "value error" and err.value.span == where
    assert "1,000" in str(err.value) and "max_iterations" in str(err.value) \
        and "--max-iterations" in str(err.value)


def test_loops_interrupt_stops_a_loop():
    x = make_input("x", ())
    y, _ = loop_of(C(np.inf), [x], lambda k, c: A("add", c, C(1.0)),
                   cond=lambda k, c: A("greater", c, C(-1.0)))
    flag = threading.Event()
    flag.set()
    saved = ops.ACTIVE.interrupt
    ops.ACTIVE.interrupt = flag
    try:
        with pytest.raises(BpInterrupted):
            Plan([x], [y]).run([np.asarray(0.0)], False, flag)
    finally:
        ops.ACTIVE.interrupt = saved


def test_loops_a_carried_value_keeps_its_shape():
    x = make_input("x", (2,))
    with pytest.raises(BpShapeError) as err:
        loop_of(C(2.0), [x], lambda k, c: A("sum", c, axis=None, keepdims=False), names=("x",))
    assert "'x'" in str(err.value) and "[2]" in str(err.value)


def test_loops_a_long_while_loop_and_its_gradient_without_recursion(engine):
    """10⁵ iterations of x ← x + h·cos(x), and the gradient in h: iterative walks only
    (the Python stack is limited far below the loop's length), the tape is 10⁵
    floats (0.8 MB)."""
    if engine != "scalar":
        pytest.skip("one engine is enough for the long loop")
    h, x0 = make_input("h", ()), make_input("x0", ())
    N = 100_000
    x, T = loop_of(C(np.inf), [x0], lambda k, c: A("add", c, A("mul", h, A("cos", c))),
                   cond=lambda k, c: A("less", k, C(float(N))))
    (gh,) = vjp_graph([x], [C(1.0)], [h])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        start = time.perf_counter()
        got = Plan([h, x0], [x, T, gh]).run([np.asarray(1e-5), np.asarray(0.0)])
        took = time.perf_counter() - start
    finally:
        sys.setrecursionlimit(limit)
    xv, dv = 0.0, 0.0
    for _ in range(N):
        xv, dv = xv + 1e-5 * np.cos(xv), dv + np.cos(xv) - 1e-5 * np.sin(xv) * dv
    assert float(got[1]) == N
    np.testing.assert_allclose(got[0], xv, rtol=1e-13)
    np.testing.assert_allclose(got[2], dv, rtol=1e-10)
    assert took < 30, took


# ── export: a Python loop in the module ──────────────────────────────────

def _exported(functions):
    from dsl import codegen
    src = codegen.module(functions, {})
    scope: dict = {}
    exec(compile(src, "<export>", "exec"), scope)
    return src, scope


def test_loops_export_writes_a_python_loop_and_its_derivatives():
    a, x0 = make_input("a", ()), make_input("x0", ())
    x, T = newton_sqrt(a, x0)
    ga, gx0 = vjp_graph([x], [C(1.0)], [a, x0])
    (hva,) = jvp_graph([ga], [a], [C(1.0)])
    src, mod = _exported({"f": (["a", "x0"], [a, x0], (x, T)),
                          "g": (["a", "x0"], [a, x0], (ga, gx0)),
                          "h": (["a", "x0"], [a, x0], hva)})
    assert "while" in src and "_bp_loop(" in src and "import numpy as np" in src
    want = run([a, x0], [x, T, ga, gx0, hva], 3.0, 1.0)
    np.testing.assert_allclose(mod["f"](3.0, 1.0), want[:2], rtol=1e-15)
    np.testing.assert_allclose(mod["g"](3.0, 1.0), want[2:4], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(mod["h"](3.0, 1.0), want[4], rtol=1e-15)


def test_loops_export_of_nested_loops_with_tapes_and_hostile_names():
    x, n = make_input("lambda", ()), make_input("np", ())

    def outer(i, s):
        inner, _ = loop_of(i, [C(0.0)], lambda j, t: A("add", t, A("pow", x, j)), names=("def",))
        return A("add", s, inner)
    s, _ = loop_of(n, [C(0.0)], outer, names=("k",))
    (g,) = vjp_graph([s], [C(1.0)], [x])
    (gg,) = vjp_graph([g], [C(1.0)], [x])
    src, mod = _exported({"f": (["lambda", "np"], [x, n], (s, g, gg))})
    want = run([x, n], [s, g, gg], 1.3, 5)
    np.testing.assert_allclose(mod["f"](1.3, 5), want, rtol=1e-14)


# ── printing and the listing ─────────────────────────────────────────────

def test_loops_print_as_bp_statements_in_a_block_body():
    from dsl import render
    from dsl.errors import BpValueError
    a, x0 = make_input("a", ()), make_input("x0", ())
    x, _ = newton_sqrt(a, x0)
    assert render.format_graph_function(["a", "x0"], x, [a, x0]) == \
        "(a, x0) -> { x = x0; while abs(x^2 - a) > 1e-12 { x = 0.5 * (x + a/x) }; return x }"
    # forward mode carries the tangent beside the value, in the same loop
    (t,) = jvp_graph([x], [a], [C(1.0)])
    text = render.format_graph_function(["a", "x0"], t, [a, x0])
    assert text.startswith("(a, x0) -> { x, dx = x0, 0; while abs(x^2 - a) > 1e-12 { x, dx = ")
    assert text.endswith("}; return dx }")
    # a for loop over a runtime count, nested
    xx, n = make_input("x", ()), make_input("n", ())

    def outer(i, s):
        inner, _ = loop_of(i, [C(0.0)], lambda j, t: A("add", t, A("pow", xx, j)), names=("t",))
        return A("add", s, inner)
    s, _ = loop_of(n, [C(0.0)], outer, names=("s",))
    assert render.format_graph_function(["x", "n"], s, [xx, n]) == \
        "(x, n) -> { s = 0; for i in range(n) { t = 0; for i1 in range(i) { t = t + x^i1 }; s = s + t }; return s }"
    # names are the printer's: a parameter called i or s pushes the loop's aside
    assert render.format_graph_function(["i", "s"], s, [xx, n]) == \
        "(i, s) -> { s1 = 0; for i1 in range(s) { t = 0; for i2 in range(i1) { t = t + i^i2 }; s1 = s1 + t }; return s1 }"
    # reverse mode keeps a tape, which bp cannot write: the printer falls back
    (g,) = vjp_graph([x], [C(1.0)], [a])
    with pytest.raises(BpValueError):
        render.format_graph_function(["a", "x0"], g, [a, x0])


def test_loops_listing_shows_each_body_after_the_graph():
    from dsl import render
    from dsl.graph import Graph
    a, x0 = make_input("a", ()), make_input("x0", ())
    x, _ = newton_sqrt(a, x0)
    text = render.format_listing(Graph([a, x0], [x]), ["a", "x0"])
    assert "t1 = loop1(inf, x0, a)[0]" in text
    assert "loop1: counter k, carried x, captured a; returns next x; the condition" in text
    assert "t7 = t6 > 1e-12" in text


# ── batching: a Jacobian through a loop in one graph ─────────────────────

def _fd_jacobian(f, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        cols.append((f(x + e.reshape(x.shape)) - f(x - e.reshape(x.shape))) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_loops_batched_jacobian_through_a_loop(mode):
    """J of v ← tanh(W v) (5 steps) with respect to v0, all directions at once: the
    loop's batching rule batches its body (no fallback to one derivative per direction)."""
    from dsl.batching import batch
    W, v0 = make_input("W", (3, 3)), make_input("v0", (3,))
    v, _ = loop_of(C(5.0), [v0], lambda k, v: A("tanh", A("matmul", W, v)))
    seed = make_input("∂t", (3,))
    if mode == "forward":
        (t,) = jvp_graph([v], [v0], [seed])
    else:
        (t,) = vjp_graph([v], [seed], [v0])
    out = batch([t], seed, C(np.eye(3)))
    assert out is not None
    (J,) = out
    assert any(nd.op == "loop" for nd in topo_order([J]))
    rng = np.random.default_rng(1)
    Wv, v0v = rng.normal(size=(3, 3)), rng.normal(size=3)

    def f(u):
        for _ in range(5):
            u = np.tanh(Wv @ u)
        return u
    got = run([W, v0], [J], Wv, v0v)[0]
    want = _fd_jacobian(f, v0v)                       # want[i, j] = ∂f_i/∂v0_j
    assert abs(want - want.T).max() > 1e-3            # not symmetric: the orientation counts
    # forward: row i is the JVP of e_i, column i of J; reverse: the VJP of e_i, row i
    np.testing.assert_allclose(got.T if mode == "forward" else got, want, rtol=1e-7, atol=1e-10)


def test_loops_latex_is_a_located_error():
    from dsl import latex
    from dsl.errors import BpValueError
    where = Span("f.bp", 2, 3, 2, 9)
    x0 = make_input("x0", ())
    (x, _) = loop_of(C(3.0), [x0], lambda k, c: A("mul", C(2.0), c), span=where)
    with pytest.raises(BpValueError) as err:
        latex.node_latex(x, {id(i): latex.Tex("x", 12) for i in x.inputs})
    assert err.value.span == where and "loop" in str(err.value)


def test_loops_reads_at_a_runtime_index_scatter_once_after_the_adjoint_loop():
    """s += x[k]² · w[k+1]: the cotangents of x and w are emitted per iteration as
    (index, value) and scattered once after the loop, so the adjoint loop carries no
    tensor of x's size (it would cost O(T·n)); values against the formula by hand."""
    n = 7
    x, w = make_input("x", (n,)), make_input("w", (n,))

    def body(k, s):
        xk = A("take", x, k, axis=None)
        wk = A("take", w, A("add", k, C(1.0)), axis=None)
        return A("add", s, A("mul", A("mul", xk, xk), wk))
    s, _ = loop_of(C(float(n - 1)), [C(0.0)], body)
    gx, gw = vjp_graph([s], [C(1.0)], [x, w])
    adjoint = [nd for nd in topo_order([gx, gw]) if nd.op == "loop" and nd.attr("body").emit
               and any(c.attr("name") == "ĉ" for c in nd.attr("body").carried)]
    assert adjoint and all(c.shape == () for nd in adjoint for c in nd.attr("body").carried)
    rng = np.random.default_rng(2)
    xv, wv = rng.normal(size=n), rng.normal(size=n)
    got = run([x, w], [s, gx, gw], xv, wv)
    want_gx = np.zeros(n)
    want_gx[:-1] = 2 * xv[:-1] * wv[1:]
    want_gw = np.zeros(n)
    want_gw[1:] = xv[:-1] ** 2
    np.testing.assert_allclose(got[0], np.sum(xv[:-1] ** 2 * wv[1:]), rtol=1e-14)
    np.testing.assert_allclose(got[1], want_gx, rtol=1e-14)
    np.testing.assert_allclose(got[2], want_gw, rtol=1e-14)
    # second order through the emitted reads: d/dx of gx·v is diag(2 w[1:]) v
    v = make_input("v", (n,))
    (hx,) = jvp_graph([gx], [x], [v])
    (hxx,) = vjp_graph([A("sum", A("mul", gx, v), axis=None, keepdims=False)], [C(1.0)], [x])
    vv = rng.normal(size=n)
    want = np.zeros(n)
    want[:-1] = 2 * wv[1:] * vv[:-1]
    for got_h in run([x, w, v], [hx, hxx], xv, wv, vv):
        np.testing.assert_allclose(got_h, want, rtol=1e-13, atol=1e-15)
