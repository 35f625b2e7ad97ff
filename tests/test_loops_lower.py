"""Loops in function bodies, from bp source (issue 15): while, for over a runtime
count, break and if in a loop's body; their derivatives, printing, export, limits.

Expected values come from NumPy loops or calculus worked out by hand, derivatives
also from central differences and from the same loop unrolled (a constant count
of at most 64 unrolls, so `range(6)` and `range(n)` with n = 6 are the two forms).
"""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import dsl
from dsl.errors import BpError
from dsl.lower_loops import UNROLL_MAX

PROGRAM = """
def newton(a) {
  x = 1
  while abs(x^2 - a) > 1e-12 { x = 0.5*(x + a/x) }
  return x
}
def newton_n(a, n) {
  x = 1
  for i in range(n) { x = 0.5*(x + a/x) }
  return x
}
def newton_6(a) {
  x = 1
  for i in range(6) { x = 0.5*(x + a/x) }
  return x
}
def descend(p) {
  x = 0
  g = 2*(x - p) + 2*x^3
  while abs(g) > 1e-11 {
    x = x - 0.1*g
    g = 2*(x - p) + 2*x^3
  }
  return x
}
def f(y) = -0.7*y + sin(y)
def rk4(y0, h, n) {
  y = y0
  for i in range(n) {
    k1 = f(y)
    k2 = f(y + h/2*k1)
    k3 = f(y + h/2*k2)
    k4 = f(y + h*k3)
    y = y + h/6*(k1 + 2*k2 + 2*k3 + k4)
  }
  return y
}
def rk4_12(y0, h) {
  y = y0
  for i in range(12) {
    k1 = f(y)
    k2 = f(y + h/2*k1)
    k3 = f(y + h/2*k2)
    k4 = f(y + h*k3)
    y = y + h/6*(k1 + 2*k2 + 2*k3 + k4)
  }
  return y
}
def partial(x, n) {
  s = 0
  for i in range(n) {
    s = s + x^i
    if s > 10 { break }
  }
  return s
}
"""


@pytest.fixture(scope="module")
def bp():
    interp = dsl.Interpreter()
    interp.exec(PROGRAM)
    return interp


def num(bp, src):
    return np.asarray(bp.eval(src), dtype=np.float64)


def central(fn, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[i] = h
        g[i] = (fn(x + e) - fn(x - e)) / (2 * h)
    return g


def rk4_numpy(y0, h, n):
    f = lambda y: -0.7 * y + np.sin(y)    # noqa: E731
    y = np.array(y0, dtype=np.float64)
    for _ in range(int(n)):
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


# ── acceptance 1: Newton, gradient descent, RK4, each differentiated ─────

def test_newton_with_a_tolerance(bp):
    a = 3.0
    assert float(num(bp, f"newton({a})")) == pytest.approx(np.sqrt(a), rel=1e-15)
    assert float(num(bp, f"grad(newton)({a})")) == pytest.approx(0.5 / np.sqrt(a), rel=1e-12)
    # second order: d²/da² sqrt(a) = -a^(-3/2)/4, by reverse over reverse, hvp, hessian
    want2 = -0.25 * a ** -1.5
    assert float(num(bp, f"grad(grad(newton))({a})")) == pytest.approx(want2, rel=1e-9)
    assert float(num(bp, f"hvp(newton)({a}, 1)")) == pytest.approx(want2, rel=1e-9)
    assert float(num(bp, f"hessian(newton)({a})")) == pytest.approx(want2, rel=1e-9)
    # against differences of the loop itself
    fd = central(lambda v: float(num(bp, f"newton({float(v)!r})")), a)
    assert float(num(bp, f"grad(newton)({a})")) == pytest.approx(float(fd), rel=1e-7)


def test_newton_for_a_runtime_count_against_its_unrolled_form(bp):
    """newton_n(a, 6) is a loop node, newton_6 is unrolled: the same numbers."""
    for what in ("{f}", "grad({f})", "grad(grad({f}))", "hessian({f})"):
        loop = num(bp, what.format(f="newton_n") + "(2.5, 6)" if what == "{f}" else
                   what.format(f="newton_n") + "(2.5, 6)")
        unrolled = num(bp, what.format(f="newton_6") + "(2.5)")
        np.testing.assert_allclose(loop, unrolled, rtol=1e-13)


def test_gradient_descent_to_convergence(bp):
    """x*(p) minimises (x - p)² + x⁴/2: 2(x - p) + 2x³ = 0, so dx*/dp = 2/(2 + 6x*²)."""
    p = 1.3
    xs = float(num(bp, f"descend({p})"))
    assert abs(2 * (xs - p) + 2 * xs ** 3) < 1e-10
    d = 2 / (2 + 6 * xs ** 2)
    assert float(num(bp, f"grad(descend)({p})")) == pytest.approx(d, rel=1e-8)
    dd = -2 * 12 * xs * d / (2 + 6 * xs ** 2) ** 2           # d/dp of 2/(2 + 6x*(p)²)
    assert float(num(bp, f"hvp(descend)({p}, 1)")) == pytest.approx(dd, rel=1e-6)
    assert float(num(bp, f"grad(grad(descend))({p})")) == pytest.approx(dd, rel=1e-6)


def test_rk4_with_a_runtime_step_count(bp):
    y0 = np.array([0.3, -1.2, 2.0])
    bp["Y0"] = y0
    np.testing.assert_allclose(num(bp, "rk4(Y0, 0.05, 12)"), rk4_numpy(y0, 0.05, 12), rtol=1e-14)
    # the unrolled form (a constant count of 12) gives the same values and derivatives
    np.testing.assert_allclose(num(bp, "rk4(Y0, 0.05, 12)"), num(bp, "rk4_12(Y0, 0.05)"), rtol=1e-14)
    g = bp.eval("grad((y, h) -> sum(rk4(y, h, 12)^2), wrt=(y, h))(Y0, 0.05)")
    gu = bp.eval("grad((y, h) -> sum(rk4_12(y, h)^2), wrt=(y, h))(Y0, 0.05)")
    np.testing.assert_allclose(g[0], gu[0], rtol=1e-12)
    np.testing.assert_allclose(g[1], gu[1], rtol=1e-12)
    L = lambda y, h: float(np.sum(rk4_numpy(y, h, 12) ** 2))    # noqa: E731
    np.testing.assert_allclose(g[0], central(lambda v: L(v, 0.05), y0), rtol=1e-7)
    np.testing.assert_allclose(g[1], central(lambda v: L(y0, float(v)), 0.05), rtol=1e-7)
    # second order: the Hessian in y0 (a Jacobian of the gradient through both loops)
    H = num(bp, "hessian(y -> sum(rk4(y, 0.05, 12)^2))(Y0)")
    Hu = num(bp, "hessian(y -> sum(rk4_12(y, 0.05)^2))(Y0)")
    np.testing.assert_allclose(H, Hu, rtol=1e-10, atol=1e-12)
    hv = num(bp, "hvp(y -> sum(rk4(y, 0.05, 12)^2))(Y0, [1, 0, -1])")
    np.testing.assert_allclose(hv, Hu @ np.array([1.0, 0, -1]), rtol=1e-10, atol=1e-12)


def test_break_in_a_loop_body(bp):
    # 1 + 2 + 4 + 8 = 15 > 10: the loop stops there; ds/dx = 1 + 2x + 3x² at x = 2
    assert float(num(bp, "partial(2, 10)")) == 15.0
    assert float(num(bp, "grad(partial)(2, 10)")) == 17.0
    assert float(num(bp, "partial(1, 10)")) == 10.0                    # never more than 10
    assert float(num(bp, "partial(0.5, 4)")) == 1 + 0.5 + 0.25 + 0.125


def test_if_else_and_several_carried_values_in_a_loop():
    bp = dsl.Interpreter()
    bp.exec("""
def collatz(x) {
  steps = 0
  while x != 1 {
    if x % 2 == 0 { x = x / 2 } else { x = 3*x + 1 }
    steps = steps + 1
  }
  return steps
}
def pair(a, n) {
  v = [1, 0]
  s = 0
  for i in range(n) {
    v = [v[0]*a - v[1], v[0]]
    s = s + v[0]
  }
  return (v, s)
}
""")
    def collatz(x):
        k = 0
        while x != 1:
            x = x // 2 if x % 2 == 0 else 3 * x + 1
            k += 1
        return k
    for x in (1, 6, 7, 27):
        assert float(bp.eval(f"collatz({x})")) == collatz(x)
    v, s = bp.eval("pair(0.9, 7)")
    vv, ss = np.array([1.0, 0.0]), 0.0
    for _ in range(7):
        vv = np.array([vv[0] * 0.9 - vv[1], vv[0]])
        ss += vv[0]
    np.testing.assert_allclose(v, vv, rtol=1e-15)
    assert float(s) == pytest.approx(ss, rel=1e-15)
    g = float(bp.eval("grad(a -> pair(a, 7)[1])(0.9)"))
    fd = central(lambda a: float(bp.eval(f"pair({float(a)!r}, 7)[1]")), 0.9)
    assert g == pytest.approx(float(fd), rel=1e-7)


def test_nested_loops_from_source():
    bp = dsl.Interpreter()
    bp.exec("""
def tri(x, n) {
  s = 0
  for i in range(n) {
    t = 0
    for j in range(i) { t = t + x^j }
    s = s + t
  }
  return s
}
""")
    X, N = 1.3, 6
    want = sum(X ** j for i in range(N) for j in range(i))
    dwant = sum(j * X ** (j - 1) for i in range(N) for j in range(1, i))
    assert float(bp.eval(f"tri({X}, {N})")) == pytest.approx(want, rel=1e-14)
    assert float(bp.eval(f"grad(tri)({X}, {N})")) == pytest.approx(dwant, rel=1e-12)


# ── printing, graph, export ──────────────────────────────────────────────

def test_printed_loops_read_back(bp):
    assert bp.format(bp.eval("newton")) == \
        "a -> { x = 1; while abs(x^2 - a) > 1e-12 { x = 0.5 * (x + a/x) }; return x }"
    for fn, call in (("newton", "(2.5)"), ("rk4", "([0.3, -1.2], 0.05, 7)"),
                     ("partial", "(2, 10)"), ("descend", "(1.3)"), ("grad(newton)", "(2.5)"),
                     ("jvp(newton)", "(2.5, 1)"), ("hvp(newton)", "(2.5, 1)"),
                     ("grad(rk4, wrt=h)", "(0.3, 0.05, 7)")):
        text = bp.format(bp.eval(fn))
        other = dsl.Interpreter()
        other.exec(PROGRAM)
        other.exec(f"g = {text}")
        np.testing.assert_allclose(num(other, "g" + call), num(bp, fn + call), rtol=1e-13,
                                   err_msg=text)
    # forward mode prints as a loop carrying the tangent
    assert "while" in bp.format(bp.eval("jvp(newton)"))


def test_graph_lists_the_loop_and_its_body(bp):
    text = str(bp.graph("newton"))
    assert "loop1(" in text and "loop1: counter k, carried x, captured a" in text


def test_export_writes_a_python_loop(bp, tmp_path):
    path = tmp_path / "m.py"
    bp.exec(f'export newton to "{path}"')
    bp.exec(f'export grad(rk4, wrt=h) to "{tmp_path / "g.py"}"')
    src = path.read_text()
    assert "while" in src and "import numpy as np" in src
    mods = []
    for p in (path, tmp_path / "g.py"):
        spec = importlib.util.spec_from_file_location(p.stem, p)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    assert float(mods[0].newton(2.5)) == pytest.approx(np.sqrt(2.5), rel=1e-15)
    fn = [getattr(mods[1], n) for n in dir(mods[1]) if not n.startswith("_") and n != "np"][0]
    np.testing.assert_allclose(fn(0.3, 0.05, 7), num(bp, "grad(rk4, wrt=h)(0.3, 0.05, 7)"),
                               rtol=1e-14)


def test_short_constant_loops_unroll_and_long_ones_are_loop_nodes():
    bp = dsl.Interpreter()
    n = UNROLL_MAX
    bp.exec(f"def f(x) {{ for i in range({n}) {{ x = sin(x) }}; return x }}\n"
            f"def g(x) {{ for i in range({n + 1}) {{ x = sin(x) }}; return x }}")
    ops_f = {n.op for n in bp.graph("f").nodes}
    ops_g = {n.op for n in bp.graph("g").nodes}
    assert "loop" not in ops_f and "loop" in ops_g
    x = 0.7
    for _ in range(n + 1):
        x = np.sin(x)
    assert float(bp.eval("g(0.7)")) == pytest.approx(x, rel=1e-15)


def test_a_constant_loop_that_needs_its_variable_as_a_constant_unrolls():
    """reshape needs a constant shape: the loop over 100 is unrolled instead."""
    bp = dsl.Interpreter()
    bp.exec("def f(x) { s = 0; for i in range(100) { s = s + sum(reshape(x, 1, 2) * i) }; return s }")
    assert float(bp.eval("f([1, 2])")) == pytest.approx(3 * sum(range(100)))


# ── limits and mistakes ──────────────────────────────────────────────────

def test_the_iteration_cap_is_a_located_value_error():
    bp = dsl.Interpreter(max_iterations=1000)
    bp.exec("def f(x) {\n  while x > 0 { x = x + 1 }\n  return x\n}")
    with pytest.raises(BpError) as err:
        bp.exec("y = f(1)")
    assert err.value.kind == "value error" and (err.value.line, err.value.column) == (2, 3)
    assert "max_iterations" in err.value.message and "--max-iterations" in err.value.message
    assert float(bp.eval("f(-1)")) == -1.0                 # the session goes on


@pytest.mark.parametrize("src, kind, where, words", [
    ("def f(x) { print x; return x }", "syntax error", (1, 12), "function body"),
    ("def f(x) { if x > 0 { break }; return x }", "syntax error", (1, 23), "break outside a loop"),
    ("def f(x) { break; return x }", "syntax error", (1, 12), "break outside a loop"),
    ("def f(x) { while x > 0 { return x }; return x }\nf(1)", "type error", (1, 26), "return"),
    ("def f(x) { while x { x = [x, x] }; return x }\nf(1)", "shape error", None, "'x'"),
    ("def f(x) { while [1, 1] { x = x + 1 }; return x }\nf(1)", "type error", (1, 18), "scalar"),
    ("def f(x) { g = sin; while x > 0 { g = cos; x = x - 1 }; return x }\nf(1)", "type error", None,
     "'g'"),
])
def test_loop_mistakes_are_located_errors(src, kind, where, words):
    bp = dsl.Interpreter()
    with pytest.raises(BpError) as err:
        bp.exec(src)
    assert err.value.kind == kind, err.value
    assert words in err.value.message, err.value.message
    if where is not None:
        assert (err.value.line, err.value.column) == where


def test_a_long_while_loop_and_its_gradient_from_source():
    """10⁵ iterations and the gradient through them, with Python's stack limited to
    far less than the loop's length: nothing recurses per iteration."""
    bp = dsl.Interpreter()
    bp.exec("def walk(h) { x = 0; i = 0; while i < 100000 { x = x + h*cos(x); i = i + 1 }; return x }")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        v = float(bp.eval("walk(1e-5)"))
        g = float(bp.eval("grad(walk)(1e-5)"))
    finally:
        sys.setrecursionlimit(limit)
    x, d = 0.0, 0.0
    for _ in range(100_000):
        x, d = x + 1e-5 * np.cos(x), d + np.cos(x) - 1e-5 * np.sin(x) * d
    assert v == pytest.approx(x, rel=1e-13) and g == pytest.approx(d, rel=1e-10)


def test_rosenbrock_written_as_a_loop():
    """Σ 100(x[i+1] - x[i]²)² + (1 - x[i])² over a runtime range: value, gradient and a
    Hessian-vector product against the formulas by hand (the Hessian is tridiagonal)."""
    bp = dsl.Interpreter()
    bp.exec("def rosen(x) {\n  s = 0\n  for i in range(size(x) - 1) "
            "{ s = s + 100*(x[i+1] - x[i]^2)^2 + (1 - x[i])^2 }\n  return s\n}")
    x = np.linspace(-1.2, 1.1, 300)
    bp["X"], bp["V"] = x, np.cos(np.arange(300.0))
    a, b = x[:-1], x[1:]
    assert float(bp.eval("rosen(X)")) == pytest.approx(np.sum(100 * (b - a ** 2) ** 2 + (1 - a) ** 2),
                                                       rel=1e-13)
    g = np.zeros_like(x)
    g[:-1] += -400 * a * (b - a ** 2) - 2 * (1 - a)
    g[1:] += 200 * (b - a ** 2)
    np.testing.assert_allclose(bp.eval("grad(rosen)(X)"), g, rtol=1e-12, atol=1e-12)
    H = np.zeros((300, 300))
    d = np.zeros(300)
    d[:-1] += 1200 * a ** 2 - 400 * b + 2
    d[1:] += 200
    H[np.arange(300), np.arange(300)] = d
    H[np.arange(299), np.arange(1, 300)] = H[np.arange(1, 300), np.arange(299)] = -400 * a
    np.testing.assert_allclose(bp.eval("hvp(rosen)(X, V)"), H @ bp.eval("V"), rtol=1e-10, atol=1e-9)


def test_gradient_descent_on_a_record_with_grad_inside_the_loop():
    """th ← th - 0.1·∇q((q.a - p)² + (q.b + p)²): th.a_k = p(1 - 0.8^k), th.b_k = -th.a_k,
    so after k steps th.a - th.b = 2p(1 - 0.8^k), derivative 2(1 - 0.8^k) (by hand)."""
    bp = dsl.Interpreter()
    bp.exec("""
def fit(p, k) {
  th = {a: 0, b: 0}
  i = 0
  while i < k {
    g = grad(q -> (q.a - p)^2 + (q.b + p)^2)(th)
    th = {a: th.a - 0.1*g.a, b: th.b - 0.1*g.b}
    i = i + 1
  }
  return th.a - th.b
}
""")
    for k in (0, 3, 40):
        assert float(bp.eval(f"fit(1.5, {k})")) == pytest.approx(3 * (1 - 0.8 ** k), rel=1e-14, abs=1e-15)
        assert float(bp.eval(f"grad(fit)(1.5, {k})")) == pytest.approx(2 * (1 - 0.8 ** k), rel=1e-13,
                                                                       abs=1e-15)
    text = bp.format(bp.eval("fit"))
    assert text.startswith("(p, k) -> { th_a, th_b, i = 0, 0, 0; while i < k {")
    bp.exec(f"g = {text}")
    assert float(bp.eval("grad(g)(1.5, 3)")) == pytest.approx(2 * (1 - 0.8 ** 3), rel=1e-13)


def _particle_numpy(w):
    cs = [np.array([10.0, 10.0 - w]), np.array([10.0, 0.0])]
    x, xd, dt = np.array([0.0, 8.0]), np.array([0.75, 0.0]), 0.1
    while True:
        xdd = sum((x - c) / np.linalg.norm(x - c) ** 3 for c in cs)       # -∇p
        xn = x + dt * xd
        if xn[1] <= 0:
            break
        x, xd = xn, xd + dt * xdd
    xf = x + (-x[1] / xd[1]) * xd
    return xf[0] ** 2


def test_a_while_loop_whose_body_differentiates():
    """GradBench's particle: an unbounded while loop whose body calls ∇ₓp, where p
    depends on w; d/dw and d²/dw² through it (a mixed third derivative inside)."""
    bp = dsl.Interpreter()
    bp.exec("""
def naive_euler(w) {
  def p(x) = 1/norm(x - [10, 10 - w]) + 1/norm(x - [10, 0])
  x = [0, 8]
  xd = [0.75, 0]
  go = 1
  while go {
    xdd = -grad(p)(x)
    xn = x + 0.1*xd
    if xn[1] > 0 { x = xn; xd = xd + 0.1*xdd } else { go = 0 }
  }
  xf = x + (-x[1]/xd[1])*xd
  return xf[0]^2
}
""")
    w, h = 0.3, 1e-6
    assert float(bp.eval(f"naive_euler({w})")) == pytest.approx(_particle_numpy(w), rel=1e-12)
    fd = (_particle_numpy(w + h) - _particle_numpy(w - h)) / (2 * h)
    g = float(bp.eval(f"grad(naive_euler)({w})"))
    assert g == pytest.approx(fd, rel=1e-6)
    fd2 = (float(bp.eval(f"grad(naive_euler)({w + h})")) -
           float(bp.eval(f"grad(naive_euler)({w - h})"))) / (2 * h)
    for src in ("grad(grad(naive_euler))", "hvp(naive_euler)"):
        got = float(bp.eval(f"{src}({w}" + (", 1)" if src.startswith("hvp") else ")")))
        assert got == pytest.approx(fd2, rel=1e-6), src


def test_printed_loop_names_are_the_printers():
    """Parameters called like the printer's loop names (go, i, x) keep theirs."""
    bp = dsl.Interpreter()
    bp.exec("def f(go, i) { s = 0; for k in range(i) { s = s + go^k; if s > 5 { break } }; return s }")
    text = bp.format(bp.eval("f"))
    assert text.startswith("(go, i) -> {")
    other = dsl.Interpreter()
    other.exec(f"g = {text}")
    for args in ("(2, 10)", "(0.5, 4)"):
        assert float(other.eval("g" + args)) == float(bp.eval("f" + args))
        assert float(other.eval("grad(g)" + args)) == float(bp.eval("grad(f)" + args))


def test_errors_and_ieee_values_inside_a_loop_body():
    bp = dsl.Interpreter()
    bp.exec("def f(x, n) {\n  s = 0\n  for i in range(n) {\n    s = s + x[i]\n  }\n  return s\n}\n"
            "def g(x, n) { for i in range(n) { x = 1/(x - 1) }; return x }")
    assert float(bp.eval("f([1, 2, 3], 3)")) == 6.0
    with pytest.raises(BpError) as err:
        bp.eval("f([1, 2, 3], 5)")                    # x[3] does not exist
    assert err.value.kind == "value error" and err.value.line == 4
    # 1/(1 - 1) is inf as in NumPy (the scalar fast path's ZeroDivisionError is redone)
    with np.errstate(divide="ignore"):
        x = np.float64(0.5)
        for _ in range(3):
            x = np.float64(1) / (x - 1)
    assert float(bp.eval("g(2, 1)")) == 1.0
    assert float(bp.eval("g(2, 2)")) == np.inf and float(bp.eval("g(2, 3)")) == 0.0
    assert float(bp.eval("g(0.5, 3)")) == pytest.approx(float(x), rel=1e-15)


def test_max_iterations_on_the_command_line_and_interrupt():
    import io
    import threading
    import time
    from dsl.cli import main
    out, err = io.StringIO(), io.StringIO()
    code = main(["--max-iterations", "50", "-c",
                 "def f(x) { while x > 0 { x = x + 1 }; return x }\nprint f(1)"], out, err)
    assert code == 1 and "max_iterations" in err.getvalue() and "--max-iterations" in err.getvalue()
    bp = dsl.Interpreter()
    bp.exec("def spin(x) { while x > 0 { x = x + 1 }; return x }")
    box = {}

    def go():
        try:
            bp.exec("y = spin(1)")
        except BpError as e:
            box["err"] = e
    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.3)
    bp.interrupt()
    t.join(10)
    assert not t.is_alive() and box["err"].kind == "interrupted"
    assert float(bp.eval("spin(-1)")) == -1.0


def test_printed_loops_are_hygienic():
    """A parameter called range pushes aside; a global range makes the printer write
    bp.range, which a for loop reads as range."""
    bp = dsl.Interpreter()
    bp.exec("def f(range, x) { for i in range(range) { x = sin(x) }; return x }")
    text = bp.format(bp.eval("f"))
    assert text == "(range1, x) -> { x1 = x; for i in range(range1) { x1 = sin(x1) }; return x1 }"
    n = UNROLL_MAX + 1                                   # a loop node, not unrolled
    bp.exec(f"range = 7\nh = x -> {{ y = x; for i in range({n}) {{ y = sin(y) }}; return y }}")
    text = bp.format(bp.eval("h"))
    assert f"for i in bp.range({n})" in text
    bp.exec(f"g = {text}")
    want = 1.0
    for _ in range(n):
        want = np.sin(want)
    assert float(bp.eval("g(1)")) == pytest.approx(want, rel=1e-15)


def test_a_loop_of_constants_folds_once(monkeypatch):
    from dsl import loops
    runs = []
    real = loops.run

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(loops, "run", counting)
    bp = dsl.Interpreter()
    n = UNROLL_MAX + 1                                   # a loop node, not unrolled
    bp.exec(f"def f(x) {{ s = 0; t = 1; for i in range({n}) {{ s = s + i; t = 2*t }}; return s + t + x }}")
    assert float(bp.eval("f(1)")) == n * (n - 1) / 2 + 2.0 ** n + 1
    assert len(runs) == 1 and "loop" not in {n.op for n in bp.graph("f").nodes}


def test_value_and_gradient_run_the_loop_once_forward(monkeypatch):
    """The value of a loop comes from the saving loop the gradient runs anyway: a
    forward pass and an adjoint pass, two loop runs, not three."""
    from dsl import ops
    runs = []
    real = ops.REGISTRY["loop"].kernel.run

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(ops.REGISTRY["loop"].kernel, "run", counting)
    bp = dsl.Interpreter()
    bp.exec("def newton(a) { x = 1; while abs(x^2 - a) > 1e-12 { x = 0.5*(x + a/x) }; return x }")
    v, g = bp.eval("value_and_grad(newton)(2)")
    assert float(v) == pytest.approx(np.sqrt(2), rel=1e-15)
    assert float(g) == pytest.approx(0.5 / np.sqrt(2), rel=1e-12)
    assert len(runs) == 2


def test_check_nan_points_into_a_loop_body():
    bp = dsl.Interpreter(check_nan=True)
    bp.exec("def f(x, n) {\n  for i in range(n) {\n    x = log(x - 1)\n  }\n  return x\n}")
    # 10 → log 9 = 2.197 → log 1.197 = 0.180 → log(-0.82) = nan
    assert float(bp.eval("f(10, 2)")) == pytest.approx(np.log(np.log(9.0) - 1), rel=1e-15)
    with pytest.raises(BpError) as err:
        bp.eval("f(10, 5)")
    assert "--check-nan" in err.value.message and (err.value.line, err.value.column) == (3, 9)


BODIES = [
    "x = x + h*sin(x)",
    "x = x - h*(x^3 - a); y = y + x",
    "if x > a { x = x/2 } else { x = x + h }",
    "x = x*h + a; if x > 3 { break }",
    "y = [y[1], y[0]*h - a]",
    "for j in range(3) { x = x*h + j }",
    "z = 0; for j in range(n) { z = z + x^j }; x = z*0.1",
    "if x > 1 { if y[0] > 2 { break } else { x = x - 1 } }; y = y*h",
]
HEADS = ["for i in range({{n}}) {{ {b}; y = y + i }}", "while x < 5 and n > 0 {{ {b}; n = n - 1 }}"]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("head", HEADS)
def test_loop_programs_print_read_back_and_differentiate(body, head):
    """Each loop program: its printed function, gradient, JVP and HVP read back to the
    same numbers, and its gradient agrees with central differences of its value."""
    y0 = "1" if "y = y + x" in body else "[1, 2]"
    src = f"def f(a, h, n) {{ x = a; y = {y0}; {head.format(b=body).replace('{n}', 'n')}; " \
          f"return sum(x*y) }}"
    bp = dsl.Interpreter()
    bp.exec(src)
    for fn, args in (("f", "(0.7, 0.9, 4)"), ("grad(f, wrt=(a, h))", "(0.7, 0.9, 4)"),
                     ("jvp(f)", "(0.7, 0.9, 4, 1)"), ("hvp(f)", "(0.7, 0.9, 4, 1)")):
        want = bp.eval(fn + args)
        other = dsl.Interpreter()
        other.exec(f"g = {bp.format(bp.eval(fn))}")
        got = other.eval("g" + args)
        for p, q in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{fn} of {src}")
    fd = (float(bp.eval("f(0.7 + 1e-6, 0.9, 4)")) - float(bp.eval("f(0.7 - 1e-6, 0.9, 4)"))) / 2e-6
    assert float(bp.eval("grad(f)(0.7, 0.9, 4)")) == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_reverse_over_reverse_through_a_long_loop():
    """d²/dh² through 3000 iterations, by grad(grad) and hvp, against differences of
    the NumPy loop's derivative (the tape's cotangent is scattered once, not carried)."""
    bp = dsl.Interpreter()
    bp.exec("def walk(h, n) { x = 0; for i in range(n) { x = x + h*cos(x) }; return x }")

    def dwalk(h, n):
        x, d = 0.0, 0.0
        for _ in range(n):
            x, d = x + h * np.cos(x), d + np.cos(x) - h * np.sin(x) * d
        return d
    e = 1e-7                  # the third derivative is large: a step of 1e-5 is off by 1e-4
    fd = (dwalk(0.001 + e, 3000) - dwalk(0.001 - e, 3000)) / (2 * e)
    assert float(bp.eval("grad(grad(walk))(0.001, 3000)")) == pytest.approx(fd, rel=1e-6)
    assert float(bp.eval("hvp(walk)(0.001, 3000, 1)")) == pytest.approx(fd, rel=1e-6)
