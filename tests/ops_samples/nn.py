"""Samples for dsl/ops/nn.py (neural-network ops).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)
from .special import ref_mpmath


def ref_log_softmax(x, axis=-1):
    return x - ref_logsumexp(x, axis=(axis,), keepdims=True)

def ref_softmax(x, axis=-1):
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)

def ref_cross_entropy_back(logits, targets, axis=-1):
    return ref_softmax(logits, axis) * np.sum(targets, axis=axis, keepdims=True) - targets

def ref_cross_entropy(logits, targets, axis=-1):
    per = -np.sum(targets * ref_log_softmax(logits, axis), axis=axis)
    return np.mean(per)

def ref_one_hot(labels, n):
    return (labels[..., None] == np.arange(n)).astype(np.float64)


FORWARD = {
    "softmax": Spec([s(U(4), axis=-1, label="vector"), s(U(2, 3), axis=-1, label="rows"),
                     s(U(2, 3), axis=0, label="cols"), s(U(2, 3, 4), axis=1, label="middle"),
                     s(U(2, 3) + 1000.0, axis=-1, label="large")],
                    ref=ref_softmax, symbolic="same"),
    "log_softmax": Spec([s(U(4), axis=-1, label="vector"), s(U(2, 3), axis=-1, label="rows"),
                         s(U(2, 3), axis=0, label="cols"),
                         s(U(2, 3) + 1000.0, axis=-1, label="large",
                           ref=lambda x, axis: ref_log_softmax(x - 1000.0, axis))],
                        ref=ref_log_softmax, symbolic="same"),
    "cross_entropy": Spec([s(U(2, 3), Probs(2, 3), axis=-1, label="batch"),
                           s(U(3), Probs(3), axis=-1, label="one"),
                           s(U(2, 3), Probs(2, 3, axis=0), axis=0, label="axis0"),
                           s(U(2, 3) + 1000.0, Probs(2, 3), axis=-1, label="large")],
                          ref=ref_cross_entropy, symbolic=()),
    "cross_entropy_back": Spec([s(U(2, 3), Probs(2, 3), axis=-1, label="batch"),
                                s(U(3), Probs(3), axis=-1, label="one"),
                                s(U(2, 3), Probs(2, 3, axis=0), axis=0, label="axis0"),
                                s(U(2, 3) + 1000.0, Probs(2, 3), axis=-1, label="large")],
                               ref=ref_cross_entropy_back, symbolic="any"),
    "one_hot": Spec([s([0.0, 2.0, 1.0], n=3, label="vector"), s([[1.0, 0.0], [3.0, 3.0]], n=4,
                                                                label="matrix"),
                     s(2.0, n=3, label="scalar")], ref=ref_one_hot),
}

GRAD = {
    "softmax": [g.S(g.U(2, 3), axis=-1, label="last"), g.S(g.U(2, 3), axis=0, label="axis0"),
                g.S(g.U(4), axis=-1, label="vec")],
    "log_softmax": [g.S(g.U(2, 3), axis=-1, label="last"), g.S(g.U(2, 3), axis=0, label="axis0"),
                    g.S(g.U(4), axis=-1, label="vec")],
    "cross_entropy": [g.S(g.U(2, 3), g.Probs(2, 3), axis=-1, label="batch"),
                      g.S(g.U(4), g.Probs(4), axis=-1, label="vec"),
                      g.S(g.U(3, 2), g.Probs(3, 2, axis=0), axis=0, label="axis0")],
    "cross_entropy_back": [g.S(g.U(2, 3), g.Probs(2, 3), axis=-1, label="batch"),
                           g.S(g.U(4), g.Probs(4), axis=-1, label="vec"),
                           g.S(g.U(3, 2), g.Probs(3, 2, axis=0), axis=0, label="axis0")],
}

NONDIFF = {
    "one_hot": ((g.In(lambda r: r.integers(0, 4, (3,)).astype(float)),), {"n": 4}),
}


# gelu, the exact form x/2 (1 + erf(x/√2)), against mpmath
FORWARD.update({
    "gelu": unary(ref_mpmath(lambda mp, v: v / 2 * mp.erfc(-v / mp.sqrt(2))),
                  extra=[s([-40.0, -8.0, 0.0, 8.0, 40.0], label="tails",
                           ref=ref_mpmath(lambda mp, v: v / 2 * mp.erfc(-v / mp.sqrt(2))))]),
})
GRAD.update({"gelu": g.unary_samples(lambda *sh: g.U(*sh, lo=-3.0, hi=3.0))})
