"""The derivative of mean at an unknown shape divides by size(x), as a reader writes it.

Where x's shape is known only at the call, mean's VJP divides by the number of
elements averaged: all of them (axis=None) is size(x) (the size_of node, which folds
to a number once the shape is known, and whose operand is the first one of the same
shape: size(x^2) is size(x)); over an axis it is the sum of ones over that axis.
Each print is read back and evaluated at several shapes against the formula by hand.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl


def show(expr: str) -> str:
    return dsl.Interpreter().show(expr)


def read_back(text: str):
    bp = dsl.Interpreter()
    bp.exec(f"g = {text}")
    return bp.function("g")


SHAPES = [(), (4,), (2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_mean_of_squares(shape):
    text = show("grad(x -> mean(x^2))")
    assert text == "x -> 2*x/size(x)"
    x = np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape)
    np.testing.assert_allclose(np.asarray(read_back(text)(x)), 2 * x / x.size, rtol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_mean_of_a_product_names_its_size_once(shape):
    # d/dx mean(tanh(x)·x) = (tanh(x) + x(1 - tanh²x)) / n
    text = show("grad(x -> mean(tanh(x) * x))")
    assert "size(x)" in text and "sum(broadcast_like" not in text
    x = np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape)
    want = (np.tanh(x) + x * (1 - np.tanh(x) ** 2)) / x.size
    np.testing.assert_allclose(np.asarray(read_back(text)(x)), want, rtol=1e-14)


@pytest.mark.parametrize("shape", [(3, 2), (2, 2, 3)])
def test_a_mean_over_an_axis_divides_by_that_axis(shape):
    text = show("grad(x -> sum(mean(x, axis=0)))")
    x = np.ones(shape)
    np.testing.assert_allclose(np.asarray(read_back(text)(x)), np.full(shape, 1.0 / shape[0]),
                               rtol=1e-15)


def test_size_of_a_known_shape_is_a_number():
    bp = dsl.Interpreter()
    bp.exec("def f(x: [2, 3]) = mean(x^2)")
    text = bp.show("grad(f)")                     # 2x/6, the 6 folded in
    assert "size" not in text
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(read_back(text)(x)), x / 3, rtol=1e-15)
