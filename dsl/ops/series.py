"""Taylor rules: how an op maps truncated Taylor series (Griewank & Walther, ch. 13).

A series is a list of n + 1 nodes [x0, x1, …, xn], the coefficients of
x(t) = x0 + x1·t + … + xn·tⁿ; x0 is the node itself and a coefficient that
is None is zero.  An op's `taylor` rule takes its inputs' series (an input
that does not move with t has all higher coefficients None) and returns its
output's: every coefficient is built from registered ops, so a Taylor
expansion prints, evaluates and is differentiated again (dsl/taylor.py walks
the graph).  Ops that are linear in the moving inputs need no rule (the walk
applies their JVP to each coefficient), so only the nonlinear ones have one:

- products by Cauchy convolution (`multilinear`: mul, matmul, outer, einsum, …);
- elementwise functions by the linear ODE each satisfies, one coefficient
  after the other in O(k) work: exp (y' = y·x'), tanh (y' = (1 - y²)·x'),
  log (x·y' = x'), sqrt (y² = x), x^r (x·y' = r·y·x'), a/b (y·b = a), …

With D(x) the series of x' (D(x)ₘ = (m+1)·xₘ₊₁), y' = g·x' gives
yₖ = (g·D(x))ₖ₋₁ / k and w·y' = x' gives yₖ = (xₖ - Σᵢ₌₁ᵏ⁻¹ (k-i)/k·wᵢ·yₖ₋ᵢ) / w₀.
"""
from __future__ import annotations

import math

from .. import shapes
from ..graph import Node
from . import apply, const

Series = list          # [node, node | None, …]


def moves(s: Series) -> bool:
    """Whether a series has a nonzero coefficient after the first."""
    return any(x is not None for x in s[1:])


def still(x: Node, n: int) -> Series:
    return [x] + [None] * n


# ── None-aware arithmetic (None is zero) ─────────────────────────────────

def add(a, b):
    return b if a is None else a if b is None else apply("add", [a, b])


def sub(a, b):
    if b is None:
        return a
    return apply("neg", [b]) if a is None else apply("sub", [a, b])


def mul(a, b):
    return None if a is None or b is None else apply("mul", [a, b])


def scale(s: float, a):
    """s·a for a number s."""
    if a is None or s == 0:
        return None
    return a if s == 1 else apply("neg", [a]) if s == -1 else apply("mul", [const(float(s)), a])


def div(a, b):
    return None if a is None else apply("div", [a, b])


def total(terms):
    out = None
    for t in terms:
        out = add(out, t)
    return out


def cauchy(a: Series, b: Series, k: int, lo: int = 0, product=mul):
    """Σᵢ aᵢ·bₖ₋ᵢ over i = lo … k - lo (the coefficient k of a·b when lo = 0)."""
    return total(product(a[i], b[k - i]) for i in range(lo, k - lo + 1))


def square(a: Series, k: int, lo: int = 0):
    """Σᵢ aᵢ·aₖ₋ᵢ over i = lo … k - lo, each cross term once, doubled."""
    half = total(mul(a[i], a[k - i]) for i in range(lo, (k + 1) // 2))
    mid = mul(a[k // 2], a[k // 2]) if k % 2 == 0 and k // 2 >= lo else None
    return add(scale(2, half), mid)


def product_series(a: Series, b: Series, n: int, product=mul) -> Series:
    return [cauchy(a, b, k, product=product) if k else product(a[0], b[0]) for k in range(n + 1)]


def square_series(a: Series, n: int) -> Series:
    return [square(a, k) for k in range(n + 1)]


# ── the two ODE forms ────────────────────────────────────────────────────

def along(xs: Series, y0: Node, g0: Node, g_next, n: int) -> Series:
    """The series of y with y' = g·x', y(0) = y0, where g's coefficient 0 is g0 and
    g_next(ys, k) gives g's coefficient k from ys[0..k]."""
    ys, gs = [y0], [g0]
    for k in range(1, n + 1):
        ys.append(scale(1 / k, total(scale(j, mul(xs[j], gs[k - j])) for j in range(1, k + 1))))
        if k < n:
            gs.append(g_next(ys, k))
    return ys


def against(xs: Series, ws: Series, y0: Node, n: int) -> Series:
    """The series of y with w·y' = x', y(0) = y0."""
    ys = [y0]
    for k in range(1, n + 1):
        rest = total(scale((k - i) / k, mul(ws[i], ys[k - i])) for i in range(1, k))
        ys.append(div(sub(xs[k], rest), ws[0]))
    return ys


def exp_of(xs: Series, y0: Node, n: int, factor: float = 1.0) -> Series:
    """y = exp(factor·x) with y(0) = y0."""
    g_next = (lambda ys, k: ys[k]) if factor == 1 else (lambda ys, k: scale(factor, ys[k]))
    return along(xs, y0, y0 if factor == 1 else scale(factor, y0), g_next, n)


def sqrt_of(xs: Series, y0: Node, n: int) -> Series:
    """y = sqrt(x) with y(0) = y0: from y² = x, yₖ = (xₖ - Σ₁ᵏ⁻¹ yᵢyₖ₋ᵢ) / 2y₀."""
    ys = [y0]
    for k in range(1, n + 1):
        ys.append(div(sub(xs[k], square(ys + [None], k, lo=1)), scale(2, y0)))
    return ys


def power_of(xs: Series, y0: Node, r, n: int) -> Series:
    """y = x^r for a constant r (a number or a node that does not move), y(0) = y0:
    from x·y' = r·y·x', yₖ = Σⱼ₌₁ᵏ ((r+1)j - k)·xⱼ·yₖ₋ⱼ / (k·x₀)."""
    ys = [y0]
    x0 = xs[0]
    for k in range(1, n + 1):
        terms = []
        for j in range(1, k + 1):
            if isinstance(r, (int, float)):
                w = scale(((r + 1) * j - k) / k, mul(xs[j], ys[k - j]))
            else:
                w = mul(apply("sub", [apply("mul", [const(j / k), apply("add", [r, const(1.0)])]),
                                      const(1.0)]), mul(xs[j], ys[k - j]))
            terms.append(w)
        ys.append(div(total(terms), x0))
    return ys


def integer_power(xs: Series, y0: Node, r: int, n: int) -> Series:
    """x^r for a whole r ≥ 1 by repeated squaring of series (exact at x = 0, where
    the ODE form divides by x₀)."""
    result, base, first = None, xs, True
    while r:
        if r & 1:
            result = base if result is None else product_series(result, base, n)
        r >>= 1
        if r:
            base = square_series(base, n)
    return [y0] + result[1:]


def reciprocal_of(xs: Series, y0: Node, n: int, numerator: Series | None = None) -> Series:
    """y = a/x with y(0) = y0 (a = 1 without a numerator): from y·x = a,
    yₖ = (aₖ - Σⱼ₌₁ᵏ xⱼ·yₖ₋ⱼ) / x₀."""
    ys = [y0]
    for k in range(1, n + 1):
        a_k = None if numerator is None else numerator[k]
        ys.append(div(sub(a_k, total(mul(xs[j], ys[k - j]) for j in range(1, k + 1))), xs[0]))
    return ys


# ── rules (OpDef.taylor): (series of the inputs, out, inputs, attrs, n) → series ──

def multilinear(ss, out, ins, attrs, n):
    """An op linear in each of its inputs separately (mul, @, outer, einsum, …): the
    Cauchy convolution, each term the op itself on one coefficient of every input.  An
    input the op reads only the shape of (matmul_vjp's and conv_vjp's `a` for its own
    cotangent: its JVP gives it no tangent) keeps its coefficient 0."""
    from . import REGISTRY
    jvp = REGISTRY[out.op].jvp

    def read(j):                       # whether a tangent of input j alone reaches out
        t = next(c for c in ss[j][1:] if c is not None)
        return jvp(tuple(t if i == j else None for i in range(len(ss))), out, ins, attrs) is not None
    movers = [j for j, s in enumerate(ss) if moves(s) and read(j)]
    series = [out]
    for k in range(1, n + 1):
        terms = []
        for parts in _compositions(k, len(movers)):
            args = list(ins)
            for j, p in zip(movers, parts):
                args[j] = ss[j][p]
            if all(x is not None for x in args):
                terms.append(apply(out.op, args, attrs))
        series.append(total(terms))
    return series


def _compositions(k: int, m: int):
    """The m-tuples of whole numbers ≥ 0 that sum to k, in lexicographic order."""
    if m == 0:
        return
    parts = [0] * (m - 1) + [k]
    while True:
        yield tuple(parts)
        i = m - 2                          # the next tuple: raise the last raisable part
        while i >= 0 and sum(parts[:i + 1]) == k:
            i -= 1
        if i < 0:
            return
        parts[i] += 1
        for j in range(i + 1, m - 1):
            parts[j] = 0
        parts[m - 1] = k - sum(parts[:m - 1])


def _unary(build):
    """A rule for an op of one tensor from build(xs, x, out, n) → series."""
    def rule(ss, out, ins, attrs, n):
        return build(ss[0], ins[0], out, n)
    return rule


def _op(name, *xs):
    return apply(name, list(xs))


def _one_minus_square(y):
    return apply("sub", [const(1.0), apply("mul", [y, y])])


exp = _unary(lambda xs, x, out, n: exp_of(xs, out, n))
exp2 = _unary(lambda xs, x, out, n: along(xs, out, scale(math.log(2), out),
                                          lambda ys, k: scale(math.log(2), ys[k]), n))
expm1 = _unary(lambda xs, x, out, n: along(xs, out, _op("exp", x), lambda ys, k: ys[k], n))
log = _unary(lambda xs, x, out, n: against(xs, xs, out, n))
log1p = _unary(lambda xs, x, out, n: against(xs, [apply("add", [const(1.0), x])] + xs[1:], out, n))
log2 = _unary(lambda xs, x, out, n: against(xs, [scale(math.log(2), w) for w in xs], out, n))
log10 = _unary(lambda xs, x, out, n: against(xs, [scale(math.log(10), w) for w in xs], out, n))
sqrt = _unary(lambda xs, x, out, n: sqrt_of(xs, out, n))
cbrt = _unary(lambda xs, x, out, n: power_of(xs, out, 1 / 3, n))
square_ = _unary(lambda xs, x, out, n: [out] + square_series(xs, n)[1:])
reciprocal = _unary(lambda xs, x, out, n: reciprocal_of(xs, out, n))
tanh = _unary(lambda xs, x, out, n: along(xs, out, _one_minus_square(out),
                                          lambda ys, k: scale(-1, square(ys, k)), n))
tan = _unary(lambda xs, x, out, n: along(xs, out, apply("add", [const(1.0), apply("mul", [out, out])]),
                                         lambda ys, k: square(ys, k), n))
# σ' = σ(x)·σ(-x) = σ - σ²: its coefficient 0 as the VJP builds it (no 1 - σ).
sigmoid = _unary(lambda xs, x, out, n: along(
    xs, out, apply("mul", [out, _op("sigmoid", apply("neg", [x]))]),
    lambda ys, k: sub(ys[k], square(ys, k)), n))


def _sigmoid_series(xs, x, n):
    s0 = _op("sigmoid", x)
    return along(xs, s0, apply("mul", [s0, _op("sigmoid", apply("neg", [x]))]),
                 lambda ys, k: sub(ys[k], square(ys, k)), n)


def _softplus(xs, x, out, n):
    s = _sigmoid_series(xs, x, n - 1) if n > 1 else [_op("sigmoid", x)]
    return along(xs, out, s[0], lambda ys, k: s[k], n)


softplus = _unary(_softplus)


def _sin_cos(xs, x, out, n, which):
    """sin and cos together: s' = c·x', c' = -s·x'."""
    s = [_op("sin", x) if which == "cos" else out]
    co = [out if which == "cos" else _op("cos", x)]
    for k in range(1, n + 1):
        s.append(scale(1 / k, total(scale(j, mul(xs[j], co[k - j])) for j in range(1, k + 1))))
        co.append(scale(-1 / k, total(scale(j, mul(xs[j], s[k - j])) for j in range(1, k + 1))))
    return s if which == "sin" else co


def _sinh_cosh(xs, x, out, n, which):
    s = [_op("sinh", x) if which == "cosh" else out]
    co = [out if which == "cosh" else _op("cosh", x)]
    for k in range(1, n + 1):
        s.append(scale(1 / k, total(scale(j, mul(xs[j], co[k - j])) for j in range(1, k + 1))))
        co.append(scale(1 / k, total(scale(j, mul(xs[j], s[k - j])) for j in range(1, k + 1))))
    return s if which == "sinh" else co


sin = _unary(lambda xs, x, out, n: _sin_cos(xs, x, out, n, "sin"))
cos = _unary(lambda xs, x, out, n: _sin_cos(xs, x, out, n, "cos"))
sinh = _unary(lambda xs, x, out, n: _sinh_cosh(xs, x, out, n, "sinh"))
cosh = _unary(lambda xs, x, out, n: _sinh_cosh(xs, x, out, n, "cosh"))


def _inverse_trig(w_of):
    """y' = x'/w(x): asin (w = sqrt(1 - x²)), atan (w = 1 + x²), …"""
    def build(xs, x, out, n):
        return against(xs, w_of(xs, x, n - 1), out, n)
    return _unary(build)


def _plus_square(c0: float, sign: int, root: bool):
    """w_of(xs, x, n): the series of c0 + sign·x², or of its square root."""
    def w_of(xs, x, n):
        u = [scale(sign, w) for w in square_series(xs, n)]
        sq = apply("mul", [x, x])
        if c0 == 0:
            u[0] = sq if sign == 1 else apply("neg", [sq])
        else:
            u[0] = apply("add" if sign == 1 else "sub", [const(float(c0)), sq])
        return sqrt_of(u, _op("sqrt", u[0]), n) if root else u
    return w_of


def _negated(w_of):
    return lambda xs, x, n: [scale(-1, w) for w in w_of(xs, x, n)]


def _x_squared_minus_one(xs, x, n):
    u = square_series(xs, n)
    u[0] = apply("sub", [apply("mul", [x, x]), const(1.0)])
    return sqrt_of(u, _op("sqrt", u[0]), n)


asin = _inverse_trig(_plus_square(1, -1, root=True))
acos = _inverse_trig(_negated(_plus_square(1, -1, root=True)))
atan = _inverse_trig(_plus_square(1, 1, root=False))
asinh = _inverse_trig(_plus_square(1, 1, root=True))
atanh = _inverse_trig(_plus_square(1, -1, root=False))
acosh = _inverse_trig(_x_squared_minus_one)


def _gauss_scaled(s):
    """erf' = s·exp(-x²): y' = g·x' with g the series of s·exp(-x²)."""
    def build(xs, x, out, n):
        if n == 1:
            g = [scale(s, _op("exp", apply("neg", [apply("mul", [x, x])])))]
        else:
            u = [scale(-1, w) for w in square_series(xs, n - 1)]
            u[0] = apply("neg", [apply("mul", [x, x])])
            g = [scale(s, w) for w in exp_of(u, _op("exp", u[0]), n - 1)]
        return along(xs, out, g[0], lambda ys, k: g[k], n)
    return _unary(build)


erf = _gauss_scaled(2 / math.sqrt(math.pi))
erfc = _gauss_scaled(-2 / math.sqrt(math.pi))


def div_rule(ss, out, ins, attrs, n):
    a, b = ss
    if not moves(b):
        return [out] + [div(a[k], ins[1]) for k in range(1, n + 1)]
    return reciprocal_of(b, out, n, numerator=a)


def pow_rule(ss, out, ins, attrs, n):
    a, b = ss
    base, expo = ins
    if moves(b):                    # a^b = exp(b·log(a))
        if moves(a):
            la = against(a, a, _op("log", base), n)
        else:                       # a fixed base 0: log read as log(1), so 0^b stays 0 (pow's VJP)
            la = still(_op("log", apply("where", [_op("equal", base, const(0.0)), const(1.0), base])), n)
        return exp_of(product_series(b, la, n), out, n)
    if expo.op == "const" and expo.value.ndim == 0:
        r = float(expo.value)
        if r == int(r) and 1 <= r <= 64:
            return integer_power(a, out, int(r), n)
        return power_of(a, out, r, n)
    return power_of(a, out, expo, n)


# ── matrices ──────────────────────────────────────────────────────────────

def inv(ss, out, ins, attrs, n):
    """Y = A⁻¹: from A·Y = I, Yₖ = -Y₀·Σⱼ₌₁ᵏ Aⱼ·Yₖ₋ⱼ."""
    a = ss[0]
    ys = [out]
    for k in range(1, n + 1):
        acc = total(_matmul(a[j], ys[k - j]) for j in range(1, k + 1))
        ys.append(None if acc is None else apply("neg", [_matmul(out, acc)]))
    return ys


def _log_det_rate(ss, ins, n):
    """The series (coefficients 0…n-1) of h = tr(A⁻¹·A') = (log det A)', from A⁻¹'s:
    hₘ = Σᵢ₊ⱼ₌ₘ tr(Yᵢ·D(A)ⱼ); None where the rank is not known (the trace needs it)."""
    a = ss[0]
    if not isinstance(ins[0].shape, tuple):
        return None
    y_inv = inv(ss, apply("inv", [ins[0]]), ins, {}, n - 1)
    axis = None if len(ins[0].shape) == 2 else (-2, -1)

    def tr(p, q):                                # tr(p·q) = sum(pᵀ ∘ q) over the matrix axes
        if p is None or q is None:
            return None
        return apply("sum", [apply("mul", [apply("swapaxes", [p], {"axis1": -1, "axis2": -2}), q])],
                     {"axis": axis, "keepdims": False})
    da = [scale(j + 1, a[j + 1]) for j in range(n)]
    return [total(tr(y_inv[i], da[m - i]) for i in range(m + 1)) for m in range(n)]


def det(ss, out, ins, attrs, n):
    """y = det(A): y' = y·h, so yₖ = (1/k)·Σₘ yₖ₋₁₋ₘ·hₘ."""
    h = _log_det_rate(ss, ins, n)
    if h is None:
        return None
    ys = [out]
    for k in range(1, n + 1):
        ys.append(scale(1 / k, total(mul(ys[k - 1 - m], h[m]) for m in range(k))))
    return ys


def logdet(ss, out, ins, attrs, n):
    """y = log det A (and slogdet's log|det A|, part 1; its sign, part 0, is constant
    where it is differentiable): yₖ = hₖ₋₁ / k."""
    if attrs.get("part", 1) == 0:
        return still(out, n)
    h = _log_det_rate(ss, ins, n)
    return None if h is None else [out] + [scale(1 / k, h[k - 1]) for k in range(1, n + 1)]


def _matmul(a, b):
    return None if a is None or b is None else apply("matmul", [a, b])


# ── normalised exponentials: logsumexp, softmax, log_softmax ─────────────

def _exp_sums(xs: Series, e0: Node, axis, keepdims: bool, n: int):
    """e = exp(x - c) for the constant c that makes sum(e₀) = 1 (e₀ given), and the
    series of S = sum(e) over axis; S₀ is exactly 1, so it is the constant."""
    es = exp_of(xs, e0, n)
    axis = (axis,) if isinstance(axis, int) else axis
    ss = [const(1.0)] + [None if e is None else apply("sum", [e], {"axis": axis, "keepdims": keepdims})
                         for e in es[1:]]
    return es, ss


def _log_of_sum(ss: Series, n: int) -> Series:
    """log(S) for S₀ = 1: Lₖ = Sₖ - Σᵢ₌₁ᵏ⁻¹ (k-i)/k·Sᵢ·Lₖ₋ᵢ."""
    ls = [None]
    for k in range(1, n + 1):
        ls.append(sub(ss[k], total(scale((k - i) / k, mul(ss[i], ls[k - i])) for i in range(1, k))))
    return ls


def _kept(y: Node, axis, keepdims: bool) -> Node:
    """A reduction's result with its reduced axes back as size 1."""
    return y if keepdims or axis is None else apply("expand_dims", [y], {"axis": axis})


def logsumexp(ss, out, ins, attrs, n):
    x = ins[0]
    axis, keep = attrs.get("axis"), attrs.get("keepdims", False)
    e0 = _op("exp", apply("sub", [x, apply("broadcast_like", [_kept(out, axis, keep), x])]))
    _, sums = _exp_sums(ss[0], e0, axis, keep, n)
    return [out] + _log_of_sum(sums, n)[1:]


def softmax(ss, out, ins, attrs, n):
    """softmax = e / S with e₀ = softmax(x) itself: yₖ = eₖ - Σⱼ₌₁ᵏ Sⱼ·yₖ₋ⱼ."""
    es, sums = _exp_sums(ss[0], out, attrs.get("axis", -1), True, n)
    return reciprocal_of(sums, out, n, numerator=es)


def log_softmax(ss, out, ins, attrs, n):
    """x - logsumexp(x): its coefficients are xₖ - log(S)ₖ."""
    _, sums = _exp_sums(ss[0], apply("exp", [out]), attrs.get("axis", -1), True, n)
    ls = _log_of_sum(sums, n)
    return [out] + [sub(ss[0][k], ls[k]) for k in range(1, n + 1)]


# ── a quadratic form: var, and std from it ───────────────────────────────

def _polar(name: str, attrs: dict):
    """B(a, b) of the quadratic form q = name(·): q(a) on the diagonal, else by
    polarisation (q(a + b) - q(a - b)) / 4."""
    def form(a, b):
        if a is None or b is None:
            return None
        if a is b:
            return apply(name, [a], attrs)
        return scale(0.25, apply("sub", [apply(name, [apply("add", [a, b])], attrs),
                                         apply(name, [apply("sub", [a, b])], attrs)]))
    return form


def var(ss, out, ins, attrs, n):
    form = _polar("var", attrs)
    xs = ss[0]
    return [out] + [add(scale(2, total(form(xs[i], xs[k - i]) for i in range(1, (k + 1) // 2))),
                        add(scale(2, form(xs[0], xs[k])),
                            form(xs[k // 2], xs[k // 2]) if k % 2 == 0 else None))
                    if k > 1 else scale(2, form(xs[0], xs[1])) for k in range(1, n + 1)]


def std(ss, out, ins, attrs, n):
    v = var(ss, apply("var", [ins[0]], attrs), ins, attrs, n)
    return sqrt_of(v, out, n)


# ── more of two tensors ──────────────────────────────────────────────────

def logaddexp(ss, out, ins, attrs, n):
    """z' = σ(a - b)·a' + σ(b - a)·b'."""
    a, b = ss
    d = [apply("sub", [ins[0], ins[1]])] + [sub(a[k], b[k]) for k in range(1, n + 1)]
    s = _sigmoid_series(d, d[0], n - 1)
    r = [_op("sigmoid", apply("neg", [d[0]]))] + [scale(-1, w) for w in s[1:]]
    zs = [out]
    for k in range(1, n + 1):
        zs.append(scale(1 / k, total(scale(j, add(mul(a[j], s[k - j]), mul(b[j], r[k - j])))
                                     for j in range(1, k + 1))))
    return zs


def hypot(ss, out, ins, attrs, n):
    a, b = ss
    u = [add(p, q) for p, q in zip(square_series(a, n), square_series(b, n))]
    return sqrt_of(u, out, n)


def atan2(ss, out, ins, attrs, n):
    """z = atan2(y, x): z' = (x·y' - y·x') / (x² + y²)."""
    y, x = ss
    w = [add(p, q) for p, q in zip(square_series(x, n - 1), square_series(y, n - 1))]
    dy = [scale(m + 1, y[m + 1]) for m in range(n)]
    dx = [scale(m + 1, x[m + 1]) for m in range(n)]
    p = [sub(cauchy(x, dy, m), cauchy(y, dx, m)) for m in range(n)]
    q = reciprocal_of(w, None if p[0] is None else apply("div", [p[0], w[0]]), n - 1, numerator=p)
    return [out] + [scale(1 / k, q[k - 1]) for k in range(1, n + 1)]


# ── by the derivatives of the function (Faà di Bruno) ─────────────────────

def composed(xs: Series, y0: Node, derivative, n: int) -> Series:
    """y = f(x) from f's derivatives at x₀ (derivative(m) → f⁽ᵐ⁾(x₀) as a node):
    yₖ = Σₘ f⁽ᵐ⁾(x₀)/m!·[tᵏ](x - x₀)ᵐ, the powers of the series by products.
    O(n³) nodes, for functions with no short ODE (lgamma, the polygammas)."""
    delta = [None] + list(xs[1:])
    power = delta
    ys = [y0] + [None] * n
    for m in range(1, n + 1):
        if m > 1:
            power = [None] * m + [cauchy(power, delta, k) for k in range(m, n + 1)]
        if all(c is None for c in power[m:]):
            continue
        fm = scale(1 / math.factorial(m), derivative(m))
        for k in range(m, n + 1):
            ys[k] = add(ys[k], mul(fm, power[k]))
    return ys


def lgamma(ss, out, ins, attrs, n):
    return composed(ss[0], out, lambda m: apply("digamma", [ins[0]], {"n": m - 1}), n)


def digamma(ss, out, ins, attrs, n):
    q = attrs.get("n", 0)
    return composed(ss[0], out, lambda m: apply("digamma", [ins[0]], {"n": q + m}), n)


def gelu(ss, out, ins, attrs, n):
    """gelu = x·Φ(x), Φ' = φ(x) = exp(-x²/2)/√(2π)."""
    xs, x = ss[0], ins[0]
    if n > 1:
        u = [scale(-0.5, w) for w in square_series(xs, n - 1)]
        u[0] = apply("mul", [const(-0.5), apply("mul", [x, x])])
        phi = [scale(1 / math.sqrt(2 * math.pi), w) for w in exp_of(u, _op("exp", u[0]), n - 1)]
    else:
        phi = [scale(1 / math.sqrt(2 * math.pi),
                     _op("exp", apply("mul", [const(-0.5), apply("mul", [x, x])])))]
    cdf0 = scale(0.5, _op("erfc", scale(-1 / math.sqrt(2), x)))
    cdf = along(xs, cdf0, phi[0], lambda ys, k: phi[k], n)
    return [out] + product_series(xs, cdf, n)[1:]


def by_solves(ss, out, ins, attrs, n):
    """An op x = S(a, b) solving a linear system a·x = b (solve, solve_triangular): its JVP is
    S(a, db) - S(a, da·x), linear in (da, x) together, so with x read as Xₖ₋ⱼ it gives
    each term of Xₖ = S(a, bₖ) - Σⱼ₌₁ᵏ S(a, aⱼ·Xₖ₋ⱼ).  Only at known ranks (where the JVP
    reads x, not b)."""
    from . import REGISTRY
    if not all(isinstance(i.shape, tuple) for i in ins):
        return None
    jvp = REGISTRY[out.op].jvp
    a, b = ss
    xs = [out]
    for k in range(1, n + 1):
        terms = [None if b[k] is None else jvp((None, b[k]), out, ins, attrs)]
        terms += [jvp((a[j], None), xs[k - j], ins, attrs)
                  for j in range(1, k + 1) if a[j] is not None and xs[k - j] is not None]
        xs.append(total(terms))
    return xs


def cross_entropy(ss, out, ins, attrs, n):
    """mean over the batch of -sum(targets·log_softmax(logits)): bilinear in the targets
    and log_softmax's series, Σᵢ₊ⱼ₌ₖ c(tᵢ, ℓⱼ).  At known ranks (the mean needs them)."""
    logits, targets = ins
    if not isinstance(logits.shape, tuple) or not isinstance(targets.shape, tuple):
        return None
    axis = attrs.get("axis", -1)
    lz, tz = ss
    l0 = apply("log_softmax", [logits], {"axis": axis})
    ls = log_softmax((lz,), l0, (logits,), {"axis": axis}, n) if moves(lz) else still(l0, n)
    batched = len(shapes.broadcast(logits.shape, targets.shape)) > 1

    def c(t, l):
        if t is None or l is None:
            return None
        per = apply("neg", [apply("sum", [apply("mul", [t, l])], {"axis": (axis,), "keepdims": False})])
        return apply("mean", [per], {"axis": None, "keepdims": False}) if batched else per
    return [out] + [cauchy(tz, ls, k, product=c) for k in range(1, n + 1)]
