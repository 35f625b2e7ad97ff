"""Differentiation: errors, displays, deep graphs, transforms composing."""
import io

import numpy as np
import pytest

import dsl
from dsl.errors import BpTypeError


@pytest.fixture
def bp():
    return dsl.Interpreter(stdout=io.StringIO())


def test_grad_of_nonscalar_names_the_shape_and_suggests(bp):
    bp.exec("def f(x) = x^2")
    with pytest.raises(BpTypeError) as err:
        bp.exec("g = grad(f)([1, 2])")
    assert "[2]" in err.value.message
    assert "jacobian" in err.value.message and "sum" in err.value.message
    assert err.value.line == 1 and err.value.column == 5


def test_wrt_naming_a_missing_parameter_lists_the_parameters(bp):
    bp.exec("def f(x, W, b) = sum(W @ x + b)")
    with pytest.raises(BpTypeError) as err:
        bp.exec("g = grad(f, wrt=c)([1], [[1]], [0])")
    assert "'c'" in err.value.message and "x, W, b" in err.value.message


def test_wrt_position_out_of_range(bp):
    bp.exec("def f(x, y) = x * y")
    with pytest.raises(BpTypeError) as err:
        bp.eval("grad(f, wrt=2)(1, 2)")
    assert "positions count from 0" in err.value.message
    with pytest.raises(BpTypeError) as err:
        bp.eval("grad(f, wrt=-3)(1, 2)")
    assert "from -1 at the end" in err.value.message


def test_negative_wrt_counts_from_the_last_parameter(bp):
    # f(x, y, z) = x^2 y z^3: ∂f/∂z = 3x²yz², ∂f/∂y = x²z³, at (1, 2, 3): 54 and 27
    bp.exec("def f(x, y, z) = x^2 * y * z^3")
    assert bp.eval("grad(f, wrt=-1)(1, 2, 3)") == 54
    assert bp.eval("grad(f, wrt=(-2, -1))(1, 2, 3)") == (27, 54)
    assert bp.eval("grad(f, wrt=-3)(1, 2, 3)") == bp.eval("grad(f, wrt=0)(1, 2, 3)") == 108
    bp.exec("g = " + bp.show("grad(f, wrt=-1)"))
    assert bp.eval("g(1, 2, 3)") == 54


def test_printed_gradient_is_the_spec_example(bp):
    bp.exec("def f(x) = x^2 * sin(x)")
    assert bp.show("grad(f)") == "x -> 2*x*sin(x) + x^2*cos(x)"


def test_printed_second_derivative_binds_shared_subexpressions(bp):
    text = bp.show("diff(tanh, 2)")
    assert text.startswith("x -> { t1 = tanh(x); return ")
    bp.exec("g = " + text)
    for x in (-1.3, 0.2, 0.9):
        t = np.tanh(x)
        assert float(bp.eval(f"g({x})")) == pytest.approx(-2 * t * (1 - t * t), rel=1e-12)


def test_graph_listing_marks_derivative_nodes_and_counts_them(bp):
    bp.exec('def f(x) = x^2 * sin(x)\ngraph grad(f)')
    lines = bp.stdout.getvalue().splitlines()
    assert lines[0] == "x: []"          # grad needs f(x) 0-d, which x^2*sin(x) is only at a 0-d x
    assert any(line.endswith("∂") for line in lines)
    assert lines[-1].startswith("return t") and "from f" in lines[-1] and "from grad" in lines[-1]


def test_graph_to_dot_colours_derivative_nodes(bp, tmp_path):
    bp.exec(f'graph grad(x -> sin(x) * x) to "{tmp_path / "g.dot"}"')
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and "#ffe0b2" in dot and "->" in dot


def test_fig6_10_derivative_reuses_forward_nodes(bp):
    bp.exec("def z(w) = tanh(tanh(tanh(w)))")
    tanh = [n for n in bp.graph("grad(z)").nodes if n.op == "tanh"]
    # The three forward tanh nodes, and no new ones: backprop reuses tanh(w), tanh(tanh(w)), …
    assert len(tanh) == 3 and all(n.origin == "f" for n in tanh)


def test_twentieth_derivative_of_sin(bp):
    for x in (0.3, -2.0):
        assert float(bp.eval(f"diff(x -> sin(x), 20)({x})")) == pytest.approx(np.sin(x), rel=1e-12)


def test_grad_through_a_long_unrolled_chain_has_no_recursion_limit(bp):
    n = 100_000
    bp.exec(f"def f(x) {{ y = x; for i in range({n}) {{ y = sin(y) * 0.5 + x }}; return y }}")
    x, y, dy = 0.3, 0.3, 1.0
    for _ in range(n):                      # forward-mode derivative by hand
        y, dy = np.sin(y) * 0.5 + x, np.cos(y) * 0.5 * dy + 1.0
    assert float(bp.eval("grad(f)(0.3)")) == pytest.approx(dy, rel=1e-10)


def test_branch_not_taken_contributes_exact_zero(bp):
    assert float(bp.eval("grad(x -> if x > 0 then sqrt(x) else 0)(0)")) == 0.0
    assert float(bp.eval("grad(x -> if x > 0 then log(x) else 0)(0)")) == 0.0
    assert float(bp.eval("grad(x -> if x > 0 then sqrt(x) else 0)(4)")) == 0.25


def test_transforms_compose(bp):
    bp.exec("def f(x) = sum(sin(x) * x^2)")
    x = np.array([0.3, -1.1])
    h = bp.eval("hessian(f)([0.3, -1.1])")
    expected = np.diag((2 - x**2) * np.sin(x) + 4 * x * np.cos(x))
    np.testing.assert_allclose(h, expected, rtol=1e-12)
    np.testing.assert_allclose(bp.eval("jacobian(grad(f))([0.3, -1.1])"), expected, rtol=1e-12)
    np.testing.assert_allclose(bp.eval("hvp(f)([0.3, -1.1], [1, 2])"), expected @ [1, 2], rtol=1e-12)
    np.testing.assert_allclose(bp.eval("grad(grad(x -> x^4))(2)"), 48)


def test_gradient_of_a_record_is_a_record(bp):
    bp.exec("def J(θ) = sum((θ.W @ [1, 1] + θ.b)^2)")
    g = bp.eval("grad(J)({W: [[1, 2], [3, 4]], b: [0.5, -0.5]})")
    assert list(g) == ["W", "b"]
    np.testing.assert_allclose(g["b"], [7, 13])
    np.testing.assert_allclose(g["W"], [[7, 7], [13, 13]])


def test_jacobian_is_one_batched_graph_not_one_copy_per_row(bp):
    """jacobian builds the derivative once with a batch axis: its graph does not grow with n."""
    sizes = []
    for n in (5, 50):
        bp.exec(f"def g{n}(x: [{n}]) = tanh(x) * sum(x^2)")
        sizes.append(sum(1 for node in bp.graph(f"jacobian(g{n})").nodes
                         if node.op not in ("input", "const")))
    assert sizes[0] == sizes[1]
    x = np.linspace(-1, 1, 50)
    bp["x50"] = x
    expected = np.diag(np.tanh(x) * 0 + (1 - np.tanh(x) ** 2) * np.sum(x**2)) \
        + np.outer(np.tanh(x), 2 * x)
    np.testing.assert_allclose(bp.eval("jacobian(g50)(x50)"), expected, rtol=1e-12)


def test_masked_cotangent_through_a_reduction_is_not_summed_twice(bp):
    """where(c, a, b)'s cotangent stays masked only through elementwise rules: a
    reduced operand takes the masked cotangent itself (a bug found by this test)."""
    got = bp.eval("grad(x -> sum(where(x == 0, 5, prod(x) / x)))([1, 2, 3])")
    np.testing.assert_allclose(got, [5, 4, 3])           # d/dx of (6 + 3 + 2) by hand


def test_prod_gradient_is_exact_at_zeros(bp):
    np.testing.assert_allclose(bp.eval("grad(x -> prod(x))([1, 0, 3])"), [0, 3, 0])
    np.testing.assert_allclose(bp.eval("grad(x -> prod(x))([0, 0, 3])"), [0, 0, 0])
    np.testing.assert_allclose(bp.eval("hessian(x -> prod(x))([1, 2, 3])"),
                               [[0, 3, 2], [3, 0, 1], [2, 1, 0]])
    np.testing.assert_allclose(bp.eval("hessian(x -> prod(x))([0, 2, 3])"),
                               [[0, 3, 2], [3, 0, 0], [2, 0, 0]])


def test_printed_gradient_of_an_unannotated_product_with_a_constant(bp):
    assert bp.show("grad(x -> x^2 * pi)") == "x -> 6.283185307179586*x"
    bp.exec("def g(x: []) = x^3")
    assert bp.show("grad(grad(g))") == "x -> 6*x"


def test_masked_cotangent_is_masked_before_a_broadcast_operand_is_reduced(bp):
    # f = 5 + (x0 + x1)/x1 at (0, 2): the branch not taken divides by x0 = 0.
    np.testing.assert_allclose(bp.eval("grad(x -> sum(where(x == 0, 5, sum(x) / x)))([0, 2])"),
                               [0.5, 0.0])


def test_hessian_wrt_several_parameters_has_every_block(bp):
    # f = x² y³: f_xx = 2y³, f_xy = f_yx = 6xy², f_yy = 6x²y; at (1, 2): 16, 24, 12
    bp.exec("def f(x, y) = x^2 * y^3")
    assert bp.eval("hessian(f, wrt=(x, y))(1, 2)") == ((16, 24), (24, 12))
    # hessian = jacobian(grad) (SPEC §5), block by block
    assert bp.eval("jacobian(grad(f, wrt=(x, y)), wrt=(x, y))(1, 2)") == ((16, 24), (24, 12))
    bp.exec("g = " + bp.show("hessian(f, wrt=(x, y))"))
    assert bp.eval("g(1, 2)") == ((16, 24), (24, 12))


def test_hessian_blocks_of_a_vector_and_a_scalar(bp):
    # q = y·|x|²: q_xx = 2y·I, q_xy = 2x, q_yy = 0
    bp.exec("def q(x: [2], y: []) = sum(x^2) * y")
    (hxx, hxy), (hyx, hyy) = bp.eval("hessian(q, wrt=(x, y))([1, 2], 3)")
    np.testing.assert_array_equal(hxx, [[6, 0], [0, 6]])
    np.testing.assert_array_equal(hxy, [2, 4])
    np.testing.assert_array_equal(hyx, [2, 4])
    assert hyy == 0
    bp.exec("h = " + bp.show("hessian(q, wrt=(x, y))"))
    (hxx2, hxy2), (hyx2, hyy2) = bp.eval("h([1, 2], 3)")
    np.testing.assert_array_equal(hxx2, hxx)
    np.testing.assert_array_equal(hxy2, hxy)


def test_jacobian_of_tuple_and_record_outputs(bp):
    # d(x², sin x)/dx = (2x, cos x)
    bp.exec("def g(x) = (x^2, sin(x))")
    a, b = bp.eval("jacobian(g)(1.0)")
    assert a == 2 and b == pytest.approx(np.cos(1.0), rel=1e-15)
    # a record output, two parameters: each field's Jacobian wrt (x, y)
    bp.exec("def h(x, y) = {a: x * y, b: [x, y]}")
    got = bp.eval("jacobian(h, wrt=(0, 1))(2.0, 3.0)")
    assert got["a"] == (3, 2)
    np.testing.assert_array_equal(got["b"][0], [1, 0])
    np.testing.assert_array_equal(got["b"][1], [0, 1])
    # a vector parameter: shapes shape(out) + shape(x)
    bp.exec("def k(x: [3]) = (sum(x), x * 2)")
    s, m = bp.eval("jacobian(k)([1, 2, 3])")
    np.testing.assert_array_equal(s, [1, 1, 1])
    np.testing.assert_array_equal(m, 2 * np.eye(3))
    bp.exec("k2 = " + bp.show("jacobian(k)"))
    s2, m2 = bp.eval("k2([1, 2, 3])")
    np.testing.assert_array_equal(m2, m)


def test_jacobian_of_an_empty_output_is_a_type_error(bp):
    with pytest.raises(BpTypeError) as err:
        bp.eval("jacobian(x -> ())(1)")
    assert "returns a tensor" in err.value.message


def test_printing_a_transform_with_a_wrong_wrt_is_the_error_a_call_gives(bp):
    bp.exec("def f(x, y) = x * y")
    for src in ("grad(f, wrt=z)", "grad(f, wrt=2)", "hessian(grad(f, wrt=-3))", "jvp(f, wrt=q)"):
        with pytest.raises(BpTypeError) as printed:
            bp.show(src)
        with pytest.raises(BpTypeError) as called:
            bp.eval(src + ("(1, 2, 1)" if src.startswith("jvp") else "(1, 2)"))
        assert printed.value.message == called.value.message
        assert printed.value.line == 1 and printed.value.column is not None
