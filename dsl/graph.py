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
from _weakref import _remove_dead_weakref
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
    and concurrent builds leave the collector to the outermost.

    What a build leaves alive (the plan, the graph it was made from) is long-lived,
    and goes straight to the collector's oldest generation (promote_survivors),
    where its young passes would have moved it had they run: else the first young
    pass after the build walked all of it (0.6 s of the 9.5 s gradient of a chain
    of 10⁵ tanh)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    except BaseException:
        gc.enable()
        raise
    promote_survivors()
    gc.enable()


def promote_survivors() -> None:
    """Move every object the collector tracks into its oldest generation, without a
    pass over them (gc.freeze then gc.unfreeze; not when a program holds objects
    frozen itself, whose freeze this would undo).  For the end of a build that ran
    with the collector off: the objects it made all sit in the youngest generation,
    and the next young pass would walk every one, to find them alive.  Garbage in a
    cycle among them waits for a full collection instead of a young one."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


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
        # Written out (struct's shared __init__ loops over the fields), through the
        # slots' own setters (object.__setattr__ looks each name up first): building a
        # graph makes one Node per op.  intern makes its nodes the same way, inline.
        _set_op(self, op)
        _set_inputs(self, inputs)
        _set_attrs(self, attrs)
        _set_shape(self, shape)
        _set_span(self, span)
        _set_value(self, value)
        _set_origin(self, origin)

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


assert Node._fields == ("op", "inputs", "attrs", "shape", "span", "value", "origin")
_set_op, _set_inputs, _set_attrs, _set_shape, _set_span, _set_value, _set_origin = (
    Node.__dict__[name].__set__ for name in Node._fields)
_new_node = object.__new__


class _Ref(weakref.ref):
    """A weak reference to an interned node that knows its key in the table."""
    __slots__ = ("key",)


class _Table(dict):
    """The hash-consing table: key → a weak reference to its node (a plain dict: a
    WeakValueDictionary's get and set are Python-level calls, and each of its KeyedRefs
    runs two more; a large build interns 10⁵ nodes).  A dead node's entry removes
    itself through `_remove` (replaceable, as a WeakValueDictionary's is), which deletes
    it only while it still holds that dead reference, never a live successor's."""
    __slots__ = ("_remove",)

    def __init__(self):
        super().__init__()

        def remove(wr, table=self, delete=_remove_dead_weakref):
            delete(table, wr.key)
        self._remove = remove


_TABLE = _Table()


def intern(op: str, inputs: tuple[Node, ...], attrs: tuple, shape, span: Span | None = None,
           value=None, value_key=None, origin: str = "f") -> Node:
    """The unique node for (op, inputs, attrs[, value_key]); the first span wins.

    While a node lives its inputs live, so their ids in the key cannot be
    reused; a dead node drops out of the table by itself.
    """
    key = (op, tuple(map(id, inputs)), attrs, value_key)
    ref = _TABLE.get(key)
    if ref is not None:
        node = ref()
        if node is not None:
            return node
    node = _new_node(Node)               # Node(…), without the call of its __init__
    _set_op(node, op)
    _set_inputs(node, inputs)
    _set_attrs(node, attrs)
    _set_shape(node, shape)
    _set_span(node, span)
    _set_value(node, value)
    _set_origin(node, origin)
    ref = _Ref(node, _TABLE._remove)
    ref.key = key
    _TABLE[key] = ref
    return node


def make_input(name: str, shape, span: Span | None = None, path: tuple = ()) -> Node:
    """A fresh graph input (a parameter); never shared with another.

    An input that stands for a global's leaf carries the global's name and, for a
    leaf of a container, the path to it: ("field", "a") and ("item", 1) steps, so
    that printing and export can name `P.a` or `T[1]`, not the whole of P or T."""
    attrs = (("name", name), ("uid", next(_uid))) + ((("path", path),) if path else ())
    return intern("input", (), attrs, shape, span)


def topo_order(outputs: Iterable[Node]) -> list[Node]:
    """Every node reachable from `outputs`, inputs before the nodes using them.

    Depth first, inputs left to right, each node after its inputs: the order of the
    recursive walk, kept on an explicit stack of (node, iterator over its inputs)
    pairs.  The loop over an iterator resumes where it stopped when the walk comes
    back up to its node, so each edge is looked at once; a leaf is placed when it
    is reached, never pushed.  (Twice as fast as a stack of (node, index) tuples
    remade at each step: topo_order walks every graph a build makes.)"""
    order: list[Node] = []
    append = order.append
    seen: set[Node] = set()          # nodes hash by identity
    add = seen.add
    stack: list = []                 # node, iterator, node, iterator, …
    push = stack.append
    pop = stack.pop
    for root in outputs:
        if root in seen:
            continue
        add(root)
        node, rest = root, iter(root.inputs)
        while True:
            for child in rest:
                if child not in seen:
                    add(child)
                    if child.inputs:
                        push(node)
                        push(rest)
                        node, rest = child, iter(child.inputs)
                        break
                    append(child)
            else:
                append(node)
                if not stack:
                    break
                rest = pop()
                node = pop()
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
