"""Golden programs: every tests/golden/**/*.bp (except lib/) is one test case.

Each program carries its expected behaviour as comments, in the format of the
public conformance suite (../shared/conformance/README.md):

- ``# expect: TEXT``  the next line of standard output, in order; nothing else
  may be printed.
- ``# error: KIND``   exit 1 with ``FILE:LINE:COL: KIND: message`` where LINE is
  the line below the comment; output before the error is compared as above.
- ``# exit: any``     exit 0 (output compared) or exit 1 with a clean error.

Lines compare token by token; numbers within rel 1e-6 / abs 1e-9. The
comparison functions are copied from the conformance runner (run.py) so that
both give the same verdicts. Programs run in-process through ``dsl.cli.main``
with a temporary working directory, so imports must resolve relative to the
importing file.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
PROGRAMS = sorted(p for p in GOLDEN.rglob("*.bp") if p.relative_to(GOLDEN).parts[0] != "lib")

REL_TOL, ABS_TOL = 1e-6, 1e-9
KINDS = ("syntax error", "name error", "type error", "shape error",
         "value error", "import error", "io error", "assertion failed")
TOKEN = re.compile(r"""
    (?P<num> [-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?
           | [-+]?inf(?!\w) | nan(?!\w) )
  | (?P<str> "(?:[^"\\]|\\.)*" )
  | (?P<name> [^\W\d]\w* )
  | (?P<sym> \S )""", re.X)
ERROR_LINE = re.compile(r"(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<kind>%s)\b"
                        % "|".join(KINDS))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def tokens(text):
    return [(m.lastgroup, m.group(m.lastgroup)) for m in TOKEN.finditer(text)]


def logical_lines(lines):
    """Join lines while ( [ or { are open; drop lines without tokens."""
    out, pending, start, depth = [], [], 0, 0
    for number, text in lines:
        toks = tokens(text)
        if not pending:
            start = number
        pending += toks
        depth += sum(t in "([{" for k, t in toks if k == "sym")
        depth -= sum(t in ")]}" for k, t in toks if k == "sym")
        if depth <= 0 and pending:
            out.append((start, pending))
            pending, depth = [], 0
    if pending:
        out.append((start, pending))
    return out


def same_token(want, got):
    if want[0] == "num" and got[0] == "num":
        a, b = float(want[1]), float(got[1])
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return want == got


def show(toks):
    return re.sub(r" ([,)\]])|([(\[]) ", r"\1\2", " ".join(t for _, t in toks))


def read_directives(path):
    spec = {"expect": [], "error": None, "exit_any": False}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if m := re.match(r"#\s*expect:(.*)$", text):
            spec["expect"].append((number, m.group(1)))
        elif m := re.match(r"#\s*error:\s*(.+?)\s*$", text):
            spec["error"] = (number + 1, m.group(1))
        elif re.match(r"#\s*exit:\s*any\s*$", text):
            spec["exit_any"] = True
    return spec


def compare_output(expected, stdout_lines):
    want = logical_lines(expected)
    got = logical_lines(list(enumerate(stdout_lines, 1)))
    for i, (src_line, want_toks) in enumerate(want):
        if i >= len(got):
            return f"line {src_line}: expected {show(want_toks)!r}, got no more output"
        out_line, got_toks = got[i]
        if len(want_toks) != len(got_toks) or not all(map(same_token, want_toks, got_toks)):
            return (f"line {src_line}: expected {show(want_toks)!r}, "
                    f"got {show(got_toks)!r} (output line {out_line})")
    if len(got) > len(want):
        return f"unexpected output line {got[len(want)][0]}: {show(got[len(want)][1])!r}"
    return None


def find_error(stderr_lines, stdout_lines):
    """The first SPEC §8 error line, in stderr then stdout: (match, stdout index or None)."""
    for line in stderr_lines:
        if m := ERROR_LINE.search(line):
            return m, None
    for i, line in enumerate(stdout_lines):
        if m := ERROR_LINE.search(line):
            return m, i
    return None, None


def check(path, code, stdout, stderr):
    """None if the run matches the program's directives, else the first difference."""
    spec = read_directives(path)
    out, err = ANSI.sub("", stdout).splitlines(), ANSI.sub("", stderr).splitlines()
    if any("Traceback (most recent call last)" in line for line in out + err):
        return "printed a Python traceback"
    error, at = find_error(err, out)
    first_err = next((line for line in err if line.strip()), "")
    if spec["exit_any"]:
        if code == 0:
            return compare_output(spec["expect"], out)
        return None if code == 1 and error else f"got exit {code} {first_err!r}"
    if spec["error"] is None:
        if code != 0:
            return f"expected exit 0, got exit {code}: {first_err!r}"
        return compare_output(spec["expect"], out)
    want_line, want_kind = spec["error"]
    if code != 1:
        return f"expected exit 1 with {want_kind!r} at line {want_line}, got exit {code}"
    if not error:
        return f"expected an error '{path.name}:{want_line}:COL: {want_kind}: ...', found none"
    if (error["kind"] != want_kind or int(error["line"]) != want_line
            or not error["file"].endswith(path.name)):
        got = f"{error['kind']!r} at {Path(error['file']).name}:{error['line']}"
        return f"expected {want_kind!r} at {path.name}:{want_line}, got {got}"
    return compare_output(spec["expect"], out if at is None else out[:at])


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.relative_to(GOLDEN).as_posix() for p in PROGRAMS])
def test_golden(path, tmp_path, monkeypatch):
    from dsl import cli

    monkeypatch.chdir(tmp_path)      # imports must resolve relative to the importing file
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([str(path)], stdout=out, stderr=err)
    problem = check(path, code, out.getvalue(), err.getvalue())
    assert problem is None, (f"{path.relative_to(GOLDEN).as_posix()}: {problem}\n"
                             f"--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}")
