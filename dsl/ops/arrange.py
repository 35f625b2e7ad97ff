"""Shape builtins that rearrange elements: squeeze tile repeat roll flip split pad tril
triu, zeros_like and ones_like; and `unarrange`, the adjoint of a rearrangement that no
builtin can write without the argument's shape.

Every op here but tril/triu moves, copies or drops elements without arithmetic, so it
is linear and each output element is one input element (or a pad's constant).  Their
VJPs are rearrangements again, graphs of builtins that print and read back: roll's is
a roll back, flip's a flip, squeeze's a reshape to the argument's shape.  tile, repeat,
split and pad need the argument's shape to undo: where it is known the adjoint is
reshape, sum and index (`_BACK`); where it is not (a parameter without annotation) it
uses only what does not need the shape (`_BACK_ANY`: split blocks summed, strided
slices, concat with zeros, slices per axis), and where even that cannot be written
(pad with one pair for every axis of an unknown rank, repeat along a negative axis
of an unknown rank, more than 64 blocks) it is one `unarrange(g, x)` node, right at
every shape: its kernel runs the forward op on the element numbers 1, 2, …, size(x)
and adds each element of g into the element it was copied from (`np.bincount`), and
it folds to the known-shape form as soon as x's shape is known.  The adjoint of
`unarrange` is the forward op itself, so every order of derivative stays within
these ops.
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpTypeError, BpValueError
from ..graph import Node
from . import (ACTIVE, REGISTRY, Attr, CallForm, Jax, Macro, OpDef, apply, const, describe,
               limit_error, register, register_macro, static_int, static_ints, static_value)
from .batched import FALLBACK
from .shape import _reshape_back
from .sym import sum_, unbroadcast


def _concrete(shs) -> bool:
    return all(isinstance(s, tuple) for s in shs)


# ── squeeze ──────────────────────────────────────────────────────────────

def _squeeze_shape(shs, attrs, span):
    s, axis = shs[0], attrs.get("axis")
    if not _concrete(shs):
        return shapes.SymShape()
    if axis is None:
        return tuple(d for d in s if d != 1)
    axes = shapes.normalize_axes(axis, len(s), span)
    for a in axes:
        if s[a] != 1:
            raise BpShapeError(f"squeeze: axis {a} of a tensor of shape {shapes.fmt(s)} has "
                               f"size {s[a]}, not 1", span)
    return tuple(d for i, d in enumerate(s) if i not in axes)


def _fold_squeeze(ins, attrs, shape):
    x, = ins
    if x.shape == shape:
        return x
    if attrs.get("axis") is None and isinstance(x.shape, tuple):
        # the axes named, so that batching (a leading axis of any size) keeps them
        return apply("squeeze", [x], {"axis": tuple(i for i, d in enumerate(x.shape) if d == 1)})
    return None


def _batch_squeeze(node, ins, m):
    (x, _), = ins
    rank = len(node.inputs[0].shape)
    return apply("squeeze", [x], {"axis": tuple(a % rank + 1 for a in node.attr("axis"))})


# ── tile ─────────────────────────────────────────────────────────────────

def _tile_parts(s: tuple, reps: tuple) -> tuple[tuple, tuple]:
    """x's shape and reps both padded with leading 1s to one rank, as np.tile does."""
    n = max(len(s), len(reps))
    return (1,) * (n - len(s)) + tuple(s), (1,) * (n - len(reps)) + tuple(reps)


def _tile_shape(shs, attrs, span):
    reps = attrs["reps"]
    if any(r < 0 for r in reps):
        raise BpValueError(f"tile: reps must not be negative, got {tuple(reps)}", span)
    if not _concrete(shs):
        return shapes.SymShape()
    s, r = _tile_parts(shs[0], reps)
    return tuple(d * k for d, k in zip(s, r))


def _tile_back(g, x, attrs):
    """Sum the copies: g as (r0, d0, r1, d1, …), summed over the r axes."""
    s, r = _tile_parts(x.shape, attrs["reps"])
    split = apply("reshape", [g], {"shape": tuple(v for pair in zip(r, s) for v in pair)})
    summed = sum_(split, tuple(range(0, 2 * len(s), 2)))
    return apply("reshape", [summed], {"shape": x.shape})


def _batch_tile(node, ins, m):
    (x, _), = ins
    s, r = _tile_parts(node.inputs[0].shape, node.attr("reps"))
    return apply("tile", [apply("reshape", [x], {"shape": (m,) + s})], {"reps": (1,) + r})


# ── repeat ───────────────────────────────────────────────────────────────

def _counts(repeats: tuple, n: int, span) -> tuple:
    if len(repeats) == 1:
        return repeats * n
    if len(repeats) != n:
        raise BpShapeError(f"repeat: {len(repeats)} repeats for an axis of {n} elements", span)
    return repeats


def _repeat_shape(shs, attrs, span):
    repeats, axis = attrs["repeats"], attrs.get("axis")
    if not repeats:
        raise BpValueError("repeat: repeats must be a number or one count per element", span)
    if any(r < 0 for r in repeats):
        raise BpValueError(f"repeat: repeats must not be negative, got {tuple(repeats)}", span)
    if not _concrete(shs):
        return shapes.SymShape()
    s = shs[0]
    if axis is None:
        return (sum(_counts(repeats, shapes.size(s), span)),)
    ax, = shapes.normalize_axes((axis,), len(s), span)
    return s[:ax] + (sum(_counts(repeats, s[ax], span)),) + s[ax + 1:]


def _repeat(x, repeats, axis=None):
    return np.repeat(x, repeats[0] if len(repeats) == 1 else repeats, axis=axis)


def _repeat_back(g, x, attrs):
    """One repeat count for all: g as (…, n, r, …), summed over r."""
    repeats, axis = attrs["repeats"], attrs.get("axis")
    if len(repeats) != 1:                  # a count per element: their runs summed
        ax = None if axis is None else axis % max(len(x.shape), 1)
        return _repeat_back_any(g, x, {**attrs, "axis": ax})
    r = repeats[0]
    if axis is None:
        split = apply("reshape", [g], {"shape": (shapes.size(x.shape), r)})
        return apply("reshape", [sum_(split, (1,))], {"shape": x.shape})
    ax = axis % len(x.shape)
    s = x.shape
    split = apply("reshape", [g], {"shape": s[:ax] + (s[ax], r) + s[ax + 1:]})
    return sum_(split, (ax + 1,))


def _batch_repeat(node, ins, m):
    (x, _), = ins
    attrs = dict(node.attrs)
    if attrs.get("axis") is None:
        x = apply("reshape", [x], {"shape": (m, -1)})
        attrs["axis"] = 1
    else:
        attrs["axis"] = attrs["axis"] % len(node.inputs[0].shape) + 1
    return apply("repeat", [x], attrs)


# ── roll and flip ────────────────────────────────────────────────────────

def _roll_shape(shs, attrs, span):
    shift, axis = attrs["shift"], attrs.get("axis")
    if axis is None:
        if len(shift) != 1:
            raise BpValueError("roll: without axis= the shift must be one number", span)
    elif len(shift) != len(axis) and len(shift) != 1 and len(axis) != 1:
        raise BpValueError(f"roll: {len(shift)} shifts for {len(axis)} axes", span)
    if _concrete(shs) and axis is not None:
        for a in axis:                        # an axis may repeat: its shifts add up
            shapes.normalize_axes((a,), len(shs[0]), span)
    return shs[0]


def _roll(x, shift, axis=None):
    if axis is None:
        return np.roll(x, shift[0])
    return np.roll(x, shift if len(shift) > 1 else shift[0], axis=axis)


def _batch_roll(node, ins, m):
    (x, _), = ins
    s = node.inputs[0].shape
    attrs = dict(node.attrs)
    if attrs.get("axis") is None:
        flat = apply("roll", [apply("reshape", [x], {"shape": (m, -1)})],
                     {"shift": attrs["shift"], "axis": (1,)})
        return apply("reshape", [flat], {"shape": (m,) + s})
    attrs["axis"] = tuple(a % len(s) + 1 for a in attrs["axis"])
    return apply("roll", [x], attrs)


def _flip_shape(shs, attrs, span):
    axis = attrs.get("axis")
    if _concrete(shs) and axis is not None:
        shapes.normalize_axes(axis, len(shs[0]), span)
    return shs[0]


def _flip(x, axis=None):
    return np.flip(x, axis=axis)


def _batch_flip(node, ins, m):
    (x, _), = ins
    rank = len(node.inputs[0].shape)
    axis = node.attr("axis")
    if axis is None:
        axis = tuple(range(rank))
    if not axis:
        return x
    return apply("flip", [x], {"axis": tuple(a % rank + 1 for a in axis)})


# ── split ────────────────────────────────────────────────────────────────
# split(x, n) or split(x, (i, j, …)) is a tuple of `split_part` nodes, piece k of
# np.split's result each; a piece is an index of x as soon as x's shape is known.

def _bounds(n: int, how, span) -> list[tuple[int | None, int | None]]:
    """Each piece's (start, stop): `how` a number of equal sections, or a tuple of cuts."""
    if isinstance(how, int):
        sections = how
        if sections <= 0:
            raise BpValueError(f"split: the number of sections must be at least 1, got {sections}",
                               span)
        if n % sections:
            raise BpShapeError(f"split: an axis of {n} elements does not split into {sections} "
                               f"equal sections", span)
        step = n // sections
        return [(k * step, (k + 1) * step) for k in range(sections)]
    cuts = [0, *how, None]
    return list(zip(cuts[:-1], cuts[1:]))


def _split_items(s: tuple, attrs, span):
    ax, = shapes.normalize_axes((attrs.get("axis", 0),), len(s), span)
    lo, hi = _bounds(s[ax], attrs["indices_or_sections"], span)[attrs["k"]]
    return (("s", None, None, None),) * ax + (("s", lo, hi, None),)


def _split_part_shape(shs, attrs, span):
    s = shs[0]
    if not _concrete(shs):
        return shapes.SymShape()
    if len(s) == 0:
        raise BpShapeError("split needs a tensor of rank at least 1", span)
    items = _split_items(s, attrs, span)
    lo, hi = items[-1][1:3]
    ax = len(items) - 1
    return s[:ax] + (len(range(*slice(lo, hi).indices(s[ax]))),) + s[ax + 1:]


def _split_part(x, indices_or_sections, axis=0, k=0):
    how = indices_or_sections
    return np.split(x, how if isinstance(how, int) else list(how), axis=axis)[k]


def _fold_split_part(ins, attrs, shape):
    x, = ins
    if isinstance(x.shape, tuple):
        return apply("index", [x], {"items": _split_items(x.shape, attrs, None)})
    return None


def _split(ctx, args, kwargs, span):
    args, kwargs = list(args), dict(kwargs)
    x = args.pop(0) if args else kwargs.pop("x", None)
    how = args.pop(0) if args else kwargs.pop("indices_or_sections", None)
    axis = args.pop(0) if args else kwargs.pop("axis", None)
    if x is None or how is None:
        raise BpTypeError("split(x, indices_or_sections, axis=0) is missing an argument", span)
    if args or kwargs:
        extra = next(iter(kwargs), None)
        raise BpTypeError(f"split has no argument '{extra}'; its signature is "
                          f"split(x, indices_or_sections, axis=0)" if extra else
                          "split(x, indices_or_sections, axis=0) takes 3 arguments, got more", span)
    if not isinstance(x, Node):
        raise BpTypeError(f"split expects a tensor, got {describe(x)}", span)
    attrs = {"axis": 0 if axis is None else static_int(axis, "'axis'", span)}
    first = 0
    if isinstance(how, Node) and static_value(how, "'indices_or_sections'", span).ndim == 0:
        attrs["indices_or_sections"] = count = static_int(how, "'indices_or_sections'", span)
        if count <= 0:
            raise BpValueError(f"split: the number of sections must be at least 1, got {count}",
                               span)
    else:
        cuts = static_ints(how, "'indices_or_sections'", span)
        if len(cuts) == 1:
            # one cut i is written (0, i), whose first piece is empty, so that it prints as a
            # tuple (a lone i would read back as a number of sections)
            cuts, first = (0,) + cuts, 1
        attrs["indices_or_sections"] = cuts
        count = len(cuts) + 1
    cap = ACTIVE.limits.max_nodes
    if count > cap:
        raise limit_error("split into this many pieces would build too many graph nodes",
                          "max_nodes", cap, span)
    return tuple(apply("split_part", [x], {**attrs, "k": k}, span) for k in range(first, count))


def _batch_split_part(node, ins, m):
    (x, _), = ins
    attrs = dict(node.attrs)
    attrs["axis"] = attrs.get("axis", 0) % len(node.inputs[0].shape) + 1
    return apply("split_part", [x], attrs)


# ── pad ──────────────────────────────────────────────────────────────────
# `widths` holds one (before, after) pair per axis, or a single pair for every axis
# (what remains of NumPy's short forms while the rank is unknown).

def _widths(pad_width, span) -> tuple:
    if isinstance(pad_width, tuple) and pad_width and all(isinstance(p, tuple) for p in pad_width):
        pairs = tuple(static_ints(p, "'pad_width'", span) for p in pad_width)
    elif isinstance(pad_width, tuple):
        flat = static_ints(pad_width, "'pad_width'", span)
        pairs = (flat * 2,) if len(flat) == 1 else (flat,) if len(flat) == 2 else None
    else:
        v = static_value(pad_width, "'pad_width'", span)
        if v.ndim == 0:
            n = static_int(pad_width, "'pad_width'", span)
            pairs = ((n, n),)
        elif v.ndim == 1 and v.size in (1, 2):
            flat = static_ints(pad_width, "'pad_width'", span)
            pairs = (flat * 2,) if len(flat) == 1 else (flat,)
        elif v.ndim == 2 and v.shape[1] in (1, 2):
            rows = [static_ints(const(row), "'pad_width'", span) for row in v]
            pairs = tuple(r * 2 if len(r) == 1 else r for r in rows)
        else:
            pairs = None
    if pairs is None or any(len(p) not in (1, 2) for p in pairs):
        raise BpValueError("pad: pad_width must be n, (before, after) or one (before, after) "
                           "pair per axis", span)
    pairs = tuple(p * 2 if len(p) == 1 else p for p in pairs)
    if any(w < 0 for p in pairs for w in p):
        raise BpValueError(f"pad: pad widths must not be negative, got {pairs}", span)
    return pairs


def _per_axis(widths: tuple, rank: int, span) -> tuple:
    if len(widths) == 1:
        return widths * rank
    if len(widths) != rank:
        raise BpShapeError(f"pad: {len(widths)} (before, after) pairs for a tensor of rank {rank}",
                           span)
    return widths


def _pad_shape(shs, attrs, span):
    if not _concrete(shs):
        return shapes.SymShape()
    s = shs[0]
    widths = _per_axis(attrs["pad_width"], len(s), span)
    if attrs.get("mode", "constant") != "constant":
        for axis, (d, (b, a)) in enumerate(zip(s, widths)):
            if d == 0 and b + a:
                raise BpShapeError(f"pad: cannot extend the empty axis {axis} with mode "
                                   f"\"{str.__str__(attrs['mode'])}\" (only \"constant\" can)", span)
    return tuple(d + b + a for d, (b, a) in zip(s, widths))


class Text(str):
    """A str attribute that prints quoted (`mode="reflect"`, einsum's subscripts): the
    printer writes an attribute by its str()."""
    __slots__ = ()

    def __str__(self):
        return '"' + self + '"'


# NumPy's modes that copy elements (the others compute: linear_ramp, mean, …).
PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad(x, pad_width, constant_values=0.0, mode="constant"):
    if mode == "constant":
        return np.pad(x, pad_width, mode="constant", constant_values=constant_values)
    return np.pad(x, pad_width, mode=str.__str__(mode))


def _fold_pad(ins, attrs, shape):
    x, = ins
    if isinstance(x.shape, tuple) and len(attrs["pad_width"]) != len(x.shape):
        widths = _per_axis(attrs["pad_width"], len(x.shape), None)
        return apply("pad", [x], {**attrs, "pad_width": widths})
    if x.shape == shape:
        return x
    return None


def _pad_back(g, x, attrs):
    """The middle of g: each axis cut from `before` to `before + size`.  For the modes
    that copy x's elements into the border, NumPy pads one axis after the other, so
    the adjoint undoes one axis at a time, from the last: `_unpad_axis`."""
    widths = _per_axis(attrs["pad_width"], len(x.shape), None)
    mode = attrs.get("mode", "constant")
    if mode == "constant":
        items = tuple(("s", b, b + d, None) for d, (b, a) in zip(x.shape, widths))
        return apply("index", [g], {"items": items})
    for axis in reversed(range(len(x.shape))):
        g = _unpad_axis(g, axis, x.shape[axis], widths[axis], mode)
    return g


def _unpad_axis(g, axis: int, n: int, width: tuple, mode: str):
    """The adjoint of padding one axis of size n by (before, after) with `mode`.  Each
    run of g along the axis that NumPy filled from x's elements in order, reversed, or
    from one element (edge) is cut out, flipped back or summed, padded with zeros to
    x's size along the axis, and added up."""
    b, a = width
    if b == a == 0:
        return g
    source = [int(v) for v in np.pad(np.arange(n), (b, a), mode=str.__str__(mode))]
    runs, lo = [], 0                       # (start, stop, step) with step -1, 0 or 1
    for j in range(1, len(source) + 1):
        if j < len(source):
            step = source[j] - source[j - 1]
            if abs(step) <= 1 and (j - lo == 1 or step == source[lo + 1] - source[lo]):
                continue
        runs.append((lo, j, source[lo + 1] - source[lo] if j - lo > 1 else 1))
        lo = j
    lead = (("s", None, None, None),) * axis
    rest = ((0, 0),) * (len(g.shape) - axis - 1)
    total = None
    for lo, hi, step in runs:
        piece = apply("index", [g], {"items": lead + (("s", lo, hi, None),)})
        first, last = source[lo], source[hi - 1]
        if step == 0:
            piece = sum_(piece, (axis,), True)
        elif step < 0:
            piece = apply("flip", [piece], {"axis": (axis,)})
            first, last = last, first
        widths = ((0, 0),) * axis + ((first, n - 1 - last),) + rest
        placed = apply("pad", [piece], {"pad_width": widths, "constant_values": 0.0,
                                        "mode": Text("constant")})
        total = placed if total is None else apply("add", [total, placed])
    return total


def _pad_macro(ctx, args, kwargs, span):
    args, kwargs = list(args), dict(kwargs)
    names = ("x", "pad_width", "mode", "constant_values")
    got = dict(zip(names, args))
    if len(args) > len(names):
        raise BpTypeError("pad(x, pad_width, mode='constant', constant_values=0) takes 4 "
                          "arguments, got more", span)
    for k, v in kwargs.items():
        if k not in names or k in got:
            raise BpTypeError(f"pad has no argument '{k}'; its signature is pad(x, pad_width, "
                              f"mode=\"constant\", constant_values=0)" if k not in names else
                              f"pad got two values for '{k}'", span)
        got[k] = v
    if "x" not in got or "pad_width" not in got:
        raise BpTypeError("pad(x, pad_width, mode=\"constant\", constant_values=0) is missing "
                          "an argument", span)
    x = got["x"]
    if not isinstance(x, Node):
        raise BpTypeError(f"pad expects a tensor, got {describe(x)}", span)
    mode = got.get("mode", "constant")
    if not isinstance(mode, str):
        raise BpTypeError(f"pad: mode must be a string such as \"constant\", got {describe(mode)}",
                          span)
    if mode not in PAD_MODES:
        raise BpValueError(f"pad: mode \"{mode}\" is not supported; bp has the modes that copy "
                           f"elements: {', '.join(PAD_MODES)}", span)
    value = 0.0
    if "constant_values" in got and mode != "constant":
        raise BpValueError(f"pad: constant_values is for mode \"constant\", not \"{mode}\"", span)
    if "constant_values" in got:
        v = static_value(got["constant_values"], "'constant_values'", span)
        if v.ndim != 0:
            raise BpValueError("pad: constant_values must be one number", span)
        value = float(v)
    return apply("pad", [x], {"pad_width": _widths(got["pad_width"], span),
                                "constant_values": value, "mode": Text(mode)}, span)


def _batch_pad(node, ins, m):
    (x, _), = ins
    attrs = dict(node.attrs)
    attrs["pad_width"] = ((0, 0),) + _per_axis(attrs["pad_width"], len(node.inputs[0].shape), None)
    return apply("pad", [x], attrs)


# ── tril and triu ────────────────────────────────────────────────────────

def _tri_shape(name):
    def rule(shs, attrs, span):
        s = shs[0]
        if not _concrete(shs):
            return shapes.SymShape() if isinstance(s, shapes.SymShape) else s
        if len(s) == 0:
            raise BpShapeError(f"{name} needs a tensor of rank at least 1, got a scalar", span)
        return (s[0],) + s if len(s) == 1 else s       # a vector: its rows, as NumPy does
    return rule


def _tri_vjp(name):
    def vjp(ct, out, ins, attrs):
        return (unbroadcast(apply(name, [ct], attrs), ins[0]),)
    return vjp


def _batch_tri(node, ins, m):
    (x, _), = ins
    if len(node.inputs[0].shape) == 1:            # a vector's rows: make them explicit
        x = apply("broadcast_to", [apply("reshape", [x], {"shape": (m, 1) + node.inputs[0].shape})],
                  {"shape": (m,) + node.shape})
    return apply(node.op, [x], dict(node.attrs))


# ── unarrange: the adjoint that needs the argument's shape ───────────────

# Known-shape forms of the adjoints: (g, x, forward attrs) -> node, or None to keep unarrange.
_BACK = {
    "tile": _tile_back,
    "repeat": _repeat_back,
    "pad": _pad_back,
    "split_part": lambda g, x, a: apply("unindex", [g, x], {"items": _split_items(x.shape, a, None)}),
}


def _linear_attrs(of: str, args: tuple) -> dict:
    """The forward op's attrs without its constant part (pad's fill value)."""
    attrs = dict(args)
    if "constant_values" in attrs:
        attrs["constant_values"] = 0.0
    return attrs


def _unarrange(g, like, of, args):
    """g added back into like's shape: the forward op run on the element numbers
    1 … size says where each element of g came from (0: from a pad's constant)."""
    shape = np.shape(like)
    n = int(np.prod(shape, dtype=np.int64))
    numbers = np.arange(1, n + 1, dtype=np.float64).reshape(shape)
    src = np.asarray(REGISTRY[of].kernel(numbers, **_linear_attrs(of, args)))
    total = np.bincount(src.astype(np.intp).ravel(), weights=np.ravel(g), minlength=n + 1)
    return total[1:].reshape(shape)


# Where x's shape is unknown, the adjoints that bp can write without it, right at every
# shape (each a few nodes; past _PIECES pieces, unarrange):
_PIECES = 64


def _sum_of(nodes):
    total = nodes[0]
    for n in nodes[1:]:
        total = apply("add", [total, n])
    return total


def _tile_back_any(g, x, attrs):
    """Along each axis from the last, the reps[i] blocks of split(g, reps[i]) summed."""
    reps = attrs["reps"]
    if 0 in reps:
        return apply("zeros_like", [x])
    if sum(reps) > _PIECES:
        return None
    for i, r in enumerate(reversed(reps)):
        if r > 1:
            how = {"indices_or_sections": r, "axis": -(i + 1)}
            g = _sum_of([apply("split_part", [g], {**how, "k": k}) for k in range(r)])
    return apply("reshape_like", [g, x])


def _repeat_back_any(g, x, attrs):
    """Along a leading axis (or of the flattened x): for one count r, g[…, j::r] summed
    over j; for a count per element, each element's run of g summed, joined by concat."""
    counts, axis = attrs["repeats"], attrs.get("axis")
    if max(sum(counts), len(counts)) > _PIECES or (axis is not None and not 0 <= axis < 64):
        return None                                    # (NumPy's ranks are at most 64)
    lead = (("s", None, None, None),) * (axis or 0)
    if axis is None:
        x_flat = apply("reshape", [x], {"shape": (-1,)})
    if len(counts) == 1:
        r = counts[0]
        if r == 0:
            return apply("zeros_like", [x])
        total = _sum_of([apply("index", [g], {"items": lead + (("s", j, None, r),)})
                         for j in range(r)])
    else:
        parts, start = [], 0
        for i, c in enumerate(counts):
            if c == 0:                                 # zeros shaped like element i's slice
                piece = apply("index", [x if axis is not None else x_flat],
                              {"items": lead + (("s", i, i + 1, None),)})
                parts.append(apply("zeros_like", [piece]))
            else:
                run = apply("index", [g], {"items": lead + (("s", start, start + c, None),)})
                parts.append(sum_(run, (axis or 0,), True))
            start += c
        total = apply("concat", parts, {"axis": axis or 0})
    return apply("reshape_like", [total, x]) if axis is None else total


def _split_back_any(g, x, attrs):
    """g in its piece's place, zeros of the other pieces' shapes around it."""
    how = attrs["indices_or_sections"]
    count = how if isinstance(how, int) else len(how) + 1
    parts = [g if j == attrs["k"] else
             apply("zeros_like", [apply("split_part", [x], {**attrs, "k": j})])
             for j in range(count)]
    return apply("concat", parts, {"axis": attrs.get("axis", 0)})


def _pad_back_any(g, x, attrs):
    """One (before, after) pair per axis fixes the rank: g[b₀:-a₀, b₁:-a₁, …]."""
    widths = attrs["pad_width"]
    if len(widths) == 1 or attrs.get("mode", "constant") != "constant":
        return None                        # the rank is unknown, or the sizes are needed
    return apply("index", [g], {"items": tuple(("s", b, -a if a else None, None)
                                               for b, a in widths)})


_BACK_ANY = {"tile": _tile_back_any, "repeat": _repeat_back_any, "split_part": _split_back_any,
             "pad": _pad_back_any}


def adjoint(of: str, g: Node, x: Node, attrs: dict) -> Node:
    """The cotangent of x in `of(x; attrs)` given the output's cotangent g."""
    back = (_BACK if isinstance(x.shape, tuple) else _BACK_ANY)[of](g, x, attrs)
    if back is not None:
        return back
    return apply("unarrange", [g, x], {"of": of, "args": tuple(sorted(attrs.items()))})


def _fold_unarrange(ins, attrs, shape):
    g, x = ins
    if isinstance(x.shape, tuple):
        return _BACK[attrs["of"]](g, x, dict(attrs["args"]))
    return None


def _unarrange_vjp(ct, out, ins, attrs):
    return apply(attrs["of"], [ct], _linear_attrs(attrs["of"], attrs["args"])), None


def _unarrange_jvp(ts, out, ins, attrs):
    return None if ts[0] is None else apply("unarrange", [ts[0], ins[1]], attrs)


# ── export (dsl/codegen.py) ──────────────────────────────────────────────

def _number_code(v: float) -> str:
    if np.isnan(v):
        return "np.nan"
    if np.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(float(v))


def _repeat_code(args, a):
    r = a["repeats"][0] if len(a["repeats"]) == 1 else list(a["repeats"])
    return f"np.repeat({args[0]}, {r!r}, axis={a['axis']!r})"


def _repeat_jax(args, a):
    """jnp.repeat under jit needs the length of a result of repeats given per element."""
    if len(a["repeats"]) == 1:
        return _repeat_code(args, a).replace("np.", "jnp.")
    total = sum(a["repeats"])
    return (f"jnp.repeat({args[0]}, jnp.array({list(a['repeats'])!r}), axis={a['axis']!r}, "
            f"total_repeat_length={total})")


def _roll_code(args, a):
    if a["axis"] is None:
        return f"np.roll({args[0]}, {a['shift'][0]})"
    return f"np.roll({args[0]}, {a['shift']!r}, axis={a['axis']!r})"


def _split_code(args, a):
    how = a["indices_or_sections"]
    how = how if isinstance(how, int) else list(how)
    return f"np.split({args[0]}, {how!r}, axis={a['axis']})[{a['k']}]"


def _pad_code(args, a):
    if a["mode"] == "constant":
        return (f"np.pad({args[0]}, {a['pad_width']!r}, "
                f"constant_values={_number_code(a['constant_values'])})")
    return f"np.pad({args[0]}, {a['pad_width']!r}, mode={str.__str__(a['mode'])!r})"


_UNARRANGE_JAX = """
def _unarrange(g, like, forward):
    shape = jnp.shape(like)
    n = math.prod(shape)
    src = jnp.asarray(forward(jnp.arange(1, n + 1, dtype=jnp.float64).reshape(shape)))
    total = jnp.zeros(n + 1).at[src.astype(jnp.int64).ravel()].add(jnp.ravel(g))
    return total[1:].reshape(shape)
"""
_TRI_JAX = """
def _tri(f, x, k):
    x = jnp.asarray(x, dtype=jnp.float64)
    return f(jnp.broadcast_to(x, x.shape * 2) if x.ndim == 1 else x, k)
"""

_UNARRANGE_CODE = """
def _unarrange(g, like, forward):
    shape = np.shape(like)
    n = int(np.prod(shape, dtype=np.int64))
    src = np.asarray(forward(np.arange(1, n + 1, dtype=np.float64).reshape(shape)))
    total = np.bincount(src.astype(np.intp).ravel(), weights=np.ravel(g), minlength=n + 1)
    return total[1:].reshape(shape)
"""


def _unarrange_code(args, a):
    forward = REGISTRY[a["of"]]
    attrs = {x.name: x.default for x in forward.attrs} | _linear_attrs(a["of"], a["args"])
    code = forward.export
    body = code.format("a", **attrs) if isinstance(code, str) else code(["a"], attrs)
    return f"_unarrange({args[0]}, {args[1]}, lambda a: {body})"


# ── registration ─────────────────────────────────────────────────────────

def _linear_jvp(name):
    return lambda ts, out, ins, a: apply(name, [ts[0]], a)


register(OpDef(name="squeeze", kernel=lambda x, axis=None: np.squeeze(x, axis=axis),
               shape=_squeeze_shape, attrs=(Attr("axis", "axes", None),), fold=_fold_squeeze,
               vjp=lambda ct, out, ins, a: (_reshape_back(ct, ins[0]),),
               jvp=_linear_jvp("squeeze"), batch=_batch_squeeze,
               export="np.squeeze({0}, axis={axis!r})",
               doc="x without its axes of size 1 (or only those named by axis=)"))
register(OpDef(name="tile", kernel=lambda x, reps: np.tile(x, reps), shape=_tile_shape,
               attrs=(Attr("reps", "axes", required=True),),
               vjp=lambda ct, out, ins, a: (adjoint("tile", ct, ins[0], a),),
               jvp=_linear_jvp("tile"), batch=_batch_tile, export="np.tile({0}, {reps!r})",
               doc="x repeated reps[i] times along axis i (reps padded with 1s, as NumPy)"))
register(OpDef(name="repeat", kernel=_repeat, shape=_repeat_shape,
               attrs=(Attr("repeats", "axes", required=True), Attr("axis", "int", None)),
               vjp=lambda ct, out, ins, a: (adjoint("repeat", ct, ins[0], a),),
               jvp=_linear_jvp("repeat"), batch=_batch_repeat, export=_repeat_code, jax=_repeat_jax,
               doc="each element repeated (along axis=, or of the flattened x)"))
register(OpDef(name="roll", kernel=_roll, shape=_roll_shape,
               attrs=(Attr("shift", "axes", required=True), Attr("axis", "axes", None)),
               vjp=lambda ct, out, ins, a: (apply("roll", [ct],
                                                  {**a, "shift": tuple(-s for s in a["shift"])}),),
               jvp=_linear_jvp("roll"), batch=_batch_roll, export=_roll_code,
               doc="the elements shifted cyclically by shift (along axis=, or of the flattened x)"))
register(OpDef(name="flip", kernel=_flip, shape=_flip_shape, attrs=(Attr("axis", "axes", None),),
               vjp=lambda ct, out, ins, a: (apply("flip", [ct], a),), jvp=_linear_jvp("flip"),
               batch=_batch_flip, export="np.flip({0}, axis={axis!r})",
               doc="the elements in reverse order along axis= (every axis by default)"))
register(OpDef(name="split_part", kernel=_split_part, shape=_split_part_shape, builtin=False,
               attrs=(Attr("indices_or_sections", "axes", required=True), Attr("axis", "int", 0),
                      Attr("k", "int", 0)),
               fmt=CallForm("split", index="k"),
               fold=_fold_split_part,
               vjp=lambda ct, out, ins, a: (adjoint("split_part", ct, ins[0], a),),
               jvp=_linear_jvp("split_part"), batch=_batch_split_part, export=_split_code,
               doc="piece k of split(x, …); prints as split(x, …)[k]"))
register(OpDef(name="pad", kernel=_pad, shape=_pad_shape, builtin=False,
               attrs=(Attr("pad_width", "axes", required=True), Attr("constant_values", "float", 0.0),
                      Attr("mode", "str", Text("constant"))),
               fold=_fold_pad,
               vjp=lambda ct, out, ins, a: (adjoint("pad", ct, ins[0], a),),
               jvp=lambda ts, out, ins, a: apply("pad", [ts[0]], {**a, "constant_values": 0.0}),
               batch=_batch_pad,
               export=_pad_code,
               doc="x with (before, after) elements added on each axis: a constant, or copies "
                   "of x's own (mode edge, reflect, symmetric, wrap)"))
for _name, _kernel in (("tril", np.tril), ("triu", np.triu)):
    register(OpDef(name=_name, kernel=lambda x, k=0, _f=_kernel: _f(x, k), shape=_tri_shape(_name),
                   attrs=(Attr("k", "int", 0),), vjp=_tri_vjp(_name), jvp=_linear_jvp(_name),
                   batch=_batch_tri, export=f"np.{_name}({{0}}, {{k}})",
                   jax=Jax(f"_tri(jnp.{_name}, {{0}}, {{k}})", (_TRI_JAX,)),
                   doc=("the lower" if _name == "tril" else "the upper") +
                       " triangle of x (of each matrix of a stack): zeros " +
                       ("above" if _name == "tril" else "below") + " diagonal k"))
register(OpDef(name="unarrange", kernel=_unarrange, shape=lambda shs, a, span: shs[1],
               params=("g", "like"), builtin=False,
               attrs=(Attr("of", "str", required=True), Attr("args", "items", ())),
               fold=_fold_unarrange, vjp=_unarrange_vjp, jvp=_unarrange_jvp,
               batch=FALLBACK + " (it folds to other ops once the shapes are known, which "
                                "batching needs)",
               export=_unarrange_code, helpers=(_UNARRANGE_CODE,),
               jax=Jax(_unarrange_code, ("import math", _UNARRANGE_JAX)),
               doc="the cotangent of x in of(x; args) given the output's cotangent g, where x's "
                   "shape is known only at call time; prints as vjp(a -> of(a, …))(x, g)[1]"))


def _like_macro(name, build, doc):
    def call(ctx, args, kwargs, span):
        args, kwargs = list(args), dict(kwargs)
        if kwargs or len(args) != 1:
            raise BpTypeError(f"{name}(x) takes 1 argument", span)
        if not isinstance(args[0], Node):
            raise BpTypeError(f"{name} expects a tensor, got {describe(args[0])}", span)
        return build(args[0], span)
    register_macro(Macro(name, call, f"{name}(x)", doc, differentiable=False))


_like_macro("zeros_like", lambda x, span: apply("zeros_like", [x], span=span),
            "zeros of x's shape")
_like_macro("ones_like", lambda x, span: apply("broadcast_like", [const(1.0), x], span=span),
            "ones of x's shape")
register_macro(Macro("split", _split, "split(x, indices_or_sections, axis=0)",
                     "a tuple of pieces of x along axis: n equal ones, or cut before each index"))
register_macro(Macro("pad", _pad_macro,
                     "pad(x, pad_width, mode=\"constant\", constant_values=0)",
                     "x with constant_values added around it: pad_width n, (before, after), or "
                     "one (before, after) per axis"))
