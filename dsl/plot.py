"""Plots of functions and vectors (SPEC §7): in the terminal with plotext,
to an image file with matplotlib.  Both are optional extras
(`pip install 'bp-lang[plot]'`); without them `plot` is a clean error.
This module only draws: the interpreter evaluates what is drawn.
"""
from __future__ import annotations

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
    """The plot as text, legend included, ready to print."""
    try:
        import plotext as plt
    except ImportError:
        raise BpImportError(f"plot in the terminal needs plotext: {EXTRA}", span) from None
    with _PLOTEXT:                     # plotext draws on one module-level figure
        return _draw(plt, series, colour)


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
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise BpImportError(f"plot to a file needs matplotlib: {EXTRA}", span) from None
    fig, ax = pyplot.subplots(figsize=(7, 4.2), dpi=110)
    tmp = path + ".tmp"
    try:
        for label, xs, ys in series:
            ax.plot(xs, ys, label=label)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
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
    finally:
        pyplot.close(fig)
