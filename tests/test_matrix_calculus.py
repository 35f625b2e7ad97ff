"""Derivatives print as a matrix-calculus text writes them (issue 13, item 4).

Each case is an identity derived by hand (the Matrix Cookbook's numbers where it
has one), written twice: as the closed form in bp (`closed`, which sets the
length the printed text may have: at most 1.5× its tokens plus 6) and as a
NumPy function of the point (the numbers).  For each, bp's printed derivative
is read back as `g = <text>` and compared with the NumPy closed form; the bp
closed form is checked against NumPy too, so a slip in either is caught.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import dsl

A = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 10]])
X = np.array([[1.0, 2, 3], [4, 5, 6]])
Y = np.array([1.0, -1.0])
AV = np.array([1.0, 2, 3])
BV = np.array([3.0, -1, 2])
M = np.array([[2.0, 0.3, -0.1], [0.2, 1.5, 0.4], [-0.3, 0.1, 2.5]])   # well conditioned
W23 = np.array([[0.5, -0.2, 0.1], [0.3, 0.8, -0.6]])
W33 = np.array([[0.2, -0.4, 0.3], [0.1, 0.5, -0.2], [-0.3, 0.2, 0.4]])
X0 = np.array([0.3, -0.5, 0.8])

GLOBALS = {"A": A, "X": X, "y": Y, "a": AV, "b": BV}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# (name, definition, transform, closed form in bp, NumPy closed form, point)
CASES = [
    ("quadratic form hessian", "def f(x: [3]) = x @ A @ x", "hessian(f)", "x -> A + A'",
     lambda x: A + A.T, (X0,)),
    ("quadratic form gradient", "def f(x: [3]) = x @ A @ x", "grad(f)", "x -> (A + A') @ x",
     lambda x: (A + A.T) @ x, (X0,)),
    ("linear form", "def f(x: [3]) = a @ x", "grad(f)", "x -> a", lambda x: AV, (X0,)),
    ("squared norm", "def f(x: [3]) = sum(x^2)", "grad(f)", "x -> 2 * x", lambda x: 2 * x, (X0,)),
    ("squared norm hessian", "def f(x: [3]) = sum(x^2)", "hessian(f)", "x -> 2 * eye(3)",
     lambda x: 2 * np.eye(3), (X0,)),
    ("dot with itself", "def f(x: [3]) = x @ x", "grad(f)", "x -> 2 * x", lambda x: 2 * x, (X0,)),
    ("least squares gradient", "def f(w: [3]) = sum((X @ w - y)^2)", "grad(f)",
     "w -> 2 * X' @ (X @ w - y)", lambda w: 2 * X.T @ (X @ w - Y), (X0,)),
    ("least squares hessian", "def f(w: [3]) = sum((X @ w - y)^2)", "hessian(f)",
     "w -> 2 * X' @ X", lambda w: 2 * X.T @ X, (X0,)),
    ("cubes hessian", "def f(x: [3]) = sum(x^3)", "hessian(f)", "x -> diag(6 * x)",
     lambda x: np.diag(6 * x), (X0,)),
    ("exp hessian", "def f(x: [3]) = sum(exp(x))", "hessian(f)", "x -> diag(exp(x))",
     lambda x: np.diag(np.exp(x)), (X0,)),
    ("identity jacobian", "def f(x: [3]) = x", "jacobian(f)", "x -> eye(3)",
     lambda x: np.eye(3), (X0,)),
    ("linear map jacobian", "def f(x: [3]) = A @ x", "jacobian(f)", "x -> A", lambda x: A, (X0,)),
    ("elementwise jacobian", "def f(x: [3]) = sin(x)", "jacobian(f)", "x -> diag(cos(x))",
     lambda x: np.diag(np.cos(x)), (X0,)),
    ("softmax jacobian", "def f(x: [3]) = softmax(x)", "jacobian(f)",
     "x -> diag(softmax(x)) - outer(softmax(x), softmax(x))",
     lambda x: np.diag(softmax(x)) - np.outer(softmax(x), softmax(x)), (X0,)),
    ("logsumexp hessian", "def f(x: [3]) = logsumexp(x)", "hessian(f)",
     "x -> diag(softmax(x)) - outer(softmax(x), softmax(x))",
     lambda x: np.diag(softmax(x)) - np.outer(softmax(x), softmax(x)), (X0,)),
    ("tanh layer jacobian", "def f(x: [3]) = tanh(X @ x)", "jacobian(f)",
     "x -> diag(1 - tanh(X @ x)^2) @ X",
     lambda x: np.diag(1 - np.tanh(X @ x) ** 2) @ X, (X0,)),
    ("sum times vector jacobian", "def f(x: [3]) = sum(x) * x", "jacobian(f)",
     "x -> outer(x, ones(3)) + sum(x) * eye(3)",
     lambda x: np.outer(x, np.ones(3)) + x.sum() * np.eye(3), (X0,)),
    ("linear layer weights (Algorithm 6.4)", "def f(W: [2, 3], x: [3]) = sum(tanh(W @ x))",
     "grad(f)", "(W, x) -> outer(1 - tanh(W @ x)^2, x)",
     lambda W, x: np.outer(1 - np.tanh(W @ x) ** 2, x), (W23, X0)),
    ("linear layer input", "def f(W: [2, 3], x: [3]) = sum(tanh(W @ x))", "grad(f, wrt=1)",
     "(W, x) -> W' @ (1 - tanh(W @ x)^2)",
     lambda W, x: W.T @ (1 - np.tanh(W @ x) ** 2), (W23, X0)),
    ("regression weights", "def f(W: [2, 3]) = sum((W @ a - y)^2)", "grad(f)",
     "W -> 2 * outer(W @ a - y, a)", lambda W: 2 * np.outer(W @ AV - Y, AV), (W23,)),
    ("bilinear form (Cookbook 70)", "def f(Z: [3, 3]) = a @ Z @ b", "grad(f)", "Z -> outer(a, b)",
     lambda Z: np.outer(AV, BV), (M,)),
    ("trace of a product (Cookbook 100)", "def f(Z: [3, 3]) = trace(A @ Z)", "grad(f)", "Z -> A'",
     lambda Z: A.T, (M,)),
    ("trace of a quadratic (Cookbook 117)", "def f(Z: [2, 3]) = trace(Z @ A @ Z')", "grad(f)",
     "Z -> Z @ A + Z @ A'", lambda Z: Z @ A + Z @ A.T, (W23,)),
    ("log determinant (Cookbook 57)", "def f(Z: [3, 3]) = log(det(Z))", "grad(f)", "Z -> inv(Z)'",
     lambda Z: np.linalg.inv(Z).T, (M,)),
    ("determinant (Cookbook 49)", "def f(Z: [3, 3]) = det(Z)", "grad(f)", "Z -> det(Z) * inv(Z)'",
     lambda Z: np.linalg.det(Z) * np.linalg.inv(Z).T, (M,)),
    ("logistic regression gradient", "def f(w: [3]) = sum(log1p(exp(-y * (X @ w))))", "grad(f)",
     "w -> -X' @ (y * sigmoid(-y * (X @ w)))",
     lambda w: -X.T @ (Y * sigmoid(-Y * (X @ w))), (X0,)),
    ("logistic regression hessian", "def f(w: [3]) = sum(log1p(exp(-y * (X @ w))))", "hessian(f)",
     "w -> X' @ diag(sigmoid(y * (X @ w)) * sigmoid(-y * (X @ w))) @ X",
     lambda w: X.T @ np.diag(sigmoid(Y * (X @ w)) * sigmoid(-Y * (X @ w))) @ X, (X0,)),
    ("MLP output weights", "def f(V: [2, 3], U: [3, 3]) = sum((V @ tanh(U @ a) - y)^2)", "grad(f)",
     "(V, U) -> 2 * outer(V @ tanh(U @ a) - y, tanh(U @ a))",
     lambda V, U: 2 * np.outer(V @ np.tanh(U @ AV) - Y, np.tanh(U @ AV)), (W23, W33)),
    ("MLP hidden weights", "def f(V: [2, 3], U: [3, 3]) = sum((V @ tanh(U @ a) - y)^2)",
     "grad(f, wrt=1)",
     "(V, U) -> outer((1 - tanh(U @ a)^2) * (2 * V' @ (V @ tanh(U @ a) - y)), a)",
     lambda V, U: np.outer((1 - np.tanh(U @ AV) ** 2) * (2 * V.T @ (V @ np.tanh(U @ AV) - Y)), AV),
     (W23, W33)),
    ("sigmoid derivative", "def f(x: [3]) = sum(sigmoid(x))", "grad(f)",
     "x -> sigmoid(x) * (1 - sigmoid(x))", lambda x: sigmoid(x) * (1 - sigmoid(x)), (X0,)),
    ("2-norm", "def f(x: [3]) = norm(x)", "grad(f)", "x -> x / norm(x)",
     lambda x: x / np.linalg.norm(x), (X0,)),
    ("mean of squares", "def f(x: [3]) = mean(x^2)", "grad(f)", "x -> 2 / 3 * x",
     lambda x: 2 / 3 * x, (X0,)),
    # d/dW ½‖W‖²_F = W (weight decay): the ½ and the 2 cancel
    ("weight decay", "def f(W: [2, 3]) = 0.5 * sum(W^2)", "grad(f)", "W -> W",
     lambda W: W, (W23,)),
    ("half squared norm, negated", "def f(x: [3]) = -0.5 * sum(x^2)", "grad(f)", "x -> -x",
     lambda x: -x, (X0,)),
    # d/dx ½‖Ax‖² = Aᵀ A x
    ("half squared norm of a linear map", "def f(x: [3]) = 0.5 * sum((A @ x)^2)", "grad(f)",
     "x -> A' @ (A @ x)", lambda x: A.T @ (A @ x), (X0,)),
]

TOKEN = re.compile(r"\d+\.?\d*(?:e[-+]?\d+)?|[^\W\d]\w*|->|\S")


def tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def session() -> dsl.Interpreter:
    bp = dsl.Interpreter()
    for name, value in GLOBALS.items():
        bp[name] = value
    return bp


@pytest.mark.parametrize("name, definition, transform, closed, reference, point", CASES,
                         ids=[c[0] for c in CASES])
def test_printed_derivative_is_the_closed_form(name, definition, transform, closed, reference, point):
    bp = session()
    bp.exec(definition)
    want = reference(*point)
    # the bp closed form is right (a check on the derivation by hand)
    bp.exec(f"closed = {closed}")
    np.testing.assert_allclose(bp.function("closed")(*point), want, rtol=1e-12, atol=1e-12)
    # bp's printed derivative reads back and gives the same numbers …
    text = bp.show(transform)
    bp.exec(f"printed = {text}")
    np.testing.assert_allclose(bp.function("printed")(*point), want, rtol=1e-12, atol=1e-12,
                               err_msg=f"printed: {text}")
    # … and is about as short as the closed form
    assert tokens(text) <= 1.5 * tokens(closed) + 6, \
        f"{name}: {tokens(text)} tokens against the closed form's {tokens(closed)}\n{text}\n{closed}"


def test_there_are_at_least_25_identities():
    assert len(CASES) >= 25


def test_the_issue_examples_print_their_forms():
    """The forms issue 13 names, as text: not just as short, but these."""
    bp = session()
    bp.exec("def q(x: [3]) = x @ A @ x\ndef c(x: [3]) = sum(x^3)\n"
            "def l(W: [2, 3], x: [3]) = sum(tanh(W @ x))\ndef i(x: [3]) = x")
    assert bp.show("hessian(q)") == "x -> A + A'"
    assert bp.show("hessian(c)") == "x -> diag(6*x)"
    assert bp.show("grad(l)") == "(W, x) -> outer(1 - tanh(W @ x)^2, x)"
    assert bp.show("jacobian(i)") == "x -> eye(3)" and "reshape" not in bp.show("hessian(c)")
