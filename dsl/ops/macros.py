"""Builtins written as graph-building code over registered ops (SPEC §6):
no kernel of their own, so no derivative rules of their own either."""
from __future__ import annotations

from .. import shapes
from ..errors import BpTypeError, BpValueError
from ..graph import Node
from . import BUILTINS, REGISTRY, Macro, apply, bind, const, describe, register_macro


def _tensor_args(name, args, kwargs, span, params):
    """Positional or keyword tensor arguments, in order, and nothing else."""
    args = list(args)
    out = []
    for p in params:
        if args:
            out.append(args.pop(0))
        elif p in kwargs:
            out.append(kwargs.pop(p))
        else:
            raise BpTypeError(f"{name}({', '.join(params)}) is missing its argument '{p}'", span)
    if args or kwargs:
        raise BpTypeError(f"{name} takes {len(params)} argument{'s' * (len(params) != 1)}: "
                          f"{name}({', '.join(params)})", span)
    for lv in out:
        if not isinstance(lv, Node):
            raise BpTypeError(f"{name} expects a tensor, got {describe(lv)}", span)
    return out


def _macro(name, params, doc, differentiable=True):
    def wrap(fn):
        def build(ctx, args, kwargs, span):
            return fn(*_tensor_args(name, args, dict(kwargs), span, params), span=span)
        register_macro(Macro(name, build, f"{name}({', '.join(params)})", doc, differentiable))
        return fn
    return wrap


@_macro("mse", ("a", "b"), "mean((a - b)^2)")
def _mse(a, b, span):
    d = apply("sub", [a, b], span=span)
    return apply("mean", [apply("pow", [d, const(2.0)], span=span)], {"axis": None, "keepdims": False}, span)


@_macro("clip", ("x", "lo", "hi"), "minimum(maximum(x, lo), hi)")
def _clip(x, lo, hi, span):
    return apply("minimum", [apply("maximum", [x, lo], span=span), hi], span=span)


@_macro("norm", ("x",), "sqrt(sum(x^2)): the Frobenius / 2-norm")
def _norm(x, span):
    sq = apply("mul", [x, x], span=span)
    return apply("sqrt", [apply("sum", [sq], {"axis": None, "keepdims": False}, span)], span=span)


@_macro("dot", ("a", "b"), "inner product of vectors; matrix product of matrices")
def _dot(a, b, span):
    return apply("matmul", [a, b], span=span)


@_macro("flatten", ("x",), "the elements as a vector")
def _flatten(x, span):
    return apply("reshape", [x], {"shape": (-1,)}, span)


def _concrete_shape(x, name, span):
    if not isinstance(x.shape, tuple):
        raise BpValueError(f"{name}: the shape is not known until the function is called", span)
    return x.shape


@_macro("shape", ("x",), "the shape of x, as a tuple", differentiable=False)
def _shape(x, span):
    return tuple(const(float(d), span) for d in _concrete_shape(x, "shape", span))


@_macro("size", ("x",), "the number of elements of x", differentiable=False)
def _size(x, span):
    return const(float(shapes.size(_concrete_shape(x, "size", span))), span)


@_macro("ndim", ("x",), "the rank of x", differentiable=False)
def _ndim(x, span):
    return const(float(len(_concrete_shape(x, "ndim", span))), span)


def _random_macro(name, doc):
    def build(ctx, args, kwargs, span):
        kwargs = dict(kwargs)
        if "seed" not in kwargs:
            kwargs["seed"] = const(float(ctx.next_seed()))
        inputs, attrs = bind(REGISTRY[name], args, kwargs, span)
        return apply(name, inputs, attrs, span)
    register_macro(Macro(name, build, f"{name}(shape…, seed=k)", doc, differentiable=False))


_random_macro("randn", "standard normal samples; the session's generator unless seed= is given")
_random_macro("rand", "uniform samples in [0, 1); the session's generator unless seed= is given")


def _range(ctx, args, kwargs, span):
    raise BpTypeError("range(n) can only be used in a for loop: for i in range(n) { … }", span)


register_macro(Macro("range", _range, "range(n)", "0, 1, …, n-1 in a for loop", False))

assert set(BUILTINS) >= {"sum", "exp", "mse", "zeros"}
