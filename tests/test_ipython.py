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
