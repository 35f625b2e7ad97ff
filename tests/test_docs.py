"""What the docs show bp printing is what bp prints (issue 13, item 6).

README.md and docs/*.md (all but design.md, whose snippets are diagrams and
file trees) are read for examples, and each is run and compared with what
the doc shows.  The convention the docs keep to, by the word that opens a
fenced block (its "info string"; GitHub highlights by the first word only):

```bp            bp source.  Followed, after any prose, by an ```output
                 block: the source runs as `bp -c` runs it (a fresh
                 Interpreter, expression statements print their value, an
                 error is printed as on stderr) and must print exactly that
                 output.  Without an ```output block it must run without
                 error.  A ```bp block whose lines start with `bp> ` is a
                 REPL transcript instead (below).
```bp FILE       the text of a file.  FILE with a `/` (examples/xor.bp) is a
                 file of the repository and the block must be a run of its
                 lines (an excerpt, or all of it); a bare name (model.bp) is
                 a scratch file, written to the doc's working directory for
                 the commands after it, or, when an example before wrote
                 it (`:save FILE`), compared with what was written.  A
                 following ```output block is what `bp FILE` prints.
```output        what the ```bp block before it prints (stdout, then stderr).
                 `output head`: the first lines of it (the prose says what
                 is left out); `output --precision 4` (any bp options): what
                 `bp --precision 4 -c …` prints.
```console       a shell transcript: `$ COMMAND` lines, each followed by
                 what it prints.  Commands: `bp ARGS…` (through dsl.cli.main,
                 in-process), `echo 'TEXT' | bp ARGS…` (TEXT on stdin),
                 `echo $?` (the status of the last command) and
                 `python -c CODE` (a fresh process).
```pycon         a Python session (`>>> `, `... `), checked with doctest;
                 all the pycon blocks of one doc are one session, in order.
```ipython       an `ipython --simple-prompt` transcript (`In [1]: `,
                 `   ...: `): the typed lines are piped to a fresh IPython
                 and what it shows must match, blank lines aside.
a bp> transcript bp 0.1.0 banner (optional), then `bp> ` inputs with `... `
                 continuation lines, each followed by what the REPL shows;
                 run through the REPL's own Repl.handle, a fresh session.
| example | prints |   a Markdown table with these two columns: each row's
                 example (a code span) runs as `bp -c` and prints the other
                 cell's code span; in the other cells of such a table,
                 `` `diff(NAME)` = `x -> …` `` is checked the same way.
```LANG-nocheck  not run (bp-nocheck: pseudo-code, an excerpt that does not
                 run alone, a screen that is not a transcript); so are
                 ```python, ```sh, ```text and ```dot blocks.

A fenced block with no info string is an error here, so that no printed
form escapes the check by accident: mark it.  Everything runs in a fresh
working directory per doc, holding a copy of examples/ (so a doc's
`export … to "df.py"` and `bp examples/xor.bp` work and write nothing into
the checkout).  Output compares exactly, number for number, at bp's default
precision (8 digits) unless the command says otherwise; only whitespace at
the end of a line and blank lines at the end of the output are ignored.

INLINE lists printed forms that prose shows in code spans ("`grad(relu)`
prints `x -> x > 0`"): each is run, and the doc must contain the printed
text as a code span, so changing either side fails here.

`python tests/test_docs.py [DOC…]` prints every mismatch with bp's actual
output, to paste from when regenerating a doc.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import doctest
import importlib.util
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")
                              if p.name != "design.md")
UNCHECKED = {"python", "sh", "text", "dot"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclasses.dataclass
class Block:
    doc: str
    line: int               # of the opening fence, 1-based
    kind: str               # the info string's first word
    arg: str                # the rest of it
    text: str


def fenced_blocks(doc: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """The doc's fenced blocks, and its lines outside them (for tables)."""
    lines = (ROOT / doc).read_text(encoding="utf-8").split("\n")
    blocks, prose, i = [], [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        close = re.compile(r"^ *%s{%d,} *$" % (re.escape(fence[0]), len(fence)))
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = [line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1:j]]
        kind, _, arg = m["info"].strip().partition(" ")
        blocks.append(Block(doc, i + 1, kind, arg.strip(), "\n".join(body)))
        i = j + 1
    return blocks, prose


def normal(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# ── running bp ────────────────────────────────────────────────────────────

def run_bp(argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    """`bp ARGV` in-process: (exit status, stdout then stderr)."""
    from dsl import cli
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        status = cli.main(argv, stdout=out, stderr=err)
    finally:
        sys.stdin = saved
    return status, out.getvalue() + err.getvalue()


def run_console(text: str) -> str:
    """Replay a `$ …` transcript: the commands with what they print."""
    shown, status = [], 0
    for line in text.split("\n"):
        if not line.startswith("$ "):
            continue
        command = line[2:]
        shown.append(line)
        words = shlex.split(command)
        if words == ["echo", "$?"]:
            shown.append(str(status))
            continue
        stdin = None
        if "|" in words:
            bar = words.index("|")
            if words[0] != "echo" or bar != 2:
                raise ValueError(f"unsupported pipe in {command!r}: only `echo 'TEXT' | bp …`")
            stdin, words = words[1] + "\n", words[bar + 1:]
        if words[0] == "bp":
            status, printed = run_bp(words[1:], stdin)
        elif words[0] == "python" and len(words) == 3 and words[1] == "-c":
            done = subprocess.run([sys.executable, "-c", words[2]], capture_output=True,
                                  text=True, timeout=120)
            status, printed = done.returncode, done.stdout + done.stderr
        else:
            raise ValueError(f"unsupported command {command!r} (mark the block console-nocheck)")
        if normal(printed):
            shown.append(normal(printed))
    return "\n".join(shown)


PROMPT, CONTINUATION = "bp> ", "... "


def split_transcript(text: str) -> tuple[str | None, list[tuple[str, str]]]:
    """A REPL transcript: (banner, [(input, what it showed)])."""
    lines = text.split("\n")
    banner = None
    if lines and not lines[0].startswith(PROMPT.rstrip()):
        banner = lines.pop(0)
    entries: list[tuple[list[str], list[str]]] = []
    for line in lines:
        if line.startswith(PROMPT) or line == PROMPT.rstrip():
            entries.append(([line[len(PROMPT):]], []))
        elif entries and not entries[-1][1] and line.startswith(CONTINUATION):
            entries[-1][0].append(line[len(CONTINUATION):])
        elif entries:
            entries[-1][1].append(line)
    return banner, [("\n".join(i), normal("\n".join(o))) for i, o in entries]


def run_transcript(text: str, width: int = 92) -> str:
    """The transcript as the REPL shows it for the same inputs."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    import dsl
    from dsl import __version__
    from dsl.repl.app import Repl

    banner, entries = split_transcript(text)
    out = io.StringIO()
    interp = dsl.Interpreter(stdout=out)
    console = Console(file=out, width=width, highlight=False, force_terminal=False)
    shown = [] if banner is None else [f"bp {__version__}: :help for help, :quit or Ctrl-D to leave"]
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(interp, console=console, history=InMemoryHistory())
        for source, _ in entries:
            lines = source.split("\n")
            shown.append(PROMPT + lines[0] if lines[0] else PROMPT.rstrip())
            shown += [CONTINUATION + line for line in lines[1:]]
            if not source.strip():
                continue
            start = len(out.getvalue())
            repl.handle(source)
            printed = normal(out.getvalue()[start:])
            if printed:
                shown.append(printed)
    return normal("\n".join(shown))


IPY_IN = re.compile(r"^In \[\d+\]: ?(.*)$")
IPY_MORE = re.compile(r"^ +\.\.\.: ?(.*)$")
IPY_PROMPTS = re.compile(r"^(?:In \[\d+\]: ?| *\.\.\.: ?)+")


def split_ipython(text: str) -> tuple[list[str], str]:
    """An `ipython --simple-prompt` transcript: (the lines typed, what was shown
    without them and without blank lines)."""
    typed, shown = [], []
    for line in text.split("\n"):
        m = IPY_IN.match(line) or IPY_MORE.match(line)
        if m:
            typed.append(m.group(1))
        elif line.strip():
            shown.append(line.rstrip())
    return typed, "\n".join(shown)


def run_ipython(text: str) -> str:
    """The typed lines piped to `ipython --simple-prompt` (which echoes
    prompts, not input): what it shows, prompts and blank lines dropped."""
    typed, _ = split_ipython(text)
    done = subprocess.run([sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner",
                           "--colors=NoColor", "--no-confirm-exit", "--HistoryManager.enabled=False"],
                          input="\n".join(typed) + "\n", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1",
                               "IPYTHONDIR": os.path.join(os.getcwd(), ".ipython")})
    lines = [IPY_PROMPTS.sub("", line).rstrip() for line in done.stdout.split("\n")]
    return "\n".join(line for line in lines if line)


def run_doctest(blocks: list[Block]) -> list[str]:
    """All the doc's pycon blocks as one doctest session: the failures' reports."""
    parser = doctest.DocTestParser()
    examples = []
    for block in blocks:
        for example in parser.get_examples(block.text + "\n"):
            example.lineno += block.line          # doc line of the example
            examples.append(example)
    test = doctest.DocTest(examples, {"__name__": "__doc__"}, blocks[0].doc, None, 0, None)
    report = io.StringIO()
    runner = doctest.DocTestRunner(verbose=False)
    runner.run(test, out=report.write)
    return [report.getvalue()] if runner.failures else []


# ── examples of one doc ───────────────────────────────────────────────────

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
ROUNDOFF = 1e-12      # below this a printed number is rounding error (it differs between NumPys)


def same_but_roundoff(expected: str, actual: str) -> bool:
    """The same text, except numbers that are rounding error in both (0 < |x| < 1e-12, as
    the largest difference between a derivative and Algorithm 6.4 done by hand: 2.8e-17
    on NumPy 2, 5.6e-17 on NumPy 1.26).  Everything else compares exactly."""
    want, got = expected.split("\n"), actual.split("\n")
    if len(want) != len(got):
        return False
    for a, b in zip(want, got):
        if NUMBER.split(a) != NUMBER.split(b):
            return False
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            if x != y and not (0 < abs(float(x)) < ROUNDOFF and 0 < abs(float(y)) < ROUNDOFF):
                return False
    return True

@dataclasses.dataclass
class Mismatch:
    where: str
    expected: str
    actual: str

    def __str__(self):
        diff = "\n".join(difflib.unified_diff(self.expected.split("\n"), self.actual.split("\n"),
                                              "the doc", "bp", lineterm=""))
        return f"{self.where}\n{diff or self.actual}"


def table_examples(doc: str, prose: list[tuple[int, str]]):
    """Rows of tables with `example` and `prints` columns: (line, source, printed)."""
    def cells(line):
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [p.strip().replace("\\|", "|") for p in parts]

    def code(cell):
        m = re.fullmatch(r"`([^`]*)`", cell)
        if not m:
            raise ValueError(f"{doc}: a table cell that is not one code span: {cell!r}")
        return m.group(1)

    header = None
    for (number, line), (_, following) in zip(prose, prose[1:] + [(0, "")]):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        row = cells(line)
        if header is None:
            if "example" in row and "prints" in row and re.match(r"^\s*\|[\s:|-]+\|\s*$", following):
                header = (row.index("example"), row.index("prints"))
            else:
                header = ()
            continue
        if not header or set("".join(row)) <= set(" :-"):
            continue
        yield number, code(row[header[0]]), code(row[header[1]])
        for cell in row:                  # `diff(tanh)` = `x -> 1 - tanh(x)^2` in another column
            for m in re.finditer(r"`((?:diff|grad)\(\w+\))` = `([^`]*)`", cell):
                yield number, m.group(1), m.group(2)


def check_doc(doc: str, workdir: Path) -> tuple[list[Mismatch], int]:
    """Run every example of `doc` in `workdir`: (the mismatches, how many ran)."""
    blocks, prose = fenced_blocks(doc)
    problems: list[Mismatch] = []
    count = 0
    source: Block | None = None
    pycon: list[Block] = []

    def compare(where, expected, actual):
        if normal(expected) != normal(actual) and not same_but_roundoff(normal(expected), normal(actual)):
            problems.append(Mismatch(where, normal(expected), normal(actual)))

    for k, block in enumerate(blocks):
        where = f"{doc}:{block.line}"
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        if block.kind == "":
            problems.append(Mismatch(where + ": a fenced block without an info string: mark it "
                                     "(bp, output, console, pycon, text, …; see tests/test_docs.py)",
                                     "", block.text))
        elif block.kind.endswith("-nocheck") or block.kind in UNCHECKED:
            pass
        elif block.kind == "bp" and any(l.startswith(PROMPT) for l in block.text.split("\n")):
            count += 1
            compare(where + " (REPL transcript)", block.text, run_transcript(block.text))
        elif block.kind == "bp":
            source = block
            if "/" in block.arg:
                text = (ROOT / block.arg).read_text(encoding="utf-8")
                if block.text.strip("\n") not in text:
                    problems.append(Mismatch(where + f": not an excerpt of {block.arg}",
                                             block.text, text))
            elif block.arg and (workdir / block.arg).exists():
                count += 1                # a file an example before wrote (`:save FILE`)
                compare(where + f" (the file {block.arg} as written)", block.text,
                        (workdir / block.arg).read_text(encoding="utf-8"))
            elif block.arg:
                (workdir / block.arg).write_text(block.text + "\n", encoding="utf-8")
            elif following is None or following.kind != "output":
                count += 1
                status, printed = run_bp(["-c", block.text])
                if status != 0:
                    problems.append(Mismatch(where + ": fails (a block without ```output must run)",
                                             "", printed))
        elif block.kind == "output":
            if source is None:
                problems.append(Mismatch(where + ": an output block with no bp block before it",
                                         block.text, ""))
                continue
            count += 1
            options = shlex.split(block.arg)
            head = "head" in options
            options = [o for o in options if o != "head"]
            argv = options + ([source.arg] if source.arg else ["-c", source.text])
            _, printed = run_bp(argv)
            if head:                      # the doc shows how the output begins
                printed = "\n".join(normal(printed).split("\n")[:len(normal(block.text).split("\n"))])
            compare(f"{where} (the output of {doc}:{source.line})", block.text, printed)
            source = None
        elif block.kind == "console":
            count += 1
            try:
                compare(where, block.text, run_console(block.text))
            except ValueError as err:
                problems.append(Mismatch(f"{where}: {err}", block.text, ""))
        elif block.kind == "ipython":
            if importlib.util.find_spec("IPython") is None:
                continue                  # the notebook extra is not installed
            count += 1
            compare(where + " (IPython transcript)", split_ipython(block.text)[1],
                    run_ipython(block.text))
        elif block.kind == "pycon":
            pycon.append(block)
        else:
            problems.append(Mismatch(where + f": unknown block kind {block.kind!r}", "", ""))
    for number, src, printed in table_examples(doc, prose):
        count += 1
        compare(f"{doc}:{number} (table row `{src}`)", printed, run_bp(["-c", src])[1])
    if pycon:
        count += sum(len(doctest.DocTestParser().get_examples(b.text + "\n")) for b in pycon)
        for report in run_doctest(pycon):
            problems.append(Mismatch(f"{doc}: pycon sessions (doctest)", "", report))
    for claim_doc, src, printed in INLINE:
        if claim_doc != doc:
            continue
        count += 1
        compare(f"{doc}: inline `{src}`", printed, run_bp(["-c", src])[1])
        flat = re.sub(r"\s+", " ", (ROOT / doc).read_text(encoding="utf-8"))
        if f"`{printed}`" not in flat:
            problems.append(Mismatch(f"{doc}: the doc no longer shows `{printed}` (INLINE in "
                                     "tests/test_docs.py lists it)", printed, ""))
    return problems, count


# Printed forms shown in prose, as (doc, a bp -c program, what it prints).
INLINE: list[tuple[str, str, str]] = [
    ("docs/differentiation.md", "W = [[1, 2], [3, 4]]\ndef layer(x: [2]) = sum(tanh(W @ x))\ngrad(layer)",
     "x -> W' @ (1 - tanh(W @ x)^2)"),
    ("docs/differentiation.md", "print hessian(x -> sum(x^3))", "hessian(x -> sum(x^3))"),
    ("docs/differentiation.md", "print grad((v, t) -> sum(v) + t^3, wrt=(v, t))",
     "(v, t) -> (broadcast_like(1, v), 3*t^2)"),
    ("docs/differentiation.md", "print hessian(x -> x^3)", "x -> 6*x"),
    ("docs/differentiation.md", "X = [[0, 0], [0, 1], [1, 0], [1, 1]]\nY = [0, 1, 1, 0]\n"
     "def predict(θ, x) = sigmoid(tanh(x @ θ.W1 + θ.b1) @ θ.w2 + θ.b2)\n"
     "def loss(θ) = mean((predict(θ, X) - Y)^2)\nprint grad(loss)",
     "grad(θ -> mean((predict(θ, X) - Y)^2))"),
    ("docs/differentiation.md", "def f(x) = x^2 * sin(x)\nW = [[1, 2], [3, 4]]\n"
     "def layer(x) = sum(tanh(W @ x))\nprint grad(f)(2), grad(layer)([1, 0])",
     "1.9726024 [0.44957245, 0.87941283]"),
    ("docs/language.md", "x -> x^2 * sin(x)", "x -> x^2*sin(x)"),
    ("docs/language.md", "print grad(x -> mean(x^2))", "x -> 2*x/size(x)"),
    ("docs/language.md", "exp", "exp"),
    ("docs/language.md", "(3,)", "(3,)"),
    ("docs/language.md", "(1, [2, 3])", "(1, [2, 3])"),
    ("docs/language.md", "{W: [[1, 0]], b: 0.5}", "{W: [[1, 0]], b: 0.5}"),
    ("docs/language.md", "print sum", "sum"),
    ("docs/language.md", "999999999999999", "999999999999999"),
    ("docs/language.md", "1e15", "1e+15"),
    ("docs/language.md", "2^53 + 1", "9.0071993e+15"),
    ("docs/language.md", "123456789.5", "1.2345679e+08"),
    ("docs/language.md", "[-0.0, 0]", "[-0, 0]"),
    ("docs/language.md", "round(-0.5)", "-0"),
    ("docs/language.md", 'def f(x) = x; print f("s")', "s"),
    ("docs/language.md", "x -> (x + 1) * (x - 1)", "x -> x^2 - 1"),
    ("docs/language.md", "x -> x / x", "x -> x/x"),
    ("docs/language.md", "def f(x) = x^2\nx -> f(x) + 1", "x -> 1 + x^2"),
    ("docs/language.md", "lr = 0.1\nx -> x * lr + pi", "x -> 3.141592653589793 + lr*x"),
    ("docs/language.md", "def m(x: [4]) = mean(x)\ngrad(m)", "x -> full(4, value=0.25)"),
    ("docs/language.md", "def mk(a) = x -> x + a\nmk(10)", "x -> 10 + x"),
    ("docs/language.md", "x -> y -> x + y", "x -> y -> x + y"),
    ("docs/language.md", "grad(x -> sum(x * [1, 2, 3]))",
     "x -> { t1 = [1, 2, 3]; return unbroadcast(t1 * broadcast_like(1, t1*x), x) }"),
    ("docs/language.md", "print hessian(x -> sum(x^3))", "hessian(x -> sum(x^3))"),
    ("docs/language.md", "def q(x: [2]) = x^2; print jacobian(q)", "x -> diag(2*x)"),
    ("docs/language.md", "x = [1, 2]\ndef loss(θ) = sum(θ.W @ x)\ngrad(loss)",
     "θ -> {W: matmul_vjp(θ.W, x, broadcast_like(1, θ.W @ x))}"),
    ("docs/language.md", "grad(x -> x[1]^2)", "x -> grad(z -> sum(z[1] * 2*x[1]))(x)"),
    ("docs/language.md", "grad(x -> if x > 0 then sqrt(x)^3 else 0)(0)", "0"),
    ("docs/language.md", "grad(x -> prod(x))([1, 0, 3])", "[0, 3, 0]"),
    ("docs/language.md", "grad(x -> sum(clip(x, 0, 1)))([-1, 0, 0.5, 1, 2])",
     "[0, 0.5, 1, 0.5, 0]"),
]


@contextlib.contextmanager
def doc_workdir():
    """A scratch working directory holding a copy of examples/; a time limit."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bp-docs-") as tmp:
        shutil.copytree(ROOT / "examples", Path(tmp) / "examples")
        os.chdir(tmp)
        alarm = signal.signal(signal.SIGALRM, _too_long)
        signal.alarm(300)
        try:
            yield Path(tmp)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, alarm)
            os.chdir(previous)


def _too_long(signum, frame):
    raise TimeoutError("a doc's examples took more than 300 s")


@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples_print_what_the_doc_shows(doc, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", tempfile.gettempdir())     # the REPL's history
    with doc_workdir() as workdir:
        problems, _ = check_doc(doc, workdir)
    if problems:
        pytest.fail("\n\n".join(map(str, problems)), pytrace=False)


def test_the_check_fails_when_a_doc_shows_other_output(tmp_path):
    """The checker itself: a doc whose output differs, a bare fence and a wrong
    table row are all reported; the same doc with bp's output passes."""
    doc = tmp_path / "doc.md"
    good = ("# t\n\n```bp\nprint grad(x -> x^3)\n1 + 1\n```\n\nprints\n\n```output\n"
            "x -> 3*x^2\n2\n```\n\n| example | prints |\n| --- | --- |\n| `sin(0)` | `0` |\n\n"
            "```console\n$ bp -c 'sum([1, 2])'\n3\n$ echo $?\n0\n```\n")
    bad = good.replace("3*x^2", "3 * x^2").replace("| `0` |", "| `0.0` |") + "\n```\nx\n```\n"
    rel = os.path.relpath(doc, ROOT)
    for text, failures in ((good, 0), (bad, 3)):
        doc.write_text(text, encoding="utf-8")
        with doc_workdir() as workdir:
            problems, count = check_doc(rel, workdir)
        assert len(problems) == failures, "\n".join(map(str, problems))
        assert count == 3


def test_repl_transcripts_split_into_inputs_and_outputs():
    banner, entries = split_transcript("bp 0.1.0: hi\nbp> def f(x) {\n...     x\n... }\n"
                                       "bp> f(2)\n2\nbp>")
    assert banner == "bp 0.1.0: hi"
    assert entries == [("def f(x) {\n    x\n}", ""), ("f(2)", "2"), ("", "")]


def test_every_builtin_has_a_row_with_its_derivative_and_a_checked_example():
    """issue 14 acceptance 3: docs/language.md's tables list every builtin of the
    registry (dsl.ops.BUILTINS), each row with a derivative column and an example
    that test_doc_examples_print_what_the_doc_shows runs."""
    import re
    from dsl import ops
    text = (ROOT / "docs/language.md").read_text(encoding="utf-8")
    start = text.index("### Every builtin and its derivative")
    section = text[start:text.index("\n## 7.", start)]
    listed, bare = set(), []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if not line.startswith("| `") or len(cells) < 5:
            continue
        names = set(re.findall(r"`([A-Za-z_]\w*)\(", cells[0]))
        listed |= names
        if not (cells[2] and cells[3].startswith("`") and cells[4]):
            bare.append(cells[0])
    assert sorted(set(ops.BUILTINS) - listed) == []
    assert bare == [], "rows without a derivative, an example or what it prints"


if __name__ == "__main__":
    names = sys.argv[1:] or DOCS
    for name in names:
        with doc_workdir() as workdir:
            found, ran = check_doc(name, workdir)
        print(f"== {name}: {ran} examples, {len(found)} mismatches")
        for problem in found:
            print(f"-- {problem.where}\n{problem.actual}\n")
