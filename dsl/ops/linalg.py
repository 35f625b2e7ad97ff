"""Linear algebra: matmul (@), transpose, outer, trace, diag, inv, det, solve."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError
from . import Attr, CallForm, Infix, OpDef, register


def _concrete(shs):
    return all(isinstance(s, tuple) for s in shs)


def matmul_shape(shs, attrs, span):
    a, b = shs
    if not _concrete(shs):
        return shapes.SymShape()
    if len(a) == 0 or len(b) == 0:
        raise BpShapeError(f"matmul of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                           f"@ needs tensors of rank at least 1", span)
    a2 = a if len(a) > 1 else (1,) + a
    b2 = b if len(b) > 1 else b + (1,)
    if a2[-1] != b2[-2]:
        raise BpShapeError(f"matmul of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                           f"inner dimensions differ", span)
    batch = shapes.broadcast(a2[:-2], b2[:-2], span=span, what="batch-broadcast")
    out = batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
    return out


def transpose_shape(shs, attrs, span):
    s, axes = shs[0], attrs.get("axes")
    if not _concrete(shs):
        return shapes.SymShape()
    if axes is None:
        return tuple(reversed(s))
    if sorted(shapes.normalize_axes(axes, len(s), span)) != list(range(len(s))):
        raise BpShapeError(f"axes {tuple(axes)} are not a permutation of the {len(s)} axes "
                           f"of a tensor of shape {shapes.fmt(s)}", span)
    return tuple(s[a] for a in shapes.normalize_axes(axes, len(s), span))


def _transpose(x, axes=None):
    return np.transpose(x, axes)


def outer_shape(shs, attrs, span):
    if not _concrete(shs):
        return shapes.SymShape()
    return (shapes.size(shs[0]), shapes.size(shs[1]))


def _square(s, name, span):
    if len(s) < 2 or s[-1] != s[-2]:
        raise BpShapeError(f"{name} needs a square matrix (or a stack of them), "
                           f"got shape {shapes.fmt(s)}", span)


def trace_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) < 2:
        raise BpShapeError(f"trace needs a matrix, got shape {shapes.fmt(s)}", span)
    return s[2:]


def diag_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) == 1:
        return (s[0], s[0])
    if len(s) == 2:
        return (min(s),)
    raise BpShapeError(f"diag takes a vector or a matrix, got shape {shapes.fmt(s)}", span)


def inv_shape(shs, attrs, span):
    if not _concrete(shs):
        return shs[0]
    _square(shs[0], "inv", span)
    return shs[0]


def det_shape(shs, attrs, span):
    if not _concrete(shs):
        return shapes.SymShape()
    _square(shs[0], "det", span)
    return shs[0][:-2]


def solve_shape(shs, attrs, span):
    a, b = shs
    if not _concrete(shs):
        return shs[1]
    _square(a, "solve", span)
    if len(b) == 1:
        if b[0] != a[-1]:
            raise BpShapeError(f"solve of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                               f"sizes differ", span)
        return a[:-2] + b
    if len(b) < 2 or b[-2] != a[-1]:
        raise BpShapeError(f"solve of {shapes.fmt(a)} and {shapes.fmt(b)}: sizes differ", span)
    return shapes.broadcast(a[:-2], b[:-2], span=span) + b[-2:]


register(OpDef(name="matmul", kernel=np.matmul, shape=matmul_shape, params=("a", "b"),
               fmt=Infix("@", 8), builtin=False, doc="a @ b: matrix product, NumPy matmul rules"))
register(OpDef(name="transpose", kernel=_transpose, shape=transpose_shape,
               attrs=(Attr("axes", "perm", None),),
               doc="reverse the axes (like x'), or permute them with axes="))
register(OpDef(name="outer", kernel=np.outer, shape=outer_shape, params=("a", "b"),
               doc="outer product of two vectors"))
register(OpDef(name="trace", kernel=np.trace, shape=trace_shape, doc="sum of the diagonal"))
register(OpDef(name="diag", kernel=np.diag, shape=diag_shape,
               doc="a vector to a diagonal matrix, or a matrix's diagonal as a vector"))
register(OpDef(name="inv", kernel=np.linalg.inv, shape=inv_shape, doc="matrix inverse"))
register(OpDef(name="det", kernel=np.linalg.det, shape=det_shape, doc="determinant"))
register(OpDef(name="solve", kernel=np.linalg.solve, shape=solve_shape, params=("A", "b"),
               doc="x with A @ x = b"))
