"""Plots of functions and vectors (SPEC §7): in the terminal with plotext,
to an image file with matplotlib.  Both are optional extras
(`pip install 'bp-lang[plot]'`); without plotext a terminal plot is drawn in
plain characters, and without matplotlib a plot to a file is a clean error.
This module only draws: the interpreter evaluates what is drawn.
"""
from __future__ import annotations

import io
import os
import re
import threading

import numpy as np

from .errors import BpImportError, BpIOError, Span

EXTRA = "pip install 'bp-lang[plot]'"
WIDTH, HEIGHT = 78, 20

Series = tuple[str, np.ndarray, np.ndarray]      # label, xs, ys
_PLOTEXT = threading.Lock()


def terminal(series: list[Series], colour: bool, span: Span | None) -> str:
    """The plot as text, legend included, ready to print: drawn by plotext where it is
    installed, else in plain characters (so `plot` works on a first install)."""
    try:
        import plotext as plt
    except ImportError:
        return plain(series)
    with _PLOTEXT:                     # plotext draws on one module-level figure
        return _draw(plt, series, colour)


MARKS = "*o+x#%@&"


def plain(series: list[Series], width: int = WIDTH, height: int = HEIGHT) -> str:
    """A line plot in plain characters: one mark per series at each column (the
    series drawn in order, a later one over an earlier), the y range on the left,
    the x range below, then the legend."""
    finite = [(xs[np.isfinite(ys)], ys[np.isfinite(ys)]) for _, xs, ys in series]
    ys_all = np.concatenate([y for _, y in finite]) if finite else np.zeros(0)
    xs_all = np.concatenate([x for x, _ in finite]) if finite else np.zeros(0)
    if ys_all.size == 0:
        return "(nothing finite to plot)\n" + _legend(series)
    lo, hi = float(ys_all.min()), float(ys_all.max())
    x0, x1 = float(xs_all.min()), float(xs_all.max())
    labels = [f"{hi:.4g}", f"{lo:.4g}"]
    pad = max(len(t) for t in labels)
    cols = width - pad - 2
    grid = [[" "] * cols for _ in range(height)]
    for k, (xs, ys) in enumerate(finite):
        mark = MARKS[k % len(MARKS)]
        c = np.zeros(len(xs), dtype=int) if x1 == x0 else \
            np.round((xs - x0) / (x1 - x0) * (cols - 1)).astype(int)
        r = np.full(len(ys), height // 2) if hi == lo else \
            np.round((hi - ys) / (hi - lo) * (height - 1)).astype(int)
        for ci, ri in zip(c, r):
            grid[ri][ci] = mark
    lines = []
    for i, row in enumerate(grid):
        label = labels[0] if i == 0 else labels[1] if i == height - 1 else ""
        lines.append(f"{label:>{pad}} |" + "".join(row).rstrip())
    lines.append(" " * pad + " +" + "-" * cols)
    left, right = f"{x0:.4g}", f"{x1:.4g}"
    lines.append(" " * (pad + 2) + left + right.rjust(cols - len(left)))
    return "\n".join(lines) + "\n" + _legend(series)


def _legend(series: list[Series]) -> str:
    return "  ".join(f"{MARKS[k % len(MARKS)]} {label}" for k, (label, _, _) in enumerate(series))


def _draw(plt, series, colour) -> str:
    plt.clear_figure()
    plt.plotsize(WIDTH, HEIGHT)
    plt.theme("pro" if colour else "clear")
    for label, xs, ys in series:
        keep = np.isfinite(ys)
        plt.plot(xs[keep].tolist(), ys[keep].tolist(), label=label, marker="braille")
    text = plt.build()
    plt.clear_figure()
    return text if colour else _ANSI.sub("", text)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def image(series: list[Series], path: str, span: Span | None) -> None:
    """Write the plot as a PNG or SVG file (atomically: a temporary file, then a rename)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg"):
        raise BpIOError(f"plot writes .png or .svg files, not {ext or 'files without an extension'}",
                        span)
    fig = _figure(series, span)
    tmp = path + ".tmp"
    try:
        tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
        fig.savefig(tmp, format=ext[1:])
        os.replace(tmp, path)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reason = "it is a directory" if isinstance(err, IsADirectoryError) else err.strerror or err
        raise BpIOError(f"cannot write {path!r}: {reason}", span) from None


class Figure:
    """What a `plot` draws, handed to a front end that shows images (the notebook's
    Interpreter.display): its PNG image, or its text as a terminal without colour
    shows it."""

    def __init__(self, series: list[Series]):
        self.series = series

    def png(self) -> bytes:
        """The image; a BpImportError without matplotlib."""
        return picture(self.series, "png")

    def text(self) -> str:
        return terminal(self.series, False, None)


def picture(series: list[Series], fmt: str = "png") -> bytes:
    """The plot as the bytes of a PNG (or SVG) image: what a notebook shows inline."""
    buf = io.BytesIO()
    _figure(series, None).savefig(buf, format=fmt)
    return buf.getvalue()


def _figure(series: list[Series], span: Span | None):
    """The plot as a matplotlib Figure of its own: no pyplot, so no global backend or
    figure list is touched (a notebook's own matplotlib plots stay as they were)."""
    try:
        import matplotlib  # noqa: F401  (first: a missing matplotlib is found here)
        from matplotlib.figure import Figure
    except ImportError:
        raise BpImportError(f"plot to a file needs matplotlib: {EXTRA}", span) from None
    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.subplots()
    for label, xs, ys in series:
        ax.plot(xs, ys, label=label)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
