"""`if` statements in function bodies and `while` at the top level (issue 15's gaps).

An if statement in a function body lowers to where(c, then, else) for each name a
side rebinds (a constant test builds only its side); a top-level while runs as
Python runs it.  Expected values are worked out by hand or by the same Python
code; derivatives also by central differences.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import dsl
from dsl.errors import BpError, BpInterrupted

PROGRAM = """
def f(x) {
  if x > 0 { y = x^3 } else { y = sin(x) }
  return y
}
def chain(x, a) {
  y = x
  if a > 1 { y = 2*y } else if a < -1 { y = y^2 } else { y = exp(y) }
  return y
}
def keep(x) {
  y = x
  if x < 0 { y = -x }
  return y*x
}
def early(x) {
  if x > 1 { return log(x) }
  z = x^2
  return z + 1
}
def vec(x: [3]) {
  if x > 0 { x = x^2 } else { x = 3*x }
  return sum(x)
}
def nested(x, y) {
  s = 0
  if x > 0 {
    if y > 0 { s = x*y } else { s = x - y }
  } else { s = x + y^2 }
  return s
}
"""


@pytest.fixture(scope="module")
def bp():
    interp = dsl.Interpreter()
    interp.exec(PROGRAM)
    return interp


def num(bp, src):
    return np.asarray(bp.eval(src), dtype=float)


def central(g, x, h=1e-6):
    return (g(x + h) - g(x - h)) / (2*h)


def py_f(x):
    return x**3 if x > 0 else np.sin(x)


def py_chain(x, a):
    return 2*x if a > 1 else (x**2 if a < -1 else np.exp(x))


def py_early(x):
    return np.log(x) if x > 1 else x**2 + 1


def test_values(bp):
    for x in (1.5, -0.7, 0.0):
        assert float(bp.eval(f"f({x})")) == pytest.approx(py_f(x), rel=1e-15)
        assert float(bp.eval(f"early({x})")) == pytest.approx(py_early(x), rel=1e-15)
        assert float(bp.eval(f"keep({x})")) == pytest.approx(abs(x)*x, rel=1e-15)
    assert float(bp.eval("early(3)")) == pytest.approx(np.log(3))
    for a in (2, -3, 0.5):
        assert float(bp.eval(f"chain(0.4, {a})")) == pytest.approx(py_chain(0.4, a), rel=1e-15)
    np.testing.assert_allclose(num(bp, "vec([1, -2, 3])"), 1 + -6 + 9)
    for (x, y), want in (((2, 3), 6), ((2, -3), 5), ((-2, 3), 7)):
        assert float(bp.eval(f"nested({x}, {y})")) == want


def test_derivatives_by_hand_and_by_differences(bp):
    # d/dx x^3 = 3x^2, d/dx sin x = cos x; second derivatives 6x and -sin x
    for x in (1.5, -0.7):
        want = 3*x**2 if x > 0 else np.cos(x)
        assert float(bp.eval(f"grad(f)({x})")) == pytest.approx(want, rel=1e-14)
        assert float(bp.eval(f"grad(f)({x})")) == pytest.approx(central(py_f, x), rel=1e-7)
        want2 = 6*x if x > 0 else -np.sin(x)
        assert float(bp.eval(f"hessian(f)({x})")) == pytest.approx(want2, rel=1e-13)
    # chain: 2, 2x, exp(x) in x; nothing in a (the test gets no derivative)
    for a, want in ((2, 2.0), (-3, 0.8), (0.5, np.exp(0.4))):
        g = num(bp, f"grad(chain, wrt=(x, a))(0.4, {a})")
        np.testing.assert_allclose(g, [want, 0.0], rtol=1e-14)
        d = central(lambda t: py_chain(t, a), 0.4)
        assert g[0] == pytest.approx(d, rel=1e-7)
    # early return: 1/x past 1, 2x before; second derivative -1/x^2 and 2
    for x, d1, d2 in ((3.0, 1/3, -1/9), (0.5, 1.0, 2.0)):
        assert float(bp.eval(f"grad(early)({x})")) == pytest.approx(d1, rel=1e-14)
        assert float(bp.eval(f"grad(grad(early))({x})")) == pytest.approx(d2, rel=1e-14)
        assert float(bp.eval(f"grad(early)({x})")) == pytest.approx(central(py_early, x), rel=1e-7)
    # elementwise test: 2x where x > 0, 3 elsewhere; hessian diagonal 2 or 0
    np.testing.assert_allclose(num(bp, "grad(vec)([1, -2, 3])"), [2, 3, 6])
    np.testing.assert_allclose(num(bp, "hessian(vec)([1, -2, 3])"), np.diag([2.0, 0, 2]))
    np.testing.assert_allclose(num(bp, "grad(nested, wrt=(x, y))(2, 3)"), [3, 2])
    np.testing.assert_allclose(num(bp, "grad(nested, wrt=(x, y))(-2, 3)"), [1, 6])


def test_printed_derivatives_read_back(bp):
    for fn, calls in (("f", ("(1.5)", "(-0.7)")), ("grad(f)", ("(1.5)", "(-0.7)")),
                      ("hessian(f)", ("(1.5)", "(-0.7)")),
                      ("grad(chain)", ("(0.4, 2)", "(0.4, -3)", "(0.4, 0.5)")),
                      ("early", ("(3)", "(0.5)")), ("grad(early)", ("(3)", "(0.5)")),
                      ("grad(vec)", ("([1, -2, 3])",)), ("keep", ("(-2)", "(2)"))):
        text = bp.format(bp.eval(fn))
        other = dsl.Interpreter()
        other.exec(f"g = {text}")
        for call in calls:
            np.testing.assert_allclose(num(other, "g" + call), num(bp, fn + call), rtol=1e-14,
                                       err_msg=text)
    assert "where(" in bp.format(bp.eval("f"))


def test_export_of_an_if(bp, tmp_path):
    import importlib.util
    path = tmp_path / "m.py"
    bp.exec(f'export grad(early) to "{path}"')
    spec = importlib.util.spec_from_file_location("m_if", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = [v for k, v in vars(mod).items() if callable(v) and not k.startswith("_")
          and getattr(v, "__module__", None) == "m_if"][0]
    assert float(fn(3.0)) == pytest.approx(1/3) and float(fn(0.5)) == pytest.approx(1.0)


def test_a_constant_test_builds_only_its_side():
    bp = dsl.Interpreter()
    bp.exec("def f(x, flag) {\n  if flag { y = sin(x) } else { t = 1; y = cos(x) }\n  return y\n}\n"
            "def on(x) = f(x, 1)\ndef off(x) = f(x, 0)\n"
            "def g(x) { if 1 { return x^2 }; return nonsense(x) }\n"
            "def h(x) { if 0 { only = 1 }; return x }")
    assert "where" not in bp.format(bp.eval("on")) and "cos" not in bp.format(bp.eval("on"))
    assert "where" not in bp.format(bp.eval("off")) and "sin" not in bp.format(bp.eval("off"))
    assert float(bp.eval("on(0.3)")) == pytest.approx(np.sin(0.3))
    assert float(bp.eval("grad(off)(0.3)")) == pytest.approx(-np.sin(0.3))
    assert float(bp.eval("g(3)")) == 9.0                 # the other side is never built
    assert bp.format(bp.eval("grad(g)")) == "x -> 2*x"
    assert float(bp.eval("h(2)")) == 2.0


def test_if_rebinds_tuples_and_records():
    bp = dsl.Interpreter()
    bp.exec("def f(x) {\n  p = (x, {a: 2*x})\n  if x > 1 { p = (x^2, {a: 3}) }\n"
            "  return p[0] + p[1].a\n}")
    assert float(bp.eval("f(2)")) == 7.0 and float(bp.eval("f(0.5)")) == 1.5
    assert float(bp.eval("grad(f)(2)")) == 4.0 and float(bp.eval("grad(f)(0.5)")) == 3.0


def test_if_in_a_loop_body_still_works_and_with_constant_tests():
    bp = dsl.Interpreter()
    bp.exec("def f(x, n) {\n  s = 0\n  for i in range(n) {\n    if 1 { s = s + x }\n"
            "    if s > 10 { break }\n  }\n  return s\n}")
    assert float(bp.eval("f(3, 100)")) == 12.0 and float(bp.eval("f(3, 2)")) == 6.0
    assert float(bp.eval("grad(f)(3, 100)")) == 4.0


def located(bp, src):
    with pytest.raises(BpError) as err:
        bp.exec(src)
    return err.value


def test_located_errors():
    bp = dsl.Interpreter()
    err = located(bp, "def f(x) {\n  if x > 0 { t = x }\n  return t\n}\nf(1)")
    assert err.kind == "name error" and (err.line, err.column) == (3, 10)
    assert "only one side of the if statement at line 2" in str(err)
    # bound on one side but not used after: fine (a temporary), as in Python
    bp.exec("def g(x) {\n  y = x\n  if x > 0 { t = 2*x; y = t }\n  return y\n}")
    assert float(bp.eval("g(3)")) == 6.0 and float(bp.eval("g(-1)")) == -1.0
    # a global of the same name does not leak in where the branch did not run
    bp.exec("t = 100")
    err = located(bp, "def h(x) {\n  if x > 0 { t = x }\n  return t\n}\nh(1)")
    assert err.kind == "name error" and err.line == 3
    err = located(bp, "def k(x) {\n  if x > 0 { return x }\n  y = 2\n}\nk(1)")
    assert err.kind == "type error" and err.line == 2
    err = located(bp, "def m(x: [2]) {\n  if x { y = x }\n  return y\n}\nm([1, 2])")
    assert err.kind == "name error"
    err = located(bp, 'def s(x) {\n  if x > 0 { y = x } else { y = (x, x) }\n  return y\n}\ns(1)')
    assert err.kind == "type error" and err.line == 2
    err = located(bp, "def p(x) {\n  if x > 0 { print x }\n  return x\n}")
    assert err.kind == "syntax error" and err.line == 2
    err = located(bp, "def b(x) {\n  if x > 0 { break }\n  return x\n}")
    assert err.kind == "syntax error" and "break outside a loop" in str(err)
    err = located(bp, "def q(x: [2]) {\n  if x > 0 { x = [1, 2, 3] }\n  return x\n}\nq([1, 2])")
    assert err.kind == "shape error" and err.line == 2


# ═══ while at the top level ══════════════════════════════════════════════

def test_top_level_while_runs_as_python():
    bp = dsl.Interpreter()
    bp.exec("x = 1\na = 2\nwhile abs(x^2 - a) > 1e-12 { x = 0.5*(x + a/x) }\n"
            "n = 0\ns = 0\nwhile 1 {\n  n = n + 1\n  s = s + n\n  if s > 20 { break }\n}\n"
            "never = 0\nwhile 0 { never = 1 }")
    x, a = 1.0, 2.0
    while abs(x*x - a) > 1e-12:
        x = 0.5*(x + a/x)
    assert float(bp.eval("x")) == x
    n = s = 0
    while True:
        n += 1
        s += n
        if s > 20:
            break
    assert (float(bp.eval("n")), float(bp.eval("s"))) == (n, s)
    assert float(bp.eval("never")) == 0.0
    # nested in a for, and a for inside it; break leaves the innermost loop only
    bp.exec("c = 0\nfor i in range(3) {\n  j = 0\n  while j < i {\n    j = j + 1\n"
            "    for k in range(10) { c = c + 1; if k == 1 { break } }\n  }\n}")
    assert float(bp.eval("c")) == 2*(0 + 1 + 2)


def test_top_level_while_derivatives_of_functions_it_drives():
    bp = dsl.Interpreter()
    bp.exec("def loss(w) = (w - 3)^2\nw = 0\nsteps = 0\n"
            "while abs(grad(loss)(w)) > 1e-8 { w = w - 0.25*grad(loss)(w); steps = steps + 1 }")
    w, steps = 0.0, 0
    while abs(2*(w - 3)) > 1e-8:
        w -= 0.25*2*(w - 3)
        steps += 1
    assert float(bp.eval("w")) == pytest.approx(w, abs=1e-15) and float(bp.eval("steps")) == steps


def test_top_level_while_errors_and_cap():
    bp = dsl.Interpreter(max_iterations=50)
    err = located(bp, "i = 0\nwhile i < 100 { i = i + 1 }")
    assert err.kind == "value error" and (err.line, err.column) == (2, 1)
    assert "max_iterations" in str(err) and "--max-iterations" in str(err)
    assert float(bp.eval("i")) == 50.0                # as far as it got
    bp.exec("i = 0\nwhile i < 50 { i = i + 1 }")      # exactly the cap: fine
    assert float(bp.eval("i")) == 50.0
    err = located(bp, "while [1, 2] { y = 1 }")
    assert err.kind == "shape error" and (err.line, err.column) == (1, 7)
    err = located(bp, "j = 0\nwhile j < 3 { j = j + undefined_name }")
    assert err.kind == "name error" and err.line == 2


def test_interrupt_a_top_level_while_from_another_thread():
    from test_robustness import assert_usable, run_then_interrupt
    bp = dsl.Interpreter(max_iterations=10**12)
    err, latency = run_then_interrupt(bp, lambda: bp.exec("y = 0\nwhile y >= 0 { y = y + 1 }"))
    assert isinstance(err, BpInterrupted) and latency < 1.0
    assert (err.line, err.column) == (2, 1)
    assert float(bp.eval("y")) >= 1
    assert_usable(bp)
    bp.exec("n = 0\nwhile n < 10 { n = n + 1 }")            # no stale interrupt
    assert float(bp.eval("n")) == 10.0
