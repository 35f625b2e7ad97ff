"""Host functions: Python callables defined into a session (Interpreter.define).

`host` calls the function; its VJP is `host_vjp`, which calls the given
Python VJP.  That VJP is Python code, not a graph, so a host function has
a first derivative only: differentiating `host_vjp` again, or asking for
forward mode, is a clean type error that says so.
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpTypeError, BpValueError
from . import Jax, OpDef, apply, register
from .batched import NO_SEED


def _host_shape(shs, attrs, span):
    fn = attrs["fn"]
    if fn.shape is not None:
        if not all(isinstance(s, tuple) for s in shs):
            return shapes.SymShape()
        out = fn.shape(*shs)
        return tuple(int(d) for d in out)
    return shapes.broadcast(*shs, span=span)


def _readonly(xs):
    """Views of bp's arrays that a host function can read but not change (they may
    be a caller's arrays, or buffers of a plan)."""
    views = []
    for x in xs:
        v = np.asarray(x).view()
        v.flags.writeable = False
        views.append(v)
    return views


def _call(*xs, fn):
    # A copy: what the function returns may be one of its arguments, or an array the
    # host keeps and changes later; bp's result must be neither.
    out = np.array(fn.fn(*_readonly(xs)), dtype=np.float64)
    ins = [np.shape(x) for x in xs]
    want = tuple(int(d) for d in fn.shape(*ins)) if fn.shape is not None else np.broadcast_shapes(*ins)
    if out.shape != want:
        rule = "its shape= rule gives" if fn.shape is not None else \
            "bp expects the arguments' broadcast shape (define it with shape=… otherwise):"
        raise BpShapeError(f"the host function {fn.name} returned shape {shapes.fmt(out.shape)}; "
                           f"{rule} {shapes.fmt(want)}")
    return out


def _host_vjp(ct, out, ins, attrs):
    fn = attrs["fn"]
    if fn.vjp is None:
        raise BpTypeError(f"the host function {fn.name} has no derivative: define it with "
                          f"vjp=… to differentiate it")
    return tuple(apply("host_vjp", [*ins, out, ct], {"fn": fn, "i": i}) for i in range(len(ins)))


def _no_forward(ts, out, ins, attrs):
    raise BpTypeError(f"the host function {attrs['fn'].name} has only a reverse-mode derivative "
                      f"(its vjp): forward mode (jvp, hvp, jacobian by columns) cannot go through it")


def _vjp_kernel(*xs, fn, i):
    *args, out, ct = xs
    cts = fn.vjp(*_readonly([*args, out, ct]))
    if not isinstance(cts, (tuple, list)):
        cts = (cts,)
    if len(cts) != len(args):
        raise BpValueError(f"the vjp of {fn.name} returned {len(cts)} cotangents for "
                           f"{len(args)} arguments")
    g = np.array(cts[i], dtype=np.float64)
    if g.shape != np.shape(args[i]):
        raise BpValueError(f"the vjp of {fn.name} returned shape {list(g.shape)} for an "
                           f"argument of shape {list(np.shape(args[i]))}")
    return g


def _no_export(args, attrs):
    raise BpTypeError(f"export writes NumPy code, and {attrs['fn'].name} is a Python function "
                      f"defined into the session: it cannot be exported")


def _second_order(ct, out, ins, attrs):
    raise BpTypeError(f"the host function {attrs['fn'].name} has a first derivative only (its vjp "
                      f"is Python code): bp cannot differentiate it again")


_NO_JAX = Jax(why="a host function is Python code, which jax.jit cannot trace (the JAX engine "
                  "runs a plan that calls one with NumPy)")
register(OpDef(name="host", kernel=_call, shape=_host_shape, params=("xs",), variadic=True,
               builtin=False, vjp=_host_vjp, jvp=_no_forward, batch=NO_SEED, export=_no_export,
               jax=_NO_JAX,
               doc="a Python function defined into the session"))
register(OpDef(name="host_vjp", kernel=_vjp_kernel, shape=lambda shs, a, span: shs[a["i"]],
               params=("xs",), variadic=True, builtin=False, vjp=_second_order, jvp=_no_forward,
               batch=NO_SEED, export=_no_export, jax=_NO_JAX,
               doc="the Python vjp of a host function"))
