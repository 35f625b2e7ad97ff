"""Printed derivatives are hygienic (issue 13; SPEC §13): the text never depends
on which names the program uses.

Each test is one reproduction from issue 13's table.  The printed text is read
back into the same session as `g = <text>` (where the program's names are bound,
which is what can capture them) and called; the expected numbers are worked out
by hand in each test, never taken from bp's output.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dsl


def read_back(bp: dsl.Interpreter, src: str, name: str = "read"):
    """The printed form of `src`, bound to `name` in the same session: (text, callable)."""
    text = bp.show(src)
    bp.exec(f"{name} = {text}")
    return text, bp.function(name)


# ── B: a transform's own parameters never clash with the function's ──────

def test_jvp_of_a_function_with_a_parameter_called_v():
    bp = dsl.Interpreter()
    bp.exec("def f(x, v) = x * v")
    # f(2, 3) = 6; the tangent 1 in x gives d/dx (x v) = v = 3
    assert [float(a) for a in bp.eval("jvp(f)(2, 3, 1)")] == [6, 3]
    text, g = read_back(bp, "jvp(f)")
    assert text.startswith("(x, v, v1) ->")
    assert [float(a) for a in g(2.0, 3.0, 1.0)] == [6, 3]


def test_vjp_of_a_function_with_a_parameter_called_u():
    bp = dsl.Interpreter()
    bp.exec("def f(u, x) = u^2 * x")
    # value 4·3 = 12; the cotangent 1 gives d/du = 2·u·x = 12
    assert [float(a) for a in bp.eval("vjp(f)(2, 3, 1)")] == [12, 12]
    _, g = read_back(bp, "vjp(f)")
    assert [float(a) for a in g(2.0, 3.0, 1.0)] == [12, 12]


def test_hvp_of_a_function_with_parameters_called_v_and_v1():
    bp = dsl.Interpreter()
    bp.exec("def f(v, v1) = v^3 * v1")
    # d²/dv² = 6·v·v1 = 6·2·5 = 60; times the vector 0.5
    assert float(bp.eval("hvp(f)(2, 5, 0.5)")) == 30
    _, g = read_back(bp, "hvp(f)")
    assert float(g(2.0, 5.0, 0.5)) == 30


# ── C: the index adjoint's lambda never captures the program's z ─────────

@pytest.mark.parametrize("name", ["z", "z1", "t1", "x"])
def test_index_adjoint_with_a_parameter_named_like_its_lambda(name):
    bp = dsl.Interpreter()
    bp.exec(f"def f({name}) = {name}[1]^2")
    _, g = read_back(bp, "grad(f)")
    # d/dx x[1]^2 = 2·x[1] at position 1: at [1, 2, 3] that is [0, 4, 0]
    assert g(np.array([1.0, 2.0, 3.0])).tolist() == [0, 4, 0]


def test_index_adjoint_next_to_a_global_z():
    bp = dsl.Interpreter()
    bp.exec("z = 10\ndef f(x) = x[1] * z")
    _, g = read_back(bp, "grad(f)")
    assert g(np.array([1.0, 2.0, 3.0])).tolist() == [0, 10, 0]


# ── D: generated names never clash with the program's ────────────────────

def test_temporaries_avoid_a_global_called_t1():
    bp = dsl.Interpreter()
    bp.exec("t1 = 3\ndef k(x) = sum(sin(x) * cos(x) * t1 + sin(x)^2)")
    text, g = read_back(bp, "grad(k)")
    assert "t1 =" not in text            # t1 is the program's: the block names its own others
    x = np.array([0.3, 1.1])
    # d/dx [3 sin x cos x + sin² x] = 3 cos 2x + sin 2x
    np.testing.assert_allclose(g(x), 3 * np.cos(2 * x) + np.sin(2 * x), rtol=1e-14)


def test_a_parameter_named_like_a_global_that_an_inlined_call_reads():
    bp = dsl.Interpreter()
    bp.exec("x = 5\ndef g(y) = y * x\ndef f(x) = g(x) + x")     # f(x) = 5x + x
    _, h = read_back(bp, "f")
    assert float(h(2.0)) == 12
    _, dh = read_back(bp, "grad(f)", "dread")
    assert float(dh(2.0)) == 6


# ── E: a parameter may be called like a builtin the derivative uses ──────

@pytest.mark.parametrize("name", ["unbroadcast", "sum", "broadcast_like", "grad", "inf", "cos"])
def test_a_parameter_named_like_a_builtin(name):
    bp = dsl.Interpreter()
    bp.exec(f"def f(x, {name}) = mean(sin(x) * {name})")
    _, g = read_back(bp, "grad(f)")
    x, w = np.array([0.5, 1.5, 2.0]), np.array([2.0, -1.0, 4.0])
    # d/dx mean(sin(x)·w) = cos(x)·w / n
    np.testing.assert_allclose(g(x, w), np.cos(x) * w / 3, rtol=1e-14)


# ── G, H, O, P: constants read back exactly ──────────────────────────────

def test_minus_infinity_prints_as_minus_infinity():
    bp = dsl.Interpreter()
    text, g = read_back(bp, "grad(x -> sum(maximum(x, -inf)))")
    assert "-inf" in text
    # every element beats -inf: the gradient is 1 everywhere
    assert g(np.array([-1e300, 0.0, 2.0])).tolist() == [1, 1, 1]


def test_constants_keep_their_meaning_when_the_program_rebinds_inf_and_nan():
    bp = dsl.Interpreter()
    # 1/0 is the number inf, whatever the name inf means (f reading `inf` itself would
    # rightly follow the rebinding: globals are late-bound)
    bp.exec("def f(x) = sum(minimum(x, 1/0) + maximum(x, -1/0) + x * (0/0 == 0/0))")
    bp.exec("inf = 5\nnan = 7")
    text, g = read_back(bp, "grad(f)")
    assert "bp.inf" in text and "inf" not in text.replace("bp.inf", "")
    # both sides pass x through and nan ≠ nan: the gradient is 2 (a 5 for inf would give 1 at 6)
    assert g(np.array([6.0, -3.0])).tolist() == [2, 2]


def test_signed_zero_and_nan_constants_read_back():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x * [1, -0.0, nan, -inf]")
    text, g = read_back(bp, "f")
    got = g(np.ones(4))
    assert got[0] == 1 and got[1] == 0 and math.copysign(1, got[1]) < 0
    assert math.isnan(got[2]) and got[3] == -math.inf


# ── I: a global container prints its field or item, not the whole ────────

def test_a_global_record_field_prints_as_the_field():
    bp = dsl.Interpreter()
    bp.exec("P = {a: [1, 2, 3], b: 2}\nT = ([4, 5, 6], 7)\ndef f(x) = sum(x * P.a * T[0]) * P.b * T[1]")
    text, g = read_back(bp, "grad(f)")
    assert "P.a" in text and "T[0]" in text
    # d/dx = a · t0 · b · t1 = [1·4, 2·5, 3·6] · 14
    assert g(np.ones(3)).tolist() == [56, 140, 252]


# ── J: an unexpanded transform keeps what its closure captured ───────────

def test_a_printed_hessian_of_a_closure_keeps_its_captured_value():
    bp = dsl.Interpreter()
    bp.exec("c = 100\ndef mk(c) = x -> sum(x^3 * c)\nh = mk(2)")
    _, g = read_back(bp, "hessian(h)")
    # hessian of 2·Σx³ is diag(12·x): at [1, 2] that is [[12, 0], [0, 24]]
    assert g(np.array([1.0, 2.0])).tolist() == [[12, 0], [0, 24]]


# ── K: solve of a stack of matrices with a vector b ──────────────────────

def test_solve_of_a_stack_with_a_vector_b():
    bp = dsl.Interpreter()
    a = np.array([[[2.0, 1, 0], [0, 3, 1], [1, 0, 4]], [[5.0, 1, 0], [0, 2, 1], [1, 1, 3]],
                  [[2.0, 0, 0], [0, 2, 0], [0, 0, 2]]])
    bp["A"] = a
    bp.exec("def f(b) = sum(solve(A, b))")
    b = np.array([1.0, 2.0, 3.0])
    # b is broadcast over the stack: f = Σₖ 1ᵀAₖ⁻¹b, so ∇f = Σₖ Aₖ⁻ᵀ 1
    want = sum(np.linalg.inv(a[k]).T @ np.ones(3) for k in range(3))
    np.testing.assert_allclose(bp.function("grad(f)")(b), want, rtol=1e-13)
    np.testing.assert_allclose(bp.function("f")(b), sum(np.linalg.inv(a[k]) @ b for k in range(3)).sum(),
                               rtol=1e-13)


# ── R: a reshape to a scalar prints its shape ────────────────────────────

def test_reshape_to_a_scalar_prints_and_reads_back():
    bp = dsl.Interpreter()
    bp.exec("def f(x: []) = sum(flatten(x)^2)")
    text, g = read_back(bp, "grad(f)")
    assert "reshape(x)" not in text
    assert float(g(3.0)) == 6


# ── graph listings: readable shapes, and no clash with the program's names ──

def test_a_listing_names_opaque_shapes_by_their_node_and_skips_the_programs_names():
    bp = dsl.Interpreter()
    bp.exec("t1 = 2\ndef f(t2, W) = sum(tanh(W @ t2) * t1)")
    listing = bp.graph("grad(f, wrt=1)").listing()
    assert not any(line.split(" = ")[0] in ("t1", "t2") for line in listing.splitlines()[2:])
    assert "shape(t3)" in listing and " S" not in listing     # not an internal S13


# ── shape-true: derivatives through reshape, concat and stack of unknown shapes ──

JOINS = [
    # (function, its gradient by hand, as NumPy)
    ("def f(x) = sum(flatten(x)^2 * 3)", lambda x: 6 * x),
    ("def f(x) = sum(concat(x, 2 * x)^2)", lambda x: 2 * x + 8 * x),
    ("def f(x) = sum(stack(x, 2 * x, axis=-1)^2)", lambda x: 2 * x + 8 * x),
    ("def f(x) = sum(stack(x, x^2)^3)", lambda x: 3 * x**2 + 3 * x**4 * 2 * x),
]


@pytest.mark.parametrize("definition, want", JOINS, ids=[j[0] for j in JOINS])
def test_printed_and_exported_gradients_through_joins_hold_for_every_rank(definition, want, tmp_path):
    bp = dsl.Interpreter()
    bp.exec(definition)
    _, g = read_back(bp, "grad(f)")
    bp.exec(f'export grad(f) to "{tmp_path / "m.py"}"')
    scope = {"__name__": "exported"}
    exec((tmp_path / "m.py").read_text(encoding="utf-8"), scope)
    for x in (np.array([1.0, -2.0, 0.5]), np.array([[1.0, 2.0], [-1.0, 0.25]])):
        np.testing.assert_allclose(g(x), want(x), rtol=1e-14)
        np.testing.assert_allclose(scope["grad_f"](x), want(x), rtol=1e-14)


# ── N: brackets by precedence; M: solve keeps the unbroadcast over a stack ──

def test_a_product_with_a_matrix_product_keeps_its_brackets():
    bp = dsl.Interpreter()
    bp.exec("def f(z, W, g) = sum(z[0] * (W @ g))")
    for transform in ("f", "grad(f, wrt=1)", "grad(f, wrt=2)"):
        text, h = read_back(bp, transform)
        z, w, g = np.array([2.0, 3.0]), np.array([[1.0, 2], [3, 4], [5, 6]]), np.array([1.0, -1])
        want = {"f": 2 * (w @ g).sum(), "grad(f, wrt=1)": 2 * np.outer(np.ones(3), g),
                "grad(f, wrt=2)": 2 * w.T @ np.ones(3)}[transform]
        np.testing.assert_allclose(h(z, w, g), want, rtol=1e-14, err_msg=text)


def test_solve_of_a_stack_keeps_the_unbroadcast_of_bs_gradient():
    bp = dsl.Interpreter()
    bp.exec("def f(A, b) = sum(solve(A, b))")
    _, g = read_back(bp, "grad(f, wrt=1)")
    a = np.stack([np.eye(2) * 2, np.eye(2) * 4])
    # b is broadcast over the two matrices: ∇b = A₀⁻ᵀ1 + A₁⁻ᵀ1 = 1/2 + 1/4 per entry
    np.testing.assert_allclose(g(a, np.array([1.0, 1.0])), [0.75, 0.75], rtol=1e-14)


# ── a global that rebinds a builtin the printed text calls ───────────────

def test_printed_text_reaches_builtins_that_globals_shadow_as_bp_dot_name():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = mean(x^2) + x[0]^2")
    bp.exec("sum = 3\ngrad = 2\nbroadcast_like = 5\nunbroadcast = 7")
    text = bp.show("bp.grad(f)")
    assert "bp.sum(" in text and "bp.grad(" in text and "bp.broadcast_like(" in text
    bp.exec(f"g = {text}")
    # d/dx [mean(x²) + x₀²] = 2x/n + 2x₀ e₀: at [1, 2] that is [1 + 2, 2]
    assert bp.function("g")(np.array([1.0, 2.0])).tolist() == [3, 2]


def test_bp_dot_name_is_the_builtin_whatever_the_name_is_bound_to():
    bp = dsl.Interpreter()
    bp.exec("sum = 3\npi = 4\ndef total(x) = bp.sum(x) * bp.pi")
    assert float(bp.eval("total([1, 2])")) == pytest.approx(3 * math.pi)
    assert float(bp.eval("sum")) == 3
    with pytest.raises(dsl.BpNameError, match="bp has no builtin 'nope'"):
        bp.eval("bp.nope")
    with pytest.raises(dsl.BpSyntaxError):
        bp.exec("bp = 1")                  # bp is a keyword
