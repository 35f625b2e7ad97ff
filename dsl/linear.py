"""The matrix of a linear map, written the way a matrix-calculus text writes it.

A Jacobian J = ∂y/∂x is the matrix of the linear map t ↦ J·t that forward
mode builds (`jvp_graph` with a placeholder tangent t).  When x and y are
vectors or scalars and every node between t and the map's value is one of a
few linear forms — sums, negation, scaling by something that does not depend
on t, `@` with such a matrix or vector, `sum`, broadcasting — the matrix is
read off the graph term by term, in the vocabulary of the Matrix Cookbook:

    t                  eye(n)
    d * L              diag(d) @ J(L)      (d a vector, L a vector map)
    c * L              c * J(L)            (c a scalar)
    M @ L, L @ M       M @ J(L), M' @ J(L)
    sum(L)             the column sums of J(L): a row
    d * s              outer(d, r)         (s = r·t a scalar map)

and products of those simplify as they are formed (diag(d) @ eye is diag(d),
M @ eye is M, diag(d) @ outer(a, b) is outer(d * a, b)).  So the Hessian of
x @ A @ x is A + A', that of sum(x^3) is diag(6 * x), that of a least-squares
loss 2 * X' @ X.  Anything else gives None, and the caller batches the
derivative instead (dsl/batching.py); both are the same matrix.

Terms are kept as lists of atoms until the end, each atom one of
("eye", c), ("diag", d), ("dense", L, d, R) for L @ diag(d) @ R (any of the
three None for an identity), ("outer", a, b) for a vector map (a None means
a vector of ones) and ("row", r) for a scalar map; c is a scalar node or None
for 1.  Atoms that differ in one factor only are merged when the term is
built (X' @ diag(a) @ X + X' @ diag(b) @ X is X' @ diag(a + b) @ X).  The walk is one pass over the graph in
topological order: no recursion.
"""
from __future__ import annotations

import numpy as np

from .graph import Node, topo_order
from .ops import apply, check_size, const

_LINEAR_OPS = {"add", "sub", "neg", "mul", "div", "matmul", "sum", "mean", "broadcast_like",
               "unbroadcast", "broadcast_to"}


def matrix_of(y: Node, t: Node) -> Node | None:
    """The matrix J of y = J·t (y and t of rank ≤ 1, concrete shapes), as nodes in
    matrix-calculus form; None where y is not built from the linear forms above."""
    if not (isinstance(y.shape, tuple) and isinstance(t.shape, tuple)) \
            or len(y.shape) > 1 or len(t.shape) != 1:
        return None
    n = t.shape[0]
    terms: dict[int, list] = {id(t): [("eye", None)]}
    for node in topo_order([y]):
        if id(node) in terms or not _depends(node, terms):
            continue
        if node.op not in _LINEAR_OPS or not isinstance(node.shape, tuple) or len(node.shape) > 1:
            return None
        term = _rule(node, terms, n)
        if term is None:
            return None
        terms[id(node)] = term
    if id(y) not in terms:
        return None
    return _build(terms[id(y)], y.shape, n)


def _depends(node: Node, terms: dict) -> bool:
    return any(id(i) in terms for i in node.inputs)


def _rule(node: Node, terms: dict, n: int):
    op, ins = node.op, node.inputs
    lin = [terms.get(id(i)) for i in ins]
    rank = len(node.shape)
    match op:
        case "add" | "sub":
            if lin[0] is None or lin[1] is None:
                return None                     # an offset: not linear
            a = _broadcast(lin[0], ins[0].shape, node.shape)
            b = _broadcast(lin[1], ins[1].shape, node.shape)
            if a is None or b is None:
                return None
            return a + (b if op == "add" else _scale(b, const(-1.0)))
        case "neg":
            return _scale(lin[0], const(-1.0))
        case "mul":
            k = 0 if lin[0] is not None else 1
            if lin[1 - k] is not None:
                return None                     # t times t: not linear
            return _times(lin[k], ins[k].shape, ins[1 - k], node.shape)
        case "div":
            if lin[1] is not None:
                return None
            return _times(lin[0], ins[0].shape, apply("div", [const(1.0), ins[1]]), node.shape)
        case "matmul":
            a, b = ins
            if lin[0] is not None and lin[1] is not None:
                return None
            if lin[1] is not None:              # M @ L or m @ L (a vector m: a row)
                if len(b.shape) != 1:
                    return None
                return _left(a, lin[1])
            if len(a.shape) != 1:
                return None
            return _left(_transpose(b), lin[0]) if len(b.shape) == 2 else \
                _left(b, lin[0])                # L @ M = M' @ L; L @ m is a dot
        case "sum" | "mean":
            if len(ins[0].shape) != 1:
                return None
            term = [_column_sum(atom, ins[0].shape[0]) for atom in lin[0]]
            if op == "mean":
                term = _scale(term, const(1.0 / ins[0].shape[0]))
            return term if rank == 0 else [("outer", None, r) for _, r in term]   # keepdims: [1]
        case "broadcast_like" | "broadcast_to" | "unbroadcast":
            if lin[0] is None:
                return None
            if op == "unbroadcast" and ins[0].shape != node.shape:
                return None
            return _broadcast(lin[0], ins[0].shape, node.shape)
    return None


def _broadcast(term, shape: tuple, to: tuple):
    """A term of a map with values of `shape`, as one with values of shape `to`."""
    if shape == to:
        return term
    if len(shape) == 0 or shape == (1,):        # a scalar map spread over a vector
        rows = [_as_row(atom) for atom in term]
        return None if None in rows else [("outer", None, r) for r in rows]
    return None


def _as_row(atom):
    if atom[0] == "row":
        return atom[1]
    if atom[0] == "outer" and atom[1] is None:  # a [1]-shaped map: ones(1) ⊗ r
        return atom[2]
    return None


def _scale(term, c: Node):
    """c * term, for a scalar c that does not depend on t."""
    out = []
    for atom in term:
        match atom:
            case ("eye", k):
                out.append(("eye", c if k is None else apply("mul", [c, k])))
            case ("diag", d):
                out.append(("diag", apply("mul", [c, d])))
            case ("dense", left, d, right):
                out.append(("dense", left, c if d is None else apply("mul", [c, d]), right))
            case ("outer", a, b):
                out.append(("outer", a, apply("mul", [c, b])) if a is None else
                           ("outer", apply("mul", [c, a]), b))
            case ("row", r):
                out.append(("row", apply("mul", [c, r])))
    return out


def _times(term, shape: tuple, d: Node, out_shape: tuple):
    """term ⊙ d elementwise, for d that does not depend on t."""
    if not isinstance(d.shape, tuple) or len(d.shape) > 1:
        return None
    if d.shape in ((), (1,)) and shape == out_shape:
        return _scale(term, d if d.shape == () else apply("sum", [d], {"axis": None, "keepdims": False}))
    if len(d.shape) == 1 and d.shape == out_shape:
        if shape in ((), (1,)):                  # a vector times a scalar map: outer(d, r)
            rows = [_as_row(atom) for atom in term]
            return None if None in rows else [("outer", d, r) for r in rows]
        if shape != out_shape:
            return None
        out = []
        for atom in term:
            match atom:
                case ("eye", k):
                    out.append(("diag", d if k is None else apply("mul", [k, d])))
                case ("diag", e):
                    out.append(("diag", apply("mul", [d, e])))
                case ("dense", None, e, right):
                    out.append(("dense", None, d if e is None else apply("mul", [d, e]), right))
                case ("dense", left, e, right):
                    out.append(("dense", None, d, _sandwich(left, e, right)))
                case ("outer", a, b):
                    out.append(("outer", d if a is None else apply("mul", [d, a]), b))
                case _:
                    return None
        return out
    return None


def _left(m: Node, term):
    """m @ term, for m a matrix (a vector map stays one) or a vector (a row)."""
    if not isinstance(m.shape, tuple):
        return None
    matrix = len(m.shape) == 2
    out = []
    for atom in term:
        match atom:
            case ("eye", k):
                out.append(("dense", None, k, m) if matrix else        # k·m, as diag(k) @ m
                           ("row", m if k is None else apply("mul", [k, m])))
            case ("diag", d):
                out.append(("dense", m, d, None) if matrix else ("row", apply("mul", [m, d])))
            case ("dense", left, d, right):
                if matrix:
                    out.append(("dense", m if left is None else apply("matmul", [m, left]), d, right))
                else:
                    out.append(("row", apply("matmul", [m, _sandwich(left, d, right)])))
            case ("outer", a, b):
                left = apply("sum", [m], {"axis": (-1,), "keepdims": False}) if a is None else \
                    apply("matmul", [m, a])
                out.append(("outer", left, b) if matrix else ("row", apply("mul", [left, b])))
            case _:
                return None
    return out


def _sandwich(left, d, right) -> Node:
    """left @ diag(d) @ right as nodes, left-associated so it prints without brackets
    (a scalar d scales: 2*X' @ X)."""
    if d is not None and d.shape == ():
        if left is not None:
            left, d = apply("mul", [d, left]), None
        elif right is not None:
            right, d = apply("mul", [d, right]), None
        else:
            return None
    node = None if d is None else apply("diag", [d])
    if left is not None:
        node = left if node is None else apply("matmul", [left, node])
    if right is not None:
        node = right if node is None else apply("matmul", [node, right])
    return node


def _column_sum(atom, k: int):
    """sum over the values of a vector map: the row of column sums."""
    match atom:
        case ("eye", c):
            return ("row", const(np.ones(k)) if c is None else apply("broadcast_to", [c], {"shape": (k,)}))
        case ("diag", d):
            return ("row", d)
        case ("dense", left, d, right):
            m = _sandwich(left, d, right)
            return ("row", apply("sum", [m], {"axis": (0,), "keepdims": False}))
        case ("outer", a, b):
            return ("row", apply("mul", [_total(a, k), b]))
    raise AssertionError(atom)


def _total(a: Node | None, k: int) -> Node:
    """sum(a) of a vector (None: ones(k)); the sum of a vector's softmax is 1, which
    is what makes the softmax Jacobian diag(s) - outer(s, s) in the text."""
    if a is None:
        return const(float(k))
    if a.op == "softmax" and len(a.shape) == 1:
        return const(1.0)
    return apply("sum", [a], {"axis": None, "keepdims": False})


def _transpose(m: Node) -> Node:
    return apply("transpose", [m], {"axes": None})


def _merge(term):
    """Atoms that differ in one factor, as one: diag(a) + diag(b) is diag(a + b),
    L @ diag(a) @ R + L @ diag(b) @ R is L @ diag(a + b) @ R, outer(a, b) + outer(a, c)
    is outer(a, b + c), and likewise on the other side."""
    out: list = []
    for atom in term:
        for k, seen in enumerate(out):
            merged = _merge2(seen, atom)
            if merged is not None:
                out[k] = merged
                break
        else:
            out.append(atom)
    return out


def _merge2(p, q):
    def plus(a, b):
        return apply("add", [a, b])
    match p, q:
        case ("diag", a), ("diag", b):
            return ("diag", plus(a, b))
        case ("row", a), ("row", b):
            return ("row", plus(a, b))
        case ("dense", l1, d1, r1), ("dense", l2, d2, r2) if l1 is l2 and r1 is r2:
            one = const(1.0)                       # no diag between: diag(1)
            return ("dense", l1, plus(one if d1 is None else d1, one if d2 is None else d2), r1)
        case ("outer", a1, b1), ("outer", a2, b2) if a1 is a2:
            return ("outer", a1, plus(b1, b2))
        case ("outer", a1, b1), ("outer", a2, b2) if b1 is b2 and a1 is not None and a2 is not None:
            return ("outer", plus(a1, a2), b1)
    return None


def _build(term, shape: tuple, n: int) -> Node | None:
    check_size(shape + (n,), None)            # the constants below are made without apply
    total, minus = None, []
    for atom in _merge(term):
        match atom:
            case ("eye", c):
                node = const(np.eye(n)) if c is None else apply("mul", [c, const(np.eye(n))])
            case ("diag", d):
                node = apply("diag", [d])
            case ("dense", left, d, right):
                node = _sandwich(left, d, right)
                if node is None:               # c * eye(n)
                    node = const(np.eye(n)) if d is None else apply("mul", [d, const(np.eye(n))])
            case ("outer", a, b):
                a = const(np.ones(shape)) if a is None else a
                node = apply("outer", [a, b])
            case ("row", r):
                node = r
        if node.shape != shape + (n,):
            return None
        if node.op == "outer" and node.inputs[1].op == "neg":   # - outer(a, b), not outer(a, -b)
            minus.append(apply("outer", [node.inputs[0], node.inputs[1].inputs[0]]))
            continue
        total = node if total is None else apply("add", [total, node])
    for node in minus:
        total = apply("neg", [node]) if total is None else apply("sub", [total, node])
    return total
