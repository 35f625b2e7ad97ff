"""IPython extension: `%load_ext dsl` gives the `%%bp` cell magic.

One Interpreter per kernel.  A cell runs like `bp -c`: prints go to the
cell's output and an expression statement shows its value (a function as
its formula).  `%bp e` gives e's value to Python, `%bp_get name` a bp
global's, `%bp_set name expr` binds a Python value in bp.  A bp error
shows as SPEC §8 text, no traceback, and fails the cell; the kernel
carries on.  IPython is optional: nothing else imports this module.
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


def _show_error(shell, etype, value, tb, tb_offset=None):
    """IPython's handler for a BpError raised in a cell: the SPEC §8 text on stderr,
    no Python traceback; the cell fails (so "Run all" stops there)."""
    print(str(value), file=sys.stderr)
    return []


def load_ipython_extension(shell) -> None:
    from IPython.core.magic import register_line_cell_magic, register_line_magic
    from IPython.display import display
    shell.set_custom_exc((BpError,), _show_error)

    @register_line_cell_magic("bp")
    def bp_magic(line, cell=None):
        """`%%bp` runs the cell as bp; `%bp e` gives e's value to Python
        (`x = %bp grad(f)(2)`), and `%bp statement` runs it."""
        interp = _session(shell)
        interp.stdout = sys.stdout            # the cell's own output stream
        if cell is None:
            if interp.is_expression(line):
                return interp.eval(line)
            interp.exec(line, filename="<line>")
            return None
        shown = []
        interp.exec(cell, filename="<cell>", echo=shown.append)
        for value in shown:
            display(Shown(interp.format(value), isinstance(value, Function),
                          lambda v=value: interp._repr_latex(v)))
        return None

    @register_line_magic("bp_get")
    def bp_get(line):
        return _session(shell)[line.strip()]

    @register_line_magic("bp_set")
    def bp_set(line):
        name, _, expr = line.strip().partition(" ")
        _session(shell)[name] = shell.ev(expr)

    @register_line_magic("bp_graph")
    def bp_graph(line):
        return _session(shell).graph(line.strip())
