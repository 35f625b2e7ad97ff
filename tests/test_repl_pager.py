"""Long REPL output goes through a pager (issue 17): one print taller than the
terminal (`:ops`, a big matrix) is paged, what fits is printed, and nothing is
ever paged off a terminal (pipes, files, these tests' own consoles) or while a
progress bar is live.  The last test runs `bp` in tmux with `less`.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("prompt_toolkit")
pytest.importorskip("rich")
from prompt_toolkit.application import create_app_session  # noqa: E402
from prompt_toolkit.history import InMemoryHistory  # noqa: E402
from prompt_toolkit.input import create_pipe_input  # noqa: E402
from prompt_toolkit.output import DummyOutput  # noqa: E402

import dsl  # noqa: E402
from dsl.repl import pager  # noqa: E402
from dsl.repl.app import Repl  # noqa: E402


def console(terminal=True, height=20, width=80):
    """A PagingConsole on a StringIO that says it is a terminal (or not), whose pager
    records what it is given."""
    c = pager.PagingConsole(file=io.StringIO(), force_terminal=terminal, width=width,
                            height=height, highlight=False)
    c.paged = []
    c.pager = lambda text, cmd: c.paged.append(text) or True
    return c


@pytest.fixture(autouse=True)
def _a_pager(monkeypatch):
    monkeypatch.setenv("PAGER", "less")
    monkeypatch.setenv("TERM", "xterm-256color")


def test_rows_counts_wrapped_lines_without_colour_codes():
    assert pager.rows("ab\ncd\n", 10) == 2
    assert pager.rows("x" * 25, 10) == 3                     # 25 columns wrap to 3 rows
    assert pager.rows("\x1b[1;31m" + "x" * 10 + "\x1b[0m", 10) == 1
    assert pager.rows("θ" * 10 + "\n\n", 10) == 2            # an empty line is a row
    assert pager.rows("界" * 6, 10) == 2                      # wide characters: 12 columns


def test_what_fits_is_printed_and_what_does_not_is_paged():
    c = console(height=10)
    c.print("\n".join(f"line {i}" for i in range(9)))        # 9 rows + the prompt's: fits
    assert c.paged == [] and c.file.getvalue().count("\n") == 9
    c.print("\n".join(f"line {i}" for i in range(10)))
    assert len(c.paged) == 1 and c.paged[0].count("line ") == 10
    assert c.file.getvalue().count("\n") == 9               # nothing more was printed


def test_never_paged_off_a_terminal_or_without_a_pager(monkeypatch):
    long = "\n".join(str(i) for i in range(100))
    c = console(terminal=False)
    c.print(long)
    assert c.paged == [] and c.file.getvalue().count("\n") == 100
    for env in ({"PAGER": ""}, {"TERM": "dumb"}):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        c = console()
        c.print(long)
        assert c.paged == [] and c.file.getvalue().count("\n") == 100
        monkeypatch.setenv("PAGER", "less")
        monkeypatch.setenv("TERM", "xterm-256color")


def test_not_paged_while_a_progress_bar_is_live():
    from rich.live import Live
    c = console()
    with Live("bar", console=c, transient=True, auto_refresh=False):
        c.print("\n".join(str(i) for i in range(100)))
    assert c.paged == []


def test_the_pager_command_gets_the_text_and_colours(tmp_path, monkeypatch):
    monkeypatch.delenv("LESS", raising=False)
    out = tmp_path / "paged"
    (tmp_path / "fake_pager.py").write_text(   # a pager that writes down $LESS and its input
        "import os, sys\n"
        "text = sys.stdin.buffer.read().decode('utf-8')\n"
        f"open({str(out)!r}, 'w', encoding='utf-8').write(os.environ.get('LESS', '') + '|' + text)\n")
    cmd = f"'{sys.executable}' '{tmp_path / 'fake_pager.py'}'"
    assert pager.page("\x1b[1mbold\x1b[0m θ\n", cmd)
    assert out.read_text(encoding="utf-8") == "-R|\x1b[1mbold\x1b[0m θ\n"
    monkeypatch.setenv("LESS", "-X")                          # the user's LESS is kept
    pager.page("x", cmd)
    assert out.read_text() == "-X|x"
    monkeypatch.setenv("PAGER", "more -d")
    assert pager.command() == "more -d"


def repl_with(c: pager.PagingConsole):
    interp = dsl.Interpreter(stdout=c.file)
    pipe_cm = create_pipe_input()
    pipe = pipe_cm.__enter__()
    session = create_app_session(input=pipe, output=DummyOutput())
    session.__enter__()
    repl = Repl(interp, console=c, history=InMemoryHistory())
    return repl, lambda: (session.__exit__(None, None, None), pipe_cm.__exit__(None, None, None))


def test_repl_ops_and_a_long_value_are_paged_a_short_one_is_not():
    c = console(height=30, width=100)
    repl, close = repl_with(c)
    try:
        repl.handle(":ops")
        assert len(c.paged) == 1 and "tanh" in c.paged[0] and "logsumexp" in c.paged[0]
        repl.handle("1 + 1")
        assert len(c.paged) == 1 and pager._ANSI.sub("", c.file.getvalue()).strip() == "2"
        repl.handle("reshape(arange(200), 50, 4)")           # 50 rows on a 30-row screen
        assert len(c.paged) == 2 and "[196, 197, 198, 199]" in pager._ANSI.sub("", c.paged[1])
    finally:
        close()


def test_repl_on_a_pipe_pages_nothing():
    c = console(terminal=False, height=30)
    repl, close = repl_with(c)
    try:
        repl.handle(":ops")
        assert c.paged == [] and "logsumexp" in c.file.getvalue()
    finally:
        close()


@pytest.mark.skipif(shutil.which("tmux") is None or shutil.which("less") is None,
                    reason="needs tmux and less")
def test_repl_ops_in_a_real_terminal_opens_less_and_q_comes_back(tmp_path):
    bp = Path(sys.executable).parent / "bp"
    tmux = ["tmux", "-L", f"bp-pager-{uuid.uuid4().hex[:8]}"]
    command = f"env XDG_DATA_HOME={tmp_path} TERM=xterm-256color PAGER=less LESS=-R {bp}"
    subprocess.run(tmux + ["-f", "/dev/null", "new-session", "-d", "-s", "repl", "-x", "100",
                           "-y", "24", "-c", str(tmp_path), command], check=True, timeout=10)

    def screen_when(check, what):
        deadline = time.monotonic() + 10
        while True:
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "repl"],
                                    capture_output=True, text=True, timeout=10).stdout
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the terminal never showed {what}; it shows:\n{screen}")
            time.sleep(0.05)

    def keys(*k):
        subprocess.run(tmux + ["send-keys", "-t", "repl", *k], check=True, timeout=10)

    try:
        screen_when(lambda s: s.rstrip().endswith("bp>"), "the prompt")
        keys("-l", ":ops")
        keys("Enter")
        screen = screen_when(lambda s: s.rstrip().splitlines()[-1:] == [":"], "less's prompt")
        assert "builtin" in screen and "bp> :ops" not in screen   # less has the screen
        keys("q")
        screen = screen_when(lambda s: s.rstrip().endswith("bp>"), "the prompt after q")
        keys("-l", "1 + 2")
        keys("Enter")
        screen_when(lambda s: "\n3\n" in s, "a value after the pager")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=10)
