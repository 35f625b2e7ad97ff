"""Samples for dsl/ops/arrange.py (squeeze tile repeat roll flip split pad tril triu,
and unarrange, the adjoint of a rearrangement).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); MACROS: split, pad, zeros_like, ones_like.  The
references index element by element; none calls the NumPy function the kernel
calls.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def _each_index(shape):
    return itertools.product(*(range(d) for d in shape))


def ref_squeeze(x, axis):
    keep = [d for i, d in enumerate(x.shape)
            if not (d == 1 and (axis is None or i in [a % x.ndim for a in axis]))]
    return x.reshape(keep)


def ref_tile(x, reps):
    n = max(x.ndim, len(reps))
    s = (1,) * (n - x.ndim) + x.shape
    r = (1,) * (n - len(reps)) + tuple(reps)
    xs = x.reshape(s)
    out = np.zeros(tuple(d * k for d, k in zip(s, r)))
    for idx in _each_index(out.shape):
        out[idx] = xs[tuple(i % d for i, d in zip(idx, s))]
    return out


def _repeat_list(values, repeats):
    counts = list(repeats) * len(values) if len(repeats) == 1 else list(repeats)
    return [v for v, c in zip(values, counts) for _ in range(c)]


def ref_repeat(x, repeats, axis):
    if axis is None:
        return np.array(_repeat_list(list(x.ravel()), repeats), dtype=float)
    moved = np.moveaxis(x, axis, 0)
    pieces = _repeat_list(list(moved), repeats)
    out = np.array(pieces).reshape((len(pieces),) + moved.shape[1:])
    return np.moveaxis(out, 0, axis)


def ref_roll(x, shift, axis):
    if axis is None:
        flat = x.ravel()
        n = flat.size
        return np.array([flat[(i - shift[0]) % n] for i in range(n)]).reshape(x.shape)
    shifts = list(shift) * len(axis) if len(shift) == 1 else list(shift)
    axes = list(axis) * len(shifts) if len(axis) == 1 else list(axis)
    total = [0] * x.ndim
    for sh, ax in zip(shifts, axes):
        total[ax % x.ndim] += sh
    out = np.zeros(x.shape)
    for idx in _each_index(x.shape):
        out[tuple((i + t) % d for i, t, d in zip(idx, total, x.shape))] = x[idx]
    return out


def ref_flip(x, axis):
    axes = range(x.ndim) if axis is None else [a % x.ndim for a in axis]
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def ref_split_part(x, indices_or_sections, axis, k):
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        sections = indices_or_sections
        cuts = [i * (n // sections) for i in range(sections + 1)]
    else:
        cuts = [0, *indices_or_sections, n]
    lo, hi = cuts[k], cuts[k + 1]
    return x[(slice(None),) * (axis % x.ndim) + (slice(lo, hi),)]


def _pad_source(j, n, mode):
    """Which element of an axis of n an index j (counted from x's first) copies."""
    if mode == "edge":
        return min(max(j, 0), n - 1)
    if mode == "wrap":
        return j % n
    if mode == "reflect":                  # mirrored about the end elements: period 2n - 2
        if n == 1:
            return 0
        t = j % (2 * n - 2)
        return t if t < n else 2 * n - 2 - t
    t = j % (2 * n)                        # symmetric: the end elements repeated, period 2n
    return t if t < n else 2 * n - 1 - t


def ref_pad(x, pad_width, constant_values, mode="constant"):
    widths = pad_width * x.ndim if len(pad_width) == 1 else pad_width
    if mode != "constant":                 # one axis after the other, as NumPy pads
        for axis, (b, a) in enumerate(widths):
            n = x.shape[axis]
            x = np.take(x, [_pad_source(j - b, n, mode) for j in range(n + b + a)], axis=axis)
        return x
    out = np.full(tuple(d + b + a for d, (b, a) in zip(x.shape, widths)), constant_values)
    out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, widths))] = x
    return out


def ref_tri(lower):
    def ref(x, k):
        n, m = (x.shape[-1], x.shape[-1]) if x.ndim == 1 else x.shape[-2:]
        rows = np.arange(n)[:, None]
        cols = np.arange(m)[None, :]
        keep = (cols - rows <= k) if lower else (cols - rows >= k)
        return np.where(keep, x if x.ndim > 1 else np.broadcast_to(x, (n, m)), 0.0)
    return ref


_FORWARD_REFS = {"tile": ref_tile, "repeat": ref_repeat, "pad": ref_pad,
                 "split_part": ref_split_part}


def ref_unarrange(g, like, of, args):
    """By linearity: element i of the cotangent is <g, of(e_i)> (pad's fill taken as 0)."""
    attrs = dict(args)
    if "constant_values" in attrs:
        attrs["constant_values"] = 0.0
    out = np.zeros(like.shape)
    for idx in _each_index(like.shape):
        e = np.zeros(like.shape)
        e[idx] = 1.0
        out[idx] = np.sum(g * _FORWARD_REFS[of](e, **attrs))
    return out


def _items(**attrs):
    return tuple(sorted(attrs.items()))


SPLIT = dict(k=1, axis=0, indices_or_sections=3)

FORWARD = {
    "squeeze": Spec([s(U(1, 3, 1), axis=None, label="all"), s(U(2, 1, 3), axis=(1,), label="one"),
                     s(U(1, 1), axis=(0, -1), label="both"), s(U(3), axis=None, label="none"),
                     s(U(1), axis=None, label="to-scalar")],
                    ref=ref_squeeze),
    "tile": Spec([s(U(3), reps=(2,), label="vector"), s(U(2, 3), reps=(2, 1), label="rows"),
                  s(U(2, 3), reps=(2,), label="short-reps"), s(U(3), reps=(2, 2), label="long-reps"),
                  s(U(), reps=(3,), label="scalar"), s(U(2, 1, 2), reps=(1, 3, 0), label="zero")],
                 ref=ref_tile),
    "repeat": Spec([s(U(3), repeats=(2,), axis=None, label="vector"),
                    s(U(2, 3), repeats=(2,), axis=None, label="flat"),
                    s(U(2, 3), repeats=(3,), axis=1, label="axis1"),
                    s(U(2, 3), repeats=(1, 0, 2), axis=-1, label="counts"),
                    s(U(2, 3), repeats=(2, 1), axis=0, label="rows"),
                    s(U(), repeats=(2,), axis=None, label="scalar")],
                   ref=ref_repeat),
    "roll": Spec([s(U(5), shift=(2,), axis=None, label="vector"),
                  s(U(2, 3), shift=(1,), axis=None, label="flat"),
                  s(U(2, 3), shift=(-1,), axis=(1,), label="axis1"),
                  s(U(2, 3, 4), shift=(1, 2), axis=(0, 2), label="two"),
                  s(U(3, 4), shift=(1, 1), axis=(1, 1), label="repeated-axis"),
                  s(U(3, 4), shift=(7,), axis=(0,), label="wraps")],
                 ref=ref_roll, symbolic="same"),
    "flip": Spec([s(U(4), axis=None, label="vector"), s(U(2, 3), axis=None, label="all"),
                  s(U(2, 3), axis=(0,), label="rows"), s(U(2, 3, 2), axis=(-1, 0), label="two"),
                  s(U(), axis=None, label="scalar")],
                 ref=ref_flip, symbolic="same"),
    "split_part": Spec([s(U(6), **SPLIT, label="sections"),
                        s(U(2, 6), k=0, axis=1, indices_or_sections=2, label="axis1"),
                        s(U(5, 2), k=1, axis=0, indices_or_sections=(2, 4), label="indices"),
                        s(U(5, 2), k=2, axis=0, indices_or_sections=(2, 4), label="last"),
                        s(U(2, 4), k=1, axis=-1, indices_or_sections=(3, 9), label="beyond")],
                       ref=ref_split_part),
    "pad": Spec([s(U(3), pad_width=((1, 2),), constant_values=0.0, mode="constant", label="vector"),
                 s(U(2, 3), pad_width=((1, 1),), constant_values=0.0, mode="constant",
                   label="all-axes"),
                 s(U(2, 3), pad_width=((0, 1), (2, 0)), constant_values=1.5, mode="constant",
                   label="per-axis"),
                 s(U(2, 2), pad_width=((0, 0), (0, 0)), constant_values=0.0, mode="constant",
                   label="none"),
                 s(U(), pad_width=((1, 1),), constant_values=-2.0, mode="constant", label="scalar")]
                + [s(U(*shape), pad_width=w, constant_values=0.0, mode=m, label=f"{m}-{tag}")
                   for m in ("edge", "reflect", "symmetric", "wrap")
                   for shape, w, tag in [((3,), ((2, 1),), "vector"), ((3,), ((7, 5),), "wide"),
                                         ((2, 3), ((1, 0), (4, 2)), "matrix"),
                                         ((1, 2), ((2, 2),), "size-1")]],
                ref=ref_pad),
    "tril": Spec([s(U(3, 3), k=0, label="square"), s(U(2, 4), k=1, label="wide-k1"),
                  s(U(4, 2), k=-1, label="tall-k-1"), s(U(2, 3, 3), k=0, label="stack"),
                  s(U(3), k=0, label="vector")],
                 ref=ref_tri(True)),
    "triu": Spec([s(U(3, 3), k=0, label="square"), s(U(2, 4), k=1, label="wide-k1"),
                  s(U(4, 2), k=-1, label="tall-k-1"), s(U(2, 3, 3), k=2, label="stack"),
                  s(U(3), k=0, label="vector")],
                 ref=ref_tri(False)),
    "unarrange": Spec([s(U(2, 4), U(2, 2), of="tile", args=_items(reps=(1, 2)), label="tile"),
                       s(U(6), U(3), of="repeat", args=_items(repeats=(2,), axis=None),
                         label="repeat"),
                       s(U(2, 3), U(2, 3), of="repeat", args=_items(repeats=(1, 0, 2), axis=1),
                         label="repeat-counts"),
                       s(U(4, 3), U(2, 1), of="pad", args=_items(pad_width=((1, 1), (0, 2)), constant_values=3.0,
                                                                mode="constant"), label="pad"),
                       s(U(5, 4), U(2, 2), of="pad", args=_items(pad_width=((2, 1), (1, 1)), constant_values=0.0,
                                                                mode="reflect"), label="pad-reflect"),
                       s(U(2), U(6), of="split_part", args=_items(**SPLIT), label="split")],
                      ref=ref_unarrange),
}

GRAD = {
    "squeeze": [g.S(g.U(1, 3, 1), axis=None, label="all"), g.S(g.U(2, 1), axis=(1,), label="one")],
    "tile": [g.S(g.U(3), reps=(2,), label="vector"), g.S(g.U(2, 3), reps=(2, 1), label="rows"),
             g.S(g.U(3), reps=(2, 2), label="long-reps"), g.S(g.U(), reps=(3,), label="scalar")],
    "repeat": [g.S(g.U(2, 3), repeats=(2,), axis=None, label="flat"),
               g.S(g.U(2, 3), repeats=(3,), axis=1, label="axis1"),
               g.S(g.U(2, 3), repeats=(1, 0, 2), axis=-1, label="counts")],
    "roll": [g.S(g.U(5), shift=(2,), axis=None, label="vector"),
             g.S(g.U(2, 3, 4), shift=(1, -2), axis=(0, 2), label="two")],
    "flip": [g.S(g.U(4), axis=None, label="vector"), g.S(g.U(2, 3), axis=(1,), label="cols")],
    "split_part": [g.S(g.U(6), **SPLIT, label="sections"),
                   g.S(g.U(5, 2), k=1, axis=0, indices_or_sections=(2, 4), label="indices")],
    "pad": [g.S(g.U(3), pad_width=((1, 2),), constant_values=0.0, mode="constant", label="vector"),
            g.S(g.U(2, 3), pad_width=((0, 1), (2, 0)), constant_values=1.5, mode="constant",
                label="per-axis")]
           + [g.S(g.U(*shape), pad_width=w, constant_values=0.0, mode=m, label=f"{m}-{tag}")
              for m in ("edge", "reflect", "symmetric", "wrap")
              for shape, w, tag in [((3,), ((2, 4),), "vector"), ((2, 3), ((1, 0), (4, 2)), "matrix")]],
    "tril": [g.S(g.U(3, 3), k=0, label="square"), g.S(g.U(2, 3, 3), k=-1, label="stack"),
             g.S(g.U(3), k=0, label="vector")],
    "triu": [g.S(g.U(3, 3), k=0, label="square"), g.S(g.U(2, 4), k=1, label="wide"),
             g.S(g.U(3), k=1, label="vector")],
    "unarrange": [g.S(g.U(2, 4), g.Fixed(np.zeros((2, 2))), of="tile", args=_items(reps=(1, 2)),
                      label="tile"),
                  g.S(g.U(2, 3), g.Fixed(np.zeros((2, 3))), of="repeat",
                      args=_items(repeats=(1, 0, 2), axis=1), label="repeat-counts")],
}

MACROS = [
    ("zeros_like", "zeros_like(x)", {"x": np.arange(6.0).reshape(2, 3)}, np.zeros((2, 3))),
    ("ones_like", "ones_like(x)", {"x": np.arange(3.0)}, np.ones(3)),
    ("split", "split(x, 2)", {"x": np.arange(6.0)}, np.array([[0.0, 1, 2], [3, 4, 5]])),
    ("split", "split(x, (1,), axis=1)", {"x": np.arange(4.0).reshape(2, 2)},
     np.array([[[0.0], [2]], [[1], [3]]])),
    ("pad", "pad(x, 1)", {"x": np.ones((1, 1))}, np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])),
    ("pad", "pad(x, ((0, 1), (2, 0)), constant_values=5)", {"x": np.ones((1, 1))},
     np.array([[5.0, 5, 1], [5, 5, 5]])),
    ("pad", "pad(x, (1, 2), mode=\"constant\")", {"x": np.array([7.0])},
     np.array([0.0, 7, 0, 0])),
    ("pad", "pad(x, [[1, 0]])", {"x": np.array([7.0, 8.0])}, np.array([0.0, 7, 8])),
    ("pad", "pad(x, (2, 3), mode=\"reflect\")", {"x": np.array([1.0, 2, 3])},
     np.array([3.0, 2, 1, 2, 3, 2, 1, 2])),
    ("pad", "pad(x, 2, \"symmetric\")", {"x": np.array([1.0, 2, 3])},
     np.array([2.0, 1, 1, 2, 3, 3, 2])),
    ("pad", "pad(x, (1, 4), mode=\"wrap\")", {"x": np.array([1.0, 2, 3])},
     np.array([3.0, 1, 2, 3, 1, 2, 3, 1])),
    ("pad", "pad(x, ((1, 0), (0, 2)), mode=\"edge\")", {"x": np.array([[1.0, 2]])},
     np.array([[1.0, 2, 2, 2], [1, 2, 2, 2]])),
]

SHAPE_ERRORS = [
    ("squeeze", [(2, 3)], {"axis": (0,)}, "not 1"),
    ("repeat", [(2, 3)], {"repeats": (1, 2), "axis": 1}, "repeats"),
    ("split_part", [(5,)], {"k": 0, "axis": 0, "indices_or_sections": 2}, "equal"),
    ("pad", [(2, 3)], {"pad_width": ((1, 1), (1, 1), (1, 1)), "constant_values": 0.0,
                       "mode": "constant"}, "pairs"),
    ("pad", [(0, 3)], {"pad_width": ((1, 1),), "constant_values": 0.0, "mode": "edge"},
     "empty axis"),
    ("tril", [()], {"k": 0}, "rank"),
    ("flip", [(2, 3)], {"axis": (2,)}, "out of range"),
]
