"""IPython extension: `%load_ext dsl` gives the `%%bp` cell magic.

One Interpreter per kernel.  A cell runs like `bp -c`: prints go to the
cell's output and an expression statement shows its value (a function as
its formula).  `%bp e` gives e's value to Python, `%bp_get name` a bp
global's, `%bp_set name expr` binds a Python value in bp.  A bp error
shows as SPEC §8 text, no traceback, and fails the cell; the kernel
carries on.  IPython is optional: nothing else imports this module.

In a notebook (a kernel, not IPython in a terminal) `graph e` and a graph
from `%bp_graph` or `Interpreter.graph` show as an SVG picture drawn by
Graphviz's `dot` where it is on PATH, and `plot` as a PNG image drawn by
matplotlib; without them, and always in a terminal, they are the text bp
prints.
"""
from __future__ import annotations

import html
import shutil
import subprocess
import sys

from .errors import BpError
from .interpreter import Interpreter
from .render import FunctionGraph
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


class Plot:
    """A `plot` shown in a notebook: the PNG image, and as plain text (a console
    frontend, a notebook saved as text) the plot a terminal shows, without colour."""

    def __init__(self, figure, png: bytes):
        self.figure = figure                  # a dsl.plot.Figure
        self.png = png

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return self.figure.text()


MAX_PICTURE_NODES = 500     # a larger graph is slow to lay out and unreadable: its listing


def graph_svg(graph: FunctionGraph) -> str | None:
    """The graph as an SVG picture, drawn by Graphviz's `dot`; None (so the listing is
    shown) where `dot` is not on PATH or fails, or the graph is too large to read."""
    dot = shutil.which("dot")
    if dot is None or len(graph.nodes) > MAX_PICTURE_NODES:
        return None
    try:
        run = subprocess.run([dot, "-Tsvg"], input=graph.to_dot(), capture_output=True,
                             text=True, encoding="utf-8", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    start = run.stdout.find("<svg")
    return run.stdout[start:] if run.returncode == 0 and start >= 0 else None


def _terminal(shell) -> bool:
    """IPython in a terminal, where graph and plot stay the text bp prints (a kitty
    terminal's inline images aside)."""
    try:
        from IPython.terminal.interactiveshell import TerminalInteractiveShell
    except ImportError:
        return False
    return isinstance(shell, TerminalInteractiveShell)


def _shows(shell, mime: str) -> bool:
    """Does this frontend show pictures of this MIME type?"""
    return not _terminal(shell) and mime in shell.display_formatter.active_types


def _display_hook(shell):
    """Interpreter.display for a notebook: a graph as its SVG picture when `dot` is
    there, a plot as a PNG image when matplotlib is; False (the text) otherwise."""
    from IPython.display import display

    def show(kind: str, value) -> bool:
        if kind == "graph" and _shows(shell, "image/svg+xml"):
            svg = graph_svg(value)
            if svg is not None:
                display({"image/svg+xml": svg, "text/plain": value.listing()}, raw=True)
                return True
        if kind == "plot" and _shows(shell, "image/png"):
            try:
                png = value.png()
            except BpError:                   # no matplotlib: the text
                return False
            display(Plot(value, png))
            return True
        return False
    return show


def _session(shell) -> Interpreter:
    interp = getattr(shell, "_bp_interpreter", None)
    if interp is None:
        interp = Interpreter(stdout=sys.stdout)
        interp.display = _display_hook(shell)
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
    # a graph from %bp_graph or Interpreter.graph, shown in a notebook: its picture
    shell.display_formatter.formatters["image/svg+xml"].for_type(FunctionGraph, graph_svg)

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
        def show(value):                      # at once: in order with prints and plots
            display(Shown(interp.format(value), isinstance(value, Function),
                          lambda: interp._repr_latex(value)))
        interp.exec(cell, filename="<cell>", echo=show)
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
