"""IPython extension: `%load_ext dsl` gives the `%%bp` cell magic.

One Interpreter per kernel.  A cell runs like `bp -c`: prints go to the
cell's output and an expression statement shows its value (a function as
its formula).  `%bp_get name` gives a bp value to Python, `%bp_set name
expr` binds a Python value in bp.  A bp error shows as SPEC §8 text and the
kernel carries on.  IPython is optional: nothing else imports this module.
"""
from __future__ import annotations

import html
import sys

from .errors import BpError
from .interpreter import Interpreter
from .values import Function


class Shown:
    """A bp value displayed by IPython: plain text, HTML for notebooks, and LaTeX
    math (`latex`: a function of no arguments giving it, or None).  A notebook
    prefers HTML to LaTeX, so a function that has its math shows only that."""

    def __init__(self, text: str, is_function: bool, latex=None):
        self.text = text
        self.is_function = is_function
        self.latex = latex

    def __repr__(self) -> str:
        return self.text

    def _repr_latex_(self) -> str | None:
        if callable(self.latex):              # made once, on first display
            self.latex = self.latex()
        return self.latex

    def _repr_html_(self) -> str | None:
        if self.is_function and self._repr_latex_() is not None:
            return None
        style = "font-family: monospace; white-space: pre"
        if self.is_function:
            style += "; color: #1a5fb4"
        return f'<pre style="{style}">{html.escape(self.text)}</pre>'


def _session(shell) -> Interpreter:
    interp = getattr(shell, "_bp_interpreter", None)
    if interp is None:
        interp = Interpreter(stdout=sys.stdout)
        shell._bp_interpreter = interp
    return interp


def load_ipython_extension(shell) -> None:
    from IPython.core.magic import register_cell_magic, register_line_magic
    from IPython.display import display

    @register_cell_magic("bp")
    def bp_cell(line, cell):
        interp = _session(shell)
        interp.stdout = sys.stdout            # the cell's own output stream
        shown = []
        try:
            interp.exec(cell, filename="<cell>", echo=shown.append)
        except BpError as err:
            print(str(err), file=sys.stderr)
            return None
        for value in shown:
            display(Shown(interp.format(value), isinstance(value, Function),
                          lambda v=value: interp._repr_latex(v)))
        return None

    @register_line_magic("bp_get")
    def bp_get(line):
        try:
            return _session(shell)[line.strip()]
        except BpError as err:
            print(str(err), file=sys.stderr)
            return None

    @register_line_magic("bp_set")
    def bp_set(line):
        name, _, expr = line.strip().partition(" ")
        try:
            _session(shell)[name] = shell.ev(expr)
        except BpError as err:
            print(str(err), file=sys.stderr)

    @register_line_magic("bp_graph")
    def bp_graph(line):
        try:
            return _session(shell).graph(line.strip())
        except BpError as err:
            print(str(err), file=sys.stderr)
            return None
