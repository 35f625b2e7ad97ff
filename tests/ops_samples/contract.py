"""Samples for dsl/ops/contract.py (einsum, cross; tensordot, inner and kron are
Macros over einsum).

The einsum reference sums products over every assignment of the letters, one
element at a time (itertools), with `...` spelled out per operand: no np.einsum.
"""
from __future__ import annotations

import itertools
import string

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def ref_einsum(*xs, spec):
    lhs, rhs = spec.split("->")
    terms = lhs.split(",")
    free = [c for c in string.ascii_letters if c not in spec]
    # `...` becomes as many fresh letters as the widest operand needs, right-aligned
    ell = max((x.ndim - (len(t) - 3) for x, t in zip(xs, terms) if "..." in t), default=0)
    ell_letters = free[:ell]
    spelled = []
    for x, t in zip(xs, terms):
        if "..." in t:
            n = x.ndim - (len(t) - 3)
            t = t.replace("...", "".join(ell_letters[ell - n:]))
        spelled.append(t)
    out = rhs.replace("...", "".join(ell_letters))
    sizes: dict[str, int] = {}
    for x, t in zip(xs, spelled):
        for c, d in zip(t, x.shape):
            sizes[c] = max(sizes.get(c, 1), d)
    letters = sorted(sizes)
    result = np.zeros(tuple(sizes[c] for c in out))
    for values in itertools.product(*(range(sizes[c]) for c in letters)):
        at = dict(zip(letters, values))
        term = 1.0
        for x, t in zip(xs, spelled):
            # a letter of size 1 in this operand broadcasts: index 0
            term *= x[tuple(at[c] if d != 1 else 0 for c, d in zip(t, x.shape))]
        result[tuple(at[c] for c in out)] += term
    return result


def ref_cross(a, b):
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape)
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


FORWARD = {
    "einsum": Spec([s(U(2, 3), U(3, 4), spec="ij,jk->ik", label="matmul"),
                    s(U(3, 3), spec="ii->", label="trace"),
                    s(U(3, 3), spec="ii->i", label="diagonal"),
                    s(U(2, 3), spec="ij->ji", label="transpose"),
                    s(U(2, 3), U(4), spec="ij,k->ijk", label="outer"),
                    s(U(3), U(3), spec="i,i->", label="dot"),
                    s(U(2, 2, 3), U(3, 4), spec="...ij,jk->...ik", label="ellipsis"),
                    s(U(2, 1, 3), U(4, 3), spec="...i,...i->...", label="ellipsis-broadcast"),
                    s(U(2, 3), U(3, 4), U(4), spec="ij,jk,k->i", label="three"),
                    s(U(2, 1), U(3, 4), spec="ij,jk->ik", label="size-1-label"),
                    s(U(2, 3), spec="ij->", label="sum"),
                    s(U(), U(3), spec=",i->i", label="scalar"),
                    s(U(2, 3, 3), spec="bii->b", label="batched-trace"),
                    s(U(2, 3, 2), spec="iji->j", label="apart-repeat"),
                    s(U(1, 3, 2), U(2, 3, 1), spec="ijk,ijk->ik", label="broadcast-both-ways"),
                    s(U(2), U(1), U(3), U(2), spec="a,b,c,d->abcd", label="four")],
                   ref=ref_einsum),
    "cross": Spec([s(U(3), U(3), label="vectors"), s(U(2, 3), U(3), label="stack-vector"),
                   s(U(4, 1, 3), U(2, 3), label="broadcast")],
                  ref=ref_cross),
}

GRAD = {
    "einsum": [g.S(g.U(2, 3), g.U(3, 4), spec="ij,jk->ik", label="matmul"),
               g.S(g.U(3, 3), spec="ii->", label="trace"),
               g.S(g.U(3, 3), spec="ii->i", label="diagonal"),
               g.S(g.U(2, 3, 3), spec="ijj->ji", label="stack-diagonal"),
               g.S(g.U(2, 3), g.U(4), spec="ij,k->ijk", label="outer"),
               g.S(g.U(2, 2, 3), g.U(3, 4), spec="...ij,jk->...ik", label="ellipsis"),
               g.S(g.U(2, 1, 3), g.U(4, 3), spec="...i,...i->...", label="ellipsis-broadcast"),
               g.S(g.U(3), g.U(2, 3), spec="i,...i->...", label="ellipsis-one-side"),
               g.S(g.U(2, 3), g.U(3, 4), g.U(4), spec="ij,jk,k->i", label="three"),
               g.S(g.U(2, 1), g.U(3, 4), spec="ij,jk->ik", label="size-1-label"),
               g.S(g.U(2, 3), g.U(1, 3), spec="ij,ij->ij", label="size-1-grows"),
               g.S(g.U(2, 3), spec="ij->", label="sum"),
               g.S(g.U(2, 3), g.U(3), spec="ij,j->", label="summed-away"),
               g.S(g.U(), g.U(3), spec=",i->i", label="scalar"),
               g.S(g.U(2, 3, 3), spec="...ii->...i", label="stack-diagonal-ellipsis"),
               g.S(g.U(3, 3), g.U(3), spec="ii,i->i", label="diagonal-times"),
               g.S(g.U(2, 3, 2), spec="iji->j", label="apart-repeat"),
               g.S(g.U(1, 3, 2), g.U(2, 3, 1), spec="ijk,ijk->ik", label="broadcast-both-ways"),
               g.S(g.U(2), g.U(1), g.U(3), g.U(2), spec="a,b,c,d->abcd", label="four")],
    "cross": [g.S(g.U(3), g.U(3), label="vectors"), g.S(g.U(2, 3), g.U(3), label="stack-vector"),
              g.S(g.U(4, 1, 3), g.U(2, 3), label="broadcast")],
}

_A = np.arange(6.0).reshape(2, 3)
_B = np.arange(12.0).reshape(3, 4) - 5

MACROS = [
    ("einsum", "einsum(\"ij,jk\", a, b)", {"a": _A, "b": _B},
     np.array([[sum(_A[i, j] * _B[j, k] for j in range(3)) for k in range(4)] for i in range(2)])),
    ("einsum", "einsum(\"ba\", a)", {"a": _A}, _A.T),
    ("einsum", "einsum(\"...j,j\", a, b)", {"a": _A, "b": np.array([1.0, 2, 3])},
     np.array([8.0, 26.0])),
    ("tensordot", "tensordot(a, b, 1)", {"a": _A, "b": _B},
     np.array([[sum(_A[i, j] * _B[j, k] for j in range(3)) for k in range(4)] for i in range(2)])),
    ("tensordot", "tensordot(a, a, axes=2)", {"a": _A}, np.array(55.0)),
    ("tensordot", "tensordot(a, b, axes=((0,), (1,)))", {"a": _B, "b": _A},
     np.array([[sum(_B[j, k] * _A[i, j] for j in range(3)) for i in range(2)] for k in range(4)])),
    ("inner", "inner(a, b)", {"a": np.array([1.0, 2, 3]), "b": np.array([4.0, 5, 6])}, np.array(32.0)),
    ("inner", "inner(a, a)", {"a": _A},
     np.array([[sum(_A[i, k] * _A[j, k] for k in range(3)) for j in range(2)] for i in range(2)])),
    ("inner", "inner(a, 2)", {"a": _A}, 2 * _A),
    ("kron", "kron(a, b)", {"a": np.array([[1.0, 2], [3, 4]]), "b": np.array([[0.0, 1], [1, 0]])},
     np.array([[0.0, 1, 0, 2], [1, 0, 2, 0], [0, 3, 0, 4], [3, 0, 4, 0]])),
    ("kron", "kron(a, b)", {"a": np.array([1.0, 2]), "b": np.array([[1.0], [10]])},
     np.array([[1.0, 2], [10, 20]])),
]

SHAPE_ERRORS = [
    ("einsum", [(2, 3), (4, 5)], {"spec": "ij,jk->ik"}, "sizes 3 and 4"),
    ("einsum", [(2, 3)], {"spec": "ijk->i"}, "name 3 axes"),
    ("einsum", [(2, 3)], {"spec": "ii->i"}, "repeated"),
    ("einsum", [(2, 3)], {"spec": "...i->i"}, "'...'"),
    ("cross", [(2,), (3,)], {}, "3-vectors"),
]
