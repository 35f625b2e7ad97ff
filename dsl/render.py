"""Values and functions as bp text (SPEC §1).

Tensors print as bp literals with `precision` significant digits, whole
numbers without a fraction, summarised NumPy-style past 1000 elements.
Functions print as bp source that parses back to the same function: a
lambda or def prints its parameters and body, one bracket rule deciding
every parenthesis (the SPEC §3 precedence levels).
"""
from __future__ import annotations

import math
import re

import numpy as np

from . import ast
from .graph import Graph, Node
from .values import Builtin, Closure, Function, HostFunction, Record, Transform, leaf_paths, leaves

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

def format_function(fn: Function, inner: str | None = None, shadowed: frozenset = frozenset(),
                    defaults: dict | None = None) -> str:
    """A function as bp source from its AST; a transform's function as `inner`
    when given (its body printed from the graph); a closure's parameters with the
    `defaults` given (name → source of the value)."""
    if inner is not None and isinstance(fn, Transform):
        return f"{ref(fn.kind, shadowed)}({', '.join([inner] + _option_args(fn.kind, fn.options))})"
    match fn:
        case Closure(params=params, body=body):
            return format_lambda(params, body, defaults)
        case Builtin(name):
            return name
        case HostFunction(name=name):
            return name
        case Transform(kind, inner, options):
            return f"{kind}({', '.join([_fn_ref(inner)] + _option_args(kind, options))})"
    return f"<{type(fn).__name__}>"


def _option_args(kind: str, options: tuple) -> list[str]:
    """A transform's options as call arguments: diff's and taylor's order first, by position."""
    first = [str(v) for k, v in options if k == "n"] if kind in ("diff", "taylor") else []
    return first + [f"{k}={_format_option(v)}" for k, v in options if not (first and k == "n")]


def _fn_ref(fn: Function) -> str:
    if isinstance(fn, Closure) and fn.name:
        return fn.name
    return format_function(fn)


def _format_option(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def format_lambda(params, body, defaults: dict | None = None) -> str:
    """A lambda from its AST; the defaults as `defaults` gives their values' sources,
    else as written (an expression the definition evaluated)."""
    if defaults is None:
        defaults = {p.name: format_expr(p.default, 2) for p in params if p.default is not None}
    names = [_param(p) + (f"={defaults[p.name]}" if p.name in defaults else "") for p in params]
    head = names[0] if len(names) == 1 and not defaults and params[0].shape is None \
        else "(" + ", ".join(names) + ")"
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
            head = f"def {name}({', '.join(_param(p, True) for p in params)})"
            if isinstance(body, ast.Block):
                return f"{head} {format_block(body)}"
            return f"{head} = {format_expr(body)}"
        case ast.For(var, it, body):
            return f"for {var} in {format_expr(it)} {format_block(body)}"
        case ast.While(test, body):
            return f"while {format_expr(test, 3)} {format_block(body)}"
        case ast.If(test, then, orelse):
            text = f"if {format_expr(test, 3)} {format_block(then)}"
            while orelse is not None:
                if isinstance(orelse, ast.If):
                    text += f" else if {format_expr(orelse.test, 3)} {format_block(orelse.then)}"
                    orelse = orelse.orelse
                else:
                    text += f" else {format_block(orelse)}"
                    orelse = None
            return text
        case ast.Break():
            return "break"
        case ast.ExprStmt(value):
            return format_expr(value)
        case ast.Update(name, items, op, value):
            return f"{name}[{', '.join(_index_item(i) for i in items)}] {op or ''}= {format_expr(value)}"
    raise AssertionError(type(s).__name__)


def _param(p: ast.Param, with_default: bool = False) -> str:
    text = p.name if p.shape is None else f"{p.name}: [{', '.join(map(str, p.shape))}]"
    return text + (f"={format_expr(p.default, 2)}" if with_default and p.default is not None else "")


_BINARY_PREC = {"or": 3, "and": 4, "<": 6, "<=": 6, ">": 6, ">=": 6, "==": 6, "!=": 6,
                "+": 7, "-": 7, "*": 8, "/": 8, "%": 8, "@": 8, "^": 10}


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
        case ast.BuiltinRef(name):
            return f"bp.{name}"
        case ast.BinOp(op, left, right) if _chains(e):
            return _format_chain(e)
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


def _chains(e) -> bool:
    """A left-associative link (+ - * / % @ and the like, not ^ or a comparison)."""
    return isinstance(e, ast.BinOp) and e.op != "^" and _BINARY_PREC[e.op] != 6


def _format_chain(e) -> str:
    """a + b - c … along the left spine in a loop, not one call per link (a flat sum
    of 10,000 terms prints without recursing 10,000 deep); a left operand that binds
    looser than its link ends the spine and is bracketed as format_expr does."""
    links = [e]
    while _chains(e.left) and _BINARY_PREC[e.left.op] >= _BINARY_PREC[e.op]:
        e = e.left
        links.append(e)
    text = format_expr(e.left, _BINARY_PREC[e.op])
    for link in reversed(links):
        sep = "" if link.op in ("*", "/") and _tight(link.left, link.right) else " "
        text = f"{text}{sep}{link.op}{sep}{format_expr(link.right, _BINARY_PREC[link.op] + 1)}"
    return text


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


# ── functions, from their graph ──────────────────────────────────────────

def format_graph_function(names: list[str], out, inputs: list | None = None,
                          shadowed: frozenset = frozenset(), defaults: dict | None = None) -> str:
    """A function's graph as bp source: `x -> …`, with every subexpression
    used more than once bound to a name in a block body (SPEC §5).

    Names are chosen last (SPEC §13): the text is first written with a
    placeholder for every name the printer binds (the parameters, the block's
    temporaries, the variable of an adjoint's lambda); then each gets its
    preferred name unless that name is free in the text (a global, a builtin,
    a constant) or taken by another binder, in which case it gets the first
    numbered variant that is not.  So no printed name can capture, or be
    captured by, one the function refers to.  `shadowed` holds the builtins' and
    constants' names that the session has bound to something else: the text
    writes those as bp.name.  `defaults` maps a parameter's name to the source of
    its default value (`lr=0.1`)."""
    from .graph import topo_order, use_counts
    outs = [o for o in leaves(out) if isinstance(o, Node)]
    order = topo_order(outs)
    uses = use_counts(order, outs)
    binders = _Binders()
    text: dict[int, tuple[str, int]] = {}
    params = {id(node): binders.add("param", name) for node, name in zip(inputs or (), names)}
    for node, name in zip(inputs or (), names):
        if not isinstance(node, Node):  # a record parameter: its leaves print as θ.W
            for path, leaf in zip(leaf_paths(node), leaves(node)):
                text[id(leaf)] = (params[id(node)] + "".join(
                    f".{k}" if kind == "field" else f"[{k}]" for kind, k in path), 12)
    if inputs is None:                   # no input nodes given: parameters go by their names
        params = {}
        by_name = {name: binders.add("param", name) for name in names}
    lines: list[str] = []
    trips, groups = _trip_counts_read(order), {}
    for node in order:
        if id(node) in text:
            continue
        if node.op == "loop":            # a structured loop: statements, its parts names
            loop_statements(node, text, binders, shadowed, lines, trips, groups)
            continue
        if id(node) in params:
            text[id(node)] = (params[id(node)], 12)
        elif inputs is None and node.op == "input" and node.attr("name") in by_name \
                and not node.attr("path", ()):
            text[id(node)] = (by_name[node.attr("name")], 12)
        else:
            text[id(node)] = node_source(node, text, binders, shadowed)
        if uses.get(id(node), 0) > 1 and not _is_leaf(node):
            name = binders.add("temp", "t")
            lines.append(f"{name} = {text[id(node)][0]}")
            text[id(node)] = (name, 12)
    result = _container_source(out, text)
    head_names = [params[id(node)] for node in inputs] if inputs is not None else \
        [by_name[n] for n in names]
    defaults = defaults or {}
    head_names = [h + (f"={defaults[n]}" if n in defaults else "") for h, n in zip(head_names, names)]
    head = head_names[0] if len(head_names) == 1 and not defaults else "(" + ", ".join(head_names) + ")"
    if not lines:
        source = f"{head} -> {result}"
    else:
        source = f"{head} -> {{ {'; '.join(lines)}; return {result} }}"
    return binders.resolve(source)


def _trip_counts_read(order) -> set:
    """The loops (body, inputs) whose number of iterations the graph reads."""
    out = set()
    for node in order:
        if node.op == "loop":
            b = node.attr("body")
            if node.attr("part") == len(b.carried) + len(b.emit):
                out.add((id(b), tuple(map(id, node.inputs))))
    return out


def _var_name(name: str, default: str) -> str:
    """A carried value's name in the source, as a bp name (∂x → dx)."""
    name = (name or "").replace("∂", "d")
    name = "".join(ch for ch in name if ch.isalnum() or ch == "_")
    return name if name and name.isidentifier() and name not in _KEYWORDS else default


def loop_statements(node, text: dict, binders, shadowed, lines: list, trips=frozenset(),
                    groups: dict | None = None) -> None:
    """A loop node as bp statements appended to `lines` (once per loop: `groups` maps
    each loop printed to its carried names and counter), and the text of the node
    (a carried value's name after the loop) put into `text`:

        x = x0; while abs(x^2 - a) > 1e-12 { x = 0.5*(x + a/x) }
        y = y0; for i in range(n) { t1 = …; y = y + … }

    A body prints as a block of statements, its own temporaries bound inside; a loop
    inside a body prints inside its block (this walk nests as deep as the loops do,
    which is the source's nesting, never the graph's depth).  A loop that emits a
    tape (reverse mode's saving loop) has no bp form: a BpValueError, and the
    printer falls back to the transform's form."""
    groups = {} if groups is None else groups
    b = node.attr("body")
    key = (id(b), tuple(map(id, node.inputs)))
    if key not in groups:
        groups[key] = _loop_lines(node, text, binders, shadowed, lines, key in trips)
    names, kname = groups[key]
    j = node.attr("part")
    text[id(node)] = (names[j] if j < len(names) else kname, 12)


def _loop_lines(node, text, binders, shadowed, lines, want_trips) -> tuple:
    from .errors import BpValueError
    from .graph import topo_order, use_counts
    b = node.attr("body")
    if b.emit:
        raise BpValueError("a loop that keeps a tape of its iterates (reverse mode) has no bp "
                           "form", node.span)
    p = len(b.carried)
    ins = node.inputs

    def atom(i) -> str:
        s_, prec = text[id(i)]
        if prec >= 12:
            return s_
        name = binders.add("temp", "t")
        lines.append(f"{name} = {s_}")
        text[id(i)] = (name, 12)
        return name
    n_inf = ins[0].op == "const" and ins[0].value.ndim == 0 and float(ins[0].value) == np.inf
    n_text = None if n_inf else atom(ins[0])
    captured = [atom(i) for i in ins[1 + p:]]
    inits = [text[id(i)][0] for i in ins[1:1 + p]]
    names = [binders.add("var", _var_name(b.names[j] if j < len(b.names) else "", "c"))
             for j in range(p)]
    reads_k = any(nd is b.k for nd in topo_order(b.outputs()))
    as_for = b.cond is None and not n_inf and not want_trips
    counted = not as_for and (reads_k or want_trips or not n_inf)
    kname = binders.add("var", "i") if (as_for or counted) else None
    inner: dict = {id(b.k): (kname or "0", 12)}
    inner.update({id(c): (nm, 12) for c, nm in zip(b.carried, names)})
    inner.update({id(x): (t, 12) for x, t in zip(b.captured, captured)})
    # the condition: one expression over the carried names, read before each iteration
    test = None
    if b.cond is not None:
        ctext = dict(inner)
        for nd in topo_order([b.cond]):
            if id(nd) in ctext:
                continue
            if nd.op == "loop":
                raise BpValueError("a loop in a while loop's condition has no bp form", nd.span)
            ctext[id(nd)] = node_source(nd, ctext, binders, shadowed)
        test = ctext[id(b.cond)]
    # the body: statements over the carried names, then the carried values rebound
    border = topo_order(list(b.next))
    buses = use_counts(border, list(b.next))
    body: list[str] = []
    btrips, bgroups = _trip_counts_read(border), {}
    for nd in border:
        if id(nd) in inner:
            continue
        if nd.op == "loop":
            loop_statements(nd, inner, binders, shadowed, body, btrips, bgroups)
            continue
        inner[id(nd)] = node_source(nd, inner, binders, shadowed)
        if buses.get(id(nd), 0) > 1 and not _is_leaf(nd):
            t = binders.add("temp", "t")
            body.append(f"{t} = {inner[id(nd)][0]}")
            inner[id(nd)] = (t, 12)
    changed = [(nm, inner[id(nx)][0]) for nm, c, nx in zip(names, b.carried, b.next) if nx is not c]
    if changed:
        body.append(f"{', '.join(nm for nm, _ in changed)} = {', '.join(t for _, t in changed)}")
    if counted:
        body.append(f"{kname} = {kname} + 1")
    if p:
        lines.append(f"{', '.join(names)} = {', '.join(inits)}")
    if counted:
        lines.append(f"{kname} = 0")
    block = "{ " + "; ".join(body) + " }" if body else "{ }"
    if as_for:
        lines.append(f"for {kname} in {ref('range', shadowed)}({n_text}) {block}")
    else:
        tests = ([] if n_inf else [f"{kname} < {n_text}"]) + \
            ([] if test is None else [_wrap(test, 5) if not n_inf else test[0]])
        lines.append(f"while {' and '.join(tests) or '1'} {block}")
    return names, kname


_PLACEHOLDER = "\x00"
# A name that is a reference: not a field (.name), a keyword argument (name=) or a
# record field (name:).
_NAME = re.compile(r"(?<![\w.])([^\W\d]\w*)(?!\w)(?!\s*(?:=(?!=)|:))")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class _Binders:
    """The names a printed function binds, as placeholders until the whole text
    is known; then each is given a name that nothing else in the text uses."""

    def __init__(self):
        self.wanted: list[tuple[str, str]] = []          # (kind, preferred name)

    def add(self, kind: str, name: str) -> str:
        self.wanted.append((kind, name))
        return f"{_PLACEHOLDER}{len(self.wanted) - 1}{_PLACEHOLDER}"

    def resolve(self, source: str) -> str:
        parts = source.split(_PLACEHOLDER)
        plain = " ".join(parts[0::2])                     # the text without placeholders
        free = set(_NAME.findall(_STRING.sub(" ", plain))) - _KEYWORDS
        chosen: list[str | None] = [None] * len(self.wanted)
        taken = set(free)
        # Parameters first (they keep their names where they can), then the block's
        # temporaries, then the lambdas' variables, each avoiding all before it.  A
        # lambda's variable is read only right beside its binding, so lambdas share one.
        for kinds in (("param",), ("temp", "var"), ("lambda",)):
            lambda_picks: dict[str, str] = {}
            for k, (kind, name) in enumerate(self.wanted):
                if kind not in kinds:
                    continue
                if kind == "lambda":
                    pick = lambda_picks.setdefault(name, name if name not in taken else _fresh(name, taken))
                else:
                    pick = name if kind in ("param", "var") and name not in taken else _fresh(name, taken)
                    taken.add(pick)
                chosen[k] = pick
        parts[1::2] = [chosen[int(k)] for k in parts[1::2]]
        return "".join(parts)


_KEYWORDS = frozenset("def return for while in if then else and or not import export print plot assert "
                      "graph on to break latex bp".split())


def _fresh(base: str, taken) -> str:
    """base with the first number (from 1) that makes a name not in taken."""
    k = 1
    while f"{base}{k}" in taken:
        k += 1
    return f"{base}{k}"


def global_source(node) -> str:
    """A global's leaf as bp source: its name, then the fields and items on the way."""
    out = node.attr("name")
    for kind, key in node.attr("path", ()):
        out += f".{key}" if kind == "field" else f"[{key}]"
    return out


def _is_leaf(node) -> bool:
    return node.op == "input" or (node.op == "const" and node.value.ndim == 0)


def _container_source(out, text) -> str:
    if isinstance(out, tuple):
        inner = ", ".join(_container_source(x, text) for x in out)
        return f"({inner},)" if len(out) == 1 else f"({inner})"
    if isinstance(out, Record):
        return "{" + ", ".join(f"{k}: {_container_source(v, text)}" for k, v in out.items()) + "}"
    if isinstance(out, Node):
        return text[id(out)][0]
    return format_value(out)


def _wrap(part: tuple[str, int], level: int) -> str:
    s, prec = part
    return f"({s})" if prec < level else s


def ref(name: str, shadowed: frozenset = frozenset()) -> str:
    """A builtin or constant by name in printed text: `bp.name` where the program has
    bound the name to something else (a global `sum = 3`), else the name."""
    return f"bp.{name}" if name in shadowed else name


def _scalar_source(x: float, shadowed: frozenset = frozenset()) -> tuple[str, int]:
    """A number as bp source that reads back to the same float64 (-0.0 keeps its
    sign), with its precedence level; inf and nan by name (bp.inf where the session
    has rebound inf)."""
    if math.isnan(x):
        return ref("nan", shadowed), 12
    if math.isinf(x):
        return (ref("inf", shadowed), 12) if x > 0 else ("-" + ref("inf", shadowed), 9)
    if x == 0 and math.copysign(1, x) < 0:
        return "-0.0", 9
    s = _literal(x)
    return s, (9 if s.startswith("-") else 12)


def const_source(value: np.ndarray, shadowed: frozenset = frozenset()) -> tuple[str, int]:
    """A constant as a bp literal that reads back to the same float64s."""
    if value.ndim == 0:
        return _scalar_source(float(value), shadowed)
    dims = ", ".join(map(str, value.shape))
    if value.size == 0:
        return f"{ref('zeros', shadowed)}({dims})", 11
    if value.ndim == 2 and value.shape[0] == value.shape[1] > 1 and not np.signbit(value).any() \
            and (value == np.diag(np.diag(value))).all() and value.any():
        # a diagonal matrix (a Hessian of a quadratic): eye(n), c*eye(n) or diag([…])
        d = np.diag(value)
        n = value.shape[0]
        if (d == 1).all():
            return f"{ref('eye', shadowed)}({n})", 11
        if (d == d[0]).all():
            return f"{_scalar_source(float(d[0]), shadowed)[0]}*{ref('eye', shadowed)}({n})", 8
        return f"{ref('diag', shadowed)}({const_source(d, shadowed)[0]})", 11
    first = value.flat[0]
    if value.size >= 4 and (value == first).all():
        # one value everywhere (a scalar that a fold spread out): say so, not 99 times
        if first == 1 or first == 0 and math.copysign(1, first) > 0:
            return f"{ref('ones' if first == 1 else 'zeros', shadowed)}({dims})", 11
        return f"{ref('full', shadowed)}({dims}, value={_scalar_source(float(first), shadowed)[0]})", 11

    def nest(a):
        if a.ndim == 1:
            return "[" + ", ".join(_scalar_source(float(x), shadowed)[0] for x in a) + "]"
        return "[" + ", ".join(nest(x) for x in a) + "]"
    return nest(value), 12


def node_source(node, text: dict, binders: _Binders | None = None,
                shadowed: frozenset = frozenset()) -> tuple[str, int]:
    """One node as bp source from its operands' texts, with its precedence level.
    Names the text binds come from `binders` (placeholders until resolved)."""
    from .ops import REGISTRY, CallForm, Infix, Prefix
    if node.op == "input":
        return global_source(node), 12
    if node.op == "const":
        return const_source(node.value, shadowed)
    ins = [text[id(i)] for i in node.inputs]
    attrs = dict(node.attrs)
    opdef = REGISTRY[node.op]
    form = opdef.form
    if node.op == "add" and node.inputs[1].op == "const" and node.inputs[1].value.ndim == 0 \
            and float(node.inputs[1].value) < 0:
        return f"{_wrap(ins[0], 7)} - {_wrap(_scalar_source(-float(node.inputs[1].value), shadowed), 8)}", 7
    if node.op == "mul":
        merged = _merged_coefficient(node, text, shadowed)
        if merged is not None:
            return merged
    if isinstance(form, Infix) and len(ins) == 2 and form.symbol != "@":   # not in a product:
        ins = [_as_scalar(i, other, node, shadowed) or t                      # ones(3, 3) @ A is no 1 @ A
               for i, other, t in ((node.inputs[0], node.inputs[1], ins[0]),
                                   (node.inputs[1], node.inputs[0], ins[1]))]
    if isinstance(form, Infix):
        p = form.prec
        if form.assoc == "right":
            return f"{_wrap(ins[0], p + 1)}{form.symbol}{_wrap(ins[1], 9)}", p
        left_level, right_level = (p + 1, p + 1) if form.assoc == "none" else (p, p + 1)
        if form.symbol in ("*", "+") and node.inputs[1].op == node.op:
            right_level = p                   # associative: a*b*c and a + b + c need no brackets
        tight = form.symbol in ("*", "/") and ins[0][1] >= 8 and ins[1][1] >= 8 \
            and "@" not in ins[0][0] + ins[1][0] and " " not in ins[0][0] + ins[1][0]
        sep = "" if tight else " "
        return f"{_wrap(ins[0], left_level)}{sep}{form.symbol}{sep}{_wrap(ins[1], right_level)}", p
    if isinstance(form, Prefix):
        space = " " if form.symbol.isalpha() else ""
        return f"{form.symbol}{space}{_wrap(ins[0], form.prec)}", form.prec
    match node.op:
        case "transpose" if attrs.get("axes") is None or (
                isinstance(node.shape, tuple) and attrs["axes"] == tuple(reversed(range(len(node.shape))))):
            return f"{_wrap(ins[0], 11)}'", 11
        case "index":
            return f"{_wrap(ins[0], 11)}[{index_source(attrs['items'])}]", 11
        case "take" if attrs.get("axis") == 0:
            # what x[i] (a runtime i) and x[idx] (a gather) lower to, written as they were
            return f"{_wrap(ins[0], 11)}[{ins[1][0]}]", 11
        case "unindex":
            # The adjoint of indexing, written with what bp already has.
            z = binders.add("lambda", "z") if binders is not None else "z"
            return (f"{ref('grad', shadowed)}({z} -> {ref('sum', shadowed)}({z}"
                    f"[{index_source(attrs['items'])}] * {_wrap(ins[0], 8)}))({ins[1][0]})", 11)
        case "cross_entropy_back":
            # cross_entropy's gradient, one node: written as the formula it computes.
            axis = attrs.get("axis", -1)
            return (f"{ref('softmax', shadowed)}({ins[0][0]}{'' if axis == -1 else f', axis={axis}'}) * "
                    f"{ref('sum', shadowed)}({ins[1][0]}, axis={axis}, keepdims=1) - {_wrap(ins[1], 8)}", 7)
        case "zeros_like":
            return f"{ref('zeros_like', shadowed)}({ins[0][0]})", 11       # 0*x is nan at inf
        case "unarrange":
            # the adjoint of a rearrangement where x's shape is unknown: the vjp of the
            # forward op (pad, tile, repeat, a piece of split), as bp writes it
            a = binders.add("lambda", "a") if binders is not None else "a"
            forward = _call_source(REGISTRY[attrs["of"]], [a], dict(attrs["args"]), shadowed)
            return f"{ref('vjp', shadowed)}({a} -> {forward})({ins[1][0]}, {ins[0][0]})[1]", 11
        case "unjoin":
            # the cotangent of one piece, as bp writes it: vjp of the join, wrt that piece
            names = [binders.add("lambda", chr(ord("a") + j)) if binders is not None else
                     chr(ord("a") + j) for j in range(len(ins) - 1)]
            head = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
            join = ref("stack" if attrs["stacking"] else "concat", shadowed)
            axis = "" if attrs["axis"] == 0 else f", axis={attrs['axis']}"
            return (f"{ref('vjp', shadowed)}({head} -> {join}({', '.join(names)}{axis}), wrt={attrs['k']})"
                    f"({', '.join(s for s, _ in ins[1:])}, {ins[0][0]})[1]", 11)
        case "reshape_like":
            return f"{ref('reshape', shadowed)}({ins[0][0]}, {ref('shape', shadowed)}({ins[1][0]}))", 11
        case "host":
            return f"{attrs['fn'].name}({', '.join(s for s, _ in ins)})", 11
        case "host_vjp":
            # The cotangent of argument i, as bp writes it: vjp(f, wrt=i)(x…, u)[1].
            return (f"{ref('vjp', shadowed)}({attrs['fn'].name}, wrt={attrs['i']})"
                    f"({', '.join(s for s, _ in ins[:-2])}, {ins[-1][0]})[1]", 11)
    return _call_source(opdef, [s for s, _ in ins], attrs, shadowed), 11


def _call_source(opdef, args: list[str], attrs: dict, shadowed: frozenset) -> str:
    """A call of the op with these operand texts and attrs, as its CallForm writes it:
    a required attr by position, the others by name where they differ from their
    defaults; `first` before the operands, `index` as an index of the result."""
    from .ops import CallForm
    form = opdef.form
    index = form.index if isinstance(form, CallForm) else None
    first = form.first if isinstance(form, CallForm) else None
    args = list(args)
    for a in opdef.attrs:
        value = attrs.get(a.name, a.default)
        if a.name == index:
            continue
        if a.name == first:
            args.insert(0, _attr_source(value))
        elif a.kind == "shape":
            args.extend(str(d) for d in value) if value else args.append("()")
        elif value != a.default or a.required:
            args.append(f"{a.name}={_attr_source(value)}" if not a.required else _attr_source(value))
    name = form.name if isinstance(form, CallForm) else opdef.name
    call = f"{ref(name, shadowed)}({', '.join(args)})"
    return call if index is None else f"{call}[{attrs.get(index, 0)}]"


def _uniform(c, other, node) -> float | None:
    """The one value of a constant that prints as a scalar beside `other` in `node`:
    a scalar constant, or one with one value everywhere (see _as_scalar)."""
    if c.op != "const":
        return None
    if c.value.ndim == 0:
        return float(c.value)
    if c.value.size < 2 or other.shape != node.shape:
        return None
    first = c.value.flat[0]
    if not (c.value == first).all() or (first == 0 and np.signbit(c.value).any()):
        return None
    return float(first)


def _merged_coefficient(node, text, shadowed) -> tuple[str, int] | None:
    """k * (c * x), two constants that print as scalars, prints as (k·c) * x, and as x
    where k·c is 1 (the gradient of 0.5 * sum(W^2) is W, not 2*0.5*W).  Only where
    the inner product is written out in place (not a block's temporary)."""
    for k in (0, 1):
        outer_c, inner = node.inputs[k], node.inputs[1 - k]
        a = _uniform(outer_c, inner, node)
        if a is None or inner.op != "mul" or _is_binder(text[id(inner)][0]):
            continue
        for j in (0, 1):
            b = _uniform(inner.inputs[j], inner.inputs[1 - j], inner)
            rest = inner.inputs[1 - j]
            if id(rest) not in text:        # a listing: the inner product is a line of its own
                return None
            if b is None or rest.shape != node.shape or _uniform(rest, inner.inputs[j], inner) is not None:
                continue
            c = a * b
            if not math.isfinite(c) or c == 0:
                return None
            if c == 1:
                return text[id(rest)]
            if c == -1:
                return f"-{_wrap(text[id(rest)], 9)}", 9
            coef = _scalar_source(c, shadowed)
            return f"{_wrap(coef, 8)}*{_wrap(text[id(rest)], 9)}", 8
    return None


def _is_binder(s: str) -> bool:
    return s.startswith(_PLACEHOLDER) and s.endswith(_PLACEHOLDER) and s.count(_PLACEHOLDER) == 2


def _as_scalar(c, other, node, shadowed) -> tuple[str, int] | None:
    """A constant with one value everywhere, beside an operand that has the result's
    shape already, prints as that one value (2 * [1/3, 1/3, 1/3] * x is 2*0.333…*x):
    the same numbers, as the builder keeps it (a scalar there makes its algebra
    expand further: Rosenbrock's gradient took 17 steps instead of 13)."""
    if c.op != "const" or c.value.ndim == 0 or c.value.size < 2 or other.shape != node.shape:
        return None
    first = c.value.flat[0]
    if not (c.value == first).all() or (first == 0 and np.signbit(c.value).any()):
        return None
    return _scalar_source(float(first), shadowed)


def _attr_source(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return str(value[0]) if len(value) == 1 else "(" + ", ".join(map(str, value)) + ")"
    if isinstance(value, float):
        return _scalar_source(value)[0]
    return str(value)


def index_source(items) -> str:
    """An index op's items as bp writes them inside [ ]: `1, 2:5, ::-1`."""
    parts = []
    for item in items:
        if item[0] == "i":
            parts.append(str(item[1]))
        else:
            start, stop, step = (("" if v is None else str(v)) for v in item[1:])
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
    return ", ".join(parts)


# ── the SSA listing and Graphviz (SPEC §7) ───────────────────────────────

def format_listing(graph, names: list[str], transform: str = "grad") -> str:
    """One node a line, inputs first, derivative nodes marked; a closing count."""
    from . import shapes
    label: dict[int, str] = {}
    lines = []
    named_shapes: dict[int, str] = {}     # an opaque symbolic shape: as the shape of its first node

    def fmt(node) -> str:
        sh = node.shape
        if isinstance(sh, shapes.SymShape) and sh.parts is None:
            return named_shapes.setdefault(id(sh), f"shape({label[id(node)]})")
        return shapes.fmt(sh)
    for node, name in zip(graph.inputs, names):
        label[id(node)] = name
        lines.append(f"{name}: {fmt(node)}")
    k = 0
    body = []
    bodies: dict = {}                     # id(body) → (number, body): loops, listed after
    taken = set(names) | {n.attr("name") for n in graph.nodes if n.op == "input"}
    for node in graph.nodes:
        if id(node) in label:
            continue
        if node.op == "const" and node.value.ndim == 0:
            label[id(node)] = const_source(node.value)[0]
            continue
        if node.op == "input":
            label[id(node)] = node.attr("name")
            continue
        k += 1
        while f"t{k}" in taken:                  # the program's own t1 keeps its name
            k += 1
        label[id(node)] = f"t{k}"
        if node.op == "loop":                    # listed as a call; its body after the graph
            b = node.attr("body")
            if id(b) not in bodies:
                bodies[id(b)] = (len(bodies) + 1, b)
            args = ", ".join(label[id(i)] for i in node.inputs)
            text = (f"loop{bodies[id(b)][0]}({args})[{node.attr('part')}]", 12)
        else:
            text = node_source(node, {id(i): (label[id(i)], 12) for i in node.inputs}) \
                if node.op != "const" else (f"const {shapes.fmt(node.shape)}", 12)
        mark = "  ∂" if node.origin == "d" else ""
        body.append((f"t{k} = {text[0]}", f": {fmt(node)}{mark}"))
    width = max((len(a) for a, _ in body), default=0)
    lines += [f"{a.ljust(width)}  {b}" for a, b in body]
    counts = graph.count_by_origin()
    total = sum(counts.values())
    detail = ""
    if counts.get("d"):
        detail = f": {counts.get('f', 0)} from f, {counts['d']} from {transform}"
    outs = ", ".join(label[id(o)] for o in graph.outputs)
    lines.append(f"return {outs}  # {total} node{'s' * (total != 1)}{detail}")
    # Each loop's body, as a graph of its own (a loop in a body is listed after it too:
    # a queue, not a recursion).
    listed = 0
    while listed < len(bodies):
        number, b = list(bodies.values())[listed]
        listed += 1
        from .graph import Graph
        sub = Graph(b.inputs, b.outputs())
        bnames = [ph.attr("name") for ph in b.inputs]
        head = (f"loop{number}: counter {bnames[0]}, carried "
                f"{', '.join(bnames[1:1 + len(b.carried)]) or '—'}, captured "
                f"{', '.join(bnames[1 + len(b.carried):]) or '—'}")
        what = ["next " + ", ".join(bnames[1:1 + len(b.carried)])]
        if b.emit:
            what.append(f"{len(b.emit)} emitted")
        if b.cond is not None:
            what.append("the condition")
        inner = format_listing(sub, bnames).split("\n")
        for nd in sub.nodes:                 # loops inside this body: listed after it
            if nd.op == "loop" and id(nd.attr("body")) not in bodies:
                bodies[id(nd.attr("body"))] = (len(bodies) + 1, nd.attr("body"))
        lines.append("")
        lines.append(f"{head}; returns {'; '.join(what)}")
        lines += ["  " + ln for ln in inner]
    return "\n".join(lines)


def format_dot(graph, names: list[str]) -> str:
    """Graphviz DOT: operations as boxes, derivative nodes in their own colour."""
    from . import shapes
    out = ["digraph bp {", '  rankdir=BT;', '  node [shape=box, style="rounded,filled", '
           'fillcolor="#ffffff", fontname="Helvetica"];']
    ids: dict[int, str] = {}
    named = {id(n): name for n, name in zip(graph.inputs, names)}
    for k, node in enumerate(graph.nodes):
        ids[id(node)] = f"n{k}"
        if node.op == "input":
            label, colour = named.get(id(node), node.attr("name")), "#e8f0fe"
        elif node.op == "const":
            label, colour = const_source(node.value)[0][:24], "#f3f3f3"
        else:
            label = f"{node.op}\\n{shapes.fmt(node.shape)}"
            colour = "#ffe0b2" if node.origin == "d" else "#ffffff"
        label = label.replace('"', '\\"')
        out.append(f'  n{k} [label="{label}", fillcolor="{colour}"];')
    for node in graph.nodes:
        for i in node.inputs:
            out.append(f"  {ids[id(i)]} -> {ids[id(node)]};")
    for o in graph.outputs:
        out.append(f'  {ids[id(o)]} [penwidth=2];')
    out.append("}")
    return "\n".join(out) + "\n"


class FunctionGraph(Graph):
    """A function's graph with its parameter names: what `Interpreter.graph` returns."""

    def __init__(self, names: list[str], inputs: list, outputs: list, transform: str = "grad"):
        super().__init__(inputs, outputs)
        self.names = list(names)
        self.transform = transform

    def listing(self) -> str:
        """The SSA listing that `graph e` prints."""
        return format_listing(self, self.names, self.transform)

    def to_dot(self) -> str:
        """Graphviz DOT source, derivative nodes in their own colour."""
        return format_dot(self, self.names)

    def __str__(self) -> str:
        return self.listing()

    def _repr_pretty_(self, printer, cycle) -> None:      # IPython
        printer.text(self.listing())
