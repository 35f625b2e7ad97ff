"""Named dimensions in shape annotations (SPEC §13; issue 13, item 3).

`def f(W: [m, n], x: [n])`: a dimension is a whole number, a name, or `_`.  A
name binds per call and must agree across the parameters of the call; a
mismatch is a located shape error naming the dimension and both sizes.  With
the ranks known, derivatives print in matrix-calculus form, in a text that
holds for every size.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl


def test_a_named_dimension_binds_per_call():
    bp = dsl.Interpreter()
    bp.exec("def layer(W: [m, n], x: [n]) = sum(tanh(W @ x))")
    w, x = np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([1.0, 0, -1])
    assert float(bp.function("layer")(w, x)) == pytest.approx(np.tanh(w @ x).sum(), rel=1e-15)
    # another call, other sizes: names bind per call
    w2, x2 = np.ones((4, 2)), np.array([0.5, -0.25])
    assert float(bp.function("layer")(w2, x2)) == pytest.approx(4 * np.tanh(0.25), rel=1e-15)


def test_a_mismatch_names_the_dimension_and_both_sizes():
    bp = dsl.Interpreter()
    bp.exec("def layer(W: [m, n], x: [n]) = sum(tanh(W @ x))")
    with pytest.raises(dsl.BpShapeError) as err:
        bp.exec("y = layer([[1, 2, 3], [4, 5, 6]], [1, 0])")
    assert "n is 3 in W but 2 in x" in err.value.message
    assert (err.value.line, err.value.column) == (1, 5)          # at the call


def test_a_name_repeated_in_one_parameter():
    bp = dsl.Interpreter()
    bp.exec("def tr(X: [n, n]) = trace(X)")
    assert float(bp.eval("tr([[1, 2], [3, 4]])")) == 5
    with pytest.raises(dsl.BpShapeError, match="n is both 2 and 3 in X"):
        bp.eval("tr([[1, 2, 3], [4, 5, 6]])")


def test_underscore_takes_any_size_and_ranks_still_count():
    bp = dsl.Interpreter()
    bp.exec("def f(x: [_], y: [_]) = sum(x) * sum(y)")
    assert float(bp.eval("f([1, 2], [3, 4, 5])")) == 36
    with pytest.raises(dsl.BpShapeError, match="must have shape"):
        bp.eval("f([[1, 2]], [3])")
    with pytest.raises(dsl.BpShapeError, match="must have shape"):
        bp.eval("f(1, [3])")


def test_lambdas_take_annotations():
    bp = dsl.Interpreter()
    bp.exec("f = (x: [n], y) -> sum(x) * y\ng = (v: [2]) -> v * 2")
    assert float(bp.eval("f([1, 2, 3], 2)")) == 12
    assert bp.eval("g([1, 2])").tolist() == [2, 4]
    with pytest.raises(dsl.BpShapeError):
        bp.eval("g([1, 2, 3])")


@pytest.mark.parametrize("src", ["y = (x: [3])", "y = (1, x: [3])", "print (x: [n])(2)"])
def test_an_annotation_outside_a_parameter_list_is_a_syntax_error(src):
    with pytest.raises(dsl.BpSyntaxError, match="belongs on a parameter"):
        dsl.Interpreter().exec(src)


def test_type_shows_the_named_signature():
    from dsl.repl.introspect import describe
    bp = dsl.Interpreter()
    bp.exec("def layer(W: [m, n], x: [n]) = sum(tanh(W @ x))")
    assert describe(bp.globals["layer"], "layer") == "layer(W: [m, n], x: [n])"


# Printing: the matrix-calculus form where it holds for every size (derived by hand).
PRINTED = [
    ("def f(W: [m, n], x: [n]) = sum(tanh(W @ x))", "grad(f)", "(W, x) -> outer(1 - tanh(W @ x)^2, x)"),
    ("def f(W: [m, n], x: [n]) = sum(tanh(W @ x))", "grad(f, wrt=1)", "(W, x) -> W' @ (1 - tanh(W @ x)^2)"),
    ("def f(x: [n]) = sum(x^3)", "hessian(f)", "x -> diag(6*x)"),
    ("def f(x: [_]) = sum(exp(x))", "hessian(f)", "x -> diag(exp(x))"),
]


@pytest.mark.parametrize("definition, transform, text", PRINTED)
def test_named_dimensions_print_in_matrix_calculus_form(definition, transform, text):
    bp = dsl.Interpreter()
    bp.exec(definition)
    assert bp.show(transform) == text


@pytest.mark.parametrize("shapes", [((2, 3), (3,)), ((5, 2), (2,)), ((1, 4), (4,))])
def test_the_printed_gradient_holds_for_every_size(shapes):
    bp = dsl.Interpreter()
    bp.exec("def f(W: [m, n], x: [n]) = sum(tanh(W @ x))")
    bp.exec(f"g = {bp.show('grad(f)')}")
    rng = np.random.default_rng(len(shapes[0]))
    w, x = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    np.testing.assert_allclose(bp.function("g")(w, x), np.outer(1 - np.tanh(w @ x) ** 2, x), rtol=1e-14)


def test_a_size_that_would_go_into_the_text_prints_the_general_form():
    """hessian(sum(x^2)) is 2*eye(n): eye of a size the text cannot name, so the
    printer keeps the form that holds for every shape, and it reads back right."""
    bp = dsl.Interpreter()
    bp.exec("def f(x: [n]) = sum(x^2)")
    text = bp.show("hessian(f)")
    assert "eye(3)" not in text and "eye(4)" not in text
    bp.exec(f"h = {text}")
    for n in (2, 5):
        np.testing.assert_array_equal(bp.function("h")(np.ones(n)), 2 * np.eye(n))
