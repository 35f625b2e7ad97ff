"""Samples for dsl/ops/gather.py (take, scatter_add, the along-axis pair, stop_gradient).

References are NumPy's own functions (np.take, np.add.at on a copy,
np.take_along_axis) or, for scatter_add_along_axis, a loop over every element.
Indices repeat positions and count from the end, so duplicates must add.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, …)


def ref_scatter_add(x, idx, v, axis=0):
    out = x.copy()
    ax = axis % x.ndim
    ind = idx.astype(int)
    np.add.at(out, (slice(None),) * ax + (ind,), np.broadcast_to(v, x.shape[:ax] + ind.shape + x.shape[ax + 1:]))
    return out


def ref_scatter_add_along_axis(x, idx, v, axis):
    """By definition: out[… idx[j] …] += v[… j …], one element at a time."""
    ind = idx.astype(int)
    target = np.take_along_axis(x, ind, axis).shape
    v = np.broadcast_to(v, target)
    ind = np.broadcast_to(ind, target) if ind.shape != target else ind
    out = x.copy()
    ax = axis % x.ndim
    for j in itertools.product(*map(range, target)):
        k = list(j)
        k[ax] = ind[tuple(min(a, n - 1) for a, n in zip(j, ind.shape))]
        k = [0 if x.shape[d] == 1 else k[d] for d in range(x.ndim)]
        out[tuple(k)] += v[j]
    return out


I3 = np.array([2.0, 0.0, 2.0, -1.0])            # repeats, and one from the end
I22 = np.array([[1.0, 0.0], [1.0, 1.0]])

FORWARD = {
    "take": Spec([s(U(5), I3, axis=None, label="flat-vector"),
                  s(U(2, 3), np.array([5.0, 0.0, -6.0]), axis=None, label="flat-matrix"),
                  s(U(3, 4), I22, axis=0, label="rows-by-matrix"),
                  s(U(3, 4), I3, axis=1, label="columns"),
                  s(U(2, 3, 4), np.array(1.0), axis=-1, label="scalar-index"),
                  s(U(3, 2), np.zeros((0,)), axis=0, label="empty")],
                 ref=lambda x, i, axis: np.take(x, i.astype(int), axis=axis)),
    "scatter_add": Spec([s(U(5), I3, U(4), axis=0, label="vector-dups"),
                         s(U(3, 2), I22, U(2, 2, 2), axis=0, label="rows"),
                         s(U(2, 3), I3, U(), axis=1, label="broadcast-scalar"),
                         s(U(2, 3), I3, U(1, 4), axis=-1, label="broadcast-row")],
                        ref=ref_scatter_add, symbolic="same"),
    "take_along_axis": Spec([s(U(3, 4), np.array([[3.0], [0.0], [-1.0]]), axis=1, label="one-per-row"),
                             s(U(3, 4), np.array([[2.0, 0.0, 1.0, 2.0]]), axis=0, label="broadcast"),
                             s(U(5), I3, axis=0, label="vector"),
                             s(U(2, 1, 3), np.array([[[0.0], [2.0]]]), axis=-1, label="both-broadcast")],
                            ref=lambda x, i, axis: np.take_along_axis(x, i.astype(int), axis)),
    "scatter_add_along_axis": Spec([s(U(3, 4), np.array([[3.0], [0.0], [-1.0]]), U(3, 1), axis=1,
                                      label="one-per-row"),
                                    s(U(3, 4), np.array([[2.0, 0.0, 2.0, 2.0]]), U(1, 4), axis=0,
                                      label="dups"),
                                    s(U(5), I3, U(), axis=0, label="vector-scalar"),
                                    s(U(2, 3), np.array([[1.0, 1.0], [0.0, 2.0]]), U(2, 2), axis=-1,
                                      label="dups-last")],
                                   ref=ref_scatter_add_along_axis, symbolic="same"),
    "stop_gradient": Spec([s(U(2, 3), label="mat"), s(U(), label="scalar")],
                          ref=lambda x: x, symbolic="same"),
}

GRAD = {
    "take": [g.S(g.U(5), g.Fixed(I3), axis=None, label="flat-dups"),
             g.S(g.U(3, 4), g.Fixed(I22), axis=0, label="rows"),
             g.S(g.U(2, 3), g.Fixed(I3), axis=-1, label="columns"),
             g.S(g.U(2, 3), g.Fixed(np.array([4.0, 0.0])), axis=None, label="flat-matrix")],
    "scatter_add": [g.S(g.U(5), g.Fixed(I3), g.U(4), axis=0, label="dups"),
                    g.S(g.U(3, 2), g.Fixed(I22), g.U(2, 2, 2), axis=0, label="rows"),
                    g.S(g.U(2, 3), g.Fixed(I3), g.U(1, 4), axis=1, label="broadcast")],
    "take_along_axis": [g.S(g.U(3, 4), g.Fixed(np.array([[3.0], [0.0], [-1.0]])), axis=1, label="rows"),
                        g.S(g.U(3, 4), g.Fixed(np.array([[2.0, 0.0, 2.0, 2.0]])), axis=0, label="dups")],
    "scatter_add_along_axis": [g.S(g.U(3, 4), g.Fixed(np.array([[3.0], [0.0], [-1.0]])), g.U(3, 1), axis=1,
                                   label="rows"),
                               g.S(g.U(2, 3), g.Fixed(np.array([[1.0, 1.0], [0.0, 2.0]])), g.U(2, 2),
                                   axis=-1, label="dups")],
}

NONDIFF = {
    "stop_gradient": ((g.U(2, 3),), {}),
}

SHAPE_ERRORS = [
    ("take", [(), (2,)], {"axis": 0}, "rank 1 or more"),
    ("take", [(2, 3), (2,)], {"axis": 2}, "out of range"),
    ("scatter_add", [(3,), (2,), (3,)], {"axis": 0}, "does not broadcast to [2]"),
    ("take_along_axis", [(3, 4), (3,)], {"axis": 1}, "rank of x"),
    ("scatter_add_along_axis", [(3, 4), (3, 1), (3, 2)], {"axis": 1}, "does not broadcast"),
]
