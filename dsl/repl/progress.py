"""A transient rich progress bar for a long top-level `for` loop, through
the Interpreter's `progress` hook ((steps, label) → advance()/close()).

The bar appears only once a loop has run for DELAY seconds, so short
loops never flicker.  While it shows, the session's prints go through the
same rich console as the bar (rich draws them above it), so nothing
garbles; it is erased before the next prompt.  Never on a console that is
not a terminal.
"""
from __future__ import annotations

import time

DELAY = 0.5


class _Above:
    """A stream for the Interpreter's prints while a bar is live: through the console."""

    def __init__(self, console):
        self.console = console

    def write(self, text: str) -> int:
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        self.console.file.flush()


class LoopBar:
    def __init__(self, repl, total: int, label: str, delay: float | None = None):
        self.repl, self.total, self.label = repl, total, label
        self.delay = DELAY if delay is None else delay
        self.start = time.monotonic()
        self.done = 0
        self.bar = None
        self.stdout = None

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif time.monotonic() - self.start >= self.delay and self.done < self.total \
                and self.repl.console.is_terminal:
            self._show()

    def _show(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
            TimeRemainingColumn
        interp = self.repl.interp
        getattr(interp.stdout, "flush", lambda: None)()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=self.repl.console, transient=True,
                            redirect_stdout=False, redirect_stderr=False)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=self.total, completed=self.done)
        self.stdout, interp.stdout = interp.stdout, _Above(self.repl.console)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.repl.interp.stdout = self.stdout
            self.bar = None


def hook(repl):
    """The Interpreter's `progress` callable for this REPL."""
    return lambda total, label: LoopBar(repl, total, label)
