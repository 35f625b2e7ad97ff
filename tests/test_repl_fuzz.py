"""Nothing typed at the prompt ends the REPL but `:quit` (or Ctrl-D on an
empty line, which the generators never type).

As tests/test_fuzz.py does for `Interpreter.exec`, random input — random
characters, sequences of the grammar's terminals, well-formed statements,
and `:` commands with random arguments — is typed line by line through
the pipe input of the real prompt_toolkit application, then Ctrl-C (to
abandon whatever is left open) and `:quit`.  The REPL must have read up
to the `:quit` and left because of it, printing no traceback on the way.
Derandomized, so CI types the same lines on every run.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

import dsl
from dsl.repl.app import Repl

GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "bp.lark"
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

PRELUDE = "s = 2; v = [1, 2, 3]; r = {W: [[1, 2], [3, 4]], b: [0, 1]}\rdef f(x) = x^2 * sin(x)\r"
# Printable keys only: Ctrl-D on an empty line leaves, which is allowed, so it is not typed.
ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCXYZ_0123456789θλ \t"
            "()[]{}:;,.'\"#+-*/@^<>=!\\")
LITERALS = sorted(set(re.findall(r'^[A-Z_]+: "([^"]+)"', GRAMMAR.read_text(), re.M))
                  | {'"', "(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "'", "->", "=",
                     "+", "-", "*", "/", "@", "^", "**", "<", "<=", "==", "!="})
NAMES = ["s", "v", "r", "f", "x", "W", "b", "grad", "jacobian", "sum", "tanh", "zeros", "undefined"]
NUMBERS = ["0", "1", "2", ".5", "1e-3"]
TOKENS = LITERALS + NAMES + NUMBERS
COMMANDS = ["help", "vars", "graph", "type", "ops", "load", "save", "reset", "quti", "", "?"]
STATEMENTS = ["x = {}", "{}", "print {}", "def g(x) = {}", "def g(x) {{\r y = {}\r return y\r}}",
              "grad(x -> sum({}))(v)", "for i in range(3) {{ y = {} }}"]

random_text = st.text(alphabet=ALPHABET, max_size=40)
token_line = st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)
statement = st.tuples(st.sampled_from(STATEMENTS), token_line).map(lambda p: p[0].format(p[1]))
command = st.tuples(st.sampled_from(COMMANDS), st.one_of(token_line, random_text)).map(
    lambda p: f":{p[0]} {p[1]}".rstrip())
LINES = st.lists(st.one_of(random_text, token_line, statement, command), min_size=1, max_size=8)


@pytest.fixture(scope="module", autouse=True)
def _scratch(tmp_path_factory):
    """Commands may save and load files: keep them in a scratch directory."""
    folder = tmp_path_factory.mktemp("repl-fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("XDG_DATA_HOME", str(folder / "data"))
        yield folder


def type_lines(lines: list[str]) -> tuple[str, str, list[str]]:
    out = io.StringIO()
    interp = dsl.Interpreter(stdout=out)
    seen: list[str] = []
    original = Repl.handle

    def handle(repl, text):
        seen.append(text)
        return original(repl, text)

    with create_pipe_input() as pipe:
        pipe.send_text(PRELUDE + "".join(line + "\r" for line in lines) + "\x03:quit\r")
        pipe.close()
        with create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(interp, console=Console(file=out, width=100), history=InMemoryHistory())
            repl.handle = lambda text: handle(repl, text)
            reason = repl.run()
    return reason, out.getvalue(), seen


@FUZZ
@given(LINES)
def test_repl_fuzz_only_quit_ends_the_session(lines):
    lines = [line for line in lines if not re.match(r"\s*:quit(\s|$)", line)]
    reason, out, seen = type_lines(lines)
    assert reason == "quit", f"the REPL ended ({reason}) before :quit on {lines!r}"
    assert seen and seen[-1] == ":quit"
    assert "Traceback" not in out


def test_repl_fuzz_the_session_works_after_the_noise():
    noise = ["(((", "\t\t", ":type (", ":graph 1 +", "}", "def", "x = [1,", "\"open", ":load"]
    reason, out, seen = type_lines(noise + ["\x03", "f(2) + s"])
    assert reason == "quit"
    assert "5.6371897" in out.splitlines()
