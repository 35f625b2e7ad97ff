"""SPEC §13 "Parameters" and "Indexing and updates": default parameter values,
tuple binding, and functional updates `x[i] = v`, `x[i] += v` as statements.

Expected values are worked out by hand or with NumPy on copies.
"""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import dsl
from dsl import ops
from tests.test_gather import numeric_grad


def run(src: str) -> str:
    out = io.StringIO()
    dsl.Interpreter(stdout=out).exec(src)
    return out.getvalue()


def error(src: str) -> dsl.BpError:
    with pytest.raises(dsl.BpError) as info:
        dsl.Interpreter(stdout=io.StringIO()).exec(src)
    return info.value


# ── default parameter values ─────────────────────────────────────────────

def test_defaults_are_taken_when_not_passed_and_can_be_passed_either_way():
    bp = dsl.Interpreter()
    bp.exec("def f(x, lr=0.1, k=2) = x * lr + k")
    assert float(bp.eval("f(3)")) == pytest.approx(3 * 0.1 + 2)
    assert float(bp.eval("f(3, 0.5)")) == 3 * 0.5 + 2
    assert float(bp.eval("f(3, k=10)")) == pytest.approx(3 * 0.1 + 10)
    assert float(bp.eval("f(x=3, lr=1, k=0)")) == 3
    assert float(bp.eval("f(3, 1, 4)")) == 7


def test_defaults_are_evaluated_once_where_the_function_is_defined():
    """As in Python: rebinding the global a default read does not change it."""
    out = run("c = 5\ndef h(x, k=c) = x + k\nc = 7\nprint h(0), c\n"
              "for i in range(3) { def q(x, a=i*10) = x + a; print q(1) }\n")
    assert out.split("\n")[:4] == ["5 7", "1", "11", "21"]


def test_a_lambda_default_and_one_in_a_function_body_see_the_scope_they_are_made_in():
    bp = dsl.Interpreter()
    bp.exec("def outer(a) {\n  g = (x, k=a) -> x * k\n  a = 100\n  return g(2)\n}")
    assert float(bp.eval("outer(3)")) == 6
    assert float(bp.eval("((x: [2], w=[1, 10]) -> sum(x * w))([3, 4])")) == 43
    bp.exec("def inner(x) { def sq(y, p=2) = y^p; return sq(x) + sq(x, 3) }")
    assert float(bp.eval("inner(2)")) == 4 + 8


def test_a_default_may_be_a_function_or_a_record():
    bp = dsl.Interpreter()
    bp.exec("def act(x, f=tanh) = f(x)\ndef lin(x, p={w: 2, b: 1}) = p.w * x + p.b")
    assert float(bp.eval("act(0.5)")) == pytest.approx(np.tanh(0.5))
    assert float(bp.eval("act(0.5, exp)")) == pytest.approx(np.exp(0.5))
    assert float(bp.eval("grad(act)(0.5)")) == pytest.approx(1 - np.tanh(0.5) ** 2)
    assert float(bp.eval("lin(3)")) == 7
    assert bp.eval("grad(lin, wrt=p)(3)") == {"w": 3.0, "b": 1.0}


def test_transforms_differentiate_the_positions_wrt_selects_and_take_defaults_otherwise():
    bp = dsl.Interpreter()
    bp.exec("def f(x, lr=0.1) = sin(x) * lr^2")
    x = 0.7
    assert float(bp.eval("grad(f)(0.7)")) == pytest.approx(np.cos(x) * 0.01, rel=1e-14)
    assert float(bp.eval("grad(f)(0.7, 3)")) == pytest.approx(np.cos(x) * 9, rel=1e-14)
    assert float(bp.eval("grad(f, wrt=lr)(0.7)")) == pytest.approx(np.sin(x) * 0.2, rel=1e-14)
    assert float(bp.eval("grad(f, wrt=1)(0.7, 3)")) == pytest.approx(np.sin(x) * 6, rel=1e-14)
    assert float(bp.eval("grad(grad(f, wrt=lr), wrt=lr)(0.7)")) == pytest.approx(2 * np.sin(x))
    h = bp.eval("hessian(f, wrt=(x, lr))(0.7)")
    assert float(h[0][1]) == pytest.approx(np.cos(x) * 0.2, rel=1e-14)
    assert float(h[1][1]) == pytest.approx(2 * np.sin(x), rel=1e-14)
    # the tangent comes last among the positional arguments; a default is passed before it
    assert bp.eval("jvp(f)(0.7, 2)")[1] == pytest.approx(np.cos(x) * 0.01 * 2, rel=1e-14)
    assert bp.eval("jvp(f)(0.7, 3, 2)")[1] == pytest.approx(np.cos(x) * 9 * 2, rel=1e-14)
    assert bp.eval("jvp(f, wrt=lr)(0.7, 1)")[1] == pytest.approx(np.sin(x) * 0.2, rel=1e-14)
    assert bp.eval("vjp(f)(0.7, 1)")[1] == pytest.approx(np.cos(x) * 0.01, rel=1e-14)
    assert float(bp.eval("hvp(f)(0.7, 1)")) == pytest.approx(-np.sin(x) * 0.01, rel=1e-14)
    g = bp.function("grad(f)")
    assert float(g(np.array(0.7))) == pytest.approx(np.cos(x) * 0.01, rel=1e-14)
    assert float(bp.eval("value_and_grad(f, wrt=lr)(0.7)")[1]) == pytest.approx(np.sin(x) * 0.2)


def test_a_top_level_loop_sees_the_default_of_each_new_definition():
    """Compiled calls are cached per function body: a default must not be baked into
    the cached plan of an earlier definition with the same body."""
    out = run("for i in range(3) { g = (x, a=i) -> x * a; print g(2), grad(g)(2), "
              "grad(g, wrt=a)(2) }")
    assert out.split() == ["0", "0", "2", "2", "1", "2", "4", "2", "2"]


def test_default_mistakes_are_located():
    e = error("def f(x=1, y) = x + y")
    assert e.kind == "syntax error" and "parameters with defaults come last" in e.message
    assert (e.line, e.column) == (1, 12)
    e = error("g = (x=1, y) -> x")
    assert "parameters with defaults come last" in e.message
    e = error("def f(x, lr=nope) = x")
    assert e.kind == "name error" and e.column == 13
    e = error('def f(x, s="a") = x')
    assert e.kind == "type error" and "string" in e.message
    e = error("def f(x, lr=0.1) = x\nf()")
    assert e.kind == "type error" and "missing x" in e.message
    e = error("def f(x, lr=0.1) = x\nf(1, 2, 3)")
    assert e.kind == "type error"
    e = error("def f(x, lr=0.1) = x\nf(1, rate=2)")
    assert e.kind == "type error" and "rate" in e.message
    e = error("print f(lr=2)")
    assert e.kind == "syntax error" or e.kind == "name error"
    e = error("y = (lr=2)")
    assert e.kind == "syntax error" and "default" in e.message


# ── tuple binding ────────────────────────────────────────────────────────

def test_tuple_binding_at_top_level_and_in_function_bodies():
    assert run("a, b = 1, 2\nprint a, b\na, b = b, a\nprint a, b") == "1 2\n2 1\n"
    assert run("t = 1, 2\nprint t") == "(1, 2)\n"
    bp = dsl.Interpreter()
    bp.exec("def f(x) = (x + 1, x * 2)\n"
            "def g(x) { a, b = f(x); c, d = b, a; return c - d }\nq, r = f(3)")
    assert float(bp.eval("g(5)")) == 10 - 6
    assert float(bp.eval("grad(g)(5)")) == 2 - 1
    assert float(bp["q"]) == 4 and float(bp["r"]) == 6


def test_tuple_binding_mistakes_are_located():
    e = error("a, b = 1, 2, 3")
    assert e.kind == "type error" and "3 into 2" in e.message and e.line == 1
    e = error("def f(x) {\n  a, b = x\n  return a\n}\nf(1)")
    assert e.kind == "type error" and e.line == 2
    e = error("a, a = 1, 2")
    assert e.kind == "syntax error" and "twice" in e.message
    e = error("a, b[0] = 1, 2")
    assert e.kind == "syntax error" and (e.line, e.column) == (1, 4)
    e = error("f(x) = 3")
    assert e.kind == "syntax error" and e.column == 1


# ── functional updates ───────────────────────────────────────────────────

CASES = [  # (shape of x, bp index, NumPy index, op, value)
    ((4,), "1", 1, "=", 10.0),
    ((4,), "1:3", slice(1, 3), "=", [5.0, 6.0]),
    ((4,), "1:3", slice(1, 3), "-=", 2.0),
    ((4,), "::2", slice(None, None, 2), "*=", [3.0, -1.0]),
    ((4,), "-1", -1, "/=", 4.0),
    ((2, 3), "1, :", (1, slice(None)), "+=", [1.0, 2.0, 3.0]),
    ((2, 3), ":, 0", (slice(None), 0), "=", 7.0),
    ((2, 3), "0", 0, "^=", 2.0),
    ((3, 2, 2), "1:, 0", (slice(1, None), 0), "=", [[1.0, 2.0]]),
    ((3, 2, 2), "2, 1, 0", (2, 1, 0), "-=", 5.0),
]


@pytest.mark.parametrize("shape, bp_index, np_index, op, value", CASES)
def test_updates_give_what_numpy_does_on_a_copy(shape, bp_index, np_index, op, value):
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    expected = x.copy()
    v = np.asarray(value)
    if op == "=":
        expected[np_index] = v
    else:
        expected[np_index] = {"+=": np.add, "-=": np.subtract, "*=": np.multiply,
                              "/=": np.divide, "^=": np.power}[op](expected[np_index], v)
    bp = dsl.Interpreter()
    bp["x"] = x
    bp["v"] = v
    bp.exec(f"y = x\nx[{bp_index}] {op} v\n"
            f"def f(x, v) {{\n  x[{bp_index}] {op} v\n  return x\n}}")
    assert np.array_equal(bp["x"], expected)
    assert np.array_equal(bp["y"], x)                   # the aliased value keeps its contents
    assert np.array_equal(bp.eval("f(y, v)"), expected)


def test_an_assigned_element_keeps_the_value_exactly_where_x_is_inf_or_huge():
    bp = dsl.Interpreter()
    bp.exec("x = [inf, 1e300, nan, 2]\nx[0] = 1\nx[1] = 3\nx[2] = 0.1")
    assert np.array_equal(bp["x"], [1.0, 3.0, 0.1, 2.0])


@pytest.mark.parametrize("op", ["=", "+=", "-=", "*=", "/="])
def test_update_derivatives_wrt_x_and_v_match_finite_differences(op):
    bp = dsl.Interpreter()
    bp.exec(f"def f(x, v) {{\n  x[1:3, 0] {op} v\n  x[0] {op} 2 * v[0]\n  return sum(sin(x) * x)\n}}")
    rng = np.random.default_rng(3)
    x, v = rng.uniform(0.5, 1.5, (3, 2)), rng.uniform(0.5, 1.5, 2)

    def f(x, v):
        x = x.copy()
        fn = {"=": lambda a, b: b, "+=": np.add, "-=": np.subtract, "*=": np.multiply,
              "/=": np.divide}[op]
        x[1:3, 0] = fn(x[1:3, 0], v)
        x[0] = fn(x[0], 2 * v[0])
        return float(np.sum(np.sin(x) * x))

    def at(src, x, v):
        bp["X"], bp["V"] = x, v
        return bp.eval(f"{src}(X, V)")

    assert float(at("f", x, v)) == pytest.approx(f(x, v), rel=1e-14)
    gx, gv = at("grad(f, wrt=(x, v))", x, v)
    assert np.allclose(gx, numeric_grad(lambda a: f(a, v), x), atol=1e-7)
    assert np.allclose(gv, numeric_grad(lambda b: f(x, b), v), atol=1e-7)
    # second derivatives: the Hessian against central differences of the gradient
    hv = at("hessian(f, wrt=v)", x, v)
    dv = np.stack([(at("grad(f, wrt=v)", x, v + h) - at("grad(f, wrt=v)", x, v - h)) / 2e-6
                   for h in np.eye(2) * 1e-6], axis=-1)
    assert np.allclose(hv, dv, atol=1e-6)
    hxv = at("hessian(f, wrt=(x, v))", x, v)[0][1]
    dxv = np.stack([(at("grad(f, wrt=x)", x, v + h) - at("grad(f, wrt=x)", x, v - h)) / 2e-6
                    for h in np.eye(2) * 1e-6], axis=-1)
    assert np.allclose(hxv, dxv, atol=1e-6)


def test_a_python_callable_of_a_lambda_with_percent_and_defaults():
    bp = dsl.Interpreter()
    f = bp.eval("(x, y=4) -> x % y")
    assert float(f(np.array(7.0))) == 3.0
    assert f.__doc__ == "(x, y=4) -> x % y"


def test_a_python_callable_of_a_function_with_an_update():
    bp = dsl.Interpreter()
    bp.exec("def f(x) { x[0] = 5; return x }")
    assert np.array_equal(bp.eval("f")(np.array([1.0, 2.0])), [5.0, 2.0])


def test_a_printed_update_derivative_reads_back_and_exports(tmp_path):
    bp = dsl.Interpreter()
    bp.exec("def f(x, v) { x[0] = v; x[1:] *= v; return sum(x^2) }")
    x, v = np.array([1.0, 2.0, 3.0]), np.array(2.0)
    # by hand: x becomes [v, 2v, 3v] and f = 14 v^2, so df/dv = 28 v; df/dx = [0, 4 v^2 x1, 4 v^2 x2]
    for src, expected in (("grad(f)", [0, 16, 24]), ("grad(f, wrt=v)", 56.0)):
        text = bp.show(src)
        bp.exec(f"g = {text}")
        bp["X"], bp["V"] = x, v
        assert np.allclose(bp.eval("g(X, V)"), expected, rtol=1e-14)
        path = tmp_path / "m.py"
        bp.exec(f'export {src} to "{path}"')
        code = (f"import sys, numpy as np; sys.path.insert(0, {str(tmp_path)!r}); import m; "
                f"print(repr(np.asarray(m.{'grad_f'}(np.array([1., 2, 3]), np.array(2.))).tolist()))")
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        assert np.allclose(eval(got), expected, rtol=1e-14)


def test_updates_batch_through_jacobian_and_hessian():
    bp = dsl.Interpreter()
    bp.exec("def f(x) { y = x; y[1:] = y[:2] * y[1:]; return y }")
    x = np.array([2.0, 3.0, 5.0])
    # y = [x0, x0*x1, x1*x2]
    expected = np.array([[1, 0, 0], [x[1], x[0], 0], [0, x[2], x[1]]])
    bp["X"] = x
    assert np.array_equal(bp.eval("jacobian(f)(X)"), expected)
    h = bp.eval("hessian(x -> f(x)[2])(X)")
    assert np.array_equal(h, [[0, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_update_mistakes_are_located():
    e = error("x = [1, 2]\nx[5] = 1")
    assert e.kind == "value error" and e.line == 2
    e = error("x = [1, 2, 3]\nx[0:2] = [1, 2, 3]")
    assert e.kind == "shape error" and "[3]" in e.message and "[2]" in e.message
    e = error("x = [1, 2, 3]\nx[0] += [1, 2]")
    assert e.kind == "shape error"
    e = error("t = (1, 2)\nt[0] = 3")
    assert e.kind == "type error" and "tuple" in e.message
    e = error("nope[0] = 3")
    assert e.kind == "name error"
    e = error("x = [1, 2]\nx[0] = (1, 2)")
    assert e.kind == "type error"
    e = error("r = {a: [1, 2]}\nr.a[0] = 3")
    assert e.kind == "syntax error" and e.column == 1
    e = error("x = [1, 2]\nx[0.5] = 3")
    assert e.kind == "value error" and "whole number" in e.message and e.line == 2
    e = error("def f(x, i) { x[i] = 0; return x }\nf([1, 2], 2)")
    assert e.kind == "value error" and "out of bounds" in e.message and e.line == 1
    e = error("x = 1\nx(0) += 2")
    assert e.kind == "syntax error"


def test_augmented_assignment_of_names_is_the_operator_and_rebinds():
    assert run("x = 2\nx += 3\nx *= 2\nx -= 1\nx /= 3\nx ^= 2\nx **= 0.5\nprint x") == "3\n"
    assert run("p = {w: 1, b: 2}\np -= 0.5\nprint p") == "{w: 0.5, b: 1.5}\n"


@pytest.mark.skipif("mod" not in ops.REGISTRY, reason="the mod builtin is not registered yet")
def test_percent_is_mod_at_the_precedence_of_star():
    bp = dsl.Interpreter()
    a = np.array([-7.0, -3.5, 0.0, 3.5, 7.0])
    bp["a"] = a
    assert np.array_equal(bp.eval("a % 3"), np.mod(a, 3))
    assert np.array_equal(bp.eval("a % -3"), np.mod(a, -3))
    assert float(bp.eval("7 % 4 * 2")) == (7 % 4) * 2            # left to right, as Python
    assert float(bp.eval("2 * 7 % 4")) == (2 * 7) % 4
    assert float(bp.eval("1 + 7 % 4")) == 1 + 7 % 4
    assert float(bp.eval("-7 % 4")) == (-7) % 4
    assert float(bp.eval("2^3 % 5")) == 2 ** 3 % 5
    assert run("x = 7\nx %= 4\nprint x") == "3\n"
    text = bp.show("(x, y) -> x % y + 1")
    bp.exec(f"g = {text}")
    assert float(bp.eval("g(7, 4)")) == 4
