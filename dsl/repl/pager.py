"""Long REPL output through a pager, as IPython's `?` and Julia's `less` do.

The REPL's console is a `PagingConsole`: one print (a value, the `:ops`
table, a `:help` page, a graph listing) that is taller than the terminal
goes to the pager, `$MANPAGER` or `$PAGER` or else `less` (with colours:
`LESS=-R` unless LESS is set); anything that fits is printed as before.
Only on a terminal: never when the output is a pipe or a file (tests, `bp
< script`), never while a progress bar is live, and not on a dumb
terminal or where no pager is found.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess

from rich.cells import cell_len
from rich.console import Console

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def rows(text: str, width: int) -> int:
    """The terminal rows the text takes, its long lines wrapped at width."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return sum(max(1, math.ceil(cell_len(_ANSI.sub("", line)) / max(width, 1))) for line in lines)


def command() -> str | None:
    """The pager to run (a shell command), or None: no paging."""
    if os.environ.get("TERM") in ("dumb", "emacs"):
        return None
    chosen = os.environ.get("MANPAGER") or os.environ.get("PAGER")
    if chosen is not None:
        return chosen.strip() or None                    # PAGER= (empty) turns it off
    return "less" if shutil.which("less") else None


def page(text: str, cmd: str) -> bool:
    """Show text in the pager and wait for it; False when it could not start."""
    env = dict(os.environ)
    env.setdefault("LESS", "-R")                         # less shows the colours
    try:
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, env=env,
                                encoding="utf-8", errors="backslashreplace")
    except OSError:
        return False
    try:
        with proc.stdin as pipe:
            pipe.write(text)
    except (OSError, KeyboardInterrupt):                 # quit before the end: fine
        pass
    while True:
        try:
            proc.wait()
            return True
        except KeyboardInterrupt:                        # Ctrl-C belongs to the pager
            pass


class PagingConsole(Console):
    """A rich Console whose prints taller than the terminal go through a pager."""

    pager = staticmethod(page)                           # replaced in tests

    def print(self, *objects, **kwargs) -> None:
        cmd = command() if self._may_page() else None
        if cmd is None:
            return super().print(*objects, **kwargs)
        with self.capture() as captured:
            super().print(*objects, **kwargs)
        text = captured.get()
        width, height = self.size
        if rows(text, width) > height - 1 and self.pager(text, cmd):
            return None                                  # (a row is left for the prompt)
        self.file.write(text)
        self.file.flush()
        return None

    def _may_page(self) -> bool:
        live = getattr(self, "_live_stack", None) or getattr(self, "_live", None)
        return self.is_terminal and not self.is_dumb_terminal and not self.legacy_windows \
            and not live and not self._buffer_index
