"""Values and functions as bp text (SPEC §1).

Tensors print as bp literals with `precision` significant digits, whole
numbers without a fraction, summarised NumPy-style past 1000 elements.
Functions print as bp source that parses back to the same function: a
lambda or def prints its parameters and body, one bracket rule deciding
every parenthesis (the SPEC §3 precedence levels).
"""
from __future__ import annotations

import math

import numpy as np

from . import ast
from .values import Builtin, Closure, Function, Record, Transform

SUMMARY_THRESHOLD = 1000
EDGE_ITEMS = 3
LINE_WIDTH = 80


# ── values ───────────────────────────────────────────────────────────────

def format_number(x: float, precision: int = 8) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e15:
        return "-0" if x == 0 and math.copysign(1, x) < 0 else str(int(x))
    return f"{x:.{precision}g}"


def format_value(v, precision: int = 8) -> str:
    """Any bp value as text; containers recurse (they are shallow)."""
    if isinstance(v, np.ndarray) or isinstance(v, (float, int, np.floating)):
        return format_tensor(np.asarray(v, dtype=np.float64), precision)
    if isinstance(v, tuple):
        inner = ", ".join(format_value(x, precision) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, Record):
        return "{" + ", ".join(f"{k}: {format_value(x, precision)}" for k, x in v.items()) + "}"
    if isinstance(v, Function):
        return format_function(v)
    if isinstance(v, str):
        return v
    return str(v)


def format_tensor(a: np.ndarray, precision: int = 8) -> str:
    if a.ndim == 0:
        return format_number(a, precision)
    summarise = a.size > SUMMARY_THRESHOLD
    flat = [format_number(x, precision) for x in _shown(a, summarise)]
    one_line = _nest(a.shape, iter(flat), summarise, width=0, indent=0, multiline=False)
    if a.ndim < 2 or len(one_line) <= LINE_WIDTH:
        return one_line
    width = max(len(s) for s in flat)
    return _nest(a.shape, iter(flat), summarise, width=width, indent=0, multiline=True)


def _shown(a: np.ndarray, summarise: bool):
    """The elements that will be printed, in order (edges only when summarising)."""
    if not summarise:
        return a.ravel()
    idx = [np.r_[0:min(n, EDGE_ITEMS)] if n <= 2 * EDGE_ITEMS
           else np.r_[0:EDGE_ITEMS, n - EDGE_ITEMS:n] for n in a.shape]
    return a[np.ix_(*idx)].ravel()


def _nest(shape, it, summarise, width, indent, multiline) -> str:
    n = shape[0]
    positions = list(range(n))
    if summarise and n > 2 * EDGE_ITEMS:
        positions = list(range(EDGE_ITEMS)) + [None] + list(range(n - EDGE_ITEMS, n))
    parts = []
    for p in positions:
        if p is None:
            parts.append("...")
        elif len(shape) == 1:
            parts.append(next(it).rjust(width))
        else:
            parts.append(_nest(shape[1:], it, summarise, width, indent + 1, multiline))
    if multiline and len(shape) > 1:
        sep = "," + "\n" * (len(shape) - 1) + " " * (indent + 1)
        return "[" + sep.join(parts) + "]"
    return "[" + ", ".join(parts) + "]"


# ── functions, from their AST ────────────────────────────────────────────

def format_function(fn: Function) -> str:
    match fn:
        case Closure(params=params, body=body):
            return format_lambda(params, body)
        case Builtin(name):
            return name
        case Transform(kind, inner, options):
            args = [_fn_ref(inner)] + [f"{k}={_format_option(v)}" for k, v in options]
            if kind == "diff" and options:
                args = [_fn_ref(inner)] + [str(v) for k, v in options if k == "n"]
            return f"{kind}({', '.join(args)})"
    return f"<{type(fn).__name__}>"


def _fn_ref(fn: Function) -> str:
    if isinstance(fn, Closure) and fn.name:
        return fn.name
    text = format_function(fn)
    return f"({text})" if isinstance(fn, Closure) else text


def _format_option(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def format_lambda(params, body) -> str:
    names = [p.name for p in params]
    head = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
    if isinstance(body, ast.Block):
        return f"{head} -> {format_block(body)}"
    return f"{head} -> {format_expr(body)}"


def format_block(block: ast.Block) -> str:
    return "{ " + "; ".join(format_stmt(s) for s in block.stmts) + " }"


def format_stmt(s) -> str:
    match s:
        case ast.Assign(targets, value):
            return f"{', '.join(targets)} = {format_expr(value)}"
        case ast.Return(value):
            return f"return {format_expr(value)}"
        case ast.Def(name, params, body):
            head = f"def {name}({', '.join(_param(p) for p in params)})"
            if isinstance(body, ast.Block):
                return f"{head} {format_block(body)}"
            return f"{head} = {format_expr(body)}"
        case ast.For(var, it, body):
            return f"for {var} in {format_expr(it)} {format_block(body)}"
        case ast.ExprStmt(value):
            return format_expr(value)
    raise AssertionError(type(s).__name__)


def _param(p: ast.Param) -> str:
    if p.shape is None:
        return p.name
    return f"{p.name}: [{', '.join(map(str, p.shape))}]"


_BINARY_PREC = {"or": 3, "and": 4, "<": 6, "<=": 6, ">": 6, ">=": 6, "==": 6, "!=": 6,
                "+": 7, "-": 7, "*": 8, "/": 8, "@": 8, "^": 10}


def precedence(e) -> int:
    match e:
        case ast.Lambda():
            return 1
        case ast.IfExpr():
            return 2
        case ast.BinOp(op):
            return _BINARY_PREC[op]
        case ast.Unary(op):
            return 5 if op == "not" else 9
        case ast.Call() | ast.Index() | ast.Transpose() | ast.Field():
            return 11
    return 12


def format_expr(e, level: int = 1) -> str:
    """`e` as bp source, bracketed if it binds looser than `level`."""
    text = _format_expr(e)
    return f"({text})" if precedence(e) < level else text


def _format_expr(e) -> str:
    match e:
        case ast.Num(value):
            return _literal(value)
        case ast.Str(value):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        case ast.Name(name):
            return name
        case ast.BinOp(op, left, right):
            p = _BINARY_PREC[op]
            if op == "^":
                return f"{format_expr(left, p + 1)}^{format_expr(right, 9)}"
            if p == 6:
                return f"{format_expr(left, p + 1)} {op} {format_expr(right, p + 1)}"
            sep = "" if op in ("*", "/") and _tight(left, right) else " "
            return f"{format_expr(left, p)}{sep}{op}{sep}{format_expr(right, p + 1)}"
        case ast.Unary(op, operand):
            if op == "not":
                return f"not {format_expr(operand, 5)}"
            return f"{op}{format_expr(operand, 9)}"
        case ast.IfExpr(cond, then, orelse):
            return f"if {format_expr(cond, 3)} then {format_expr(then)} else {format_expr(orelse)}"
        case ast.Lambda(params, body):
            return format_lambda(params, body)
        case ast.Call(func, args, kwargs):
            parts = [format_expr(a) for a in args] + [f"{k.name}={format_expr(k.value)}" for k in kwargs]
            return f"{format_expr(func, 11)}({', '.join(parts)})"
        case ast.Index(value, items):
            return f"{format_expr(value, 11)}[{', '.join(_index_item(i) for i in items)}]"
        case ast.Transpose(value):
            return f"{format_expr(value, 11)}'"
        case ast.Field(value, name):
            return f"{format_expr(value, 11)}.{name}"
        case ast.TupleLit(items):
            inner = ", ".join(format_expr(x) for x in items)
            return f"({inner},)" if len(items) == 1 else f"({inner})"
        case ast.ListLit(items):
            return "[" + ", ".join(format_expr(x) for x in items) + "]"
        case ast.RecordLit(fields):
            return "{" + ", ".join(f"{f.name}: {format_expr(f.value)}" for f in fields) + "}"
    raise AssertionError(type(e).__name__)


def _tight(left, right) -> bool:
    """`2*x` reads better than `2 * x` between simple operands."""
    return precedence(left) >= 10 and precedence(right) >= 10


def _index_item(item) -> str:
    if isinstance(item, ast.Slice):
        parts = ["" if p is None else format_expr(p) for p in (item.start, item.stop)]
        text = ":".join(parts)
        return text + (":" + format_expr(item.step) if item.step is not None else "")
    return format_expr(item)


def _literal(x: float) -> str:
    if math.isinf(x):
        return "inf"
    if math.isnan(x):
        return "nan"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)
