"""Completion.  `candidates(text, cursor, interp)` is pure (testable
without a terminal): keywords, builtins, transforms, the session's names
and, after a `.`, a record's fields, each with what to show beside it
(a signature, a shape).  `BpCompleter` is the thin prompt_toolkit side.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from prompt_toolkit.completion import Completer, Completion

from . import commands, introspect

_WORD = re.compile(r"(?<![\w.])[^\W\d]\w*$")
_LATEX = re.compile(r"\\([A-Za-z]*)$")

# Julia's LaTeX-to-Unicode completion (\theta + Tab is θ), for the letters models
# are written in: Greek, and a combining hat and bar (y\hat is ŷ).
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
          "pi rho sigma tau upsilon phi chi psi omega").split()
SYMBOLS = {name: chr(0x3B1 + i + (i > 16)) for i, name in enumerate(_GREEK)}     # no final ς
SYMBOLS |= {name.capitalize(): chr(0x391 + i + (i > 16)) for i, name in enumerate(_GREEK)}
SYMBOLS |= {"epsilon": "ϵ", "phi": "ϕ"}                   # as Julia (and LaTeX's glyphs)
SYMBOLS |= {"varepsilon": "ε", "vartheta": "ϑ", "varphi": "φ", "varsigma": "ς", "ell": "ℓ",
            "hat": "\u0302", "bar": "\u0304", "tilde": "\u0303"}
_FIELD = re.compile(r"(?<![\w.])([^\W\d]\w*(?:\.[^\W\d]\w*)*)\.(\w*)$")
_FILE_COMMANDS = ("load", "save")


@dataclass(frozen=True)
class Candidate:
    text: str          # what replaces the word before the cursor
    start: int         # where that word starts, relative to the cursor (≤ 0)
    meta: str          # shown beside it: signature, shape, kind


def candidates(text: str, cursor: int, interp, explicit: bool = False) -> list[Candidate]:
    """What could complete the word before `cursor`; `explicit` (Tab) also
    lists everything when that word is empty."""
    before = text[:cursor]
    if before.lstrip().startswith(":"):
        return _command(before.lstrip(), interp)
    line = before.rsplit("\n", 1)[-1]
    if line.count('"') % 2 or "#" in line.split('"')[-1]:
        return []                                    # inside a string or a comment
    m = _LATEX.search(line)
    if m:
        return _symbols(line, m)
    m = _FIELD.search(line)
    if m:
        record = introspect.field_path(interp, m.group(1).split("."))
        return [Candidate(f, -len(m.group(2)), introspect.describe(record[f]))
                for f in introspect.fields(record) if f.startswith(m.group(2))]
    m = _WORD.search(line)
    prefix = m.group() if m else ""
    if not prefix and not explicit:
        return []
    return [Candidate(c.text, -len(prefix), c.meta) for c in _names(interp)
            if c.text.startswith(prefix)]


def _names(interp) -> list[Candidate]:
    """Session names first, then keywords, transforms, builtins, constants."""
    from .help import TRANSFORMS
    seen: set[str] = set()
    out: list[Candidate] = []

    def add(name: str, meta: str) -> None:
        if name not in seen:
            seen.add(name)
            out.append(Candidate(name, 0, meta))

    for name in sorted(introspect.user_names(interp)):
        add(name, introspect.describe(interp.globals[name], name))
    for name in sorted(introspect.keywords()):
        add(name, "keyword")
    for name in introspect.transforms():
        add(name, TRANSFORMS[name][0] if name in TRANSFORMS else "transform")
    for info in introspect.builtins().values():
        add(info.name, info.signature)
    for name in introspect.constants():
        add(name, "constant")
    return out


def _command(before: str, interp) -> list[Candidate]:
    name, space, arg = before[1:].partition(" ")
    if not space:
        return [Candidate(":" + c.name, -len(before), c.help)
                for c in commands.COMMANDS.values() if c.name.startswith(name)]
    arg = arg.lstrip()
    if name == "help":
        from .help import topics
        return [Candidate(t, -len(arg), "topic") for t in topics() if t.startswith(arg)]
    if name in _FILE_COMMANDS:
        paths = sorted(glob.glob(os.path.expanduser(arg) + "*"))[:200]
        return [Candidate(p + ("/" if os.path.isdir(p) else ""), -len(arg),
                          "folder" if os.path.isdir(p) else "file") for p in paths]
    if name in ("graph", "type"):
        return candidates(arg, len(arg), interp)
    return []


def _symbols(line: str, m) -> list[Candidate]:
    r"""`\theta` becomes θ; an accent joins the letter before it where Unicode has
    the accented letter (`y\hat` is ŷ; bp's names take no combining marks)."""
    import unicodedata
    word = m.group(1)
    start = -len(m.group())
    out = []
    for name, symbol in SYMBOLS.items():
        if not name.startswith(word):
            continue
        if unicodedata.combining(symbol):
            base = line[:m.start()][-1:]
            if not base or not (base.isalnum() or base == "_"):
                continue
            joined = unicodedata.normalize("NFC", base + symbol)
            if len(joined) == 1:                 # a letter of its own (ŷ), so a name's part
                out.append(Candidate(joined, start - 1, f"\\{name}"))
        else:
            out.append(Candidate(symbol, start, f"\\{name}"))
    exact = [c for c in out if c.meta == "\\" + word]
    return exact or sorted(out, key=lambda c: c.meta)


class BpCompleter(Completer):
    """prompt_toolkit's view of `candidates`, for the session the REPL holds now."""

    def __init__(self, session_of):
        self.session_of = session_of            # a callable: :reset swaps the Interpreter

    def get_completions(self, document, complete_event):
        try:
            found = candidates(document.text, document.cursor_position, self.session_of(),
                               explicit=complete_event.completion_requested)
        except Exception:                       # completion must never disturb typing
            return
        for c in found:
            yield Completion(c.text, start_position=c.start, display_meta=c.meta)
