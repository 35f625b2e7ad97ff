"""Scans: cumsum and cumprod along axis= (of the flattened x without one, as NumPy).

cumsum(x, reverse=1) sums from the end (jax.lax.cumsum's reverse): it is cumsum's
adjoint, so the VJP of a cumsum is a cumsum and prints as one.  cumprod's rules
never divide by x, so they are right where an element is 0 (as JAX's, which
differentiate an associative scan): they follow the Hillis–Steele scan
y ← y · shift(y, d) for d = 1, 2, 4, …, whose JVP and VJP are products and shifts.
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError
from . import Attr, OpDef, apply, const, register
from .batched import with_batch
from .shape import _reshape_back, known_shape
from .sym import add, mul

SCAN_ATTRS = (Attr("axis", "int", None),)


def scan_shape(shs, attrs, span):
    s, axis = shs[0], attrs.get("axis")
    if not isinstance(s, tuple):
        return shapes.SymShape() if axis is None else s
    if axis is None:
        return (shapes.size(s),)
    if len(s) == 0:
        raise BpShapeError("a scan along an axis needs a tensor of rank at least 1, got a "
                           "scalar", span)
    shapes.normalize_axes((axis,), len(s), span)
    return s


def _cumsum(x, axis=None, reverse=False):
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x, axis = x.ravel(), 0
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis), axis)
    return np.cumsum(x, axis)


def _cumprod(x, axis=None):
    x = np.asarray(x, dtype=np.float64)
    return np.cumprod(x.ravel() if axis is None else x, 0 if axis is None else axis)


def _flat(x, attrs):
    """x and the axis to scan: flattened when axis= is None."""
    if attrs.get("axis") is None:
        return apply("reshape", [x], {"shape": (-1,)}), 0
    return x, attrs["axis"]


def _cumsum_vjp(ct, out, ins, attrs):
    axis = 0 if attrs.get("axis") is None else attrs["axis"]
    back = apply("cumsum", [ct], {"axis": axis, "reverse": not attrs.get("reverse", False)})
    return (_reshape_back(back, ins[0]) if attrs.get("axis") is None else back,)


def _cumsum_jvp(ts, out, ins, attrs):
    return apply("cumsum", [ts[0]], attrs)


# ── cumprod's rules: the Hillis–Steele scan ──────────────────────────────

def _part(y, axis, start, stop):
    rank = len(y.shape)
    ax = axis % rank
    items = (("s", None, None, None),) * ax + (("s", start, stop, None),)
    return apply("index", [y], {"items": items})


def _shifted(y, d, axis, fill):
    """y moved d places along axis, the first d places filled with `fill`."""
    s = y.shape
    ax = axis % len(s)
    pad = const(np.full(s[:ax] + (d,) + s[ax + 1:], fill))
    return apply("concat", [pad, _part(y, axis, 0, s[ax] - d)], {"axis": ax})


def _unshifted(g, d, axis):
    """The adjoint of moving d places with a zero fill: back d places, zeros at the end."""
    s = g.shape
    ax = axis % len(s)
    pad = const(np.zeros(s[:ax] + (d,) + s[ax + 1:]))
    return apply("concat", [_part(g, axis, d, s[ax]), pad], {"axis": ax})


def _steps(x, axis):
    """The scan's values before each step, and each step's distance."""
    known_shape(x, "cumprod")
    n = x.shape[axis % len(x.shape)] if x.shape else 1
    ys, ds, d = [x], [], 1
    while d < n:
        ys.append(mul(ys[-1], _shifted(ys[-1], d, axis, 1.0)))
        ds.append(d)
        d *= 2
    return ys, ds


def _cumprod_jvp(ts, out, ins, attrs):
    x, axis = _flat(ins[0], attrs)
    t, _ = _flat(ts[0], attrs)
    ys, ds = _steps(x, axis)
    for y, d in zip(ys, ds):
        t = add(mul(t, _shifted(y, d, axis, 1.0)), mul(y, _shifted(t, d, axis, 0.0)))
    return t


def _cumprod_vjp(ct, out, ins, attrs):
    x, axis = _flat(ins[0], attrs)
    ys, ds = _steps(x, axis)
    for y, d in reversed(list(zip(ys, ds))):
        ct = add(mul(ct, _shifted(y, d, axis, 1.0)), _unshifted(mul(ct, y), d, axis))
    return (_reshape_back(ct, ins[0]) if attrs.get("axis") is None else ct,)


# ── batching and export ──────────────────────────────────────────────────

def _batch_scan(node, ins, m):
    (x, b), = ins
    attrs = dict(node.attrs)
    if attrs.get("axis") is None:
        x = apply("reshape", [with_batch(x, b, m)], {"shape": (m, -1)})
        attrs["axis"] = 1
    else:
        attrs["axis"] = attrs["axis"] % len(node.inputs[0].shape) + 1
    return apply(node.op, [x], attrs)


def _scan_export(fn):
    def code(args, a):
        x, axis = args[0], a["axis"]
        if axis is None:
            x, axis = f"np.ravel({x})", 0
        if a.get("reverse"):
            return f"np.flip(np.{fn}(np.flip({x}, {axis}), {axis}), {axis})"
        return f"np.{fn}({x}, {axis})"
    return code


register(OpDef(name="cumsum", kernel=_cumsum, shape=scan_shape,
               attrs=SCAN_ATTRS + (Attr("reverse", "flag", False),),
               vjp=_cumsum_vjp, jvp=_cumsum_jvp, batch=_batch_scan, export=_scan_export("cumsum"),
               doc="running sums along axis= (of the flattened x without); reverse=1 sums from "
                   "the end"))
register(OpDef(name="cumprod", kernel=_cumprod, shape=scan_shape, attrs=SCAN_ATTRS,
               vjp=_cumprod_vjp, jvp=_cumprod_jvp, batch=_batch_scan, export=_scan_export("cumprod"),
               doc="running products along axis= (of the flattened x without); its derivative "
                   "is exact where an element is 0 (it never divides)"))
