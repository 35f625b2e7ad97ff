"""The bp abstract syntax tree: immutable records (dsl/struct.py), each with a Span.

Spans are left out of equality, so two parses of the same text compare
equal wherever they came from.  Later passes use `match`, not visitors.
"""
from __future__ import annotations

from .errors import Span
from .struct import struct

node = struct(uncompared=("span",))


# ── expressions ──────────────────────────────────────────────────────────

@node
class Num:
    value: float
    span: Span


@node
class Str:
    value: str
    span: Span


@node
class Name:
    id: str
    span: Span


@node
class BuiltinRef:
    """`bp.sum`: the builtin (or constant) of that name, whatever the program has
    bound the name to; how printed text names a builtin that a global shadows."""
    name: str
    span: Span


@node
class BinOp:
    op: str            # bp spelling: "+", "@", "^", "<", "and", …
    left: Expr
    right: Expr
    span: Span


@node
class Unary:
    op: str            # "-", "+", "not"
    operand: Expr
    span: Span


@node
class IfExpr:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@node
class Param:
    name: str
    # an annotation `x: [3, 2]` or `W: [m, n]` (a dimension is a whole number, a
    # name that binds per call, or "_" for any size), or None
    shape: tuple[int | str, ...] | None
    span: Span
    # `lr=0.1`: evaluated once, where the function is defined (as Python does); None
    # when the parameter has no default
    default: Expr | None = None


@node
class TypedName:
    """`x: [n]` or `lr=0.1` (or `x: [n] = e`) inside parentheses: only a lambda's
    head may hold one (the parser turns it into a Param there, and rejects it
    anywhere else)."""
    name: str
    shape: tuple[int | str, ...] | None
    span: Span
    default: Expr | None = None


@node
class Lambda:
    params: tuple[Param, ...]
    body: Expr | Block
    span: Span


@node
class Keyword:
    name: str
    value: Expr
    span: Span


@node
class Call:
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@node
class Slice:
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@node
class Index:
    value: Expr
    items: tuple[Expr | Slice, ...]
    span: Span


@node
class Transpose:
    value: Expr
    span: Span


@node
class Field:
    value: Expr
    name: str
    span: Span


@node
class TupleLit:
    items: tuple[Expr, ...]
    span: Span


@node
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@node
class RecordLit:
    fields: tuple[Keyword, ...]
    span: Span


Expr = (Num | Str | Name | BinOp | Unary | IfExpr | Lambda | Call | Index
        | Transpose | Field | TupleLit | ListLit | RecordLit)


# ── statements ───────────────────────────────────────────────────────────

@node
class Block:
    stmts: tuple[Stmt, ...]
    span: Span


@node
class Assign:
    targets: tuple[str, ...]    # one name, or several for destructuring
    value: Expr
    span: Span


@node
class Update:
    """`x[i, :] = v`, `x[i] += v`: rebinds the name `x` to a copy of its tensor with the
    indexed part replaced (op None) or combined with v by op ("+", "-", "*", "/",
    "%", "^", "@"); nothing is mutated.  (`x += v` is parsed as `x = x + v`.)"""
    name: str
    items: tuple[Expr | Slice, ...]
    op: str | None
    value: Expr
    span: Span


@node
class Def:
    name: str
    params: tuple[Param, ...]
    body: Expr | Block
    span: Span


@node
class Return:
    value: Expr
    span: Span


@node
class Print:
    values: tuple[Expr, ...]
    span: Span


@node
class Latex:
    value: Expr                 # `latex e`: e as LaTeX math
    span: Span


@node
class Assert:
    test: Expr
    text: str                   # the source of the test, for the message
    span: Span


@node
class For:
    var: str
    iter: Expr
    body: Block
    span: Span


@node
class While:
    test: Expr
    body: Block
    span: Span


@node
class If:
    test: Expr
    then: Block
    orelse: Block | If | None
    span: Span


@node
class Break:
    span: Span


@node
class Import:
    path: str
    span: Span


@node
class Export:
    value: Expr
    path: str
    span: Span
    engine: str = "numpy"        # `export f to "m.py" as jax`: "jax"


@node
class GraphStmt:
    value: Expr
    path: str | None
    span: Span


@node
class Plot:
    values: tuple[Expr, ...]
    on: Expr | None
    path: str | None
    span: Span


@node
class ExprStmt:
    value: Expr
    span: Span


Stmt = (Assign | Update | Def | Return | Print | Latex | Assert | For | If | Break | Import | Export
        | GraphStmt | Plot | ExprStmt)


@node
class Program:
    stmts: tuple[Stmt, ...]
    span: Span
