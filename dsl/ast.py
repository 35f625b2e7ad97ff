"""The bp abstract syntax tree: frozen dataclasses, each with a Span.

Spans are left out of equality, so two parses of the same text compare
equal wherever they came from.  Later passes use `match`, not visitors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span

_span = dict(compare=False, repr=False)


# ── expressions ──────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Num:
    value: float
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str            # bp spelling: "+", "@", "^", "<", "and", …
    left: Expr
    right: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str            # "-", "+", "not"
    operand: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class IfExpr:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    shape: tuple[int, ...] | None     # an annotation `x: [3, 2]`, or None
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Lambda:
    params: tuple[Param, ...]
    body: Expr | Block
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    value: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Call:
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Slice:
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Index:
    value: Expr
    items: tuple[Expr | Slice, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Transpose:
    value: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Field:
    value: Expr
    name: str
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class TupleLit:
    items: tuple[Expr, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class RecordLit:
    fields: tuple[Keyword, ...]
    span: Span = field(**_span)


Expr = (Num | Str | Name | BinOp | Unary | IfExpr | Lambda | Call | Index
        | Transpose | Field | TupleLit | ListLit | RecordLit)


# ── statements ───────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Block:
    stmts: tuple[Stmt, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Assign:
    targets: tuple[str, ...]    # one name, or several for destructuring
    value: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Def:
    name: str
    params: tuple[Param, ...]
    body: Expr | Block
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Return:
    value: Expr
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Print:
    values: tuple[Expr, ...]
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Assert:
    test: Expr
    text: str                   # the source of the test, for the message
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class For:
    var: str
    iter: Expr
    body: Block
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class If:
    test: Expr
    then: Block
    orelse: Block | If | None
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Break:
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Import:
    path: str
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Export:
    value: Expr
    path: str
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class GraphStmt:
    value: Expr
    path: str | None
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class Plot:
    values: tuple[Expr, ...]
    on: Expr | None
    path: str | None
    span: Span = field(**_span)


@dataclass(frozen=True, slots=True)
class ExprStmt:
    value: Expr
    span: Span = field(**_span)


Stmt = (Assign | Def | Return | Print | Assert | For | If | Break | Import | Export
        | GraphStmt | Plot | ExprStmt)


@dataclass(frozen=True, slots=True)
class Program:
    stmts: tuple[Stmt, ...]
    span: Span = field(**_span)
