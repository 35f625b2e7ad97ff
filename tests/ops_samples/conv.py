"""Samples for dsl/ops/conv.py: convolutions, pools, sort, top_k, and the macros
conv1d/conv2d (with bias and padding="same"), layer_norm, batch_norm, dropout, top_k.

The references are written here as plain loops over output positions, straight
from torch.nn.functional's definitions (docs: conv2d, max_pool2d, avg_pool2d,
layer_norm, batch_norm, dropout; jax.lax.top_k), sharing nothing with the
kernels: no strided views, no im2col.  tests/test_conv.py checks the same
kernels against PyTorch where it is installed.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import _grad as g
from ._forward import Spec, U, s


# ── loop references ──────────────────────────────────────────────────────

def _axes(t, nd):
    t = tuple(t)
    return t * nd if len(t) == 1 else t


def _pads(p, nd):
    p = tuple(p)
    if len(p) == 1:
        return [(p[0], p[0])] * nd
    if len(p) == nd:
        return [(q, q) for q in p]
    return [(p[2 * i], p[2 * i + 1]) for i in range(nd)]


def _geometry(xshape, wshape, stride, padding, dilation, nd):
    st, di, pads = _axes(stride, nd), _axes(dilation, nd), _pads(padding, nd)
    sizes, ks = xshape[-nd:], wshape[2:]
    out = [(n + lo + hi - d * (k - 1) - 1) // s_ + 1
           for n, k, s_, (lo, hi), d in zip(sizes, ks, st, pads, di)]
    return st, di, pads, out


def _taps(o, tap, st, di, pads):
    """The input position window position o reads at tap `tap` (may be in the padding)."""
    return tuple(oi * s_ - lo + t * d for oi, t, s_, (lo, _), d in zip(o, tap, st, pads, di))


def _inside(pos, sizes):
    return all(0 <= p < n for p, n in zip(pos, sizes))


def ref_conv(nd):
    """out[n, o, *i] = Σ_{c in o's group, *k} x[n, c, *(i·s - pad + k·d)] · w[o, c - start, *k]."""
    def ref(x, w, stride, padding, dilation, groups):
        lead = x.shape[:-nd - 1]
        xs = x.reshape((-1,) + x.shape[-nd - 1:])
        st, di, pads, out = _geometry(x.shape, w.shape, stride, padding, dilation, nd)
        o_n, cg = w.shape[0], w.shape[1]
        og = o_n // groups
        y = np.zeros((xs.shape[0], o_n) + tuple(out))
        for n in range(xs.shape[0]):
            for o in range(o_n):
                grp = o // og
                for pos in itertools.product(*map(range, out)):
                    total = 0.0
                    for c in range(cg):
                        for tap in itertools.product(*map(range, w.shape[2:])):
                            at = _taps(pos, tap, st, di, pads)
                            if _inside(at, x.shape[-nd:]):
                                total += xs[(n, grp * cg + c) + at] * w[(o, c) + tap]
                    y[(n, o) + pos] = total
        return y.reshape(lead + y.shape[1:])
    return ref


def ref_conv_vjp(nd):
    """The two partial gradients of Σ g · conv(x, w), accumulated entry by entry."""
    def ref(x, w, gr, wrt, stride, padding, dilation, groups):
        xs = x.reshape((-1,) + x.shape[-nd - 1:])
        gs = gr.reshape((-1,) + gr.shape[-nd - 1:])
        st, di, pads, out = _geometry(x.shape, w.shape, stride, padding, dilation, nd)
        o_n, cg = w.shape[0], w.shape[1]
        og = o_n // groups
        gx, gw = np.zeros(xs.shape), np.zeros(w.shape)
        for n in range(xs.shape[0]):
            for o in range(o_n):
                grp = o // og
                for pos in itertools.product(*map(range, out)):
                    for c in range(cg):
                        for tap in itertools.product(*map(range, w.shape[2:])):
                            at = _taps(pos, tap, st, di, pads)
                            if _inside(at, x.shape[-nd:]):
                                gx[(n, grp * cg + c) + at] += w[(o, c) + tap] * gs[(n, o) + pos]
                                gw[(o, c) + tap] += xs[(n, grp * cg + c) + at] * gs[(n, o) + pos]
        return gx.reshape(x.shape) if wrt == 0 else gw
    return ref


def _pool_windows(x, kernel_size, stride, padding):
    """For each (n, c, i, j): the list of in-bound input positions of its window, in
    row-major order."""
    k = _axes(kernel_size, 2)
    st = k if stride is None else _axes(stride, 2)
    p = _axes(padding, 2)
    h, w = x.shape[-2:]
    out = [(h + 2 * p[0] - k[0]) // st[0] + 1, (w + 2 * p[1] - k[1]) // st[1] + 1]
    wins = {}
    for i, j in itertools.product(range(out[0]), range(out[1])):
        wins[i, j] = [(i * st[0] - p[0] + a, j * st[1] - p[1] + b)
                      for a in range(k[0]) for b in range(k[1])]
    return wins, out, k


def _argmax(vals):
    """PyTorch's pick: the first largest, a NaN over anything (the last NaN)."""
    best, at = -np.inf, 0
    for i, v in enumerate(vals):
        if v > best or np.isnan(v):
            best, at = v, i
    return at


def _flat(x):
    return x.reshape((-1,) + x.shape[-2:])


def ref_max_pool(x, kernel_size, stride, padding):
    wins, out, _ = _pool_windows(x, kernel_size, stride, padding)
    xs = _flat(x)
    y = np.zeros((xs.shape[0],) + tuple(out))
    for n in range(xs.shape[0]):
        for (i, j), pos in wins.items():
            inb = [q for q in pos if _inside(q, x.shape[-2:])]
            y[n, i, j] = xs[n][inb[_argmax([xs[n][q] for q in inb])]]
    return y.reshape(x.shape[:-2] + tuple(out))


def ref_max_pool_vjp(x, gr, kernel_size, stride, padding):
    wins, out, _ = _pool_windows(x, kernel_size, stride, padding)
    xs, gs = _flat(x), _flat(gr)
    r = np.zeros(xs.shape)
    for n in range(xs.shape[0]):
        for (i, j), pos in wins.items():
            inb = [q for q in pos if _inside(q, x.shape[-2:])]
            r[n][inb[_argmax([xs[n][q] for q in inb])]] += gs[n, i, j]
    return r.reshape(x.shape)


def ref_max_pool_jvp(x, t, kernel_size, stride, padding):
    wins, out, _ = _pool_windows(x, kernel_size, stride, padding)
    xs, ts = _flat(x), _flat(t)
    y = np.zeros((xs.shape[0],) + tuple(out))
    for n in range(xs.shape[0]):
        for (i, j), pos in wins.items():
            inb = [q for q in pos if _inside(q, x.shape[-2:])]
            y[n, i, j] = ts[n][inb[_argmax([xs[n][q] for q in inb])]]
    return y.reshape(x.shape[:-2] + tuple(out))


def ref_avg_pool(x, kernel_size, stride, padding):
    wins, out, k = _pool_windows(x, kernel_size, stride, padding)
    xs = _flat(x)
    y = np.zeros((xs.shape[0],) + tuple(out))
    for n in range(xs.shape[0]):
        for (i, j), pos in wins.items():
            y[n, i, j] = sum(xs[n][q] for q in pos if _inside(q, x.shape[-2:])) / (k[0] * k[1])
    return y.reshape(x.shape[:-2] + tuple(out))


def ref_avg_pool_vjp(x, gr, kernel_size, stride, padding):
    wins, out, k = _pool_windows(x, kernel_size, stride, padding)
    gs = _flat(gr)
    r = np.zeros(_flat(x).shape)
    for n in range(r.shape[0]):
        for (i, j), pos in wins.items():
            for q in pos:
                if _inside(q, x.shape[-2:]):
                    r[n][q] += gs[n, i, j] / (k[0] * k[1])
    return r.reshape(x.shape)


def _lines(x, axis):
    """Each 1-d line of x along axis, as (index tuple, values)."""
    moved = np.moveaxis(x, axis, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        yield idx, moved[idx]


def _stable_order(vals):
    """Positions in ascending order of value, NaN last, ties in order (a stable sort)."""
    return sorted(range(len(vals)), key=lambda i: (bool(np.isnan(vals[i])),
                                                   0.0 if np.isnan(vals[i]) else vals[i]))


def ref_sort(x, axis):
    out = np.moveaxis(np.array(x, dtype=np.float64), axis, -1).copy()
    for idx, vals in _lines(x, axis):
        out[idx] = [vals[i] for i in _stable_order(list(vals))]
    return np.moveaxis(out, -1, axis)


def ref_sort_vjp(x, gr, axis):
    out = np.zeros(np.moveaxis(x, axis, -1).shape)
    gm = np.moveaxis(gr, axis, -1)
    for idx, vals in _lines(x, axis):
        for rank, i in enumerate(_stable_order(list(vals))):
            out[idx + (i,)] = gm[idx + (rank,)]
    return np.moveaxis(out, -1, axis)


def ref_sort_jvp(x, t, axis):
    out = np.zeros(np.moveaxis(x, axis, -1).shape)
    tm = np.moveaxis(t, axis, -1)
    for idx, vals in _lines(x, axis):
        for rank, i in enumerate(_stable_order(list(vals))):
            out[idx + (rank,)] = tm[idx + (i,)]
    return np.moveaxis(out, -1, axis)


def ref_top_k_indices(x, k):
    out = np.zeros(x.shape[:-1] + (k,))
    for idx in np.ndindex(x.shape[:-1]):
        vals = list(x[idx])
        order = sorted(range(len(vals)), key=lambda i: (-vals[i], i))
        out[idx] = order[:k]
    return out


# ── samples ──────────────────────────────────────────────────────────────

def C(stride=(1,), padding=(0,), dilation=(1,), groups=1):
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def P_(kernel_size, stride=None, padding=(0,)):
    return dict(kernel_size=kernel_size, stride=stride, padding=padding)


CONV2D = [  # (x shape, w shape, attrs, label)
    ((2, 3, 5, 4), (4, 3, 3, 2), C(), "plain"),
    ((2, 4, 6, 5), (6, 2, 3, 3), C((2,), (1,), (1,), 2), "stride-pad-groups"),
    ((1, 2, 7, 6), (3, 2, 2, 3), C((1, 2), (1, 0), (2, 1), 1), "per-axis"),
    ((2, 7, 6), (2, 2, 3, 3), C((1,), (0, 1, 1, 2), (1,), 1), "unbatched-asymmetric-pad"),
    ((2, 1, 2, 5, 5), (2, 2, 2, 2), C((2,), (1,), (2,), 1), "two-batch-axes"),
    ((1, 4, 4, 4), (4, 1, 3, 3), C((1,), (1,), (1,), 4), "depthwise"),
]
CONV1D = [
    ((2, 3, 7), (4, 3, 3), C(), "plain"),
    ((2, 4, 9), (2, 2, 2), C((2,), (1,), (2,), 2), "stride-dilation-groups"),
    ((3, 6), (2, 3, 3), C((1,), (0, 2), (1,), 1), "unbatched-asymmetric-pad"),
]


def _out_shape(xs, ws, attrs, nd):
    st, di, pads, out = _geometry(xs, ws, attrs["stride"], attrs["padding"], attrs["dilation"], nd)
    return xs[:-nd - 1] + (ws[0],) + tuple(out)


def _conv_forward(table, nd):
    return Spec([s(U(*xs), U(*ws), **a, label=lab) for xs, ws, a, lab in table], ref=ref_conv(nd))


def _conv_vjp_forward(table, nd):
    return Spec([s(U(*xs), U(*ws), U(*_out_shape(xs, ws, a, nd)), wrt=wrt, **a, label=f"{lab}-{wrt}")
                 for xs, ws, a, lab in table for wrt in (0, 1)],
                ref=ref_conv_vjp(nd))


POOLS = [  # (x shape, attrs, label)
    ((2, 3, 6, 6), P_((2,)), "2x2"),
    ((2, 2, 7, 6), P_((3,), (2,), (1,)), "3x3-stride2-pad1"),
    ((3, 5, 7), P_((2, 3), (1, 2), (1, 1)), "unbatched-rect"),
    ((2, 1, 1, 4, 4), P_((3,), (1,), (1,)), "overlapping-two-batch-axes"),
]


def _pool_out(xs, a):
    k = _axes(a["kernel_size"], 2)
    st = k if a["stride"] is None else _axes(a["stride"], 2)
    p = _axes(a["padding"], 2)
    return xs[:-2] + tuple((n + 2 * q - kk) // ss + 1 for n, kk, ss, q in zip(xs[-2:], k, st, p))


def _ties(*shape):
    """Small whole numbers: many equal entries in a window (the tie rule)."""
    return np.random.default_rng(7).integers(0, 3, shape).astype(np.float64)


_NAN_X = np.array([[[1.0, np.nan, 2.0, np.nan], [0.0, 3.0, -np.inf, -np.inf],
                    [-np.inf, -np.inf, 5.0, 4.0], [-np.inf, -np.inf, 1.0, 1.0]]])

FORWARD = {
    "conv2d": _conv_forward(CONV2D, 2),
    "conv1d": _conv_forward(CONV1D, 1),
    "conv2d_vjp": _conv_vjp_forward(CONV2D, 2),
    "conv1d_vjp": _conv_vjp_forward(CONV1D, 1),
    "max_pool2d": Spec([s(U(*xs), **a, label=lab) for xs, a, lab in POOLS]
                       + [s(_ties(2, 2, 5, 5), **P_((3,), (1,), (1,)), label="ties"),
                          s(_NAN_X, **P_((2,), (2,), (1,)), label="nan-and-minus-inf")],
                       ref=ref_max_pool),
    "max_pool2d_vjp": Spec([s(U(*xs), U(*_pool_out(xs, a)), **a, label=lab) for xs, a, lab in POOLS]
                           + [s(_ties(2, 2, 5, 5), U(2, 2, 5, 5), **P_((3,), (1,), (1,)),
                                label="ties"),
                              s(_NAN_X, U(1, 3, 3), **P_((2,), (2,), (1,)),
                                label="nan-and-minus-inf")],
                           ref=ref_max_pool_vjp),
    "max_pool2d_jvp": Spec([s(U(*xs), U(*xs), **a, label=lab) for xs, a, lab in POOLS]
                           + [s(_ties(2, 2, 5, 5), U(2, 2, 5, 5), **P_((3,), (1,), (1,)),
                                label="ties")],
                           ref=ref_max_pool_jvp),
    "avg_pool2d": Spec([s(U(*xs), **a, label=lab) for xs, a, lab in POOLS], ref=ref_avg_pool),
    "avg_pool2d_vjp": Spec([s(U(*xs), U(*_pool_out(xs, a)), **a, label=lab)
                            for xs, a, lab in POOLS], ref=ref_avg_pool_vjp),
    "sort": Spec([s(U(5), axis=-1, label="vector"), s(U(3, 4), axis=0, label="axis0"),
                  s(_ties(2, 3, 6), axis=-1, label="ties"),
                  s([3.0, np.nan, -np.inf, 1.0, np.inf], axis=0, label="nan-inf")], ref=ref_sort,
                 symbolic="same"),
    "sort_vjp": Spec([s(U(5), U(5), axis=-1, label="vector"), s(U(3, 4), U(3, 4), axis=0, label="axis0"),
                      s(_ties(2, 3, 6), U(2, 3, 6), axis=-1, label="ties")], ref=ref_sort_vjp),
    "sort_jvp": Spec([s(U(5), U(5), axis=-1, label="vector"), s(U(3, 4), U(3, 4), axis=0, label="axis0"),
                      s(_ties(2, 3, 6), U(2, 3, 6), axis=-1, label="ties")], ref=ref_sort_jvp),
    "top_k_indices": Spec([s(U(6), k=3, part=1, label="vector"),
                           s(_ties(3, 5), k=2, part=1, label="ties"),
                           s(U(2, 4), k=0, part=1, label="none"), s(U(2, 4), k=4, part=1, label="all")],
                          ref=lambda x, k, part: ref_top_k_indices(x, k)),
}

# Derivatives: small shapes (the finite differences and the batched Jacobian run each).
GRAD_CONV2D = [((1, 2, 4, 3), (2, 2, 2, 2), C(), "plain"),
               ((2, 2, 5, 4), (2, 1, 3, 2), C((2,), (1, 0), (1, 2), 2), "stride-pad-dil-groups"),
               ((2, 4, 4), (3, 2, 2, 2), C((1,), (0, 1, 1, 0), (1,), 1), "unbatched-asymmetric")]
GRAD_CONV1D = [((2, 2, 6), (3, 2, 3), C((2,), (1,), (1,), 1), "stride-pad"),
               ((2, 4, 5), (2, 2, 2), C((1,), (0,), (2,), 2), "dil-groups")]


def _conv_grad(table):
    return [g.S(g.U(*xs), g.U(*ws), **a, label=lab) for xs, ws, a, lab in table]


def _conv_vjp_grad(table, nd):
    return [g.S(g.U(*xs), g.U(*ws), g.U(*_out_shape(xs, ws, a, nd)), wrt=wrt, **a,
                label=f"{lab}-{wrt}") for xs, ws, a, lab in table for wrt in (0, 1)]


GRAD_POOLS = [((1, 2, 4, 4), P_((2,)), "2x2"),
              ((2, 5, 4), P_((3,), (2,), (1,)), "unbatched-3x3-stride2-pad1"),
              ((1, 1, 4, 5), P_((2, 3), (1,), (1,)), "overlapping-rect")]

GRAD = {
    "conv2d": _conv_grad(GRAD_CONV2D),
    "conv1d": _conv_grad(GRAD_CONV1D),
    "conv2d_vjp": _conv_vjp_grad(GRAD_CONV2D, 2),
    "conv1d_vjp": _conv_vjp_grad(GRAD_CONV1D, 1),
    # distinct entries: no ties, so max_pool is smooth at the sample point
    "max_pool2d": [g.S(g.Distinct(*xs), **a, label=lab) for xs, a, lab in GRAD_POOLS],
    "max_pool2d_vjp": [g.S(g.Distinct(*xs), g.U(*_pool_out(xs, a)), **a, label=lab)
                       for xs, a, lab in GRAD_POOLS],
    "max_pool2d_jvp": [g.S(g.Distinct(*xs), g.U(*xs), **a, label=lab) for xs, a, lab in GRAD_POOLS],
    "avg_pool2d": [g.S(g.U(*xs), **a, label=lab) for xs, a, lab in GRAD_POOLS],
    "avg_pool2d_vjp": [g.S(g.U(*xs), g.U(*_pool_out(xs, a)), **a, label=lab)
                       for xs, a, lab in GRAD_POOLS],
    "sort": [g.S(g.Distinct(5), axis=-1, label="vector"), g.S(g.Distinct(3, 4), axis=0, label="axis0")],
    "sort_vjp": [g.S(g.Distinct(5), g.U(5), axis=-1, label="vector"),
                 g.S(g.Distinct(3, 4), g.U(3, 4), axis=0, label="axis0")],
    "sort_jvp": [g.S(g.Distinct(5), g.U(5), axis=-1, label="vector"),
                 g.S(g.Distinct(3, 4), g.U(3, 4), axis=0, label="axis0")],
}

NONDIFF = {
    "top_k_indices": ((g.In(lambda r: r.uniform(-2, 2, (2, 5))),), {"k": 2, "part": 1}),
}

SHAPE_ERRORS = [
    ("conv2d", [(2, 3, 5, 5), (4, 2, 3, 3)], C(), "channels"),
    ("conv2d", [(5, 5), (4, 1, 3, 3)], C(), "needs an input"),
    ("conv2d", [(1, 3, 5, 5), (4, 3, 3)], C(), "weights"),
    ("conv2d", [(1, 3, 2, 2), (4, 3, 3, 3)], C(), "larger than the padded input"),
    ("conv2d", [(1, 4, 5, 5), (3, 2, 3, 3)], C(groups=2), "groups"),
    ("conv1d_vjp", [(1, 3, 5), (4, 3, 3), (1, 4, 4)], dict(wrt=0, **C()), "g has shape"),
    ("max_pool2d", [(1, 1, 2, 2)], P_((3,)), "larger than the padded"),
    ("max_pool2d", [(4, 4)], P_((2,)), "needs an input"),
    ("avg_pool2d_vjp", [(1, 1, 4, 4), (1, 1, 3, 3)], P_((2,)), "should be"),
    ("sort", [()], dict(axis=-1), "rank"),
    ("sort_vjp", [(3,), (4,)], dict(axis=-1), "differ"),
]


# ── the macros, through bp source ────────────────────────────────────────

_X = U(2, 3, 6, 5)
_W = U(4, 3, 3, 2)
_B = U(4)
_X1, _W1 = U(2, 2, 7), U(3, 2, 4)
_Y = U(3, 4, 5)
_BX = U(2, 3, 4)


def _with_bias(y, b, nd):
    return y + b.reshape((-1,) + (1,) * nd)


def _same_pads(w, dilation, nd):
    total = [d * (k - 1) for d, k in zip(_axes(dilation, nd), w.shape[2:])]
    return tuple(v for t in total for v in (t // 2, t - t // 2))   # the odd one after (PyTorch)


def _layer_norm(x, axes, eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def _dropout(x, p, seed):
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return np.where(keep, x / (1 - p), 0.0)


def _top_k(x, k):
    idx = ref_top_k_indices(x, k)
    return np.array([np.take_along_axis(x, idx.astype(int), -1), idx])


MACROS = [
    ("conv2d", "conv2d(X, W)", dict(X=_X, W=_W), ref_conv(2)(_X, _W, **C())),
    ("conv2d", "conv2d(X, W, b, 2, 1)", dict(X=_X, W=_W, b=_B),
     _with_bias(ref_conv(2)(_X, _W, **C((2,), (1,))), _B, 2)),
    ("conv2d", "conv2d(X, W, bias=b, padding=(1, 2), dilation=(2, 1))", dict(X=_X, W=_W, b=_B),
     _with_bias(ref_conv(2)(_X, _W, **C(padding=(1, 2), dilation=(2, 1))), _B, 2)),
    ("conv2d", 'conv2d(X, W, padding="same")', dict(X=_X, W=_W),
     ref_conv(2)(_X, _W, **C(padding=_same_pads(_W, (1,), 2)))),
    ("conv2d", 'conv2d(X, W, padding="valid", stride=(1, 2))', dict(X=_X, W=_W),
     ref_conv(2)(_X, _W, **C(stride=(1, 2)))),
    ("conv2d", "conv2d(X[0], W, b)", dict(X=_X, W=_W, b=_B),
     _with_bias(ref_conv(2)(_X[0], _W, **C()), _B, 2)),
    ("conv1d", "conv1d(X, W, b, padding=1, groups=1)", dict(X=_X1, W=_W1, b=_B[:3]),
     _with_bias(ref_conv(1)(_X1, _W1, **C(padding=(1,))), _B[:3], 1)),
    ("conv1d", 'conv1d(X, W, padding="same", dilation=3)', dict(X=_X1, W=_W1),
     ref_conv(1)(_X1, _W1, **C(padding=_same_pads(_W1, (3,), 1), dilation=(3,)))),
    ("layer_norm", "layer_norm(Y)", dict(Y=_Y), _layer_norm(_Y, (-1,))),
    ("layer_norm", "layer_norm(Y, axis=(1, 2), eps=0.1)", dict(Y=_Y), _layer_norm(_Y, (1, 2), 0.1)),
    ("layer_norm", "layer_norm(Y, -1, 1e-5, w, b)", dict(Y=_Y, w=U(5), b=U(5)), None),
    ("batch_norm", "batch_norm(X, m, v, w, b)", dict(X=_BX, m=U(3), v=U(3, lo=0.5, hi=2.0),
                                                     w=U(3), b=U(3)), None),
    ("batch_norm", "batch_norm(X, m, v, eps=0.5)", dict(X=_BX[:, :, 0], m=U(3),
                                                        v=U(3, lo=0.5, hi=2.0)), None),
    ("dropout", "dropout(Y, 0.3, seed=5)", dict(Y=_Y), _dropout(_Y, 0.3, 5)),
    ("dropout", "dropout(Y, p=0.3, training=0)", dict(Y=_Y), _Y),
    ("dropout", "dropout(Y, 1)", dict(Y=_Y), np.zeros_like(_Y)),
    ("top_k", "top_k(Y, 2)", dict(Y=_Y), _top_k(_Y, 2)),
    ("top_k", "top_k(T, 3)", dict(T=_ties(2, 6)), _top_k(_ties(2, 6), 3)),
]


def _fill(rows):
    """The rows whose expected value depends on their arrays, computed from them."""
    out = []
    for name, src, arrays, expected in rows:
        if expected is None and name == "layer_norm":
            expected = _layer_norm(arrays["Y"], (-1,)) * arrays["w"] + arrays["b"]
        elif expected is None and name == "batch_norm":
            x = arrays["X"]
            shape = (1, -1) + (1,) * (x.ndim - 2)
            eps = 0.5 if "eps" in src else 1e-5
            expected = (x - arrays["m"].reshape(shape)) / np.sqrt(arrays["v"].reshape(shape) + eps)
            if "w" in arrays:
                expected = expected * arrays["w"].reshape(shape) + arrays["b"].reshape(shape)
        out.append((name, src, arrays, expected))
    return out


MACROS = _fill(MACROS)
