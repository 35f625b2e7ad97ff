"""Decompositions and the linear algebra built on them, on stacks of matrices
(leading batch axes, like numpy.linalg): cholesky, slogdet, logdet, eigh, svd,
qr, pinv, solve_triangular, and the builtins made of them, lstsq and
matrix_power.

A decomposition with several results is one op with a `part` attribute (the
index of the result in NumPy's tuple: eigh's w is part 0, v part 1), and the
builtin (a Macro) returns the tuple of its parts.  A part prints as the
builtin indexed, `eigh(A)[1]`, so printed text reads back.  The parts of one
decomposition share one factorisation while a plan runs: the kernel keeps the
last input and its results (`_Last`).  The VJP of a part is the part's share
of the decomposition's VJP, which is linear in the cotangents, so autodiff's
sum over the parts is the whole rule.

Derivative rules are graph-building code over registered ops (this module's
ops included: the rules of cholesky and qr use solve_triangular, whose own
rules use it again), so they differentiate again.  They hold at every rank,
as linalg's do (docs/design.md, "Rank-generic derivatives"): triangles are
tril/triu, the identity is eye(n) where the size is known and the diagonal of
ones_like(A) where it is not, solve_triangular of a b of unknown rank goes
through op(T)⁻¹ @ b as solve does, and svd's rules include both corrections
for a non-square matrix where m and n are unknown (each vanishes for the
other shape).  Only qr (tall or wide) and svd with full_matrices=1 need the
shape: there they raise the clean error of `known_shape`, and the printer
falls back.

Each rule follows the standard matrix-calculus results (Giles 2008; Murray
2016 for Cholesky; Townsend 2016 and JAX's jvp rules for the SVD and QR),
written here as the JVP and its transpose, the VJP.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import (Attr, CallForm, Jax, Macro, OpDef, apply, bind, building, const, register,
               register_macro, signature)
from . import series as _series
from .batched import lift, on_last_axes
from .shape import known_shape
from .sym import add, div, mul, neg, op, sub, unbroadcast


# ── shapes ───────────────────────────────────────────────────────────────

def _matrix(s, name, span, square=False):
    if len(s) < 2 or (square and s[-1] != s[-2]):
        what = "a square matrix" if square else "a matrix"
        raise BpShapeError(f"{name} needs {what} (or a stack of them), got shape "
                           f"{shapes.fmt(s)}", span)


def _square_same(name):
    def rule(shs, attrs, span):
        s = shs[0]
        if not isinstance(s, tuple):
            return s
        _matrix(s, name, span, square=True)
        return s
    return rule


def _square_to_batch(name):
    def rule(shs, attrs, span):
        s = shs[0]
        if not isinstance(s, tuple):
            return shapes.SymShape()
        _matrix(s, name, span, square=True)
        return s[:-2]
    return rule


def _eigh_shape(shs, attrs, span):
    s = shs[0]
    if not isinstance(s, tuple):
        return s if attrs.get("part", 0) == 1 else shapes.SymShape()
    _matrix(s, "eigh", span, square=True)
    return s if attrs.get("part", 0) == 1 else s[:-1]


def _svd_shape(shs, attrs, span):
    s = shs[0]
    if not isinstance(s, tuple):
        return shapes.SymShape()
    _matrix(s, "svd", span)
    m, n = s[-2:]
    k = min(m, n)
    full = attrs.get("full_matrices", True)
    part = attrs.get("part", 0)
    if part == 0:
        return s[:-2] + (m, m if full else k)
    if part == 1:
        return s[:-2] + (k,)
    return s[:-2] + (n if full else k, n)


def _qr_shape(shs, attrs, span):
    s = shs[0]
    if not isinstance(s, tuple):
        return shapes.SymShape()
    _matrix(s, "qr", span)
    m, n = s[-2:]
    k = min(m, n)
    return s[:-2] + ((m, k) if attrs.get("part", 0) == 0 else (k, n))


def _pinv_shape(shs, attrs, span):
    s = shs[0]
    if not isinstance(s, tuple):
        return shapes.SymShape()
    _matrix(s, "pinv", span)
    return s[:-2] + (s[-1], s[-2])


def _solve_triangular_shape(shs, attrs, span):
    a, b = shs
    if attrs.get("trans", 0) not in (0, 1, 2):
        raise BpValueError(f"solve_triangular: trans= is 0 (a x = b), 1 (a' x = b) or 2 (the "
                           f"same as 1 for real matrices), got {attrs['trans']}", span)
    if not (isinstance(a, tuple) and isinstance(b, tuple)):
        return b if isinstance(a, tuple) and len(a) == 2 else shapes.SymShape()
    _matrix(a, "solve_triangular", span, square=True)
    if len(b) == 1:
        if b[0] != a[-1]:
            raise BpShapeError(f"solve_triangular of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                               f"sizes differ", span)
        return a[:-2] + b
    if len(b) < 2 or b[-2] != a[-1]:
        raise BpShapeError(f"solve_triangular of {shapes.fmt(a)} and {shapes.fmt(b)}: "
                           f"sizes differ", span)
    return shapes.broadcast(a[:-2], b[:-2], span=span) + b[-2:]


# ── kernels ──────────────────────────────────────────────────────────────

class _Last(threading.local):
    """The last input of one decomposition and its results, per thread: the parts
    of eigh(A) (or svd, qr, slogdet) computed one after the other in a plan cost
    one factorisation."""

    def __init__(self, compute):
        self.compute = compute
        self.key = None
        self.value = None

    def part(self, k, a, *options):
        """Result k of the decomposition of a: a copy, so that nothing a caller does
        to it reaches the next call."""
        a = np.asarray(a, dtype=np.float64)
        key = (a.shape, options, a.tobytes())
        if key != self.key:
            self.value = tuple(np.asarray(r, dtype=np.float64) for r in self.compute(a, *options))
            self.key = key
        return self.value[k].copy()


_EIGH = _Last(lambda a: np.linalg.eigh(a))
_SVD = _Last(lambda a, full: np.linalg.svd(a, full_matrices=full))
_QR = _Last(lambda a: np.linalg.qr(a))
_SLOGDET = _Last(lambda a: np.linalg.slogdet(a))


def _cholesky(a, upper=False):
    """np.linalg.cholesky on every NumPy: the lower factor from a's lower triangle, or
    (upper=1, NumPy 2's upper=True) the upper factor from its upper triangle."""
    a = np.asarray(a, dtype=np.float64)
    if upper:
        return np.swapaxes(np.linalg.cholesky(np.swapaxes(a, -1, -2)), -1, -2)
    return np.linalg.cholesky(a)


# JAX: the factor from one triangle only, as LAPACK (jnp.linalg.cholesky symmetrizes)
_CHOLESKY_JAX = """
def _cholesky(a, upper=False):
    a = jnp.asarray(a, dtype=jnp.float64)
    if upper:
        a = jnp.swapaxes(a, -1, -2)
    low = jax.lax.linalg.cholesky(a, symmetrize_input=False)
    return jnp.swapaxes(low, -1, -2) if upper else low
"""


def _logdet(a):
    """log(det(a)): nan where det(a) < 0, -inf where it is 0 (as torch.logdet)."""
    sign, logabs = np.linalg.slogdet(a)
    return np.where(sign > 0, logabs, np.where(sign == 0, -np.inf, np.nan))


def _solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False):
    """scipy.linalg.solve_triangular for a stack of matrices: only the triangle of a
    that `lower` names is read (and not its diagonal, taken as 1, with unit_diagonal);
    trans=1 (or 2) solves a' x = b.  b follows solve's rule: one vector when it has
    one axis (broadcast over a stack of a), else a stack of matrices."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = a.shape[-1]
    t = np.tril(a, -1 if unit_diagonal else 0) if lower else np.triu(a, 1 if unit_diagonal else 0)
    if unit_diagonal:
        t = t + np.eye(n)
    if trans:
        t = np.swapaxes(t, -1, -2)
    if b.ndim == 1:
        column = np.broadcast_to(b[:, None], t.shape[:-1] + (1,))
        return np.linalg.solve(t, column)[..., 0]
    batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(t, batch + t.shape[-2:]),
                           np.broadcast_to(b, batch + b.shape[-2:]))


# ── building blocks of the rules (any rank, stacks included) ─────────────

def _T(x):
    """The transpose of every matrix of a stack."""
    return op("swapaxes", x, axis1=-1, axis2=-2)


def _mm(a, b):
    return op("matmul", a, b)


def _dims(x, what):
    return known_shape(x, what)[-2:]


def _rank(x) -> int | None:
    return len(x.shape) if isinstance(x.shape, tuple) else None


def _tri(x, k, upper=False):
    """tril(x, k) (triu with upper): the triangle of every matrix of a stack."""
    return op("triu" if upper else "tril", x, k=k)


def _eye(x):
    """The identity of x's last two axes (x square): eye(n) where the size is known,
    else the diagonal of ones_like(x), which any rank allows."""
    if isinstance(x.shape, tuple):
        return const(np.eye(x.shape[-1]))
    return _tri(_tri(op("broadcast_like", const(1.0), x), 0), 0, upper=True)


def _diagonal(x):
    """The diagonal of every (square) matrix of a stack, as a stack of vectors."""
    return op("sum", mul(x, _eye(x)), axis=(-1,), keepdims=False)


def _cols(x, v):
    """x @ diag(v): column j of every matrix scaled by v[j]."""
    return mul(x, op("expand_dims", v, axis=(-2,)))


def _rows(v, x):
    """diag(v) @ x: row i of every matrix scaled by v[i]."""
    return mul(op("expand_dims", v, axis=(-1,)), x)


def _sym_lower(d):
    """The symmetric matrix a kernel that reads only the lower triangle sees."""
    return add(_tri(d, 0), _T(_tri(d, -1)))


def _sym_lower_adjoint(g):
    """The adjoint of _sym_lower: tril(g) + tril(g', -1)."""
    return add(_tri(g, 0), _tri(_T(g), -1))


def _inverse_gaps(v):
    """F with F[i, j] = 1/(v[j] - v[i]) off the diagonal and 0 on it (for each
    matrix of a stack); infinite where two values are equal."""
    gaps = sub(op("expand_dims", v, axis=(-2,)), op("expand_dims", v, axis=(-1,)))
    eye = _eye(gaps)
    return sub(div(const(1.0), add(gaps, eye)), eye)


def _st(a, b, trans=0, lower=False):
    return op("solve_triangular", a, b, trans=trans, lower=lower, unit_diagonal=False)


# ── cholesky (Murray 2016) ───────────────────────────────────────────────
#
# A = L L' from A's lower triangle: with S the symmetric matrix that the lower
# triangle of dA stands for, dL = L Φ(L⁻¹ S L⁻ᵀ), Φ the lower triangle with the
# diagonal halved.  Its transpose: P = Φ(L' L̄), G = L⁻ᵀ P L⁻¹, Ā = tril(G) + tril(G', -1).
# upper=1 is the same on the transposes.

def _phi(x):
    """The lower triangle with the diagonal halved: (tril(x) + tril(x, -1))/2."""
    return mul(const(0.5), add(_tri(x, 0), _tri(x, -1)))


def _cholesky_jvp(ts, out, ins, attrs):
    upper = attrs.get("upper", False)
    da = _T(ts[0]) if upper else ts[0]
    low = _T(out) if upper else out
    s = _sym_lower(da)
    z = _st(low, _T(_st(low, s, lower=True)), lower=True)
    dl = _mm(low, _phi(z))
    return _T(dl) if upper else dl


def _cholesky_vjp(ct, out, ins, attrs):
    upper = attrs.get("upper", False)
    low = _T(out) if upper else out
    lbar = _T(ct) if upper else ct
    p = _phi(_mm(_T(low), lbar))
    w = _st(low, p, trans=1, lower=True)
    g = _T(_st(low, _T(w), trans=1, lower=True))
    a = _sym_lower_adjoint(g)
    return (_T(a) if upper else a,)


# ── slogdet and logdet ───────────────────────────────────────────────────
# d log|det A| = tr(A⁻¹ dA): Ā = ḡ A⁻ᵀ, one scale per matrix of a stack; the sign
# is piecewise constant (derivative 0).

def _logdet_vjp(ct, a):
    one = isinstance(a.shape, tuple) and len(a.shape) == 2     # one matrix; else a stack, or
    scale = ct if one else op("expand_dims", ct, axis=(-1, -2))  # a rank not known yet
    return mul(scale, _T(op("inv", a)))


def _logdet_jvp(t, a):
    axis = None if isinstance(a.shape, tuple) and len(a.shape) == 2 else (-2, -1)
    return op("sum", mul(_T(op("inv", a)), t), axis=axis, keepdims=False)


def _slogdet_vjp(ct, out, ins, attrs):
    return (None,) if attrs.get("part", 0) == 0 else (_logdet_vjp(ct, ins[0]),)


def _slogdet_jvp(ts, out, ins, attrs):
    return None if attrs.get("part", 0) == 0 else _logdet_jvp(ts[0], ins[0])


# ── eigh ─────────────────────────────────────────────────────────────────
#
# A = V diag(w) V' from A's lower triangle (NumPy's UPLO='L').  With S as for
# cholesky, X = V' S V and F[i, j] = 1/(w[j] - w[i]): dw = diag(X), dV = V (F ∘ X).
# Transpose: S̄ = V (diag(w̄) + F ∘ (V' V̄)) V', Ā = tril(S̄) + tril(S̄', -1).
# Defined where the eigenvalues are distinct (F is infinite at a tie).

def _eigh_jvp(ts, out, ins, attrs):
    a, = ins
    v = op("eigh", a, part=1)
    x = _mm(_mm(_T(v), _sym_lower(ts[0])), v)
    if attrs.get("part", 0) == 0:
        return _diagonal(x)
    return _mm(v, mul(_inverse_gaps(op("eigh", a, part=0)), x))


def _eigh_vjp(ct, out, ins, attrs):
    a, = ins
    v = op("eigh", a, part=1)
    if attrs.get("part", 0) == 0:
        sbar = _mm(_cols(v, ct), _T(v))
    else:
        f = _inverse_gaps(op("eigh", a, part=0))
        sbar = _mm(_mm(v, mul(f, _mm(_T(v), ct))), _T(v))
    return (_sym_lower_adjoint(sbar),)


# ── svd (Townsend 2016; JAX's svd_jvp_rule) ──────────────────────────────
#
# A = U diag(s) V' (reduced, k = min(m, n)), dS = U' dA V, F[i, j] = 1/(s[j]² - s[i]²):
#   ds = diag(dS)
#   dU = U (F ∘ (dS S + S dS')) + (I - U U') dA V S⁻¹      (the last term when m > n)
#   dV = V (F ∘ (S dS + dS' S)) + (I - V V') dA' U S⁻¹     (the last term when n > m)
# and their transposes.  Defined for distinct, nonzero singular values; with
# full_matrices=1 the columns of U (rows of Vh) past k are not unique, so a
# derivative through them is an error (JAX raises there too).

def _svd_factors(a):
    """(m > n, n > m, U, s, Vh) of the reduced SVD; where the shape is not known both
    are True: the correction terms for a non-square matrix vanish for a square one."""
    if isinstance(a.shape, tuple):
        m, n = a.shape[-2:]
    else:
        m = n = None
    u = op("svd", a, part=0, full_matrices=False)
    s = op("svd", a, part=1, full_matrices=False)
    vh = op("svd", a, part=2, full_matrices=False)
    return m is None or m > n, m is None or n > m, u, s, vh


def _svd_check(attrs, a):
    part = attrs.get("part", 0)
    if part == 1 or not attrs.get("full_matrices", True):
        return
    m, n = _dims(a, "svd with full_matrices=1")
    part = attrs.get("part", 0)
    if attrs.get("full_matrices", True) and part != 1 and (m > n if part == 0 else n > m):
        raise BpValueError(f"the derivative of svd's {'U' if part == 0 else 'Vh'} of a "
                           f"{m}×{n} matrix needs full_matrices=0: the columns past min(m, n) "
                           f"are not unique")


def _svd_jvp(ts, out, ins, attrs):
    a, = ins
    _svd_check(attrs, a)
    tall, wide, u, s, vh = _svd_factors(a)
    v = _T(vh)
    da = ts[0]
    ds = _mm(_mm(_T(u), da), v)
    part = attrs.get("part", 0)
    if part == 1:
        return _diagonal(ds)
    f = _inverse_gaps(mul(s, s))
    if part == 0:
        du = _mm(u, mul(f, add(_cols(ds, s), _rows(s, _T(ds)))))
        if tall:
            dav = _mm(da, v)
            du = add(du, _cols(sub(dav, _mm(u, _mm(_T(u), dav))), div(const(1.0), s)))
        return du
    dv = _mm(v, mul(f, add(_rows(s, ds), _cols(_T(ds), s))))
    if wide:
        dau = _mm(_T(da), u)
        dv = add(dv, _cols(sub(dau, _mm(v, _mm(vh, dau))), div(const(1.0), s)))
    return _T(dv)


def _svd_vjp(ct, out, ins, attrs):
    a, = ins
    _svd_check(attrs, a)
    tall, wide, u, s, vh = _svd_factors(a)
    part = attrs.get("part", 0)
    if part == 1:
        return (_mm(_cols(u, ct), vh),)
    f = _inverse_gaps(mul(s, s))
    if part == 0:
        j = mul(f, _mm(_T(u), ct))
        g = _mm(_mm(u, _cols(add(j, _T(j)), s)), vh)
        if tall:
            g = add(g, _mm(_cols(sub(ct, _mm(u, _mm(_T(u), ct))), div(const(1.0), s)), vh))
        return (g,)
    v = _T(vh)
    vbar = _T(ct)
    k = mul(f, _mm(vh, vbar))
    g = _mm(_mm(u, _rows(s, add(k, _T(k)))), vh)
    if wide:
        g = add(g, _mm(_cols(u, div(const(1.0), s)), _T(sub(vbar, _mm(v, _mm(vh, vbar))))))
    return (g,)


# ── qr (reduced; JAX's qr_jvp_rule and its transpose) ────────────────────
#
# m ≥ n: X = dA R⁻¹, C = Q' X, Ω = tril(C, -1) - tril(C, -1)':
#   dQ = Q (Ω - C) + X,   dR = (C - Ω) R.
# Transpose: M = Q' Q̄ - R̄ R', C̄ = tril(M - M', -1) - M, Ā = (Q̄ + Q C̄) R⁻ᵀ.
# m < n: A = [A1 A2] with A1 square: Q, R1 from A1, R2 = Q' A2, so
# dR2 = dQ' A2 + Q' dA2, and back Q̄ gains A2 R̄2', Ā2 = Q R̄2.
# Defined where R's diagonal has no zero (A1 of full rank).

def _cols_of(x, lo, hi):
    rank = len(x.shape)
    items = (("s", None, None, None),) * (rank - 1) + (("s", lo, hi, None),)
    return op("index", x, items=items)


def _qr_square_jvp(q, r, da):
    x = _T(_st(r, _T(da), trans=1))
    c = _mm(_T(q), x)
    low = _tri(c, -1)
    omega = sub(low, _T(low))
    return add(_mm(q, sub(omega, c)), x), _mm(sub(c, omega), r)


def _qr_square_vjp(q, r, qbar, rbar):
    m = None
    if qbar is not None:
        m = _mm(_T(q), qbar)
    if rbar is not None:
        m = sub(m, _mm(rbar, _T(r))) if m is not None else neg(_mm(rbar, _T(r)))
    cbar = sub(_tri(sub(m, _T(m)), -1), m)
    z = _mm(q, cbar) if qbar is None else add(qbar, _mm(q, cbar))
    return _T(_st(r, _T(z)))


def _qr_parts(a):
    return op("qr", a, part=0), op("qr", a, part=1)


def _qr_jvp(ts, out, ins, attrs):
    a, = ins
    m, n = _dims(a, "qr")
    q, r = _qr_parts(a)
    part = attrs.get("part", 0)
    if m >= n:
        return _qr_square_jvp(q, r, ts[0])[part]
    da1, da2 = _cols_of(ts[0], 0, m), _cols_of(ts[0], m, None)
    dq, dr1 = _qr_square_jvp(q, _cols_of(r, 0, m), da1)
    if part == 0:
        return dq
    dr2 = add(_mm(_T(dq), _cols_of(a, m, None)), _mm(_T(q), da2))
    return op("concat", dr1, dr2, axis=-1)


def _qr_vjp(ct, out, ins, attrs):
    a, = ins
    m, n = _dims(a, "qr")
    q, r = _qr_parts(a)
    part = attrs.get("part", 0)
    qbar, rbar = (ct, None) if part == 0 else (None, ct)
    if m >= n:
        return (_qr_square_vjp(q, r, qbar, rbar),)
    r1 = _cols_of(r, 0, m)
    if part == 0:
        return (op("concat", _qr_square_vjp(q, r1, qbar, None),
                   mul(const(0.0), _cols_of(a, m, None)), axis=-1),)
    rbar1, rbar2 = _cols_of(rbar, 0, m), _cols_of(rbar, m, None)
    qbar2 = _mm(_cols_of(a, m, None), _T(rbar2))
    return (op("concat", _qr_square_vjp(q, r1, qbar2, rbar1), _mm(q, rbar2), axis=-1),)


# ── pinv (Golub & Pereyra 1973) ──────────────────────────────────────────
#
# For A of constant rank, with P = pinv(A):
#   dP = -P dA P + P P' dA' (I - A P) + (I - P A) dA' P' P
#   Ā  = -P' P̄ P' + (I - A P) P̄' P P' + P' P P̄' (I - P A)
# written without identities, so the rules hold at any rank.

def _pinv_jvp(ts, out, ins, attrs):
    a, = ins
    p, dat = out, _T(ts[0])
    t1 = neg(_mm(_mm(p, ts[0]), p))
    y = _mm(_mm(p, _T(p)), dat)                 # P P' dA'
    z = _mm(_mm(dat, _T(p)), p)                 # dA' P' P
    return add(add(t1, sub(y, _mm(_mm(y, a), p))), sub(z, _mm(_mm(p, a), z)))


def _pinv_vjp(ct, out, ins, attrs):
    a, = ins
    p, ctt = out, _T(ct)
    t1 = neg(_mm(_mm(_T(p), ct), _T(p)))
    z = _mm(_mm(ctt, p), _T(p))                 # P̄' P P'
    y = _mm(_mm(_T(p), p), ctt)                 # P' P P̄'
    return (add(add(t1, sub(z, _mm(a, _mm(p, z)))), sub(y, _mm(_mm(y, p), a))),)


# ── solve_triangular ─────────────────────────────────────────────────────
#
# x = op(T)⁻¹ b with T the triangle of a that is read (its diagonal 1 with
# unit_diagonal) and op(T) = T or T':  dx = op(T)⁻¹ (db - op(dT) x), and back
# b̄ = op(T)⁻ᵀ x̄, Ā = the read triangle of -b̄ x' (of -x b̄' when transposed).
# b with one axis against a stack of a is solved as columns, as for solve.

def _read(x, attrs):
    """x masked to the entries of a that solve_triangular reads (strictly off the
    diagonal with unit_diagonal)."""
    unit, lower = attrs.get("unit_diagonal", False), attrs.get("lower", False)
    k = (-1 if unit else 0) if lower else (1 if unit else 0)
    return _tri(x, k, upper=not lower)


def _st_like(a, b, attrs, flip=False):
    trans = 1 if attrs.get("trans", 0) else 0
    return op("solve_triangular", a, b, trans=1 - trans if flip else trans,
              lower=attrs.get("lower", False), unit_diagonal=attrs.get("unit_diagonal", False))


def _tri_inverse(a, attrs):
    """op(T)⁻¹ for every matrix of a stack: the triangular solve of the identity."""
    return _st_like(a, _eye(a), attrs)


def _st_jvp(ts, out, ins, attrs):
    a, b = ins
    ta, tb = ts
    dx = None if tb is None else _st_like(a, tb, attrs)
    if ta is None:
        return dx
    dt = _read(ta, attrs)
    if attrs.get("trans", 0):
        dt = _T(dt)
    rb = _rank(b)
    if rb is None:                    # (op(T)⁻¹ dT op(T)⁻¹) @ b keeps b's rank at run time
        ti = _tri_inverse(a, attrs)
        return add(dx, neg(_mm(_mm(_mm(ti, dt), ti), b)))
    if rb == 1 and _rank(a) != 2:     # x is a stack of vectors: as columns
        column = _mm(dt, op("expand_dims", out, axis=(-1,)))
        return add(dx, neg(op("sum", _st_like(a, column, attrs), axis=(-1,), keepdims=False)))
    return add(dx, neg(_st_like(a, _mm(dt, out), attrs)))


def _st_vjp(ct, out, ins, attrs):
    a, b = ins
    rb = _rank(b)
    if rb is None:
        # through x = op(T)⁻¹ @ b: b̄ = matmul_vjp(op(T)⁻¹, b, ḡ, wrt=1), and with C the
        # cotangent of op(T)⁻¹, op(T) gets -op(T)⁻ᵀ C op(T)⁻ᵀ
        ti = _tri_inverse(a, attrs)
        c = op("matmul_vjp", ti, b, ct, wrt=0)
        gop = neg(_mm(_mm(_T(ti), c), _T(ti)))
        return _read(_T(gop) if attrs.get("trans", 0) else gop, attrs), \
            op("matmul_vjp", ti, b, ct, wrt=1)
    if rb == 1 and _rank(a) != 2:
        gb = op("sum", _st_like(a, op("expand_dims", ct, axis=(-1,)), attrs, flip=True),
                axis=(-1,), keepdims=False)
        outer = mul(op("expand_dims", gb, axis=(-1,)), op("expand_dims", out, axis=(-2,)))
    else:
        gb = _st_like(a, ct, attrs, flip=True)
        outer = op("outer", gb, out) if rb == 1 else _mm(gb, _T(out))
    if attrs.get("trans", 0):
        outer = _T(outer)
    return unbroadcast(neg(_read(outer, attrs)), a), unbroadcast(gb, b)


def _batch_solve_triangular(node, ins, m):
    (a, ab), (b, bb) = ins
    if ab:
        return None                   # a batched matrix: one solve per direction
    attrs = dict(node.attrs)
    ra, rb = len(a.shape), len(node.inputs[1].shape)
    if rb == 1:                       # each direction's b is one vector: solve columns
        n = a.shape[-1]
        col = apply("reshape", [b], {"shape": (m,) + (1,) * (ra - 2) + (n, 1)})
        return apply("reshape", [apply("solve_triangular", [a, col], attrs)],
                     {"shape": (m,) + node.shape})
    return apply("solve_triangular", [a, lift(b, True, len(node.shape), m)], attrs)


# ── the ops ──────────────────────────────────────────────────────────────

_PART = Attr("part", "int", 0)

register(OpDef(name="cholesky", kernel=_cholesky, shape=_square_same("cholesky"),
               params=("a",), attrs=(Attr("upper", "flag", False),),
               vjp=_cholesky_vjp, jvp=_cholesky_jvp, batch=on_last_axes,
               export="_cholesky({0}, {upper})", helpers=(_cholesky,),
               jax=Jax("_cholesky({0}, {upper})", (_CHOLESKY_JAX,)),
               doc="L with L @ L' = a, from a's lower triangle (upper=1: U with U' @ U = a, "
                   "from the upper one), like np.linalg.cholesky"))
register(OpDef(name="slogdet", kernel=lambda a, part=0: _SLOGDET.part(part, a),
               shape=_square_to_batch("slogdet"), params=("a",), attrs=(_PART,), builtin=False,
               vjp=_slogdet_vjp, jvp=_slogdet_jvp, batch=on_last_axes,
               taylor=_series.logdet,
               export="np.linalg.slogdet({0})[{part}]", fmt=CallForm("slogdet", index="part"),
               doc="slogdet(a)[part]: the sign (0) or log|det a| (1)"))
register(OpDef(name="logdet", kernel=_logdet, shape=_square_to_batch("logdet"), params=("a",),
               vjp=lambda ct, out, ins, at: (_logdet_vjp(ct, ins[0]),),
               jvp=lambda ts, out, ins, at: _logdet_jvp(ts[0], ins[0]), batch=on_last_axes,
               taylor=_series.logdet,
               export="_logdet({0})", helpers=(_logdet,),
               doc="log(det(a)): nan where det(a) < 0, -inf where det(a) = 0"))
register(OpDef(name="eigh", kernel=lambda a, part=0: _EIGH.part(part, a), shape=_eigh_shape,
               params=("a",), attrs=(_PART,), builtin=False, vjp=_eigh_vjp, jvp=_eigh_jvp,
               batch=on_last_axes, export="np.linalg.eigh({0})[{part}]",
               jax="jnp.linalg.eigh({0}, symmetrize_input=False)[{part}]",
               fmt=CallForm("eigh", index="part"),
               doc="eigh(a)[part]: the eigenvalues (0) or eigenvectors (1)"))
register(OpDef(name="svd", kernel=lambda a, part=0, full_matrices=True: _SVD.part(part, a, full_matrices),
               shape=_svd_shape, params=("a",), fmt=CallForm("svd", index="part"),
               attrs=(_PART, Attr("full_matrices", "flag", True)), builtin=False,
               vjp=_svd_vjp, jvp=_svd_jvp, batch=on_last_axes,
               export="np.linalg.svd({0}, full_matrices={full_matrices})[{part}]",
               doc="svd(a, full_matrices)[part]: U (0), s (1) or Vh (2)"))
register(OpDef(name="qr", kernel=lambda a, part=0: _QR.part(part, a), shape=_qr_shape,
               params=("a",), attrs=(_PART,), builtin=False, vjp=_qr_vjp, jvp=_qr_jvp,
               batch=on_last_axes, export="np.linalg.qr({0})[{part}]",
               fmt=CallForm("qr", index="part"),
               doc="qr(a)[part]: Q (0) or R (1) of the reduced QR decomposition"))
register(OpDef(name="pinv", kernel=lambda a, rcond=1e-15: np.linalg.pinv(a, rcond=rcond),
               shape=_pinv_shape, params=("a",), attrs=(Attr("rcond", "float", 1e-15),),
               vjp=_pinv_vjp, jvp=_pinv_jvp, batch=on_last_axes,
               export="np.linalg.pinv({0}, rcond={rcond!r})",
               doc="the Moore-Penrose pseudo-inverse (singular values at most rcond times the "
                   "largest count as zero), like np.linalg.pinv"))
register(OpDef(name="solve_triangular", kernel=_solve_triangular, shape=_solve_triangular_shape,
               params=("a", "b"), attrs=(Attr("trans", "int", 0), Attr("lower", "flag", False),
                                         Attr("unit_diagonal", "flag", False)),
               vjp=_st_vjp, jvp=_st_jvp, batch=_batch_solve_triangular, taylor=_series.by_solves,
               export="_solve_triangular({0}, {1}, {trans}, {lower}, {unit_diagonal})",
               helpers=(_solve_triangular,),
               doc="x with a @ x = b (trans=1: a' @ x = b) for a triangular a, reading only its "
                   "lower (lower=1) or upper triangle, like scipy.linalg.solve_triangular"))


# ── builtins made of the ops ─────────────────────────────────────────────

def _spec(name, params, *attrs):
    """An unregistered OpDef that only binds a builtin's arguments and spells its signature."""
    return OpDef(name=name, kernel=None, shape=None, params=params, attrs=attrs)


def _builtin(spec, doc, differentiable=True):
    def wrap(fn):
        def build(ctx, args, kwargs, span):
            inputs, attrs = bind(spec, args, dict(kwargs), span)
            return fn(*inputs, span=span, **attrs)
        register_macro(Macro(spec.name, build, signature(spec), doc, differentiable))
        return fn
    return wrap


@_builtin(_spec("slogdet", ("a",)), "(sign, log|det a|), like np.linalg.slogdet")
def _slogdet(a, span):
    return tuple(apply("slogdet", [a], {"part": k}, span) for k in (0, 1))


@_builtin(_spec("eigh", ("a",)), "(w, v): the eigenvalues in ascending order and the "
                                 "eigenvectors (columns) of a symmetric matrix, from its lower "
                                 "triangle, like np.linalg.eigh")
def _eigh(a, span):
    return tuple(apply("eigh", [a], {"part": k}, span) for k in (0, 1))


@_builtin(_spec("svd", ("a",), Attr("full_matrices", "flag", True), Attr("compute_uv", "flag", True)),
          "(U, s, Vh) with a = U @ diag(s) @ Vh, or s alone (compute_uv=0), like np.linalg.svd")
def _svd(a, span, full_matrices=True, compute_uv=True):
    parts = []
    for k in ((0, 1, 2) if compute_uv else (1,)):
        full = full_matrices and k != 1
        node = apply("svd", [a], {"part": k, "full_matrices": full}, span)
        if full and isinstance(node.shape, tuple):
            reduced = apply("svd", [a], {"part": k, "full_matrices": False}, span)
            node = reduced if reduced.shape == node.shape else node
        parts.append(node)
    return tuple(parts) if compute_uv else parts[0]


@_builtin(_spec("qr", ("a",)), "(Q, R) with a = Q @ R, Q's columns orthonormal and R upper "
                               "triangular: the reduced decomposition, like np.linalg.qr")
def _qr(a, span):
    return tuple(apply("qr", [a], {"part": k}, span) for k in (0, 1))


@_builtin(_spec("lstsq", ("a", "b"), Attr("rcond", "float", None)),
          "(x, residuals, rank, s): x minimises |a @ x - b|, like np.linalg.lstsq "
          "(residuals always the sums of squares, rank and s from the singular values)")
def _lstsq(a, b, span, rcond=None):
    if rcond is None:
        if not isinstance(a.shape, tuple):
            raise BpValueError("lstsq: rcond=None needs the shape of a (its default is "
                               "eps·max(M, N)): give rcond= or a shape annotation", span)
        rcond = float(np.finfo(np.float64).eps * max(a.shape[-2:]))
    x = apply("matmul", [apply("pinv", [a], {"rcond": rcond}, span), b], span=span)
    r = apply("sub", [b, apply("matmul", [a, x], span=span)], span=span)
    sq = apply("mul", [r, r], span=span)
    if isinstance(b.shape, tuple) and len(b.shape) == 1:
        resid = apply("sum", [sq], {"axis": (-1,), "keepdims": True}, span)
    else:
        resid = apply("sum", [sq], {"axis": (-2,), "keepdims": False}, span)
    s = apply("svd", [a], {"part": 1, "full_matrices": False}, span)
    top = apply("max", [s], {"axis": (-1,), "keepdims": True}, span)
    big = apply("greater", [s, apply("mul", [const(rcond), top], span=span)], span=span)
    rank = apply("sum", [big], {"axis": (-1,), "keepdims": False}, span)
    return x, resid, rank, s


@_builtin(_spec("matrix_power", ("a",), Attr("n", "int", required=True)),
          "a @ a @ … (n factors; inv(a) for negative n, the identity for 0), like "
          "np.linalg.matrix_power")
def _matrix_power(a, span, n):
    if isinstance(a.shape, tuple):
        _matrix(a.shape, "matrix_power", span, square=True)
    if n == 0:                        # the identity of a's shape (stack included)
        if isinstance(a.shape, tuple):
            return const(np.broadcast_to(np.eye(a.shape[-1]), a.shape).copy(), span)
        with building("f", span):
            return _eye(a)
    if n < 0:
        a, n = apply("inv", [a], span=span), -n
    if n <= 3:
        out = a
        for _ in range(n - 1):
            out = apply("matmul", [out, a], span=span)
        return out
    z = out = None                    # NumPy's binary decomposition, in its order
    while n > 0:
        z = a if z is None else apply("matmul", [z, z], span=span)
        n, bit = divmod(n, 2)
        if bit:
            out = z if out is None else apply("matmul", [out, z], span=span)
    return out
