"""Lowering: inlined calls are remembered, and what must not be remembered is not.

`Lowerer.inline` lowers a call of the same function on the same (hash-consed)
nodes once per statement.  These tests check the three things that rule
must keep: values, fresh random draws per call, and the cost of building.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl


def test_a_repeated_call_gives_the_same_value():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = sin(x) * x\ndef g(x) = f(x) + f(x) * f(x)\ndef h(x) = grad(g)(x)")
    x = 0.7
    f = np.sin(x) * x
    df = np.cos(x) * x + np.sin(x)
    assert float(bp.eval("g(0.7)")) == pytest.approx(f + f * f, rel=1e-15)
    assert float(bp.eval("h(0.7)")) == pytest.approx(df + 2 * f * df, rel=1e-14)


def test_a_call_that_draws_random_numbers_draws_anew_each_time():
    bp = dsl.Interpreter()
    bp.exec("def r(x) = x + randn(3)\ndef two(x) = r(x) - r(x)")
    assert np.all(bp.eval("two(0)") != 0)
    bp.exec("def s(x) = x + randn(3, seed=4)\ndef same(x) = s(x) - s(x)")
    assert np.all(bp.eval("same(0)") == 0)


def test_the_same_call_in_different_closures_is_not_confused():
    bp = dsl.Interpreter()
    bp.exec("def adder(c) = x -> x + c\n"
            "def f(x) = adder(1)(x) * adder(2)(x)")
    assert float(bp.eval("f(3)")) == (3 + 1) * (3 + 2)


def test_building_shared_calls_costs_their_graph_not_their_paths():
    """A chain where every level calls the level below twice: 2^30 paths, 30 levels."""
    bp = dsl.Interpreter(max_nodes=2_000)
    bp.exec("def twice(f) = x -> sin(f(x) + f(x))\n"
            "def tower(x) {\n"
            "    g = y -> sin(y)\n"
            "    for i in range(30) { g = twice(g) }\n"
            "    return g(x)\n"
            "}")
    expected = np.sin(0.1)
    for _ in range(30):
        expected = np.sin(expected + expected)
    assert float(bp.eval("tower(0.1)")) == pytest.approx(expected, rel=1e-12)


def test_a_closure_sees_names_rebound_between_two_calls():
    """Found by review: the memo must not return the nodes of a call made
    before a name the closure reads was rebound."""
    bp = dsl.Interpreter()
    bp.exec("def f(x) {\n  a = 1\n  g = y -> y * a\n  r1 = g(x)\n  a = 2\n"
            "  r2 = g(x)\n  return r1 + r2\n}")
    assert float(bp.eval("f(1)")) == 3.0
    bp.exec("def h(x) {\n  s = 0\n  g = y -> y + s\n"
            "  for i in range(3) {\n    s = s + g(x)\n  }\n  return s\n}")
    assert float(bp.eval("h(1)")) == 7.0                     # s: 0 → 1 → 3 → 7


def test_a_closure_passed_to_another_function_sees_rebound_names():
    bp = dsl.Interpreter()
    bp.exec("def apply(f, x) = f(x)\n"
            "def twice(f, x) = grad(f)(x)\n"
            "def k(x) {\n  a = 1\n  g = y -> y^2 * a\n  r1 = apply(g, x) + twice(g, x)\n"
            "  a = 3\n  r2 = apply(g, x) + twice(g, x)\n  return r1 + r2\n}")
    x = 2.0
    assert float(bp.eval("k(2)")) == (x * x + 2 * x) * (1 + 3)
