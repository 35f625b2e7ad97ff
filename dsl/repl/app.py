"""The REPL loop (SPEC §10): read a whole statement with prompt_toolkit,
hand it to the Interpreter, show what comes back with rich.

A thin shell over one Interpreter, which it holds (never subclasses):
whether input is complete, what it means and how values print are the
engine's.  The loop survives everything typed at it: a BpError is shown
as SPEC §8, any other exception as one "internal error" line, and Ctrl-C
during a running statement as "interrupted".  Only `:quit` and Ctrl-D on
an empty line end it.
"""
from __future__ import annotations

import inspect

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.lexers import PygmentsLexer
from rich.console import Console

from .. import __version__
from ..errors import BpError
from ..interpreter import Interpreter
from . import commands, display, keys, progress, style
from .completer import BpCompleter
from .history import open_history
from .lexer import BpLexer
from .pager import PagingConsole

PROMPT = "bp> "
ANS = "ans"                                  # the last value shown
CONTINUATION = "... "


class Repl:
    """One interactive session: an Interpreter, a prompt, a console."""

    def __init__(self, interp: Interpreter, *, console: Console | None = None,
                 input=None, output=None, history=None, progress: bool = False):
        self.interp = interp
        self.inputs = 0                      # inputs read so far: each is its own source file
        self.show_progress = progress
        self._install_progress()
        self.console = console or PagingConsole(highlight=False)   # long output: a pager
        self.session: PromptSession = PromptSession(
            message=[("class:prompt", PROMPT)],
            prompt_continuation=lambda width, line, soft: [("class:continuation", CONTINUATION)],
            multiline=True,
            key_bindings=keys.bindings(lambda text: self.interp.is_complete(text)),
            lexer=PygmentsLexer(BpLexer),
            completer=BpCompleter(lambda: self.interp),
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            style=style.prompt_style(),
            include_default_pygments_style=False,
            history=history if history is not None else open_history(),
            input=input,
            output=output,
        )

    def run(self) -> str:
        """Read and run inputs until `:quit` ("quit") or Ctrl-D / end of input ("eof")."""
        self.console.print(display.note(
            f"bp {__version__}: :help for help, :quit or Ctrl-D to leave"))
        while True:
            self._flush()
            try:
                text = self.session.prompt()
            except KeyboardInterrupt:          # Ctrl-C abandons this input only
                continue
            except EOFError:
                return "eof"
            if self.handle(text):
                return "quit"

    def handle(self, text: str) -> bool:
        """Run one input (a statement or a `:` command); True when it asks to leave."""
        self.inputs += 1
        text = self._shortcut(text)
        try:
            if text.lstrip().startswith(":"):
                return commands.dispatch(text, self)
            self.interp.exec(text, filename=self.source_name(), echo=self.echo)
        except BpError as err:
            self._flush()
            self.console.print(display.error(err), soft_wrap=True)
        except KeyboardInterrupt:
            self._flush()
            self.console.print(display.note("interrupted"))
        except Exception as exc:               # a bug, in bp or here: one line, then go on
            self._flush()
            self.console.print(display.internal(exc), soft_wrap=True)
        return False

    def _shortcut(self, text: str) -> str:
        """`help` and `?topic` are `:help` and `:help topic` (as in IPython and Julia),
        unless the session has bound `help`."""
        word = text.strip()
        if word == "help" and "help" not in self.interp.globals:
            return ":help"
        if word.startswith("?") and "\n" not in word:
            return ":help " + word[1:].strip()
        return text

    def echo(self, value) -> None:
        """Show the value of an expression statement, as it is computed; `ans` holds
        it after (as in Julia and MATLAB)."""
        self._flush()
        self.console.print(display.value(self.interp, value, self.console.width), soft_wrap=True)
        self.interp.globals[ANS] = value

    def source_name(self) -> str:
        """`<repl[3]>` for the third input: an error inside a function defined
        earlier points at that input's line, not at the same line of this one."""
        return f"<repl[{self.inputs}]>"

    def reset(self) -> None:
        """`:reset`: a fresh Interpreter with the same options and output."""
        old = self.interp
        options = {}
        for name in inspect.signature(Interpreter).parameters:    # whatever options it has
            for holder in (old, getattr(old, "limits", None)):
                if hasattr(holder, name):
                    options[name] = getattr(holder, name)
                    break
        self.interp = Interpreter(**options)
        self._install_progress()

    def scratch(self) -> Interpreter:
        """A throwaway session, for help examples that must not touch this one."""
        return Interpreter(precision=self.interp.precision)

    def _install_progress(self) -> None:
        """A transient bar for long top-level loops, through the engine's hook."""
        if hasattr(self.interp, "progress"):
            self.interp.progress = progress.hook(self) if self.show_progress else None

    def _flush(self) -> None:
        """Prints before what the console shows next (they may share a stream)."""
        try:
            self.interp.stdout.flush()
        except (AttributeError, OSError, ValueError):
            pass


def run_repl(interp: Interpreter, **options) -> int:
    """Run the REPL on a terminal; the exit status for `bp`."""
    Repl(interp, **options).run()
    return 0
