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

In a plan's build the algebra's work follows what its canonical form changes: a
product of operands sharing no atom is recorded unexpanded (_Product), its cost
counted from its operands' terms, and multiplied out only if an expression that
reads it needs the terms; a sum in which nothing collects takes its cost from its
operands'.  Neither changes a decision (SHORTCUTS = False counts every cost from the
expanded polynomial; tests/test_algebra_cost.py compares the plans).
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
SHORTCUTS = True            # False: every cost counted from the expanded polynomial (tests
                            # check that the shortcuts change no decision)


class _Info(weakref.ref):
    """What the algebra knows about a node, while the node lives: its order key and
    its (polynomial, size) and that polynomial's canonical cost (when known), each
    None until computed.  Kept in _INFO by the node's
    id, and dropped from there when the node dies (before its id can be reused):
    a lookup is one dict read, where a WeakKeyDictionary makes a weak reference
    for every lookup."""
    __slots__ = ("id", "key", "poly", "cost")


_INFO: dict[int, _Info] = {}


def _drop(info: _Info, table=_INFO) -> None:
    table.pop(info.id, None)


def _info(node: Node) -> _Info:
    i = id(node)
    info = _INFO.get(i)
    if info is None:
        info = _INFO[i] = _Info(node, _drop)
        info.id, info.key, info.poly, info.cost = i, None, None, None
    return info


def _set_poly(node: Node, p: Poly, size: int, c: int | None = None) -> None:
    """Record the node's polynomial (and its cost c, if known); not one that is the node
    itself (what poly_of gives a node with none), which would keep the node alive
    through its own entry for good."""
    if len(p) == 1 and p.get(((node, 1),)) == 1.0:
        return
    i = id(node)
    info = _INFO.get(i)
    if info is None:
        info = _INFO[i] = _Info(node, _drop)
        info.id, info.key, info.poly, info.cost = i, None, (p, size), c
    elif info.poly is None:
        info.poly, info.cost = (p, size), c


def _cost_of(node: Node, p: Poly) -> int:
    """cost(p) for p = poly_of(node), recorded with the node once computed."""
    info = _INFO.get(id(node))
    if info is None or info.poly is None:
        return 0                      # an atom or a constant: no arithmetic
    if info.cost is None:
        info.cost = cost(p)
    return info.cost


_PREFIX: dict = {}                  # (op, attrs) -> crc32 of "op|attrs|", the key text's head


def _prefix(op: str, attrs: tuple) -> int:
    try:
        got = _PREFIX.get((op, attrs))
    except TypeError:                 # an unhashable attribute value: no cache
        return zlib.crc32(f"{op}|{attrs!r}|".encode())
    if got is None:
        if len(_PREFIX) >= 4096:
            _PREFIX.clear()
        got = _PREFIX[(op, attrs)] = zlib.crc32(f"{op}|{attrs!r}|".encode())
    return got


def _key(atom: Node) -> tuple:
    """A structural order on atoms, the same in every run: parameters first,
    then by height above them, then by op and a stable hash of the structure
    (the crc32 of "op|attrs|[input hashes]", a constant's first 32 bytes appended,
    an input's "input|name"; the head's crc is cached per op and attributes)."""
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
        op = node.op
        if op == "input":                         # by name: uids differ from run to run
            info.key = (0, op, zlib.crc32(f"input|{node.attr('name')}".encode()))
            continue
        height = 0
        hashes = []
        for i in node.inputs:
            k = table[id(i)].key
            if k[0] >= height:
                height = k[0] + 1
            hashes.append(k[2])
        crc = zlib.crc32(repr(hashes).encode(), _prefix(op, node.attrs))
        if op == "const":                         # its first 32 bytes
            crc = zlib.crc32(np.ravel(node.value)[:4].tobytes().hex().encode(), crc)
        info.key = (height, op, crc)
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
        p, size = _expanded(info)
        _set_poly(new, {tuple((renamed.get(id(a), a), e) for a, e in m): c for m, c in p.items()},
                  size, info.cost)


def poly_of(node: Node) -> tuple[Poly, int]:
    """The node's polynomial and the number of arithmetic nodes it took."""
    info = _INFO.get(id(node))
    if info is not None and info.poly is not None:
        return info.poly if type(info.poly[0]) is dict else _expanded(info)
    return _leaf_poly(node)


def _recorded(node: Node) -> tuple:
    """poly_of, but a product recorded unexpanded (_Product) stays so."""
    info = _INFO.get(id(node))
    if info is not None and info.poly is not None:
        return info.poly
    return _leaf_poly(node)


def _leaf_poly(node: Node) -> tuple[Poly, int]:
    if node.op == "broadcast_like" and node.inputs[0].op == "const":
        node = node.inputs[0]              # a scalar spread over a shape; normalize checks the shape
    if node.op == "const" and node.value.shape == ():
        v = float(node.value)
        return ({(): v} if v != 0 else {}), 0
    if node.op == "zeros_like":            # 0 of a shape (x*0 at an unknown shape): as 0,
        return {}, 0                       # which normalize keeps only where the shape holds
    return {((node, 1),): 1.0}, 0


def _merge(m1: Monomial, m2: Monomial, sign: int = 1, table=_INFO) -> Monomial:
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
    elif not m1 and sign == 1:
        for _, e in m2:
            if not e:
                break
        else:
            return m2
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
        got = table.get(id(a1))
        k1 = got.key if got is not None and got.key is not None else _key(a1)
        got = table.get(id(a2))
        k2 = got.key if got is not None and got.key is not None else _key(a2)
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
        if v == 0:
            return {}
        m = _merge(m1, m2)
        return {m: v} if len(m) <= MAX_FACTORS else None
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
    if n == 0:
        return {(): 1.0}
    r: Poly | None = p                 # (1·p is p: the first product is skipped)
    for _ in range(n - 1):
        r = _mul(r, p) if r is not None else None
    return r if r is not p else dict(p)


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
    if ACTIVE.to_run and SHORTCUTS and op != "add" and op != "sub" and op != "neg":
        return _product(op, inputs)
    a = inputs[0]
    info = _INFO.get(id(a))                     # poly_of(a), inline
    p, size = (info.poly if type(info.poly[0]) is dict else _expanded(info)) \
        if info is not None and info.poly is not None else _leaf_poly(a)
    if op == "neg":
        return {m: -c for m, c in p.items()}, size + 1, False
    q, sq = poly_of(inputs[1])
    size += 1 + sq
    if op in ("add", "sub"):
        r = _add(p, q, 1.0 if op == "add" else -1.0)
        if r is None:
            return None
        if len(r) < len(p) + len(q):
            return r, size, True
        if not p or not q or not SHORTCUTS:
            return r, size, False
        # nothing collected: the terms of p and q, each as it was, in one sum
        return r, size, False, (len(r) - 1 + _terms_cost(_cost_of(inputs[0], p), p)
                                + _terms_cost(_cost_of(inputs[1], q), q))
    else:
        if op == "div":
            q = _inverse(q)
            if q is None:
                return None
        r = _mul(p, q)
        if r is None:
            return None
        return r, size, _product_collected(r, p, q)
    return None if r is None else (r, size, collected)


def _product(op: str, inputs: tuple[Node, ...]):
    """combine for a product or quotient in a plan's build: when the operands share no
    atom, the product is recorded unexpanded (_Product), its cost counted from its
    operands' terms; it is expanded only if something reads it (poly_of)."""
    a, b = inputs
    info = _INFO.get(id(a))                     # _recorded(a), _recorded(b), inline
    p, sp = info.poly if info is not None and info.poly is not None else _leaf_poly(a)
    info = _INFO.get(id(b))
    q, sq = info.poly if info is not None and info.poly is not None else _leaf_poly(b)
    size = 1 + sp + sq
    if op == "div":
        if type(q) is not dict:                 # a _Product has two terms or more
            return None
        q = _inverse(q)
        if q is None:
            return None
    n = len(p) * len(q)
    if n == 1:                                  # one term by one term (two dicts): most products
        (m1, c1), = p.items()
        (m2, c2), = q.items()
        v = c1 * c2
        if v == 0:
            return {}, size, True, 0
        m = _merge(m1, m2)
        if len(m) > MAX_FACTORS:
            return None
        return {m: v}, size, len(m) < len(m1) + len(m2), \
            _term_cost(m, v) + (1 if v == -1 and m else 0)
    if n > 1 and type(p) is dict and type(q) is dict and (() in p and len(p) == 1
                                                          or () in q and len(q) == 1):
        # a constant times a sum: its coefficients scaled, nothing to merge
        if len(p) == 1 and () in p:
            k = p[()]
            r = {m: k * v for m, v in q.items()}
        else:
            k = q[()]
            r = {m: v * k for m, v in p.items()}
        if 0 not in r.values():
            return r, size, False
    elif n > 1:
        lazy = _Product.of(p, q, size)
        if lazy is not None:
            return (lazy, size, False) if lazy else None
    p, q = _plain(p), _plain(q)
    r = _mul(p, q)
    if r is None:
        return None
    return r, size, _product_collected(r, p, q)


def _product_collected(r: Poly, p: Poly, q: Poly):
    """For a product r = p·q: a function saying whether anything collected (fewer terms
    or factors than written out); called only on a tie."""
    return lambda: len(r) < len(p) * len(q) or _factors(r) < _factors(p) * len(q) \
        + _factors(q) * len(p)


def _summary(p) -> tuple:
    """(ids of p's atoms, [(structure cost, coefficient) per term], most atoms in a term,
    the sum of the structure costs, the number of terms not constant), the structure cost
    of a term being _term_cost without its coefficient's mul, and -1 for the constant term."""
    if type(p) is _Product:
        return p.atoms, p.terms, p.width, p.structure, p.big
    atoms = set()
    terms = []
    width = structure = big = 0
    for m, c in p.items():
        if not m:
            terms.append((-1, c))
            continue
        t = len(m) - 1
        for a, e in m:
            atoms.add(id(a))
            if e != 1 and e != -1:
                t += 1
        terms.append((t, c))
        structure += t
        big += 1
        if len(m) > width:
            width = len(m)
    return atoms, terms, width, structure, big


class _Product:
    """p·q for polynomials p and q over disjoint atoms, not yet expanded.  Nothing in it
    collects but coefficients (n·m distinct terms, each a term of p by one of q), so its
    canonical cost is known from the terms' structure costs and coefficients alone:
    in a plan's build a product that stays as written (a chain's cotangent, Π (1 - tanh²))
    is never multiplied out, and its atoms never get order keys, unless an expression
    that reads its polynomial (a sum, a power, a product sharing an atom) needs them."""
    __slots__ = ("p", "q", "atoms", "terms", "width", "structure", "big", "cost", "r")

    @staticmethod
    def of(p, q, size: int):
        """The product unexpanded; None if p and q share an atom (or a coefficient
        underflows to 0), False if it is past the caps (as _mul would give None) or sure
        to cost more than KEEP_RATIO × size: its terms' structure alone,
            n·m - 1 + n·S(q) + m·S(p) + B(p)·B(q)
        (n, m terms, S their structure costs, B how many are not constant), which
        normalize would neither build nor keep."""
        atoms_p, terms_p, wp, sp, bp = _summary(p)
        atoms_q, terms_q, wq, sq, bq = _summary(q)
        if not atoms_p.isdisjoint(atoms_q):
            return None
        n = len(terms_p) * len(terms_q)
        structure = len(terms_p) * sq + len(terms_q) * sp + bp * bq
        if n > MAX_TERMS or wp + wq > MAX_FACTORS or n - 1 + structure > KEEP_RATIO * size:
            return False
        terms = []
        total = n - 1
        for t1, c1 in terms_p:
            for t2, c2 in terms_q:
                c = c1 * c2
                if c == 0:
                    return None
                t = t1 + t2 + 1 if t1 >= 0 and t2 >= 0 else (t1 if t2 < 0 else t2)
                terms.append((t, c))
                if t >= 0:
                    total += t if c == 1 or c == -1 else t + 1
        self = _Product()
        self.p, self.q = p, q
        self.atoms = atoms_p | atoms_q
        self.terms, self.width, self.cost, self.r = terms, wp + wq, total, None
        self.structure, self.big = structure, n - (len(terms_p) - bp) * (len(terms_q) - bq)
        return self

    def __len__(self) -> int:
        return len(self.terms)


def _plain(p) -> Poly | None:
    """p as a dict: a _Product multiplied out (once)."""
    if type(p) is dict:
        return p
    if p.r is None:
        a, b = _plain(p.p), _plain(p.q)
        p.r = _mul(a, b) if a is not None and b is not None else None
    return p.r


def _expanded(info: _Info) -> tuple[Poly, int]:
    """The node's recorded polynomial as a dict (a _Product multiplied out, and kept so)."""
    p, size = info.poly
    if type(p) is dict:
        return info.poly
    r = _plain(p)
    if r is None:                     # cannot happen (of checks _mul's caps): an atom then
        info.poly = info.cost = None
        return _leaf_poly(info())
    info.poly = (r, size)
    return info.poly


def _terms_cost(c: int, p: Poly) -> int:
    """The sum of p's _term_cost, from c = cost(p): what p's terms cost in a longer sum."""
    if len(p) > 1:
        return c - len(p) + 1
    (m, k), = p.items()
    return c - 1 if k == -1 and m else c


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
    if len(got) == 4:
        p, size, collected, c = got
    else:
        p, size, collected = got
        c = cost(p) if type(p) is dict else p.cost
    # A tie is rebuilt canonically only when small (so short formulas print in one
    # canonical order) or when something collected; big ties stay as written.
    if c < size or (c == size and ((collected() if callable(collected) else collected)
                                   or (not ACTIVE.to_run and len(p) <= 3 and _factors(p) <= 4))):
        node = _build(_plain(p), shape, origin, span)
        if node is not None and node.shape == shape:
            return node
    node = build_naive()
    # In a plan's build, a polynomial far bigger than its expression as written is not
    # kept: an expression it joins would rarely collect enough to take it, and carrying
    # it costs every product it meets (a chain's cotangent Π (1 - tanh²) expanded: 16
    # terms), so the node is an atom from here on.  Prints keep every polynomial.
    if node.op not in ("const", "input") and not (ACTIVE.to_run and c > KEEP_RATIO * size):
        _set_poly(node, p, size, c)
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
                _set_poly(factor, {((atom, abs(e)),): 1.0}, 1, 1)
        k = 0 if e > 0 else 1
        parts[k].append((atom, abs(e)))
        if sides[k] is None:
            sides[k] = factor
        else:
            sides[k] = product = _raw(where, "mul", sides[k], factor)
            if _unrecorded(product):
                part = tuple(parts[k])
                n = _term_cost(part, 1.0)
                _set_poly(product, {part: 1.0}, n, n)
    return sides[0], sides[1]


def _term(where: tuple, m: Monomial, c: float) -> Node:
    if c == 1 and len(m) == 1 and m[0][1] > 1:   # one atom's power (t*t → t²): as below
        atom, e = m[0]
        node = _raw(where, "pow", atom, const(float(e)))
        if _unrecorded(node):
            _set_poly(node, {m: 1.0}, 1, 1)
        return node
    num, den = _monomial(where, m)
    if num is None:
        node = const(c) if den is None else _raw(where, "div", const(c), den)
    else:
        node = num if c == 1 else _raw(where, "mul", const(c), num)
        if den is not None:
            node = _raw(where, "div", node, den)
    if _unrecorded(node):
        n = _term_cost(m, c) + (1 if c == -1 and m else 0)
        _set_poly(node, {m: c}, n, n)
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
    if len(p) == 1:                    # one term (most products): what the loop below does
        (m0, c0), = p.items()
        acc = _term(where, m0, c0) if c0 > 0 or not m0 else _raw(where, "neg", _term(where, m0, -c0))
        return acc if acc.shape == shape else None
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
            _set_poly(acc, dict(items[:k + 1]), k + terms, k + terms)
    return acc if acc.shape == shape else None
