"""Constructors: tensors made from static arguments.  No gradient flows
into them; with only static arguments they fold to constants at once."""
from __future__ import annotations

import math

import numpy as np

from ..errors import BpValueError
from . import Attr, OpDef, check_size, register
from .batched import NO_SEED

SHAPE = Attr("shape", "shape", ())


def _from_shape(shs, attrs, span):
    return check_size(attrs["shape"], span)


def _eye_shape(shs, attrs, span):
    n = attrs["n"]
    if n < 0:
        raise BpValueError(f"eye needs a non-negative size, got {n}", span)
    return check_size((n, n), span)


def _arange_args(a, b, step):
    return (0.0, a, step) if b is None else (a, b, step)


def _arange_shape(shs, attrs, span):
    start, stop, step = _arange_args(attrs["a"], attrs["b"], attrs["step"])
    if step == 0 or not all(map(math.isfinite, (start, stop, step))):
        raise BpValueError("arange needs finite bounds and a nonzero step", span)
    return check_size((max(0, math.ceil((stop - start) / step)),), span)


def _linspace_shape(shs, attrs, span):
    if attrs["n"] < 0:
        raise BpValueError(f"linspace needs a non-negative count, got {attrs['n']}", span)
    return check_size((attrs["n"],), span)


def _random(kind):
    def kernel(shape, seed):
        rng = np.random.default_rng(seed)
        return rng.standard_normal(shape) if kind == "randn" else rng.random(shape)
    return kernel


def _constructor(name, kernel, shape, attrs, doc, export, builtin=True):
    # With static arguments only, a constructor folds to a constant as it is built, so
    # export writes the constant; the template is for a graph that keeps the node.
    register(OpDef(name=name, kernel=kernel, shape=shape, params=(), attrs=attrs,
                   differentiable=False, builtin=builtin, doc=doc, batch=NO_SEED, export=export))


_constructor("zeros", lambda shape: np.zeros(shape), _from_shape, (SHAPE,), "a tensor of zeros",
             "np.zeros({shape!r})")
_constructor("ones", lambda shape: np.ones(shape), _from_shape, (SHAPE,), "a tensor of ones",
             "np.ones({shape!r})")
_constructor("full", lambda shape, value: np.full(shape, value), _from_shape,
             (SHAPE, Attr("value", "float", required=True)), "a tensor filled with value=",
             "np.full({shape!r}, {value!r})")
_constructor("eye", lambda n: np.eye(n), _eye_shape, (Attr("n", "int", required=True),),
             "the n×n identity", "np.eye({n})")
_constructor("arange", lambda a, b, step: np.arange(*_arange_args(a, b, step)), _arange_shape,
             (Attr("a", "float", required=True), Attr("b", "float", None), Attr("step", "float", 1.0)),
             "a, a+step, … below b; arange(n) counts from 0",
             lambda args, a: (f"np.arange({a['a']!r}, {a['b']!r}, {a['step']!r})" if a["b"] is not None
                              else f"np.arange(0.0, {a['a']!r}, {a['step']!r})"))
_constructor("linspace", lambda a, b, n: np.linspace(a, b, n), _linspace_shape,
             (Attr("a", "float", required=True), Attr("b", "float", required=True),
              Attr("n", "int", required=True)), "n evenly spaced numbers from a to b",
             "np.linspace({a!r}, {b!r}, {n})")
# randn/rand are reached through macros that supply a seed from the session when none is given.
_constructor("randn", _random("randn"), _from_shape, (SHAPE, Attr("seed", "int", 0)),
             "standard normal samples", "np.random.default_rng({seed}).standard_normal({shape!r})",
             builtin=False)
_constructor("rand", _random("rand"), _from_shape, (SHAPE, Attr("seed", "int", 0)),
             "uniform samples in [0, 1)", "np.random.default_rng({seed}).random({shape!r})",
             builtin=False)
