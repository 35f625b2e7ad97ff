"""The op registry, and the builder that makes nodes through it.

Everything about one operation lives in one `OpDef`: its bp name and
parameters, its shape rule, its NumPy kernel, its derivative rules (VJP
and JVP, graph-building code), its batching rules (dsl/ops/batched.py says
their form; dsl/batching.py runs them), the NumPy source `export` writes
for it and the helpers that source needs (dsl/codegen.py writes them), how
it prints, and its doc line.  docs/design.md, "Adding an op", lists what an
entry holds.  `apply` is the one way to make an op node: it infers the
shape (raising located shape errors), folds constants, and interns.
Builtins that are not one op (`mse`, `clip`, `shape`, …) are `Macro`s:
graph-building functions over registered ops.
"""
from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from .. import shapes
from ..errors import BpError, BpInterrupted, BpShapeError, BpTypeError, BpValueError, Span
from ..graph import Node, intern
from ..struct import struct

# ── how an op prints (SPEC §3 precedence levels) ─────────────────────────


@struct
class Infix:
    symbol: str
    prec: int
    assoc: str = "left"          # "left", "right" or "none"


@struct
class Prefix:
    symbol: str
    prec: int


@struct
class CallForm:
    name: str
    index: str | None = None     # an attribute that indexes the call's result: the parts of a
                                 # decomposition print as eigh(A)[1] (index="part")
    first: str | None = None     # an attribute written before the operands, as NumPy orders
                                 # them: einsum("ij,j->i", A, x) (first="spec")


@struct
class Attr:
    """A static argument: must be a constant when the call is built."""
    name: str
    kind: str                    # "int", "axes", "flag", "float", "shape", "perm"
    default: Any = None
    required: bool = False


@struct
class Jax:
    """An op's own JAX form: `code` as `OpDef.export` (a template or (args, attrs) ->
    source) and the preamble code it calls; or, with `code` None, `why` there is none."""
    code: str | Callable | None = None
    helpers: tuple = ()
    why: str = ""


@struct
class OpDef:
    name: str
    kernel: Callable                       # (*arrays, **attrs) -> ndarray
    shape: Callable                        # (input shapes, attrs, span) -> shape
    params: tuple[str, ...] = ("x",)       # bp names of the tensor inputs
    attrs: tuple[Attr, ...] = ()
    variadic: bool = False                 # params[0] takes any number of tensors
    vjp: Callable | None = None            # (ct, out, inputs, attrs) -> cotangent per input (None: zero)
    jvp: Callable | None = None            # (tangents, out, inputs, attrs) -> tangent of out (None: zero)
    # (series of the inputs, out, inputs, attrs, n) -> series of out: each a list of n + 1
    # Taylor coefficients as nodes, None for zero (dsl/ops/series.py); None: the op is
    # linear in its moving inputs, and dsl/taylor.py applies its jvp to each coefficient
    taylor: Callable | None = None
    fold: Callable | None = None           # (inputs, attrs, shape) -> an equal, simpler node, or None
    differentiable: bool = True            # False: no gradient flows (comparisons, constructors)
    fmt: Infix | Prefix | CallForm | None = None
    builtin: bool = True                   # callable from bp under `name`
    doc: str = ""
    # (node, ins, m) -> the batched node (dsl/ops/batched.py); a str says why there is none
    batch: Callable | str | None = None
    banded: Callable | None = None         # (node, bands) -> bands, for an identity seed kept as bands
    # The NumPy source export writes: a template ("np.exp({0})": {0}, {1}, … the operands'
    # code, {axis}, … the attributes, defaults filled in), or (args, attrs) -> source.
    export: str | Callable | None = None
    helpers: tuple = ()                    # what that source calls: module-preamble code, each a
                                           # str or a function (its own source is written)
    # The JAX form (`export … as jax`, the JAX engine; dsl/codegen.py): None where it is the
    # export above with jax.numpy for NumPy (`np.` read as `jnp.`, helpers included); else a
    # template of the same kind written with jnp/jax.lax, or a `Jax` (a template and its helpers,
    # or why the op has none)
    jax: "str | Callable | Jax | None" = None

    @property
    def form(self):
        return self.fmt or CallForm(self.name)


@struct
class Macro:
    """A builtin written as graph-building code over registered ops."""
    name: str
    build: Callable                        # (ctx, args, kwargs, span) -> lowered value
    signature: str
    doc: str = ""
    differentiable: bool = True


REGISTRY: dict[str, OpDef] = {}
BUILTINS: dict[str, OpDef | Macro] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.name in REGISTRY:
        raise RuntimeError(f"op {opdef.name!r} registered twice")
    REGISTRY[opdef.name] = opdef
    if opdef.builtin:
        BUILTINS[opdef.name] = opdef
    return opdef


def register_macro(macro: Macro) -> Macro:
    BUILTINS[macro.name] = macro
    return macro


def signature(entry: OpDef | Macro) -> str:
    """How bp spells a builtin's call: `sum(x, axis=None, keepdims=0)`."""
    if isinstance(entry, Macro):
        return entry.signature
    parts = [f"{entry.params[0]}…" if entry.variadic else p for p in entry.params]
    after_shape = False
    for a in entry.attrs:
        if a.kind == "shape":
            parts.append("shape…")
            after_shape = True
        elif a.required and not after_shape:
            parts.append(a.name)
        elif a.required:
            parts.append(f"{a.name}=…")               # after shape… only as a keyword
        else:
            parts.append(f"{a.name}={_fmt_default(a.default)}")
    return f"{entry.name}({', '.join(parts)})"


def _fmt_default(v) -> str:
    if isinstance(v, bool):
        return str(int(v))
    return "None" if v is None else str(v)


# ── the builder ──────────────────────────────────────────────────────────

@struct(slots=False)             # the defaults stay readable as Limits.max_depth, …
class Limits:
    """What one statement may build: defaults that protect a laptop."""
    max_elements: int = 10**8          # elements of one tensor (800 MB of float64)
    max_nodes: int = 5_000_000         # graph nodes one statement may build
    max_unroll: int = 1_000_000        # steps of a for loop unrolled in a function
    max_depth: int = 1000              # nesting of the source
    check_nan: bool = False            # stop at the first nan/inf made from finite inputs
    max_iterations: int = 1_000_000    # iterations of one loop node (a while loop's cap)


class _Active(threading.local):
    """The running session's limits and interrupt flag (one Interpreter per thread)."""

    def __init__(self):
        self.limits = Limits()
        self.nodes = 0
        self.interrupt: threading.Event | None = None
        self.building: list[tuple[str, Span | None]] = [("f", None)]   # origin, span
        self.plain = 0                   # > 0: arithmetic is built as written (plain_arithmetic)
        self.to_run = 0                  # > 0: a graph built to be run, not read (built_to_run)


ACTIVE = _Active()


def limit_error(what: str, limit: str, value, span: Span | None) -> BpValueError:
    flag = "--" + limit.replace("_", "-")
    return BpValueError(f"{what}, more than the limit of {value:,} ({limit}; raise it with "
                        f"Interpreter({limit}=…) or {flag})", span)


def check_size(shape: tuple, span: Span | None) -> tuple:
    n = shapes.size(shape)
    cap = ACTIVE.limits.max_elements
    if n > cap:
        count = f"{float(n):.3g}" if n < 1e300 else "more than 1e300"
        raise limit_error(f"a tensor of shape {shapes.fmt(shape)} would have {count} elements",
                          "max_elements", cap, span)
    return shape


def check_interrupt(span: Span | None = None) -> None:
    flag = ACTIVE.interrupt
    if flag is not None and flag.is_set():
        flag.clear()
        raise BpInterrupted("the statement was interrupted", span)


_SCALARS: dict[float, Node] = {}      # const(c) of a nonzero float c: the algebra's coefficients


def const(value, span: Span | None = None) -> Node:
    """A constant node; small constants are shared by value."""
    if type(value) is float and value == value and value != 0:    # not nan, not ±0
        node = _SCALARS.get(value)
        if node is not None:
            return node
        if len(_SCALARS) >= 4096:
            _SCALARS.clear()
        arr = np.asarray(value, dtype=np.float64)
        node = _SCALARS[value] = intern("const", (), (), (), span, value=arr,
                                        value_key=((), arr.tobytes()))
        return node
    arr = np.asarray(value, dtype=np.float64)
    if arr.size <= 16:
        key = (arr.shape, arr.tobytes())
    else:
        key = ("id", id(arr))
    return intern("const", (), (), arr.shape, span, value=arr, value_key=key)


# Nodes that a derivative rule builds take the forward node's span (so errors
# point at user code) and origin "d" (so displays can mark them).


class building:
    """`with building(origin, span):` nodes made inside take this origin and span by
    default (a class, not a generator: a derivative's build enters one per rule)."""
    __slots__ = ("where",)

    def __init__(self, origin: str, span: Span | None):
        self.where = (origin, span)

    def __enter__(self):
        ACTIVE.building.append(self.where)

    def __exit__(self, *exc):
        ACTIVE.building.pop()
        return False


@contextmanager
def plain_arithmetic():
    """Build + - * / ^ as written, without the algebra's canonical forms (folds still
    apply): for graphs whose structure is already the economical one, such as Taylor
    mode's recurrences, where expanding each coefficient into monomials of the atoms
    repeats work the recurrence shares (diff(x -> x^x, 8): 354 plan steps, 133 as
    written)."""
    ACTIVE.plain += 1
    try:
        yield
    finally:
        ACTIVE.plain -= 1


@contextmanager
def built_to_run():
    """A graph built to be run, not read (a plan's): where the algebra's canonical form
    is exactly as big as the expression as written and nothing collects, the expression
    stays as written; a graph to be printed takes the canonical form then too, so short
    formulas print in one order.  (A tie is a third of the algebra's work on an unrolled
    sum, and a plan gains nothing from it.)"""
    ACTIVE.to_run += 1
    try:
        yield
    finally:
        ACTIVE.to_run -= 1


def apply(name: str, inputs, attrs: dict | None = None, span: Span | None = None,
          origin: str | None = None) -> Node:
    """Make (or find) the node `name(inputs; attrs)`.

    Constants fold, and the op's `fold` hook applies the identities
    (x*1 → x, x+0 → x, --x → x, …) as the node is built, so no later pass
    is needed and a zero never becomes a chain of nodes.
    """
    opdef = REGISTRY[name]
    attrs = attrs or {}
    if type(inputs) is not tuple:
        inputs = tuple(inputs)
    active = ACTIVE
    if origin is None or span is None:
        default_origin, default_span = active.building[-1]
        origin = origin or default_origin
        span = span or default_span
    shape = opdef.shape([i.shape for i in inputs], attrs, span)
    count = active.nodes = active.nodes + 1
    if count > active.limits.max_nodes:
        raise limit_error("this statement builds too many graph nodes", "max_nodes",
                          active.limits.max_nodes, span)
    if not count & 1023:
        check_interrupt(span)
    if type(shape) is tuple and shape:
        check_size(shape, span)
    for i in inputs:                                  # all constant (or none): fold
        if i.op != "const":
            break
    else:
        return const(run_kernel(opdef, [i.value for i in inputs], attrs, span), span)
    if opdef.fold is not None:
        folded = opdef.fold(inputs, attrs, shape)
        if folded is not None:
            return folded
    key = tuple(sorted(attrs.items())) if attrs else ()
    if name in _ARITHMETIC and not active.plain:
        return _normalize(name, inputs, shape,
                          lambda: intern(name, inputs, key, shape, span, origin=origin),
                          origin, span)
    return intern(name, inputs, key, shape, span, origin=origin)


_ARITHMETIC = frozenset(("add", "sub", "mul", "div", "neg", "pow"))


def zeros(shape, like: Node | None = None) -> Node:
    """A zero of `shape`: a constant when the shape is known, else 0*like."""
    if isinstance(shape, tuple):
        return const(np.zeros(shape))
    return apply("zeros_like", [like])


def is_const_value(node: Node, value: float) -> bool:
    if node.op != "const":
        return False
    v = node.value
    if v.ndim == 0:
        return float(v) == value
    return v.size > 0 and bool((v == value).all())


def run_kernel(opdef: OpDef, arrays, attrs: dict, span: Span | None):
    """Call a kernel; NumPy's complaints become located value errors."""
    kernel = opdef.kernel
    try:
        if isinstance(kernel, np.ufunc):             # warns only through errstate
            with np.errstate(all="ignore"):
                out = kernel(*arrays, **attrs)
        else:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")      # NaN and inf are values, not warnings
                out = kernel(*arrays, **attrs)
    except BpError as err:
        raise err.located(span)
    except np.linalg.LinAlgError as err:
        raise BpValueError(f"{opdef.name}: {str(err).lower()}", span) from None
    except (ValueError, IndexError, TypeError, MemoryError, OverflowError) as err:
        raise BpValueError(f"{opdef.name}: {err}", span) from None
    out = np.asarray(out, dtype=np.float64)
    if ACTIVE.limits.check_nan and not np.all(np.isfinite(out)) \
            and all(np.all(np.isfinite(a)) for a in arrays):
        bad = "nan" if np.any(np.isnan(out)) else "inf"
        what = "a derivative of this expression" if ACTIVE.building[-1][0] == "d" else "this expression"
        raise BpValueError(f"{opdef.name} gave {bad} from finite inputs in {what} (--check-nan)",
                           span)
    return out


# ── static arguments ─────────────────────────────────────────────────────

def static_value(lv, what: str, span: Span | None) -> np.ndarray:
    """The value of an argument that must be known when the graph is built."""
    if isinstance(lv, Node):
        if lv.op == "const":
            return lv.value
        raise BpValueError(f"{what} must be a constant known when the function is built, "
                           f"not a value computed from its parameters", span)
    raise BpTypeError(f"{what} must be a number, got {describe(lv)}", span)


def static_int(lv, what: str, span: Span | None) -> int:
    v = static_value(lv, what, span)
    if v.ndim != 0:
        raise BpValueError(f"{what} must be a single number, got shape {shapes.fmt(v.shape)}", span)
    x = float(v)
    if not np.isfinite(x) or x != int(x):
        raise BpValueError(f"{what} must be a whole number, got {x:g}", span)
    return int(x)


def static_ints(lv, what: str, span: Span | None) -> tuple[int, ...]:
    """An int or a tuple of ints (a tuple lowers to a Python tuple of nodes)."""
    if isinstance(lv, tuple):
        return tuple(static_int(x, what, span) for x in lv)
    v = static_value(lv, what, span)
    if v.ndim == 0:
        return (static_int(lv, what, span),)
    if v.ndim == 1:
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            raise BpValueError(f"{what} must be whole numbers", span)
        return tuple(int(x) for x in v)
    raise BpValueError(f"{what} must be a number or a tuple of numbers", span)


def describe(lv) -> str:
    """What kind of value `lv` is, for type errors."""
    if isinstance(lv, (Node, np.ndarray)):
        return "a scalar" if lv.shape == () else f"a tensor of shape {shapes.fmt(lv.shape)}"
    if isinstance(lv, tuple):
        return f"a tuple of {len(lv)}"
    if isinstance(lv, str):
        return "a string"
    kind = getattr(lv, "kind_name", None)
    return kind or type(lv).__name__


MAX_PIECES = 10_000    # rows of one tensor argument taken as the pieces of concat/stack


def _pieces(name: str, x, span) -> list:
    """The pieces of concat(x) or stack(x) with one argument, as NumPy takes one: a tuple
    is the sequence; a tensor is the sequence of its rows (np.concatenate(A) joins A's
    rows), so concat([a, b]), a list literal of equal pieces, is concat(a, b)."""
    if isinstance(x, tuple):
        if not x:
            raise BpTypeError(f"{name} needs at least one tensor, got an empty sequence", span)
        return list(x)
    if not isinstance(x, Node) or x.shape == ():
        return [x]
    if x.op == "stack" and x.attr("axis", 0) == 0:
        return list(x.inputs)
    if isinstance(x.shape, tuple) and x.shape[0] == 0:
        raise BpTypeError(f"{name} needs at least one tensor, got an empty sequence", span)
    if not isinstance(x.shape, tuple):
        raise BpTypeError(f"{name} of one tensor joins its rows, and this one's shape is known only "
                          f"at the call: pass the pieces, {name}(a, b, …)", span)
    if x.shape[0] > MAX_PIECES:
        raise BpValueError(f"{name} of one tensor joins its rows, and it has {x.shape[0]:,} "
                           f"(more than {MAX_PIECES:,}): reshape it instead", span)
    return [apply("index", [x], {"items": (("i", i),)}, span) for i in range(x.shape[0])]


def bind(opdef: OpDef, args: list, kwargs: dict, span: Span | None) -> tuple[list[Node], dict]:
    """Match a builtin call's arguments to the op's tensor inputs and attributes."""
    if not kwargs and not opdef.attrs and not opdef.variadic and len(args) == len(opdef.params) \
            and all(type(lv) is Node for lv in args):
        return list(args), {}                # tanh(x): each argument its input, as below
    args = list(args)
    inputs: list = []
    attrs: dict = {}
    shape_attr = next((a for a in opdef.attrs if a.kind == "shape"), None)
    if opdef.variadic:
        inputs, args = args, []
        if not inputs:
            raise BpTypeError(f"{opdef.name} needs at least one tensor", span)
        if len(inputs) == 1 and opdef.builtin:
            inputs = _pieces(opdef.name, inputs[0], span)
    elif shape_attr is not None:
        n = len(opdef.params)
        inputs, args = args[:n], args[n:]
        if len(inputs) < n:
            raise BpTypeError(f"{signature(opdef)} is missing its argument '{opdef.params[len(inputs)]}'",
                              span)
        if args:
            attrs[shape_attr.name] = _shape_arg(args, span)
            args = []
    else:
        for p in opdef.params:
            if args:
                inputs.append(args.pop(0))
            elif p in kwargs:
                inputs.append(kwargs.pop(p))
            else:
                raise BpTypeError(f"{signature(opdef)} is missing its argument '{p}'", span)
    for a in opdef.attrs:
        if a.kind == "shape":
            if a.name in kwargs:
                attrs[a.name] = _shape_arg([kwargs.pop(a.name)], span)
            elif a.name not in attrs:
                if a.required:
                    raise BpTypeError(f"{signature(opdef)} needs a shape", span)
                attrs[a.name] = a.default
            continue
        if args:
            lv = args.pop(0)
        elif a.name in kwargs:
            lv = kwargs.pop(a.name)
        elif a.required:
            raise BpTypeError(f"{signature(opdef)} is missing its argument '{a.name}'", span)
        else:
            attrs[a.name] = a.default
            continue
        attrs[a.name] = _attr_value(a, lv, span)
    if args:
        raise BpTypeError(f"{signature(opdef)} takes {len(opdef.params) + len(opdef.attrs)} "
                          f"arguments, got more", span)
    if kwargs:
        name = next(iter(kwargs))
        raise BpTypeError(f"{opdef.name} has no argument '{name}'; its signature is "
                          f"{signature(opdef)}", span)
    for lv in inputs:
        if not isinstance(lv, Node):
            raise BpTypeError(f"{opdef.name} expects a tensor, got {describe(lv)}", span)
    return inputs, attrs


def _shape_arg(args: list, span) -> tuple[int, ...]:
    """`zeros(3, 2)` and `zeros((3, 2))` both give (3, 2)."""
    dims: list[int] = []
    for lv in args:
        dims.extend(static_ints(lv, "a shape", span))
    for d in dims:
        if d < 0 and d != -1:
            raise BpValueError(f"a shape cannot have a negative dimension ({d})", span)
    return tuple(dims)


def _attr_value(a: Attr, lv, span):
    what = f"'{a.name}'"
    if a.kind == "int":
        return static_int(lv, what, span)
    if a.kind == "flag":
        v = static_int(lv, what, span)
        if v not in (0, 1):
            raise BpValueError(f"{what} is a flag: 1 or 0, got {v}", span)
        return bool(v)
    if a.kind == "float":
        v = static_value(lv, what, span)
        if v.ndim != 0:
            raise BpValueError(f"{what} must be a single number", span)
        return float(v)
    if a.kind in ("axes", "perm"):
        return static_ints(lv, what, span)
    raise AssertionError(a.kind)


# The op families register themselves on import, in this order.
from . import elementwise, reduce, linalg, shape, nn, construct, macros, host  # noqa: E402,F401
from . import special, triangle, ufuncs, scan  # noqa: E402,F401
from . import decomp  # noqa: E402,F401
from . import gather  # noqa: E402,F401
from . import conv  # noqa: E402,F401
from . import arrange, contract  # noqa: E402,F401
from .algebra import normalize as _normalize  # noqa: E402  (needs the registry above)
