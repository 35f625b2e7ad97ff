"""Samples for dsl/ops/decomp.py (decompositions, on stacks).

Inputs are drawn away from where a rule is undefined: symmetric matrices with
well separated eigenvalues for eigh, matrices with well separated nonzero
singular values for svd, qr and pinv, positive definite ones for cholesky,
triangles with diagonals away from 0 for solve_triangular.  The derivative
walks perturb in every direction, symmetric or not: the kernels read only the
triangle NumPy reads, and so do the rules.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sl

from . import _grad as g
from ._forward import U, Matrix, Spec, s


# ── how the grad walks draw their inputs ─────────────────────────────────

def _spd(shape):
    def draw(rng):
        b = rng.uniform(-1.0, 1.0, shape)
        return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])
    return g.In(draw)


def _sym(shape):
    """Symmetric, eigenvalues about 1.5 apart."""
    n = shape[-1]

    def draw(rng):
        b = rng.uniform(-0.5, 0.5, shape)
        return (b + np.swapaxes(b, -1, -2)) / 2 + np.diag(np.arange(n) * 1.5)
    return g.In(draw)


def _spread(shape):
    """Q1 diag(s) Q2 with singular values 1, 1.7, 2.4, …: distinct, away from 0."""
    m, n = shape[-2:]
    k = min(m, n)

    def draw(rng):
        q1 = np.linalg.qr(rng.normal(size=shape[:-2] + (m, m)))[0]
        q2 = np.linalg.qr(rng.normal(size=shape[:-2] + (n, n)))[0]
        d = np.zeros(shape[:-2] + (m, n))
        d[..., np.arange(k), np.arange(k)] = 1.0 + 0.7 * np.arange(k)[::-1]
        return q1 @ d @ q2
    return g.In(draw)


def SPD(*shape):
    return _spd(shape)


def Sym(*shape):
    return _sym(shape)


def Spread(*shape):
    return _spread(shape)


M = g.Matrix
S = g.S
_ST = dict(trans=0, lower=False, unit_diagonal=False)

GRAD = {
    "cholesky": [S(SPD(3, 3), upper=False, label="3x3"), S(SPD(2, 3, 3), upper=False, label="stack"),
                 S(SPD(3, 3), upper=True, label="upper")],
    "slogdet": [S(M(3, 3), part=1, label="logabsdet"), S(M(2, 3, 3), part=1, label="stack"),
                S(M(3, 3), part=0, label="sign")],
    "logdet": [S(M(3, 3), label="3x3"), S(M(2, 3, 3), label="stack")],
    "eigh": [S(Sym(3, 3), part=0, label="w"), S(Sym(3, 3), part=1, label="v"),
             S(Sym(2, 3, 3), part=0, label="w-stack"), S(Sym(2, 3, 3), part=1, label="v-stack")],
    "svd": [S(Spread(*shape), part=k, full_matrices=False, label=f"{name}-{part}")
            for name, shape in (("square", (3, 3)), ("tall", (4, 2)), ("wide", (2, 4)),
                                ("stack", (2, 3, 2)))
            for k, part in enumerate(("U", "s", "Vh"))]
           + [S(Spread(3, 3), part=0, full_matrices=True, label="full-square-U")],
    "qr": [S(Spread(*shape), part=k, label=f"{name}-{part}")
           for name, shape in (("square", (3, 3)), ("tall", (4, 2)), ("wide", (2, 4)),
                               ("stack", (2, 3, 2)))
           for k, part in enumerate(("Q", "R"))],
    "pinv": [S(Spread(3, 3), rcond=1e-15, label="square"), S(Spread(4, 2), rcond=1e-15, label="tall"),
             S(Spread(2, 4), rcond=1e-15, label="wide"), S(Spread(2, 3, 2), rcond=1e-15, label="stack")],
    "solve_triangular": [
        S(M(3, 3), g.U(3), **{**_ST, "lower": True}, label="lower-vec"),
        S(M(3, 3), g.U(3, 2), **{**_ST, "trans": 1}, label="upper-trans"),
        S(M(3, 3), g.U(3, 2), **{**_ST, "lower": True, "unit_diagonal": True}, label="unit"),
        S(M(2, 3, 3), g.U(3), **{**_ST, "trans": 1, "lower": True}, label="stack-vec"),
        S(M(2, 3, 3), g.U(3, 2), **_ST, label="stack-mat"),
        S(M(3, 3), g.U(2, 3, 2), **{**_ST, "trans": 2, "unit_diagonal": True}, label="b-stack")],
}


# ── forward: values against SciPy (and NumPy, matrix by matrix, where a sign is
# a convention: eigenvectors, singular vectors, Q and R) ──────────────────

def per_matrix(fn, *arrays, core=(2,)):
    """fn applied to each matrix of a stack (the leading axes of the first array;
    the others broadcast against them, with `core` trailing axes each)."""
    lead = np.broadcast_shapes(*(np.shape(a)[:np.ndim(a) - c] for a, c in zip(arrays, core)))
    parts = [np.broadcast_to(a, lead + np.shape(a)[np.ndim(a) - c:]) for a, c in zip(arrays, core)]
    out = [np.asarray(fn(*(p[i] for p in parts)), dtype=np.float64) for i in np.ndindex(*lead)]
    return np.stack(out).reshape(lead + out[0].shape) if lead else out[0]


def _spd_value(*shape):
    b = U(*shape, lo=-1.0, hi=1.0)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def _noisy_upper(a):
    """a with noise above its diagonal: only the lower triangle is meant to be read."""
    return a + np.triu(U(*a.shape), 1)


def _sym_value(*shape):
    b = U(*shape, lo=-1.0, hi=1.0)
    return (b + np.swapaxes(b, -1, -2)) / 2


def ref_cholesky(a, upper):
    return per_matrix(lambda m: sl.cholesky(m, lower=not upper), a)


def ref_slogdet(a, part):
    det = per_matrix(sl.det, a)
    return np.sign(det) if part == 0 else np.log(np.abs(det))


def ref_logdet(a):
    det = per_matrix(sl.det, a)
    with np.errstate(all="ignore"):
        return np.where(det > 0, np.log(np.abs(det)), np.where(det == 0, -np.inf, np.nan))


def ref_eigh(a, part):
    if part == 0:
        return per_matrix(lambda m: sl.eigvalsh(m, lower=True), a)
    return per_matrix(lambda m: np.linalg.eigh(m)[1], a)


def ref_svd(a, part, full_matrices):
    if part == 1:
        return per_matrix(sl.svdvals, a)
    return per_matrix(lambda m: np.linalg.svd(m, full_matrices=full_matrices)[part], a)


def ref_qr(a, part):
    return per_matrix(lambda m: np.linalg.qr(m)[part], a)


def ref_pinv(a, rcond):
    return per_matrix(lambda m: sl.pinv(m, atol=0.0, rtol=rcond), a)


def ref_solve_triangular(a, b, trans, lower, unit_diagonal):
    return per_matrix(lambda m, v: sl.solve_triangular(m, v, trans=trans, lower=lower,
                                                      unit_diagonal=unit_diagonal),
                      a, b, core=(2, 1 if np.ndim(b) == 1 else 2))


_SQ, _TALL, _WIDE = U(3, 3), U(4, 2), U(2, 4)
_STACK = U(2, 3, 2)

FORWARD = {
    "cholesky": Spec([s(_spd_value(3, 3), upper=False, label="3x3"),
                      s(_noisy_upper(_spd_value(4, 4)), upper=False, label="reads-lower"),
                      s(_spd_value(2, 3, 3), upper=False, label="stack"),
                      s(np.swapaxes(_noisy_upper(_spd_value(3, 3)), -1, -2), upper=True,
                        label="upper-reads-upper"),
                      s([[4.0]], upper=False, label="1x1")],
                     ref=ref_cholesky, symbolic="same"),
    "slogdet": Spec([s(Matrix(3, 3), part=1, label="logabsdet"), s(Matrix(3, 3), part=0, label="sign"),
                     s(-Matrix(2, 3, 3), part=0, label="stack-sign"),
                     s(U(2, 2, 4, 4), part=1, label="stack2"),
                     s([[0.0, 1.0], [1.0, 0.0]], part=0, label="negative"),
                     s(np.zeros((2, 2)), part=1, label="singular")], ref=ref_slogdet),
    "logdet": Spec([s(Matrix(3, 3), label="3x3"), s(Matrix(2, 3, 3), label="stack"),
                    s([[0.0, 1.0], [1.0, 0.0]], label="negative-det"),
                    s(np.zeros((2, 2)), label="singular")], ref=ref_logdet),
    "eigh": Spec([s(_sym_value(3, 3), part=0, label="w"), s(_sym_value(3, 3), part=1, label="v"),
                  s(_noisy_upper(_sym_value(4, 4)), part=0, label="reads-lower"),
                  s(_sym_value(2, 3, 3), part=0, label="stack-w"),
                  s(_sym_value(2, 3, 3), part=1, label="stack-v")], ref=ref_eigh),
    "svd": Spec([s(a, part=k, full_matrices=full, label=f"{label}-{k}{'-full' if full else ''}")
                 for label, a in (("square", _SQ), ("tall", _TALL), ("wide", _WIDE),
                                  ("stack", _STACK))
                 for k in range(3) for full in (False, True)], ref=ref_svd),
    "qr": Spec([s(a, part=k, label=f"{label}-{k}") for label, a in
                (("square", _SQ), ("tall", _TALL), ("wide", _WIDE), ("stack", _STACK))
                for k in range(2)], ref=ref_qr),
    "pinv": Spec([s(a, rcond=1e-15, label=label) for label, a in
                  (("square", _SQ), ("tall", _TALL), ("wide", _WIDE), ("stack", _STACK))]
                 + [s(np.outer([1.0, 2.0, 3.0], [1.0, -1.0]), rcond=1e-15, label="rank-1"),
                    s(np.diag([1.0, 1e-3, 1e-9]), rcond=1e-6, label="rcond")], ref=ref_pinv),
    "solve_triangular": Spec([
        s(Matrix(3, 3), U(3), trans=0, lower=True, unit_diagonal=False, label="lower-vec"),
        s(Matrix(3, 3), U(3, 2), trans=0, lower=False, unit_diagonal=False, label="upper"),
        s(Matrix(3, 3), U(3, 2), trans=1, lower=True, unit_diagonal=False, label="trans"),
        s(Matrix(3, 3), U(3, 2), trans=2, lower=False, unit_diagonal=True, label="unit-trans2"),
        s(Matrix(2, 3, 3), U(3), trans=0, lower=True, unit_diagonal=False, label="stack-vec"),
        s(Matrix(2, 3, 3), U(2, 3, 4), trans=1, lower=False, unit_diagonal=False, label="stack"),
        s(Matrix(3, 3), U(2, 3, 2), trans=0, lower=True, unit_diagonal=True, label="b-stack")],
        ref=ref_solve_triangular),
}

SHAPE_ERRORS = [
    ("cholesky", [(2, 3)], {"upper": False}, "square"),
    ("cholesky", [(3,)], {"upper": False}, "square"),
    ("slogdet", [(3, 2)], {"part": 0}, "square"),
    ("logdet", [(2, 2, 3)], {}, "square"),
    ("eigh", [(2, 3)], {"part": 0}, "square"),
    ("svd", [(3,)], {"part": 1, "full_matrices": False}, "matrix"),
    ("qr", [()], {"part": 0}, "matrix"),
    ("pinv", [(4,)], {"rcond": 1e-15}, "matrix"),
    ("solve_triangular", [(3, 3), (2,)], dict(trans=0, lower=False, unit_diagonal=False), "differ"),
    ("solve_triangular", [(2, 3), (2,)], dict(trans=0, lower=False, unit_diagonal=False), "square"),
    ("solve_triangular", [(2, 3, 3), (4, 3, 1)], dict(trans=0, lower=False, unit_diagonal=False),
     "broadcast"),
]

_A = Matrix(3, 3)
_AS = Matrix(2, 3, 3)
_SYM = _noisy_upper(_sym_value(2, 3, 3))
_R = U(5, 3)
_Y = U(5)
_YS = U(5, 2)


def _numpy_lstsq(a, b):
    x, res, rank, sv = np.linalg.lstsq(a, b, rcond=None)
    return x, res, rank, sv


MACROS = [
    ("slogdet", "slogdet(A)[1]", dict(A=_A), np.log(abs(sl.det(_A)))),
    ("slogdet", "slogdet(A)[0]", dict(A=-_AS), np.sign(per_matrix(sl.det, -_AS))),
    ("eigh", "eigh(A)[0]", dict(A=_SYM), per_matrix(lambda m: sl.eigvalsh(m, lower=True), _SYM)),
    ("eigh", "eigh(A)[1]", dict(A=_A), np.linalg.eigh(_A)[1]),
    ("svd", "svd(A)[1]", dict(A=_R), sl.svdvals(_R)),
    ("svd", "svd(A)[0]", dict(A=_R), np.linalg.svd(_R)[0]),
    ("svd", "svd(A, full_matrices=0)[0]", dict(A=_R), np.linalg.svd(_R, full_matrices=False)[0]),
    ("svd", "svd(A, 0)[2]", dict(A=_R.T), np.linalg.svd(_R.T, full_matrices=False)[2]),
    ("svd", "svd(A, compute_uv=0)", dict(A=_AS), per_matrix(sl.svdvals, _AS)),
    ("qr", "qr(A)[1]", dict(A=_R), np.linalg.qr(_R)[1]),
    ("qr", "qr(A)[0]", dict(A=_AS), per_matrix(lambda m: np.linalg.qr(m)[0], _AS)),
    ("lstsq", "lstsq(A, y)[0]", dict(A=_R, y=_Y), _numpy_lstsq(_R, _Y)[0]),
    ("lstsq", "lstsq(A, y)[1]", dict(A=_R, y=_Y), _numpy_lstsq(_R, _Y)[1]),
    ("lstsq", "lstsq(A, Y)[0]", dict(A=_R, Y=_YS), _numpy_lstsq(_R, _YS)[0]),
    ("lstsq", "lstsq(A, Y)[1]", dict(A=_R, Y=_YS), _numpy_lstsq(_R, _YS)[1]),
    ("lstsq", "lstsq(A, Y)[2]", dict(A=_R, Y=_YS), float(_numpy_lstsq(_R, _YS)[2])),
    ("lstsq", "lstsq(A, Y)[3]", dict(A=_R, Y=_YS), _numpy_lstsq(_R, _YS)[3]),
    ("lstsq", "lstsq(A, y, rcond=0.3)[2]", dict(A=np.diag([1.0, 0.1, 3.0]), y=U(3)),
     float(np.linalg.lstsq(np.diag([1.0, 0.1, 3.0]), np.ones(3), rcond=0.3)[2])),   # 2
    ("lstsq", "lstsq(A, y, rcond=0.3)[0]", dict(A=np.diag([1.0, 0.1, 3.0]), y=_Y[:3]),
     np.linalg.lstsq(np.diag([1.0, 0.1, 3.0]), _Y[:3], rcond=0.3)[0]),
    ("matrix_power", "matrix_power(A, 0)", dict(A=_AS), np.broadcast_to(np.eye(3), (2, 3, 3))),
    ("matrix_power", "matrix_power(A, 1)", dict(A=_A), _A),
    ("matrix_power", "matrix_power(A, 3)", dict(A=_A), _A @ _A @ _A),
    ("matrix_power", "matrix_power(A, 5)", dict(A=_AS), np.linalg.matrix_power(_AS, 5)),
    ("matrix_power", "matrix_power(A, -2)", dict(A=_A), np.linalg.inv(_A) @ np.linalg.inv(_A)),
]
