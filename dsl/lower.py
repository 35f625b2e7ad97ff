"""AST → graph: scopes, calls, containers, unrolled loops.

Lowering turns an expression into a *lowered value*: a graph Node for a
tensor, a tuple or Record of lowered values, a function value, or a
string (only for `print`).  Calls of bp functions are inlined; calls of
builtins become op nodes through `ops.apply`, which folds constants, so
lowering an expression whose leaves are all constants *is* evaluating it.

The session is reached only through a small context (`resolve_global`,
`call_eager`, `gradcheck`, `next_seed`), which is how the same code
lowers top-level statements (eagerly, with compiled calls) and function
bodies (into one graph).
"""
from __future__ import annotations

import math
from typing import Any, Protocol

from . import ast, autodiff, lower_loops, ops, shapes
from .errors import BpError, BpNameError, BpShapeError, BpTypeError, BpValueError, Span
from .graph import Node
from .ops import apply, const, describe
from .values import (Builtin, Closure, Function, HostFunction, Record, Transform, bind_arguments,
                     leaves, rebuild)

ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow"}
TENSOR_ONLY = {"@": "matmul", "%": "mod", "<": "less", "<=": "less_equal", ">": "greater",
               ">=": "greater_equal", "==": "equal", "!=": "not_equal", "and": "and", "or": "or"}
TRANSFORMS = ("grad", "value_and_grad", "diff", "jacobian", "hessian", "jvp", "vjp", "hvp", "taylor")
SPECIAL = TRANSFORMS + ("gradcheck",)
MAX_CALL_DEPTH = 1000


class Context(Protocol):
    def resolve_global(self, name: str, span: Span) -> Any: ...
    def call_eager(self, fn: Function, args: list, kwargs: dict, span: Span) -> Any: ...
    def gradcheck(self, fn: Function, args: list, span: Span) -> Any: ...
    def next_seed(self) -> int: ...


_ABSENT = object()                    # a name no scope binds (None is a value a scope may hold)


class Scope:
    """Local names of one function body; globals are the context's.  `version`
    counts assignments, so a remembered call of a closure can tell that a
    name it reads may have been rebound since."""
    __slots__ = ("vars", "parent", "version")

    def __init__(self, parent: Scope | None = None, values: dict | None = None):
        self.vars: dict[str, Any] = dict(values or {})
        self.parent = parent
        self.version = 0

    def bind(self, name: str, value) -> None:
        self.vars[name] = value
        self.version += 1

    def lookup(self, name: str):
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def get(self, name: str, default=None):
        """The name's value in this scope or an enclosing one, else `default` (a
        global or builtin, read in every body, is not worth an exception)."""
        scope = self
        while scope is not None:
            got = scope.vars.get(name, _ABSENT)
            if got is not _ABSENT:
                return got
            scope = scope.parent
        return default


class Lowerer:
    def __init__(self, ctx: Context, eager: bool):
        self.ctx = ctx
        self.eager = eager              # top level: calls with constant arguments run compiled
        self._active: list[Function] = []
        self._inlined: dict = {}        # (function, arguments) → (result, what keeps the ids valid)
        self._draws = 0                 # random seeds drawn so far

    def next_seed(self) -> int:
        self._draws += 1
        return self.ctx.next_seed()

    # ── expressions ──────────────────────────────────────────────────────
    def expr(self, e: ast.Expr, scope: Scope | None):
        match e:                        # (the commonest first: each case is a type test)
            case ast.Name(name):
                return self.name(name, scope, e.span)
            case ast.Call():
                return self.call_expr(e, scope)
            case ast.BinOp():
                return self.binop_chain(e, scope)
            case ast.Num(value):
                return const(value, e.span)
            case ast.Index(value, items):
                return self.index(self.expr(value, scope), items, scope, e.span)
            case ast.Str(value):
                return value
            case ast.BuiltinRef(name):
                return builtin_ref(name, e.span)
            case ast.Unary(op, operand):
                return self.unary(op, self.expr(operand, scope), e.span)
            case ast.IfExpr(cond, then, orelse):
                parts = [self.expr(x, scope) for x in (cond, then, orelse)]
                for part, x in zip(parts, (cond, then, orelse)):
                    self.need_tensor(part, "if … then … else", x.span)
                return apply("where", parts, span=e.span)
            case ast.Lambda(params, body):
                return self.closure(None, params, body, scope, e.span)
            case ast.Transpose(value):
                x = self.need_tensor(self.expr(value, scope), "transpose (')", e.span)
                return apply("transpose", [x], {"axes": None}, e.span)
            case ast.Field(value, name):
                return self.field(self.expr(value, scope), name, e.span)
            case ast.TupleLit(items):
                return tuple(self.expr(x, scope) for x in items)
            case ast.ListLit(items):
                return self.list_lit([self.expr(x, scope) for x in items], items, e.span)
            case ast.RecordLit(fields):
                return Record({f.name: self.expr(f.value, scope) for f in fields})
        raise AssertionError(f"unknown expression {type(e).__name__}")

    def name(self, name: str, scope: Scope | None, span: Span):
        if scope is not None:
            value = scope.get(name, _ABSENT)
            if value is not _ABSENT:
                if isinstance(value, lower_loops.Unbound):
                    raise value.error(span)
                return value
        return self.ctx.resolve_global(name, span)

    def need_tensor(self, lv, what: str, span: Span) -> Node:
        if not isinstance(lv, Node):
            raise BpTypeError(f"{what} needs a tensor, got {describe(lv)}", span)
        return lv

    def binop_chain(self, e: ast.BinOp, scope: Scope | None):
        """a + b + c …: the left spine walked in a loop, not one call per link, so a
        flat sum of 10,000 terms is not nesting (the parser does not count it either)."""
        spine = []
        while isinstance(e, ast.BinOp):
            spine.append(e)
            e = e.left
        acc = self.expr(e, scope)
        for link in reversed(spine):
            acc = self.binop(link.op, acc, self.expr(link.right, scope), link.span)
        return acc

    def binop(self, op: str, a, b, span: Span):
        if op in ARITH:
            return self.arith(ARITH[op], a, b, span)
        self.need_tensor(a, f"'{op}'", span)
        self.need_tensor(b, f"'{op}'", span)
        if TENSOR_ONLY[op] not in ops.REGISTRY:
            raise BpTypeError(f"'{op}' needs the builtin {TENSOR_ONLY[op]}, which this build lacks",
                              span)
        return apply(TENSOR_ONLY[op], [a, b], span=span)

    def arith(self, name: str, a, b, span: Span):
        """+ - * / ^ on tensors, reaching into tuples and records (SPEC §1)."""
        if isinstance(a, Node) and isinstance(b, Node):
            return apply(name, [a, b], span=span)
        for side in (a, b):
            if not isinstance(side, (Node, tuple, Record)):
                raise BpTypeError(f"arithmetic needs tensors, tuples or records, got {describe(side)}",
                                  span)
        if isinstance(a, Node):
            return _map(b, lambda leaf: self.arith(name, a, leaf, span))
        if isinstance(b, Node):
            return _map(a, lambda leaf: self.arith(name, leaf, b, span))
        if type(a) is not type(b) or (isinstance(a, tuple) and len(a) != len(b)) or \
                (isinstance(a, Record) and a.keys() != b.keys()):
            raise BpTypeError(f"arithmetic on containers of different structure: "
                              f"{_structure(a)} and {_structure(b)}", span)
        if isinstance(a, tuple):
            return tuple(self.arith(name, x, y, span) for x, y in zip(a, b))
        return Record({k: self.arith(name, a[k], b[k], span) for k in a.keys()})

    def unary(self, op: str, x, span: Span):
        if op == "+":
            if not isinstance(x, (Node, tuple, Record)):
                raise BpTypeError(f"unary + needs a tensor, got {describe(x)}", span)
            return x
        if op == "-":
            if isinstance(x, Node):
                return apply("neg", [x], span=span)
            if isinstance(x, (tuple, Record)):
                return _map(x, lambda leaf: self.unary("-", leaf, span))
            raise BpTypeError(f"unary - needs a tensor, got {describe(x)}", span)
        return apply("not", [self.need_tensor(x, "not", span)], span=span)

    def list_lit(self, values: list, items, span: Span):
        if not values:
            return const(ops.np.zeros((0,)), span)
        for v, item in zip(values, items):
            if not isinstance(v, Node):
                raise BpTypeError(f"a list literal holds numbers or tensors, got {describe(v)}; "
                                  f"use a tuple ( … ) for other values", item.span)
        first = values[0].shape
        for v, item in zip(values, items):
            if v.shape != first and isinstance(v.shape, tuple) and isinstance(first, tuple):
                raise BpShapeError(f"a list literal must be rectangular: an item of shape "
                                   f"{shapes.fmt(v.shape)} beside one of shape {shapes.fmt(first)} "
                                   f"(to join pieces of different lengths: concat(a, b) or "
                                   f"concat((a, b)))", item.span)
        return apply("stack", values, {"axis": 0}, span)

    def field(self, rec, name: str, span: Span):
        if not isinstance(rec, Record):
            raise BpTypeError(f"'.{name}' needs a record, got {describe(rec)}", span)
        if name not in rec:
            raise BpNameError(f"the record has no field '{name}' (its fields: "
                              f"{', '.join(rec.keys())})", span)
        return rec[name]

    def closure(self, name, params, body, scope, span: Span) -> Closure:
        """A def or lambda; its parameters' defaults are evaluated here, once, where it is
        defined (as Python does: `def f(x, lr=c)` keeps the c of that moment)."""
        fn = Closure(name, params, body, scope, span)
        defaults = {}
        for p in params:
            if p.default is not None:
                value = self.expr(p.default, scope)
                if isinstance(value, str):
                    raise BpTypeError(f"the default of '{p.name}' is a string; a default is a "
                                      f"tensor, a tuple, a record or a function", p.default.span)
                defaults[p.name] = value
        if defaults:
            fn.defaults = defaults
        return fn

    def update(self, stmt: ast.Update, scope):
        """`x[items] = v` (op None) or `x[items] op= v`: a copy of x with the indexed part
        replaced, as NumPy's x[items] = v leaves it (v broadcast to the part's shape);
        `x[items] op= v` is `x[items] = x[items] op v`, as in NumPy.

        With whole numbers and slices, `=` keeps x where the index does not reach and
        the new value where it does (exactly, even where x is inf or nan), and `+=`,
        `-=` add v placed at the index.  With a tensor index that repeats a position,
        NumPy leaves unspecified which value lands there; bp takes the mean of the
        values assigned to it (each gets its share of the gradient), so x[[0, 0]] += 1
        adds 1 once, as NumPy does (scatter_add adds every one, as np.add.at)."""
        span = stmt.span
        x = self.name(stmt.name, scope, span)
        if not isinstance(x, Node):
            raise BpTypeError(f"an indexed update needs a tensor, but {stmt.name} is "
                              f"{describe(x)}", span)
        part, place, repeats = self.access(x, stmt.items, scope, span)
        v = self.expr(stmt.value, scope)
        if stmt.op is None:
            new = self.need_tensor(v, "an indexed assignment", stmt.value.span)
        else:
            new = self.binop(stmt.op, part, v, span)
            self.need_tensor(new, f"'{stmt.op}='", span)
        if isinstance(new.shape, tuple) and isinstance(part.shape, tuple) and \
                (len(new.shape) > len(part.shape) or any(
                    a != b and a != 1 for a, b in zip(reversed(new.shape), reversed(part.shape)))):
            target = f"{stmt.name}[…] of shape {shapes.fmt(part.shape)}"
            raise BpShapeError(f"cannot assign a value of shape {shapes.fmt(new.shape)} to {target}"
                               if stmt.op is None else
                               f"{stmt.name}[…] {stmt.op}= v gives shape {shapes.fmt(new.shape)}, "
                               f"not the shape {shapes.fmt(part.shape)} of {stmt.name}[…]", span)
        with ops.building(ops.ACTIVE.building[-1][0], span):
            if stmt.op in ("+", "-") and isinstance(v, Node) and not repeats:
                placed = place(apply("broadcast_like", [v, part]))
                return apply("add" if stmt.op == "+" else "sub", [x, placed])
            new = place(apply("broadcast_like", [new, part]))
            count = place(apply("broadcast_like", [const(1.0), part]))
            if repeats:
                new = apply("div", [new, apply("maximum", [count, const(1.0)])])
            return apply("where", [count, new, x])

    def index(self, x, items, scope, span: Span):
        if isinstance(x, tuple):
            if len(items) != 1 or isinstance(items[0], ast.Slice):
                raise BpTypeError("a tuple takes one whole-number index", span)
            i = ops.static_int(self.expr(items[0], scope), "an index", items[0].span)
            if not -len(x) <= i < len(x):
                raise BpValueError(f"index {i} is out of range for a tuple of {len(x)}", span)
            return x[i]
        x = self.need_tensor(x, "indexing", span)
        whole = []
        for item in items:                  # x[3], A[0, 2]: written whole numbers, one node
            if type(item) is not ast.Num or not -1e15 < item.value < 1e15 \
                    or item.value != int(item.value):
                return self.access(x, items, scope, span)[0]
            whole.append(("i", int(item.value)))
        return apply("index", [x], {"items": tuple(whole)}, span)

    def access(self, x: Node, items, scope, span: Span):
        """x[items] as (the part read, place, repeats): place(g) puts a g of the part's
        shape into zeros of x's shape (adding where positions repeat), the adjoint of
        reading; repeats says whether a tensor index may repeat a position.

        Whole numbers and constant slices are one `index` node.  A tensor of whole
        numbers (or a scalar computed at run time) gathers with `take` on its axis,
        NumPy's advanced indexing: whole numbers beside it index their axes, and its own
        shape replaces its axis; several on adjacent axes broadcast together and take
        from their axes merged into one (_flat_index).  A slice whose start is computed
        at run time and whose length stop - start is a constant (X[i*B : i*B + B]) is
        take(X, start + arange(length)) on its axis."""
        entries = [self._index_entry(item, scope) for item in items]
        dynamic = [k for k, e in enumerate(entries) if e[0] in ("t", "d")]
        static = tuple(("s", None, None, None) if e[0] in ("t", "d") else e for e in entries)
        if not dynamic:
            return (apply("index", [x], {"items": static}, span),
                    lambda g: apply("unindex", [g, x], {"items": static}, span), False)
        tensors = [k for k in dynamic if entries[k][0] == "t"]
        if tensors:
            advanced = [k for k, e in enumerate(entries) if e[0] in ("i", "t")]
            if advanced != list(range(advanced[0], advanced[-1] + 1)):
                raise BpValueError("whole-number indices and index tensors separated by a slice "
                                   "(NumPy moves their axes to the front): index in two steps, "
                                   "x[i][:, j]", span)
        # what is taken, last axis first (earlier axes keep their numbers): each dynamic
        # slice alone, and all the index tensors together (they are adjacent)
        units = [[k] for k in dynamic if entries[k][0] == "d"] + ([tensors] if tensors else [])
        units.sort(key=lambda u: -u[0])
        with ops.building(ops.ACTIVE.building[-1][0], span):
            trivial = all(e == ("s", None, None, None) for e in static)
            y = x if trivial else apply("index", [x], {"items": static})
            steps = []                      # (axis, index, the tensor taken from, its shape before)
            for unit in units:
                axis = sum(1 for e in entries[:unit[0]] if e[0] != "i")
                kind = entries[unit[0]]
                if kind[0] == "d":
                    idx = apply("add", [kind[1], const(ops.np.arange(kind[2], dtype=float))])
                    steps.append((axis, idx, y, None))
                elif len(unit) == 1:
                    idx = kind[1]
                    steps.append((axis, idx, y, None))
                else:
                    idx, y, before = self._flat_index(y, axis, [entries[k][1] for k in unit],
                                                      items[unit[1]].span)
                    steps.append((axis, idx, y, before))
                y = apply("take", [y, idx], {"axis": axis})

        def place(g):
            with ops.building(ops.ACTIVE.building[-1][0], span):
                for axis, idx, source, before in reversed(steps):
                    g = apply("scatter_add", [apply("zeros_like", [source]), idx, g], {"axis": axis})
                    if before is not None:
                        g = apply("reshape", [g], {"shape": before})
                return g if trivial else apply("unindex", [g, x], {"items": static})
        return y, place, bool(tensors)

    @staticmethod
    def _flat_index(y: Node, axis: int, indices: list, span: Span):
        """x[i, j, …] with several index tensors on adjacent axes (broadcast together, as
        NumPy does): the axes merged into one by a reshape, and the index into it,
        i'·n₁ + j' with each index first checked and made non-negative by reading it
        from arange(n) (so an index out of range is still an error, not the next row)."""
        if not isinstance(y.shape, tuple):
            raise BpValueError("indexing with several index tensors needs the tensor's shape when "
                               "the function is built: annotate the parameter (x: [m, n]), or "
                               "index one axis at a time, x[i][:, j]", span)
        dims = y.shape[axis:axis + len(indices)]
        flat = None
        for n, idx in zip(dims, indices):
            checked = apply("take", [const(ops.np.arange(n, dtype=float)), idx], {"axis": 0})
            flat = checked if flat is None else apply("add", [apply("mul", [flat, const(float(n))]),
                                                              checked])
        size = 1
        for n in dims:
            size *= n
        merged = y.shape[:axis] + (size,) + y.shape[axis + len(indices):]
        return flat, apply("reshape", [y], {"shape": merged}), y.shape


    def _index_entry(self, item, scope):
        """One item of x[…]: ("i", k) a whole number, ("s", a, b, c) a constant slice,
        ("t", node) an index tensor or a runtime scalar, ("d", start, n) a slice that
        starts at a runtime value and is n long."""
        if not isinstance(item, ast.Slice):
            lv = self.expr(item, scope)
            if isinstance(lv, Node) and lv.op == "const" and lv.value.ndim == 0:
                return ("i", ops.static_int(lv, "an index", item.span))
            if not isinstance(lv, Node):
                raise BpTypeError(f"an index is a whole number, a slice or a tensor of whole "
                                  f"numbers, got {describe(lv)}", item.span)
            return ("t", lv)
        parts = [None if p is None else self.expr(p, scope) for p in (item.start, item.stop, item.step)]
        for lv, p in zip(parts, (item.start, item.stop, item.step)):
            if lv is not None and not isinstance(lv, Node):
                raise BpTypeError(f"a slice bound must be a number, got {describe(lv)}", p.span)
        if all(lv is None or lv.op == "const" for lv in parts):
            return ("s", *[None if lv is None else ops.static_int(lv, "a slice bound", p.span)
                           for lv, p in zip(parts, (item.start, item.stop, item.step))])
        start, stop, step = parts
        if step is not None and not (step.op == "const" and step.value.ndim == 0 and
                                     float(step.value) == 1):
            raise BpValueError("a slice with a step must have constant bounds", item.span)
        if start is None or stop is None or start.op == "const":
            raise BpValueError("a slice bound computed at run time needs a constant length: "
                               "start at a runtime value s and stop at s plus a constant, "
                               "as in X[i*B : i*B + B]", item.span)
        if start.shape != () and isinstance(start.shape, tuple):
            raise BpValueError(f"a slice bound must be a scalar, got shape "
                               f"{shapes.fmt(start.shape)}", item.start.span)
        length = _slice_length(start, stop)
        if length is None:
            raise BpValueError("a slice that starts at a runtime value must have a length "
                               "(stop - start) known when the function is built, as in "
                               "X[i*B : i*B + B]; this one's length depends on the arguments",
                               item.span)
        n = float(length.value)
        if n != int(n) or n < 0:
            raise BpValueError(f"the length of a slice must be a whole number ≥ 0, got {n:g}",
                               item.span)
        if not isinstance(start.shape, tuple):        # a scalar at run time, or an error then
            start = apply("reshape", [start], {"shape": ()}, item.start.span)
        return ("d", start, int(n))

    # ── calls ────────────────────────────────────────────────────────────
    def call_expr(self, e: ast.Call, scope):
        fn = self.expr(e.func, scope)
        if isinstance(fn, Builtin) and fn.name in TRANSFORMS:
            return self.make_transform(fn.name, e, scope)
        if isinstance(fn, Builtin) and fn.name == "gradcheck":
            args = [self.expr(a, scope) for a in e.args]
            if e.kwargs or len(args) < 2 or not isinstance(args[0], Function):
                raise BpTypeError("gradcheck(f, x…) takes a function and the point to check it at",
                                  e.span)
            return self.ctx.gradcheck(args[0], args[1:], e.span)
        args = [self.expr(a, scope) for a in e.args]
        kwargs = {k.name: self.expr(k.value, scope) for k in e.kwargs}
        return self.call(fn, args, kwargs, e.span)

    def call(self, fn, args: list, kwargs: dict, span: Span):
        match fn:
            case Closure():
                args, kwargs = with_defaults(fn, args, kwargs)
                if self.eager and all(map(_is_constant, args)) and all(map(_is_constant, kwargs.values())):
                    result = self.ctx.call_eager(fn, args, kwargs, span)
                    if result is not None:
                        return result
                return self.inline(fn, args, kwargs, span)
            case Builtin(name) if name in SPECIAL:
                raise BpTypeError(f"{name} takes a function, as in {name}(f); it cannot be used "
                                  f"as a function of tensors itself", span)
            case Builtin(name):
                entry = ops.BUILTINS[name]
                if isinstance(entry, ops.Macro):
                    return entry.build(self, args, kwargs, span)
                inputs, attrs = ops.bind(entry, args, kwargs, span)
                return apply(name, inputs, attrs, span)
            case HostFunction():
                if kwargs or len(args) != len(fn.params):
                    raise BpTypeError(f"{fn.name} takes {len(fn.params)} positional argument"
                                      f"{'s' * (len(fn.params) != 1)}", span)
                for a in args:
                    self.need_tensor(a, fn.name, span)
                return apply("host", args, {"fn": fn}, span)
            case Transform():
                args, kwargs = with_defaults(fn, args, kwargs)
                if self.eager and all(map(_is_constant, args)) and all(map(_is_constant, kwargs.values())):
                    result = self.ctx.call_eager(fn, args, kwargs, span)
                    if result is not None:
                        return result
                return autodiff.call_transform(self, fn, args, kwargs, span)
            case Function():
                return self.ctx.call_eager(fn, args, kwargs, span)
        raise BpTypeError(f"cannot call {describe(fn)}: only functions can be called", span)

    def bind_args(self, fn: Closure, args: list, kwargs: dict, span: Span) -> dict:
        """Parameters → arguments, checking count, keywords and shape annotations."""
        label = fn.name or "the lambda"
        args, kwargs = with_defaults(fn, args, kwargs)
        bound = bind_arguments(label, fn.param_names, args, kwargs, span)
        dims: dict = {}
        for p in fn.params:
            if p.shape is not None:
                check_annotation(p, bound[p.name], label, span, dims)
        return bound

    def inline(self, fn: Closure, args: list, kwargs: dict, span: Span):
        """Lower a call by building the function's body into the caller's graph.

        A bp function is pure and its arguments are hash-consed nodes, so the
        same function called on the same nodes gives the same nodes: the call
        is lowered once and remembered for the rest of this lowering (the
        expansion of a determinant by minors reaches each minor by many paths,
        and would otherwise be built once per path).  A body that draws random
        numbers is not remembered: each call gets its own.
        """
        bound = self.bind_args(fn, args, kwargs, span)
        key = _call_key(fn, bound)
        if key is not None:
            known = self._inlined.get(key)
            if known is not None:
                return known[0]
        draws = self._draws
        result = self._inline(fn, bound, span)
        if key is not None and self._draws == draws:
            self._inlined[key] = (result, fn, bound)      # fn and bound keep the ids in key alive
        return result

    def _inline(self, fn: Closure, bound: dict, span: Span):
        if fn in self._active:
            raise BpTypeError(f"{fn.name or 'a lambda'} calls itself: recursion is not supported "
                              f"(write a loop with for, or if … then … else)", span)
        if len(self._active) >= MAX_CALL_DEPTH:
            raise BpValueError(f"calls are nested more than {MAX_CALL_DEPTH} deep", span)
        self._active.append(fn)
        try:
            return self.body(fn.body, Scope(fn.env, bound))
        finally:
            self._active.pop()

    def body(self, body, scope: Scope):
        if not isinstance(body, ast.Block):
            return self.expr(body, scope)
        result = self.block(body.stmts, scope)
        if result is _NO_RETURN:
            raise BpTypeError("the function body ends without a return", body.span)
        return result

    def block(self, stmts, scope: Scope):
        stmts = list(stmts)
        for i, stmt in enumerate(stmts):
            match stmt:
                case ast.Assign(targets, value):
                    for name, v in zip(targets, unpack(targets, self.expr(value, scope), stmt.span)):
                        scope.bind(name, v)
                case ast.Update(name):
                    scope.bind(name, self.update(stmt, scope))
                case ast.Def(name, params, body):
                    scope.bind(name, self.closure(name, params, body, scope, stmt.span))
                case ast.Return(value):
                    return self.expr(value, scope)
                case ast.For(var, it, body) if lower_loops.lower_for(self, stmt, scope):
                    pass                        # a loop node (dsl/lower_loops.py)
                case ast.While():
                    lower_loops.lower_while(self, stmt, scope)
                case ast.For(var, it, body):     # a short constant loop: unrolled
                    for i in range(loop_count(self, it, scope)):
                        scope.bind(var, const(float(i), stmt.span))
                        result = self.block(body.stmts, scope)
                        if result is not _NO_RETURN:
                            return result
                case ast.If():
                    result = self.if_stmt(stmt, scope, stmts[i + 1:])
                    if result is not _NO_RETURN:
                        return result
                case ast.ExprStmt(value):
                    self.expr(value, scope)
                case _:
                    raise BpTypeError("only bindings, loops, if and return can appear in a "
                                      "function body", stmt.span)
        return _NO_RETURN

    def if_stmt(self, stmt: ast.If, scope: Scope, rest: list):
        """`if c { … } else { … }` in a function body (docs/language.md §4).

        A constant single-element test lowers only its side, in the scope itself, as
        Python runs it.  Otherwise both sides are lowered, each in a child scope, and
        every name either side binds is rebound to where(c, then, else) (lower_loops.
        merge_if).  A side that returns ends its path: the rest of the block is lowered
        for the other side, and the result is where(c, its return, the rest's).  The
        function's result, or _NO_RETURN when neither side returned."""
        c = lower_loops.if_test(self, stmt.test, scope, scalar=False)
        side = lower_loops.constant_side(c)
        if side is not None:
            return self.block(lower_loops.branch_stmts(stmt.then if side else stmt.orelse), scope)
        t_scope, e_scope = Scope(scope), Scope(scope)
        t_ret = self.block(lower_loops.branch_stmts(stmt.then), t_scope)
        e_ret = self.block(lower_loops.branch_stmts(stmt.orelse), e_scope)
        t_gone, e_gone = t_ret is not _NO_RETURN, e_ret is not _NO_RETURN
        if not (t_gone and e_gone):
            lower_loops.merge_if(scope, c, t_scope, e_scope, t_gone, e_gone, stmt.span)
        if not (t_gone or e_gone):
            return _NO_RETURN
        if not (t_gone and e_gone):
            after = self.block(rest, scope)
            if after is _NO_RETURN:
                raise BpTypeError("one side of this if returns and the function body goes on "
                                  "without a return after it", stmt.span)
            t_ret, e_ret = (t_ret, after) if t_gone else (after, e_ret)
        return lower_loops._where(c, t_ret, e_ret, "the result", stmt.span)

    # ── transforms: grad(f, wrt=W) names a parameter, so wrt is read as syntax ──
    def make_transform(self, kind: str, e: ast.Call, scope) -> Transform:
        if not e.args:
            raise BpTypeError(f"{kind} needs a function: {kind}(f)", e.span)
        fn = self.expr(e.args[0], scope)
        if not isinstance(fn, Function):
            raise BpTypeError(f"{kind} needs a function, got {describe(fn)}", e.args[0].span)
        options: dict[str, Any] = {}
        rest = list(e.args[1:])
        if kind in ("diff", "taylor") and rest:
            options["n"] = rest.pop(0)
        if rest:
            raise BpTypeError(f"{kind} takes a function and keyword options, got "
                              f"{len(e.args)} arguments", e.args[1].span)
        for k in e.kwargs:
            if k.name == "wrt" and kind != "diff":
                options["wrt"] = _wrt_spec(k.value)
            elif k.name == "n" and kind in ("diff", "taylor"):
                options["n"] = k.value
            else:
                raise BpTypeError(f"{kind} has no option '{k.name}'", k.span)
        if kind == "taylor" and "n" not in options:
            raise BpTypeError("taylor needs an order: taylor(f, n) gives the coefficients 0 to n",
                              e.span)
        if "n" in options:
            n = ops.static_int(self.expr(options["n"], scope), "the order n", e.span)
            if n < 0:
                raise BpValueError(f"{kind} needs an order n ≥ 0, got {n}", e.span)
            options["n"] = n
        return Transform(kind, fn, tuple(sorted(options.items())), e.span)


_NO_RETURN = object()


def _slice_length(start: Node, stop: Node) -> Node | None:
    """stop - start as a constant scalar, or None when it is not one.  Where the shapes
    are known only at call time (a function printed for every shape), the difference
    is taken as it is for scalar arguments, which the slice's start must be."""
    length = apply("sub", [stop, start])
    if length.op != "const" and not (isinstance(start.shape, tuple) and isinstance(stop.shape, tuple)):
        from .graph import make_input, topo_order
        scalars = {id(n): make_input(n.attr("name"), (), n.span) for n in topo_order([start, stop])
                   if n.op == "input" and not isinstance(n.shape, tuple)}
        start, stop = autodiff.substitute([start, stop], scalars)
        length = apply("sub", [stop, start])
    return length if length.op == "const" and length.value.ndim == 0 else None


def defaults_of(fn) -> dict:
    """A closure's parameter defaults (name → lowered value), evaluated where it was defined."""
    return getattr(fn, "defaults", None) or {}


def parameter_defaults(fn) -> list:
    """(name, default or _REQUIRED) for each parameter a call of fn binds, in order: a
    closure's own; a transform's are its function's, with the tangent or cotangent
    that jvp, vjp and hvp add (required) at the end."""
    match fn:
        case Closure():
            d = defaults_of(fn)
            return [(n, d.get(n, _REQUIRED)) for n in fn.param_names]
        case Transform(kind, inner):
            spec = parameter_defaults(inner)
            names = autodiff.param_names(fn)
            if len(names) > len(spec):
                spec = spec + [(n, _REQUIRED) for n in names[len(spec):]]
            return spec
    return [(n, _REQUIRED) for n in autodiff.param_names(fn)]


_REQUIRED = object()


def with_defaults(fn, args: list, kwargs: dict) -> tuple[list, dict]:
    """The arguments of a call with the defaults of the parameters it does not pass.

    Positional arguments fill the parameters in order, as in Python, except that a
    parameter with a default takes one only when there are more positional arguments
    than parameters without defaults to fill: so `jvp(f)(x, v)` of `def f(x, lr=0.1)`
    gives the tangent to v and lr its default, and `jvp(f)(x, 0.2, v)` passes lr.
    A call that does not fit is left as it is, for the usual binding to report."""
    if not isinstance(fn, (Closure, Transform)):
        return args, kwargs
    spec = parameter_defaults(fn)
    if all(d is _REQUIRED for _, d in spec) or len(args) >= len(spec) or \
            not set(kwargs) <= {n for n, _ in spec}:
        return args, kwargs
    free = [(n, d) for n, d in spec if n not in kwargs]
    extra = len(args) - sum(d is _REQUIRED for _, d in free)
    if extra < 0:
        return args, kwargs
    it = iter(args)
    filled = dict(kwargs)
    for n, d in free:
        if d is _REQUIRED or extra > 0:
            extra -= d is not _REQUIRED
            filled[n] = next(it)
        else:
            filled[n] = d
    return [filled[n] for n, _ in spec], {}

# The constants every session starts with (SPEC §6); programs may rebind their names.
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}


def builtin_ref(name: str, span: Span):
    """`bp.name`: a builtin or constant by its own name, never a binding's."""
    if name in CONSTANTS:
        return const(CONSTANTS[name], span)
    if name in ops.BUILTINS or name in SPECIAL:
        return Builtin(name)
    raise BpNameError(f"bp has no builtin '{name}'", span)


def _wrt_spec(e: ast.Expr):
    """wrt=W, wrt=(W, b), wrt=1, wrt=-1: parameter names or positions, as written."""
    match e:
        case ast.Name(name):
            return name
        case ast.Num(value) if value == int(value) and value >= 0:
            return int(value)
        case ast.Unary("-", ast.Num(value)) if value == int(value) and value > 0:
            return -int(value)                  # counts from the end, as Python's indices
        case ast.TupleLit(items):
            return tuple(_wrt_spec(x) for x in items)
    raise BpTypeError("wrt= takes a parameter's name or position, or a tuple of them", e.span)


def loop_count(lowerer: Lowerer, it: ast.Expr, scope) -> int:
    """N of `for i in range(N)`; N must be a constant whole number."""
    if not lower_loops.is_range(it):
        raise BpTypeError("a for loop runs over range(n): for i in range(n) { … }", it.span)
    n = ops.static_int(lowerer.expr(it.args[0], scope), "the loop count", it.args[0].span)
    cap = ops.ACTIVE.limits.max_unroll
    if n > cap and not lowerer.eager:
        raise ops.limit_error(f"a loop of {n:,} steps inside a function is unrolled into the graph",
                              "max_unroll", cap, it.span)
    return max(n, 0)


def unpack(targets: tuple[str, ...], value, span: Span) -> list:
    if len(targets) == 1:
        return [value]
    if not isinstance(value, tuple):
        raise BpTypeError(f"cannot unpack {describe(value)} into {len(targets)} names", span)
    if len(value) != len(targets):
        raise BpTypeError(f"cannot unpack a tuple of {len(value)} into {len(targets)} names", span)
    return list(value)


def check_annotation(p: ast.Param, value, label: str, span: Span, dims: dict | None = None) -> None:
    """A parameter annotated `x: [3, 2]` takes only that shape (checked at the call).

    A named dimension (`W: [m, n], x: [n]`) takes any size, the same for every
    parameter of the call that names it (`dims` holds name → (size, parameter));
    `_` takes any size."""
    if not isinstance(value, Node):
        raise BpTypeError(f"{label}: parameter {p.name} is annotated {shapes.fmt(p.shape)} "
                          f"but got {describe(value)}", span)
    shape = value.shape
    if not isinstance(shape, tuple):
        return
    if len(shape) != len(p.shape) or any(isinstance(d, int) and d != n for d, n in zip(p.shape, shape)):
        raise BpShapeError(f"{label}: parameter {p.name} must have shape {shapes.fmt(p.shape)}, "
                           f"got {shapes.fmt(shape)}", span)
    dims = {} if dims is None else dims
    for d, n in zip(p.shape, shape):
        if isinstance(d, str) and d != "_":
            seen = dims.setdefault(d, (n, p.name))
            if seen[0] != n:
                if seen[1] == p.name:
                    raise BpShapeError(f"{label}: {d} is both {seen[0]} and {n} in {p.name}", span)
                raise BpShapeError(f"{label}: {d} is {seen[0]} in {seen[1]} but {n} in {p.name}", span)


def _call_key(fn: Closure, bound: dict):
    """A hashable key for a call: the function, the state of the scopes it
    reads (a closure sees later assignments to its enclosing bodies' names),
    and the identities of its arguments; None when an argument is something
    other than nodes, containers and functions."""
    parts: list = []
    stack: list = [("", fn), *bound.items()]
    while stack:
        name, value = stack.pop()
        if isinstance(value, Function):
            parts.append((name, id(value)))
            if isinstance(value, Closure):
                scope = value.env
                while scope is not None:
                    parts.append((id(scope), scope.version))
                    scope = scope.parent
            elif isinstance(value, Transform):
                stack.append((name, value.fn))
        elif isinstance(value, Node):
            parts.append((name, id(value)))
        elif isinstance(value, tuple):
            parts.append((name, "(", len(value)))
            stack.extend((name, v) for v in value)
        elif isinstance(value, Record):
            parts.append((name, "{", tuple(value.keys())))
            stack.extend((name, v) for v in value.values())
        else:
            return None
    return tuple(parts)


def _is_constant(lv) -> bool:
    if isinstance(lv, Node):
        return lv.op == "const"
    if isinstance(lv, tuple):
        return all(map(_is_constant, lv))
    if isinstance(lv, Record):
        return all(map(_is_constant, lv.values()))
    return isinstance(lv, (Function, str))


def _map(container, fn):
    if isinstance(container, tuple):
        return tuple(_map(x, fn) for x in container)
    if isinstance(container, Record):
        return Record({k: _map(v, fn) for k, v in container.items()})
    return fn(container)


def _structure(x) -> str:
    if isinstance(x, tuple):
        return f"a tuple of {len(x)}"
    if isinstance(x, Record):
        return "a record {" + ", ".join(x.keys()) + "}"
    return describe(x)


__all__ = ["Lowerer", "Scope", "Context", "leaves", "rebuild", "unpack", "loop_count", "TRANSFORMS",
           "BpError"]
