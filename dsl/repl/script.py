"""The session as a bp script, for `:save`: running it (`bp FILE` or
`:load FILE`) binds the same names to the same values.

Tensors are written as bp literals with every number at `repr` precision,
so they round-trip exactly; functions as the engine prints them (valid
bp, SPEC §5), which is the simplified formula: a function that calls
another is saved with the callee's body inlined, as it is now.
"""
from __future__ import annotations

import math

import numpy as np

from . import introspect


def session_script(interp) -> tuple[str, int]:
    """The script and how many bindings it makes.  Rebound constants (pi, e,
    inf, nan) come last, so the literals before them read the builtin ones."""
    first, last = [], []
    for name, value in interp.globals.items():
        if introspect.is_builtin_constant(name, value) or name == "ans":
            continue                              # ans: the REPL's last value, not a definition
        line = _definition(interp, name, value)
        (last if name in introspect.constants() else first).append(line)
    lines = ["# a bp session, saved by :save; run it with `bp FILE` or `:load FILE`"]
    return "\n".join(lines + first + last) + "\n", len(first) + len(last)


def _definition(interp, name: str, value) -> str:
    """`name = literal`, or for a def or lambda `def name(params) = body`: the
    engine prints a lambda without shape annotations, and only def has them."""
    text = literal(interp, value, top=True)
    if introspect.is_closure(value):
        names = introspect.param_names(value)
        head = names[0] if len(names) == 1 else f"({', '.join(names)})"
        if text.startswith(head + " -> "):
            body = text[len(head) + 4:]
            params = ", ".join(introspect.params(value))
            return f"def {name}({params}) " + (body if body.startswith("{") else f"= {body}")
    return f"{name} = {text}"


def literal(interp, value, top: bool = False) -> str:
    """bp source whose value is `value`."""
    if isinstance(value, np.ndarray):
        return _tensor(value)
    if isinstance(value, tuple):
        if not value:
            return "shape(0)"                      # the empty tuple has no literal
        inner = ", ".join(literal(interp, v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if introspect.kind(value) == "record":
        return "{" + ", ".join(f"{k}: {literal(interp, v)}" for k, v in value.items()) + "}"
    text = interp.format(value)                    # a function, as bp source
    return text if top else f"({text})"


def _tensor(a: np.ndarray) -> str:
    if a.size == 0:
        return f"zeros({', '.join(str(d) for d in a.shape)})"
    if a.ndim == 0:
        return _number(float(a))
    return "[" + ", ".join(_tensor(x) for x in a) + "]"


def _number(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 2**53 and x != 0:
        return str(int(x))
    return repr(x)                                 # shortest text that round-trips
