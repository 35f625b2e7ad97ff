"""A scalar-output transform prints its derivative for the shapes its calls can have.

grad, value_and_grad, hessian and hvp fail at the call unless the function's value is
0-d.  Where that value's shape is the broadcast of some unannotated parameters' shapes
(`sum(v) + t1^3` has t1's shape), every call that works has those parameters 0-d, so
the printed derivative is built for them 0-d (interpreter._scalar_inputs) and the
others keep any shape.  Each test prints, reads the text back into a fresh session,
and evaluates it at several shapes of the free parameters against formulas derived by
hand (or central differences), never against bp's own derivative; the names are the
ones a transform might capture (v, z, t1, u, sum).
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl


def printed(defs: str, expr: str) -> str:
    bp = dsl.Interpreter()
    bp.exec(defs)
    return bp.show(expr)


def read_back(text: str):
    bp = dsl.Interpreter()
    bp.exec(f"g = {text}")
    return bp.function("g")


def as_list(result):
    return [np.asarray(r, dtype=float) for r in (result if isinstance(result, tuple) else (result,))]


@pytest.mark.parametrize("vshape", [(), (3,), (2, 3)])
def test_a_sum_and_a_cube(vshape):
    text = printed("def b(v, t1) = sum(v) + t1^3", "grad(b, wrt=(v, t1))")
    # d/dv = ones of v's shape, d/dt1 = 3·t1² (t1 0-d: the only t1 a call accepts)
    assert text == "(v, t1) -> (broadcast_like(1, v), 3*t1^2)"
    v = np.linspace(-1, 1, int(np.prod(vshape))).reshape(vshape)
    gv, gt = as_list(read_back(text)(v, 0.7))
    np.testing.assert_array_equal(gv, np.ones(vshape))
    assert float(gt) == pytest.approx(3 * 0.49, rel=1e-14)


@pytest.mark.parametrize("vshape, zshape", [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((), (4,))])
def test_free_parameters_keep_every_shape(vshape, zshape):
    """sum(v*z) is 0-d whatever v and z are: they keep unknown shapes (and broadcast);
    t1 is made 0-d.  d/dv = z broadcast to v*z's shape, summed back to v's; likewise z."""
    text = printed("def g(v, z, t1) = sum(v * z) + t1^3", "grad(g, wrt=(v, z, t1))")
    assert "broadcast_like(1, t1)" not in text and "3*t1^2" in text
    rng = np.random.default_rng(7)
    v, z = rng.uniform(-1, 1, vshape), rng.uniform(-1, 1, zshape)
    gv, gz, gt = as_list(read_back(text)(v, z, 0.5))
    full = np.broadcast_shapes(vshape, zshape)

    def summed_to(a, shape):
        a = np.broadcast_to(a, full)
        while a.ndim > len(shape):
            a = a.sum(axis=0)
        for k, n in enumerate(shape):
            if n == 1 and a.shape[k] != 1:
                a = a.sum(axis=k, keepdims=True)
        return a
    np.testing.assert_allclose(gv, summed_to(z, vshape), rtol=1e-14)
    np.testing.assert_allclose(gz, summed_to(v, zshape), rtol=1e-14)
    assert float(gt) == pytest.approx(0.75, rel=1e-14)


def test_nested_transforms_each_add_their_own():
    """grad(grad(f)) needs grad(f)'s value 0-d (x), and grad(f) needs f's (w·x: w too)."""
    defs = "def f(u, z) = z * u"
    assert printed(defs, "grad(f)") == "(u, z) -> z"
    assert printed(defs, "grad(grad(f))") == "(u, z) -> 0"
    assert printed(defs, "hessian(f)") == "(u, z) -> 0"
    assert float(read_back(printed(defs, "grad(f)"))(2.0, -3.0)) == -3.0


def test_a_hessian_and_an_hvp_of_a_cube():
    defs = "def q(sum) = sum^3"                       # a parameter named like a builtin
    h = printed(defs, "hessian(q)")
    assert h == "sum -> 6*sum"
    assert float(read_back(h)(1.5)) == pytest.approx(9.0, rel=1e-14)
    hv = printed(defs, "hvp(q)")
    assert float(read_back(hv)(1.5, -2.0)) == pytest.approx(6 * 1.5 * -2.0, rel=1e-14)
    assert "broadcast_like" not in hv


def test_central_differences_agree_with_a_printed_gradient():
    defs = "def k(v, t1) = sum(tanh(v) * t1) + sin(t1)"
    text = printed(defs, "grad(k, wrt=(v, t1))")
    g = read_back(text)
    v, t1, h = np.array([[0.3, -0.2], [0.1, 0.9]]), 0.4, 1e-6

    def k(v, t1):
        return float(np.sum(np.tanh(v) * t1) + np.sin(t1))
    gv, gt = as_list(g(v, t1))
    fd_t = (k(v, t1 + h) - k(v, t1 - h)) / (2 * h)
    fd_v = np.zeros_like(v)
    for idx in np.ndindex(v.shape):
        e = np.zeros_like(v)
        e[idx] = h
        fd_v[idx] = (k(v + e, t1) - k(v - e, t1)) / (2 * h)
    np.testing.assert_allclose(gv, fd_v, rtol=1e-7, atol=1e-9)
    assert float(gt) == pytest.approx(fd_t, rel=1e-7)


def test_no_constraint_where_the_value_is_0_d_anyway():
    """sum(x^2) is 0-d at every shape of x: x keeps its unknown shape."""
    text = printed("def s(x) = sum(x^2)", "grad(s)")
    assert text == "x -> 2*x"
    g = read_back(text)
    for shape in [(), (3,), (2, 2)]:
        x = np.arange(np.prod(shape), dtype=float).reshape(shape) + 0.5
        np.testing.assert_array_equal(np.asarray(g(x)), 2 * x)


def test_a_call_with_a_non_scalar_value_still_fails_located():
    bp = dsl.Interpreter()
    bp.exec("def b(v, t1) = sum(v) + t1^3")
    g = bp.function("grad(b, wrt=(v, t1))")
    with pytest.raises(dsl.BpError, match="scalar"):
        g(np.ones(2), np.ones(3))


def test_where_0_d_parameters_cannot_be_built_the_shapes_as_written_print():
    """sum(x * y[0]) + y needs y 0-d for grad, and y[0] of a 0-d y is an error: no call
    works, and the print is the one for y of unknown shape (as before), not an error."""
    text = printed("def n(x, y) = sum(x * y[0]) + y", "grad(n, wrt=(x, y))")
    assert text.startswith("(x, y) -> ")
    bp = dsl.Interpreter()
    bp.exec("def n(x, y) = sum(x * y[0]) + y")
    with pytest.raises(dsl.BpError):
        bp.function("grad(n, wrt=(x, y))")(np.ones(2), 1.0)


def test_printing_draws_no_random_numbers_of_its_own():
    """The probe of a function that draws (randn) leaves the session's generator as it
    was: the numbers after a print are those after the same print before this probe."""
    a, b = dsl.Interpreter(), dsl.Interpreter()
    for bp in (a, b):
        bp.exec("def r(x) = sum(x * randn(3)) + x")
    a.show("grad(r)")
    b.show("r")                                   # the same one lowering, no probe
    np.testing.assert_array_equal(np.asarray(a.eval("randn(4)")), np.asarray(b.eval("randn(4)")))
