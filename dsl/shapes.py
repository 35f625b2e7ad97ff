"""Shapes: NumPy broadcasting on concrete and symbolic shapes.

A concrete shape is a tuple of ints.  A parameter without an annotation,
lowered without arguments (to print or show its graph), has a SymShape:
a shape not known until call time.  Rules prove what they can
(broadcast(S, S) = S, broadcast(S, []) = S) and otherwise give a new
SymShape.  Shape mistakes are only ever reported on concrete shapes.
"""
from __future__ import annotations

import itertools

from .errors import BpShapeError, Span

_fresh = itertools.count(1)


class SymShape:
    """A shape known only at call time.

    `parts` names what was broadcast together to make it (parameter names
    and concrete shapes), so equal parts mean provably equal shapes; an
    opaque shape (parts None) equals only itself.
    """
    __slots__ = ("parts", "label")

    def __init__(self, parts: frozenset | None = None, label: str | None = None):
        self.parts = parts
        self.label = label or (("shape(" + ", ".join(sorted(str(p) for p in parts)) + ")")
                               if parts else f"S{next(_fresh)}")

    @classmethod
    def of(cls, name: str) -> SymShape:
        return cls(frozenset([name]), f"shape({name})")

    def __eq__(self, other):
        if self is other:
            return True
        return isinstance(other, SymShape) and self.parts is not None and self.parts == other.parts

    def __hash__(self):
        return hash(self.parts) if self.parts is not None else id(self)

    def __repr__(self):
        return self.label


Shape = tuple | SymShape


def is_concrete(shape) -> bool:
    return isinstance(shape, tuple)


def fmt(shape) -> str:
    """A shape as bp writes it: [3, 2], [] for a scalar."""
    if isinstance(shape, SymShape):
        return shape.label
    return "[" + ", ".join(str(d) for d in shape) + "]"


def size(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def broadcast(*shapes, span: Span | None = None, what: str = "broadcast"):
    """NumPy broadcasting of several shapes, symbolic where it must be."""
    result = shapes[0]
    for other in shapes[1:]:
        result = _broadcast2(result, other, span, what)
    return result


def _broadcast2(a, b, span, what):
    if a == b:
        return a
    if a == ():
        return b
    if b == ():
        return a
    if isinstance(a, SymShape) or isinstance(b, SymShape):
        pa = a.parts if isinstance(a, SymShape) else frozenset([a])
        pb = b.parts if isinstance(b, SymShape) else frozenset([b])
        if pa is None or pb is None:
            return SymShape()
        return SymShape(pa | pb)
    out = []
    for x, y in itertools.zip_longest(reversed(a), reversed(b), fillvalue=1):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise BpShapeError(f"cannot {what} shapes {fmt(a)} and {fmt(b)}", span)
    return tuple(reversed(out))


def normalize_axes(axes, ndim: int, span: Span | None) -> tuple[int, ...]:
    """Axes as non-negative ints, each checked against the rank."""
    out = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise BpShapeError(f"axis {ax} is out of range for a tensor of rank {ndim}", span)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise BpShapeError(f"repeated axis in {tuple(axes)}", span)
    return tuple(out)
