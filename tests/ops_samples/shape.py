"""Samples for dsl/ops/shape.py (shape ops).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def ref_unbroadcast(g, like):
    """Sum g over the axes broadcasting added to like's shape."""
    while g.ndim > like.ndim:
        g = g.sum(axis=0)
    for axis, n in enumerate(like.shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g

def ref_unindex(g, like, items):
    out = np.zeros(like.shape)
    out[index_key(items)] = g
    return out

def ref_expand_dims(x, axis):
    rank = x.ndim + len(axis)
    new = {a % rank for a in axis}
    it = iter(x.shape)
    return x.reshape(tuple(1 if i in new else next(it) for i in range(rank)))


FORWARD = {
    "reshape": Spec([s(U(2, 3), shape=(3, 2), label="mat"), s(U(6), shape=(2, -1), label="infer"),
                     s(U(), shape=(1, 1), label="scalar"), s(U(2, 3, 4), shape=(4, 6), label="rank3"),
                     s(U(2, 3), shape=(-1,), label="flatten")],
                    ref=lambda x, shape: x.reshape(shape), symbolic=(3, 2)),
    "concat": Spec([s(U(2, 3), U(1, 3), axis=0, label="rows"),
                    s(U(2, 3), U(2, 1), axis=1, label="cols"),
                    s(U(3), U(2), U(1), axis=0, label="three-vectors"),
                    s(U(2, 3), U(2, 2), axis=-1, label="negative-axis"),
                    s(U(2, 3), axis=0, label="one")],
                   ref=lambda *xs, axis: np.concatenate(xs, axis=axis)),
    "stack": Spec([s(U(3), U(3), axis=0, label="rows"), s(U(3), U(3), axis=1, label="cols"),
                   s(U(2, 3), U(2, 3), U(2, 3), axis=-1, label="negative-axis"),
                   s(U(), U(), axis=0, label="scalars")],
                  ref=lambda *xs, axis: np.stack(xs, axis=axis)),
    "broadcast_to": Spec([s(U(3), shape=(2, 3), label="vec"), s(U(), shape=(2, 3), label="scalar"),
                          s(U(2, 1), shape=(2, 4), label="col"),
                          s(U(1, 3), shape=(2, 1, 3), label="new-axis")],
                         ref=lambda x, shape: x + np.zeros(shape), symbolic=(2, 3)),
    "index": Spec([s(U(3, 4), items=(("i", 1),), label="row"),
                   s(U(3, 4), items=(("i", -1), ("s", 1, 3, None)), label="int-slice"),
                   s(U(5), items=(("s", None, None, -1),), label="reverse"),
                   s(U(5), items=(("s", None, None, 2),), label="strided"),
                   s(U(2, 3, 4), items=(("s", None, None, None), ("i", 0)), label="colon-int")],
                  ref=lambda x, items: x[index_key(items)]),
    "unindex": Spec([s(U(4), U(3, 4), items=(("i", 1),), label="row"),
                     s(U(3), U(5), items=(("s", None, None, 2),), label="strided"),
                     s(U(), U(2, 3), items=(("i", 1), ("i", -1)), label="element")],
                    ref=ref_unindex),
    "unbroadcast": Spec([s(U(2, 3), U(3), label="lead"), s(U(2, 3), U(2, 1), label="keep"),
                         s(U(2, 3), U(), label="scalar"), s(U(2, 3), U(2, 3), label="same"),
                         s(U(4, 2, 3), U(2, 1), label="both")],
                        ref=ref_unbroadcast, symbolic="same"),
    "unjoin": Spec([s(U(5, 2), U(2, 2), U(3, 2), k=1, axis=0, stacking=0, label="concat"),
                    s(U(2, 5), U(2, 2), U(2, 3), k=0, axis=1, stacking=0, label="concat-axis1"),
                    s(U(2, 3), U(3), U(3), k=1, axis=0, stacking=1, label="stack"),
                    s(U(3, 2), U(3), U(3), k=0, axis=-1, stacking=1, label="stack-last")],
                   ref=lambda ct, *xs, k, axis, stacking: (np.take(ct, k, axis=axis) if stacking else
                       np.split(ct, np.cumsum([x.shape[axis] for x in xs])[:-1], axis=axis)[k])),
    "reshape_like": Spec([s(U(6), U(2, 3), label="flat"), s(U(2, 3), U(3, 2), label="matrix"),
                          s(U(1), U(), label="scalar")],
                         ref=lambda g, like: g.ravel().reshape(like.shape)),
    "broadcast_like": Spec([s(U(3), U(2, 3), label="vec"), s(U(), U(2, 3), label="scalar"),
                            s(U(2, 1), U(2, 4), label="col"), s(U(2, 3), U(2, 3), label="same")],
                           ref=lambda g, like: g + np.zeros(like.shape), symbolic="same"),
    "expand_dims": Spec([s(U(3), axis=(0,), label="front"), s(U(3), axis=(-1,), label="back"),
                         s(U(2, 3), axis=(0, 2), label="two"), s(U(), axis=(0,), label="scalar")],
                        ref=ref_expand_dims),
    "zeros_like": Spec([s(U(2, 3), label="mat"), s(U(), label="scalar")],
                       ref=lambda x: np.zeros(x.shape), symbolic="same"),
    "size_of": Spec([s(U(2, 3), label="mat"), s(U(), label="scalar"), s(U(0, 4), label="empty")],
                    ref=lambda x: np.asarray(float(x.size)), symbolic=()),
}

GRAD = {
    "reshape": [g.S(g.U(2, 3), shape=(3, 2), label="mat"), g.S(g.U(2, 3), shape=(-1,), label="flatten"),
                g.S(g.U(), shape=(1, 1), label="scalar")],
    "concat": [g.S(g.U(2, 3), g.U(1, 3), axis=0, label="axis0"), g.S(g.U(2, 1), g.U(2, 2), g.U(2, 3), axis=-1,
                                                            label="three-last")],
    "stack": [g.S(g.U(3), g.U(3), axis=0, label="axis0"), g.S(g.U(2, 2), g.U(2, 2), g.U(2, 2), axis=2,
                                                      label="three-axis2")],
    "broadcast_to": [g.S(g.U(3), shape=(2, 3), label="vec"), g.S(g.U(2, 1), shape=(2, 3), label="col"),
                     g.S(g.U(), shape=(2, 2), label="scalar")],
    "index": [g.S(g.U(3, 3), items=g.ROW, label="int-slice"),
              g.S(g.U(4), items=(("s", None, None, -1),), label="reverse"),
              g.S(g.U(2, 3), items=(("i", -1),), label="negative"),
              g.S(g.U(3, 4), items=(("s", 1, None, None), ("s", 0, 4, 2)), label="strided")],
    "unindex": [g.S(g.U(2), g.U(3, 3), items=g.ROW, label="int-slice"),
                g.S(g.U(2), g.U(4), items=(("s", 0, 4, 2),), label="strided")],
    "unbroadcast": [g.S(g.U(2, 3), g.U(3), label="lead"), g.S(g.U(2, 3), g.U(2, 1), label="keep"),
                    g.S(g.U(2, 3), g.U(), label="scalar")],
    "unjoin": [g.S(g.U(5, 2), g.U(2, 2), g.U(3, 2), k=1, axis=0, stacking=0, label="concat"),
               g.S(g.U(2, 3), g.U(3), g.U(3), k=0, axis=0, stacking=1, label="stack")],
    "reshape_like": [g.S(g.U(6), g.U(2, 3), label="flat"), g.S(g.U(2, 3), g.U(3, 2), label="matrix")],
    "broadcast_like": [g.S(g.U(3), g.U(2, 3), label="vec"), g.S(g.U(), g.U(2, 2), label="scalar"),
                       g.S(g.U(2, 1), g.U(2, 3), label="col")],
    "expand_dims": [g.S(g.U(3), axis=(0,), label="front"), g.S(g.U(2, 3), axis=(-1,), label="back"),
                    g.S(g.U(), axis=(0, 1), label="scalar")],
}

NONDIFF = {
    "zeros_like": ((g.U(2, 3),), {}),
    "size_of": ((g.U(2, 3),), {}),
}
