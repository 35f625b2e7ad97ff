"""The builder's algebra: arithmetic kept as a canonical sum of products.

Every node built from + - * / and constant integer powers has a
(Laurent) polynomial over its *atoms*: the nodes that are not such
arithmetic (x, tanh(x), sin(x), exp(…)).  When the builder makes a new
arithmetic node, the polynomial of the result is computed from those of
its operands and, if writing it as a canonical sum of monomials takes no
more nodes than the expression as built, that canonical form is built
instead.  So like terms collect (x + x → 2*x, x - x → 0), equal
polynomials become the same node by hash-consing, and repeated
derivatives of tanh stay a polynomial in tanh(x) instead of doubling.
Polynomials are capped in size, and a node whose polynomial would be too
big simply becomes an atom, so the cost stays linear in the graph.
"""
from __future__ import annotations

import itertools
import weakref
import zlib

import numpy as np

from ..graph import Node, intern
from . import ACTIVE, REGISTRY, building, const, run_kernel

Monomial = tuple            # ((atom, exponent), …), atoms in a fixed order
Poly = dict                 # Monomial -> coefficient
MAX_TERMS = 24
MAX_POWER = 8
MAX_FACTORS = 6             # atoms in one monomial: a longer product stays as written

_POLY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()    # node -> (poly, size)
_ORDER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # node -> order key


def _key(atom: Node) -> tuple:
    """A structural order on atoms, the same in every run: parameters first,
    then by height above them, then by op and a stable hash of the structure."""
    key = _ORDER.get(atom)
    if key is not None:
        return key
    stack = [atom]
    while stack:                      # post-order, stopping at nodes already keyed
        node = stack[-1]
        todo = [i for i in node.inputs if i not in _ORDER]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        if node in _ORDER:
            continue
        ins = [_ORDER[i] for i in node.inputs]
        height = 1 + max((k[0] for k in ins), default=-1)
        text = f"{node.op}|{node.attrs!r}|{[k[2] for k in ins]}"
        if node.op == "const":
            text += node.value.tobytes().hex()[:64]
        elif node.op == "input":                  # by name: uids differ from run to run
            text = f"input|{node.attr('name')}"
        _ORDER[node] = (height, node.op, zlib.crc32(text.encode()))
    return _ORDER[atom]


def poly_of(node: Node) -> tuple[Poly, int]:
    """The node's polynomial and the number of arithmetic nodes it took."""
    got = _POLY.get(node)
    if got is not None:
        return got
    if node.op == "broadcast_like" and node.inputs[0].op == "const":
        node = node.inputs[0]              # a scalar spread over a shape; normalize checks the shape
    if node.op == "const" and node.value.shape == ():
        v = float(node.value)
        return ({(): v} if v != 0 else {}), 0
    return {((node, 1),): 1.0}, 0


def _merge(m1: Monomial, m2: Monomial, sign: int = 1) -> Monomial:
    exps: dict = {}
    for atom, e in m1:
        exps[atom] = exps.get(atom, 0) + e
    for atom, e in m2:
        exps[atom] = exps.get(atom, 0) + sign * e
    return tuple(sorted(((a, e) for a, e in exps.items() if e != 0), key=lambda ae: _key(ae[0])))


def _small(r: Poly) -> Poly | None:
    if len(r) > MAX_TERMS or any(len(m) > MAX_FACTORS for m in r):
        return None
    return r


def _add(p: Poly, q: Poly, sign: float = 1.0) -> Poly | None:
    r = dict(p)
    for m, c in q.items():
        v = r.get(m, 0.0) + sign * c
        if v == 0:
            r.pop(m, None)
        else:
            r[m] = v
    return _small(r)


def _mul(p: Poly, q: Poly) -> Poly | None:
    if len(p) * len(q) > 4 * MAX_TERMS:
        return None
    r: Poly = {}
    for (m1, c1), (m2, c2) in itertools.product(p.items(), q.items()):
        m = _merge(m1, m2)
        v = r.get(m, 0.0) + c1 * c2
        if v == 0:
            r.pop(m, None)
        else:
            r[m] = v
    return _small(r)


def _inverse(q: Poly) -> Poly | None:
    """1/q when q is a single monomial."""
    if len(q) != 1:
        return None
    (m, c), = q.items()
    return {tuple((a, -e) for a, e in m): 1.0 / c}


def _power(p: Poly, n: int) -> Poly | None:
    if len(p) == 1:
        (m, c), = p.items()
        return {tuple((a, e * n) for a, e in m): c ** n}
    if not 0 <= n <= 3:
        return None
    r: Poly | None = {(): 1.0}
    for _ in range(n):
        r = _mul(r, p) if r is not None else None
    return r


def combine(op: str, inputs: tuple[Node, ...]) -> tuple[Poly, int, bool] | None:
    """The polynomial of op(inputs), its size as built, and whether anything
    collected (like terms, a cancellation, powers of one atom); None if it has none."""
    if op == "pow":
        e = inputs[1]
        if e.op != "const" or e.value.shape != () or not abs(float(e.value)) <= MAX_POWER \
                or float(e.value) != int(e.value):
            return None
        p, size = poly_of(inputs[0])
        r = _power(p, int(float(e.value)))
        collected = len(p) == 1 and any(len(m) != 1 or m[0][1] != 1 or c != 1 for m, c in p.items())
        return None if r is None else (r, size + 1, collected or not r)
    polys = [poly_of(i) for i in inputs]
    size = 1 + sum(s for _, s in polys)
    if op == "neg":
        return {m: -c for m, c in polys[0][0].items()}, size, False
    p, q = polys[0][0], polys[1][0]
    if op in ("add", "sub"):
        r = _add(p, q, 1.0 if op == "add" else -1.0)
        collected = r is not None and len(r) < len(p) + len(q)
    else:
        if op == "div":
            q = _inverse(q)
            if q is None:
                return None
        r = _mul(p, q)
        collected = r is not None and (len(r) < len(p) * len(q) or _factors(r) < _factors(p) * len(q)
                                       + _factors(q) * len(p))
    return None if r is None else (r, size, collected)


def _factors(p: Poly) -> int:
    return sum(len(m) for m in p)


def cost(p: Poly) -> int:
    """Arithmetic nodes needed to build p in canonical form."""
    n = max(len(p) - 1, 0)
    for m, c in p.items():
        factors = sum(1 for _, e in m)
        n += sum(1 for _, e in m if abs(e) != 1)
        n += max(factors - 1, 0)
        if m and abs(c) != 1:
            n += 1
        if len(p) == 1 and c == -1 and m:
            n += 1
    return n


def normalize(op: str, inputs: tuple[Node, ...], shape, build_naive, origin: str = "f",
              span=None) -> Node:
    """The node for op(inputs): canonical if that is no bigger, else as written."""
    got = combine(op, inputs)
    if got is None:
        return build_naive()
    p, size, collected = got
    c = cost(p)
    # A tie is rebuilt canonically only when small (so short formulas print in one
    # canonical order) or when something collected; big ties stay as written.
    if c < size or (c == size and (collected or (len(p) <= 3 and _factors(p) <= 4))):
        with building(origin, span):
            node = _build(p, shape)
        if node is not None and node.shape == shape:
            return node
    node = build_naive()
    if node not in _POLY and node.op not in ("const", "input"):
        _POLY[node] = (p, size)
    return node


# ── building the canonical form without renormalising it ───────────────

def _raw(op: str, a: Node, b: Node | None = None) -> Node:
    ins = (a,) if b is None else (a, b)
    if all(i.op == "const" for i in ins):
        return const(run_kernel(REGISTRY[op], [i.value for i in ins], {}, None))
    origin, span = ACTIVE.building[-1]
    shape = REGISTRY[op].shape([i.shape for i in ins], {}, span)
    return intern(op, ins, (), shape, span, origin=origin)


def _record(node: Node, p: Poly) -> Node:
    if node.op not in ("const", "input") and node not in _POLY:
        _POLY[node] = (p, cost(p))
    return node


def _monomial(m: Monomial) -> tuple[Node | None, Node | None]:
    """The product of the atom powers of m, as numerator and denominator."""
    num = den = None
    num_m: list = []
    den_m: list = []
    for atom, e in m:
        factor = atom
        if abs(e) != 1:
            factor = _record(_raw("pow", atom, const(float(abs(e)))), {((atom, abs(e)),): 1.0})
        if e > 0:
            num_m.append((atom, e))
            num = factor if num is None else _record(_raw("mul", num, factor), {tuple(num_m): 1.0})
        else:
            den_m.append((atom, -e))
            den = factor if den is None else _record(_raw("mul", den, factor), {tuple(den_m): 1.0})
    return num, den


def _term(m: Monomial, c: float) -> Node:
    num, den = _monomial(m)
    if num is None:
        node = const(c) if den is None else _raw("div", const(c), den)
    else:
        node = num if c == 1 else _raw("mul", const(c), num)
        if den is not None:
            node = _raw("div", node, den)
    return _record(node, {m: c})


def _order(p: Poly) -> list:
    """Constant term first, then by degree and atom order; a positive term leads."""
    items = sorted(p.items(), key=lambda mc: (sum(abs(e) for _, e in mc[0]),
                                              [(_key(a), e) for a, e in mc[0]]))
    lead = next((i for i, (m, c) in enumerate(items) if c > 0), 0)
    return [items[lead]] + items[:lead] + items[lead + 1:]


def _build(p: Poly, shape) -> Node | None:
    if not p:
        return const(np.zeros(shape)) if isinstance(shape, tuple) else None
    items = _order(p)
    (m0, c0) = items[0]
    acc = _term(m0, c0) if c0 > 0 or not m0 else _raw("neg", _term(m0, -c0))
    partial = {m0: c0}
    for m, c in items[1:]:
        if c < 0:
            acc = _raw("sub", acc, _term(m, -c))
        else:
            acc = _raw("add", acc, _term(m, c))
        partial = dict(partial)
        partial[m] = c
        _record(acc, partial)
    return acc if acc.shape == shape else None
