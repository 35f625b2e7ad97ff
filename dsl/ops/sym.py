"""Small builders that derivative rules are written with.

Each is one `apply` of a registered op, so a rule only ever builds graph
nodes — never NumPy — and its result can be differentiated again.
"""
from __future__ import annotations

from ..graph import Node
from . import apply, const


def c(x: float) -> Node:
    return const(x)


def add(a, b):
    return b if a is None else a if b is None else apply("add", [a, b])


def sub(a, b):
    return apply("sub", [a, b])


def mul(a, b):
    return apply("mul", [a, b])


def div(a, b):
    return apply("div", [a, b])


def neg(a):
    return apply("neg", [a])


def pow_(a, b):
    return apply("pow", [a, b])


def op(name: str, *inputs, **attrs):
    return apply(name, list(inputs), attrs)


def unbroadcast(g, like):
    """Sum g down to like's shape (the adjoint of broadcasting)."""
    return apply("unbroadcast", [g, like])


def broadcast_like(g, like):
    return apply("broadcast_like", [g, like])


def sum_(x, axis=None, keepdims=False):
    return apply("sum", [x], {"axis": axis, "keepdims": keepdims})


def where(cond, a, b):
    return apply("where", [cond, a, b])


def transpose(x, axes=None):
    return apply("transpose", [x], {"axes": axes})
