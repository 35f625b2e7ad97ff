"""The REPL's `:` commands (SPEC §10), one function each, registered with
`@command`.  `dispatch(line, repl)` runs one; it returns True for `:quit`.

A command receives the REPL (`repl.interp`, `repl.console`, `repl.reset()`)
and its argument text.  Engine mistakes raise BpError and are shown by
the loop like any other; nothing here decides what bp code means.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.text import Text

from ..errors import BpIOError, BpValueError
from . import display, introspect


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    run: Callable[..., bool | None]


COMMANDS: dict[str, Command] = {}
ALIASES = {"q": "quit", "h": "help", "?": "help"}        # :q leaves, as in vim and Julia


def command(name: str, usage: str = "", help: str = ""):
    def register(fn):
        COMMANDS[name] = Command(name, usage, help, fn)
        return fn
    return register


def dispatch(line: str, repl) -> bool:
    """Run `:name arg`; True when the REPL should leave."""
    name, _, arg = line.strip()[1:].partition(" ")
    name = ALIASES.get(name.strip(), name.strip())
    cmd = COMMANDS.get(name)
    if cmd is None:
        repl.console.print(unknown(name), soft_wrap=True)
        return False
    return bool(cmd.run(repl, arg.strip()))


def unknown(name: str) -> Text:
    """`unknown command ':nme'; did you mean ':name'?`"""
    close = [c for c in COMMANDS if name and c.startswith(name)]
    close = close or difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.4)
    out = Text("error", style="bold red")
    out.append(f": unknown command ':{name}'")
    out.append(f"; did you mean ':{close[0]}'?" if close else "; :help lists the commands")
    return out


def _path(arg: str) -> Path:
    text = arg.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return Path(os.path.expanduser(text))


def _needs(arg: str, what: str) -> None:
    if not arg:
        raise BpValueError(f"this command needs {what}")


@command("help", "[topic]", "the language, differentiation, a builtin: :help grad")
def _help(repl, arg):
    from . import help, keys
    shown = help.page(arg, repl.scratch, COMMANDS, keys.KEYS)
    if shown is None:
        close = [f"'{t}'" for t in difflib.get_close_matches(arg, help.topics(), n=3)]
        hint = f"; did you mean {' or '.join(close)}?" if close else "; :help lists the topics"
        repl.console.print(Text(f"no help on '{arg}'{hint}"))
    else:
        repl.console.print(shown)


@command("vars", "", "the session's names: kind, shape or signature")
def _vars(repl, arg):
    interp = repl.interp
    rows = [[n, introspect.kind(interp.globals[n]), introspect.describe(interp.globals[n], n)]
            for n in introspect.user_names(interp) if n != "ans"]      # ans: not a definition
    if not rows:
        repl.console.print(display.note("no definitions yet"))
        return
    repl.console.print(display.table("", ["name", "kind", "shape / signature"], rows))


@command("graph", "e", "the computation graph of a function, derivative nodes marked ∂")
def _graph(repl, arg):
    _needs(arg, "a function, as in :graph grad(f)")
    repl.console.print(display.listing(repl.interp.graph(arg).listing()), soft_wrap=True)


@command("latex", "e", "a function's formula (or a value) as LaTeX math: :latex grad(f)")
def _latex(repl, arg):
    _needs(arg, "an expression, as in :latex grad(f)")
    repl.console.print(Text(repl.interp.latex(arg)), soft_wrap=True)


@command("type", "e", "the shape of a value, the signature of a function")
def _type(repl, arg):
    _needs(arg, "an expression, as in :type grad(f)")
    value = introspect.value_of(repl.interp, arg, repl.source_name())
    kind = introspect.kind(value)
    if kind == "function":
        result = repl.interp.result_shape(value) or "…"
        shown = f"({', '.join(introspect.params(value))}) -> {result}"
    else:
        shown = introspect.describe(value)
    out = Text(kind + " ", style="bold")
    out.append_text(display.source(shown))
    repl.console.print(out, soft_wrap=True)


@command("ops", "", "every builtin, its signature and whether it is differentiable")
def _ops(repl, arg):
    from .help import TRANSFORMS
    rows = [[i.name, i.signature, "yes" if i.differentiable else "no gradient", i.doc]
            for i in introspect.builtins().values()]
    rows += [[name, TRANSFORMS[name][0] if name in TRANSFORMS else name, "transform",
              TRANSFORMS[name][1] if name in TRANSFORMS else ""]
             for name in introspect.transforms()]
    repl.console.print(display.table("", ["builtin", "signature", "derivative", "what"], rows))


@command("load", "FILE", "run a bp file into the session (every time, unlike import)")
def _load(repl, arg):
    _needs(arg, "a file name")
    before = set(repl.interp.globals)
    repl.interp.run_file(_path(arg))
    new = len(set(repl.interp.globals) - before)
    repl.console.print(display.note(f"loaded {arg} ({new} new names)"))


@command("save", "FILE", "write the session's definitions as a script that recreates them")
def _save(repl, arg):
    from .script import session_script
    _needs(arg, "a file name")
    text, count = session_script(repl.interp)
    path = _path(arg)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise BpIOError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    repl.console.print(display.note(f"saved {count} definitions to {path}"))


@command("engine", "[numpy|jax]", "what runs compiled functions: :engine jax jits them with JAX")
def _engine(repl, arg):
    interp = repl.interp
    if arg:
        interp.set_engine(arg)
    devices = f" on {interp.devices} devices" if interp.devices else ""
    repl.console.print(display.note(f"engine: {interp.engine}{devices}"))


@command("reset", "", "forget every definition: a fresh session")
def _reset(repl, arg):
    repl.reset()
    repl.console.print(display.note("a fresh session"))


@command("quit", "", "leave (Ctrl-D on an empty line does too)")
def _quit(repl, arg):
    return True
