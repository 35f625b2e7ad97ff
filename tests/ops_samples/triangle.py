"""Samples for dsl/ops/triangle.py (packed triangles).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def ref_triu_unpack(v, n, k):
    """v's last axis laid row by row into the places with j − i ≥ k."""
    out = np.zeros(v.shape[:-1] + (n, n))
    for lead in np.ndindex(v.shape[:-1]):
        entries = iter(v[lead])
        for i, j in itertools.product(range(n), range(n)):
            if j - i >= k:
                out[lead + (i, j)] = next(entries)
    return out

def ref_triu_pack(a, k):
    n = a.shape[-1]
    rows = [[a[lead + (i, j)] for i, j in itertools.product(range(n), range(n)) if j - i >= k]
            for lead in np.ndindex(a.shape[:-2])]
    return np.array(rows).reshape(a.shape[:-2] + (len(rows[0]),))


FORWARD = {
    "triu_unpack": Spec([s(U(6), n=3, k=0, label="upper"), s(U(2, 3), n=3, k=1, label="strict-stack"),
                         s(U(4), n=2, k=-1, label="whole"), s(U(1), n=1, k=0, label="1x1")],
                        ref=ref_triu_unpack),
    "triu_pack": Spec([s(U(3, 3), k=0, label="upper"), s(U(2, 4, 4), k=1, label="strict-stack"),
                       s(U(2, 2), k=-1, label="whole")], ref=ref_triu_pack),
}

GRAD = {
    "triu_unpack": [g.S(g.U(6), n=3, k=0, label="upper"), g.S(g.U(2, 3), n=3, k=1, label="strict-stack"),
                    g.S(g.U(4), n=2, k=-1, label="whole")],
    "triu_pack": [g.S(g.U(3, 3), k=0, label="upper"), g.S(g.U(2, 4, 4), k=1, label="strict-stack"),
                  g.S(g.U(2, 2), k=-1, label="whole")],
}

NONDIFF = {

}
