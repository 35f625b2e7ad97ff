"""plot (SPEC §7): terminal plots with a legend, image files, and a clean error without the extra."""
import io
import sys

import numpy as np
import pytest

import dsl


def test_plot_terminal_draws_each_function_with_a_legend():
    pytest.importorskip("plotext")
    bp = dsl.Interpreter(stdout=io.StringIO())
    bp.exec("plot tanh, diff(tanh) on (-3, 3)")
    text = bp.stdout.getvalue()
    assert "tanh" in text and "diff(tanh)" in text
    assert "\x1b[" not in text                      # no colour codes into a non-terminal
    assert len(text.splitlines()) >= 15


def test_plot_of_a_vector():
    pytest.importorskip("plotext")
    bp = dsl.Interpreter(stdout=io.StringIO())
    bp.exec("losses = [4, 2, 1, 0.5]\nplot losses")
    assert "losses" in bp.stdout.getvalue()


def test_plot_to_png_writes_a_picture(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg
    bp = dsl.Interpreter()
    target = tmp_path / "tanh.png"
    bp.exec(f'plot tanh, diff(tanh) on (-3, 3) to "{target}"')
    pixels = mpimg.imread(target)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert np.ptp(pixels[..., :3]) > 0.5                    # not blank: dark lines on white
    assert not list(tmp_path.glob(".*tmp"))                 # the temporary file is gone


def test_plot_without_plotext_draws_in_plain_characters(monkeypatch):
    # issue 17: `plot` works on a first install (examples/xor.bp plots its losses)
    monkeypatch.setitem(sys.modules, "plotext", None)       # as if not installed
    bp = dsl.Interpreter(stdout=io.StringIO())
    bp.exec("losses = [4, 2, 1, 0.5]\nplot losses\nplot sin, cos on (0, 3)")
    lines = bp.stdout.getvalue().splitlines()
    first = lines[:23]                                      # 20 rows, the axis, the x range, the legend
    assert first[0] == "  4 |*" and first[19].startswith("0.5 |") and first[19].endswith("*")
    assert first[20].lstrip().startswith("+--") and first[21].split() == ["0", "3"]
    assert first[22] == "* losses"
    assert lines[-1] == "* sin  o cos"
    assert sum("o" in line for line in lines[23:]) >= 15     # cos drawn down the rows


def test_plot_to_a_file_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    bp = dsl.Interpreter()
    with pytest.raises(dsl.BpImportError, match=r"bp-lang\[plot\]"):
        bp.exec(f'plot sin on (0, 1) to "{tmp_path / "s.png"}"')


def test_plot_mistakes_are_located_errors():
    bp = dsl.Interpreter()
    with pytest.raises(dsl.BpTypeError, match="interval"):
        bp.exec("plot sin")
    with pytest.raises(dsl.BpShapeError):
        bp.exec("plot [[1, 2], [3, 4]]")
    with pytest.raises(dsl.BpIOError):
        bp.exec('plot sin on (0, 1) to "x.pdf"')
