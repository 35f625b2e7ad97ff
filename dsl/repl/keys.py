"""Key bindings.  Enter runs the input when the engine's parser says it is
complete (`Interpreter.is_complete`), and otherwise starts a new line,
indented one step inside an open `{`.  Ctrl-C (abandon the input) and
Ctrl-D (leave, on an empty line) are prompt_toolkit's own.
"""
from __future__ import annotations

from typing import Callable

from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import has_focus
from prompt_toolkit.key_binding import KeyBindings

INDENT = "    "

KEYS = [
    ("Enter", "run the input if it is complete, else a new line (… prompt)"),
    ("Alt-Enter", "a new line, even where the input is complete"),
    ("Tab", "complete a name, a field after '.', a command; indent at a line's start"),
    ("Ctrl-C", "abandon the input; during a running statement, interrupt it"),
    ("Ctrl-D", "leave, on an empty line"),
    ("Up / Down", "history (kept across sessions), or move between lines"),
    ("Ctrl-R", "search the history"),
    ("→ at the end", "accept the greyed suggestion from history"),
]


def bindings(is_complete: Callable[[str], bool]) -> KeyBindings:
    kb = KeyBindings()
    editing = has_focus(DEFAULT_BUFFER)          # not while searching the history (Ctrl-R)

    @kb.add("enter", filter=editing)
    def _enter(event):
        buf = event.current_buffer
        state = buf.complete_state
        if state is not None and state.current_completion is not None:
            buf.apply_completion(state.current_completion)
            return
        text = buf.text
        # In a statement of several lines, Enter inside it adds a line; at the end it runs.
        at_end = "\n" not in text or not buf.document.text_after_cursor.strip()
        if text.lstrip().startswith(":") or (at_end and is_complete(text)):
            buf.validate_and_handle()
        else:
            _newline(buf)

    @kb.add("escape", "enter", filter=editing)
    def _alt_enter(event):
        _newline(event.current_buffer)

    @kb.add("tab", filter=editing)
    def _tab(event):
        buf = event.current_buffer
        if not buf.document.current_line_before_cursor.strip():
            buf.insert_text(INDENT)
        elif buf.complete_state:
            buf.complete_next()
        else:
            buf.start_completion(select_first=False)

    @kb.add("}", filter=editing)
    def _close(event):
        buf = event.current_buffer
        line = buf.document.current_line_before_cursor
        if line and not line.strip():
            buf.delete_before_cursor(min(len(line), len(INDENT)))
        buf.insert_text("}")

    return kb


def _newline(buf) -> None:
    """A new line that keeps the indentation, one step deeper after `{`."""
    line = buf.document.current_line_before_cursor
    indent = line[: len(line) - len(line.lstrip())]
    if line.split("#")[0].rstrip().endswith("{"):
        indent += INDENT
    buf.insert_text("\n" + indent)
