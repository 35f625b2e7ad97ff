"""Samples for dsl/ops/linalg.py (linear algebra).

FORWARD: values and shapes (tests/test_ops_forward.py); GRAD: derivatives
(tests/test_ops_grad.py); NONDIFF: ops no gradient flows through.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from . import _grad as g
from ._forward import *  # noqa: F401,F403  (U, P, s, Spec, unary, binary, reduction, refs …)


def ref_matmul_vjp(a, b, g, wrt):
    """By linearity: element i of the cotangent is <g, e_i @ b> (wrt=0) or <g, a @ e_i>."""
    x = (a, b)[wrt]
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = 1.0
        out[idx] = np.sum(g * (ref_matmul(e, b) if wrt == 0 else ref_matmul(a, e)))
    return out

def ref_det(a):
    """Leibniz's formula over permutations, per matrix of a stack."""
    n = a.shape[-1]
    out = np.zeros(a.shape[:-2])
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        term = np.ones(a.shape[:-2]) * (-1.0) ** inversions
        for row, col in enumerate(perm):
            term = term * a[..., row, col]
        out = out + term
    return out

def ref_inv(a):
    return np.linalg.solve(a, np.broadcast_to(np.eye(a.shape[-1]), a.shape))

def ref_solve(a, b):
    inv = ref_inv(a)
    return ref_matmul(inv, b) if b.ndim > 1 else np.einsum("...ij,j->...i", inv, b)

def ref_trace(x, offset):
    """By hand, matrix by matrix: the sum of x[i, i + offset] where both are in range."""
    m, n = x.shape[-2:]
    out = np.zeros(x.shape[:-2])
    for idx in np.ndindex(*x.shape[:-2]):
        out[idx] = math.fsum(x[idx + (i, i + offset)] for i in range(m) if 0 <= i + offset < n)
    return out

def ref_diag(x, k):
    if x.ndim == 1:
        n = len(x) + abs(k)
        out = np.zeros((n, n))
        for i, v in enumerate(x):
            out[i + max(-k, 0), i + max(k, 0)] = v
        return out
    m, n = x.shape[-2:]
    rows = [i for i in range(m) if 0 <= i + k < n]
    return np.stack([x[..., i, i + k] for i in rows], axis=-1) if rows else np.zeros(x.shape[:-2] + (0,))

def ref_transpose(x, axes=None):
    letters = "abcdefgh"[: x.ndim]
    order = reversed(range(x.ndim)) if axes is None else (a % x.ndim for a in axes)
    return np.einsum(f"{letters}->{''.join(letters[a] for a in order)}", x)


FORWARD = {
    "matmul": Spec([s(U(2, 3), U(3, 4), label="mat@mat"), s(U(3), U(3), label="vec@vec"),
                    s(U(3), U(3, 4), label="vec@mat"), s(U(2, 3), U(3), label="mat@vec"),
                    s(U(2, 1, 3, 4), U(5, 4, 2), label="batch-bcast"),
                    s(U(4, 2, 3), U(3), label="batch@vec"), s(U(3), U(4, 3, 2), label="vec@batch")],
                   ref=ref_matmul),
    "matmul_vjp": Spec([s(U(2, 3), U(3), U(2), wrt=0, label="mat@vec-a"),
                        s(U(2, 3), U(3), U(2), wrt=1, label="mat@vec-b"),
                        s(U(3), U(3), U(), wrt=0, label="vec@vec-a"),
                        s(U(3), U(3, 4), U(4), wrt=1, label="vec@mat-b"),
                        s(U(3), U(4, 3, 2), U(4, 2), wrt=0, label="vec@batch-a"),
                        s(U(4, 2, 3), U(3), U(4, 2), wrt=1, label="batch@vec-b"),
                        s(U(2, 1, 3, 4), U(5, 4, 2), U(2, 5, 3, 2), wrt=0, label="batch-bcast-a"),
                        s(U(2, 1, 3, 4), U(5, 4, 2), U(2, 5, 3, 2), wrt=1, label="batch-bcast-b")],
                       ref=ref_matmul_vjp, symbolic="same"),
    "swapaxes": Spec([s(U(2, 3), axis1=-1, axis2=-2, label="mat"),
                      s(U(2, 3, 4), axis1=-1, axis2=-2, label="stack"),
                      s(U(2, 3, 4), axis1=0, axis2=2, label="outer-axes"),
                      s(U(2, 3), axis1=1, axis2=1, label="same-axis")],
                     ref=lambda x, axis1, axis2: np.swapaxes(x, axis1, axis2)),
    "transpose": Spec([s(U(2, 3), axes=None, label="mat"), s(U(2, 3, 4), axes=None, label="rank3"),
                       s(U(2, 3, 4), axes=(1, 0, 2), label="perm"),
                       s(U(2, 3, 4), axes=(-1, 0, 1), label="negative-axes"),
                       s(U(3), axes=None, label="vector"), s(U(), axes=None, label="scalar")],
                      ref=ref_transpose),
    "outer": Spec([s(U(3), U(4), label="vectors"), s(U(2, 2), U(3), label="flattens"),
                   s(U(), U(2), label="scalar")],
                  ref=lambda a, b: a.ravel()[:, None] * b.ravel()[None, :]),
    "trace": Spec([s(U(3, 3), offset=0, label="square"), s(U(2, 4), offset=0, label="wide"),
                   s(U(1, 1), offset=0, label="1x1"), s(U(2, 4), offset=1, label="offset"),
                   s(U(3, 2), offset=-2, label="negative-offset"), s(U(2, 4), offset=5, label="past"),
                   s(U(2, 3, 3), offset=0, label="stack"), s(U(2, 1, 3, 4), offset=-1, label="stack2")],
                  ref=ref_trace),
    "diag": Spec([s(U(3), k=0, label="vector"), s(U(3, 3), k=0, label="square"),
                  s(U(2, 4), k=0, label="wide"), s(U(3), k=1, label="vector-k"),
                  s(U(2), k=-2, label="vector-negative-k"), s(U(2, 4), k=1, label="wide-k"),
                  s(U(4, 2), k=-1, label="tall-negative-k"), s(U(2, 4), k=-3, label="empty"),
                  s(U(2, 3, 3), k=0, label="stack"), s(U(2, 3, 4), k=2, label="stack-k")],
                 ref=ref_diag),
    "inv": Spec([s(Matrix(3, 3), label="3x3"), s(Matrix(1, 1), label="1x1"),
                 s(Matrix(2, 3, 3), label="stack")], ref=ref_inv, symbolic="same"),
    "det": Spec([s(Matrix(3, 3), label="3x3"), s(Matrix(2, 2), label="2x2"),
                 s(Matrix(4, 2, 2), label="stack"), s([[0.0, 1.0], [1.0, 0.0]], label="swap")],
                ref=ref_det),
    "solve": Spec([s(Matrix(3, 3), U(3), label="vector"), s(Matrix(3, 3), U(3, 2), label="matrix"),
                   s(Matrix(2, 3, 3), U(2, 3, 4), label="stack"),
                   s(Matrix(2, 3, 3), U(3), label="stack-vector")], ref=ref_solve),
}

GRAD = {
    "matmul": [g.S(g.U(2, 3), g.U(3, 4), label="mat@mat"), g.S(g.U(3), g.U(3, 4), label="vec@mat"),
               g.S(g.U(2, 3), g.U(3), label="mat@vec"), g.S(g.U(3), g.U(3), label="vec@vec"),
               g.S(g.U(2, 1, 2, 3), g.U(3, 3, 2), label="batch-bcast"),
               g.S(g.U(3), g.U(2, 3, 2), label="vec@batch"), g.S(g.U(2, 2, 3), g.U(3), label="batch@vec")],
    "matmul_vjp": [g.S(g.U(2, 3), g.U(3), g.U(2), wrt=0, label="mat@vec-a"),
                   g.S(g.U(2, 3), g.U(3), g.U(2), wrt=1, label="mat@vec-b"),
                   g.S(g.U(3), g.U(2, 3, 2), g.U(2, 2), wrt=0, label="vec@batch-a"),
                   g.S(g.U(2, 1, 2, 3), g.U(3, 3, 2), g.U(2, 3, 2, 2), wrt=1, label="batch-bcast-b")],
    "swapaxes": [g.S(g.U(2, 3), axis1=-1, axis2=-2, label="mat"),
                 g.S(g.U(2, 3, 4), axis1=0, axis2=-1, label="stack")],
    "transpose": [g.S(g.U(2, 3), axes=None, label="mat"), g.S(g.U(2, 3, 4), axes=(1, 0, 2), label="perm"),
                  g.S(g.U(2, 3, 4), axes=(-1, 0, 1), label="negative-perm")],
    "outer": [g.S(g.U(3), g.U(2), label="vecs"), g.S(g.U(2, 2), g.U(3), label="flattened")],
    "trace": [g.S(g.U(3, 3), offset=0, label="square"), g.S(g.U(2, 3), offset=0, label="wide"),
              g.S(g.U(2, 3), offset=1, label="offset"), g.S(g.U(2, 3, 2), offset=-1, label="stack")],
    "diag": [g.S(g.U(3), k=0, label="vec->mat"), g.S(g.U(3, 3), k=0, label="mat->vec"),
             g.S(g.U(2, 3), k=0, label="wide"), g.S(g.U(3, 2), k=0, label="tall"),
             g.S(g.U(2), k=1, label="vec-k"), g.S(g.U(2, 4), k=1, label="wide-k"),
             g.S(g.U(4, 2), k=-1, label="tall-negative-k"), g.S(g.U(2, 3, 4), k=-1, label="stack-k"),
             g.S(g.U(3, 2, 2), k=0, label="stack")],
    "inv": [g.S(g.Matrix(3, 3), label="3x3"), g.S(g.Matrix(2, 3, 3), label="batch")],
    "det": [g.S(g.Matrix(3, 3), label="3x3"), g.S(g.Matrix(2, 3, 3), label="batch")],
    "solve": [g.S(g.Matrix(3, 3), g.U(3), label="vec"), g.S(g.Matrix(3, 3), g.U(3, 2), label="mat"),
              g.S(g.Matrix(2, 3, 3), g.U(3, 2), label="batch-A"),
              g.S(g.Matrix(2, 3, 3), g.U(3), label="batch-A-vec"),
              g.S(g.Matrix(3, 3), g.U(2, 3, 2), label="batch-b")],
}

NONDIFF = {

}
