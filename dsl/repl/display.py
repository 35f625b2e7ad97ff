"""How the REPL shows things, as rich Text: values as highlighted bp
source (matrices aligned in columns), errors in the SPEC §8 form with the
caret in colour, graph listings with derivative nodes marked.

The words and numbers all come from the engine (`Interpreter.format`,
`str(err)`, `FunctionGraph.listing()`); this module only lays them out
and colours them.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.text import Text

from . import style

MAX_ALIGNED = 1000          # larger tensors print as the engine summarises them


@lru_cache(maxsize=1)
def _lexer():
    from .lexer import BpLexer
    return BpLexer(stripnl=False, ensurenl=False)


def source(text: str) -> Text:
    """bp source (or a value printed as bp) highlighted with the bp lexer."""
    out = Text()
    for token, part in _lexer().get_tokens(text):
        out.append(part, style=style.rich_style(token) or None)
    return out


def value(interp, v, width: int = 80) -> Text:
    """A value as the REPL echoes it: the engine's text; a matrix on one line when that
    fits in `width` columns (the terminal's), else in aligned columns, a row a line."""
    text = interp.format(v)
    if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] > 1 and 0 < v.size <= MAX_ALIGNED \
            and len(text) > width:
        return source(_aligned(interp, v))
    return source(text)


def _aligned(interp, m: np.ndarray) -> str:
    cells = [[interp.format(np.asarray(x)) for x in row] for row in m]
    widths = [max(len(row[j]) for row in cells) for j in range(m.shape[1])]
    rows = ["[" + ", ".join(c.rjust(w) for c, w in zip(row, widths)) + "]" for row in cells]
    return "[" + ",\n ".join(rows) + "]"


def error(err) -> Text:
    """A BpError as SPEC §8: location, kind (in colour), message; the source
    line highlighted; the caret in colour."""
    lines = str(err).split("\n")
    header = lines[0]
    tail = f"{err.kind}: {err.message}"
    if header.endswith(tail):
        out = Text(header[: len(header) - len(tail)], style="bold")
        out.append(err.kind, style=style.ROLES["error"])
        out.append(": " + err.message)
    else:
        out = Text(header, style=style.ROLES["error"])
    if len(lines) == 3 and lines[1].startswith("    "):
        out.append("\n    ")
        out.append_text(source(lines[1][4:]))
        out.append("\n" + lines[2], style=style.ROLES["caret"])
    elif len(lines) > 1:
        out.append("\n" + "\n".join(lines[1:]))
    return out


def internal(exc: BaseException) -> Text:
    """A Python exception that escaped the engine: one line, never a traceback."""
    out = Text("internal error", style=style.ROLES["internal"])
    out.append(f": {type(exc).__name__}: {exc} (a bug in bp; the session goes on)")
    return out


def note(text: str) -> Text:
    return Text(text, style=style.ROLES["note"])


def listing(text: str) -> Text:
    """A graph listing: nodes highlighted, derivative nodes (marked ∂) in their colour."""
    out = Text()
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("\n")
        if line.rstrip().endswith("∂"):
            out.append(line, style=style.ROLES["derivative"])
        elif line.startswith("return"):
            head, _, count = line.partition("#")
            out.append_text(source(head))
            out.append("#" + count if count else "", style=style.ROLES["note"])
        else:
            out.append_text(source(line))
    return out


def table(title: str, columns: list[str], rows: list[list[str]]):
    from rich.table import Table
    t = Table(title=title, title_justify="left", title_style=style.ROLES["heading"],
              show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*[source(cell) if i < 1 else cell for i, cell in enumerate(row)])
    return t
