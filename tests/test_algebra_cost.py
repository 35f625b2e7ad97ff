"""The builder's algebra in a plan's build costs what its canonical form changes
(issue 19): a product whose operands share no atom is recorded unexpanded
(algebra._Product, its canonical cost counted from its operands' terms) and a sum in
which nothing collects takes its cost from its operands'.  These shortcuts must change
no decision: every plan is the one built with them off (algebra.SHORTCUTS), nested
derivatives stay small, products of sums over disjoint atoms keep their values, and
where atoms do overlap the algebra still collects.  Expected values are derived by hand
(the derivative recurrences are written out below in plain Python), never copied from
bp's output."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import dsl
from dsl.ops import algebra


def _plan(bp: dsl.Interpreter):
    return list(bp._plans.values())[-1][0]


def _shape_of(plan) -> list:
    """The plan's steps as (op, operand slots): equal lists are the same computation."""
    return [(node.op, tuple(ops)) for _, ops, _, _, node in plan.steps]


def _nested(f: str, k: int, x: float):
    bp = dsl.Interpreter()
    bp.exec(f"d0 = {f}")
    for j in range(1, k + 1):
        bp.exec(f"def d{j}(x) = grad(d{j - 1})(x)")
    value = float(bp.function(f"d{k}")(x))
    return value, _plan(bp)


# ── hand-derived derivatives ──────────────────────────────────────────────

def _tanh_derivative(k: int, x: float) -> float:
    """d^k/dx^k tanh(x) = P_k(tanh x) with P_0(t) = t, P_{j+1}(t) = P_j'(t)(1 - t²)."""
    p = [Fraction(0), Fraction(1)]                      # coefficients of t^0, t^1, …
    for _ in range(k):
        dp = [i * p[i] for i in range(1, len(p))]       # P'
        q = [Fraction(0)] * (len(dp) + 2)
        for i, c in enumerate(dp):                      # P'(t) (1 - t²)
            q[i] += c
            q[i + 2] -= c
        p = q
    t = math.tanh(x)
    return float(sum(float(c) * t ** i for i, c in enumerate(p)))


def _bump_derivative(k: int, x: float) -> float:
    """d^k/dx^k sin(x)·exp(-x²/2) by Leibniz: d^j sin x = sin(x + jπ/2) and
    d^i exp(-x²/2) = (-1)^i He_i(x) exp(-x²/2), He_{i+1} = x He_i - i He_{i-1}."""
    he = [1.0, x]
    for i in range(1, k):
        he.append(x * he[i] - i * he[i - 1])
    total = 0.0
    for j in range(k + 1):
        i = k - j
        total += math.comb(k, j) * math.sin(x + j * math.pi / 2) * (-1) ** i * he[i]
    return total * math.exp(-x * x / 2)


def test_the_hand_derivatives_agree_with_finite_differences():
    # the references themselves, against a central difference of the (k-1)-th
    for k in (1, 2, 5):
        h = 1e-5
        for ref in (_tanh_derivative, _bump_derivative):
            fd = (ref(k - 1, 0.3 + h) - ref(k - 1, 0.3 - h)) / (2 * h)
            assert ref(k, 0.3) == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert _tanh_derivative(0, 0.3) == pytest.approx(math.tanh(0.3))
    assert _bump_derivative(0, 0.3) == pytest.approx(math.sin(0.3) * math.exp(-0.045))


# ── nested derivatives: small, right, and the same plan without the shortcuts ──

@pytest.mark.parametrize("f, ref, bar", [
    ("tanh", _tanh_derivative, 60),
    ("x -> sin(x) * exp(-x^2/2)", _bump_derivative, 100),
])
def test_nested_derivatives_stay_small_and_right(f, ref, bar):
    value, plan = _nested(f, 8, 0.3)
    assert len(plan) <= bar
    assert value == pytest.approx(ref(8, 0.3), rel=1e-9)


NESTED = ["tanh", "x -> sin(x) * exp(-x^2/2)", "x -> 1/(1+exp(-x))", "x -> sin(x)*cos(2*x)",
          "x -> exp(tanh(x))", "x -> x*log(1+x^2)", "x -> tanh(x)^3 + x*tanh(x)",
          "x -> x^3*exp(-x)", "x -> (x+1)*(x-1)*exp(x)"]


@pytest.mark.parametrize("f", NESTED)
def test_the_shortcuts_change_no_plan(f, monkeypatch):
    """Each nested derivative's plan, step for step, is the one built with every cost
    counted from the expanded polynomial."""
    got = [_nested(f, k, 0.3) for k in (1, 3, 5)]
    monkeypatch.setattr(algebra, "SHORTCUTS", False)
    want = [_nested(f, k, 0.3) for k in (1, 3, 5)]
    for (v1, p1), (v2, p2) in zip(got, want):
        assert _shape_of(p1) == _shape_of(p2)
        assert v1 == v2


def test_the_shortcuts_change_no_plan_of_a_vector_gradient_and_hessian(monkeypatch):
    src = ("def f(x) = sum(tanh(x)^2 * sin(x)) + sum((x + 1) * (exp(x) - 2))\n"
           "def r(x) = sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)\n")
    x = np.linspace(-1.0, 1.2, 5)

    def plans():
        bp = dsl.Interpreter()
        bp.exec(src)
        out = []
        for t in ("grad(f)", "hessian(f)", "grad(r)", "hessian(r)"):
            out.append((bp.function(t)(x), _shape_of(_plan(bp))))
        return out
    got = plans()
    monkeypatch.setattr(algebra, "SHORTCUTS", False)
    for (v1, s1), (v2, s2) in zip(got, plans()):
        assert s1 == s2
        np.testing.assert_array_equal(v1, v2)


def test_every_recorded_cost_is_the_expanded_polynomials():
    """Every cost the builds recorded (a sum's from its operands', an unexpanded
    _Product's from its operands' terms) is cost() of the polynomial multiplied out
    (white box: the count normalize decides by), in plans and in a printed graph."""
    bp = dsl.Interpreter()
    bp.exec("def f(x, y) = (x + 2) * (y - 3) * (sin(x) + 1) * (tanh(y) - 2*x) + x*y - 3*y\n"
            "def d0(x) = tanh(x) * (1 - x) * exp(x) + (x - 1)^2")
    for k in range(1, 5):
        bp.exec(f"def d{k}(x) = grad(d{k - 1})(x)")
    bp.function("grad(f, wrt=(x, y))")(0.4, -0.7)
    bp.function("d4")(0.3)
    shown = bp.graph("d3")
    lazy = costed = 0
    for info in list(algebra._INFO.values()):
        if info.poly is None or info.cost is None:
            continue
        p = info.poly[0]
        full = algebra._plain(p)
        assert full is not None and len(full) == len(p)
        assert algebra.cost(full) == info.cost
        costed += 1
        lazy += type(p) is not dict
    assert lazy > 0 and costed > lazy
    del shown


# ── values: disjoint products, and a chain ────────────────────────────────

def test_a_product_of_sums_over_disjoint_atoms_in_a_plan():
    # f = (x + 2)(y - 3)(sin x + 1): by hand
    #   ∂f/∂x = (y - 3)[(sin x + 1) + (x + 2) cos x],  ∂f/∂y = (x + 2)(sin x + 1)
    bp = dsl.Interpreter()
    bp.exec("def f(x, y) = (x + 2) * (y - 3) * (sin(x) + 1)")
    for x, y in ((0.4, -0.7), (-1.3, 2.5), (2.0, 3.0)):
        dx, dy = bp.function("grad(f, wrt=(x, y))")(x, y)
        assert float(dx) == pytest.approx((y - 3) * ((math.sin(x) + 1) + (x + 2) * math.cos(x)),
                                          rel=1e-13)
        assert float(dy) == pytest.approx((x + 2) * (math.sin(x) + 1), rel=1e-13, abs=1e-15)
        assert float(bp.function("f")(x, y)) == pytest.approx((x + 2) * (y - 3) * (math.sin(x) + 1))


def test_a_disjoint_product_whose_coefficients_collect():
    # (2a)(3b + 1) with a = sin x, b = cos y: 6ab + 2a, built canonically when smaller;
    # ∂/∂x = 2 cos x (3 cos y + 1), ∂/∂y = -6 sin x sin y
    bp = dsl.Interpreter()
    bp.exec("def f(x, y) = (2*sin(x)) * (3*cos(y) + 1)")
    x, y = 0.9, -0.4
    dx, dy = bp.function("grad(f, wrt=(x, y))")(x, y)
    assert float(dx) == pytest.approx(2 * math.cos(x) * (3 * math.cos(y) + 1), rel=1e-13)
    assert float(dy) == pytest.approx(-6 * math.sin(x) * math.sin(y), rel=1e-13)


@pytest.mark.parametrize("n", [1, 2, 7, 60])
def test_a_tanh_chain_gradient_plan(n):
    """The gradient of tanh∘…∘tanh (n deep): the forward n tanh, then per link t·t,
    1 - t² and the product with the cotangent, but the last link's cotangent is 1 - t²
    itself: 4n - 1 steps; the value is Π (1 - t_k²)."""
    body = ["t1 = tanh(x)"] + [f"t{i + 1} = tanh(t{i})" for i in range(1, n)]
    bp = dsl.Interpreter()
    bp.exec("def f(x) {\n" + "\n".join(body) + f"\nreturn t{n}\n}}")
    got = float(bp.function("grad(f)")(0.5))
    t, want = 0.5, 1.0
    for _ in range(n):
        t = math.tanh(t)
        want *= 1 - t * t
    assert got == pytest.approx(want, rel=1e-12)
    assert len(_plan(bp)) == 4 * n - 1


# ── where atoms overlap, the algebra still collects ───────────────────────

@pytest.mark.parametrize("src", [
    "def f(x, y) = (x + y) * (x - y) - x^2 + y^2",
    "def f(x, y) = (x + 1) * (y + 1) - x*y - x - y - 1",      # a disjoint product, then read
    "def f(x, y) = (sin(x) + y) * (sin(x) - y) - sin(x)^2 + y^2",
])
def test_overlapping_atoms_collect_to_zero_in_a_plan(src):
    bp = dsl.Interpreter()
    bp.exec(src)
    assert float(bp.function("f")(1.7, -0.6)) == 0.0
    assert len(_plan(bp)) == 0                          # the constant 0: no step
    dx, dy = bp.function("grad(f, wrt=(x, y))")(1.7, -0.6)
    assert float(dx) == 0.0 and float(dy) == 0.0


def test_a_product_read_by_a_sum_collects_like_terms():
    # (x + 1)(y + 2) - 2x: xy + y + 2 (two terms collect away), by hand:
    # ∂/∂x = y, ∂/∂y = x + 1; the plan of f is xy + y + 2 at most: 3 steps
    bp = dsl.Interpreter()
    bp.exec("def f(x, y) = (x + 1) * (y + 2) - 2*x")
    assert float(bp.function("f")(0.5, 3.0)) == pytest.approx(0.5 * 3 + 3 + 2)
    assert len(_plan(bp)) <= 3
    dx, dy = bp.function("grad(f, wrt=(x, y))")(0.5, 3.0)
    assert float(dx) == pytest.approx(3.0) and float(dy) == pytest.approx(1.5)
