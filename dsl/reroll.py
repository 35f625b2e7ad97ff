"""Rerolling: a long sum of like terms, in a graph built to run, as one vector sum.

A program written out term by term (generated source, a loop unrolled by the
lowering) often sums thousands of scalars of one form, each reading an input at
positions that step evenly from term to term:

    100*(x[1] - x[0]^2)^2 + (1 - x[0])^2 + 100*(x[2] - x[1]^2)^2 + (1 - x[1])^2 + …

Each term is a graph of a few scalar nodes; as written, a plan runs them one by
one (and their derivative, built from them, is as long again).  Here the terms of
one such sum are grouped by their *form*: the term's graph with each whole-number
read of a tensor, x[k], as a slot (two terms have one form when they differ only
in the positions their slots read).  A group of at least MIN_TERMS terms whose
slots read positions k₀ + m·d for the m-th term (an arithmetic progression along
one axis) is the first term batched over m (dsl/batching.py, the rules jacobian
and the loops use), with each slot read as the slice x[k₀ : k₀ + M·d : d], and
summed.  The sum is then one vector expression, and so is its derivative.

Only plans are rerolled (autodiff builds under ops.built_to_run call this on the
function's graph before differentiating it): what is printed, listed or exported
stays as written.  A group sums in NumPy's pairwise order instead of one term after
another, which changes the last bits of a long sum (towards the exact sum).
"""
from __future__ import annotations

import numpy as np

from .batching import batch_map
from .graph import Node, topo_order
from .ops import apply, building, const

MIN_TERMS = 32          # like terms in one sum, at least, for a vector form
MAX_TERM_NODES = 48     # nodes of one term's form, at most (past this: kept as written)


def reroll(outputs: list[Node]) -> tuple[dict[int, Node], list[Node]]:
    """{id(sum): its rerolled form} for each long sum of like terms in the graph of
    `outputs` (empty when there is none; the caller substitutes it:
    autodiff.substitute), and topo_order(outputs), which the walk made."""
    order = topo_order(outputs)
    uses: dict[int, int] = {}        # of each add, by any node
    summed: set[int] = set()         # the adds an add reads
    for node in order:
        for i in node.inputs:
            if i.op == "add":
                uses[id(i)] = uses.get(id(i), 0) + 1
                if node.op == "add":
                    summed.add(id(i))
    # an add used once, by an add, is part of a longer sum
    inner = {k for k in summed if uses[k] == 1}
    for o in outputs:
        inner.discard(id(o))
    mapping: dict[int, Node] = {}
    for node in order:
        if node.op != "add" or node.shape != () or id(node) in inner:
            continue
        terms = _terms(node, inner)
        if len(terms) >= MIN_TERMS:
            with building("f", node.span):
                new = _rerolled(terms)
            if new is not None:
                mapping[id(node)] = new
    return mapping, order


def _terms(root: Node, inner: set[int]) -> list[Node]:
    """The terms of the sum at `root`, in order (left to right)."""
    terms: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.op == "add" and (node is root or id(node) in inner):
            stack.append(node.inputs[1])
            stack.append(node.inputs[0])
        else:
            terms.append(node)
    return terms


def _form(term: Node):
    """(form, slots) of a term: the form a hashable description of its graph with its
    slots numbered; slots the term's whole-number reads [(node, source, positions)], in
    the form's order.  None if the term is not a small graph of scalars."""
    if term.shape != ():
        return None
    number: dict[int, int] = {}
    form: list = []
    slots: list = []
    stack = [term]
    while stack:
        node = stack[-1]
        if id(node) in number:
            stack.pop()
            continue
        op = node.op
        if op == "index" and _is_slot(node):
            source = node.inputs[0]
            positions = tuple(item[1] % n for item, n in zip(node.attr("items"), source.shape))
            form.append(("slot", id(source), len(positions)))
            slots.append((node, source, positions))
        elif op == "const" and node.shape == ():        # a number: may differ from term to term
            form.append("c")
            slots.append((node, None, None))
        elif op == "const" or op == "input":            # by identity
            form.append(id(node))
        else:
            # A tensor computed on the way (which might read a slot) is not batched
            # here: such a term stays as written.
            if node.shape != () or len(number) > MAX_TERM_NODES:
                return None
            pending = False
            for i in node.inputs:
                if id(i) not in number:
                    stack.append(i)
                    pending = True
            if pending:
                continue
            form.append((op, node.attrs) + tuple([number[id(i)] for i in node.inputs]))
        stack.pop()
        number[id(node)] = len(form) - 1
    return tuple(form), slots


def _is_slot(node: Node) -> bool:
    if not isinstance(node.inputs[0].shape, tuple):
        return False
    for item in node.attr("items"):
        if item[0] != "i":
            return False
    return True


def _rerolled(terms: list[Node]) -> Node | None:
    """The sum of `terms` with each big enough group of like terms as one vector sum;
    None if no group qualifies."""
    groups: dict = {}
    described = []
    for t in terms:
        got = _form(t)
        described.append(got)
        if got is not None:
            groups.setdefault(got[0], []).append(len(described) - 1)
    done: dict[int, Node] = {}          # index of a group's first term -> the group's sum
    taken: set[int] = set()
    for form, members in groups.items():
        if len(members) < MIN_TERMS:
            continue
        total = _group_sum([terms[k] for k in members], [described[k][1] for k in members])
        if total is not None:
            done[members[0]] = total
            taken.update(members)
    if not done:
        return None
    acc = None
    for k, t in enumerate(terms):
        part = done.get(k, None if k in taken else t)
        if part is not None:
            acc = part if acc is None else apply("add", [acc, part])
    return acc


def _group_sum(group: list[Node], slots: list[list]) -> Node | None:
    """The sum of like terms whose j-th slots read, from term m to the next, positions
    stepping evenly along one axis, as the first term batched over m; None if they
    do not step so, or some op has no batching rule."""
    # Order the terms by the positions they read (a sum of like terms in any order).
    reads = [j for j, (_, source, _) in enumerate(slots[0]) if source is not None]
    order = sorted(range(len(slots)), key=lambda m: [slots[m][j][2] for j in reads])
    first, count = slots[order[0]], len(order)
    replacements: dict[int, Node] = {}
    moves = False
    for j, (node, source, start) in enumerate(first):
        if source is None:                      # a number: a vector of the terms' own
            if any(slots[m][j][0] is not node for m in order):
                values = np.array([float(slots[m][j][0].value) for m in order])
                replacements[id(node)] = const(values)
            continue
        if any(slots[m][j][1] is not source for m in order):
            return None
        step = tuple(b - a for a, b in zip(start, slots[order[1]][j][2]))
        moving = [axis for axis, d in enumerate(step) if d]
        if len(moving) > 1:
            return None
        for k, m in enumerate(order):
            if slots[m][j][2] != tuple(a + k * d for a, d in zip(start, step)):
                return None
        if not moving:
            continue                    # the same element in every term: not batched
        moves = True
        axis = moving[0]
        d, a = step[axis], start[axis]
        stop = a + count * d
        items = tuple(("i", p) for p in start[:axis]) \
            + (("s", a, stop if stop >= 0 else None, d),) \
            + tuple(("i", p) for p in start[axis + 1:])
        replacements[id(node)] = apply("index", [source], {"items": items})
    if not moves:                       # terms that differ in numbers only: kept as written
        return None
    batched = batch_map([group[order[0]]], replacements, count)
    if batched is None:
        return None
    return apply("sum", [batched[0]], {"axis": None, "keepdims": False})
