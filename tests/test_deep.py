"""Deep source and deep graphs: no RecursionError, no crash.

Source nested 1,000 levels deep either evaluates to the right value or
stops with a clean, located BpError (a limit is allowed; a traceback is
not).  Graphs are another matter: DESIGN.md promises that every walk is
iterative, so a 100,000-step unrolled loop must run and give the number
NumPy gives for the same loop, and `topo_order` must handle a 100,000-deep
chain built directly with `ops.apply`.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import dsl
from dsl import graph, ops
from dsl.evaluate import Plan

DEPTH = 1000
CHAIN = 100_000
KINDS = {"syntax error", "name error", "type error", "shape error", "value error",
         "import error", "io error", "assertion failed"}


def value_or_clean_error(src: str, expected) -> str:
    """Evaluate src: the expected value, or a located BpError of a SPEC kind.
    Returns "ok" or the error kind, so a test can insist on success."""
    limit = sys.getrecursionlimit()
    try:
        got = dsl.Interpreter().eval(src)
    except dsl.BpError as err:
        assert err.kind in KINDS, f"{err.kind}: {err.message}"
        assert str(err).startswith(f"<eval>:{err.line}:{err.column}: {err.kind}: ")
        return err.kind
    finally:
        # An Interpreter raises the limit for deep lowering and never lowers it again
        # (another thread's session may be deep in it): it must never come down.
        assert sys.getrecursionlimit() >= limit, "the recursion limit was lowered"
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    return "ok"


# ── deeply nested source ─────────────────────────────────────────────────

def test_deep_parentheses_evaluate():
    assert value_or_clean_error("(" * DEPTH + "2.5" + ")" * DEPTH, 2.5) == "ok"


@pytest.mark.parametrize("depth", [DEPTH - 1, DEPTH])
def test_deep_nested_negation(depth):
    value_or_clean_error("-(" * depth + "1" + ")" * depth, (-1.0) ** depth)


def test_deep_bare_negation():
    value_or_clean_error("-" * DEPTH + "1", 1.0)


def test_deep_long_sum():
    value_or_clean_error(" + ".join(["1"] * DEPTH), float(DEPTH))


def test_deep_long_product_chain():
    value_or_clean_error(" * ".join(["1.001"] * DEPTH), 1.001 ** DEPTH)


def test_deep_right_associative_power():
    value_or_clean_error(" ^ ".join(["1"] * DEPTH), 1.0)


def test_deep_nested_calls():
    expected = 0.5
    for _ in range(DEPTH):
        expected = np.sin(expected)
    value_or_clean_error("sin(" * DEPTH + "0.5" + ")" * DEPTH, expected)


def test_deep_nested_lists_beyond_numpy_rank_are_a_clean_error():
    # A 1000-axis tensor cannot exist (NumPy stops at 64 axes), so this must fail cleanly.
    assert value_or_clean_error("[" * DEPTH + "1" + "]" * DEPTH, None) != "ok"


def test_deep_nested_lists_within_numpy_rank_evaluate():
    # NumPy arrays have at most 64 axes; 32 levels of brackets must just work.
    assert value_or_clean_error("[" * 32 + "7" + "]" * 32, np.full((1,) * 32, 7.0)) == "ok"


def test_deep_nested_lambdas():
    src = "".join(f"(x{i} -> " for i in range(DEPTH)) + "1" + ")" * DEPTH
    try:
        dsl.Interpreter().exec(f"h = {src}")
    except dsl.BpError as err:
        assert err.kind in KINDS


def test_deep_nested_source_leaves_the_session_usable():
    bp = dsl.Interpreter()
    bp.exec("a = 1")
    try:
        bp.exec("b = " + " + ".join(["1"] * 5 * DEPTH))
    except dsl.BpError as err:
        assert err.kind in KINDS
    assert float(bp.eval("a + 1")) == 2.0
    assert float(bp.eval("sin(0)")) == 0.0


# ── deep graphs ──────────────────────────────────────────────────────────

def test_deep_unrolled_loop_of_100k_steps_matches_numpy():
    # sin keeps every step a node of its own (no identity or like-term folds).
    bp = dsl.Interpreter()
    bp.exec("def f(x) { y = x; for i in range(%d) { y = sin(y) + x }; return y }" % CHAIN)
    y = x = np.array([0.3, -1.2, 2.0])
    for _ in range(CHAIN):
        y = np.sin(y) + x
    bp["x0"] = x
    np.testing.assert_allclose(bp.eval("f(x0)"), y, rtol=1e-12)


def test_deep_unrolled_linear_loop_of_100k_steps_through_python_callable():
    # Like terms collect, so this chain may fold to a*x + b*x…: the value must not change.
    bp = dsl.Interpreter()
    bp.exec("def f(x) { y = x; for i in range(%d) { y = y * 0.5 + x }; return y }" % CHAIN)
    y = x = np.array(1.5)
    for _ in range(CHAIN):
        y = y * 0.5 + x
    np.testing.assert_allclose(bp.function("f")(1.5), y, rtol=1e-12)


def test_deep_top_level_loop_of_100k_steps():
    bp = dsl.Interpreter()
    bp.exec("y = 0\nfor i in range(%d) { y = sin(y) * 0.5 + 1 }" % CHAIN)
    y = np.float64(0.0)
    for _ in range(CHAIN):
        y = np.sin(y) * 0.5 + 1.0
    np.testing.assert_allclose(bp.eval("y"), y, rtol=1e-12)


def chain(steps: int):
    x = graph.make_input("x", (3,))
    y = x
    for _ in range(steps):
        y = ops.apply("sin", [y])
    return x, y


def test_deep_topo_order_of_a_100k_chain():
    x, y = chain(CHAIN)
    order = graph.topo_order([y])
    assert len(order) == CHAIN + 1
    assert order[0] is x and order[-1] is y
    position = {id(n): i for i, n in enumerate(order)}
    assert all(position[id(i)] < position[id(n)] for n in order for i in n.inputs)


def test_deep_topo_order_shares_nodes_once():
    x, y = chain(CHAIN)
    z = ops.apply("add", [y, ops.apply("cos", [y])])
    order = graph.topo_order([z, y, x])
    assert len(order) == CHAIN + 3
    assert len({id(n) for n in order}) == len(order)


def test_deep_plan_runs_a_100k_chain():
    x, y = chain(CHAIN)
    value = np.array([0.1, 1.0, -2.0])
    expected = value
    for _ in range(CHAIN):
        expected = np.sin(expected)
    (got,) = Plan([x], [y]).run([value])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_deep_graph_object_of_a_100k_chain():
    x, y = chain(CHAIN)
    g = graph.Graph([x], [y])
    assert len(g) == CHAIN + 1


def test_deep_chain_is_freed_without_recursion():
    # Dropping the last reference frees 100,000 nested nodes; CPython's
    # deallocator must not overflow the C stack doing so.
    x, y = chain(CHAIN)
    del y
    x2, y2 = chain(10)
    assert y2.shape == (3,)
