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
KEEP_RATIO = 2              # a plan's build keeps a polynomial costing at most this × as written


class _Info(weakref.ref):
    """What the algebra knows about a node, while the node lives: its order key and
    its (polynomial, size), each None until computed.  Kept in _INFO by the node's
    id, and dropped from there when the node dies (before its id can be reused):
    a lookup is one dict read, where a WeakKeyDictionary makes a weak reference
    for every lookup."""
    __slots__ = ("id", "key", "poly")


_INFO: dict[int, _Info] = {}


def _drop(info: _Info, table=_INFO) -> None:
    table.pop(info.id, None)


def _info(node: Node) -> _Info:
    i = id(node)
    info = _INFO.get(i)
    if info is None:
        info = _INFO[i] = _Info(node, _drop)
        info.id, info.key, info.poly = i, None, None
    return info


def _set_poly(node: Node, p: Poly, size: int) -> None:
    """Record the node's polynomial; not one that is the node itself (what poly_of gives a
    node with none), which would keep the node alive through its own entry for good."""
    if len(p) == 1 and p.get(((node, 1),)) == 1.0:
        return
    info = _info(node)
    if info.poly is None:
        info.poly = (p, size)


def _key(atom: Node) -> tuple:
    """A structural order on atoms, the same in every run: parameters first,
    then by height above them, then by op and a stable hash of the structure."""
    info = _INFO.get(id(atom))
    if info is not None and info.key is not None:
        return info.key
    table = _INFO
    stack = [atom]
    while stack:                      # post-order, stopping at nodes already keyed
        node = stack[-1]
        pending = False
        for i in node.inputs:
            got = table.get(id(i))
            if got is None or got.key is None:
                stack.append(i)
                pending = True
        if pending:
            continue
        stack.pop()
        info = _info(node)
        if info.key is not None:
            continue
        height = 0
        hashes = []
        for i in node.inputs:
            k = table[id(i)].key
            if k[0] >= height:
                height = k[0] + 1
            hashes.append(k[2])
        text = f"{node.op}|{node.attrs!r}|{hashes}"
        if node.op == "const":                    # its first 32 bytes
            text += np.ravel(node.value)[:4].tobytes().hex()
        elif node.op == "input":                  # by name: uids differ from run to run
            text = f"input|{node.attr('name')}"
        info.key = (height, node.op, zlib.crc32(text.encode()))
    return table[id(atom)].key


def carry(old: Node, new: Node, renamed: dict[int, Node]) -> None:
    """What the algebra knows of `old` for its twin `new` (autodiff.rename): the same order
    key, and the same polynomial over the renamed atoms (renamed[id(atom)], or the atom)."""
    info = _INFO.get(id(old))
    if info is None:
        return
    twin = _info(new)
    if twin.key is None:
        twin.key = info.key
    if twin.poly is None and info.poly is not None:
        p, size = info.poly
        _set_poly(new, {tuple((renamed.get(id(a), a), e) for a, e in m): c for m, c in p.items()},
                  size)


def poly_of(node: Node) -> tuple[Poly, int]:
    """The node's polynomial and the number of arithmetic nodes it took."""
    info = _INFO.get(id(node))
    if info is not None and info.poly is not None:
        return info.poly
    if node.op == "broadcast_like" and node.inputs[0].op == "const":
        node = node.inputs[0]              # a scalar spread over a shape; normalize checks the shape
    if node.op == "const" and node.value.shape == ():
        v = float(node.value)
        return ({(): v} if v != 0 else {}), 0
    if node.op == "zeros_like":            # 0 of a shape (x*0 at an unknown shape): as 0,
        return {}, 0                       # which normalize keeps only where the shape holds
    return {((node, 1),): 1.0}, 0


def _merge(m1: Monomial, m2: Monomial, sign: int = 1) -> Monomial:
    """The product of two monomials (m1 / m2 with sign -1), its atoms in key order.

    Both are in key order already, so one pass merges them; two distinct atoms
    with equal keys (two inputs of one name) are left to a stable sort, in which
    m1's atoms come first."""
    if not m2:
        for _, e in m1:
            if not e:
                break
        else:
            return m1
    out = []
    i = j = 0
    n1, n2 = len(m1), len(m2)
    while i < n1 and j < n2:
        a1, e1 = m1[i]
        a2, e2 = m2[j]
        if a1 is a2:
            e = e1 + sign * e2
            if e:
                out.append((a1, e))
            i += 1
            j += 1
            continue
        k1, k2 = _key(a1), _key(a2)
        if k1 < k2:
            if e1:
                out.append((a1, e1))
            i += 1
        elif k2 < k1:
            if e2:
                out.append((a2, sign * e2))
            j += 1
        else:
            return _merge_sorting(m1, m2, sign)
    for k in range(i, n1):
        if m1[k][1]:
            out.append(m1[k])
    for k in range(j, n2):
        a, e = m2[k]
        if e:
            out.append((a, sign * e))
    return tuple(out)


def _merge_sorting(m1: Monomial, m2: Monomial, sign: int) -> Monomial:
    exps: dict = {}
    for atom, e in m1:
        exps[atom] = exps.get(atom, 0) + e
    for atom, e in m2:
        exps[atom] = exps.get(atom, 0) + sign * e
    return tuple(sorted(((a, e) for a, e in exps.items() if e != 0), key=lambda ae: _key(ae[0])))


def _small(r: Poly) -> Poly | None:
    if len(r) > MAX_TERMS:
        return None
    for m in r:
        if len(m) > MAX_FACTORS:
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
    if len(p) == 1 and len(q) == 1:                   # one term by one term: most products
        (m1, c1), = p.items()
        (m2, c2), = q.items()
        v = c1 * c2
        return _small({_merge(m1, m2): v}) if v != 0 else {}
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
    collected (like terms, a cancellation, powers of one atom); None if it has none.
    For a product, `collected` is a function giving that bool: it is only needed
    when the canonical form is exactly as big as the expression as built."""
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
        if r is None:
            return None

        def collected():
            return len(r) < len(p) * len(q) or _factors(r) < _factors(p) * len(q) \
                + _factors(q) * len(p)
        return r, size, collected
    return None if r is None else (r, size, collected)


def _factors(p: Poly) -> int:
    n = 0
    for m in p:
        n += len(m)
    return n


def _term_cost(m: Monomial, c: float) -> int:
    """Nodes for one term c·m of a sum: a pow per exponent other than ±1, a mul
    between factors, and a mul by the coefficient unless it is ±1."""
    if not m:
        return 0
    n = len(m) - 1
    for _, e in m:
        if e != 1 and e != -1:
            n += 1
    if c != 1 and c != -1:
        n += 1
    return n


def cost(p: Poly) -> int:
    """Arithmetic nodes needed to build p in canonical form."""
    if len(p) == 1:
        (m, c), = p.items()
        return _term_cost(m, c) + (1 if c == -1 and m else 0)       # the neg
    n = max(len(p) - 1, 0)
    for m, c in p.items():
        n += _term_cost(m, c)
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
    if c < size or (c == size and ((collected() if callable(collected) else collected)
                                   or (len(p) <= 3 and _factors(p) <= 4 and not ACTIVE.to_run))):
        node = _build(p, shape, origin, span)
        if node is not None and node.shape == shape:
            return node
    node = build_naive()
    # In a plan's build, a polynomial far bigger than its expression as written is not
    # kept: an expression it joins would rarely collect enough to take it, and carrying
    # it costs every product it meets (a chain's cotangent Π (1 - tanh²) expanded: 16
    # terms), so the node is an atom from here on.  Prints keep every polynomial.
    if node.op not in ("const", "input") and not (ACTIVE.to_run and c > KEEP_RATIO * size):
        _set_poly(node, p, size)
    return node


# ── building the canonical form without renormalising it ───────────────

def _raw(where: tuple, op: str, a: Node, b: Node | None = None) -> Node:
    """op(a[, b]) interned as it is (folding constants only); `where` is (origin, span)."""
    if b is None:
        ins = (a,)
        shape = a.shape
    else:
        ins = (a, b)
        shape = a.shape if a.shape == b.shape and isinstance(a.shape, tuple) else None
    if a.op == "const" and (b is None or b.op == "const"):
        with building(*where):               # check_nan names the expression being built
            return const(run_kernel(REGISTRY[op], [i.value for i in ins], {}, None))
    origin, span = where
    if shape is None:
        shape = REGISTRY[op].shape([i.shape for i in ins], {}, span)
    return intern(op, ins, (), shape, span, origin=origin)


def _unrecorded(node: Node) -> bool:
    """Whether the node is arithmetic the algebra has no polynomial for yet
    (the first polynomial recorded for a node stays)."""
    if node.op in ("const", "input"):
        return False
    info = _INFO.get(id(node))
    return info is None or info.poly is None


def _monomial(where: tuple, m: Monomial) -> tuple[Node | None, Node | None]:
    """The product of the atom powers of m, as numerator and denominator."""
    sides: list = [None, None]                 # numerator, denominator
    parts: tuple = ([], [])                    # their atom powers so far
    for atom, e in m:
        factor = atom
        if e != 1 and e != -1:
            factor = _raw(where, "pow", atom, const(float(abs(e))))
            if _unrecorded(factor):
                _set_poly(factor, {((atom, abs(e)),): 1.0}, 1)
        k = 0 if e > 0 else 1
        parts[k].append((atom, abs(e)))
        if sides[k] is None:
            sides[k] = factor
        else:
            sides[k] = product = _raw(where, "mul", sides[k], factor)
            if _unrecorded(product):
                part = tuple(parts[k])
                _set_poly(product, {part: 1.0}, _term_cost(part, 1.0))
    return sides[0], sides[1]


def _term(where: tuple, m: Monomial, c: float) -> Node:
    num, den = _monomial(where, m)
    if num is None:
        node = const(c) if den is None else _raw(where, "div", const(c), den)
    else:
        node = num if c == 1 else _raw(where, "mul", const(c), num)
        if den is not None:
            node = _raw(where, "div", node, den)
    if _unrecorded(node):
        _set_poly(node, {m: c}, _term_cost(m, c) + (1 if c == -1 and m else 0))
    return node


def _order_key(mc) -> tuple:
    degree = 0
    keys = []
    for a, e in mc[0]:
        degree += abs(e)
        keys.append((_key(a), e))
    return degree, keys


def _order(p: Poly) -> list:
    """Constant term first, then by degree and atom order; a positive term leads."""
    items = sorted(p.items(), key=_order_key) if len(p) > 1 else list(p.items())
    lead = next((i for i, (m, c) in enumerate(items) if c > 0), 0)
    return [items[lead]] + items[:lead] + items[lead + 1:]


def _build(p: Poly, shape, origin: str, span) -> Node | None:
    if not p:
        return const(np.zeros(shape)) if isinstance(shape, tuple) else None
    where = (origin, span)
    items = _order(p)
    (m0, c0) = items[0]
    acc = _term(where, m0, c0) if c0 > 0 or not m0 else _raw(where, "neg", _term(where, m0, -c0))
    terms = _term_cost(m0, c0)         # the size of the partial sums, kept as they grow
    for k in range(1, len(items)):
        m, c = items[k]
        if c < 0:
            acc = _raw(where, "sub", acc, _term(where, m, -c))
        else:
            acc = _raw(where, "add", acc, _term(where, m, c))
        terms += _term_cost(m, c)
        if _unrecorded(acc):
            _set_poly(acc, dict(items[:k + 1]), k + terms)
    return acc if acc.shape == shape else None
