"""Printed functions keep their parameters' defaults, so the text reads back to a
function that can be called the same ways (SPEC §13 Parameters, §5 printing)."""
import numpy as np
import pytest

import dsl


@pytest.fixture
def bp():
    return dsl.Interpreter()


@pytest.mark.parametrize("src, calls", [
    ("def f(x, lr=0.1) = x - lr * x^2", ["f(2)", "f(2, 0.5)", "f(2, lr=1)"]),
    ("def f(x, c=[1, 2]) = sum(x * c)", ["f(3)", "f([1, 1])", "f(2, c=[0, 5])"]),
    ("def f(x, sq=(y -> y^2), r={a: 2}) = sum(sq(x) * r.a)", ["f(3)", "f(3, y -> y)"]),
    ("def f(lr=0.5) = lr^2", ["f()", "f(3)"]),
    ("def f(x, lr=-0.0) = x * lr", ["f(2)", "f(2, 1)"]),
])
def test_defaults_print_and_read_back(bp, src, calls):
    bp.exec(src)
    for transform in ("f", "grad(f)"):
        text = bp.show(transform)
        bp.exec(f"g = {text}")
        for call in calls:
            if transform != "f" and call == "f()":
                continue
            want = bp.eval(call.replace("f(", transform + "(", 1))
            got = bp.eval(call.replace("f(", "g(", 1))
            assert bp.format(got) == bp.format(want), (text, call)


def test_default_is_the_value_at_definition_not_the_global_now(bp):
    bp.exec("c = 2\ndef f(x, k=c) = x * k\nc = 100")
    for transform, want in (("f", 6), ("grad(f)", 2)):     # 3·2 and ∂(xk)/∂x = k = 2
        text = bp.show(transform)
        assert text.startswith("(x, k=2) -> "), text
        bp.exec(f"g = {text}")
        assert bp.eval("g(3)") == want


def test_a_tangent_after_a_default_prints_without_defaults(bp):
    # jvp adds its tangent after lr; bp writes defaults last, so none is printed
    bp.exec("def f(x, lr=0.1) = x * lr")
    text = bp.show("jvp(f)")
    assert text.startswith("(x, lr, v) -> ")
    bp.exec(f"g = {text}")
    assert bp.eval("g(2, 0.1, 1)") == bp.eval("jvp(f)(2, 1)")
