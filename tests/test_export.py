"""export: the generated module, imported in a fresh process with only NumPy,
gives the numbers bp gives (SPEC §7)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import dsl

MLP = """
X = [[0.5, -1, 2], [1.5, 0.25, -0.5], [-1, 1, 0], [0, 0.5, 1]]
Y = one_hot([0, 1, 1, 0], 2)
def loss(W1, b1, W2, b2) {
    h = tanh(X @ W1 + b1)
    return cross_entropy(h @ W2 + b2, Y) + 0.01 * (sum(W1^2) + sum(W2^2))
}
def rosen(x: [3]) = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)
"""


def run_fresh(module_dir, code: str):
    """Run code in a new interpreter that can import only NumPy and the module."""
    script = f"import sys; sys.path.insert(0, {str(module_dir)!r}); " + code
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.fixture
def bp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interp = dsl.Interpreter()
    interp.exec(MLP)
    return interp


def test_export_grad_of_mlp_loss_matches_bp(bp, tmp_path):
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
              "W2": rng.normal(size=(5, 2)), "b2": rng.normal(size=2)}
    for k, v in params.items():
        bp[k + "0"] = v
    bp.exec('export grad(loss, wrt=(W1, b1, W2, b2)) to "mlp_grad.py"', filename=str(tmp_path / "x.bp"))
    ours = bp.eval("grad(loss, wrt=(W1, b1, W2, b2))(W10, b10, W20, b20)")
    args = ", ".join(f"np.array({v.tolist()!r})" for v in params.values())
    theirs = run_fresh(tmp_path, "import numpy as np, json, mlp_grad; "
                       f"print(json.dumps([g.tolist() for g in mlp_grad.grad_loss({args})]))")
    source = (tmp_path / "mlp_grad.py").read_text()
    assert "import numpy as np" in source and "import dsl" not in source
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, np.array(b), rtol=1e-12, atol=1e-14)


def test_export_hessian_of_rosenbrock_matches_bp(bp, tmp_path):
    bp.exec('export hessian(rosen) to "rosen_h.py"', filename=str(tmp_path / "x.bp"))
    x = [1.2, -0.7, 0.4]
    ours = bp.eval(f"hessian(rosen)({x})")
    theirs = run_fresh(tmp_path, "import json, rosen_h; "
                       f"print(json.dumps(rosen_h.hessian_rosen({x}).tolist()))")
    np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-12)
    # and both are the true Hessian (by hand: d²/dx² of the two-term Rosenbrock sum)
    x0, x1, x2 = x
    by_hand = np.array([[2 - 400 * (x1 - x0**2) + 800 * x0**2, -400 * x0, 0],
                        [-400 * x0, 200 + 2 - 400 * (x2 - x1**2) + 800 * x1**2, -400 * x1],
                        [0, -400 * x1, 200]])
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)


def test_export_names_follow_the_expression(bp, tmp_path):
    bp.exec('df = grad(rosen)\nexport df to "a.py"\nexport rosen to "b.py"',
            filename=str(tmp_path / "x.bp"))
    assert "def df(x):" in (tmp_path / "a.py").read_text()
    assert "def rosen(x):" in (tmp_path / "b.py").read_text()
