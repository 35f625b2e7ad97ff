"""Lowering loops in function bodies to loop nodes (docs/design.md, "Loops").

`while c { … }` and `for i in range(n) { … }` with a runtime n (or a constant n
past UNROLL_MAX) become one loop node each (dsl/loops.py).  The loop-carried
state is the set of names the body rebinds that are bound before the loop; the
body is lowered once, on placeholders for them (and the counter), by the same
Lowerer as the rest of the function, so anything the body reads from outside
(parameters, globals, values computed before the loop) is captured by
`loops.make_loop`.  After the loop the names are bound to its results.  A name
first bound inside the body is local to an iteration.

`break` (alone, or in `if c { … }` inside the body) and `if` statements in a
loop's body are lowered here: an `if` computes both sides and rebinds each name
either side binds to `where(c, then, else)`; a `break` records the state at that
point with the condition under which it is reached (the conjunction of the
enclosing `if` tests), the next state is the first reached break's state
(`where` from the first to the last, then the state at the end), and a carried
flag, 0 once a break was taken, joins the loop's condition.  An if statement in a
function body outside loops is Lowerer.if_stmt, with the same merge_if; in both, a
constant test lowers only its side.

A constant count of at most UNROLL_MAX iterations, in a body without `break`
or `if`, is unrolled by dsl/lower.py as before: such a loop costs its length in
graph nodes, but a call of the unrolled graph runs 3-10 times faster than the
loop node (which runs a plan of its body per iteration, about 3 µs each), and
constants fold across iterations; the loop node's first result (build,
differentiate, compile, run) is 6-7 times sooner at 64 iterations, 28-42 times
at 1024 (`python benchmarks/loops.py --unroll`; docs/design.md, "Loops").  256
keeps BENCHMARKS.md's Rosenbrock loop (99 iterations) unrolled: as a loop node its
gradient took 1.43 ms a call against 33 µs unrolled, for a first result of 6.7 ms
against 87 ms, and a model's loop runs many calls.  A constant loop that cannot be a loop
node (the loop variable used where a constant is needed, a carried value that
changes shape) is unrolled when its count is within --max-unroll.

With RUN_LOOP_MIN set (None: off), a graph built to be run (ops.built_to_run: a
plan's, for a call or a derivative's call) keeps a constant count of RUN_LOOP_MIN or
more whose iterations run at once (dsl/loop_map.py; loops.runs_at_once) as a loop
node, while graphs to be read (printing, `graph`, LaTeX) unroll as before.  Measured
on BENCHMARKS.md's Rosenbrock gradient (99 iterations, CPU, loaded 2-core machine):
first result 11-14 ms against 60-100 ms unrolled (8 plan steps against 1,191), but
60-90 µs a call against 30-45 µs for the unrolled plan's scalar code, and against
~7 µs once long sums of like terms are rerolled into vector sums before
differentiating (autodiff.rerolled, whose first result is 28-39 ms).  It is off
until a loop node's call costs no more than the plan it replaces; a plan built
from a 200-iteration unrolled loop (tests/test_engine.py) relies on it too.
"""
from __future__ import annotations

import numpy as np

from . import ast, loops, ops
from .errors import BpError, BpNameError, BpShapeError, BpTypeError, BpValueError, Span
from .graph import Node, make_input
from .ops import apply, const
from .values import Function, leaf_paths, leaves, rebuild

UNROLL_MAX = 256         # a constant loop of at most this many iterations is unrolled
RUN_LOOP_MIN = None      # built to be run, one of at least this many that runs at once is not (off)


def assigned_names(stmts) -> list[str]:
    """The names a block binds (Assign, Update, Def), through nested blocks, in order of
    first binding; a nested for loop's variable is its own."""
    out: dict[str, None] = {}
    stack = [list(stmts)[::-1]]
    while stack:
        todo = stack[-1]
        if not todo:
            stack.pop()
            continue
        s = todo.pop()
        match s:
            case ast.Assign(targets):
                for t in targets:
                    out.setdefault(t)
            case ast.Update(name):
                out.setdefault(name)
            case ast.Def(name):
                out.setdefault(name)
            case ast.For(var, _, body):
                stack.append([st for st in body.stmts][::-1])
            case ast.If(_, then, orelse):
                more = list(then.stmts)
                while orelse is not None:
                    if isinstance(orelse, ast.If):
                        more += list(orelse.then.stmts)
                        orelse = orelse.orelse
                    else:
                        more += list(orelse.stmts)
                        orelse = None
                stack.append(more[::-1])
            case ast.While(_, body):
                stack.append(list(s.body.stmts)[::-1])
    return list(out)


def has_control(stmts) -> bool:
    """Whether a loop's own body holds break or if statements (a nested loop's are
    that loop's): such a loop is always a loop node, which is where they lower."""
    return any(isinstance(s, (ast.Break, ast.If)) for s in stmts)


def is_range(it: ast.Expr) -> bool:
    """`range(n)`, or `bp.range(n)` (how a printed loop spells it where the program
    has bound `range` to something else)."""
    return (isinstance(it, ast.Call) and len(it.args) == 1 and not it.kwargs
            and (isinstance(it.func, ast.Name) and it.func.id == "range"
                 or isinstance(it.func, ast.BuiltinRef) and it.func.name == "range"))


def for_count(lowerer, it: ast.Expr, scope):
    """n of `for i in range(n)`: an int when it is a constant, else a scalar node."""
    if not is_range(it):
        raise BpTypeError("a for loop runs over range(n): for i in range(n) { … }", it.span)
    n = lowerer.expr(it.args[0], scope)
    if isinstance(n, Node) and n.op == "const":
        return ops.static_int(n, "the loop count", it.args[0].span)
    if not isinstance(n, Node) or (isinstance(n.shape, tuple) and n.shape != ()):
        raise BpTypeError(f"range(n) needs a scalar n, got {ops.describe(n)}", it.args[0].span)
    return n


def lower_for(lowerer, stmt: ast.For, scope) -> bool:
    """Lower `for var in range(n) { body }` to a loop node; False when it is the
    caller's to unroll: a constant count of at most UNROLL_MAX in a body without
    break or if (but in a graph built to be run, a count of RUN_LOOP_MIN or more whose
    iterations run at once stays a loop node), or a constant loop that cannot be a loop
    node (the loop variable used where a constant is needed, a carried value that
    changes shape)."""
    n = for_count(lowerer, stmt.iter, scope)
    if isinstance(n, int):
        control = has_control(stmt.body.stmts)
        if n <= UNROLL_MAX and not control:
            if RUN_LOOP_MIN is None or not (ops.ACTIVE.to_run and n >= RUN_LOOP_MIN):
                return False
            try:
                return build(lowerer, scope, stmt.body.stmts, const(float(n), stmt.span),
                             stmt.var, None, stmt.span, check=loops.runs_at_once)
            except (BpValueError, BpShapeError, BpTypeError):
                return False
        try:
            build(lowerer, scope, stmt.body.stmts, const(float(max(n, 0)), stmt.span), stmt.var,
                  None, stmt.span)
        except (BpValueError, BpShapeError, BpTypeError):
            if control or n > ops.ACTIVE.limits.max_unroll:
                raise
            return False
        return True
    build(lowerer, scope, stmt.body.stmts, n, stmt.var, None, stmt.span)
    return True


def lower_while(lowerer, stmt, scope) -> None:
    build(lowerer, scope, stmt.body.stmts, const(np.inf, stmt.span), None, stmt.test, stmt.span)


class _Body:
    """The state of lowering one loop body: the breaks met so far."""

    def __init__(self, carried: list[str]):
        self.carried = carried
        self.breaks: list[tuple[Node | None, dict]] = []   # (path condition, carried values)


def build(lowerer, scope, stmts, n: Node, var: str | None, test, span: Span,
          check=None) -> bool:
    """Lower the loop to a loop node and bind the names it carries to its parts; with
    `check`, only when check(the loop's parts) holds (else nothing is bound: False)."""
    Scope = type(scope)
    cap = ops.ACTIVE.limits.max_iterations
    if test is None and n.op == "const" and float(n.value) > cap:
        raise ops.limit_error(f"a loop of {float(n.value):,.0f} iterations", "max_iterations", cap,
                              span)
    carried, init = [], []
    for name in assigned_names(stmts):
        if name == var:
            continue
        try:
            value = lowerer.name(name, scope, span)
        except BpError:
            continue                       # first bound inside the body: local to an iteration
        if isinstance(value, Function) or not all(isinstance(x, Node) for x in leaves(value)):
            raise BpTypeError(f"a loop cannot rebind '{name}': it holds {ops.describe(value)}, "
                              f"and a loop carries only tensors (and tuples or records of them)",
                              span)
        carried.append(name)
        init.append(value)
    k = loops.counter(span)
    phs, values = [], {}
    leaf_names = {}
    for name, value in zip(carried, init):        # th.a, th.b carried as th_a, th_b
        leaf_names[name] = [name + "".join(f"_{k}" for _, k in path) for path in leaf_paths(value)]
        leaf_phs = [make_input(nm, x.shape, span) for nm, x in zip(leaf_names[name], leaves(value))]
        phs += leaf_phs
        values[name] = rebuild(value, iter(leaf_phs))
    go = make_input("go", (), span)
    inner = Scope(scope, values)
    if var is not None:
        inner.bind(var, k)
    state = _Body(carried)
    cond = None
    if test is not None:
        c = lowerer.expr(test, inner)
        cond = _scalar(lowerer, c, "a while loop's condition", test.span)
    _block(lowerer, stmts, inner, state, None)
    ends = {name: _lookup(inner, name) for name in carried}
    # the next state: the first break reached, else the state at the end of the body
    nxt = {}
    for name in carried:
        v = ends[name]
        for pc, snap in reversed(state.breaks):
            if snap[name] is not v:             # unchanged since that break: nothing to choose
                v = _where(pc, snap[name], v, name, span)
        nxt[name] = v
    next_leaves = []
    for name, value in zip(carried, init):
        new = leaves(nxt[name])
        if len(new) != len(leaves(value)) or not all(isinstance(x, Node) for x in new):
            raise BpTypeError(f"the loop rebinds '{name}' to {ops.describe(nxt[name])}, which does "
                              f"not match what it held before the loop ({ops.describe(value)})",
                              span)
        next_leaves += new
    inits = [x for v in init for x in leaves(v)]
    names = tuple(nm for name in carried for nm in leaf_names[name])
    if state.breaks:
        taken = None
        for pc, _ in state.breaks:
            t = const(1.0) if pc is None else pc
            taken = t if taken is None else apply("or", [taken, t], span=span)
        phs.append(go)
        inits.append(const(1.0))
        next_leaves.append(apply("not", [taken], span=span))
        names += ("go",)
        cond = go if cond is None else apply("and", [go, cond], span=span)
    parts = loops.make_loop(n, inits, k, phs, next_leaves, (), cond, names, span)
    if check is not None and not check(parts):
        return False
    it = iter(parts)
    for name, value in zip(carried, init):
        scope.bind(name, rebuild(value, it))
    return True


def _lookup(scope, name):
    return scope.lookup(name)


class Unbound:
    """What a name holds after an if statement that bound it on one side only (and not
    before): reading it is a located name error (Python raises at the use too)."""
    __slots__ = ("name", "span")

    def __init__(self, name: str, span: Span):
        self.name, self.span = name, span

    def error(self, span: Span) -> BpNameError:
        return BpNameError(f"'{self.name}' is bound on only one side of the if statement at line "
                           f"{self.span.line} and not before it, so it has no value here: bind it "
                           f"before the if, or on both sides", span)


def if_test(lowerer, test: ast.Expr, scope, scalar: bool) -> Node:
    """An if statement's test: a scalar in a loop's body, a scalar or a tensor that
    broadcasts with the values it chooses between in a function body."""
    c = lowerer.need_tensor(lowerer.expr(test, scope), "an if statement's test", test.span)
    if scalar:
        c = _scalar(lowerer, c, "an if statement's test", test.span)
    return c


def constant_side(c: Node) -> bool | None:
    """Which side a constant single-element test takes (True: then), or None: both
    sides are lowered and joined by where."""
    if c.op == "const" and c.value.size == 1:
        return bool(c.value.reshape(()) != 0)
    return None


def branch_stmts(block) -> list:
    """The statements of an if's branch (`else if` is an If standing for one)."""
    if block is None:
        return []
    return [block] if isinstance(block, ast.If) else list(block.stmts)


def merge_if(scope, c: Node, t_scope, e_scope, t_gone: bool, e_gone: bool, span: Span) -> None:
    """After an if: bind each name either side bound to where(c, then, else), the value
    before the if standing for a side that did not bind it; a side that left (a break,
    a return) does not go on, so the other side's value is taken.  A name bound on
    one side only and not before holds an Unbound."""
    for name in dict.fromkeys(list(t_scope.vars) + list(e_scope.vars)):
        try:
            before = _lookup(scope, name)
        except KeyError:
            before = None
        if isinstance(before, Unbound):
            before = None
        a = t_scope.vars.get(name, before)
        b = e_scope.vars.get(name, before)
        a, b = (None if isinstance(x, Unbound) else x for x in (a, b))
        if t_gone:
            a = b
        if e_gone:
            b = a
        if a is None or b is None:
            scope.bind(name, Unbound(name, span))
        else:
            scope.bind(name, a if a is b else _where(c, a, b, name, span))


def _scalar(lowerer, lv, what: str, span: Span) -> Node:
    node = lowerer.need_tensor(lv, what, span)
    if isinstance(node.shape, tuple) and node.shape != ():
        raise BpTypeError(f"{what} must be a scalar, got shape {ops.shapes.fmt(node.shape)}", span)
    return node


def _where(c: Node | None, a, b, name: str, span: Span):
    """where(c, a, b) leaf by leaf (c None: always a)."""
    if c is None:
        return a
    la, lb = leaves(a), leaves(b)
    if len(la) != len(lb) or not all(isinstance(x, Node) for x in la + lb):
        raise BpTypeError(f"'{name}' holds different kinds of value on the two sides of an if",
                          span)
    return rebuild(a, iter(apply("where", [c, x, y], span=span) for x, y in zip(la, lb)))


def _and(a: Node | None, b: Node, span) -> Node:
    return b if a is None else apply("and", [a, b], span=span)


def _block(lowerer, stmts, scope, state: _Body, pc: Node | None) -> bool:
    """Lower a loop body's statements; True when the block ended at a break."""
    Scope = type(scope)
    no_return = lowerer.block((), scope)          # what a block without return gives
    for stmt in stmts:
        match stmt:
            case ast.Break():
                state.breaks.append((pc, {name: _lookup(scope, name) for name in state.carried}))
                return True
            case ast.If(test, then, orelse):
                c = if_test(lowerer, test, scope, scalar=True)
                side = constant_side(c)
                if side is not None:            # a constant test: only its side is built
                    if _block(lowerer, branch_stmts(then if side else orelse), scope, state, pc):
                        return True
                    continue
                sides = []
                for block, cond in ((then, c), (orelse, apply("not", [c], span=stmt.span))):
                    child = Scope(scope)
                    ended = _block(lowerer, branch_stmts(block), child, state,
                                   _and(pc, cond, stmt.span)) if block is not None else False
                    sides.append((child, ended))
                (t_scope, t_broke), (e_scope, e_broke) = sides
                if t_broke and e_broke:
                    return True
                merge_if(scope, c, t_scope, e_scope, t_broke, e_broke, stmt.span)
            case ast.Return():
                raise BpTypeError("return inside a while loop, or a for loop over a runtime "
                                  "count, is not supported: assign the result and return after "
                                  "the loop", stmt.span)
            case _:
                result = lowerer.block([stmt], scope)
                if result is not no_return:
                    raise BpTypeError("return inside a loop node's body is not supported",
                                      stmt.span)
    return False
