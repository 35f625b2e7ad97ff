"""The REPL in a real terminal: `bp` runs inside a detached tmux session
(a private tmux server, so nothing of the user's tmux is touched), keys
are typed with `send-keys`, and the screen is read with `capture-pane`.

Skipped only when tmux is not installed (.ci/run installs it).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BP = Path(sys.executable).parent / "bp"
WAIT = 10.0            # seconds to wait for the screen to show what is expected


class Terminal:
    def __init__(self, tmp_path: Path):
        self.tmux = ["tmux", "-L", f"bp-test-{uuid.uuid4().hex[:8]}"]
        command = f"env XDG_DATA_HOME={tmp_path} TERM=xterm-256color {BP}"
        subprocess.run(self.tmux + ["-f", "/dev/null", "new-session", "-d", "-s", "repl",
                                    "-x", "100", "-y", "40", "-c", str(tmp_path), command],
                       check=True, timeout=WAIT)

    def screen(self) -> str:
        run = subprocess.run(self.tmux + ["capture-pane", "-p", "-t", "repl"],
                             capture_output=True, text=True, timeout=WAIT)
        return run.stdout

    def type(self, text: str) -> None:
        subprocess.run(self.tmux + ["send-keys", "-t", "repl", "-l", text], check=True, timeout=WAIT)
        subprocess.run(self.tmux + ["send-keys", "-t", "repl", "Enter"], check=True, timeout=WAIT)

    def wait_for(self, check, what: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the terminal never showed {what}; it shows:\n{screen}")
            time.sleep(0.05)

    def running(self) -> bool:
        return subprocess.run(self.tmux + ["has-session", "-t", "repl"], capture_output=True,
                              timeout=WAIT).returncode == 0

    def close(self) -> None:
        subprocess.run(self.tmux + ["kill-server"], capture_output=True, timeout=WAIT)


def prompts(screen: str) -> int:
    return sum(line.startswith("bp> ") or line == "bp>" for line in screen.splitlines())


def test_repl_in_a_real_terminal(tmp_path):
    term = Terminal(tmp_path)
    try:
        term.wait_for(lambda s: prompts(s) == 1, "the first prompt")
        term.type("def f(x) = x^2 * sin(x)")
        term.wait_for(lambda s: prompts(s) == 2, "a prompt after the def")
        term.type("grad(f)(2)")
        term.wait_for(lambda s: "1.9726024" in s, "the value of grad(f)(2)")
        term.type("grad(f)")
        term.wait_for(lambda s: "x -> 2*x*sin(x) + x^2*cos(x)" in s, "the formula of grad(f)")
        term.type("1 +* 2")
        screen = term.wait_for(lambda s: "syntax error" in s and prompts(s) == 5,
                               "the syntax error and a new prompt")
        lines = screen.rstrip("\n").splitlines()
        error = next(i for i, line in enumerate(lines) if "syntax error" in line)
        assert lines[error].startswith("<repl[4]>:1:4: syntax error")
        assert lines[error + 1] == "    1 +* 2"
        assert lines[error + 2] == "       ^"                  # the caret, under '*'
        assert lines[-1].rstrip() == "bp>"                    # the prompt is back
        term.type(":quit")
        deadline = time.monotonic() + WAIT
        while term.running():                                 # bp leaves, and its pane closes
            assert time.monotonic() < deadline, "bp did not leave on :quit"
            time.sleep(0.05)
    finally:
        term.close()
