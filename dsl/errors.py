"""BpError and its kinds, source spans, and the plain-text caret rendering.

Everything a user can get wrong surfaces as one BpError carrying a Span.
Deep code raises with a span and never formats source; the Interpreter
attaches the source line at the boundary.  Imports only dsl.struct.
"""
from __future__ import annotations

from .struct import struct


@struct
class Span:
    file: str
    line: int          # 1-based
    col: int           # 1-based
    end_line: int
    end_col: int       # exclusive

    def to(self, other: Span | None) -> Span:
        """The span from the start of self to the end of other."""
        if other is None or other.file != self.file:
            return self
        return Span(self.file, self.line, self.col, other.end_line, other.end_col)


class SourceName(str):
    """A file name that keeps the lines of the text it named when that text
    was parsed.  Spans carry it as their `file`, so an error in a function
    defined by an earlier `exec` shows that exec's line, even after another
    exec has reused the name (`<string>` by default).  It is the name
    everywhere else: printed, compared and hashed as the plain string."""

    def __new__(cls, name: str, lines: list[str]):
        self = super().__new__(cls, name)
        self.lines = lines
        return self

    def __reduce__(self):
        return SourceName, (str(self), self.lines)


class BpError(Exception):
    """A mistake in a bp program, located in its source."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, source_line: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source_line = source_line

    @property
    def filename(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.col if self.span else None

    def located(self, span: Span | None) -> BpError:
        """Give the error a span if it has none yet (the innermost span wins)."""
        if self.span is None and span is not None:
            self.span = span
        return self

    def header(self) -> str:
        where = f"{self.span.file}:{self.span.line}:{self.span.col}: " if self.span else ""
        return f"{where}{self.kind}: {self.message}"

    def __str__(self) -> str:
        text = self.header()
        if self.span and self.source_line is not None:
            text += "\n" + caret_block(self.source_line, self.span)
        return text

    def __reduce__(self):
        return (type(self), (self.message, self.span, self.source_line))


class BpSyntaxError(BpError):
    kind = "syntax error"


class BpNameError(BpError, KeyError):
    kind = "name error"

    __str__ = BpError.__str__


class BpTypeError(BpError):
    kind = "type error"


class BpShapeError(BpError):
    kind = "shape error"


class BpValueError(BpError):
    kind = "value error"


class BpImportError(BpError):
    kind = "import error"


class BpIOError(BpError):
    kind = "io error"


class BpAssertionError(BpError):
    kind = "assertion failed"


class BpInterrupted(BpError):
    """The running statement was stopped: Ctrl-C, or Interpreter.interrupt()."""
    kind = "interrupted"


class BpInternalError(BpError):
    """A bug in bp, not in the program: a stray Python exception caught at the boundary."""
    kind = "internal error"


SHOWN_MAX = 100      # characters of a long source line shown around the span


def caret_block(line_text: str, span: Span) -> str:
    """The source line, dedented and indented by four spaces, and carets under the span.
    A line longer than SHOWN_MAX shows a window of it (… where it is cut) that starts a
    little before the span, as compilers show a long line."""
    full = line_text.rstrip("\n").expandtabs(4)
    lead = len(full) - len(full.lstrip())
    shown = full[lead:]
    start = len(line_text[: span.col - 1].expandtabs(4)) - lead
    if span.end_line == span.line:
        width = len(line_text[: span.end_col - 1].expandtabs(4)) - lead - start
    else:
        width = len(shown.rstrip()) - start          # a multi-line span: to the end of the line
    width = max(1, width)
    start = max(start, 0)
    if len(shown) > SHOWN_MAX:
        lo = max(0, min(start - 20, len(shown) - SHOWN_MAX))
        hi = lo + SHOWN_MAX
        pre, post = ("…" if lo > 0 else ""), ("…" if hi < len(shown) else "")
        width = max(1, min(start + width, hi) - start)
        shown, start = pre + shown[lo:hi] + post, start - lo + len(pre)
    return f"    {shown}\n    {' ' * start}{'^' * width}"
