"""Contractions: einsum, and tensordot, inner, kron (einsum underneath), and cross.

`einsum(subscripts, *operands)` follows np.einsum: letters name axes, `...` the
broadcast axes, `->` the output (implicit: the letters used once, in alphabetical
order, after the broadcast axes), a letter repeated in one operand takes its
diagonal, and a labelled axis of size 1 broadcasts against the same letter's other
sizes.  The node keeps the subscripts in explicit form (`ij,jk->ik`), as a `Subscripts`
string that prints quoted, first, as NumPy orders them (`CallForm(first="spec")`):
`einsum("ij,jk->ik", a, b)`.  The builtin also takes its subscripts last.  Two operands run as one matmul laid out in the output's order
(`_matmul_plan`); more, a repeated letter or a broadcast one, as np.einsum with its
contraction path found once per shapes.

Derivatives are einsums again.  The JVP is the sum of the einsums with one operand
replaced by its tangent.  The VJP of operand k swaps the output's subscripts and
operand k's: einsum(operands with k replaced by ḡ, subscripts with k's replaced by the
output's -> k's subscripts).  What that leaves out is put back:

- a letter of operand k found nowhere else (summed away in the forward) is an axis
  the result lacks: expand_dims, then broadcast_like(·, x);
- a letter repeated in operand k (its diagonal) gets a fresh letter for each repeat
  and an identity matrix operand joining the two (ii->i has cotangent einsum("i,ij->ij",
  ḡ, eye(n))); at an unknown shape the identity is made from x's shape (`_identity`);
- broadcast axes (`...`, or a labelled axis of size 1) are summed back with
  unbroadcast(·, x).

A printed derivative of a function whose shapes are unknown assumes a labelled axis is
not broadcast (its sizes agree); at known shapes every case is exact.
"""
from __future__ import annotations

from functools import lru_cache
from string import ascii_letters

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpTypeError, BpValueError
from ..graph import Node
from . import Attr, CallForm, Macro, OpDef, apply, const, describe, register, register_macro, static_ints
from . import series as _series
from .arrange import Text as Subscripts     # a str attribute that prints quoted
from .sym import add, broadcast_like, unbroadcast

ELL = "..."


# ── the subscripts ───────────────────────────────────────────────────────

def _terms(text: str, what: str, span) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            if text[i:i + 3] != ELL or ELL in out:
                raise BpValueError(f"einsum: a '.' that is not part of one '...' in {what}", span)
            out.append(ELL)
            i += 3
            continue
        if ch not in ascii_letters:
            raise BpValueError(f"einsum: invalid subscript {ch!r} in {what}; subscripts must be "
                               f"letters", span)
        out.append(ch)
        i += 1
    return tuple(out)


Terms = tuple[tuple[str, ...], ...]


def parse(spec: str, count: int | None, span=None) -> tuple[Terms, tuple[str, ...]]:
    """(each operand's subscripts, the output's), `...` one term; implicit output filled in."""
    text = spec.replace(" ", "")
    if text.count("->") > 1 or ("-" in text.replace("->", "")) or (">" in text.replace("->", "")):
        raise BpValueError(f"einsum: subscripts {spec!r} need at most one '->'", span)
    lhs, arrow, rhs = text.partition("->")
    ins = tuple(_terms(t, f"operand {k}", span) for k, t in enumerate(lhs.split(",")))
    if count is not None and len(ins) != count:
        raise BpValueError(f"einsum: subscripts {spec!r} are for {len(ins)} operand"
                           f"{'s' * (len(ins) != 1)}, got {count}", span)
    letters = [t for term in ins for t in term if t != ELL]
    if arrow:
        out = _terms(rhs, "the output", span)
        for t in out:
            if t == ELL:
                continue
            if out.count(t) > 1:
                raise BpValueError(f"einsum: the output names {t!r} more than once", span)
            if t not in letters:
                raise BpValueError(f"einsum: the output's {t!r} is in no operand", span)
        if ELL in out and not any(ELL in term for term in ins):
            out = tuple(t for t in out if t != ELL)      # an empty broadcast: as NumPy
    else:
        once = sorted(t for t in set(letters) if letters.count(t) == 1)
        out = ((ELL,) if any(ELL in term for term in ins) else ()) + tuple(once)
    return ins, out


def spec_of(ins, out) -> Subscripts:
    return Subscripts(",".join("".join(term) for term in ins) + "->" + "".join(out))


# ── shapes ───────────────────────────────────────────────────────────────

def _label_sizes(ins, shs, span):
    """Each letter's size (broadcast over operands) and the broadcast `...` shape."""
    sizes: dict[str, int] = {}
    ell = ()
    for k, (term, s) in enumerate(zip(ins, shs)):
        named = len(term) - (ELL in term)
        if len(s) < named or (ELL not in term and len(s) != named):
            raise BpShapeError(f"einsum: operand {k} has shape {shapes.fmt(s)}, but its subscripts "
                               f"'{''.join(term)}' name {named} ax{'es' if named != 1 else 'is'}",
                               span)
        dims = list(s)
        if ELL in term:
            e = term.index(ELL)
            n_ell = len(s) - named
            ell = shapes.broadcast(ell, tuple(dims[e:e + n_ell]), span=span,
                                   what="einsum: broadcast the '...' axes of")
            dims = dims[:e] + dims[e + n_ell:]
            term = term[:e] + term[e + 1:]
        own: dict[str, int] = {}
        for t, d in zip(term, dims):
            if t in own and own[t] != d:
                raise BpShapeError(f"einsum: operand {k} has sizes {own[t]} and {d} for its "
                                   f"repeated subscript {t!r}", span)
            own[t] = d
        for t, d in own.items():
            old = sizes.get(t)
            if old is None or old == 1:
                sizes[t] = d
            elif d != 1 and d != old:
                raise BpShapeError(f"einsum: subscript {t!r} has sizes {old} and {d}", span)
    return sizes, ell


def einsum_shape(shs, attrs, span):
    ins, out = parse(attrs["spec"], len(shs), span)
    if not all(isinstance(s, tuple) for s in shs):
        return () if not out else shapes.SymShape()
    sizes, ell = _label_sizes(ins, shs, span)
    if ELL not in out and ell:
        raise BpShapeError(f"einsum: the output of {attrs['spec']!r} has no '...' for the "
                           f"broadcast axes {shapes.fmt(ell)}", span)
    res: list[int] = []
    for t in out:
        res.extend(ell if t == ELL else (sizes[t],))
    return tuple(res)


@lru_cache(maxsize=512)
def _path(spec: str, shs: tuple):
    """np.einsum's contraction order for these shapes, found once (BLAS where it can)."""
    return np.einsum_path(spec, *(np.empty(s) for s in shs), optimize="greedy")[0]


@lru_cache(maxsize=512)
def _matmul_plan(spec: str, sa: tuple, sb: tuple):
    """Two operands as one matmul, the result laid out in the output's order where the
    output is (batch, a's kept, b's kept): (axes of a summed alone, a's permutation, its
    3-d shape, b's, the result's shape, its permutation or None); None where a letter
    repeats in an operand or broadcasts (np.einsum does those)."""
    (ta, tb), to = parse(spec, 2)
    free = iter(c for c in ascii_letters if c not in spec)
    ell: dict[int, str] = {}

    def spell(term, rank):                     # `...` as letters, right-aligned
        if ELL not in term:
            return list(term)
        n = rank - (len(term) - 1)
        width = max(n, max(ell, default=0))
        while len(ell) < width:
            ell[len(ell) + 1] = next(free)
        e = term.index(ELL)
        return list(term[:e]) + [ell[i] for i in range(n, 0, -1)] + list(term[e + 1:])
    la, lb = spell(ta, len(sa)), spell(tb, len(sb))
    lo = [t for t in to if t != ELL]
    if ELL in to:
        e = to.index(ELL)
        lo = list(to[:e]) + [ell[i] for i in range(len(ell), 0, -1)] + list(to[e + 1:])
    size = {}
    for labels, shape in ((la, sa), (lb, sb)):
        if len(set(labels)) != len(labels) or len(labels) != len(shape):
            return None
        for t, d in zip(labels, shape):
            if size.setdefault(t, d) != d:
                return None                    # a broadcast: np.einsum's
    if any(t not in la and t not in lb for t in lo):
        return None
    only_a = tuple(i for i, t in enumerate(la) if t not in lb and t not in lo)
    only_b = tuple(i for i, t in enumerate(lb) if t not in la and t not in lo)
    la = [t for i, t in enumerate(la) if i not in only_a]
    lb = [t for i, t in enumerate(lb) if i not in only_b]
    batch = [t for t in lo if t in la and t in lb]
    left = [t for t in lo if t in la and t not in lb]
    right = [t for t in lo if t in lb and t not in la]
    inner = [t for t in la if t in lb and t not in lo]

    def n(labels):
        return int(np.prod([size[t] for t in labels], dtype=np.int64))
    perm_a = tuple(la.index(t) for t in batch + left + inner)
    perm_b = tuple(lb.index(t) for t in batch + inner + right)
    order = batch + left + right
    perm_out = None if order == lo else tuple(order.index(t) for t in lo)
    return (only_a, perm_a, (n(batch), n(left), n(inner)), only_b, perm_b,
            (n(batch), n(inner), n(right)), tuple(size[t] for t in order), perm_out)


def _einsum(*xs, spec):
    if len(xs) == 1:
        return np.einsum(spec, xs[0])
    if len(xs) == 2:
        plan = _matmul_plan(spec, np.shape(xs[0]), np.shape(xs[1]))
        if plan is not None:
            only_a, perm_a, shape_a, only_b, perm_b, shape_b, shape, perm = plan
            a, b = np.asarray(xs[0]), np.asarray(xs[1])
            if only_a:
                a = np.add.reduce(a, axis=only_a)
            if only_b:
                b = np.add.reduce(b, axis=only_b)
            out = np.matmul(a.transpose(perm_a).reshape(shape_a),
                            b.transpose(perm_b).reshape(shape_b))
            if out.shape != shape:
                out = out.reshape(shape)
            return out if perm is None else out.transpose(perm)
    return np.einsum(spec, *xs, optimize=_path(spec, tuple(np.shape(x) for x in xs)))


def einsum(spec: str, operands, span=None) -> Node:
    ins, out = parse(spec, len(operands), span)
    return apply("einsum", list(operands), {"spec": spec_of(ins, out)}, span)


# ── derivatives ──────────────────────────────────────────────────────────

def _fresh(used) -> str:
    return next(c for c in ascii_letters if c not in used)


def _known(x) -> bool:
    return isinstance(x.shape, tuple)


def _identity(x, term, p: int, q: int) -> tuple[Node, tuple]:
    """The identity matrix joining axes p and q of x (term's positions of one letter),
    and the subscripts it leads with: eye(n) at a known shape; at an unknown one built
    from x's shape alone, tril(triu(M > 0)) with M = einsum(ones_like(x), "…ab->…ab")
    (x's other named axes summed, its `...` kept: positive counts, a stack of squares)."""
    if _known(x):
        n = len(term)
        return const(np.eye(x.shape[p if ELL in term and p < term.index(ELL) else p - n])), ()
    letters = iter(ascii_letters)
    spelled = tuple(ELL if t == ELL else next(letters) for t in term)
    lead = (ELL,) if ELL in term else ()
    ones = apply("broadcast_like", [const(1.0), x])
    counts = apply("einsum", [ones], {"spec": spec_of((spelled,), lead + (spelled[p], spelled[q]))})
    square = apply("greater", [counts, const(0.0)])
    return apply("tril", [apply("triu", [square], {"k": 0})], {"k": 0}), lead


def _vjp_operand(ct, ins_nodes, k: int, ins, out) -> Node:
    x = ins_nodes[k]
    term = ins[k]
    # the letters the einsum can give: the output's, the other operands', and a repeated
    # one's (its identity operand carries it)
    others = set(out) | {t for j, tj in enumerate(ins) if j != k for t in tj} \
        | {t for t in term if term.count(t) > 1}
    used = set(t for tj in ins for t in tj) | set(out)
    operands = list(ins_nodes)
    operands[k] = ct
    terms = list(ins)
    terms[k] = out
    target: list[str] = []
    missing: list[int] = []                  # axes of x the einsum cannot give
    n = len(term)
    seen: set[str] = set()
    for i, t in enumerate(term):
        pos = i if ELL in term and i < term.index(ELL) else i - n
        if t == ELL:
            target.append(ELL)
        elif t not in seen and t in others:
            target.append(t)
        elif t not in seen:
            missing.append(pos)
        else:                                # a repeated letter: a fresh one and an identity
            fresh = _fresh(used)
            used.add(fresh)
            target.append(fresh)
            eye, lead = _identity(x, term, term.index(t), i)
            operands.append(eye)
            terms.append(lead + (t, fresh))
        seen.add(t)
    lead = ELL in out and ELL not in term          # the '...' axes x does not have: summed
    if lead:
        target.insert(0, ELL)
    if ELL in target and not any(ELL in tj for tj in terms):
        target.remove(ELL)
    r = apply("einsum", operands, {"spec": spec_of(terms, target)})
    if missing:
        r = apply("expand_dims", [r], {"axis": tuple(missing)})
    if _known(x) and _known(r):
        summed = any(d == 1 and e != 1 for d, e in zip(x.shape[::-1], r.shape[::-1]))
        if len(r.shape) > len(x.shape) or summed:
            r = unbroadcast(r, x)
        if r.shape != x.shape:
            r = broadcast_like(r, x)
        return r
    if ELL in term or lead:
        r = unbroadcast(r, x)
    if missing:
        r = broadcast_like(r, x)
    return r


def _einsum_vjp(ct, out, ins_nodes, attrs):
    ins, out_terms = parse(attrs["spec"], len(ins_nodes))
    return tuple(_vjp_operand(ct, ins_nodes, k, ins, out_terms) for k in range(len(ins_nodes)))


def _einsum_jvp(ts, out, ins_nodes, attrs):
    total = None
    for k, t in enumerate(ts):
        if t is not None:
            operands = list(ins_nodes)
            operands[k] = t
            total = add(total, apply("einsum", operands, attrs))
    return total


def _fold_einsum(ins_nodes, attrs, shape):
    ins, out = parse(attrs["spec"], len(ins_nodes))
    if len(ins) == 1 and ins[0] == out and len(set(out)) == len(out):
        return ins_nodes[0]                  # einsum("ij->ij", x) is x, whatever its shape
    return None


def _batch_einsum(node, ins_b, m):
    ins, out = parse(node.attr("spec"), len(ins_b))
    b = _fresh({t for term in ins for t in term})
    terms = tuple(((b,) + term) if batched else term for term, (_, batched) in zip(ins, ins_b))
    return apply("einsum", [x for x, _ in ins_b], {"spec": spec_of(terms, (b,) + out)})


def _einsum_export(args, attrs):
    return f"np.einsum({attrs['spec']!r}, {', '.join(args)})"


def _einsum_macro(ctx, args, kwargs, span):
    if kwargs:
        name = next(iter(kwargs))
        raise BpTypeError(f"einsum has no argument '{name}'; its signature is "
                          f"einsum(subscripts, operands…)", span)
    if args and not isinstance(args[0], str) and isinstance(args[-1], str):
        args = [args[-1], *args[:-1]]        # einsum(a, b, "ij,jk->ik"): as bp prints it
    if not args or not isinstance(args[0], str):
        got = describe(args[0]) if args else "nothing"
        raise BpTypeError(f"einsum's first argument is its subscripts, a string such as "
                          f"\"ij,jk->ik\"; got {got}", span)
    operands = list(args[1:])
    for lv in operands:
        if not isinstance(lv, Node):
            raise BpTypeError(f"einsum expects tensors after the subscripts, got {describe(lv)}",
                              span)
    if not operands:
        raise BpTypeError("einsum needs at least one operand after the subscripts", span)
    return einsum(args[0], operands, span)


# ── tensordot, inner, kron: einsums of known ranks ───────────────────────

def _rank(x, name, span) -> int:
    if not isinstance(x.shape, tuple):
        raise BpValueError(f"{name} needs its arguments' ranks: give the parameters shape "
                           f"annotations (a: [3, 2]) to show them", span)
    return len(x.shape)


def _tensors(name, args, kwargs, span, params, options=()):
    args, kwargs = list(args), dict(kwargs)
    got = {}
    for p in params + tuple(o for o, _ in options):
        if args:
            got[p] = args.pop(0)
        elif p in kwargs:
            got[p] = kwargs.pop(p)
    sig = f"{name}({', '.join(params + tuple(f'{o}={d}' for o, d in options))})"
    if args or kwargs:
        extra = next(iter(kwargs), None)
        raise BpTypeError(f"{name} has no argument '{extra}'; its signature is {sig}" if extra
                          else f"{sig} takes {len(params) + len(options)} arguments, got more", span)
    for p in params:
        if p not in got:
            raise BpTypeError(f"{sig} is missing its argument '{p}'", span)
        if not isinstance(got[p], Node):
            raise BpTypeError(f"{name} expects a tensor, got {describe(got[p])}", span)
    return got


def _tensordot(ctx, args, kwargs, span):
    got = _tensors("tensordot", args, kwargs, span, ("a", "b"), (("axes", 2),))
    a, b = got["a"], got["b"]
    ra, rb = _rank(a, "tensordot", span), _rank(b, "tensordot", span)
    axes = got.get("axes")
    if axes is None or isinstance(axes, Node) and np.ndim(axes.value if axes.op == "const" else 0) == 0:
        n = 2 if axes is None else static_ints(axes, "'axes'", span)[0]
        if n < 0 or n > min(ra, rb):
            raise BpShapeError(f"tensordot: axes={n} for tensors of ranks {ra} and {rb}", span)
        ax_a, ax_b = tuple(range(ra - n, ra)), tuple(range(n))
    elif isinstance(axes, tuple) and len(axes) == 2:
        ax_a, ax_b = (static_ints(v, "'axes'", span) for v in axes)
    else:
        v = static_ints(axes, "'axes'", span) if isinstance(axes, Node) else None
        if v is None or len(v) != 2:
            raise BpValueError("tensordot: axes must be a number or a pair (axes of a, axes of b)",
                               span)
        ax_a, ax_b = (v[0],), (v[1],)
    if len(ax_a) != len(ax_b):
        raise BpShapeError(f"tensordot: {len(ax_a)} axes of a against {len(ax_b)} of b", span)
    ax_a = shapes.normalize_axes(ax_a, ra, span)
    ax_b = shapes.normalize_axes(ax_b, rb, span)
    for i, j in zip(ax_a, ax_b):
        if a.shape[i] != b.shape[j]:
            raise BpShapeError(f"tensordot: axis {i} of a has size {a.shape[i]}, axis {j} of b "
                               f"{b.shape[j]}", span)
    la = ascii_letters[:ra]
    lb = list(ascii_letters[ra:ra + rb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in ax_a] + [c for j, c in enumerate(lb) if j not in ax_b]
    return apply("einsum", [a, b], {"spec": Subscripts(f"{la},{''.join(lb)}->{''.join(out)}")}, span)


def _inner(ctx, args, kwargs, span):
    got = _tensors("inner", args, kwargs, span, ("a", "b"))
    a, b = got["a"], got["b"]
    ra, rb = _rank(a, "inner", span), _rank(b, "inner", span)
    if ra == 0 or rb == 0:
        return apply("mul", [a, b], span=span)
    if a.shape[-1] != b.shape[-1]:
        raise BpShapeError(f"inner of shapes {shapes.fmt(a.shape)} and {shapes.fmt(b.shape)}: "
                           f"the last axes differ", span)
    la, lb = ascii_letters[:ra - 1], ascii_letters[ra - 1:ra + rb - 2]
    s = ascii_letters[ra + rb - 2]
    return apply("einsum", [a, b], {"spec": Subscripts(f"{la}{s},{lb}{s}->{la}{lb}")}, span)


def _kron(ctx, args, kwargs, span):
    got = _tensors("kron", args, kwargs, span, ("a", "b"))
    a, b = got["a"], got["b"]
    ra, rb = _rank(a, "kron", span), _rank(b, "kron", span)
    n = max(ra, rb)
    sa, sb = (1,) * (n - ra) + a.shape, (1,) * (n - rb) + b.shape
    if n == 0:
        return apply("mul", [a, b], span=span)
    la, lb = ascii_letters[:n], ascii_letters[n:2 * n]
    aa = a if ra == n else apply("reshape", [a], {"shape": sa}, span)
    bb = b if rb == n else apply("reshape", [b], {"shape": sb}, span)
    pairs = "".join(x + y for x, y in zip(la, lb))
    outer = apply("einsum", [aa, bb], {"spec": Subscripts(f"{la},{lb}->{pairs}")}, span)
    return apply("reshape", [outer], {"shape": tuple(p * q for p, q in zip(sa, sb))}, span)


# ── cross ────────────────────────────────────────────────────────────────

def _cross_shape(shs, attrs, span):
    a, b = shs
    for s in shs:
        if isinstance(s, tuple) and (len(s) == 0 or s[-1] != 3):
            raise BpShapeError(f"cross needs 3-vectors (a last axis of 3), got shape "
                               f"{shapes.fmt(s)}", span)
    if not all(isinstance(s, tuple) for s in shs):
        return shapes.broadcast(a, b, span=span)
    return shapes.broadcast(a[:-1], b[:-1], span=span, what="cross: broadcast") + (3,)


def _cross(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.cross(a, b)


def _cross_vjp(ct, out, ins, attrs):
    a, b = ins
    # <g, a × b> = <a, b × g> = <b, g × a>
    return (unbroadcast(apply("cross", [b, ct]), a), unbroadcast(apply("cross", [ct, a]), b))


def _cross_jvp(ts, out, ins, attrs):
    a, b = ins
    ta, tb = ts
    return add(None if ta is None else apply("cross", [ta, b]),
               None if tb is None else apply("cross", [a, tb]))


def _batch_cross(node, ins_b, m):
    rank = len(node.shape)
    out = []
    for x, batched in ins_b:
        if batched and len(x.shape) - 1 < rank:
            x = apply("reshape", [x], {"shape": (m,) + (1,) * (rank - len(x.shape) + 1) + x.shape[1:]})
        out.append(x)
    return apply("cross", out)


# ── registration ─────────────────────────────────────────────────────────

register(OpDef(name="einsum", kernel=_einsum, shape=einsum_shape, params=("operands",),
               variadic=True, builtin=False, attrs=(Attr("spec", "str", required=True),),
               fmt=CallForm("einsum", first="spec"),
               vjp=_einsum_vjp, jvp=_einsum_jvp, fold=_fold_einsum, batch=_batch_einsum,
               taylor=_series.multilinear,
               export=_einsum_export,
               doc="the Einstein sum of the operands over the subscripts, as np.einsum"))
register(OpDef(name="cross", kernel=_cross, shape=_cross_shape, params=("a", "b"),
               vjp=_cross_vjp, jvp=_cross_jvp, batch=_batch_cross, export="np.cross({0}, {1})",
               taylor=_series.multilinear,
               doc="the cross product of 3-vectors along the last axis (stacks broadcast)"))
register_macro(Macro("einsum", _einsum_macro, "einsum(subscripts, operands…)",
                     "the Einstein sum over the subscripts (\"ij,jk->ik\", with ..., as np.einsum; "
                     "the subscripts may also come last, as bp prints them)"))
register_macro(Macro("tensordot", _tensordot, "tensordot(a, b, axes=2)",
                     "the sum of products over the last `axes` axes of a and the first of b, "
                     "or over the given pair of axis lists"))
register_macro(Macro("inner", _inner, "inner(a, b)",
                     "the sum of products over the last axes of a and b"))
register_macro(Macro("kron", _kron, "kron(a, b)", "the Kronecker product of a and b"))
