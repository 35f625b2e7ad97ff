"""The IR: immutable Nodes made through a hash-consing table, and walks.

A Node is an op name, input nodes, static attributes and a shape.  Nodes
are interned: making the same (op, inputs, attrs) twice gives the same
object, which is common-subexpression elimination for free.  Every walk
here is an explicit-stack loop, never recursion over graph depth.  This
module knows no op meanings (those live in dsl/ops/) and no NumPy kernels.
"""
from __future__ import annotations

import gc
import itertools
import weakref
from contextlib import contextmanager
from typing import Any, Iterable

from .errors import Span
from .struct import struct

_uid = itertools.count(1)


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while a graph is built (as it was).

    A build makes no reference cycles but millions of objects, and each of the
    collector's full passes walks every object alive: the gradient of a chain of 10⁴
    tanh spent 1.3 s of its 3.4 s build in 8 full collections that freed nothing.
    Reference counting still frees everything a build drops; what cycles a build
    does make (an exception's traceback) are collected once it is over.  Nested
    and concurrent builds leave the collector to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@struct(compare=False, weakref=True)
class Node:
    op: str
    inputs: tuple[Node, ...]
    attrs: tuple[tuple[str, Any], ...]      # sorted (name, value) pairs, hashable
    shape: Any                               # tuple[int, ...] or shapes.SymShape
    span: Span | None = None
    value: Any = None                                 # the array of a `const` node
    origin: str = "f"                                 # "f": written by the user; "d": built by a derivative

    def __init__(self, op, inputs, attrs, shape, span=None, value=None, origin="f"):
        # Written out (struct's shared __init__ loops over the fields): building a
        # graph makes one Node per op, and this is a fifth of a large build's time.
        setattr_ = object.__setattr__
        setattr_(self, "op", op)
        setattr_(self, "inputs", inputs)
        setattr_(self, "attrs", attrs)
        setattr_(self, "shape", shape)
        setattr_(self, "span", span)
        setattr_(self, "value", value)
        setattr_(self, "origin", origin)

    def attr(self, name: str, default=None):
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    def __repr__(self) -> str:
        return f"<{self.op} {self.shape} #{id(self) & 0xffff:x}>"


_TABLE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def intern(op: str, inputs: tuple[Node, ...], attrs: tuple, shape, span: Span | None = None,
           value=None, value_key=None, origin: str = "f") -> Node:
    """The unique node for (op, inputs, attrs[, value_key]); the first span wins.

    While a node lives its inputs live, so their ids in the key cannot be
    reused; a dead node drops out of the table by itself.
    """
    key = (op, tuple(map(id, inputs)), attrs, value_key)
    node = _TABLE.get(key)
    if node is None:
        node = Node(op, inputs, attrs, shape, span, value, origin)
        _TABLE[key] = node
    return node


def make_input(name: str, shape, span: Span | None = None, path: tuple = ()) -> Node:
    """A fresh graph input (a parameter); never shared with another.

    An input that stands for a global's leaf carries the global's name and, for a
    leaf of a container, the path to it: ("field", "a") and ("item", 1) steps, so
    that printing and export can name `P.a` or `T[1]`, not the whole of P or T."""
    attrs = (("name", name), ("uid", next(_uid))) + ((("path", path),) if path else ())
    return intern("input", (), attrs, shape, span)


def topo_order(outputs: Iterable[Node]) -> list[Node]:
    """Every node reachable from `outputs`, inputs before the nodes using them."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        seen.add(id(root))
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                child = node.inputs[i]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


class Graph:
    """A function's graph: its inputs, its outputs, and the nodes between."""

    def __init__(self, inputs: list[Node], outputs: list[Node]):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes = topo_order(self.outputs)

    def __len__(self) -> int:
        return len(self.nodes)

    def count_by_origin(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            if node.op not in ("input", "const"):
                counts[node.origin] = counts.get(node.origin, 0) + 1
        return counts


def use_counts(order: list[Node], outputs: Iterable[Node]) -> dict[int, int]:
    """How many times each node of `order` is read: by the nodes after it, and once
    for each time it is an output (what printing binds to a name when more than 1)."""
    uses: dict[int, int] = {}
    for node in order:
        for i in node.inputs:
            uses[id(i)] = uses.get(id(i), 0) + 1
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 1
    return uses
