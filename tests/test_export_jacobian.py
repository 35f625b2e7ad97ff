"""export of jacobian and hessian for parameters without annotations (issue 13).

Their shapes are known only at the call, so the module loops over VJPs, one per
output element (`_jacobian_rows`), of two functions it writes for unknown
shapes: the value and its VJP.  Each module is imported in a fresh process with
only NumPy, called at several ranks, and compared with a closed form derived by
hand and with bp's own transform in the session.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

import dsl


def exported(tmp_path, program: str, export: str, name: str, calls: list[str]):
    """Export `export` to m.py, then run each call (Python source over np and the
    exported function f) in one fresh process; their results as nested lists."""
    bp = dsl.Interpreter()
    bp.exec(program)
    bp.exec(f'export {export} to "{tmp_path / "m.py"}"')
    script = (f"import sys, json; sys.path.insert(0, {str(tmp_path)!r}); import numpy as np, m\n"
              f"f = m.{name}\n"
              "def plain(x):\n"
              "    if isinstance(x, tuple): return [plain(y) for y in x]\n"
              "    if isinstance(x, dict): return {k: plain(v) for k, v in x.items()}\n"
              "    return np.asarray(x).tolist()\n"
              f"print(json.dumps([plain(c) for c in [{', '.join(calls)}]]))")
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return bp, json.loads(out.stdout)


def cubes_hessian(x):
    """∂²/∂xᵢ∂xⱼ Σ x³ = 6 xᵢ δᵢⱼ, for x of any rank: shape(x) + shape(x)."""
    x = np.asarray(x, dtype=float)
    return np.diag(6 * x.ravel()).reshape(x.shape + x.shape)


def test_hessian_of_cubes_at_every_rank(tmp_path):
    points = [1.5, [1.0, -2.0], [[1.0, 2.0], [3.0, -0.5]], [[[0.5], [2.0]]]]
    bp, got = exported(tmp_path, "def f(x) = sum(x^3)", "hessian(f)", "hessian_f",
                       [f"f(np.array({p!r}))" for p in points])
    for p, g in zip(points, got):
        np.testing.assert_allclose(g, cubes_hessian(p), rtol=1e-14)
        np.testing.assert_allclose(g, bp.eval(f"hessian(f)({p})"), rtol=1e-14)


def softmax_jacobian(z):
    """∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ - sⱼ) along the last axis, zero across rows."""
    z = np.asarray(z, dtype=float)
    s = np.exp(z - z.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    if z.ndim == 1:
        return np.diag(s) - np.outer(s, s)
    J = np.zeros(z.shape + z.shape)
    for r in range(z.shape[0]):
        J[r, :, r, :] = np.diag(s[r]) - np.outer(s[r], s[r])
    return J


def test_jacobian_of_softmax_for_vectors_and_matrices(tmp_path):
    points = [[0.5, -1.0, 2.0], [[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]]]
    bp, got = exported(tmp_path, "def g(x) = softmax(x)", "jacobian(g)", "jacobian_g",
                       [f"f(np.array({p!r}))" for p in points])
    for p, g in zip(points, got):
        np.testing.assert_allclose(g, softmax_jacobian(p), rtol=1e-12, atol=1e-15)


def test_hessian_blocks_of_two_parameters(tmp_path):
    # f = x² y³: f_xx = 2y³, f_xy = f_yx = 6xy², f_yy = 6x²y
    bp, got = exported(tmp_path, "def k(x, y) = x^2 * y^3", "hessian(k, wrt=(x, y))",
                       "hessian_k", ["f(1.0, 2.0)", "f(np.array([1.0, 2.0]), 3.0)"])
    assert got[0] == [[16, 24], [24, 12]]
    (xx, xy), (yx, yy) = got[1]
    np.testing.assert_allclose(xx, np.diag([54.0, 54.0]))
    np.testing.assert_allclose(xy, [54.0, 108.0])
    np.testing.assert_allclose(yx, [54.0, 108.0])
    np.testing.assert_allclose(yy, 6 * 5.0 * 3)            # Σ 6x²y over x = [1, 2]


def test_jacobian_of_a_tuple_output_and_a_second_parameter(tmp_path):
    bp, got = exported(tmp_path, "def t(x, c) = (c * x^2, sin(x))", "jacobian(t)", "jacobian_t",
                       ["f(np.array([1.0, 2.0]), 3.0)"])
    a, b = got[0]
    np.testing.assert_allclose(a, np.diag([6.0, 12.0]))
    np.testing.assert_allclose(b, np.diag(np.cos([1.0, 2.0])), rtol=1e-15)


@pytest.mark.parametrize("name", ["_jacobian_rows", "np", "u0", "_hessian_f_value", "value"])
def test_hostile_parameter_names(tmp_path, name):
    bp, got = exported(tmp_path, f"def f({name}) = sum({name}^3)", "hessian(f)", "hessian_f",
                       ["f(np.array([1.0, 2.0]))"])
    np.testing.assert_allclose(got[0], np.diag([6.0, 12.0]))


def test_a_global_named_like_the_module_helpers(tmp_path):
    bp, got = exported(tmp_path, "_jacobian_rows = 2\n_tree_leaves = 3\n"
                       "def f(x) = sum(x^3) * _jacobian_rows + _tree_leaves",
                       "hessian(f)", "hessian_f", ["f(np.array([1.0, 2.0]))"])
    np.testing.assert_allclose(got[0], 2 * np.diag([6.0, 12.0]))


def test_export_of_an_unbuildable_jacobian_is_still_a_located_error(tmp_path):
    bp = dsl.Interpreter()
    bp.exec("def f(p) = sum(p.w^2)")                       # a record: no row loop for it
    with pytest.raises(dsl.BpError) as err:
        bp.exec(f'export hessian(f) to "{tmp_path / "m.py"}"')
    assert err.value.line == 1 and err.value.column
