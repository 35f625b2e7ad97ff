"""Command-line input and output at the edges (issue 17, "Command line and bad input"):
a program on standard input (`bp -`), a byte-order mark, a full disk, and the
located errors of a flag that is not 0 or 1 and of a negative seed."""
import io
import os
import subprocess
import sys

import pytest

import dsl
from dsl.cli import main


def run(argv, stdin_bytes=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin_bytes is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8"))
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_dash_reads_the_program_from_standard_input(monkeypatch):
    assert run(["-"], b"x = 2\nprint x^3\n", monkeypatch) == (0, "8\n", "")


def test_a_byte_order_mark_is_not_part_of_the_program(monkeypatch, tmp_path):
    path = tmp_path / "bom.bp"
    path.write_bytes(b"\xef\xbb\xbfprint 1 + 1\n")
    assert run([str(path)]) == (0, "2\n", "")
    assert run(["-"], b"\xef\xbb\xbfprint 3\n", monkeypatch) == (0, "3\n", "")
    (tmp_path / "lib.bp").write_bytes(b"\xef\xbb\xbfdef sq(x) = x^2\n")
    bp = dsl.Interpreter(stdout=io.StringIO())
    bp.exec(f'import "{tmp_path / "lib.bp"}"\nprint sq(4)')
    assert bp.stdout.getvalue() == "16\n"


def test_standard_input_that_is_not_utf8_is_an_io_error(monkeypatch):
    code, out, err = run(["-"], b"print \xff\n", monkeypatch)
    assert code == 1 and err.startswith("io error: ") and "UTF-8" in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["-c", "print arange(1000)"], ["-c", "print 1"]])
def test_a_full_disk_is_an_io_error_not_an_internal_one(args):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "dsl", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert "io error: cannot write the output: No space left on device" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("src, message", [
    ("sum([1, 2], keepdims=2)", "'keepdims' is a flag: 1 or 0, got 2"),
    ("randn(2, seed=-1)", "randn: seed= is a whole number from 0, got -1"),
    ("rand(seed=-3)", "rand: seed= is a whole number from 0, got -3"),
])
def test_bad_arguments_are_located_value_errors(src, message):
    with pytest.raises(dsl.BpError) as err:
        dsl.Interpreter().eval(src)
    assert err.value.kind == "value error" and err.value.message == message
    assert err.value.line == 1 and err.value.column == 1


def test_a_bp_function_in_python_says_what_it_is():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x^2 * sin(x)")
    g = bp.eval("grad(f)")
    assert repr(g) == "<bp function x -> 2*x*sin(x) + x^2*cos(x)>"
    assert float(g(2.0)) == pytest.approx(2 * 2 * 0.9092974268256817 + 4 * -0.4161468365471424,
                                         rel=1e-15)
    long = repr(bp.eval("grad(grad(grad(grad(f))))"))
    assert long.startswith("<bp function x -> ") and long.endswith("…>") and len(long) <= 90
    bp["h"] = g
    assert bp.eval("h(2)") == g(2.0)


def test_norm_with_a_tensor_for_ord_is_a_located_value_error():
    # found by tests/test_fuzz.py: it was an internal error (float() of an array)
    with pytest.raises(dsl.BpError) as err:
        dsl.Interpreter().eval("norm([1, 2], [1, 2])")
    assert err.value.kind == "value error" and "ord= is one number" in err.value.message
