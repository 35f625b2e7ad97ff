"""What the REPL reads off the engine: keywords, builtins, transforms, and
short descriptions of session values (kind, shape, signature, fields).

The one module of dsl/repl that looks past the Interpreter's methods: it
reads the op registry, the value classes and `param_names` directly.
Nothing here decides what a program means: it reads names, signatures and
shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BpError, BpTypeError
from .. import ast as bp_ast
from .. import autodiff, ops
from ..interpreter import CONSTANTS, KEYWORDS
from ..lower import SPECIAL
from ..parser import parse
from ..values import Closure, Function, Record, Transform


@dataclass(frozen=True)
class BuiltinInfo:
    name: str
    signature: str
    doc: str
    differentiable: bool


def keywords() -> tuple[str, ...]:
    """The grammar's keywords (SPEC §2), as the engine lists them."""
    return tuple(KEYWORDS)


def transforms() -> tuple[str, ...]:
    """grad, jacobian, …, gradcheck: builtins that take functions (SPEC §5)."""
    return tuple(SPECIAL)


def constants() -> tuple[str, ...]:
    return tuple(CONSTANTS)


def builtins() -> dict[str, BuiltinInfo]:
    """Every builtin of the op registry, by name, in registry order."""
    return {name: BuiltinInfo(name, ops.signature(entry), entry.doc, entry.differentiable)
            for name, entry in ops.BUILTINS.items()}


def is_function(value) -> bool:
    return isinstance(value, Function)


def is_closure(value) -> bool:
    """A def or a lambda (not a builtin or a transform)."""
    return isinstance(value, Closure)


def param_names(fn) -> tuple[str, ...]:
    """The parameter names, as `wrt=` refers to them."""
    return tuple(autodiff.param_names(fn))


def is_builtin_constant(name: str, value) -> bool:
    """True for pi, e, inf, nan while they still hold their builtin value."""
    if name not in CONSTANTS or not isinstance(value, np.ndarray) or value.shape != ():
        return False
    want = CONSTANTS[name]
    return bool(value == want) or (np.isnan(want) and bool(np.isnan(value)))


def user_names(interp) -> list[str]:
    """The session's bindings in order, without the untouched builtin constants."""
    return [n for n, v in interp.globals.items() if not is_builtin_constant(n, v)]


def kind(value) -> str:
    if isinstance(value, np.ndarray):
        return "tensor"
    if isinstance(value, Function):
        return "function"
    if isinstance(value, Record):
        return "record"
    if isinstance(value, tuple):
        return "tuple"
    return type(value).__name__


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def params(fn) -> list[str]:
    """A function's parameters as written, with their shape annotations."""
    if isinstance(fn, Closure):
        return [p.name if p.shape is None else f"{p.name}: {shape_text(p.shape)}"
                for p in fn.params]
    if isinstance(fn, Transform):                 # the function's annotations, through it
        inner = fn
        while isinstance(inner, Transform):
            inner = inner.fn
        shapes = {p.name: p.shape for p in inner.params} if isinstance(inner, Closure) else {}
        return [n if shapes.get(n) is None else f"{n}: {shape_text(shapes[n])}"
                for n in autodiff.param_names(fn)]
    entry = ops.BUILTINS.get(getattr(fn, "name", ""))
    if entry is not None:
        inner = ops.signature(entry)
        return [p.strip() for p in inner[inner.index("(") + 1:-1].split(",") if p.strip()]
    return list(autodiff.param_names(fn))


def describe(value, name: str | None = None) -> str:
    """Shape of a tensor, signature of a function, and so on inside containers."""
    if isinstance(value, np.ndarray):
        return shape_text(value.shape)
    if isinstance(value, Function):
        head = name or getattr(value, "name", None) or ""
        if isinstance(value, Transform):
            head = name or value.kind
        return f"{head}({', '.join(params(value))})"
    if isinstance(value, Record):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(describe(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return kind(value)


def fields(value) -> list[str]:
    return value.keys() if isinstance(value, Record) else []


def field_path(interp, dotted: list[str]):
    """The value of `a.b.c` from the session's globals, or None."""
    value = interp.globals.get(dotted[0]) if dotted else None
    for part in dotted[1:]:
        if not isinstance(value, Record) or part not in value:
            return None
        value = value[part]
    return value


def value_of(interp, src: str, filename: str = "<repl>"):
    """The session value (not its Python conversion) of one expression.

    Raises the engine's BpError for a syntax error or a statement that is
    not a single expression, as `Interpreter.show` does.
    """
    try:
        program = parse(src, filename)
        single = len(program.stmts) == 1 and isinstance(program.stmts[0], bp_ast.ExprStmt)
    except BpError:
        single = False
    if not single:
        interp.show(src)                 # raises the engine's located error
        raise BpTypeError("expected a single expression")
    got: list = []
    interp.exec(src, filename=filename, echo=got.append)
    return got[0]
