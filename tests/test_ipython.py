"""The IPython extension, in a real InteractiveShell: %load_ext dsl and %%bp."""
import numpy as np
import pytest

IPython = pytest.importorskip("IPython")


@pytest.fixture(scope="module")
def shell():
    from IPython.testing.globalipapp import get_ipython
    ip = get_ipython()
    ip.run_line_magic("load_ext", "dsl")
    return ip


def run(shell, capsys, cell: str):
    result = shell.run_cell(cell)
    out, err = capsys.readouterr()
    return result, out, err


def test_ipython_cell_prints_and_shows_values(shell, capsys):
    result, out, _ = run(shell, capsys, "%%bp\ndef f(x) = x^2 * sin(x)\nprint f(2)\ngrad(f)\n")
    assert result.success
    assert "3.6371897" in out
    assert "x -> 2*x*sin(x) + x^2*cos(x)" in out


def test_ipython_values_cross_between_python_and_bp(shell, capsys):
    shell.user_ns["W"] = np.array([[1.0, 2.0], [3.0, 4.0]])
    run(shell, capsys, "%bp_set W0 W")
    run(shell, capsys, "%%bp\nv = W0 @ [1, 1]\n")
    result, _, _ = run(shell, capsys, "got = %bp_get v")
    assert result.success
    np.testing.assert_allclose(shell.user_ns["got"], [3.0, 7.0])


def test_ipython_error_cell_shows_the_bp_error_and_the_kernel_lives(shell, capsys):
    result, out, err = run(shell, capsys, "%%bp\nx = 1\ny = x @ [1, 2]\n")
    assert "shape error" in err and "^" in err and "Traceback" not in out + err
    result, out, _ = run(shell, capsys, "%%bp\nprint x + 1\n")
    assert result.success and "2" in out


def test_ipython_graph_displays_its_listing(shell, capsys):
    run(shell, capsys, "%%bp\ndef g(x) = tanh(x)\n")
    result, out, _ = run(shell, capsys, "%bp_graph grad(g)")
    assert result.success and "return" in out and "from grad" in out


def test_ipython_error_fails_the_cell_without_a_traceback(shell, capsys):
    # "Run all" must stop at a cell with a bp error (issue 17)
    result, out, err = run(shell, capsys, "%%bp\nz = [1, 2] @ [[1, 2, 3]]\n")
    assert not result.success
    assert "shape error" in err and "^" in err
    assert "Traceback" not in out + err and "BpShapeError" not in out + err
    result, _, err = run(shell, capsys, "q = %bp_get no_such_name")
    assert not result.success and "name error" in err and "Traceback" not in err


def test_ipython_line_magic_gives_a_value_or_runs_a_statement(shell, capsys):
    run(shell, capsys, "%bp def sq(x) = x^2 * 3")
    result, _, _ = run(shell, capsys, "v = %bp grad(sq)(2)")
    assert result.success and float(shell.user_ns["v"]) == 12.0        # d(3x²)/dx = 6x
    result, out, _ = run(shell, capsys, "%bp print sq(1)")
    assert result.success and out.strip() == "3"
    result, _, err = run(shell, capsys, "%bp sq(")
    assert not result.success and "syntax error" in err and "Traceback" not in err


def test_ipython_values_prints_and_pictures_come_in_cell_order(shell, capsys):
    result, out, _ = run(shell, capsys, "%%bp\n1\nprint 2\n3\n")
    assert result.success and out.split() == ["1", "2", "3"]


# ── rich display: pictures in a notebook, text in a terminal ─────────────

def test_ipython_in_a_terminal_graph_and_plot_stay_text(shell, capsys):
    # the test shell is IPython's terminal shell: what bp prints, even with dot there
    run(shell, capsys, "%%bp\ndef g2(x) = tanh(x)\n")
    result, out, _ = run(shell, capsys, "%%bp\ngraph grad(g2)\n")
    assert result.success and out == _bp_prints("def g2(x) = tanh(x)\ngraph grad(g2)")
    result, out, _ = run(shell, capsys, "%%bp\nplot sin on (0, 3)\n")
    assert result.success and out == _bp_prints("plot sin on (0, 3)") and "sin" in out


def _bp_prints(src: str) -> str:
    import io
    import dsl
    bp = dsl.Interpreter(stdout=io.StringIO())
    bp.exec(src)
    return bp.stdout.getvalue()


@pytest.fixture
def notebook(shell, monkeypatch):
    """The test shell as a notebook frontend sees it: every MIME type shown, and the
    bundles published recorded instead of printed."""
    import dsl.ipython
    monkeypatch.setattr(dsl.ipython, "_terminal", lambda shell: False)
    monkeypatch.setattr(shell.display_formatter, "active_types",
                        list(shell.display_formatter.format_types))
    published = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, **kw: published.append(data))
    return published


def test_ipython_notebook_graph_is_an_svg_picture(shell, capsys, notebook):
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not on PATH")
    run(shell, capsys, "%%bp\ndef g3(x) = x * sin(x)\n")
    result, out, _ = run(shell, capsys, "%%bp\ngraph grad(g3)\n")
    assert result.success and out == ""
    (bundle,) = notebook
    assert bundle["text/plain"] == _bp_prints("def g3(x) = x * sin(x)\ngraph grad(g3)").rstrip("\n")
    import xml.etree.ElementTree as ET
    root = ET.fromstring(bundle["image/svg+xml"])
    ns = "{http://www.w3.org/2000/svg}"
    ops = sorted(g.find(f"{ns}text").text for g in root.iter(f"{ns}g") if g.get("class") == "node")
    # d/dx x sin x = sin x + x cos x: inputs x; sin, cos, mul, add (and x*sin x's own mul)
    assert {"x", "sin", "cos", "add"} <= set(ops) and "mul" in ops


def test_ipython_notebook_graph_without_dot_is_the_listing(shell, capsys, notebook, monkeypatch):
    import dsl.ipython
    monkeypatch.setattr(dsl.ipython.shutil, "which", lambda name: None)
    run(shell, capsys, "%%bp\ndef g4(x) = exp(x)\n")
    result, out, _ = run(shell, capsys, "%%bp\ngraph grad(g4)\n")
    assert result.success and notebook == []
    assert out == _bp_prints("def g4(x) = exp(x)\ngraph grad(g4)")
    g = dsl.ipython._session(shell).graph("grad(g4)")
    assert dsl.ipython.graph_svg(g) is None


def test_ipython_graph_objects_get_the_svg_formatter(shell):
    import dsl.ipython
    from dsl.render import FunctionGraph
    formatter = shell.display_formatter.formatters["image/svg+xml"]
    assert formatter.lookup_by_type(FunctionGraph) is dsl.ipython.graph_svg


def test_ipython_notebook_plot_is_a_png_image(shell, capsys, notebook):
    pytest.importorskip("matplotlib")
    result, out, _ = run(shell, capsys, "%%bp\nplot tanh, cos on (-2, 2)\n")
    assert result.success and out == ""
    (bundle,) = notebook
    import base64
    png = base64.b64decode(bundle["image/png"]) if isinstance(bundle["image/png"], str) \
        else bundle["image/png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tanh" in bundle["text/plain"] and "cos" in bundle["text/plain"]


def test_ipython_notebook_plot_without_matplotlib_is_text(shell, capsys, notebook, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result, out, _ = run(shell, capsys, "%%bp\nplot sin on (0, 3)\n")
    assert result.success and notebook == []
    assert out == _bp_prints("plot sin on (0, 3)")


def test_ipython_a_graph_too_large_to_read_is_its_listing(shell, monkeypatch):
    import shutil
    import dsl.ipython
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not on PATH")
    g = dsl.ipython._session(shell).graph("x -> sum(cumsum(x) * x)")
    monkeypatch.setattr(dsl.ipython, "MAX_PICTURE_NODES", len(g.nodes))
    assert dsl.ipython.graph_svg(g).startswith("<svg")
    monkeypatch.setattr(dsl.ipython, "MAX_PICTURE_NODES", len(g.nodes) - 1)
    assert dsl.ipython.graph_svg(g) is None
