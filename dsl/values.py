"""The kinds of bp values besides tensors: records and functions.

A tensor is a NumPy float64 array (0-d for a scalar), a tuple is a Python
tuple.  While a graph is being built the same containers hold Nodes
instead of arrays ("lowered values"); the classes here serve both.
"""
from __future__ import annotations

from typing import Any, Iterator

from . import ast
from .errors import BpTypeError, Span
from .struct import struct


class Record:
    """Named fields in the order written: {W: …, b: …}.  Immutable."""
    __slots__ = ("_fields",)
    kind_name = "a record"

    def __init__(self, fields: dict[str, Any]):
        self._fields = dict(fields)

    def __getitem__(self, name: str):
        return self._fields[name]

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    def keys(self) -> list[str]:
        return list(self._fields)

    def values(self) -> list:
        return list(self._fields.values())

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._fields.items())

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return "Record(" + ", ".join(f"{k}={v!r}" for k, v in self._fields.items()) + ")"


class Function:
    """Base of every function value; `kind_name` is for type errors."""
    kind_name = "a function"


@struct(frozen=False, compare=False, slots=False)
class Closure(Function):
    """A `def` or a lambda: parameters, a body, and the scope it was made in
    (None for top-level functions, which see globals late-bound)."""
    name: str | None
    params: tuple[ast.Param, ...]
    body: ast.Expr | ast.Block
    env: Any = None                       # lower.Scope of the enclosing function body
    span: Span | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


@struct(frozen=False, compare=False, slots=False)
class Builtin(Function):
    """A builtin used as a value: `f = exp`, `diff(tanh, 2)`."""
    name: str


@struct(frozen=False, compare=False, slots=False)
class Transform(Function):
    """A transform of a function (SPEC §5): grad(f), jacobian(f, wrt=…), …"""
    kind: str                             # "grad", "jacobian", …
    fn: Function
    options: tuple = ()                   # (("wrt", …), ("n", 2), …)
    span: Span | None = None


def leaves(lv) -> list:
    """The tensors of a (possibly nested) container, in order."""
    out, stack = [], [lv]
    while stack:
        x = stack.pop()
        if isinstance(x, tuple):
            stack.extend(reversed(x))
        elif isinstance(x, Record):
            stack.extend(reversed(x.values()))
        else:
            out.append(x)
    return out


def leaf_paths(lv) -> list[tuple]:
    """The path to each leaf of leaves(lv), in the same order: ("field", name) and
    ("item", i) steps from the container down."""
    out, stack = [], [(lv, ())]
    while stack:
        x, path = stack.pop()
        if isinstance(x, tuple):
            stack.extend(reversed([(y, path + (("item", i),)) for i, y in enumerate(x)]))
        elif isinstance(x, Record):
            stack.extend(reversed([(y, path + (("field", k),)) for k, y in x.items()]))
        else:
            out.append(path)
    return out


def follow(value, path: tuple):
    """The leaf of a container that `path` (from leaf_paths) leads to."""
    for kind, key in path:
        value = value[key]
    return value


def rebuild(template, it):
    """A container shaped like `template` whose leaves come from iterator `it`."""
    if isinstance(template, tuple):
        return tuple(rebuild(x, it) for x in template)
    if isinstance(template, Record):
        return Record({k: rebuild(v, it) for k, v in template.items()})
    return next(it)


@struct(frozen=False, compare=False, slots=False)
class HostFunction(Function):
    """A Python function made callable from bp by `Interpreter.define`.

    `fn` takes and returns NumPy arrays.  `vjp(*xs, out, ct)` gives one
    cotangent per argument; without it the function has no derivative.
    `shape(*shapes)` gives the output shape; by default the arguments'
    broadcast shape (an elementwise function).
    """
    name: str
    fn: Any
    params: tuple[str, ...]
    vjp: Any = None
    shape: Any = None


def bind_arguments(label: str, names: tuple[str, ...], args: list, kwargs: dict,
                   span: Span | None) -> dict:
    """Parameter name → argument, from positional then keyword arguments; every
    mistake (too many, unknown or repeated keyword, missing) a located type error."""
    plural = "s" * (len(names) != 1)
    if len(args) > len(names):
        raise BpTypeError(f"{label} takes {len(names)} argument{plural}, "
                          f"got {len(args) + len(kwargs)}", span)
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise BpTypeError(f"{label} has no parameter '{key}' (its parameters: "
                              f"{', '.join(names)})", span)
        if key in bound:
            raise BpTypeError(f"{label} got two values for '{key}'", span)
        bound[key] = value
    missing = [n for n in names if n not in bound]
    if missing:
        raise BpTypeError(f"{label} takes {len(names)} argument{plural}, got {len(bound)} "
                          f"(missing {', '.join(missing)})", span)
    return bound
