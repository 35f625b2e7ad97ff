"""examples/backprop.ipynb runs (issue 17): nbclient executes every cell in a fresh
kernel of this Python, no cell fails or writes to stderr, and the key outputs are
right: the numbers against NumPy here (Figure 6.10's chain rule, Algorithm 6.4's
backward pass written again in NumPy and checked by finite differences), the graphs
against the node counts of the chain rule, the plot a PNG image, the formulas LaTeX.

The notebook is kept with its outputs (so it reads rendered where it is shown);
`test_the_stored_outputs_are_fresh` fails when they are stale, and
`python tests/test_notebook.py` executes it again and writes it back.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "backprop.ipynb"
SVG = "{http://www.w3.org/2000/svg}"


def execute(nb, workdir: Path):
    """Run every cell of nb in place, in a kernel of sys.executable (a kernelspec of its
    own: not whatever `python3` kernel the machine has registered)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    spec = workdir / "kernels" / "bp-test"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bp test", "language": "python"}))
    km = AsyncKernelManager(kernel_name="bp-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=120, record_timing=False,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return nb


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return execute(nb, tmp_path_factory.mktemp("notebook"))


def cell(nb, first_lines: str):
    (found,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(first_lines)]
    return found


def shown(c) -> list[dict]:
    """The cell's displayed values and results, as mime bundles, in order."""
    return [o.data for o in c.outputs if o.output_type in ("display_data", "execute_result")]


def text(c) -> str:
    """What the cell shows as text: its prints and the plain text of what it displays."""
    parts = []
    for o in c.outputs:
        if o.output_type == "stream":
            parts.append(o.text.rstrip("\n"))
        elif o.output_type in ("display_data", "execute_result"):
            parts.append(o.data.get("text/plain", "").rstrip("\n"))
    return "\n".join(parts)


def svg_nodes(svg: str) -> list[str]:
    """The op (the first text line) of every node of a Graphviz SVG picture."""
    root = ET.fromstring(svg)
    return [g.find(f"{SVG}text").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


# ── references, by NumPy ────────────────────────────────────────────────

def chain(w):
    """Figure 6.10: z = tanh(tanh(tanh(w))) and dz/dw = f'(y) f'(x) f'(w) by hand."""
    x = np.tanh(w)
    y = np.tanh(x)
    z = np.tanh(y)
    return z, (1 - z**2) * (1 - y**2) * (1 - x**2)


def mlp_problem():
    """examples/backprop_mlp.bp's data and parameters (bp's randn(…, seed=k) is NumPy's
    default_rng(k).standard_normal)."""
    rn = lambda seed, *shape: np.random.default_rng(seed).standard_normal(shape)
    X = rn(1, 2, 8)
    y = np.tanh(X[0] * X[1]).reshape(1, 8)
    θ = {"W1": 0.5 * rn(2, 4, 2), "b1": 0.1 * rn(3, 4, 1), "W2": 0.5 * rn(4, 4, 4),
         "b2": 0.1 * rn(5, 4, 1), "W3": 0.5 * rn(6, 1, 4), "b3": 0.1 * rn(7, 1, 1)}
    return X, y, θ, 0.01


def J(θ, X, y, lam):
    h1 = np.tanh(θ["b1"] + θ["W1"] @ X)
    h2 = np.tanh(θ["b2"] + θ["W2"] @ h1)
    yhat = np.tanh(θ["b3"] + θ["W3"] @ h2)
    return np.mean((yhat - y) ** 2) + lam * sum(np.sum(θ[k] ** 2) for k in ("W1", "W2", "W3"))


def backprop(θ, X, y, lam):
    """Algorithm 6.4 in NumPy: the gradient of J on every parameter."""
    hs, As = [X], []
    for k in (1, 2, 3):
        As.append(θ[f"b{k}"] + θ[f"W{k}"] @ hs[-1])
        hs.append(np.tanh(As[-1]))
    g = 2 * (hs[-1] - y) / y.size
    grads = {}
    for k in (3, 2, 1):
        g = g * (1 - np.tanh(As[k - 1]) ** 2)
        grads[f"b{k}"] = g.sum(axis=1, keepdims=True)
        grads[f"W{k}"] = g @ hs[k - 1].T + lam * 2 * θ[f"W{k}"]
        g = θ[f"W{k}"].T @ g
    return grads


def test_the_numpy_reference_is_the_gradient():
    X, y, θ, lam = mlp_problem()
    grads, h = backprop(θ, X, y, lam), 1e-6
    for name, p in θ.items():
        for i in np.ndindex(p.shape):
            up = {**θ, name: p.copy()}
            down = {**θ, name: p.copy()}
            up[name][i] += h
            down[name][i] -= h
            fd = (J(up, X, y, lam) - J(down, X, y, lam)) / (2 * h)
            assert abs(fd - grads[name][i]) < 1e-8


# ── the notebook ────────────────────────────────────────────────────────

def test_every_cell_runs_without_an_error(ran):
    for c in ran.cells:
        if c.cell_type != "code":
            continue
        assert c.outputs or c.source.startswith(("%load_ext", "import")), c.source
        for o in c.outputs:
            assert o.output_type != "error", c.source
            assert not (o.output_type == "stream" and o.name == "stderr"), (c.source, o.text)


def test_figure_6_10_values_and_math(ran):
    value, formula = shown(cell(ran, "%%bp\ndef f(w) = tanh(w)"))
    assert float(value["text/plain"]) == pytest.approx(chain(0.5)[0], rel=1e-7)
    assert formula["text/plain"].startswith("w -> ")
    assert formula["text/latex"].startswith("$\\displaystyle ") and "\\tanh" in formula["text/latex"]
    out = text(cell(ran, "%%bp\nw = 0.5"))
    match = re.fullmatch(r"grad\(z\)\(0\.5\) = (\S+)  by hand: (\S+)", out)
    assert [float(v) for v in match.groups()] == pytest.approx([chain(0.5)[1]] * 2, rel=1e-7)


def test_figure_6_10_graph(ran):
    # The forward chain is three tanh; the derivative adds, per factor 1 - u², a square
    # and a subtraction (3 of each) and two products: 8 nodes, all marked ∂.
    c = cell(ran, "%%bp\ngraph grad(z)")
    listing = text(c).splitlines()
    assert sum("= tanh(" in line for line in listing) == 3
    assert sum(line.rstrip().endswith("∂") for line in listing) == 8
    pictures = [d["image/svg+xml"] for d in shown(c) if "image/svg+xml" in d]
    if shutil.which("dot") is None:
        assert pictures == []                  # the listing, as bp prints it
        return
    (svg,) = pictures
    ops = svg_nodes(svg)
    assert ops.count("tanh") == 3
    assert sorted(o for o in ops if o in ("pow", "sub", "mul")) == ["mul"] * 2 + ["pow"] * 3 + ["sub"] * 3
    assert sorted(o for o in ops if o not in ("tanh", "pow", "sub", "mul")) == ["1", "2", "w"]


def test_the_plot_is_an_image(ran):
    pytest.importorskip("matplotlib")
    c = cell(ran, "%%bp\nplot tanh")
    (bundle,) = shown(c)
    import base64
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (770, 462)      # 7 x 4.2 inches at 110 dpi
    assert not [o for o in c.outputs if o.output_type == "stream"]


def test_the_derivative_in_python(ran):
    (fn,) = shown(cell(ran, "import numpy as np\ndz = %bp grad(z)"))
    assert fn["text/plain"].startswith("<bp function w -> ") and "\\tanh" in fn["text/latex"]
    (values,) = shown(cell(ran, "[float(dz(w))"))
    ws = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(ast.literal_eval(values["text/plain"]), chain(ws)[1], rtol=1e-14)


def test_algorithm_6_4(ran):
    X, y, θ, lam = mlp_problem()
    (cost,) = shown(cell(ran, "%%bp\nX = randn(2, 8, seed=1)"))
    assert float(cost["text/plain"]) == pytest.approx(J(θ, X, y, lam), rel=1e-7)
    (formula,) = shown(cell(ran, "%%bp\ndef layer("))
    assert "\\tanh" in formula["text/latex"] and formula["text/plain"].startswith("(x, W1, b1, w2) -> ")
    # the layer's gradient graph: tanh' of the forward tanh (a square, w2*…, a
    # subtraction) and the outer product with x: 4 nodes added
    listing = text(cell(ran, "%%bp\ngraph grad(layer")).splitlines()
    assert sum(line.rstrip().endswith("∂") for line in listing) == 4
    assert any("outer(" in line for line in listing)
    out = text(cell(ran, "%%bp\nG = grad(J)(θ)"))
    assert out.startswith("max |grad - Algorithm 6.4| = ") and float(out.split("= ")[1]) < 1e-12
    (norms,) = shown(cell(ran, "G = %bp grad(J)(θ)"))
    want = {k: float(np.linalg.norm(g)) for k, g in backprop(θ, X, y, lam).items()}
    got = ast.literal_eval(norms["text/plain"])
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-10)


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def assert_same_text(old: str, new: str) -> None:
    """The same text, its numbers within 1e-12 relative: the last digit of a float may
    differ between machines (BLAS kernels, SIMD paths) and between graphs of the same
    derivative, nothing else may; rounding residue (a gradient minus the same gradient
    by hand: 0 or 3e-17) is below 1e-14 either way."""
    stale = "stale outputs: run `python tests/test_notebook.py`"
    assert NUMBER.sub("#", old) == NUMBER.sub("#", new), stale
    for a, b in zip(NUMBER.findall(old), NUMBER.findall(new)):
        assert float(b) == pytest.approx(float(a), rel=1e-12, abs=1e-14), stale


def test_the_stored_outputs_are_fresh(ran):
    """The outputs kept in the file are what it shows when run (as text: pictures differ
    between Graphviz and matplotlib versions; a plot's text between plotext's)."""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in stored.cells] == [c.source for c in ran.cells]
    for old, new in zip(stored.cells, ran.cells):
        if old.cell_type != "code" or "plot " in old.source:
            continue
        assert_same_text(text(old), text(new))
        latex = lambda c: [d["text/latex"] for d in shown(c) if "text/latex" in d]
        assert latex(old) == latex(new)


if __name__ == "__main__":                # write the notebook back with fresh outputs
    import tempfile
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        execute(nb, Path(tmp))
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
