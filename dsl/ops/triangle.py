"""Packed triangles: triu_unpack fills a triangle from a vector, triu_pack reads it back.

The entries on and above diagonal k of an n×n matrix, row by row (NumPy's
`triu_indices(n, k)` order), are the packed form.  The two ops are linear
and each other's transpose, so each one's VJP is the other and its JVP is
itself.  A lower triangle filled column by column (GradBench's gmm) is the
transpose of an upper one filled row by row.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, Jax, OpDef, apply, check_size, register
from .batched import on_last_axes

# What export writes for them (the module has no cache of the indices).
_UNPACK_CODE = """
def _triu_unpack(v, n, k):
    rows, cols = np.triu_indices(n, k)
    out = np.zeros(np.shape(v)[:-1] + (n, n))
    out[..., rows, cols] = v
    return out
"""
_UNPACK_JAX = """
def _triu_unpack(v, n, k):
    rows, cols = jnp.triu_indices(n, k)
    return jnp.zeros(jnp.shape(v)[:-1] + (n, n)).at[..., rows, cols].set(v)
"""
_PACK_CODE = """
def _triu_pack(a, k):
    rows, cols = np.triu_indices(np.shape(a)[-1], k)
    return np.asarray(a)[..., rows, cols]
"""


@lru_cache(maxsize=64)
def _indices(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k)


def packed_size(n: int, k: int) -> int:
    """How many entries of an n×n matrix lie on or above diagonal k."""
    return len(_indices(n, k)[0])


def _unpack(v, n, k=0):
    rows, cols = _indices(n, k)
    out = np.zeros(v.shape[:-1] + (n, n))
    out[..., rows, cols] = v
    return out


def _pack(a, k=0):
    rows, cols = _indices(a.shape[-1], k)
    return a[..., rows, cols]


def _unpack_shape(shs, attrs, span):
    s, n, k = shs[0], attrs["n"], attrs.get("k", 0)
    if n < 0:
        raise BpValueError(f"triu_unpack: n must be at least 0, got {n}", span)
    check_size((n, n), span)
    if not isinstance(s, tuple):
        return shapes.SymShape()
    m = packed_size(n, k)
    if len(s) == 0 or s[-1] != m:
        raise BpShapeError(f"triu_unpack of shape {shapes.fmt(s)} with n={n}, k={k}: the last "
                           f"axis must hold the {m} entries on and above diagonal {k} of an "
                           f"{n}×{n} matrix", span)
    return s[:-1] + (n, n)


def _pack_shape(shs, attrs, span):
    s, k = shs[0], attrs.get("k", 0)
    if not isinstance(s, tuple):
        return shapes.SymShape()
    if len(s) < 2 or s[-1] != s[-2]:
        raise BpShapeError(f"triu_pack needs a square matrix (or a stack of them), "
                           f"got shape {shapes.fmt(s)}", span)
    return s[:-2] + (packed_size(s[-1], k),)


def _n_of(x) -> int:
    if not isinstance(x.shape, tuple):
        raise BpValueError("the derivative of triu_pack needs the argument's shape: give the "
                           "parameter a shape annotation (A: [3, 3]) to show it")
    return x.shape[-1]


register(OpDef(name="triu_unpack", kernel=_unpack, shape=_unpack_shape, params=("v",),
               attrs=(Attr("n", "int", required=True), Attr("k", "int", 0)),
               vjp=lambda ct, out, ins, a: (apply("triu_pack", [ct], {"k": a.get("k", 0)}),),
               jvp=lambda ts, out, ins, a: apply("triu_unpack", [ts[0]], a),
               batch=on_last_axes, export="_triu_unpack({0}, {n}, {k})", helpers=(_UNPACK_CODE,),
               jax=Jax("_triu_unpack({0}, {n}, {k})", (_UNPACK_JAX,)),
               doc="an n×n matrix (a stack of them) with v's last axis on and above diagonal k, "
                   "row by row; zeros elsewhere"))
register(OpDef(name="triu_pack", kernel=_pack, shape=_pack_shape, params=("A",),
               attrs=(Attr("k", "int", 0),),
               vjp=lambda ct, out, ins, a: (apply("triu_unpack", [ct],
                                                  {"n": _n_of(ins[0]), "k": a.get("k", 0)}),),
               jvp=lambda ts, out, ins, a: apply("triu_pack", [ts[0]], a),
               batch=on_last_axes, export="_triu_pack({0}, {k})", helpers=(_PACK_CODE,),
               doc="the entries of A on and above diagonal k, row by row: the inverse of "
                   "triu_unpack"))
