"""The REPL (SPEC §10), driven through the real prompt_toolkit application.

Keys go in through `create_pipe_input()` (Enter is "\\r", Ctrl-C "\\x03",
Ctrl-D "\\x04"), the screen is a `DummyOutput`, and what the REPL prints
is read back from a rich Console writing to a StringIO.  The pure parts
(completion candidates, the `:save` script, the lexer) are tested
directly; the Pygments plugin through Pygments' own lookup.
"""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

import dsl
from dsl.repl import completer, help, history, introspect, progress, script
from dsl.repl.app import Repl

ROOT = Path(__file__).resolve().parent.parent


def drive(keys: str, interp: dsl.Interpreter | None = None, **options) -> tuple[str, str, Repl]:
    """Type `keys` into a fresh REPL until they run out: (printed text, why it ended, the REPL)."""
    out = io.StringIO()
    interp = interp or dsl.Interpreter(stdout=out)
    interp.stdout = out
    console = Console(file=out, width=100, highlight=False, force_terminal=options.pop("tty", False))
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        with create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(interp, console=console, history=InMemoryHistory(), **options)
            reason = repl.run()
    return out.getvalue(), reason, repl


@pytest.fixture(autouse=True)
def _scratch_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


# ── reading and running input ────────────────────────────────────────────

def test_repl_multi_line_block_def():
    out, reason, repl = drive("def f(x) {\r    y = x^2\r    return y + 1\r}\rf(3)\r")
    assert reason == "eof"
    assert "10" in out.splitlines()
    assert repl.interp.show("f") == "x -> 1 + x^2"


def test_repl_indents_inside_braces_and_alt_enter_adds_a_line():
    out, _, repl = drive("def g(x) {\ry = x\rreturn y\r}\ra = 1\x1b\rb = 2\r")
    assert repl.session.history.get_strings() == ["def g(x) {\n    y = x\n    return y\n}",
                                                  "a = 1\nb = 2"]
    assert float(repl.interp.eval("g(a + b)")) == 3.0


def test_repl_continues_after_an_operator_or_open_bracket():
    out, _, _ = drive("x = 1 +\r2\ry = [1,\r 2]\rx\ry\r")
    assert out.splitlines()[-2:] == ["3", "[1, 2]"]


def test_repl_error_then_more_input_keeps_earlier_bindings():
    out, _, repl = drive("a = 2\rb = a +* 1\ra + 1\rc = 1; d = nope + 1\rc + a\r")
    lines = out.splitlines()
    assert "<repl[2]>:1:8: syntax error: expected an expression after '+'" in lines
    assert "    b = a +* 1" in lines and "           ^" in lines
    assert "3" in lines
    assert any(line.startswith("<repl[4]>:1:12: name error: name 'nope' is not defined")
               for line in lines)
    assert lines[-1] == "3"                          # c (bound before the error) + a
    assert "b" not in repl.interp.globals and "d" not in repl.interp.globals


def test_repl_error_in_a_function_points_at_the_input_that_defined_it():
    out, _, _ = drive("def g(x) {\ry = x @ [1, 2, 3]\rreturn y\r}\rz = 1\rg([1, 2])\r")
    lines = out.splitlines()
    error = next(i for i, line in enumerate(lines) if "shape error" in line)
    assert lines[error].startswith("<repl[1]>:2:9: shape error: matmul of [2] and [3]")
    assert lines[error + 1] == "    y = x @ [1, 2, 3]"          # dedented, as SPEC §8 shows a body line
    assert lines[error + 2] == "        ^^^^^^^^^^^^^"


def test_repl_ctrl_c_abandons_the_input():
    out, reason, repl = drive("x = (1 +\r\x03x = 5\rx\r")
    assert reason == "eof"
    assert "error" not in out
    assert out.splitlines()[-1] == "5"


def test_repl_ctrl_d_on_an_empty_line_leaves():
    out, reason, repl = drive("x = 1\r\x04x = 2\r")
    assert reason == "eof"
    assert float(repl.interp.eval("x")) == 1.0


def test_repl_quit_leaves():
    _, reason, repl = drive(":quit\rx = 2\r")
    assert reason == "quit"
    assert "x" not in repl.interp.globals


def test_repl_prints_values_like_print_and_matrices_aligned():
    wide = "[" + ", ".join(["[" + ", ".join(["1.5"] * 12) + "]", "[" + ", ".join(["300"] * 12) + "]"]) + "]"
    out, _, _ = drive("grad(x -> x^2 * sin(x))\r[[1, 2.5], [300, 4]]\rprint 7, [1, 2]\r(1, {a: 2})\r"
                      + wide + "\r")
    assert "x -> 2*x*sin(x) + x^2*cos(x)" in out
    assert "[[1, 2.5], [300, 4]]" in out             # a small matrix: one line, as it fits
    assert "[[1.5, 1.5" in out and ",\n [300, 300" in out   # one wider than the terminal: a row a line
    assert "7 [1, 2]" in out and "(1, {a: 2})" in out


def test_repl_survives_an_internal_error(monkeypatch):
    interp = dsl.Interpreter()
    calls = []

    def broken(src, **kw):
        calls.append(src)
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 2:
            raise KeyboardInterrupt
        return dsl.Interpreter.exec(interp, src, **kw)
    monkeypatch.setattr(interp, "exec", broken)
    out, reason, _ = drive("1\r2\r3\r", interp)
    assert "internal error: RuntimeError: boom" in out
    assert "Traceback" not in out
    assert "interrupted" in out
    assert out.splitlines()[-1] == "3" and reason == "eof"


def test_repl_unknown_command_suggests_the_closest():
    out, _, _ = drive(":vras\r:gr f\r:zzzzzz\r")
    assert "unknown command ':vras'; did you mean ':vars'?" in out
    assert "did you mean ':graph'?" in out
    assert "unknown command ':zzzzzz'; :help lists the commands" in out


# ── commands ─────────────────────────────────────────────────────────────

def test_repl_vars_lists_names_kinds_and_shapes():
    out, _, _ = drive("W = ones(2, 3)\rdef f(x, b: [3]) = W @ x + b\rθ = {W: W, s: 1}\r:vars\r")
    rows = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert "W tensor [2, 3]" in rows
    assert "f function f(x, b: [3])" in rows
    assert "θ record {W: [2, 3], s: []}" in rows
    assert not any(r.startswith("pi ") for r in rows)        # untouched constants are not listed


def test_repl_graph_marks_derivative_nodes():
    out, _, _ = drive("def f(x) = x^2 * sin(x)\r:graph grad(f)\r:graph 3\r")
    assert "x: []" in out            # grad needs f(x) 0-d: x is
    assert any(line.rstrip().endswith("∂") for line in out.splitlines())
    assert "# 7 nodes: 2 from f, 5 from grad" in out
    assert "type error" in out                              # :graph 3 is a clean error


def test_repl_type_shows_shape_or_signature():
    out, _, _ = drive("def f(x, W: [2, 3]) = W @ x\r:type f\r:type ones(2, 3)\r"
                      ":type (1, [1, 2])\r:type grad(f, wrt=W)\r:type x = 1\r")
    assert "function (x, W: [2, 3]) -> …" in out
    assert "tensor [2, 3]" in out
    assert "tuple ([], [2])" in out
    assert out.count("function (x, W: [2, 3]) -> …") == 2      # grad(f, wrt=W) too
    assert "expected a single expression" in out


def test_repl_ops_lists_every_builtin_and_transform():
    out, _, _ = drive(":ops\r")
    first_column = {line.split("│")[0].strip() for line in out.splitlines() if "│" in line}
    assert set(introspect.builtins()) <= first_column
    assert set(introspect.transforms()) <= first_column


def test_repl_help_topics():
    out, _, _ = drive(":help\r:help tanh\r:help grad\r:help language\r:help tahn\r")
    assert ":vars" in out and ":save FILE" in out
    assert "tanh(x)" in out and "x -> 1 - tanh(x)^2" in out          # computed by the engine
    assert "example: tanh([0.5, 2])  →  [0.46211716, 0.96402758]" in out
    assert "grad(x -> x^2 * sin(x))  →  x -> 2*x*sin(x) + x^2*cos(x)" in out
    assert "def f(x) = x^2 * sin(x)" in out
    assert "no help on 'tahn'; did you mean" in out and "'tanh'" in out


def test_repl_help_has_a_page_for_every_topic():
    from dsl.repl import commands, keys
    console = Console(file=io.StringIO(), width=100)
    for topic in help.topics():
        page = help.page(topic, dsl.Interpreter, commands.COMMANDS, keys.KEYS)
        assert page is not None, topic
        console.print(page)
    assert console.file.getvalue().count("example: ") >= len(introspect.builtins()) // 2


def test_repl_help_names_exactly_the_engines_transforms():
    assert set(help.TRANSFORMS) == set(introspect.transforms())


def test_repl_save_reset_load_restores_the_same_values(tmp_path):
    keys = ("W = randn(2, 3)\rv = [1/3, -0.0, 1e-300, inf, -inf, nan]\r"
            "r = {a: (shape(1), (2,)), b: zeros(0, 3)}\rdef f(x) = tanh(W @ x)\r"
            "g = x -> { t = tanh(x); return t * x }\rh = exp\rpi = 3\r"
            ":save session.bp\r:reset\r:vars\r:load session.bp\r")
    interp = dsl.Interpreter()
    out, _, repl = drive(keys, interp)
    assert "saved 7 definitions" in out and "a fresh session" in out and "no definitions yet" in out
    assert repl.interp is not interp
    for name in ["W", "v", "r", "f", "g", "h", "pi"]:
        _assert_same(repl.interp, interp, name)
    again = dsl.run_file(tmp_path / "session.bp")          # `bp FILE` rebuilds the same bindings
    for name in ["W", "v", "f", "pi"]:
        _assert_same(again, interp, name)


def _run_keys(keys: str, interp: dsl.Interpreter) -> tuple[str, Repl]:
    """Like drive, but the session keeps its own output stream: (console text, the REPL)."""
    console = Console(file=io.StringIO(), width=100, highlight=False)
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        with create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(interp, console=console, history=InMemoryHistory())
            repl.run()
    return console.file.getvalue(), repl


def test_repl_reset_keeps_writing_to_the_stream_given():
    mine = io.StringIO()
    shown, repl = _run_keys('print "before"\r:reset\rprint "after"\r',
                            dsl.Interpreter(stdout=mine, precision=3))
    assert "a fresh session" in shown and "after" not in shown
    assert mine.getvalue() == "before\nafter\n"
    assert repl.interp.stdout is mine and repl.interp.precision == 3


def test_repl_reset_of_a_default_session_keeps_following_sys_stdout():
    import contextlib
    during, later = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(during):
        shown, repl = _run_keys('print "before"\r:reset\rprint "after"\r', dsl.Interpreter())
    assert "a fresh session" in shown
    assert during.getvalue() == "before\nafter\n"
    with contextlib.redirect_stdout(later):                 # a redirect made after the reset
        repl.interp.exec('print "later"')
    assert later.getvalue() == "later\n" and during.getvalue() == "before\nafter\n"


def test_repl_save_keeps_defs_with_their_shape_annotations(tmp_path):
    out, _, repl = drive("def m(x, W: [2, 3]) = W @ x\rdef k() = 1\r:save s.bp\r")
    text = (tmp_path / "s.bp").read_text()
    assert "def m(x, W: [2, 3]) = W @ x\n" in text and "def k() = 1\n" in text
    again = dsl.run_file(tmp_path / "s.bp")
    with pytest.raises(dsl.BpShapeError):
        again.exec("m([1, 2], ones(2, 2))")                 # the annotation still holds


def _assert_same(new, old, name):
    a, b = new.globals[name], old.globals[name]
    if introspect.is_function(b):
        assert new.format(a) == old.format(b), name
    elif isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b)                  # exact, NaN equal to NaN
        assert np.array_equal(np.signbit(a), np.signbit(b)), name
    else:
        assert new.format(a) == old.format(b), name


def test_repl_save_to_an_unwritable_place_is_a_clean_error():
    out, reason, _ = drive("x = 1\r:save /nonexistent-dir/s.bp\r:load missing.bp\rx\r")
    assert "io error: cannot write" in out
    assert "import error" in out
    assert out.splitlines()[-1] == "1" and reason == "eof"


def test_repl_load_runs_the_file_every_time(tmp_path):
    (tmp_path / "count.bp").write_text("n = n + 1\n")
    out, _, repl = drive("n = 0\r:load count.bp\r:load count.bp\rn\r")
    assert out.splitlines()[-1] == "2"


def test_script_literals_round_trip_exactly():
    values = {"a": np.array([0.1, 1 / 3, 2.0**60, -0.0, 5e-324]), "s": np.array(2.5)}
    for name, value in values.items():
        text = script.literal(dsl.Interpreter(), value)
        np.testing.assert_array_equal(dsl.Interpreter().eval(text), value)


# ── completion ───────────────────────────────────────────────────────────

def _session() -> dsl.Interpreter:
    bp = dsl.Interpreter()
    bp.exec("weights = ones(2, 3)\nwobble = 1\ndef welcome(x, y) = x*y\n"
            "θ = {W: weights, bias: [1, 2], inner: {deep: 1}}")
    return bp


def test_completion_of_a_user_defined_name_with_its_shape_or_signature():
    got = {c.text: c.meta for c in completer.candidates("y = we", 6, _session())}
    assert got == {"weights": "[2, 3]", "welcome": "welcome(x, y)"}
    assert all(c.start == -2 for c in completer.candidates("y = we", 6, _session()))


def test_completion_of_record_fields():
    got = {c.text: c.meta for c in completer.candidates("θ.", 2, _session())}
    assert got == {"W": "[2, 3]", "bias": "[2]", "inner": "{deep: []}"}
    assert [c.text for c in completer.candidates("θ.inner.d", 9, _session())] == ["deep"]
    assert [c.text for c in completer.candidates("sum(θ.b", 7, _session())] == ["bias"]


def test_completion_of_keywords_builtins_transforms_and_commands():
    bp = _session()
    assert {"def": "keyword"}.items() <= {c.text: c.meta for c in completer.candidates("de", 2, bp)}.items()
    assert ("tanh", "tanh(x)") in {(c.text, c.meta) for c in completer.candidates("ta", 2, bp)}
    assert "grad(f, wrt=…)" in {c.meta for c in completer.candidates("gra", 3, bp)}
    assert [c.text for c in completer.candidates(":va", 3, bp)] == [":vars"]
    assert "tanh" in [c.text for c in completer.candidates(":help tan", 9, bp)]
    assert completer.candidates('print "we', 9, bp) == []              # inside a string
    assert completer.candidates("x = 2", 5, bp) == []                  # a number, no name


def test_completer_through_prompt_toolkit():
    bp = _session()
    done = list(completer.BpCompleter(lambda: bp).get_completions(
        Document("θ.bi"), CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position) for c in done] == [("bias", -2)]


# ── history, progress ────────────────────────────────────────────────────

def test_history_is_kept_in_the_user_data_dir(tmp_path):
    path = history.history_path()
    assert path == tmp_path / "data" / "bp" / "history"
    kept = history.open_history()
    assert isinstance(kept, FileHistory)
    kept.store_string("x = 1")
    assert "x = 1" in list(history.open_history().load_history_strings())


def test_history_in_an_unwritable_place_is_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert isinstance(history.open_history(blocker / "bp" / "history"), InMemoryHistory)


def test_repl_shows_a_progress_bar_for_a_long_loop_and_keeps_prints(monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    out, reason, repl = drive("for i in range(30) { print i }\ri\r", progress=True, tty=True)
    assert [str(i) in out for i in range(30)] == [True] * 30
    assert repl.interp.stdout is not None and not isinstance(repl.interp.stdout, progress._Above)
    assert reason == "eof"


# ── the lexer and the Pygments plugin ────────────────────────────────────

def test_lexer_reads_its_names_from_the_engine():
    from pygments.token import Error, Keyword, Name
    from dsl.repl.lexer import BpLexer
    lexer = BpLexer()
    for word in introspect.keywords():
        assert list(lexer.get_tokens(word))[0][0] in Keyword, word
    for name in introspect.builtins():
        assert list(lexer.get_tokens(name))[0][0] in Name.Builtin, name
    grammar = (ROOT / "grammar" / "bp.lark").read_text()
    import re
    words = set(re.findall(r'^[A-Z]+: "([a-z]+)"$', grammar, re.M))
    assert words == set(introspect.keywords())
    for path in ROOT.glob("examples/*.bp"):
        assert not [v for t, v in lexer.get_tokens(path.read_text()) if t in Error], path


def test_pygments_finds_the_plugin():
    from pygments.lexers import find_plugin_lexers, get_lexer_by_name, get_lexer_for_filename
    from dsl.repl.lexer import BpLexer
    assert BpLexer in list(find_plugin_lexers()), "pip install the project to register the plugin"
    assert isinstance(get_lexer_for_filename("tour.bp"), BpLexer)
    assert isinstance(get_lexer_by_name("bp-lang"), BpLexer)


@pytest.mark.parametrize("args", [["-l", "bp-lang"], []])
def test_pygmentize_highlights_the_tour(args):
    run = subprocess.run([sys.executable, "-m", "pygments", *args, "-f", "terminal",
                          str(ROOT / "examples" / "tour.bp")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "\x1b[" in run.stdout and "def" in run.stdout


# ── the command line ─────────────────────────────────────────────────────

def test_bp_reads_a_script_from_a_pipe():
    run = subprocess.run([sys.executable, "-m", "dsl"], input="print 1\nx = 2\nx + 1\n",
                         capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "1\n3\n")


def test_bp_c_imports_no_terminal_libraries():
    code = ("import io, sys, dsl.cli; dsl.cli.main(['-c', 'print 1'], stdout=io.StringIO()); "
            "print(sorted(m for m in ('prompt_toolkit', 'rich', 'pygments') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


@pytest.mark.parametrize("how", ["-c", "file"])
def test_bp_imports_nothing_it_does_not_need_to_start(how, tmp_path):
    """What made start-up slow (docs/design.md): Lark (parsing uses generated tables),
    dataclasses (and inspect), numpy.random (made on the first random draw)."""
    script = tmp_path / "one.bp"
    script.write_text("print 1\n")
    argv = ["-c", "print 1"] if how == "-c" else [str(script)]
    watched = "('lark', 'dataclasses', 'numpy.random')"
    # What `import numpy` loads by itself is not bp's doing (NumPy 1 imports numpy.random).
    baseline = subprocess.run([sys.executable, "-c", f"import sys, numpy; print(sorted(m for m in "
                               f"{watched} if m in sys.modules))"], capture_output=True, text=True)
    code = (f"import io, sys, dsl.cli; dsl.cli.main({argv!r}, stdout=io.StringIO()); "
            f"print(sorted(m for m in {watched} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == baseline.stdout.strip(), run.stdout + run.stderr


@pytest.mark.skipif(not (Path(sys.executable).parent / "bp").exists(),
                    reason=f"no bp executable beside {sys.executable}")
def test_bp_into_a_pipe_shows_each_line_as_it_is_printed(tmp_path):
    """`bp train.bp | tee log`: a line printed before a long loop arrives before it ends."""
    script = tmp_path / "slow.bp"
    script.write_text('print "started"\nfor i in range(1e9) { y = i }\n')
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "bp"), str(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        import select
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "nothing printed within 20 s: stdout is block-buffered into the pipe"
        assert proc.stdout.readline() == "started\n"
    finally:
        proc.kill()
        proc.wait()


def test_repl_modules_stay_small():
    for path in (ROOT / "dsl" / "repl").glob("*.py"):
        limit = 150 if path.name == "app.py" else 200
        assert len(path.read_text().splitlines()) <= limit, path.name


# ── issue 17: ans, help shortcuts, :q, LaTeX-to-Unicode completion ───────

def test_repl_ans_holds_the_last_value_shown():
    out, _, repl = drive("3 * 4\rans + 1\rx = ans * 2\rx\r")
    assert out.splitlines()[-2:] == ["13", "26"]
    assert float(repl.interp.eval("ans")) == 26.0


def test_repl_ans_is_not_saved_as_a_definition(tmp_path):
    path = tmp_path / "s.bp"
    drive(f"x = 2\rx + 1\r:save {path}\r")
    text = path.read_text()
    assert "x = 2" in text and "ans" not in text


def test_repl_help_and_question_mark_and_q():
    out, reason, _ = drive("help\r?grad\r:q\rx = 1\r")
    assert reason == "quit"
    assert "error" not in out
    grad_page, _, _ = drive(":help grad\r")
    assert grad_page.strip() and grad_page.strip().splitlines()[-1] in out


def test_repl_help_is_a_name_once_bound():
    out, _, _ = drive("help = 5\rhelp\r")
    assert out.splitlines()[-1] == "5"


@pytest.mark.parametrize("typed, want", [("\\theta", "θ"), ("x = \\lambda", "λ"), ("\\Omega", "Ω"),
                                         ("y\\hat", "ŷ"), ("\\sigma", "σ"), ("\\ell", "ℓ")])
def test_completion_of_latex_names_to_unicode(typed, want):
    found = completer.candidates(typed, len(typed), dsl.Interpreter(), explicit=True)
    assert [c.text for c in found] == [want]
    word = typed.rsplit(" ", 1)[-1]
    assert found[0].start == -len(word)                   # replaces the whole \name (y\hat: with y)
    bp = dsl.Interpreter()
    bp.exec(f"{want} = 2")                                 # a name bp takes
    assert float(bp.eval(want)) == 2.0


def test_completion_of_a_latex_prefix_lists_the_symbols():
    # Julia's table: \phi is ϕ and \varphi φ, \epsilon ϵ and \varepsilon ε
    found = completer.candidates("\\va", 3, dsl.Interpreter(), explicit=True)
    assert [(c.meta, c.text) for c in found] == [("\\varepsilon", "ε"), ("\\varphi", "φ"),
                                                 ("\\varsigma", "ς"), ("\\vartheta", "ϑ")]
    assert [c.text for c in completer.candidates("\\phi", 4, dsl.Interpreter())] == ["ϕ"]
    assert [c.text for c in completer.candidates("\\epsilon", 8, dsl.Interpreter())] == ["ϵ"]


def test_repl_type_shows_the_result_shape_in_the_annotations_names():
    out, _, _ = drive("def layer(W: [m, n], x: [n]) = tanh(W @ x)\r:type layer\r"
                      "def c(x: [3]) = sum(x^3)\r:type hessian(c)\r:type grad(c)\r"
                      "def o(a: [m], b: [n]) = (outer(a, b), sum(a))\r:type o\r"
                      "def q(a: [2, _]) = reshape(a, -1)\r:type q\r:type x -> x\r")
    lines = out.splitlines()[1:]
    assert lines == ["function (W: [m, n], x: [n]) -> [m]", "function (x: [3]) -> [3, 3]",
                     "function (x: [3]) -> [3]", "function (a: [m], b: [n]) -> ([m, n], [])",
                     "function (a: [2, _]) -> [_]", "function (x) -> …"]
