"""Builtins written as graph-building code over registered ops (SPEC §6):
no kernel of their own, so no derivative rules of their own either."""
from __future__ import annotations

from .. import shapes
import numpy as np

from ..errors import BpTypeError, BpValueError
from ..graph import Node
from . import (BUILTINS, REGISTRY, Macro, apply, bind, const, describe, register_macro,
               static_int, static_ints, static_value)


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


def _norm(ctx, args, kwargs, span):
    """numpy.linalg.norm(x, ord=None, axis=None, keepdims=0), as a graph of abs, sum, max,
    min, sqrt and ^, or of svd's singular values (so its derivatives are theirs)."""
    kwargs = dict(kwargs)
    names = ("x", "ord", "axis", "keepdims")
    given = dict(zip(names, args))
    if len(args) > len(names):
        raise BpTypeError(f"norm takes at most 4 arguments: {_NORM_SIGNATURE}", span)
    for k in list(kwargs):
        if k not in names or k in given:
            raise BpTypeError(f"norm has no argument '{k}' (or got it twice); its signature is "
                              f"{_NORM_SIGNATURE}", span)
        given[k] = kwargs.pop(k)
    if "x" not in given:
        raise BpTypeError(f"{_NORM_SIGNATURE} is missing its argument 'x'", span)
    x = given["x"]
    if not isinstance(x, Node):
        raise BpTypeError(f"norm expects a tensor, got {describe(x)}", span)
    order = given.get("ord")
    if isinstance(order, str):
        if order not in ("fro", "nuc"):
            raise BpValueError(f"norm: ord={order!r} is not an order (numbers, inf, 'fro')", span)
    elif order is not None:
        order = static_value(order, "norm's 'ord'", span)
        if order.ndim != 0:
            raise BpValueError(f"norm: ord= is one number (or 'fro', 'nuc'), got shape "
                               f"{shapes.fmt(order.shape)}", span)
        order = float(order)
    axis = None if given.get("axis") is None else static_ints(given["axis"], "norm's 'axis'", span)
    keep = bool(static_int(given["keepdims"], "norm's 'keepdims'", span)) if "keepdims" in given \
        else False
    rank = len(x.shape) if isinstance(x.shape, tuple) else None

    def red(name, v, axes, keepdims=keep):
        return apply(name, [v], {"axis": axes, "keepdims": keepdims}, span)

    def frobenius(axes):
        return apply("sqrt", [red("sum", apply("mul", [x, x], span=span), axes)], span=span)

    if order is None:
        return frobenius(axis)
    if axis is None:
        if rank is None:
            raise BpValueError("norm with ord= needs x's rank (give it a shape annotation) or "
                               "axis=", span)
        if rank not in (1, 2):
            raise BpValueError(f"norm with ord= of a tensor of rank {rank} needs axis=", span)
        axis = tuple(range(rank))
    if len(axis) == 1:
        return _vector_norm(x, order, axis, keep, red, frobenius, span)
    if len(axis) == 2:
        if order in ("nuc", 2.0, -2.0):
            return _singular_norm(x, order, axis, keep, red, span)
        return _matrix_norm(x, order, axis, keep, red, frobenius, span)
    raise BpValueError("norm's axis= is one axis (a vector norm) or two (a matrix norm)", span)


_NORM_SIGNATURE = "norm(x, ord=None, axis=None, keepdims=0)"


def _vector_norm(x, order, axis, keep, red, frobenius, span):
    if isinstance(order, str):
        raise BpValueError(f"norm: ord={order!r} is a matrix norm; a vector has numbers or inf", span)
    a = apply("abs", [x], span=span)
    if order == 2:
        return frobenius(axis)
    if order == np.inf:
        return red("max", a, axis)
    if order == -np.inf:
        return red("min", a, axis)
    if order == 0:
        return red("sum", apply("not_equal", [x, const(0.0)], span=span), axis)
    if order == 1:
        return red("sum", a, axis)
    p = const(order)
    return apply("pow", [red("sum", apply("pow", [a, p], span=span), axis), const(1 / order)],
                 span=span)


def _singular_norm(x, order, axis, keep, red, span):
    """The nuclear norm (the sum of the singular values), 2 (the largest), -2 (the
    smallest), over the two axes: the svd's singular values, so its derivative is the
    svd's (defined where they are distinct)."""
    rows, cols = axis
    rank = len(x.shape) if isinstance(x.shape, tuple) else None
    if rank is None:
        if (rows, cols) != (-2, -1):
            raise BpValueError(f"norm with ord={order!r} over axes {axis} needs x's rank (give it "
                               f"a shape annotation), or axis=(-2, -1)", span)
        moved = x
    else:
        rows, cols = rows % rank, cols % rank
        rest = [i for i in range(rank) if i not in (rows, cols)]
        moved = x if (rows, cols) == (rank - 2, rank - 1) else \
            apply("transpose", [x], {"axes": tuple(rest) + (rows, cols)}, span)
    values = apply("svd", [moved], {"part": 1, "full_matrices": False}, span)
    out = red({"nuc": "sum", 2.0: "max", -2.0: "min"}[order], values, (-1,), keepdims=False)
    if keep:
        out = apply("expand_dims", [out], {"axis": tuple(sorted((rows, cols)))}, span)
    return out


def _matrix_norm(x, order, axis, keep, red, frobenius, span):
    if order == "fro":
        return frobenius(axis)
    if order not in (1.0, -1.0, np.inf, -np.inf):
        raise BpValueError(f"norm: ord={order:g} is not a matrix norm ('fro', 'nuc', 1, -1, 2, "
                           f"-2, inf, -inf)", span)
    rows, cols = axis
    # 1, -1: the largest (smallest) column sum; inf, -inf: the largest (smallest) row sum
    inner = rows if abs(order) == 1 else cols
    outer = cols if abs(order) == 1 else rows
    rank = len(x.shape) if isinstance(x.shape, tuple) else None
    if rank is not None:
        inner, outer = inner % rank, outer % rank
    elif (inner < 0) != (outer < 0):
        raise BpValueError("norm's two axes must both count from the start or both from the "
                           "end when x's rank is not known", span)
    sums = red("sum", apply("abs", [x], span=span), (inner,), keepdims=True)
    out = red("max" if order > 0 else "min", sums, (outer,), keepdims=True)
    return out if keep else red("sum", out, tuple(sorted((inner, outer))), keepdims=False)


register_macro(Macro("norm", _norm, _NORM_SIGNATURE,
                     "numpy.linalg.norm: vector orders (2, 1, inf, -inf, 0, any p) over one axis, "
                     "matrix orders ('fro', 'nuc', 1, -1, 2, -2, inf, -inf) over two; without "
                     "ord= the 2-norm of all the elements (of each slice along axis=)"))


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
    if not isinstance(x.shape, tuple):     # known at the call: a node (a loop's runtime count)
        return apply("size_of", [x], span=span)
    return const(float(shapes.size(x.shape)), span)


@_macro("ndim", ("x",), "the rank of x", differentiable=False)
def _ndim(x, span):
    return const(float(len(_concrete_shape(x, "ndim", span))), span)


def _random_macro(name, doc):
    def build(ctx, args, kwargs, span):
        kwargs = dict(kwargs)
        if "seed" not in kwargs:
            kwargs["seed"] = const(float(ctx.next_seed()))
        inputs, attrs = bind(REGISTRY[name], args, kwargs, span)
        if attrs["seed"] < 0:
            raise BpValueError(f"{name}: seed= is a whole number from 0, got {attrs['seed']}", span)
        return apply(name, inputs, attrs, span)
    register_macro(Macro(name, build, f"{name}(shape…, seed=k)", doc, differentiable=False))


_random_macro("randn", "standard normal samples; the session's generator unless seed= is given")
_random_macro("rand", "uniform samples in [0, 1); the session's generator unless seed= is given")


def _range(ctx, args, kwargs, span):
    raise BpTypeError("range(n) can only be used in a for loop: for i in range(n) { … }", span)


register_macro(Macro("range", _range, "range(n)", "0, 1, …, n-1 in a for loop", False))

assert set(BUILTINS) >= {"sum", "exp", "mse", "zeros"}
