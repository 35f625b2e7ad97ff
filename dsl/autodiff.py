"""Differentiation as graph-to-graph rules (Deep Learning §6.5.5).

Reverse mode is Algorithm 6.4 generalised: walk the nodes between the
inputs and the outputs in reverse topological order, ask each op's VJP
rule for its inputs' cotangents, and sum them per input.  Forward mode
pushes tangents through the JVP rules in topological order.  Both build
ordinary nodes in the same graph, so a derivative prints, evaluates and
differentiates again.  Every walk is an explicit loop.

The transforms of SPEC §5 sit on top: each binds the function's
parameters to fresh placeholder inputs, builds the derivative with respect
to them, and substitutes the real arguments back in.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np

from . import ops, reroll, shapes, taylor
from .errors import BpTypeError, BpValueError, Span
from .graph import Node, intern, make_input, topo_order
from .ops import REGISTRY, algebra, apply, building, const, is_const_value
from .ops.elementwise import broadcast_shape, same_shape
from .values import (Builtin, Closure, Function, HostFunction, Record, Transform, bind_arguments,
                     leaves, rebuild)


# ── the two modes ────────────────────────────────────────────────────────

def vjp_graph(outputs: list[Node], cts: list[Node], wrt: list[Node],
              order: list[Node] | None = None) -> list[Node]:
    """Cotangents of `wrt` given cotangents of `outputs` (reverse mode); `order` is
    topo_order(outputs), when the caller has it."""
    if order is None:
        order = topo_order(outputs)
    needed = _depends_on(order, wrt)
    grads: dict[int, Node] = {}
    for out, ct in zip(outputs, cts):
        if id(out) in needed:
            grads[id(out)] = _accumulate(grads.get(id(out)), ct)
    reads: dict[int, _Reads] = {}
    wanted = {id(w) for w in wrt}
    # Nodes built for `node` take origin "d" and its span: one entry on the building
    # stack for the whole walk, set per node (a `with building` per node costs more).
    where = ops.ACTIVE.building
    where.append(("d", None))
    try:
        for node in reversed(order):
            key = id(node)
            if key in reads:                    # every read of node is in: gather them
                where[-1] = ("d", node.span)
                grads[key] = _accumulate(grads.get(key), reads.pop(key).gather(node))
            ct = grads.get(key) if key in wanted else grads.pop(key, None)
            if ct is None or not node.inputs:
                continue
            opdef = REGISTRY[node.op]
            if opdef.vjp is None:
                continue
            where[-1] = ("d", node.span)
            for inp, c in zip(node.inputs, _input_cotangents(opdef, node, ct)):
                if c is None or id(inp) not in needed:
                    continue
                position = _read_position(c, inp) if c.op == "unindex" else None
                if position is not None:
                    got = reads.get(id(inp))
                    if got is None:
                        got = reads[id(inp)] = _Reads()
                    got.add(position, c)
                else:
                    g = grads.get(id(inp))
                    grads[id(inp)] = c if g is None else apply("add", [g, c])
    finally:
        where.pop()
    return [grads.get(id(w)) or ops.zeros(w.shape, w) for w in wrt]


def _read_position(c: Node, x: Node) -> tuple[int, ...] | None:
    """For the cotangent of a read x[i, j, …] with whole-number indices (an unindex
    into x), the position it reads, each index counted from 0; else None."""
    if c.op != "unindex" or c.inputs[1] is not x or not isinstance(x.shape, tuple):
        return None
    items = c.attr("items")
    if not all(item[0] == "i" for item in items):
        return None
    return tuple(item[1] % n for item, n in zip(items, x.shape))


class _Reads:
    """The cotangents of the whole-number reads of one node x, kept apart from its
    other cotangents until all are in.  Where the reads cover at least half of the
    positions, their sum is one vector built from the read cotangents (a stack,
    zeros where nothing was read) instead of a zeros(n) and an add per read."""

    def __init__(self):
        self.parts: dict[tuple, list[Node]] = {}      # position -> its unindex cotangents

    def add(self, position: tuple, c: Node) -> None:
        self.parts.setdefault(position, []).append(c)

    def gather(self, x: Node) -> Node:
        total = None
        by_rank: dict[int, dict[tuple, list[Node]]] = {}
        for position, cs in self.parts.items():
            by_rank.setdefault(len(position), {})[position] = cs
        for rank, parts in by_rank.items():
            lead, rest = x.shape[:rank], x.shape[rank:]
            if 2 * len(parts) >= shapes.size(lead) and len(parts) > 1 \
                    and all(c.inputs[0].shape == rest for cs in parts.values() for c in cs):
                total = _accumulate(total, _stacked(parts, lead, rest, x.shape))
            else:
                for cs in parts.values():
                    for c in cs:
                        total = _accumulate(total, c)
        return total


def _stacked(parts: dict[tuple, list[Node]], lead: tuple, rest: tuple, shape: tuple) -> Node:
    zero = const(np.zeros(rest))
    entries = []
    for position in np.ndindex(*lead):
        cs = parts.get(position)
        g = None
        for c in cs or ():
            g = _accumulate(g, c.inputs[0])
        entries.append(zero if g is None else g)
    vector = apply("stack", entries, {"axis": 0})
    return vector if len(lead) == 1 else apply("reshape", [vector], {"shape": shape})


def jvp_graph(outputs: list[Node], wrt: list[Node], tangents: list[Node]) -> list[Node]:
    """Tangents of `outputs` given tangents of `wrt` (forward mode)."""
    order = topo_order(outputs)
    tan: dict[int, Node] = {id(w): t for w, t in zip(wrt, tangents)}
    for node in order:
        if id(node) in tan or not node.inputs:
            continue
        ins = [tan.get(id(i)) for i in node.inputs]
        if all(t is None for t in ins):
            continue
        opdef = REGISTRY[node.op]
        if opdef.jvp is None:
            continue
        with building("d", node.span):
            t = opdef.jvp(tuple(ins), node, node.inputs, dict(node.attrs))
        if t is not None:
            tan[id(node)] = t
    return [tan.get(id(o)) or ops.zeros(o.shape, o) for o in outputs]


def _depends_on(order: list[Node], wrt: list[Node]) -> set[int]:
    """Ids of the nodes whose value depends on any of `wrt`."""
    dep = {id(w) for w in wrt}
    for node in order:
        for i in node.inputs:
            if id(i) in dep:
                if id(node) not in dep and REGISTRY[node.op].differentiable:
                    dep.add(id(node))
                break
    return dep


def _accumulate(total: Node | None, c: Node) -> Node:
    return c if total is None else apply("add", [total, c])


_ELEMENTWISE_SHAPES = (same_shape, broadcast_shape)


def _unmask(ct: Node):
    if ct.op == "where":
        cond, a, b = ct.inputs
        if is_const_value(b, 0):
            return (cond, True), a
        if is_const_value(a, 0):
            return (cond, False), b
    return None, ct


def _input_cotangents(opdef, node: Node, ct: Node) -> tuple:
    """The op's VJP rule, keeping a where-masked cotangent masked.

    A cotangent where(c, g, 0) (from `if … then … else`) is passed through an
    elementwise rule as g, and the mask put back on each result: the branch
    not taken then contributes an exact 0 even where its local derivative is
    inf or nan (0·inf would be nan).  That is only right where the rule acts
    element by element; a result the rule reduced (a broadcast operand) is
    masked before it is reduced, or else computed from the masked cotangent.
    """
    attrs = dict(node.attrs)
    mask, inner = _unmask(ct)
    if mask is None or opdef.shape not in _ELEMENTWISE_SHAPES:
        return opdef.vjp(ct, node, node.inputs, attrs)
    cond, on_true = mask
    zero = const(0.0)

    def masked(c):
        return apply("where", [cond, c, zero] if on_true else [cond, zero, c])
    plain = None
    out = []
    for k, c in enumerate(opdef.vjp(inner, node, node.inputs, attrs)):
        if c is not None and c.shape == node.shape:
            c = masked(c)
        elif c is not None and c.op == "unbroadcast" and c.inputs[0].shape == node.shape:
            c = apply("unbroadcast", [masked(c.inputs[0]), c.inputs[1]])    # mask, then reduce
        elif c is not None:
            plain = plain or opdef.vjp(ct, node, node.inputs, attrs)
            c = plain[k]
        out.append(c)
    return tuple(out)


def substitute(outputs: list[Node], mapping: dict[int, Node]) -> list[Node]:
    """The graph of `outputs` rebuilt with some nodes replaced (and refolded)."""
    new: dict[int, Node] = dict(mapping)
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        ins = [new.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(ins, node.inputs)):
            new[id(node)] = node
        else:
            new[id(node)] = apply(node.op, ins, dict(node.attrs), node.span, node.origin)
    return [new.get(id(o), o) for o in outputs]


def rename(outputs: list[Node], mapping: dict[int, Node]) -> list[Node]:
    """The graph of `outputs` with some inputs replaced by their twins (inputs the algebra
    orders alike, none of them in the graph): the same nodes, op for op, interned anew,
    each with what the algebra knew of the old one (its polynomial, atoms renamed).  No
    op is applied again: nothing folds that did not fold, no canonical form changes."""
    new: dict[int, Node] = dict(mapping)
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        ins = tuple(new.get(id(i), i) for i in node.inputs)
        if all(a is b for a, b in zip(ins, node.inputs)):
            new[id(node)] = node
            continue
        twin = new[id(node)] = intern(node.op, ins, node.attrs, node.shape, node.span,
                                      origin=node.origin)
        algebra.carry(node, twin, new)          # (an atom's polynomial is the atom itself)
    return [new.get(id(o), o) for o in outputs]


# ── transforms ───────────────────────────────────────────────────────────

def param_names(fn: Function) -> tuple[str, ...]:
    """The parameter names a transform's wrt= refers to."""
    match fn:
        case Closure():
            return fn.param_names
        case Builtin(name):
            entry = ops.BUILTINS.get(name)
            if isinstance(entry, ops.OpDef):
                return entry.params
            return ("x",)
        case HostFunction(params=params):
            return params
        case Transform(kind, inner):
            names = param_names(inner)
            if kind in ("jvp", "hvp", "vjp", "taylor"):
                return names + (fresh_name("u" if kind == "vjp" else "v", names),)
            return names
    return ("x",)


def fresh_name(base: str, taken) -> str:
    """`base`, or `base` with the first number that makes it a name not in `taken`:
    the name a transform gives the parameter it adds (jvp's tangent, vjp's
    cotangent), which must never be one of the function's own parameters."""
    if base not in taken:
        return base
    k = 1
    while f"{base}{k}" in taken:
        k += 1
    return f"{base}{k}"


def resolve_wrt(t: Transform, names: tuple[str, ...], span: Span) -> tuple[list[int], bool]:
    """wrt= as parameter positions, and whether it was a tuple."""
    spec = dict(t.options).get("wrt", 0)
    many = isinstance(spec, tuple)
    out = []
    for item in (spec if many else (spec,)):
        if isinstance(item, str):
            if item not in names:
                raise BpTypeError(f"{t.kind}(…, wrt={item}): the function has no parameter "
                                  f"'{item}'; its parameters are {', '.join(names)}", span)
            out.append(names.index(item))
        else:
            if not -len(names) <= item < len(names):
                raise BpTypeError(f"{t.kind}(…, wrt={item}): the function has only {len(names)} "
                                  f"parameter{'s' * (len(names) != 1)} ({', '.join(names)}); "
                                  f"positions count from 0, or from -1 at the end", span)
            out.append(item % len(names))
    return out, many


def call_transform(lowerer, t: Transform, args: list, kwargs: dict, span: Span,
                   pairs: list | None = None):
    """Build the graph of t(args…) inline, in terms of the actual arguments.

    With `pairs` (a list), the result stays in terms of the placeholders and
    the (placeholder, actual) pairs are appended to it instead: a caller
    that owns the actual inputs can then skip the substitution.
    """
    names = param_names(t.fn)
    outer = param_names(t)
    bound = _bind(t, outer, args, kwargs, span)
    inner = type(lowerer)(lowerer.ctx, eager=False)
    vector = bound[len(names)] if len(outer) > len(names) else None
    wrt, many = resolve_wrt(t, names, span) if t.kind != "diff" else ([0], False)

    placeholders: dict[int, list[Node]] = {}
    call_args = list(bound[:len(names)])
    display = getattr(lowerer.ctx, "symbolic", False)
    twins = not display and t.kind not in ("diff", "taylor") and _distinct_inputs(bound, wrt)
    # On the arguments themselves when f cannot read them but through its parameters
    # (_sealed): no placeholders, nothing to put in afterwards.
    direct = twins and _sealed(t.fn, bound, wrt)
    for i in wrt:
        value = call_args[i]
        if not all(isinstance(x, Node) for x in leaves(value)):
            raise BpTypeError(f"{t.kind}: the argument for '{names[i]}' must be a tensor, a tuple "
                              f"or a record of tensors", span)
        if direct:
            placeholders[i] = list(leaves(value))
            continue
        # A twin of an input argument (its name, so the algebra orders the two alike:
        # _on_arguments), else a placeholder ∂name
        ph = [make_input(x.attr("name") if twins else f"∂{names[i]}", x.shape, span)
              for x in leaves(value)]
        placeholders[i] = ph
        call_args[i] = rebuild(value, iter(ph))
    flat_ph = [p for i in wrt for p in placeholders[i]]

    def scalar_output(out, what):
        if not isinstance(out, Node):
            raise BpTypeError(f"{what} needs a function that returns a scalar, got "
                              f"{ops.describe(out)}", span)
        if isinstance(out.shape, tuple) and out.shape != ():
            raise BpTypeError(f"{what} needs a function that returns a scalar, but it returns shape "
                              f"{shapes.fmt(out.shape)}: use jacobian(f), or take the gradient "
                              f"of x -> sum(f(x))", span)
        return out

    def per_wrt(flat: list[Node]):
        it = iter(flat)
        parts = [rebuild(bound[i], it) for i in wrt]
        return tuple(parts) if many else parts[0]

    kind = t.kind
    # Built to be read (printed, listed, exported) rather than run (`display`): Jacobians
    # take their matrix-calculus form (see _jacobian).
    if kind == "diff":
        result = _diff(inner, t, call_args, placeholders[0], span)
    else:
        out = inner.call(t.fn, call_args, {}, span)
        if twins and not direct:
            on = _on_arguments(out, placeholders, bound, wrt)
            if on is not None:             # the derivative built on the arguments themselves
                out, flat_ph, direct = on[0], on[1], True
        walked = None                      # topo_order([out]), when a walk made it
        if not display and ops.ACTIVE.to_run:
            out, walked = rerolled(out)    # long sums of like terms as vector sums
            if not isinstance(out, Node):
                walked = None
        if kind in ("grad", "value_and_grad"):
            out = scalar_output(out, kind)
            g = per_wrt(vjp_graph([out], [_seed(out)], flat_ph, walked))
            result = (out, g) if kind == "value_and_grad" else g
        elif kind == "jacobian":
            # A tuple or record output gives one Jacobian (structured like wrt=) per
            # output leaf, in the output's structure: JAX's convention for pytrees.
            outs = [_tensor_output(o, kind, span) for o in _output_leaves(out, kind, span)]
            result = rebuild(out, iter([per_wrt([_jacobian(o, p, span, display) for p in flat_ph])
                                        for o in outs]))
        elif kind == "hessian":
            # jacobian(grad(f, wrt=…), wrt=…) (SPEC §5): for several parameters the
            # blocks ∂²f/∂xᵢ∂xⱼ, nested by i then j, the cross terms included.
            out = scalar_output(out, kind)
            grads = vjp_graph([out], [_seed(out)], flat_ph)
            result = per_wrt([per_wrt([_jacobian(g, p, span, display) for p in flat_ph])
                              for g in grads])
        elif kind == "jvp":
            out = _tensor_output(out, kind, span)
            vs = _vector_leaves(vector, flat_ph, "tangent v", span)
            result = (out, jvp_graph([out], flat_ph, vs)[0])
        elif kind == "vjp":
            out = _tensor_output(out, kind, span)
            u = _vector_leaves(vector, [out], "cotangent u", span)[0]
            result = (out, per_wrt(vjp_graph([out], [u], flat_ph)))
        elif kind == "hvp":
            out = scalar_output(out, kind)
            grads = vjp_graph([out], [_seed(out)], flat_ph)
            vs = _vector_leaves(vector, flat_ph, "vector v", span)
            result = per_wrt(jvp_graph(grads, flat_ph, vs))
        elif kind == "taylor":
            # A tuple or record output gives each coefficient in the output's structure.
            outs = [_tensor_output(o, kind, span) for o in _output_leaves(out, kind, span)]
            vs = _vector_leaves(vector, flat_ph, "direction v", span)
            n = dict(t.options)["n"]
            series = taylor.taylor_graph(outs, flat_ph, vs, n)
            result = tuple(rebuild(out, iter([ops.zeros(o.shape, o) if s[k] is None else s[k]
                                              for o, s in zip(outs, series)]))
                           for k in range(n + 1))
        else:
            raise BpTypeError(f"unknown transform {kind}", span)

    if direct:
        return result
    if pairs is not None:
        pairs.extend((p, x) for i in wrt for p, x in zip(placeholders[i], leaves(bound[i])))
        return result
    actual = {id(p): x for i in wrt for p, x in zip(placeholders[i], leaves(bound[i]))}
    flat = leaves(result)
    # A Taylor graph is kept in the form its builder chose (taylor.taylor_graph: with
    # the algebra's canonical forms or as written): put in terms of the arguments as it
    # is, not canonicalised again (which took most of diff's build, and undid the choice)
    with ops.plain_arithmetic() if kind in ("diff", "taylor") else nullcontext():
        new = substitute([x for x in flat if isinstance(x, Node)], actual)
    it = iter(new)
    return rebuild(result, iter([next(it) if isinstance(x, Node) else x for x in flat]))


def rerolled(value):
    """(`value`, a tensor or a tuple or record of them, with each long sum of like terms in
    its graph as one vector sum (dsl/reroll.py): for graphs built to run; and, when none
    was, topo_order of its tensors, else None)."""
    flat = [x for x in leaves(value) if isinstance(x, Node)]
    mapping, order = reroll.reroll(flat)
    if not mapping:
        return value, order
    if all(id(x) in mapping for x in flat):       # the sums are the results: nothing to redo
        new = iter([mapping[id(x)] for x in flat])
    else:
        new = iter(substitute(flat, mapping))
    return rebuild(value, iter([next(new) if isinstance(x, Node) else x for x in leaves(value)])), None


def _distinct_inputs(bound: list, wrt: list) -> bool:
    """Whether every argument differentiated for is a graph input, no two the same."""
    actual = [x for i in wrt for x in leaves(bound[i])]
    return all(isinstance(x, Node) and x.op == "input" for x in actual) and \
        len({id(x) for x in actual}) == len(actual)


def _sealed(fn: Function, bound: list, wrt: list) -> bool:
    """Whether f can read the arguments differentiated for (distinct graph inputs) only
    through its parameters, as far as can be told before its graph is built: f is a
    top-level function or a builtin (a closure made inside the function being built
    may have captured them; a top-level one sees globals, which are values), a
    transform of one, and no other argument (nor a tangent) is computed from them."""
    while isinstance(fn, Transform):
        fn = fn.fn
    if isinstance(fn, Closure) and fn.env is not None or \
            not isinstance(fn, (Closure, Builtin, HostFunction)):
        return False
    ids = {id(x) for i in wrt for x in leaves(bound[i])}
    others = [x for i, b in enumerate(bound) if i not in wrt for x in leaves(b)
              if isinstance(x, Node)]
    return not any(id(n) in ids for n in topo_order(others))


def _on_arguments(out, placeholders: dict, bound: list, wrt: list):
    """f's output in terms of the actual arguments, and those arguments to differentiate
    with respect to, when that is the same derivative: when the arguments are distinct
    graph inputs (_distinct_inputs) that f's graph does not read except through its
    parameters (a closure capturing x, as in grad(y -> x*y)(x), reads x otherwise).
    Then the derivative of the forward graph with the arguments put in is the
    derivative at the arguments.  Each placeholder is the twin of its argument (an
    input of the same name), which the algebra orders exactly as it orders the
    argument, so the forward graph is put in terms of the arguments node for node
    (`rename`), nothing renormalised, and the derivative is built once, on them.
    None otherwise: the derivative is built on the placeholders and substituted."""
    actual = [x for i in wrt for x in leaves(bound[i])]
    outs = [o for o in leaves(out) if isinstance(o, Node)]
    ids = {id(x) for x in actual}
    if any(id(n) in ids for n in topo_order(outs)):
        return None
    ph = [p for i in wrt for p in placeholders[i]]
    new = iter(rename(outs, {id(p): x for p, x in zip(ph, actual)}))
    return rebuild(out, iter([next(new) if isinstance(o, Node) else o for o in leaves(out)])), actual


def _seed(out: Node) -> Node:
    """The cotangent 1 of a scalar output; of the output's shape when that is only
    known at call time (printing a function of a parameter without annotation)."""
    return const(1.0) if out.shape == () else apply("broadcast_like", [const(1.0), out])


def _bind(t: Transform, names: tuple[str, ...], args: list, kwargs: dict, span: Span) -> list:
    bound = bind_arguments(f"{t.kind}(…)", names, args, kwargs, span)
    return [bound[n] for n in names]


def _output_leaves(out, what: str, span: Span) -> list:
    items = leaves(out) if isinstance(out, (tuple, Record)) else [out]
    if not items:
        raise BpTypeError(f"{what} needs a function that returns a tensor, got {ops.describe(out)}",
                          span)
    return items


def _tensor_output(out, what: str, span: Span) -> Node:
    if not isinstance(out, Node):
        raise BpTypeError(f"{what} needs a function that returns a tensor, got {ops.describe(out)}",
                          span)
    return out


def _vector_leaves(vector, like: list[Node], what: str, span: Span) -> list[Node]:
    vs = leaves(vector) if isinstance(vector, (tuple, Record)) else [vector]
    if len(vs) != len(like) or not all(isinstance(v, Node) for v in vs):
        raise BpTypeError(f"the {what} must match the differentiated argument(s): "
                          f"{len(like)} tensor{'s' * (len(like) != 1)}", span)
    out = []
    for v, x in zip(vs, like):
        if isinstance(v.shape, tuple) and isinstance(x.shape, tuple) and v.shape != x.shape:
            if shapes.broadcast(v.shape, x.shape, span=span) != x.shape:
                raise BpTypeError(f"the {what} has shape {shapes.fmt(v.shape)}, expected "
                                  f"{shapes.fmt(x.shape)}", span)
            v = apply("broadcast_like", [v, x])
        out.append(v)
    return out


def _diff(inner, t: Transform, call_args: list, ph: list[Node], span: Span):
    """diff(f, n)(x): grad(x -> sum(f(x))) applied n times, at placeholder x.

    For n ≥ 2 the n-th Taylor coefficient along v = 1, times n!, is the same
    derivative where f is elementwise (or x a scalar); it is built first, in
    O(n²) nodes, and the nested derivatives are built only while they stay
    smaller: the smaller graph is the result (so diff(tanh, 3) keeps its
    polynomial in tanh, and diff of a composite of order 20 does not swell)."""
    n = dict(t.options).get("n", 1)
    y = _elementwise_output(inner.call(t.fn, call_args, {}, span), ph[0], span)
    x = ph[0]
    series = _diff_by_taylor(y, x, n) if n >= 3 else None
    bound = None if series is None else _op_count(series)
    before = None
    for k in range(n):
        if k:
            y = _elementwise_output(y, x, span)
            if bound is not None:        # stop once it is bigger, or big and on course to be
                size = _op_count(y)
                growth = size / before if before else 1.0
                if size > bound or (size > 256 and size * growth ** (n - k) > bound):
                    return series
                before = size
        total = apply("sum", [y], {"axis": None, "keepdims": False})
        y = vjp_graph([total], [const(1.0)], [x])[0]
    if bound is not None and _op_count(y) > bound:
        return series
    return y


def _elementwise_output(y, x: Node, span: Span) -> Node:
    y = _tensor_output(y, "diff", span)
    if isinstance(y.shape, tuple) and isinstance(x.shape, tuple) and y.shape != x.shape \
            and shapes.broadcast(y.shape, x.shape, span=span) != x.shape:
        raise BpTypeError(f"diff needs an elementwise function: it returns shape "
                          f"{shapes.fmt(y.shape)} for an argument of shape {shapes.fmt(x.shape)}",
                          span)
    return y


def _diff_by_taylor(y: Node, x: Node, n: int) -> Node | None:
    """n!·(coefficient n of y(x + t)), where that is the n-th derivative: every op
    between x and y is elementwise, or x is a scalar.  None where it is not, or
    where an op on the way has no Taylor rule."""
    from .ops.batched import elementwise
    if x.shape != ():
        order = topo_order([y])
        moving = {id(x)}
        for node in order:
            if any(id(i) in moving for i in node.inputs):
                if REGISTRY[node.op].batch is not elementwise:
                    return None
                moving.add(id(node))
    one = const(1.0) if x.shape == () else apply("broadcast_like", [const(1.0), x])
    try:
        coef = taylor.taylor_graph([y], [x], [one], n, "diff")[0][n]
    except taylor.NoRule:
        return None
    if coef is None:
        return ops.zeros(y.shape, y) if y.shape == x.shape else ops.zeros(x.shape, x)
    coef = apply("mul", [const(float(math.factorial(n))), coef])
    if coef.shape != x.shape:        # f broadcast a scalar: its derivative has x's shape
        coef = apply("broadcast_like", [coef, x])
    return coef


def _op_count(y: Node) -> int:
    return sum(1 for node in topo_order([y]) if node.inputs)


def _jacobian(out: Node, x: Node, span: Span, display: bool = False) -> Node:
    """d out / d x with shape shape(out) + shape(x): one VJP per output element,
    or one JVP per input element when the input is the smaller.

    For display, between vectors and scalars, the matrix-calculus form where the
    derivative is built of linear forms (dsl/linear.py: A + A', diag(6 * x)).  It is
    the same matrix; evaluation keeps the batched form, which is as fast or faster
    and keeps the stable rules of the softmax family (diag(s) - outer(s, s) loses
    digits where an entry of s is within 1e-13 of 1)."""
    so = _known(out, "jacobian", span)
    sx = _known(x, "jacobian", span)
    m, n = shapes.size(so), shapes.size(sx)
    if m == 0 or n == 0:
        return const(np.zeros(so + sx))
    if so == ():
        return vjp_graph([out], [const(1.0)], [x])[0]
    if sx == ():                                  # one direction: the JVP along 1
        return jvp_graph([out], [x], [const(1.0)])[0]
    with building("d", span):
        if display and len(so) <= 1 and len(sx) == 1:
            from . import linear
            t = make_input("∂t", sx, span)
            matrix = linear.matrix_of(jvp_graph([out], [x], [t])[0], t)
            if matrix is not None:
                return matrix
        return _jacobian_built(out, x, so, sx, m, n, span)


def _jacobian_built(out: Node, x: Node, so: tuple, sx: tuple, m: int, n: int, span: Span) -> Node:
    from . import batching
    # One graph for all directions: the derivative with a placeholder seed, batched.
    # The seed is the identity: batched on bands first (O(n) work per op where the
    # Jacobian is banded), densely if some op on the way has no banded rule.
    if n < m:
        t = make_input("∂t", sx, span)
        col = jvp_graph([out], [x], [t])[0]
        got = batching.batch_identity([col], t) \
            or batching.batch([col], t, const(np.eye(n).reshape((n,) + sx)))
        if got is not None:                       # (n,) + so → so + sx
            moved = apply("transpose", [got[0]], {"axes": tuple(range(1, len(so) + 1)) + (0,)})
            return apply("reshape", [moved], {"shape": so + sx})
    else:
        u = make_input("∂u", so, span)
        row = vjp_graph([out], [u], [x])[0]
        got = batching.batch_identity([row], u) \
            or batching.batch([row], u, const(np.eye(m).reshape((m,) + so)))
        if got is not None:                       # (m,) + sx → so + sx
            return apply("reshape", [got[0]], {"shape": so + sx})
    # No batching rule for some op on the way: one derivative per direction.
    if n < m:
        cols = [jvp_graph([out], [x], [const(np.eye(n)[j].reshape(sx))])[0] for j in range(n)]
        stacked = apply("stack", cols, {"axis": len(so)})
        return apply("reshape", [stacked], {"shape": so + sx})
    rows = [vjp_graph([out], [const(np.eye(m)[i].reshape(so))], [x])[0] for i in range(m)]
    return apply("reshape", [apply("stack", rows, {"axis": 0})], {"shape": so + sx})


def _known(x: Node, what: str, span: Span) -> tuple:
    if not isinstance(x.shape, tuple):
        raise BpValueError(f"{what} needs known shapes: give the parameters shape annotations "
                           f"(x: [3]) to show it", span)
    return x.shape
