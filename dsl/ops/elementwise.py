"""Elementwise ops: arithmetic, comparisons, logic, and the unary builtins.

Each entry is one place: kernel, shape rule, derivative, folds, print
form.  A unary op's derivative is given once, as `d(x, out)` (its local
derivative as graph nodes); the VJP is ct·d and the JVP t·d.  Comparisons
and logic give 1.0 or 0.0 and carry no gradient (SPEC §5).
"""
from __future__ import annotations

import numpy as np

from .. import shapes
from . import CallForm, Infix, OpDef, Prefix, apply, const, is_const_value, register, zeros
from . import series as _series
from .batched import elementwise as _batch, map_bands
from .sym import add, broadcast_like, c, div, mul, neg, op, pow_, sub, unbroadcast, where


def same_shape(shs, attrs, span):
    return shs[0]


def broadcast_shape(shs, attrs, span):
    if len(shs) == 2 and shs[0] == shs[1]:       # most arithmetic: one shape on both sides
        return shs[0]
    return shapes.broadcast(*shs, span=span)


# ── unary ops, from their local derivative ───────────────────────────────

def unary(name, kernel, doc, export, d=None, builtin=True, fmt=None, fold=None, helpers=(),
          **more):
    """Register an elementwise op of one tensor from its local derivative `d(x, out)`
    (None: not differentiable); it batches elementwise.  `export` is its NumPy source
    (a template on {0}), `more` any other OpDef field."""
    vjp = jvp = None
    if d is not None:
        vjp = lambda ct, out, ins, attrs: (mul(ct, d(ins[0], out)),)   # noqa: E731
        jvp = lambda ts, out, ins, attrs: mul(ts[0], d(ins[0], out))   # noqa: E731
    return register(OpDef(name=name, kernel=kernel, shape=same_shape, params=("x",),
                          vjp=vjp, jvp=jvp, differentiable=d is not None, builtin=builtin,
                          fmt=fmt, fold=fold, doc=doc, batch=_batch, export=export,
                          helpers=helpers, **more))


_unary = unary


def _sigmoid(x):
    # Stable on both tails, exp never sees a positive number: e^min(x, 0) / (1 + e^-|x|)
    # is 1/(1 + e^-x) for x >= 0 and e^x/(1 + e^x) below (half the time of a where).
    return np.exp(np.minimum(x, 0.0)) / (1.0 + np.exp(-np.abs(x)))


def _flag(fn):
    return lambda *xs: fn(*xs).astype(np.float64)


def _fold_neg(ins, attrs, shape):
    x = ins[0]
    if x.op == "neg":                                   # --x → x
        return x.inputs[0]
    if x.op == "broadcast_like":                        # -bcast(g) → bcast(-g): the broadcast
        g, like = x.inputs                              # stays outermost, where folds drop it
        return apply("broadcast_like", [neg(g), like])
    return None


def _one_minus_square(x):
    return sub(c(1), mul(x, x))


register(OpDef(name="neg", kernel=np.negative, shape=same_shape, params=("x",), builtin=False,
               vjp=lambda ct, out, ins, attrs: (neg(ct),),
               jvp=lambda ts, out, ins, attrs: neg(ts[0]),
               fold=_fold_neg, fmt=Prefix("-", 9), doc="-x", batch=_batch, export="-{0}",
               banded=lambda node, ins: map_bands(ins[0], neg)))
_unary("abs", np.abs, "absolute value; abs'(0) = 0", "np.abs({0})", d=lambda x, out: op("sign", x))
_unary("sign", np.sign, "-1, 0 or 1; derivative 0", "np.sign({0})")
_unary("exp", np.exp, "e^x", "np.exp({0})", taylor=_series.exp, d=lambda x, out: out)
def _softplus_of(x):
    """log(1 + exp(u)) and log1p(exp(u)) are softplus(u): computed without overflow, and
    differentiated as the text writes it (sigmoid(u), not exp(u) / (1 + exp(u)))."""
    if x.op == "exp":
        return op("softplus", x.inputs[0])
    return None


def _fold_log(ins, attrs, shape):
    x, = ins
    if x.op == "add":
        for one, other in (x.inputs, reversed(x.inputs)):
            if is_const_value(one, 1.0) and one.shape == () and other.shape == x.shape:
                return _softplus_of(other)
    return None


_unary("log", np.log, "natural logarithm; log(0) = -inf", "np.log({0})",
       taylor=_series.log, d=lambda x, out: div(c(1), x),
       fold=_fold_log)
_unary("log1p", np.log1p, "log(1 + x), accurate near 0", "np.log1p({0})",
       taylor=_series.log1p, d=lambda x, out: div(c(1), add(c(1), x)),
       fold=lambda ins, attrs, shape: _softplus_of(ins[0]))
_unary("expm1", np.expm1, "exp(x) - 1, accurate near 0", "np.expm1({0})",
       taylor=_series.expm1, d=lambda x, out: op("exp", x))
_unary("sqrt", np.sqrt, "square root; sqrt(-1) = nan", "np.sqrt({0})",
       taylor=_series.sqrt, d=lambda x, out: div(c(0.5), out))
_unary("sin", np.sin, "sine", "np.sin({0})", taylor=_series.sin, d=lambda x, out: op("cos", x))
_unary("cos", np.cos, "cosine", "np.cos({0})", taylor=_series.cos, d=lambda x, out: neg(op("sin", x)))
_unary("tan", np.tan, "tangent", "np.tan({0})",
       taylor=_series.tan, d=lambda x, out: add(c(1), mul(out, out)))
_unary("asin", np.arcsin, "inverse sine", "np.arcsin({0})", taylor=_series.asin,
       d=lambda x, out: div(c(1), op("sqrt", _one_minus_square(x))))
_unary("acos", np.arccos, "inverse cosine", "np.arccos({0})",
       taylor=_series.acos,
       d=lambda x, out: neg(div(c(1), op("sqrt", _one_minus_square(x)))))
_unary("atan", np.arctan, "inverse tangent", "np.arctan({0})", taylor=_series.atan,
       d=lambda x, out: div(c(1), add(c(1), mul(x, x))))
_unary("sinh", np.sinh, "hyperbolic sine", "np.sinh({0})",
       taylor=_series.sinh, d=lambda x, out: op("cosh", x))
_unary("cosh", np.cosh, "hyperbolic cosine", "np.cosh({0})",
       taylor=_series.cosh, d=lambda x, out: op("sinh", x))
_unary("tanh", np.tanh, "hyperbolic tangent; tanh' = 1 - tanh²", "np.tanh({0})",
       taylor=_series.tanh, d=lambda x, out: _one_minus_square(out))
# σ' = σ(x)·σ(-x): the same as σ(1 - σ), but 1 - σ by subtraction loses digits for large x.
_unary("sigmoid", _sigmoid, "1 / (1 + exp(-x)), computed stably", "_sigmoid({0})", helpers=(_sigmoid,),
       taylor=_series.sigmoid, d=lambda x, out: mul(out, op("sigmoid", neg(x))))
# relu'(0) = 0: the comparison is strict.
_unary("relu", lambda x: np.maximum(x, 0.0), "max(x, 0); relu'(0) = 0", "np.maximum({0}, 0.0)",
       d=lambda x, out: op("greater", x, c(0)))
_unary("softplus", lambda x: np.logaddexp(0.0, x), "log(1 + exp(x)), computed stably", "np.logaddexp(0.0, {0})",
       taylor=_series.softplus, d=lambda x, out: op("sigmoid", x))
_unary("floor", np.floor, "largest whole number ≤ x; derivative 0", "np.floor({0})")
_unary("round", np.round, "nearest whole number, half to even (NumPy); derivative 0", "np.round({0})")
_unary("not", _flag(lambda x: x == 0), "not x, elementwise on 0/1", "({0} == 0).astype(np.float64)", builtin=False,
       fmt=Prefix("not", 5))


# ── binary arithmetic: folds apply the identities as nodes are built ─────

def _same(node, shape) -> bool:
    return node.shape == shape


def _strip_broadcast(x, other, shape):
    """broadcast_like(g, y) next to an operand that already has the full shape is just g."""
    if x.op == "broadcast_like" and _same(other, shape):
        return x.inputs[0]
    return x


def _without_broadcast(op, a, b, shape):
    """op(a, b) with a broadcast_like dropped from one side (never both: the other
    side must keep the full shape), or None when there is none to drop."""
    a2 = _strip_broadcast(a, b, shape)
    b2 = _strip_broadcast(b, a2, shape)
    return apply(op, [a2, b2]) if a2 is not a or b2 is not b else None


# The ops whose operands a fold of + - * / looks at: with neither operand one of
# these, nothing folds (the folds below read no other op).
_FOLDING = frozenset(("const", "neg", "broadcast_like"))


def _fold_add(ins, attrs, shape):
    a, b = ins
    if a.op not in _FOLDING and b.op not in _FOLDING:
        return None
    if is_const_value(b, 0) and _same(a, shape):
        return a
    if is_const_value(a, 0) and _same(b, shape):
        return b
    if b.op == "neg":                                   # a + -b → a - b
        return apply("sub", [a, b.inputs[0]])
    if a.op == "neg":                                   # -a + b → b - a
        return apply("sub", [b, a.inputs[0]])
    stripped = _without_broadcast("add", a, b, shape)
    if stripped is not None:
        return stripped
    return None


def _fold_sub(ins, attrs, shape):
    a, b = ins
    if a is b:
        return zeros(shape, a)
    if a.op not in _FOLDING and b.op not in _FOLDING:
        return None
    if is_const_value(b, 0) and _same(a, shape):
        return a
    if is_const_value(a, 0) and _same(b, shape):
        return neg(b)
    if b.op == "neg":                                   # a - -b → a + b
        return apply("add", [a, b.inputs[0]])
    stripped = _without_broadcast("sub", a, b, shape)
    if stripped is not None:
        return stripped
    return None


def _fold_mul(ins, attrs, shape):
    a, b = ins
    if a.op not in _FOLDING and b.op not in _FOLDING:
        return None
    if b.op == "const" and a.op != "const":             # constants first: 2*x
        return apply("mul", [b, a])
    for x, y in ((a, b), (b, a)):
        if is_const_value(x, 1) and _same(y, shape):
            return y
        if is_const_value(x, 0):                        # x*0 → 0, also where x is inf or nan
            if isinstance(shape, tuple):
                return zeros(shape)
            return apply("zeros_like", [y]) if _same(y, shape) else None
        if is_const_value(x, -1) and _same(y, shape):
            return neg(y)
    if a.op == "neg":                                   # (-a)*b → -(a*b)
        return neg(apply("mul", [a.inputs[0], b]))
    if b.op == "neg":
        return neg(apply("mul", [a, b.inputs[0]]))
    stripped = _without_broadcast("mul", a, b, shape)
    if stripped is not None:
        return stripped
    return None


def _fold_div(ins, attrs, shape):
    a, b = ins
    if a.op not in _FOLDING and b.op not in _FOLDING:
        return None
    if is_const_value(b, 1) and _same(a, shape):
        return a
    if is_const_value(a, 0) and _same(b, shape) and isinstance(shape, tuple):
        return zeros(shape)
    if a.op == "neg":
        return neg(apply("div", [a.inputs[0], b]))
    stripped = _without_broadcast("div", a, b, shape)
    if stripped is not None:
        return stripped
    return None


def _fold_pow(ins, attrs, shape):
    a, b = ins
    if is_const_value(b, 1) and _same(a, shape):
        return a
    if is_const_value(b, 0) and isinstance(shape, tuple):
        return const(np.ones(shape))
    return None


def binary(name, kernel, doc, export, fmt=None, vjp=None, jvp=None, fold=None, builtin=False,
           params=("a", "b"), **more):
    """Register an elementwise op of two tensors that broadcast; it batches elementwise.
    `export` is its NumPy source (a template on {0} and {1}), `more` any other OpDef field."""
    return register(OpDef(name=name, kernel=kernel, shape=broadcast_shape, params=params,
                          vjp=vjp, jvp=jvp, fold=fold, differentiable=vjp is not None,
                          builtin=builtin, fmt=fmt, doc=doc, batch=_batch, export=export, **more))


_binary = binary


# ── banded rules (dsl/batching.py, "an identity seed kept as bands") ─────

def _banded_mul(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if (ba is None) == (bb is None):
        return None                        # quadratic in the seed, or neither
    mine, other = (a, b) if ba is not None else (b, a)
    if mine.shape != node.shape or other.shape not in ((), node.shape):
        return None
    if ba is not None:
        return map_bands(ba, lambda w: apply("mul", [w, b]))
    return map_bands(bb, lambda w: apply("mul", [a, w]))


def _banded_div(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if ba is None or bb is not None or a.shape != node.shape or b.shape not in ((), node.shape):
        return None
    return map_bands(ba, lambda w: apply("div", [w, b]))


def _banded_sum_of_two(node, ins):
    (a, b), (ba, bb) = node.inputs, ins
    if ba is None or bb is None or a.shape != node.shape or b.shape != node.shape:
        return None                        # an affine term, or a broadcast operand
    out = dict(ba)
    for d, w in bb.items():
        if node.op == "sub":
            out[d] = apply("sub", [out[d], w]) if d in out else apply("neg", [w])
        else:
            out[d] = apply("add", [out[d], w]) if d in out else w
    return out


def _bt(t, like_out):
    """A tangent broadcast to the output's shape."""
    return t if t.shape == like_out.shape else broadcast_like(t, like_out)


_binary("add", np.add, "a + b", "{0} + {1}", Infix("+", 7), fold=_fold_add,
        banded=_banded_sum_of_two,
        vjp=lambda ct, out, ins, attrs: (unbroadcast(ct, ins[0]), unbroadcast(ct, ins[1])),
        jvp=lambda ts, out, ins, attrs: _bt(add(ts[0], ts[1]), out))
_binary("sub", np.subtract, "a - b", "{0} - {1}", Infix("-", 7), fold=_fold_sub,
        banded=_banded_sum_of_two,
        vjp=lambda ct, out, ins, attrs: (unbroadcast(ct, ins[0]), unbroadcast(neg(ct), ins[1])),
        jvp=lambda ts, out, ins, attrs: _bt(
            ts[0] if ts[1] is None else neg(ts[1]) if ts[0] is None else sub(ts[0], ts[1]), out))
_binary("mul", np.multiply, "a * b", "{0} * {1}", Infix("*", 8), fold=_fold_mul,
        banded=_banded_mul, taylor=_series.multilinear,
        vjp=lambda ct, out, ins, attrs: (unbroadcast(mul(ct, ins[1]), ins[0]),
                                         unbroadcast(mul(ct, ins[0]), ins[1])),
        jvp=lambda ts, out, ins, attrs: _bt(add(None if ts[0] is None else mul(ts[0], ins[1]),
                                                None if ts[1] is None else mul(ins[0], ts[1])), out))
# (a/b)' = a'/b - b'·(a/b)/b: reuse out.
_binary("div", np.divide, "a / b", "{0} / {1}", Infix("/", 8), fold=_fold_div,
        banded=_banded_div, taylor=_series.div_rule,
        vjp=lambda ct, out, ins, attrs: (unbroadcast(div(ct, ins[1]), ins[0]),
                                         unbroadcast(neg(div(mul(ct, out), ins[1])), ins[1])),
        jvp=lambda ts, out, ins, attrs: _bt(
            add(None if ts[0] is None else div(ts[0], ins[1]),
                None if ts[1] is None else neg(div(mul(ts[1], out), ins[1]))), out))


def _pow_da(out, a, b):
    # d/da a^b = b·a^(b-1); a constant exponent folds, so x^2 gives 2*x (and x^0 has 0).
    # With a tensor exponent, 0·0^(-1) at a = b = 0 is 0 (a^0 is the constant 1), as in
    # JAX; only that point is masked, so the mixed second derivative elsewhere (1/a at
    # b = 0) stays exact.
    da = mul(b, pow_(a, sub(b, c(1))))
    if b.op == "const":
        return da
    return where(op("and", op("equal", a, c(0)), op("equal", b, c(0))), c(0), da)


def _pow_db(out, a, b):
    # d/db a^b = a^b·log(a); a constant exponent gets none (so x^2 is smooth at 0).  At
    # a = 0 the log is taken of 1 instead (JAX's rule): 0^b is 0 for b > 0, so its
    # derivative there is 0, not 0·-inf; its own derivatives through the mask are 0 too.
    if b.op == "const":
        return None
    return mul(out, op("log", where(op("equal", a, c(0)), c(1), a)))


def _pow_vjp(ct, out, ins, attrs):
    a, b = ins
    db = _pow_db(out, a, b)
    return (unbroadcast(mul(ct, _pow_da(out, a, b)), a) if a.op != "const" else None,
            None if db is None else unbroadcast(mul(ct, db), b))


def _pow_jvp(ts, out, ins, attrs):
    a, b = ins
    ta = None if ts[0] is None else mul(ts[0], _pow_da(out, a, b))
    db = _pow_db(out, a, b)
    tb = None if ts[1] is None or db is None else mul(ts[1], db)
    return None if ta is None and tb is None else _bt(add(ta, tb), out)


def _power(a, b):
    # A scalar exponent through ndarray.__pow__, which NumPy turns into square,
    # sqrt or reciprocal for 2, 0.5 and -1.
    if np.ndim(b) == 0 and np.ndim(a) > 0:
        return np.asarray(a) ** float(b)
    return np.power(a, b)


_binary("pow", _power, "a ^ b: NumPy power; (-8)^(1/3) is nan", "np.power({0}, {1})",
        Infix("^", 10, "right"),
        fold=_fold_pow, vjp=_pow_vjp, jvp=_pow_jvp, taylor=_series.pow_rule)


# ── maximum / minimum: a tie gives each side half (SPEC §12) ─────────────

def _share(first, a, b):
    """1 where `first` wins, ½ at a tie, 0 where the other side wins."""
    return add(op(first, a, b), mul(c(0.5), op("equal", a, b)))


def _extremum(name, first, doc):
    def vjp(ct, out, ins, attrs):
        a, b = ins
        wa = _share(first, a, b)
        return unbroadcast(mul(ct, wa), a), unbroadcast(mul(ct, sub(c(1), wa)), b)

    def jvp(ts, out, ins, attrs):
        a, b = ins
        wa = _share(first, a, b)
        ta = None if ts[0] is None else mul(ts[0], wa)
        tb = None if ts[1] is None else mul(ts[1], sub(c(1), wa))
        return _bt(add(ta, tb), out)

    _binary(name, {"maximum": np.maximum, "minimum": np.minimum}[name], doc,
            f"np.{name}({{0}}, {{1}})", vjp=vjp, jvp=jvp, builtin=True)


_extremum("maximum", "greater", "elementwise maximum; a tie gives each side half the gradient")
_extremum("minimum", "less", "elementwise minimum; a tie gives each side half the gradient")

# ── comparisons and logic: 1.0 or 0.0, derivative 0 ─────────────────────
for _name, _fn, _sym in (("less", np.less, "<"), ("less_equal", np.less_equal, "<="),
                         ("greater", np.greater, ">"), ("greater_equal", np.greater_equal, ">="),
                         ("equal", np.equal, "=="), ("not_equal", np.not_equal, "!=")):
    _binary(_name, _flag(_fn), f"a {_sym} b: 1 where true, else 0",
            f"np.{_name}({{0}}, {{1}}).astype(np.float64)", Infix(_sym, 6, "none"))
_binary("and", _flag(lambda a, b: (a != 0) & (b != 0)), "a and b, elementwise on 0/1",
        "(({0} != 0) & ({1} != 0)).astype(np.float64)", Infix("and", 4))
_binary("or", _flag(lambda a, b: (a != 0) | (b != 0)), "a or b, elementwise on 0/1",
        "(({0} != 0) | ({1} != 0)).astype(np.float64)", Infix("or", 3))


# ── where: the gradient goes to the chosen side only ─────────────────────

def _where_vjp(ct, out, ins, attrs):
    cond, a, b = ins
    zero = c(0)
    return None, unbroadcast(where(cond, ct, zero), a), unbroadcast(where(cond, zero, ct), b)


def _where_jvp(ts, out, ins, attrs):
    cond, a, b = ins
    ta = c(0) if ts[1] is None else ts[1]
    tb = c(0) if ts[2] is None else ts[2]
    return _bt(where(cond, ta, tb), out)


def _fold_where(ins, attrs, shape):
    cond, a, b = ins
    if a is b and _same(a, shape):
        return a
    if cond.op == "const" and cond.value.size == 1:
        pick = a if float(cond.value.reshape(())) != 0 else b
        if _same(pick, shape):
            return pick
    a2 = _strip_broadcast(a, b, shape)          # where broadcasts its operands itself
    b2 = _strip_broadcast(b, a2, shape)
    if a2 is not a or b2 is not b:
        return apply("where", [cond, a2, b2])
    return None


register(OpDef(name="where", kernel=lambda c_, a, b: np.where(c_ != 0, a, b),
               shape=broadcast_shape, params=("c", "a", "b"), fmt=CallForm("where"),
               vjp=_where_vjp, jvp=_where_jvp, fold=_fold_where, batch=_batch,
               export="np.where({0} != 0, {1}, {2})",
               doc="a where c is nonzero, else b; the gradient goes to the chosen side only"))
