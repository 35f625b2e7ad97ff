"""Host functions: Interpreter.define(name, fn, vjp=…) (SPEC §11)."""
import numpy as np
import pytest

import dsl


def softsign(x):
    return x / (1 + np.abs(x))


def softsign_vjp(x, out, ct):
    return (ct / (1 + np.abs(x)) ** 2,)


def mul_add(a, b):
    return a * b + a


def mul_add_vjp(a, b, out, ct):
    return (ct * (b + 1), ct * a)


@pytest.fixture
def bp():
    interp = dsl.Interpreter()
    interp.define("softsign", softsign, vjp=softsign_vjp)
    interp.define("mul_add", mul_add, vjp=mul_add_vjp)
    interp.define("plain", np.cos)
    return interp


def central(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_host_function_is_called_on_arrays(bp):
    x = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(bp.eval("softsign([-2, 0.5, 3])"), softsign(x))
    np.testing.assert_allclose(bp.eval("mul_add([1, 2], 3)"), [4, 8])


def test_host_gradient_goes_through_the_given_vjp(bp):
    x = np.array([-2.0, 0.5, 3.0])
    got = bp.eval("grad(x -> sum(softsign(x)^2))([-2, 0.5, 3])")
    np.testing.assert_allclose(got, central(lambda v: np.sum(softsign(v) ** 2), x), rtol=1e-7)


def test_host_gradient_with_two_arguments(bp):
    ga, gb = bp.eval("grad((a, b) -> sum(mul_add(a, b) * [1, 2]), wrt=(a, b))([1, 2], [3, -1])")
    a, b, w = np.array([1.0, 2.0]), np.array([3.0, -1.0]), np.array([1.0, 2.0])
    np.testing.assert_allclose(ga, central(lambda v: np.sum(mul_add(v, b) * w), a), rtol=1e-7)
    np.testing.assert_allclose(gb, central(lambda v: np.sum(mul_add(a, v) * w), b), rtol=1e-7)


def test_host_function_prints_by_name_and_its_gradient_reads_back(bp):
    text = bp.show("grad(x -> sum(softsign(x)))")
    assert "softsign" in text and "vjp(softsign" in text
    bp.exec("g = " + text)
    np.testing.assert_allclose(bp.eval("g([0.5, -1])"),
                               bp.eval("grad(x -> sum(softsign(x)))([0.5, -1])"), rtol=1e-12)


def test_host_second_derivative_is_a_clean_error(bp):
    with pytest.raises(dsl.BpTypeError, match="first derivative only"):
        bp.eval("grad(grad(x -> softsign(x)))(0.5)")


def test_host_without_vjp_has_no_derivative(bp):
    np.testing.assert_allclose(bp.eval("plain([0, 1])"), np.cos([0, 1]))
    with pytest.raises(dsl.BpTypeError, match="no derivative"):
        bp.eval("grad(x -> sum(plain(x)))([0.0, 1.0])")


def test_host_forward_mode_is_a_clean_error(bp):
    with pytest.raises(dsl.BpTypeError, match="forward mode"):
        bp.eval("jvp(softsign)([0.5], [1])")


def test_host_bad_vjp_is_a_located_value_error(bp):
    bp.define("bad", softsign, vjp=lambda x, out, ct: (np.ones(7),))
    with pytest.raises(dsl.BpValueError, match="returned shape"):
        bp.eval("grad(x -> sum(bad(x)))([1.0, 2.0])")


def test_host_wrong_argument_count(bp):
    with pytest.raises(dsl.BpTypeError):
        bp.eval("softsign(1, 2)")


def test_a_host_function_returning_another_shape_is_a_located_shape_error():
    # issue 17: it was accepted, and the mismatch surfaced later as a broadcast error
    bp = dsl.Interpreter()
    bp.define("twice", lambda x: np.concatenate([x, x]))
    bp.exec("def f(x) = sum(twice(x) * x)")
    with pytest.raises(dsl.BpError) as err:
        bp.eval("f([1, 2])")
    assert err.value.kind == "shape error" and err.value.line == 1 and err.value.column == 16
    assert "twice returned shape [4]" in err.value.message and "shape=" in err.value.message
    bp.define("twice2", lambda x: np.concatenate([x, x]), shape=lambda s: (2 * s[0],))
    np.testing.assert_array_equal(bp.eval("twice2([1, 2])"), [1, 2, 1, 2])
    bp.define("short", lambda x: x[:1], shape=lambda s: s)
    with pytest.raises(dsl.BpError) as err:
        bp.eval("short([1, 2])")
    assert err.value.message == "the host function short returned shape [1]; its shape= rule gives [2]"
