"""Input history kept across sessions in `$XDG_DATA_HOME/bp/history`
(`~/.local/share/bp/history` by default).  A place that cannot be created,
read or written gives in-memory history, silently: history is a comfort,
never a reason for the REPL to fail.
"""
from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory


def history_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "bp" / "history"


class _QuietFileHistory(FileHistory):
    """A FileHistory that stops writing (keeping the session's lines) when the disk says no."""

    def load_history_strings(self):
        try:
            yield from list(super().load_history_strings())
        except OSError:
            return

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError:
            pass


def open_history(path: Path | None = None) -> History:
    path = path or history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError:
        return InMemoryHistory()
    return _QuietFileHistory(str(path))
