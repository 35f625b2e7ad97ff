"""Printed derivatives of @, dot, inv, det and solve are right for every rank (issue 13, A).

A parameter without annotation has a shape, and a rank, known only at call time.
The derivative rules of the linear algebra ops depend on rank (a vector operand of
@ is a row or a column, a vector b of solve is one vector for a whole stack of A), so
at an unknown rank they build rank-generic nodes (`matmul_vjp`, `swapaxes`) instead
of assuming matrices.  Each test here prints a derivative of an unannotated function,
reads the text back into a fresh session as `g = <text>`, and evaluates it at shapes
of several ranks, against central finite differences of a NumPy version of the
function (or exact NumPy formulas for an inner derivative), never against bp's own
derivative.  Matrices are 2I + small noise, so inv/det/solve are well conditioned.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import dsl
from dsl import ops, shapes
from dsl.autodiff import jvp_graph, vjp_graph
from dsl.evaluate import Plan
from dsl.graph import make_input

TOL = 1e-6


# ── helpers ──────────────────────────────────────────────────────────────

def _rng(label: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(label.encode()))


def uniform(shape, rng):
    return rng.uniform(-1.0, 1.0, shape)


def matrix(shape, rng):
    """2I + noise, for every matrix of a stack: well conditioned."""
    n = shape[-1]
    return 2.0 * np.broadcast_to(np.eye(n), shape) + rng.uniform(-0.3, 0.3, shape)


def printed(defs: str, expr: str) -> str:
    bp = dsl.Interpreter()
    bp.exec(defs)
    return bp.show(expr)


def read_back(text: str):
    """The printed text bound to g in a fresh session, as a Python callable."""
    bp = dsl.Interpreter()
    bp.exec(f"g = {text}")
    return bp.function("g")


def fd_grad(fn, args, i, h=1e-6):
    """Central differences of the scalar fn(*args) with respect to args[i]."""
    x = np.array(args[i], dtype=float)
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        step = h * max(1.0, abs(x[idx]))
        hi, lo = x.copy(), x.copy()
        hi[idx] += step
        lo[idx] -= step
        a_hi, a_lo = list(args), list(args)
        a_hi[i], a_lo[i] = hi, lo
        out[idx] = (float(fn(*a_hi)) - float(fn(*a_lo))) / (2 * step)
    return out


def fd_along(fn, args, i, v, h=1e-6):
    """d/dt fn(args with args[i] + t v) at 0, by central differences (fn may be a tensor)."""
    a_hi, a_lo = list(args), list(args)
    a_hi[i] = args[i] + h * v
    a_lo[i] = args[i] - h * v
    return (np.asarray(fn(*a_hi)) - np.asarray(fn(*a_lo))) / (2 * h)


def assert_close(got, want, what=""):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
    err = float(np.max(np.abs(got - want), initial=0.0))
    assert err <= TOL * scale, f"{what}: max error {err:.2e}\ngot\n{got}\nexpected\n{want}"


def check_printed_gradients(defs, name, params, np_fn, points, label):
    """grad(f), grad(f, wrt=p) for each parameter and grad(f, wrt=(all)), each printed
    once (shape-polymorphic), read back, and evaluated at every point."""
    texts = {(0,): printed(defs, f"grad({name})")}
    for i, p in enumerate(params):
        texts[(i,)] = printed(defs, f"grad({name}, wrt={p})")
    texts[tuple(range(len(params)))] = printed(defs, f"grad({name}, wrt=({', '.join(params)}))")
    for wrt, text in texts.items():
        assert "axes=(1, 0)" not in text, f"a rank-2 transpose in a rank-generic derivative: {text}"
        g = read_back(text)
        for args in points:
            got = g(*args)
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(wrt)
            for i, gi in zip(wrt, got):
                assert_close(gi, fd_grad(np_fn, args, i),
                             f"{label}: {text} wrt {params[i]} at shapes {[np.shape(a) for a in args]}")


# ── @ and dot, every rank combination NumPy accepts ──────────────────────

A_SHAPES = {1: (3,), 2: (2, 3), 3: (2, 2, 3)}
B_SHAPES = {1: (3,), 2: (3, 4), 3: (2, 3, 4)}
MATMUL_SHAPES = [(A_SHAPES[ra], B_SHAPES[rb]) for ra in (1, 2, 3) for rb in (1, 2, 3)] + [
    ((1, 2, 3), (2, 3, 4)),            # a's batch axis of size 1 broadcasts
    ((2, 2, 3), (1, 3, 4)),            # b's does
    ((4, 1, 2, 3), (3, 3, 2)),         # ranks 4 and 3, batch axes broadcast both ways
]


def _matmul_points(label):
    rng = _rng(label)
    return [(uniform(sa, rng), uniform(sb, rng)) for sa, sb in MATMUL_SHAPES]


def test_matmul_printed_gradients_every_rank():
    check_printed_gradients("def f(a, b) = sum(tanh(a @ b))", "f", ["a", "b"],
                            lambda a, b: np.sum(np.tanh(a @ b)), _matmul_points("matmul"),
                            "a @ b")


def test_dot_printed_gradients_every_rank():
    check_printed_gradients("def f(a, b) = sum(sin(dot(a, b)))", "f", ["a", "b"],
                            lambda a, b: np.sum(np.sin(np.matmul(a, b))), _matmul_points("dot"),
                            "dot")


def test_matmul_with_a_known_operand_and_an_unknown_one():
    """W annotated, x not: the rank of x still decides the form."""
    defs = "def f(W: [2, 3], x) = sum(tanh(W @ x))"
    rng = _rng("half-known")
    W = uniform((2, 3), rng)
    for text, i in [(printed(defs, "grad(f)"), 0), (printed(defs, "grad(f, wrt=x)"), 1)]:
        g = read_back(text)
        for xs in [(3,), (3, 4), (5, 3, 2)]:
            x = uniform(xs, rng)
            assert_close(g(W, x), fd_grad(lambda W, x: np.sum(np.tanh(W @ x)), (W, x), i),
                         f"{text} at x {xs}")


def _matmul_cotangents(a, b, g):
    """Exact cotangents of a and b in a @ b for the output cotangent g, from the
    definition: the product is linear in each operand, so ā_i = ⟨g, e_i @ b⟩."""
    ga = np.zeros(np.shape(a))
    for idx in np.ndindex(*ga.shape):
        e = np.zeros(np.shape(a))
        e[idx] = 1.0
        ga[idx] = np.sum(g * np.matmul(e, b))
    gb = np.zeros(np.shape(b))
    for idx in np.ndindex(*gb.shape):
        e = np.zeros(np.shape(b))
        e[idx] = 1.0
        gb[idx] = np.sum(g * np.matmul(a, e))
    return ga, gb


def test_matmul_printed_second_derivatives_every_rank():
    """grad of a function of the gradient: the VJP and JVP of matmul_vjp itself."""
    defs = "def f(a, b) = sum(tanh(a @ b))\ndef q(a, b) = sum(grad(f)(a, b)^2)"

    def q(a, b):
        ga, _ = _matmul_cotangents(a, b, 1 - np.tanh(a @ b) ** 2)
        return np.sum(ga ** 2)
    points = [p for p in _matmul_points("second") if p[0].size * p[1].size <= 200]
    check_printed_gradients(defs, "q", ["a", "b"], q, points, "grad of grad(a @ b)")


def test_matmul_printed_hvp_every_rank():
    text = printed("def f(a, b) = sum(tanh(a @ b))", "hvp(f)")
    g = read_back(text)

    def grad_a(a, b):
        return _matmul_cotangents(a, b, 1 - np.tanh(a @ b) ** 2)[0]
    rng = _rng("hvp")
    for a, b in _matmul_points("hvp"):
        v = uniform(a.shape, rng)
        assert_close(g(a, b, v), fd_along(grad_a, (a, b), 0, v), f"{text} at {a.shape}, {b.shape}")


# ── inv and det, matrices and stacks ─────────────────────────────────────

SQUARE_SHAPES = [(3, 3), (1, 1), (2, 3, 3), (2, 1, 2, 2)]


def _square_points(label):
    rng = _rng(label)
    return [(matrix(s, rng),) for s in SQUARE_SHAPES]


def test_inv_printed_gradient_matrices_and_stacks():
    check_printed_gradients("def f(x) = sum(sin(inv(x)))", "f", ["x"],
                            lambda x: np.sum(np.sin(np.linalg.inv(x))), _square_points("inv"), "inv")


def test_det_printed_gradient_matrices_and_stacks():
    check_printed_gradients("def f(x) = sum(det(x))", "f", ["x"],
                            lambda x: np.sum(np.linalg.det(x)), _square_points("det"), "det")


def test_det_of_a_matrix_alone():
    check_printed_gradients("def f(x) = det(x)", "f", ["x"], np.linalg.det,
                            _square_points("det1")[:2], "det")


def _inv_t(x):
    return np.swapaxes(np.linalg.inv(x), -1, -2)


def test_inv_and_det_printed_second_derivatives():
    """Against NumPy's formulas for the inner gradients: det(A)·A⁻ᵀ and -A⁻ᵀ cos(A⁻¹) A⁻ᵀ."""
    check_printed_gradients("def f(x) = sum(det(x))\ndef q(x) = sum(grad(f)(x)^2)", "q", ["x"],
                            lambda x: np.sum((np.linalg.det(x)[..., None, None] * _inv_t(x)) ** 2),
                            _square_points("det2"), "grad of grad(det)")
    check_printed_gradients("def f(x) = sum(sin(inv(x)))\ndef q(x) = sum(grad(f)(x)^2)", "q", ["x"],
                            lambda x: np.sum((_inv_t(x) @ np.cos(np.linalg.inv(x)) @ _inv_t(x)) ** 2),
                            _square_points("inv2"), "grad of grad(inv)")


def test_inv_and_det_printed_jvp():
    rng = _rng("jvp-inv")
    for defs, ref in [("def f(x) = sin(inv(x))", lambda x: np.sin(np.linalg.inv(x))),
                      ("def f(x) = det(x)", np.linalg.det)]:
        g = read_back(printed(defs, "jvp(f)"))
        for (x,) in _square_points("jvp"):
            v = uniform(x.shape, rng)
            value, tangent = g(x, v)
            assert_close(value, ref(x), defs)
            assert_close(tangent, fd_along(ref, (x,), 0, v), f"{defs}: jvp at {x.shape}")


# ── solve: vector and matrix b, matrix and stacked A ─────────────────────

def ref_solve(A, b):
    """NumPy 2's rule, written out: b is one vector when it has one axis, else a stack
    of matrices whose batch axes broadcast with A's."""
    if b.ndim == 1:
        col = np.broadcast_to(b[:, None], A.shape[:-1] + (1,))
        return np.linalg.solve(A, col)[..., 0]
    batch = np.broadcast_shapes(A.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(A, batch + A.shape[-2:]),
                           np.broadcast_to(b, batch + b.shape[-2:]))


SOLVE_SHAPES = [((3, 3), (3,)), ((3, 3), (3, 2)), ((3, 3), (2, 3, 2)),
                ((2, 3, 3), (3,)), ((2, 3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2)),
                ((3, 3, 3), (3, 3)), ((2, 1, 3, 3), (4, 3, 1))]


def _solve_points(label):
    rng = _rng(label)
    return [(matrix(sa, rng), uniform(sb, rng)) for sa, sb in SOLVE_SHAPES]


def test_solve_printed_gradients_every_rank():
    check_printed_gradients("def f(A, b) = sum(tanh(solve(A, b)))", "f", ["A", "b"],
                            lambda A, b: np.sum(np.tanh(ref_solve(A, b))), _solve_points("solve"),
                            "solve")


def test_solve_printed_jvp_every_rank():
    rng = _rng("jvp-solve")
    for p, wrt in [("A", ""), ("b", ", wrt=b")]:
        text = printed("def f(A, b) = tanh(solve(A, b))", f"jvp(f{wrt})")
        g = read_back(text)
        i = ["A", "b"].index(p)
        for A, b in _solve_points("jvp"):
            v = uniform((A, b)[i].shape, rng)
            value, tangent = g(A, b, v)
            assert_close(value, np.tanh(ref_solve(A, b)), text)
            assert_close(tangent, fd_along(lambda A, b: np.tanh(ref_solve(A, b)), (A, b), i, v),
                         f"{text} at {A.shape}, {b.shape}")


def test_solve_printed_second_derivative():
    """grad of sum(grad(f, wrt=b)^2): the derivative of the rank-generic b̄."""
    defs = "def f(A, b) = sum(tanh(solve(A, b)))\ndef q(A, b) = sum(grad(f, wrt=b)(A, b)^2)"

    def q(A, b):
        # b̄ of sum(tanh(x)) is ⟨1 - tanh(x)², A⁻¹ e_i⟩ per element of b: exact, by linearity
        c = 1 - np.tanh(ref_solve(A, b)) ** 2
        gb = np.zeros(b.shape)
        for idx in np.ndindex(*b.shape):
            e = np.zeros(b.shape)
            e[idx] = 1.0
            gb[idx] = np.sum(c * ref_solve(A, e))
        return np.sum(gb ** 2)
    check_printed_gradients(defs, "q", ["A", "b"], q, _solve_points("solve2")[:6], "grad of grad(solve)")


def test_solve_with_known_vector_b_and_unknown_A():
    """b: [3] is one vector for every matrix of a stack of A, whatever A's rank."""
    defs = "def f(A, b: [3]) = sum(tanh(solve(A, b)))"
    rng = _rng("known-b")
    b = uniform((3,), rng)
    for expr, i in [("grad(f)", 0), ("grad(f, wrt=b)", 1)]:
        g = read_back(printed(defs, expr))
        for s in [(3, 3), (2, 3, 3), (2, 2, 3, 3)]:
            A = matrix(s, rng)
            assert_close(g(A, b), fd_grad(lambda A, b: np.sum(np.tanh(ref_solve(A, b))), (A, b), i),
                         f"{expr} at A {s}")


# ── the reproductions of the issue ───────────────────────────────────────

def test_issue_x_at_x_is_right_for_a_vector():
    text = printed("def f(x) = x @ x", "grad(f)")
    assert "transpose(x, axes=(1, 0))" not in text
    x = np.array([0.5, -1.0, 2.0])
    assert_close(read_back(text)(x), fd_grad(lambda x: x @ x, (x,), 0), text)


def test_issue_layer_gradient_pasted_back_is_right_for_every_shape():
    defs = "def layer(W, x) = sum(tanh(W @ x))"
    text = printed(defs, "grad(layer)")
    g = read_back(text)
    rng = _rng("layer")
    for ws, xs in [((2, 3), (3,)), ((4, 2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 5))]:
        W, x = uniform(ws, rng), uniform(xs, rng)
        got = g(W, x)
        assert_close(got, fd_grad(lambda W, x: np.sum(np.tanh(W @ x)), (W, x), 0), f"{text} at {ws}, {xs}")
        if (ws, xs) == ((2, 3), (3,)):     # the issue's own case: outer(1 - tanh(W @ x)^2, x)
            assert_close(got, np.outer(1 - np.tanh(W @ x) ** 2, x), text)


def test_issue_det_and_inv_of_a_stack():
    x = matrix((2, 3, 3), _rng("stack"))
    for defs, fn in [("def f(x) = sum(det(x))", lambda x: np.sum(np.linalg.det(x))),
                     ("def f(x) = sum(inv(x))", lambda x: np.sum(np.linalg.inv(x)))]:
        text = printed(defs, "grad(f)")
        assert_close(read_back(text)(x), fd_grad(fn, (x,), 0), text)


def test_issue_solve_vector_and_matrix_b_matrix_and_stacked_A():
    rng = _rng("issue-solve")
    text_A = printed("def s(A, b) = sum(solve(A, b))", "grad(s)")
    text_b = printed("def s(A, b) = sum(solve(A, b))", "grad(s, wrt=b)")
    for sa in [(3, 3), (2, 3, 3)]:
        for sb in [(3,), (3, 2)]:
            A, b = matrix(sa, rng), uniform(sb, rng)
            fn = lambda A, b: np.sum(ref_solve(A, b))  # noqa: E731
            assert_close(read_back(text_A)(A, b), fd_grad(fn, (A, b), 0), f"{text_A} at {sa}, {sb}")
            assert_close(read_back(text_b)(A, b), fd_grad(fn, (A, b), 1), f"{text_b} at {sa}, {sb}")


# ── known ranks keep the matrix-calculus forms ───────────────────────────

def test_known_ranks_print_outer_and_transpose():
    defs = "def layer(W: [2, 3], x: [3]) = sum(tanh(W @ x))"
    wrt_W, wrt_x = printed(defs, "grad(layer)"), printed(defs, "grad(layer, wrt=x)")
    assert "outer(" in wrt_W and "matmul_vjp" not in wrt_W, wrt_W
    assert "W' @" in wrt_x and "matmul_vjp" not in wrt_x, wrt_x
    for defs in ["def f(x: [3, 3]) = det(x)", "def f(x: [3, 3]) = sum(inv(x))",
                 "def f(A: [3, 3], b: [3]) = sum(solve(A, b))", "def f(A: [2, 3, 3], b: [3, 2]) = sum(solve(A, b))",
                 "def f(a: [2, 2, 3], b: [3]) = sum(a @ b)"]:
        for expr in ["grad(f)", "hessian(f)"] if "det" in defs else ["grad(f)"]:
            text = printed(defs, expr)
            assert "swapaxes" not in text and "matmul_vjp" not in text, (defs, text)
    assert "inv(x)'" in printed("def f(x: [3, 3]) = det(x)", "grad(f)")


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES)
def test_matmul_vjp_folds_at_known_shapes(sa, sb):
    """Evaluation specialises to concrete shapes, where no rank-generic node is left."""
    a, b = make_input("a", sa), make_input("b", sb)
    out = ops.apply("matmul", [a, b])
    g = make_input("g", out.shape)
    for wrt in (0, 1):
        node = ops.apply("matmul_vjp", [a, b, g], {"wrt": wrt})
        assert node.op != "matmul_vjp" and node.shape == (sa, sb)[wrt]


def test_swapaxes_folds_to_a_transpose_at_a_known_rank():
    x = make_input("x", (2, 3))
    node = ops.apply("swapaxes", [x], {"axis1": -1, "axis2": -2})
    assert node.op == "transpose" and node.shape == (3, 2)
    assert ops.apply("swapaxes", [x], {"axis1": 1, "axis2": 1}) is x
    s = make_input("s", shapes.SymShape.of("s"))
    twice = ops.apply("swapaxes", [ops.apply("swapaxes", [s], {"axis1": -1, "axis2": -2})],
                      {"axis1": -2, "axis2": -1})
    assert twice is s


def test_swapaxes_builtin():
    bp = dsl.Interpreter()
    x = np.arange(24.0).reshape(2, 3, 4)
    bp["x"] = x
    np.testing.assert_array_equal(bp.eval("swapaxes(x, -1, -2)"), np.swapaxes(x, -1, -2))
    np.testing.assert_array_equal(bp.eval("swapaxes(x, 0, 2)"), np.swapaxes(x, 0, 2))
    text = bp.show("grad(y -> sum(swapaxes(y, 0, -1) * [1, 2]))")
    assert_close(read_back(text)(np.ones((2, 3, 2))), np.broadcast_to(np.array([1.0, 2.0])[:, None, None], (2, 3, 2)))
    with pytest.raises(dsl.BpShapeError):
        bp.eval("swapaxes([1, 2], -1, -2)")


def test_matmul_vjp_builtin_checks_its_arguments():
    bp = dsl.Interpreter()
    with pytest.raises(dsl.BpShapeError):
        bp.eval("matmul_vjp(ones(2, 3), ones(3), ones(3))")
    with pytest.raises(dsl.BpValueError):
        bp.eval("matmul_vjp(ones(2, 3), ones(3), ones(2), wrt=2)")


# ── the rank-generic ops themselves, unfolded (symbolic inputs) ──────────

def _symbolic(names):
    return [make_input(n, shapes.SymShape.of(n)) for n in names]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES)
def test_matmul_vjp_kernel_and_rules_at_unknown_rank(sa, sb):
    """The node built at unknown shapes (what a printed derivative holds), run on
    arrays: its value, its VJP and its JVP against exact cotangents and finite
    differences."""
    rng = _rng(f"unfolded{sa}{sb}")
    a_val, b_val = uniform(sa, rng), uniform(sb, rng)
    g_val = uniform(np.matmul(a_val, b_val).shape, rng)
    vals = [a_val, b_val, g_val]
    a, b, g = ins = _symbolic(["a", "b", "g"])
    for wrt in (0, 1):
        node = ops.apply("matmul_vjp", ins, {"wrt": wrt})
        assert node.op == "matmul_vjp" and node.shape == ins[wrt].shape
        y, = Plan(ins, [node]).run(vals)
        assert_close(y, _matmul_cotangents(a_val, b_val, g_val)[wrt], f"matmul_vjp wrt={wrt}")

        def value(*xs):
            return Plan(ins, [node]).run(list(xs))[0]
        u_val = uniform(y.shape, rng)
        u = ops.const(u_val)
        grads = vjp_graph([ops.apply("sum", [ops.apply("mul", [u, node])], {"axis": None, "keepdims": False})],
                          [ops.const(1.0)], ins)
        got = Plan(ins, grads).run(vals)
        for i in range(3):
            want = fd_grad(lambda *xs: np.sum(u_val * value(*xs)), vals, i)
            assert_close(got[i], want, f"vjp of matmul_vjp wrt={wrt}, input {i}")
        dirs = [uniform(v.shape, rng) for v in vals]
        tangent, = jvp_graph([node], ins, [ops.const(d) for d in dirs])
        got_t, = Plan(ins, [tangent]).run(vals)
        want_t = sum(fd_along(value, vals, i, dirs[i]) for i in range(3))
        assert_close(got_t, want_t, f"jvp of matmul_vjp wrt={wrt}")


def test_swapaxes_rules_at_unknown_rank():
    x, = ins = _symbolic(["x"])
    node = ops.apply("swapaxes", [x], {"axis1": 0, "axis2": -1})
    rng = _rng("swap")
    for s in [(2, 3), (2, 3, 4)]:
        xv = uniform(s, rng)
        np.testing.assert_array_equal(Plan(ins, [node]).run([xv])[0], np.swapaxes(xv, 0, -1))
        u = uniform(np.swapaxes(xv, 0, -1).shape, rng)
        grad, = vjp_graph([ops.apply("sum", [ops.apply("mul", [ops.const(u), node])],
                                     {"axis": None, "keepdims": False})], [ops.const(1.0)], ins)
        np.testing.assert_allclose(Plan(ins, [grad]).run([xv])[0], np.swapaxes(u, 0, -1))


# ── batching rules (one graph for a Jacobian) ────────────────────────────

def test_batching_rules_of_the_rank_generic_ops():
    """Both ops fold at known shapes, and batching needs known shapes, so their rules
    are for a graph that kept one: built here with graph.intern, past the fold."""
    from dsl import batching, graph
    rng = _rng("batching")
    m, batched = 3, 0
    for sa, sb in MATMUL_SHAPES:
        a_val, b_val = uniform(sa, rng), uniform(sb, rng)
        so = np.matmul(a_val, b_val).shape
        a, b, g = make_input("a", sa), make_input("b", sb), make_input("g", so)
        for wrt in (0, 1):
            node = graph.intern("matmul_vjp", (a, b, g), (("wrt", wrt),), (sa, sb)[wrt])
            for k, seed in enumerate((a, b, g)):
                seeds = uniform((m,) + seed.shape, rng)
                out = batching.batch([node], seed, ops.const(seeds))
                if out is None:    # an op of the known-rank form declines (outer, vec@batch)
                    continue
                assert out[0].shape == (m,) + node.shape
                batched += 1
                vals = [a_val, b_val, uniform(so, rng)]
                got, = Plan([a, b, g], out).run(vals)
                for j in range(m):
                    vj = list(vals)
                    vj[k] = seeds[j]
                    assert_close(got[j], _matmul_cotangents(*vj)[wrt], f"batched matmul_vjp {sa} {sb}")
    assert batched >= 20
    x = make_input("x", (2, 3, 4))
    node = graph.intern("swapaxes", (x,), (("axis1", -1), ("axis2", 0)), (4, 3, 2))
    seeds = uniform((m, 2, 3, 4), rng)
    out = batching.batch([node], x, ops.const(seeds))
    np.testing.assert_array_equal(Plan([x], out).run([seeds[0]])[0], np.swapaxes(seeds, -1, 1))


# ── outer flattens its operands (np.outer), whatever their ranks ─────────

def test_outer_printed_gradients_every_rank():
    rng = _rng("outer")
    shapes_ = [(), (3,), (2, 3), (2, 1, 2)]
    points = [(uniform(sa, rng), uniform(sb, rng)) for sa in shapes_ for sb in shapes_[:3]]
    check_printed_gradients("def f(a, b) = sum(sin(outer(a, b)) * outer(a, b))", "f", ["a", "b"],
                            lambda a, b: np.sum(np.sin(np.outer(a, b)) * np.outer(a, b)),
                            points, "outer")
