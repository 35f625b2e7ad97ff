"""Convolutions, pooling, normalisation, dropout, sort and top_k (PyTorch's conventions).

conv1d/conv2d take inputs (N, C, *S) or unbatched (C, *S) and weights
(O, C/groups, *K), as torch.nn.functional does.  Their derivatives are the
two partial gradients of the trilinear form F(x, w, g) = <g, conv(x, w)>:
`conv2d_vjp(x, w, g, wrt=0)` = dF/dx (a transposed convolution) and
`wrt=1` = dF/dw (a correlation of x with g), where the operand a result is
the cotangent of gives only its shape (as matmul_vjp).  Each of the three is
linear in each of its other two arguments, and the VJP of one is again one
of the three, so derivatives of any order stay in this family of ops.

Pools and sort have a derivative that only moves entries: `max_pool2d_vjp`
scatters a cotangent to each window's argmax, `max_pool2d_jvp` gathers a
tangent from it; each is the other's adjoint in its second argument and
constant in x (where x picks the positions).  The same holds for
`sort_vjp`/`sort_jvp` with the sorting permutation and for avg_pool2d (its
adjoint `avg_pool2d_vjp` spreads each cotangent over its window).

layer_norm, batch_norm, dropout and top_k are macros over registered ops:
their derivatives are those of their definitions.

The kernels are NumPy on strided views (numpy.lib.stride_tricks): a
convolution is one im2col copy and one matrix product per group.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpTypeError, BpValueError
from ..graph import Node
from . import (REGISTRY, Attr, CallForm, Jax, Macro, OpDef, apply, bind, const, describe, register,
               register_macro, static_int, static_value)
from . import series as _series
from .batched import along_axis, on_last_axes, with_batch
from .sym import add, div, mul, neg, op, sub


# ── static arguments: per-axis tuples ────────────────────────────────────

def _per_axis(t, nd: int) -> tuple[int, ...]:
    """A number (every spatial axis), a 1-tuple or an nd-tuple, as nd numbers."""
    if isinstance(t, int):
        return (t,) * nd
    return tuple(t) * nd if len(t) == 1 else tuple(t)


def _pad_pairs(p, nd: int) -> tuple[tuple[int, int], ...]:
    """padding p, (p,), (p_0, …, p_nd-1) or (lo_0, hi_0, lo_1, hi_1, …) as (lo, hi) per axis."""
    p = (p,) if isinstance(p, int) else tuple(p)
    if len(p) == 1:
        return ((p[0], p[0]),) * nd
    if len(p) == nd:
        return tuple((q, q) for q in p)
    return tuple((p[2 * i], p[2 * i + 1]) for i in range(nd))


def _canonical(values: tuple[int, ...]):
    """One number where every axis has the same value (prints as `stride=2`), else the tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def _canonical_padding(pairs):
    if all(lo == hi for lo, hi in pairs):
        return _canonical(tuple(lo for lo, _ in pairs))
    return tuple(v for pair in pairs for v in pair)


# ── strided windows ──────────────────────────────────────────────────────

def _windows(xp, ksize, stride, dil, out):
    """The view (N, C, *out, *ksize) of xp (N, C, *S): window o of axis i starts at
    o·stride_i, and its taps are dilation_i apart.  No copy."""
    nd = len(ksize)
    st = xp.strides
    return np.lib.stride_tricks.as_strided(xp, xp.shape[:2] + tuple(out) + tuple(ksize),
                                           st[:2] + tuple(st[2 + i] * stride[i] for i in range(nd))
                                           + tuple(st[2 + i] * dil[i] for i in range(nd)),
                                           writeable=False)


def _out_sizes(sizes, ksize, stride, pairs, dil):
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, k, s, (lo, hi), d in zip(sizes, ksize, stride, pairs, dil))


def _pad(x, pairs, value=0.0):
    if not any(lo or hi for lo, hi in pairs):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pairs), constant_values=value)


def _merged(x, nd):
    """x (*B, C, *S) as (prod B, C, *S), and B: the leading axes are all batch axes."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:x.ndim - nd - 1]
    return x.reshape((math.prod(lead),) + x.shape[len(lead):]), lead


def _split(y, lead):
    """y (prod B, …) back as (*B, …)."""
    return y.reshape(lead + y.shape[1:])


# ── convolution kernels ──────────────────────────────────────────────────
# Every kernel takes x of shape (*B, C, *S): any leading axes are batch axes (PyTorch's
# (N, C, *S) and unbatched (C, *S) are the cases of one and of none).

def _conv(x, w, stride, padding, dilation, groups, nd):
    """torch.nn.functional.conv{nd}d(x, w) without bias (a cross-correlation)."""
    x, lead = _merged(x, nd)
    w = np.asarray(w, dtype=np.float64)
    s, d, pairs = _per_axis(stride, nd), _per_axis(dilation, nd), _pad_pairs(padding, nd)
    n, c = x.shape[:2]
    o, ksize = w.shape[0], w.shape[2:]
    out = _out_sizes(x.shape[2:], ksize, s, pairs, d)
    win = _windows(_pad(x, pairs), ksize, s, d, out)          # (N, C, *out, *K), no copy
    # im2col as PyTorch lays it out, cols[n, g, (c, *k), l], then one GEMM per image and
    # group, (Og, Cg·K) @ (Cg·K, L): the result is NCHW with no transpose
    cg, og, kp = c // groups, o // groups, math.prod(ksize)
    win = win.reshape((n, groups, cg) + out + tuple(ksize))
    perm = (0, 1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + tuple(range(3, 3 + nd))
    cols = win.transpose(perm).reshape(n, groups, cg * kp, math.prod(out))
    y = np.matmul(w.reshape(groups, og, cg * kp), cols).reshape((n, o) + out)
    return _split(np.ascontiguousarray(y), lead)


def _conv_input(x, w, g, stride, padding, dilation, groups, nd):
    """dF/dx of F = <g, conv(x, w)>, in x's shape (x gives only its shape): the
    transposed convolution of g with w, by col2im."""
    shape = np.shape(x)
    g, lead = _merged(g, nd)
    w = np.asarray(w, dtype=np.float64)
    s, d, pairs = _per_axis(stride, nd), _per_axis(dilation, nd), _pad_pairs(padding, nd)
    n, sizes = g.shape[0], shape[-nd:]
    c = shape[-nd - 1]
    o, ksize = w.shape[0], w.shape[2:]
    out = g.shape[2:]
    cg, og, kp = c // groups, o // groups, math.prod(ksize)
    # cols[n, c, *K, *out] = Σ_o w[o, c, *K] g[n, o, *out], group by group
    cols = np.matmul(np.swapaxes(w.reshape(groups, og, cg * kp), 1, 2),
                     g.reshape(n, groups, og, math.prod(out)))
    cols = cols.reshape((n, c) + tuple(ksize) + out)
    xp = np.zeros((n, c) + tuple(m + lo + hi for m, (lo, hi) in zip(sizes, pairs)))
    every = (slice(None), slice(None))
    for tap in np.ndindex(*ksize):
        xp[every + tuple(slice(t * di, t * di + (m - 1) * si + 1, si)
                         for t, di, m, si in zip(tap, d, out, s))] += cols[every + tap]
    r = xp[every + tuple(slice(lo, lo + m) for m, (lo, _) in zip(sizes, pairs))]
    return np.ascontiguousarray(r).reshape(shape)


def _conv_weight(x, w, g, stride, padding, dilation, groups, nd):
    """dF/dw of F = <g, conv(x, w)>, in w's shape (w gives only its shape): the
    correlation of x with g, summed over the batch axes."""
    x, _ = _merged(x, nd)
    g, _ = _merged(g, nd)
    s, d, pairs = _per_axis(stride, nd), _per_axis(dilation, nd), _pad_pairs(padding, nd)
    c, (o, _, *ksize) = x.shape[1], np.shape(w)
    out = g.shape[2:]
    win = _windows(_pad(x, pairs), ksize, s, d, out)             # (N, C, *out, *K)
    n, cg, og, kp, length = x.shape[0], c // groups, o // groups, math.prod(ksize), math.prod(out)
    # cols[g, (c, *k), (n, l)] and g as [g, o, (n, l)]: one GEMM per group
    win = win.reshape((n, groups, cg) + out + tuple(ksize))
    perm = (1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + (0,) + tuple(range(3, 3 + nd))
    cols = win.transpose(perm).reshape(groups, cg * kp, n * length)
    gm = g.reshape(n, groups, og, length).transpose(1, 2, 0, 3).reshape(groups, og, n * length)
    return np.matmul(gm, np.swapaxes(cols, 1, 2)).reshape(np.shape(w))


def _conv_vjp(x, w, g, wrt, stride, padding, dilation, groups, nd):
    """dF/dx (wrt=0) or dF/dw (wrt=1) of F = <g, conv(x, w)>."""
    grad = _conv_input if wrt == 0 else _conv_weight
    return grad(x, w, g, stride, padding, dilation, groups, nd)


# ── convolution: shapes ──────────────────────────────────────────────────

def _known(*shs):
    return all(isinstance(s, tuple) for s in shs)


def conv_output_shape(name, nd, xs, ws, attrs, span):
    if len(xs) < nd + 1:
        raise BpShapeError(f"{name} needs an input of shape (N, C, {_dims(nd)}) or "
                           f"(C, {_dims(nd)}), got {shapes.fmt(xs)}", span)
    if len(ws) != nd + 2:
        raise BpShapeError(f"{name} needs weights of shape (O, C/groups, {_dims(nd, 'k')}), "
                           f"got {shapes.fmt(ws)}", span)
    groups = attrs.get("groups", 1)
    s, d = _per_axis(attrs.get("stride", (1,)), nd), _per_axis(attrs.get("dilation", (1,)), nd)
    pairs = _pad_pairs(attrs.get("padding", (0,)), nd)
    _check_attrs(name, nd, s, d, pairs, groups, span)
    c, sizes = xs[-nd - 1], xs[-nd:]
    o, ci, ksize = ws[0], ws[1], ws[2:]
    if c != ci * groups:
        raise BpShapeError(f"{name}: the input has {c} channels, but the weights {shapes.fmt(ws)} "
                           f"with groups={groups} expect {ci * groups}", span)
    if o % groups:
        raise BpShapeError(f"{name}: {o} output channels do not divide into groups={groups}", span)
    out = _out_sizes(sizes, ksize, s, pairs, d)
    if any(m < 1 for m in out):
        raise BpShapeError(f"{name}: the kernel {shapes.fmt(tuple(ksize))} (dilation "
                           f"{_fmt_axes(d)}) is larger than the padded input "
                           f"{shapes.fmt(tuple(n + lo + hi for n, (lo, hi) in zip(sizes, pairs)))}",
                           span)
    return xs[:-nd - 1] + (o,) + out


def _dims(nd, first="H"):
    if first == "k":
        return "kL" if nd == 1 else "kH, kW"
    return "L" if nd == 1 else "H, W"


def _fmt_axes(t):
    return str(t[0]) if len(set(t)) == 1 else str(tuple(t))


def _check_attrs(name, nd, s, d, pairs, groups, span):
    for what, vals, low in (("stride", s, 1), ("dilation", d, 1)):
        if len(vals) != nd or any(v < low for v in vals):
            raise BpValueError(f"{name}: {what} must be a positive whole number or {nd} of them, "
                               f"got {_fmt_axes(vals)}", span)
    if len(pairs) != nd or any(v < 0 for pair in pairs for v in pair):
        raise BpValueError(f"{name}: padding must be non-negative", span)
    if groups < 1:
        raise BpValueError(f"{name}: groups must be a positive whole number, got {groups}", span)


def _conv_shape(nd):
    def rule(shs, attrs, span):
        xs, ws = shs
        if not _known(xs, ws):
            return shapes.SymShape()
        return conv_output_shape(f"conv{nd}d", nd, xs, ws, attrs, span)
    return rule


def _conv_vjp_shape(nd):
    def rule(shs, attrs, span):
        xs, ws, gs = shs
        wrt = attrs.get("wrt", 0)
        name = f"conv{nd}d_vjp"
        if wrt not in (0, 1):
            raise BpValueError(f"{name}: wrt= is 0 (the cotangent of x) or 1 (of w), got {wrt}",
                               span)
        if _known(xs, ws):
            out = conv_output_shape(name, nd, xs, ws, attrs, span)
            if isinstance(gs, tuple) and gs != out:
                raise BpShapeError(f"{name}: g has shape {shapes.fmt(gs)}, but conv{nd}d of "
                                   f"x and w has shape {shapes.fmt(out)}", span)
        return shs[wrt]
    return rule


# ── convolution: derivative rules (graph-building) ───────────────────────

def _conv_rules(nd):
    """The VJP and JVP of conv{nd}d and of conv{nd}d_vjp: each a graph of these two ops."""
    name, vname = f"conv{nd}d", f"conv{nd}d_vjp"

    def conv(attrs, x, w):
        return apply(name, [x, w], {k: v for k, v in attrs.items() if k != "wrt"})

    def dF(attrs, x, w, g, wrt):
        return apply(vname, [x, w, g], {**attrs, "wrt": wrt})

    def conv_vjp(ct, out, ins, attrs):
        x, w = ins
        return dF(attrs, x, w, ct, 0), dF(attrs, x, w, ct, 1)

    def conv_jvp(ts, out, ins, attrs):
        (x, w), (tx, tw) = ins, ts
        return add(None if tx is None else conv(attrs, tx, w),
                   None if tw is None else conv(attrs, x, tw))

    def vjp_vjp(ct, out, ins, attrs):
        # y = dF/dx (wrt=0) is linear in w and g, and <u, y> = F(u, w, g): w gets dF/dw at
        # (u, g), g gets conv(u, w); x gives only its shape.  Likewise for wrt=1.
        x, w, g = ins
        if attrs.get("wrt", 0) == 0:
            return None, dF(attrs, ct, w, g, 1), conv(attrs, ct, w)
        return dF(attrs, x, ct, g, 0), None, conv(attrs, x, ct)

    def vjp_jvp(ts, out, ins, attrs):
        (x, w, g), (tx, tw, tg) = ins, ts
        if attrs.get("wrt", 0) == 0:
            return add(None if tw is None else dF(attrs, x, tw, g, 0),
                       None if tg is None else dF(attrs, x, w, tg, 0))
        return add(None if tx is None else dF(attrs, tx, w, g, 1),
                   None if tg is None else dF(attrs, x, w, tg, 1))

    return conv_vjp, conv_jvp, vjp_vjp, vjp_jvp


# ── pooling kernels ──────────────────────────────────────────────────────

def _pool_geometry(shape, kernel_size, stride, padding, nd):
    """The window, stride and padding per axis, and the output's spatial sizes."""
    k = _per_axis(kernel_size, nd)
    s = k if stride is None else _per_axis(stride, nd)
    p = _per_axis(padding, nd)
    out = tuple((n + 2 * q - kk) // ss + 1 for n, kk, ss, q in zip(shape[-nd:], k, s, p))
    return k, s, p, out


def _tap(tap, out, s):
    """The entries of (N, C, *S) that tap `tap` of every window reads."""
    return (slice(None), slice(None)) + tuple(slice(t, t + (m - 1) * si + 1, si)
                                              for t, m, si in zip(tap, out, s))


def _crop(xp, p, sizes):
    """xp (N, C, *S+2p) without its padding."""
    return np.ascontiguousarray(xp[(slice(None), slice(None))
                                   + tuple(slice(q, q + n) for q, n in zip(p, sizes))])


def _max_pool(x, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    xp = _pad(x, tuple((q, q) for q in p), -np.inf)
    y = None
    for tap in np.ndindex(*k):
        v = xp[_tap(tap, out, s)]
        y = v.copy() if y is None else np.maximum(y, v, out=y)   # NaN wins, as in PyTorch
    return _split(y, lead)


def _argmax_flat(x, kernel_size, stride, padding, nd):
    """For each window of x (N, C, *S), the flat index into the padded input of the
    entry max_pool takes, as PyTorch's kernel picks it: the first largest entry in
    row-major order over the window's in-bound entries, a NaN over any number (the
    last NaN), and the first in-bound entry of a window that is all -inf."""
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    xp = _pad(x, tuple((q, q) for q in p), -np.inf)
    n, c = x.shape[:2]
    ones = (1,) * nd
    sizes = xp.shape[2:]
    steps = [math.prod(sizes[i + 1:]) for i in range(nd)]        # a padded row's elements, …
    # PyTorch's scan, tap by tap: each window starts at its first in-bound tap with -inf,
    # and a tap takes over where it is larger (padding, -inf, never is) or NaN.  `at` is
    # the taken tap's offset from the window's first entry, in padded elements.
    at = np.zeros((n, c) + out, dtype=np.intp)
    for i in range(nd):
        if p[i]:
            first = np.maximum(p[i] - np.arange(out[i]) * s[i], 0)
            at += (first * steps[i]).reshape((-1,) + ones[i + 1:])
    best = np.full((n, c) + out, -np.inf)
    take = np.empty((n, c) + out, dtype=bool)
    nan = bool(np.isnan(x).any())
    # every tap's entries as one contiguous block (strided reads are ~15 times slower)
    win = _windows(xp, k, s, ones, out)
    taps = np.ascontiguousarray(np.moveaxis(win, tuple(range(2 + nd, 2 + 2 * nd)),
                                            tuple(range(nd)))).reshape((-1, n, c) + out)
    for v, tap in zip(taps, np.ndindex(*k)):
        np.greater(v, best, out=take)
        if nan:
            take |= np.isnan(v)
            np.copyto(best, v, where=take)
        else:
            np.maximum(best, v, out=best)
        np.copyto(at, sum(t * st for t, st in zip(tap, steps)), where=take)
    start = np.arange(n * c).reshape((n, c) + ones) * math.prod(sizes)
    for i in range(nd):
        start = start + (np.arange(out[i]) * (s[i] * steps[i])).reshape((-1,) + ones[i + 1:])
    at += start
    return at, xp.shape, p


def _max_pool_vjp(x, g, kernel_size, stride, padding, nd):
    """g (one value per window) added at each window's argmax in x: max_pool's VJP."""
    x, lead = _merged(x, nd)
    g, _ = _merged(g, nd)
    flat, padded, p = _argmax_flat(x, kernel_size, stride, padding, nd)
    r = np.bincount(flat.ravel(), weights=g.ravel(), minlength=math.prod(padded))
    return _split(_crop(r.reshape(padded), p, x.shape[2:]), lead)


def _max_pool_jvp(x, t, kernel_size, stride, padding, nd):
    """t at each window's argmax in x: max_pool's JVP, and max_pool_vjp's adjoint."""
    x, lead = _merged(x, nd)
    t, _ = _merged(t, nd)
    flat, padded, p = _argmax_flat(x, kernel_size, stride, padding, nd)
    return _split(_pad(t, tuple((q, q) for q in p)).ravel()[flat], lead)


def _avg_pool(x, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    xp = _pad(x, tuple((q, q) for q in p))
    y = None
    for tap in np.ndindex(*k):
        v = xp[_tap(tap, out, s)]
        y = v.copy() if y is None else np.add(y, v, out=y)
    y /= math.prod(k)                 # PyTorch's count_include_pad=True: padding counts
    return _split(y, lead)


def _avg_pool_vjp(x, g, kernel_size, stride, padding, nd):
    """g / (window size) spread over each window, in x's shape (x gives only its
    shape): avg_pool's VJP."""
    shape = np.shape(x)
    g, lead = _merged(g, nd)
    k, s, p, out = _pool_geometry(shape, kernel_size, stride, padding, nd)
    xp = np.zeros(g.shape[:2] + tuple(n + 2 * q for n, q in zip(shape[-nd:], p)))
    share = g / math.prod(k)
    for tap in np.ndindex(*k):
        xp[_tap(tap, out, s)] += share
    return _crop(xp, p, shape[-nd:]).reshape(shape)


def _pool_shape(name, nd, arg=0):
    """arg 0: the pool of x; 1: its VJP (g shaped like the pool, the result like x);
    2: its JVP (t shaped like x, the result like the pool)."""
    def rule(shs, attrs, span):
        xs = shs[0]
        if not _known(*shs):
            return shs[0] if arg == 1 else shapes.SymShape()
        if len(xs) < nd + 1:
            raise BpShapeError(f"{name} needs an input of shape (N, C, {_dims(nd)}) or "
                               f"(C, {_dims(nd)}), got {shapes.fmt(xs)}", span)
        k, s, p, out = _pool_geometry(xs, attrs["kernel_size"], attrs.get("stride"),
                                      attrs.get("padding", (0,)), nd)
        if len(k) != nd or len(s) != nd or len(p) != nd:
            raise BpValueError(f"{name}: kernel_size, stride and padding are a whole number or "
                               f"{nd} of them", span)
        if any(v < 1 for v in k + s):
            raise BpValueError(f"{name}: kernel_size and stride must be positive", span)
        if any(q < 0 or 2 * q > kk for q, kk in zip(p, k)):
            raise BpValueError(f"{name}: padding must be non-negative and at most half the "
                               f"kernel size (as in PyTorch), got padding {_fmt_axes(p)} for "
                               f"kernel_size {_fmt_axes(k)}", span)
        if any(m < 1 for m in out):
            raise BpShapeError(f"{name}: the window {shapes.fmt(k)} is larger than the padded "
                               f"input {shapes.fmt(tuple(n + 2 * q for n, q in zip(xs[-nd:], p)))}",
                               span)
        full = xs[:-nd] + out
        if arg == 0:
            return full
        want = full if arg == 1 else xs
        if shs[1] != want:
            raise BpShapeError(f"{name}: its second argument has shape {shapes.fmt(shs[1])}, "
                               f"but it should be {shapes.fmt(want)}", span)
        return xs if arg == 1 else full
    return rule


# ── sort ─────────────────────────────────────────────────────────────────

def _perm(x, axis):
    return np.argsort(x, axis=axis, kind="stable")


def _sort(x, axis=-1):
    return np.sort(x, axis=axis, kind="stable")


def _sort_vjp(x, g, axis=-1):
    """g put back where sort took each entry from: the inverse permutation."""
    out = np.empty(np.shape(g))
    np.put_along_axis(out, _perm(x, axis), g, axis)
    return out


def _sort_jvp(x, t, axis=-1):
    """t permuted as sort permutes x."""
    return np.take_along_axis(np.asarray(t, dtype=np.float64), _perm(x, axis), axis)


def _sort_shape(name):
    def rule(shs, attrs, span):
        xs = shs[0]
        if not _known(*shs):
            return xs if len(shs) == 1 or not isinstance(shs[1], tuple) else shs[1]
        if len(xs) == 0:
            raise BpShapeError(f"{name} needs a tensor of rank at least 1, got a scalar", span)
        shapes.normalize_axes((attrs.get("axis", -1),), len(xs), span)
        if len(shs) == 2 and shs[1] != xs:
            raise BpShapeError(f"{name}: x has shape {shapes.fmt(xs)} and its second argument "
                               f"{shapes.fmt(shs[1])}: shapes differ", span)
        return xs
    return rule


def _top_k_indices(x, k, part=1):
    """top_k(x, k)[1]: the positions of the k largest entries along the last axis."""
    return np.argsort(-np.asarray(x), axis=-1, kind="stable")[..., :k].astype(np.float64)


for _fn in (_conv, _conv_input, _conv_weight, _conv_vjp, _max_pool, _max_pool_vjp, _max_pool_jvp,
            _avg_pool, _avg_pool_vjp, _sort, _sort_vjp, _sort_jvp, _top_k_indices):
    _fn.bp_quiet = _fn.bp_fresh = True       # no warnings; a new array, never a view


# ── canonical attributes (so equal calls make one node, and print short) ─

def _canonical_attrs(attrs: dict, nd: int) -> dict:
    out = dict(attrs)
    for key in ("stride", "dilation", "kernel_size"):
        v = out.get(key)
        if v is not None and (isinstance(v, int) or len(v) in (1, nd)):
            out[key] = _canonical(_per_axis(v, nd))
    v = out.get("padding")
    if v is not None and (isinstance(v, int) or len(v) in (1, nd, 2 * nd)):
        out["padding"] = _canonical_padding(_pad_pairs(v, nd))
    return out


def _fold_canonical(name, nd):
    def fold(ins, attrs, shape):
        canon = _canonical_attrs(attrs, nd)
        return apply(name, list(ins), canon) if canon != attrs else None
    return fold


# ── batching rules (dsl/ops/batched.py): the leading axes of x are batch axes ─

def _reshape(x, shape):
    return apply("reshape", [x], {"shape": tuple(shape)})


def _transpose(x, perm):
    return apply("transpose", [x], {"axes": tuple(perm)})


def _batch_conv(nd):
    name = f"conv{nd}d"

    def rule(node, ins, m):
        (x, xb), (w, wb) = ins
        attrs = dict(node.attrs)
        if xb and wb:
            return None                       # quadratic in the seed: not a linear map
        if xb:
            return apply(name, [x, w], attrs)     # the batch axis leads x's batch axes
        # m weights: m·O output channels, ordered (group, m, channel) so that every
        # group's channels stay together; the result's channels are split back out.
        groups, (o, cg, *ksize) = attrs.get("groups", 1), node.inputs[1].shape
        og = o // groups
        w2 = _reshape(_transpose(_reshape(w, (m, groups, og, cg, *ksize)),
                                 (1, 0) + tuple(range(2, 4 + nd))), (groups * m * og, cg, *ksize))
        y = apply(name, [x, w2], attrs)
        lead, out = node.inputs[0].shape[:-nd - 1], node.shape[-nd:]
        nb = len(lead)
        y = _reshape(y, lead + (groups, m, og) + out)
        y = _transpose(y, (nb + 1,) + tuple(range(nb + 1)) + tuple(range(nb + 2, nb + 3 + nd)))
        return _reshape(y, (m,) + node.shape)
    return rule


def _batch_conv_vjp(nd):
    vname = f"conv{nd}d_vjp"

    def rule(node, ins, m):
        (x, xb), (w, wb), (g, gb) = ins
        attrs = dict(node.attrs)
        wrt = attrs.get("wrt", 0)
        x0, w0, g0 = node.inputs
        if wrt == 0:                          # linear in w and g; x gives its shape
            if not (wb or gb):
                return node, False
            if wb and gb or wb:
                return None
            return apply(vname, [const(np.zeros((m,) + x0.shape)), w0, g], attrs)
        if not (xb or gb):                    # wrt=1: linear in x and g; w gives its shape
            return node, False
        if xb and gb:
            return None
        groups, (o, cg, *ksize) = attrs.get("groups", 1), w0.shape
        og = o // groups
        lead, out, sizes = x0.shape[:-nd - 1], g0.shape[-nd:], x0.shape[-nd:]
        nb = len(lead)
        spatial = tuple(range(nb + 3, nb + 3 + nd))
        if gb:                                # m cotangents: m·O output channels
            g2 = _reshape(g, (m,) + lead + (groups, og) + out)
            g2 = _transpose(g2, tuple(range(1, nb + 2)) + (0, nb + 2) + spatial)
            g2 = _reshape(g2, lead + (groups * m * og,) + out)
            x2, attrs2 = x0, attrs
        else:                                 # m inputs: groups·m groups of m·C channels
            x2 = _reshape(x, (m,) + lead + (groups, cg) + sizes)
            x2 = _transpose(x2, tuple(range(1, nb + 2)) + (0, nb + 2) + spatial)
            x2 = _reshape(x2, lead + (groups * m * cg,) + sizes)
            g2 = apply("broadcast_to", [_reshape(g0, lead + (groups, 1, og) + out)],
                       {"shape": lead + (groups, m, og) + out})
            g2 = _reshape(g2, lead + (groups * m * og,) + out)
            attrs2 = {**attrs, "groups": groups * m}
        donor = const(np.zeros((groups * m * og, cg, *ksize)))
        r = apply(vname, [x2, donor, g2], attrs2)          # (G·m·Og, Cg, *K)
        r = _transpose(_reshape(r, (groups, m, og, cg, *ksize)), (1, 0) + tuple(range(2, 4 + nd)))
        return _reshape(r, (m,) + w0.shape)
    return rule


def _batch_positions(node, ins, m):
    """max_pool2d_vjp/_jvp, sort_vjp/_jvp: linear in their second argument, which
    moves to the positions x picks (x itself must not carry the seed)."""
    (x, xb), (g, gb) = ins
    if xb:
        return None
    attrs = dict(node.attrs)
    if "axis" in attrs:
        attrs["axis"] = attrs["axis"] % len(node.shape) + 1
    return apply(node.op, [with_batch(x, False, m), g], attrs)


def _batch_avg_pool_vjp(node, ins, m):
    (x, xb), (g, gb) = ins
    if not gb:
        return node, False
    return apply(node.op, [const(np.zeros((m,) + node.shape)), g], dict(node.attrs))


# ── registration ─────────────────────────────────────────────────────────

_BASICS = ("import math", _per_axis, _pad_pairs, _out_sizes, _pad, _merged, _split)
_CONV_CODE = _BASICS + (_windows, _conv)
_CONV_VJP_CODE = _BASICS + (_windows, _conv_input, _conv_weight, _conv_vjp)
_POOL = _BASICS + (_windows, _pool_geometry, _tap, _crop)


# ── the JAX forms (dsl/codegen.py): convolutions by jax.lax, the pools tap by tap ──
# with the same picks as the kernels above, every write an x.at[…] update

_JAX_CONV = """
def _conv(x, w, stride, padding, dilation, groups, nd):
    x, lead = _merged(x, nd)
    y = jax.lax.conv_general_dilated(
        x, jnp.asarray(w, dtype=jnp.float64), _per_axis(stride, nd), _pad_pairs(padding, nd),
        rhs_dilation=_per_axis(dilation, nd), feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST)
    return _split(y, lead)
"""
_JAX_CONV_VJP = """
def _conv_vjp(x, w, g, wrt, stride, padding, dilation, groups, nd):
    x = jnp.asarray(x, dtype=jnp.float64)
    w = jnp.asarray(w, dtype=jnp.float64)
    _, back = jax.vjp(lambda a, b: _conv(a, b, stride, padding, dilation, groups, nd), x, w)
    return back(jnp.asarray(g, dtype=jnp.float64))[wrt]
"""
_JAX_NDINDEX = """
def _ndindex(*k):
    out = [()]
    for n in k:
        out = [t + (i,) for t in out for i in range(n)]
    return out
"""
_JAX_MAX_POOL = """
def _max_pool(x, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    xp = _pad(x, tuple((q, q) for q in p), -jnp.inf)
    y = None
    for tap in _ndindex(*k):
        v = xp[_tap(tap, out, s)]
        y = v if y is None else jnp.maximum(y, v)
    return _split(y, lead)
"""
_JAX_POOL_PICK = """
def _pool_pick(x, kernel_size, stride, padding, nd):
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    pairs = tuple((q, q) for q in p)
    xp = _pad(x, pairs, -jnp.inf)
    inside = _pad(jnp.ones(x.shape), pairs, 0.0)
    taps = _ndindex(*k)
    at = jnp.zeros(x.shape[:2] + out, dtype=jnp.int64)
    for i in reversed(range(len(taps))):
        at = jnp.where(inside[_tap(taps[i], out, s)] != 0, i, at)
    best = jnp.full(x.shape[:2] + out, -jnp.inf)
    for i, tap in enumerate(taps):
        v = xp[_tap(tap, out, s)]
        take = (v > best) | jnp.isnan(v)
        best = jnp.where(take, v, best)
        at = jnp.where(take, i, at)
    return at, k, s, p, out
"""
_JAX_MAX_POOL_VJP = """
def _max_pool_vjp(x, g, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    g, _ = _merged(g, nd)
    at, k, s, p, out = _pool_pick(x, kernel_size, stride, padding, nd)
    xp = jnp.zeros(x.shape[:2] + tuple(n + 2 * q for n, q in zip(x.shape[2:], p)))
    for i, tap in enumerate(_ndindex(*k)):
        xp = xp.at[_tap(tap, out, s)].add(jnp.where(at == i, g, 0.0))
    return _split(_crop(xp, p, x.shape[2:]), lead)
"""
_JAX_MAX_POOL_JVP = """
def _max_pool_jvp(x, t, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    t, _ = _merged(t, nd)
    at, k, s, p, out = _pool_pick(x, kernel_size, stride, padding, nd)
    tp = _pad(t, tuple((q, q) for q in p))
    y = None
    for i, tap in enumerate(_ndindex(*k)):
        v = tp[_tap(tap, out, s)]
        y = v if y is None else jnp.where(at == i, v, y)
    return _split(y, lead)
"""
_JAX_AVG_POOL = """
def _avg_pool(x, kernel_size, stride, padding, nd):
    x, lead = _merged(x, nd)
    k, s, p, out = _pool_geometry(x.shape, kernel_size, stride, padding, nd)
    xp = _pad(x, tuple((q, q) for q in p))
    y = None
    for tap in _ndindex(*k):
        v = xp[_tap(tap, out, s)]
        y = v if y is None else y + v
    return _split(y / math.prod(k), lead)
"""
_JAX_AVG_POOL_VJP = """
def _avg_pool_vjp(x, g, kernel_size, stride, padding, nd):
    shape = jnp.shape(x)
    g, lead = _merged(g, nd)
    k, s, p, out = _pool_geometry(shape, kernel_size, stride, padding, nd)
    xp = jnp.zeros(g.shape[:2] + tuple(n + 2 * q for n, q in zip(shape[-nd:], p)))
    share = g / math.prod(k)
    for tap in _ndindex(*k):
        xp = xp.at[_tap(tap, out, s)].add(share)
    return _crop(xp, p, shape[-nd:]).reshape(shape)
"""
_JAX_POOL = _BASICS + (_pool_geometry, _tap, _crop, _JAX_NDINDEX)
_JAX_FORMS = {
    "_conv": _BASICS + (_JAX_CONV,),
    "_conv_vjp": _BASICS + (_JAX_CONV, _JAX_CONV_VJP),
    "_max_pool": _JAX_POOL + (_JAX_MAX_POOL,),
    "_max_pool_vjp": _JAX_POOL + (_JAX_POOL_PICK, _JAX_MAX_POOL_VJP),
    "_max_pool_jvp": _JAX_POOL + (_JAX_POOL_PICK, _JAX_MAX_POOL_JVP),
    "_avg_pool": _JAX_POOL + (_JAX_AVG_POOL,),
    "_avg_pool_vjp": _JAX_POOL + (_JAX_AVG_POOL_VJP,),
    "_sort_vjp": ("""
def _sort_vjp(x, g, axis=-1):
    back = jnp.argsort(jnp.argsort(x, axis=axis, stable=True), axis=axis, stable=True)
    return jnp.take_along_axis(jnp.asarray(g, dtype=jnp.float64), back, axis)
""",),
    "_sort_jvp": ("""
def _sort_jvp(x, t, axis=-1):
    perm = jnp.argsort(x, axis=axis, stable=True)
    return jnp.take_along_axis(jnp.asarray(t, dtype=jnp.float64), perm, axis)
""",),
}


def _jax(code: str) -> Jax:
    """The JAX form of an op whose export calls the helper `code` names."""
    return Jax(code, _JAX_FORMS[code.split("(", 1)[0]])


# A static argument that is one number or one per axis: canonically a number where every
# axis has the same value (so the defaults read stride=1, padding=0), else a tuple.
CONV_ATTRS = (Attr("stride", "axes", 1), Attr("padding", "axes", 0),
              Attr("dilation", "axes", 1), Attr("groups", "int", 1))
POOL_ATTRS = (Attr("kernel_size", "axes", required=True), Attr("stride", "axes", None),
              Attr("padding", "axes", 0))


def _register_conv(nd):
    name, vname = f"conv{nd}d", f"conv{nd}d_vjp"
    conv_vjp, conv_jvp, vjp_vjp, vjp_jvp = _conv_rules(nd)
    kernel = functools.partial(_conv, nd=nd)
    register(OpDef(name=name, kernel=kernel, shape=_conv_shape(nd), params=("x", "w"),
                   attrs=CONV_ATTRS, builtin=False, vjp=conv_vjp, jvp=conv_jvp,
                   taylor=_series.multilinear,
                   fold=_fold_canonical(name, nd), batch=_batch_conv(nd),
                   export=f"_conv({{0}}, {{1}}, {{stride}}, {{padding}}, {{dilation}}, {{groups}}, {nd})",
                   helpers=_CONV_CODE,
                   jax=_jax(f"_conv({{0}}, {{1}}, {{stride}}, {{padding}}, {{dilation}}, {{groups}}, {nd})"),
                   doc=f"torch.nn.functional.conv{nd}d(x, w): cross-correlation of x "
                       f"(N, C, {_dims(nd)}) with w (O, C/groups, {_dims(nd, 'k')})"))
    register(OpDef(name=vname, kernel=functools.partial(_conv_vjp, nd=nd),
                   shape=_conv_vjp_shape(nd), params=("x", "w", "g"),
                   attrs=(Attr("wrt", "int", 0),) + CONV_ATTRS, vjp=vjp_vjp, jvp=vjp_jvp,
                   taylor=_series.multilinear,
                   fold=_fold_canonical(vname, nd), batch=_batch_conv_vjp(nd),
                   export=f"_conv_vjp({{0}}, {{1}}, {{2}}, {{wrt}}, {{stride}}, {{padding}}, "
                          f"{{dilation}}, {{groups}}, {nd})",
                   helpers=_CONV_VJP_CODE,
                   jax=_jax(f"_conv_vjp({{0}}, {{1}}, {{2}}, {{wrt}}, {{stride}}, {{padding}}, "
                            f"{{dilation}}, {{groups}}, {nd})"),
                   doc=f"the cotangent of x (wrt=0: a transposed convolution of g with w) or "
                       f"of w (wrt=1: the correlation of x with g) in conv{nd}d(x, w, …) for "
                       f"a cotangent g of its output; the operand it is the cotangent of "
                       f"gives only its shape"))


_register_conv(1)
_register_conv(2)


def _pool_rules(name):
    vjp_name, jvp_name = f"{name}_vjp", f"{name}_jvp"
    if name.startswith("max"):
        return (lambda ct, out, ins, a: (apply(vjp_name, [ins[0], ct], a),),
                lambda ts, out, ins, a: apply(jvp_name, [ins[0], ts[0]], a))
    return (lambda ct, out, ins, a: (apply(vjp_name, [ins[0], ct], a),),
            lambda ts, out, ins, a: apply(name, [ts[0]], a))


def _moved_rules(forth, back):
    """The rules of an op y = M(x)·g that only moves g to positions x picks: linear in
    g, constant in x; its VJP in g is the op `back` (its adjoint)."""
    return (lambda ct, out, ins, a: (None, apply(back, [ins[0], ct], a)),
            lambda ts, out, ins, a: None if ts[1] is None else apply(forth, [ins[0], ts[1]], a))


def _register_pools(nd):
    mx, av = f"max_pool{nd}d", f"avg_pool{nd}d"
    part = functools.partial
    vjp, jvp = _pool_rules(mx)
    register(OpDef(name=mx, kernel=part(_max_pool, nd=nd), shape=_pool_shape(mx, nd),
                   attrs=POOL_ATTRS, vjp=vjp, jvp=jvp, fold=_fold_canonical(mx, nd),
                   batch=on_last_axes, helpers=_POOL + (_max_pool,),
                   export=f"_max_pool({{0}}, {{kernel_size}}, {{stride}}, {{padding}}, {nd})",
                   jax=_jax(f"_max_pool({{0}}, {{kernel_size}}, {{stride}}, {{padding}}, {nd})"),
                   doc=f"the largest entry of each kernel_size window of x (N, C, {_dims(nd)}), "
                       f"windows stride apart (default kernel_size), x padded with -inf"))
    for op_name, kernel, forth, back, what in (
            (f"{mx}_vjp", _max_pool_vjp, f"{mx}_vjp", f"{mx}_jvp",
             f"g (shaped like {mx}(x, …)) added at the argmax of each window of x: "
             f"{mx}'s VJP (ties: the first largest entry in the window, as PyTorch)"),
            (f"{mx}_jvp", _max_pool_jvp, f"{mx}_jvp", f"{mx}_vjp",
             f"t (shaped like x) read at the argmax of each window of x: {mx}'s JVP")):
        v, j = _moved_rules(forth, back)
        register(OpDef(name=op_name, kernel=part(kernel, nd=nd), shape=_pool_shape(op_name, nd, 1 if "vjp" in op_name else 2),
                       params=("x", "g" if "vjp" in op_name else "t"), attrs=POOL_ATTRS,
                       vjp=v, jvp=j, fold=_fold_canonical(op_name, nd), batch=_batch_positions,
                       helpers=_POOL + (_argmax_flat, kernel),
                       export=f"{kernel.__name__}({{0}}, {{1}}, {{kernel_size}}, {{stride}}, "
                              f"{{padding}}, {nd})", doc=what,
                       jax=_jax(f"{kernel.__name__}({{0}}, {{1}}, {{kernel_size}}, {{stride}}, "
                                f"{{padding}}, {nd})")))
    vjp, jvp = _pool_rules(av)
    register(OpDef(name=av, kernel=part(_avg_pool, nd=nd), shape=_pool_shape(av, nd),
                   attrs=POOL_ATTRS, vjp=vjp, jvp=jvp, fold=_fold_canonical(av, nd),
                   batch=on_last_axes, helpers=_POOL + (_avg_pool,),
                   export=f"_avg_pool({{0}}, {{kernel_size}}, {{stride}}, {{padding}}, {nd})",
                   jax=_jax(f"_avg_pool({{0}}, {{kernel_size}}, {{stride}}, {{padding}}, {nd})"),
                   doc=f"the mean of each kernel_size window of x (N, C, {_dims(nd)}), windows "
                       f"stride apart (default kernel_size), zero padding counted"))
    register(OpDef(name=f"{av}_vjp", kernel=part(_avg_pool_vjp, nd=nd),
                   shape=_pool_shape(f"{av}_vjp", nd, 1), params=("x", "g"), attrs=POOL_ATTRS,
                   vjp=lambda ct, out, ins, a: (None, apply(av, [ct], a)),
                   jvp=lambda ts, out, ins, a: None if ts[1] is None else
                   apply(f"{av}_vjp", [ins[0], ts[1]], a),
                   fold=_fold_canonical(f"{av}_vjp", nd), batch=_batch_avg_pool_vjp,
                   helpers=_POOL + (_avg_pool_vjp,),
                   export=f"_avg_pool_vjp({{0}}, {{1}}, {{kernel_size}}, {{stride}}, "
                          f"{{padding}}, {nd})",
                   jax=_jax(f"_avg_pool_vjp({{0}}, {{1}}, {{kernel_size}}, {{stride}}, "
                            f"{{padding}}, {nd})"),
                   doc=f"g / (window size) spread over each window, in x's shape (x gives "
                       f"only its shape): {av}'s VJP"))


_register_pools(2)

SORT_AXIS = (Attr("axis", "int", -1),)
register(OpDef(name="sort", kernel=_sort, shape=_sort_shape("sort"), attrs=SORT_AXIS,
               vjp=lambda ct, out, ins, a: (apply("sort_vjp", [ins[0], ct], a),),
               jvp=lambda ts, out, ins, a: apply("sort_jvp", [ins[0], ts[0]], a),
               batch=along_axis, export="np.sort({0}, axis={axis}, kind='stable')",
               jax="jnp.sort({0}, axis={axis}, stable=True)",
               doc="x sorted ascending along axis= (stable: equal entries keep their order; "
                   "NaN last)"))
for _name, _kernel, _other, _what in (
        ("sort_vjp", _sort_vjp, "sort_jvp",
         "g put back where sort took each entry of x from (the inverse permutation): sort's VJP"),
        ("sort_jvp", _sort_jvp, "sort_vjp", "t permuted as sort permutes x: sort's JVP")):
    _v, _j = _moved_rules(_name, _other)
    register(OpDef(name=_name, kernel=_kernel, shape=_sort_shape(_name),
                   params=("x", "g" if _name == "sort_vjp" else "t"), attrs=SORT_AXIS,
                   vjp=_v, jvp=_j, batch=_batch_positions, helpers=(_perm, _kernel),
                   export=f"{_kernel.__name__}({{0}}, {{1}}, {{axis}})", doc=_what,
                   jax=_jax(f"{_kernel.__name__}({{0}}, {{1}}, {{axis}})")))


# ── the builtins that take optional tensors or strings: macros ───────────

_REQUIRED = object()


def _take(name: str, spec, args, kwargs, span) -> dict:
    """PyTorch-style arguments, by position or keyword: spec is ((name, default), …)."""
    args, kwargs = list(args), dict(kwargs)
    sig = _signature(name, spec)
    if len(args) > len(spec):
        raise BpTypeError(f"{sig} takes {len(spec)} arguments, got {len(args)}", span)
    got = {}
    for (key, default), value in zip(spec, args):
        if key in kwargs:
            raise BpTypeError(f"{name} got two values for '{key}'", span)
        got[key] = value
    for key, default in spec[len(args):]:
        if key in kwargs:
            got[key] = kwargs.pop(key)
        elif default is _REQUIRED:
            raise BpTypeError(f"{sig} is missing its argument '{key}'", span)
        else:
            got[key] = const(float(default)) if isinstance(default, (int, float)) else default
    if kwargs:
        raise BpTypeError(f"{name} has no argument '{next(iter(kwargs))}'; its signature is {sig}",
                          span)
    return got


def _signature(name, spec) -> str:
    parts = [key if default is _REQUIRED else f"{key}={_show_default(default)}"
             for key, default in spec]
    return f"{name}({', '.join(parts)})"


def _show_default(v) -> str:
    return "None" if v is None else str(v)


def _tensor(lv, what, span) -> Node:
    if not isinstance(lv, Node):
        raise BpTypeError(f"{what} must be a tensor, got {describe(lv)}", span)
    return lv


def _ints(lv, what, span, allowed: tuple[int, ...]) -> tuple[int, ...]:
    """A whole number or a tuple of them, of one of the allowed lengths."""
    from . import static_ints
    vals = static_ints(lv, what, span)
    if len(vals) not in allowed:
        counts = " or ".join(str(n) for n in sorted(set(allowed)))
        raise BpValueError(f"{what} must be a whole number or a tuple of {counts}, "
                           f"got {len(vals)}", span)
    return vals


def _conv_macro(nd):
    name = f"conv{nd}d"
    spec = (("x", _REQUIRED), ("w", _REQUIRED), ("bias", None), ("stride", 1), ("padding", 0),
            ("dilation", 1), ("groups", 1))

    def build(ctx, args, kwargs, span):
        a = _take(name, spec, args, kwargs, span)
        x, w = _tensor(a["x"], f"{name}'s input", span), _tensor(a["w"], f"{name}'s weights", span)
        stride = _per_axis(_ints(a["stride"], f"{name}: stride", span, (1, nd)), nd)
        dilation = _per_axis(_ints(a["dilation"], f"{name}: dilation", span, (1, nd)), nd)
        groups = static_int(a["groups"], f"{name}: groups", span)
        pad = a["padding"]
        if isinstance(pad, str):
            if pad == "valid":
                pairs = ((0, 0),) * nd
            elif pad == "same":
                if any(s != 1 for s in stride):
                    raise BpValueError(f"{name}: padding='same' needs stride 1 (as in PyTorch)",
                                       span)
                if not isinstance(w.shape, tuple):
                    raise BpValueError(f"{name}: padding='same' needs the weights' shape", span)
                total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
                pairs = tuple((t // 2, t - t // 2) for t in total)   # PyTorch: the extra one last
            else:
                raise BpValueError(f"{name}: padding is a number, a tuple, 'same' or 'valid', "
                                   f"not {pad!r}", span)
        else:
            pairs = _pad_pairs(_ints(pad, f"{name}: padding", span, (1, nd, 2 * nd)), nd)
        attrs = {"stride": _canonical(stride), "padding": _canonical_padding(pairs),
                 "dilation": _canonical(dilation), "groups": groups}
        y = apply(name, [x, w], attrs, span)
        if a["bias"] is None:
            return y
        b = _tensor(a["bias"], f"{name}'s bias", span)
        if isinstance(b.shape, tuple) and isinstance(w.shape, tuple) and b.shape != w.shape[:1]:
            raise BpShapeError(f"{name}: the bias has shape {shapes.fmt(b.shape)}, but the "
                               f"weights {shapes.fmt(w.shape)} make {w.shape[0]} channels", span)
        b = apply("expand_dims", [b], {"axis": tuple(range(1, nd + 1))}, span)
        return apply("add", [y, b], span=span)

    register_macro(Macro(name, build, _signature(name, spec),
                         f"torch.nn.functional.{name}: x (N, C, {_dims(nd)}) or (C, {_dims(nd)}) "
                         f"correlated with w (O, C/groups, {_dims(nd, 'k')}), plus bias (O,)"))


_conv_macro(1)
_conv_macro(2)


def _float(lv, what, span) -> float:
    v = static_value(lv, what, span)
    if v.ndim != 0:
        raise BpValueError(f"{what} must be a single number", span)
    return float(v)


def _axes_arg(lv, what, span):
    from . import static_ints
    return static_ints(lv, what, span)


_LN_SPEC = (("x", _REQUIRED), ("axis", -1), ("eps", 1e-5), ("weight", None), ("bias", None))


def _affine(y, weight, bias, name, span):
    if weight is not None:
        y = apply("mul", [y, _tensor(weight, f"{name}'s weight", span)], span=span)
    if bias is not None:
        y = apply("add", [y, _tensor(bias, f"{name}'s bias", span)], span=span)
    return y


def _layer_norm(ctx, args, kwargs, span):
    a = _take("layer_norm", _LN_SPEC, args, kwargs, span)
    x = _tensor(a["x"], "layer_norm's input", span)
    axis = _axes_arg(a["axis"], "layer_norm: axis", span)
    eps = _float(a["eps"], "layer_norm: eps", span)
    keep = {"axis": axis, "keepdims": True}
    xc = apply("sub", [x, apply("mean", [x], keep, span)], span=span)
    var = apply("mean", [apply("mul", [xc, xc], span=span)], keep, span)
    y = apply("div", [xc, apply("sqrt", [apply("add", [var, const(eps)], span=span)], span=span)],
              span=span)
    return _affine(y, a["weight"], a["bias"], "layer_norm", span)


register_macro(Macro("layer_norm", _layer_norm, _signature("layer_norm", _LN_SPEC),
                     "(x - mean) / sqrt(var + eps) over axis= (biased variance, as "
                     "torch.nn.functional.layer_norm), times weight, plus bias"))

_BN_SPEC = (("x", _REQUIRED), ("running_mean", _REQUIRED), ("running_var", _REQUIRED),
            ("weight", None), ("bias", None), ("training", 0), ("momentum", 0.1), ("eps", 1e-5))


def _batch_norm(ctx, args, kwargs, span):
    a = _take("batch_norm", _BN_SPEC, args, kwargs, span)
    x = _tensor(a["x"], "batch_norm's input", span)
    if static_int(a["training"], "batch_norm: training", span):
        raise BpValueError("batch_norm is the inference form (training=0): it normalises with "
                           "the running statistics given", span)
    _float(a["momentum"], "batch_norm: momentum", span)        # used only in training
    eps = _float(a["eps"], "batch_norm: eps", span)
    if not isinstance(x.shape, tuple):
        raise BpValueError("batch_norm needs the rank of its input: give the parameter a shape "
                           "annotation", span)
    if len(x.shape) < 2:
        raise BpShapeError(f"batch_norm needs an input (N, C, …) of rank at least 2, got "
                           f"{shapes.fmt(x.shape)}", span)
    c = x.shape[1]
    spread = {"axis": tuple(range(1, len(x.shape) - 1))} if len(x.shape) > 2 else None

    def per_channel(lv, what):
        if lv is None:
            return None
        t = _tensor(lv, f"batch_norm's {what}", span)
        if isinstance(t.shape, tuple) and t.shape != (c,):
            raise BpShapeError(f"batch_norm: {what} has shape {shapes.fmt(t.shape)}, but the "
                               f"input {shapes.fmt(x.shape)} has {c} channels", span)
        return apply("expand_dims", [t], spread, span) if spread else t

    mean, var = per_channel(a["running_mean"], "running_mean"), per_channel(a["running_var"],
                                                                            "running_var")
    y = apply("div", [apply("sub", [x, mean], span=span),
                      apply("sqrt", [apply("add", [var, const(eps)], span=span)], span=span)],
              span=span)
    return _affine(y, per_channel(a["weight"], "weight"), per_channel(a["bias"], "bias"),
                   "batch_norm", span)


register_macro(Macro("batch_norm", _batch_norm, _signature("batch_norm", _BN_SPEC),
                     "(x - running_mean) / sqrt(running_var + eps) · weight + bias per channel "
                     "(axis 1): torch.nn.functional.batch_norm's inference form"))

_DROPOUT_SPEC = (("x", _REQUIRED), ("p", 0.5), ("training", 1), ("seed", None))


def _dropout(ctx, args, kwargs, span):
    a = _take("dropout", _DROPOUT_SPEC, args, kwargs, span)
    x = _tensor(a["x"], "dropout's input", span)
    p = _float(a["p"], "dropout: p", span)
    if not 0.0 <= p <= 1.0:
        raise BpValueError(f"dropout probability has to be between 0 and 1, but got {p:g}", span)
    if not static_int(a["training"], "dropout: training", span) or p == 0.0:
        return x
    if not isinstance(x.shape, tuple):
        raise BpValueError("dropout needs the shape of its input: give the parameter a shape "
                           "annotation", span)
    if p == 1.0:
        return apply("mul", [x, const(np.zeros(x.shape))], span=span)
    seed = ctx.next_seed() if a["seed"] is None else static_int(a["seed"], "dropout: seed", span)
    u = apply("rand", [], {"shape": x.shape, "seed": seed}, span)
    keep = apply("greater_equal", [u, const(p)], span=span)
    return apply("mul", [x, apply("div", [keep, const(1.0 - p)], span=span)], span=span)


register_macro(Macro("dropout", _dropout, _signature("dropout", _DROPOUT_SPEC),
                     "x · mask / (1 - p): each entry kept with probability 1 - p (mask from "
                     "rand(shape(x), seed=) >= p), zero otherwise; the identity when training=0",
                     ))


def _top_k(ctx, args, kwargs, span):
    a = _take("top_k", (("x", _REQUIRED), ("k", _REQUIRED)), args, kwargs, span)
    x = _tensor(a["x"], "top_k's input", span)
    k = static_int(a["k"], "top_k: k", span)
    if not isinstance(x.shape, tuple):
        raise BpValueError("top_k needs the shape of its input: give the parameter a shape "
                           "annotation", span)
    if not x.shape:
        raise BpShapeError("top_k needs a tensor of rank at least 1, got a scalar", span)
    if not 0 <= k <= x.shape[-1]:
        raise BpValueError(f"top_k: k must be from 0 to the size of the last axis "
                           f"({x.shape[-1]}), got {k}", span)
    ordered = apply("neg", [apply("sort", [apply("neg", [x], span=span)], {"axis": -1}, span)],
                    span=span)
    every = (("s", None, None, None),) * (len(x.shape) - 1)
    values = apply("index", [ordered], {"items": every + (("s", 0, k, None),)}, span)
    return values, apply("top_k_indices", [x], {"k": k, "part": 1}, span)


register(OpDef(name="top_k_indices", kernel=_top_k_indices, shape=lambda shs, a, span:
               shs[0][:-1] + (a["k"],) if isinstance(shs[0], tuple) else shapes.SymShape(),
               attrs=(Attr("k", "int", required=True), Attr("part", "int", 1)),
               fmt=CallForm("top_k", index="part"), differentiable=False, builtin=False,
               batch="not differentiable: no derivative carries a seed into it",
               export="_top_k_indices({0}, {k})", helpers=(_top_k_indices,),
               jax="jnp.argsort(-jnp.asarray({0}), axis=-1, stable=True)[..., :{k}].astype(jnp.float64)",
               doc="the positions of the k largest entries along the last axis, largest first "
                   "(equal entries: the lower position first): top_k(x, k)[1]"))
register_macro(Macro("top_k", _top_k, "top_k(x, k)",
                     "(values, indices) of the k largest entries along the last axis, largest "
                     "first, equal entries lower position first (jax.lax.top_k)"))
