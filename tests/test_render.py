"""Printing functions: constants with one value everywhere print compactly.

(Where such a constant meets an operand of the result's shape the builder keeps
it a scalar: ops._scalar_constants.)

A scalar that a fold spread over a shape (the 100 of Rosenbrock's gradient,
the weight decay of an MLP's) used to print as a literal of 99 copies.  It
prints as `full(…, value=v)` (or `ones`/`zeros`), which reads back to the
same constant, so the printed function is still the same function.
"""
from __future__ import annotations

import numpy as np

import dsl
from dsl.render import const_source


def test_a_zero_of_an_unknown_shape_folds_where_the_shape_holds():
    bp = dsl.Interpreter()
    bp.exec("def f(y) = 3*y + 0*y\ndef m(x, y) = x + 0*y")
    assert bp.format(bp.eval("f")) == "y -> 3*y"
    assert bp.format(bp.eval("m")) == "(x, y) -> x + zeros_like(y)"   # y's shape is kept
    assert bp.eval("m(1, [1, 2])").tolist() == [1, 1]


def test_a_broadcast_is_against_the_plainest_node_of_its_shape():
    bp = dsl.Interpreter()
    assert bp.format(bp.eval("grad(y -> sum(3*y + 0*y))")) == "y -> 3 * broadcast_like(1, y)"
    assert bp.eval("grad(y -> sum(3*y))([[1, 2]])").tolist() == [[3, 3]]


def test_uniform_constants_print_as_full_ones_zeros():
    assert const_source(np.full((99,), 100.0))[0] == "full(99, value=100)"
    assert const_source(np.ones((3, 4)))[0] == "ones(3, 4)"
    assert const_source(np.zeros((2, 2)))[0] == "zeros(2, 2)"
    assert const_source(np.full((2, 3), -0.25))[0] == "full(2, 3, value=-0.25)"


def test_small_or_mixed_constants_stay_literals():
    assert const_source(np.array([7.0, 7.0, 7.0]))[0] == "[7, 7, 7]"
    assert const_source(np.array([1.0, 2.0, 1.0, 1.0]))[0] == "[1, 2, 1, 1]"
    assert const_source(np.array([np.nan] * 4))[0].startswith("[")


def test_a_gradient_with_a_spread_constant_prints_compactly_and_reads_back():
    bp = dsl.Interpreter()
    bp.exec("def rosen(x: [100]) = sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)")
    text = bp.show("grad(rosen)")
    # the 100 stays one number: a scalar beside operands of the full shape (or full(99, …))
    assert "100, 100" not in text and "200, 200" not in text and len(text) < 300
    bp.exec(f"again = {text}")
    x = np.random.default_rng(3).random(100)
    # the same function; the text's scalar 100 is summed in another order than the graph's
    np.testing.assert_allclose(bp.function("again")(x), bp.function("grad(rosen)")(x), rtol=1e-14,
                               atol=1e-12)


def test_a_broadcast_that_where_would_do_itself_is_not_printed():
    """-broadcast_like(g, x) becomes broadcast_like(-g, x), and where(c, broadcast_like(g, b), b)
    becomes where(c, g, b): log_softmax's stable gradient prints without the plumbing."""
    bp = dsl.Interpreter()
    bp.exec("def f(x: [3]) = sum(log_softmax(x) * [1, 0, 0])")
    text = bp.show("grad(f)")
    assert "broadcast_like" not in text, text
    x = np.array([1.0, 2.0, 3.0])
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    expected = np.array([1.0, 0.0, 0.0]) - p
    np.testing.assert_allclose(bp.function("grad(f)")(x), expected, rtol=1e-14)
    bp.exec(f"again = {text}")
    np.testing.assert_array_equal(bp.function("again")(x), bp.function("grad(f)")(x))


def test_whole_number_reads_of_an_unannotated_parameter_share_a_shape():
    """x[0] and x[1] of a parameter without an annotation both have shape(x)[1:], so
    their product needs no broadcasting undone in its gradient."""
    from dsl import ops, shapes
    from dsl.graph import make_input
    x = make_input("x", shapes.SymShape.of("x"))
    a = ops.apply("index", [x], {"items": (("i", 0),)})
    b = ops.apply("index", [x], {"items": (("i", 1),)})
    assert a.shape == b.shape and a.shape != x.shape
    assert ops.apply("index", [x], {"items": (("i", 0), ("i", 1))}).shape != a.shape
    bp = dsl.Interpreter()
    bp.exec("def h(x) = sum(x^2) + x[0]*x[1]")
    text = bp.show("grad(h)")
    import re
    adjoints = re.findall(r"grad\(z -> sum\(z\[\d\] \* (.*?)\)\)\(x\)", text)
    assert len(adjoints) == 2 and not any("unbroadcast" in a for a in adjoints), text
    bp.exec(f"again = {text}")
    v = np.array([1.0, 2.0])
    np.testing.assert_array_equal(bp.function("again")(v), [2 * 1 + 2, 2 * 2 + 1])
    np.testing.assert_array_equal(bp.function("grad(h)")(v), [4.0, 5.0])


def test_a_runtime_index_and_a_gather_print_as_they_are_written():
    """take(x, i, axis=0) is what x[i] (a runtime i) and x[idx] lower to: it prints as
    x[i], which reads back to the same node."""
    bp = dsl.Interpreter()
    bp.exec("def f(x, i) = x[i + 1] * x[[0, 0]]")
    printed = bp.format(bp.eval("f"))
    assert printed == "(x, i) -> x[1 + i] * x[[0, 0]]", printed
    bp.exec(f"g = {printed}")
    x = np.array([2.0, 3.0, 5.0])
    assert bp.function("g")(x, 1.0).tolist() == [10.0, 10.0]
    assert bp.format(bp.eval("x -> take(x, 1)")) == "x -> take(x, 1)"   # flattened: a call


def test_a_listing_of_a_constant_times_a_scaled_product_lists():
    """k * (c * x) merges its constants where the product is written in place; a listing
    writes every node on a line of its own (graph diff(x -> x^x, 3) was an internal
    error: the merge read the text of a node two lines up)."""
    bp = dsl.Interpreter()
    listing = bp.graph("diff(x -> x^x, 3)").listing()
    assert listing.splitlines()[-1].startswith("return ")
    assert "6*" in listing
    g1 = np.log(1.5) + 1                # x^x = e^(x log x): g1 = log x + 1, then 1/x, -1/x^2
    want = 1.5 ** 1.5 * (g1 ** 3 + 3 * g1 / 1.5 - 1 / 1.5 ** 2)
    assert abs(float(bp.eval("diff(x -> x^x, 3)(1.5)")) - want) <= 1e-12 * abs(want)
