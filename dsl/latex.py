"""Functions and values as LaTeX math (SPEC §13): what `latex e` prints.

A function prints from the same graph that `print` shows (`names, inputs,
out` from `Interpreter._function_graph`), in one walk in topological order:
each node's LaTeX is made from its operands' LaTeX, each carrying a
precedence level, so a bracket (`\\left( … \\right)`) appears only where the
reading would otherwise change.  The forms (docs/language.md, "LaTeX"):

- `a + b`, `a - b`; a product of scalars, or by a scalar, by juxtaposition
  (`2 x \\sin(x)`); an elementwise product whose operands are both known to
  be non-scalar `a \\odot b` (binding looser than juxtaposition);
  `\\frac{a}{b}`; `x^{2}` (of a matrix, elementwise: `A^{\\circ 2}`);
- `@` by juxtaposition (`A x`, `X^\\top X`), read left to right; a known vector
  on the left of `@` is a row where the product is only multiplied on
  (`x @ A @ x` is `x^\\top A x`), else the column `A^\\top x`; `x'` is `x^\\top`,
  `inv(A)` `A^{-1}`, `inv(A)'` `A^{-\\top}`, `solve(A, b)` `A^{-1} b`,
  `outer(a, b)` `a b^\\top`, `eye(n)` `I_{n}`, `\\det`, `\\operatorname{tr}`,
  `\\operatorname{diag}`;
- `sum(x)` `\\sum x` (binding looser than a product and tighter than `+`),
  with an axis `\\sum_{\\text{axis } k} x`; `\\exp \\log \\sin … \\sqrt{x}`,
  sigmoid `\\sigma`, `\\lvert x \\rvert`, other builtins `\\operatorname{name}(…)`;
- `where`/`if … then … else` as a `cases` block; `x[1]` `x_{1}`, `x[1:]`
  `x_{1:}`; the adjoint of indexing `g \\mathbf{e}_{i}` (a slice:
  `\\operatorname{scatter}_{1:}(g)`).

A subexpression used more than once is written inline where it is short (at
most `BIND_WIDTH` characters as typeset: `\\tanh(x)`, `\\operatorname{softmax}(x)`);
a longer one is bound to `t_{1}`, `t_{2}`, … in an `aligned` block under the
function, `\\text{where}\\quad t_{1} &= …`.  Tensors are `bmatrix`es, a vector a
column.  `tests/test_latex.py` reads generated functions' LaTeX back by these
rules and checks the numbers against bp's.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

from .graph import Node, topo_order, use_counts
from .render import format_number, index_source
from .values import Record, leaves

BIND_WIDTH = 12            # a shared subexpression wider than this (typeset) is bound to a name
MAX_COLUMNS = 10           # amsmath's bmatrix default (MaxMatrixCols): wider ones are summarised
MAX_ROWS = 20

# Precedence levels, loosest first.  A node's text is bracketed where its level is
# below what its place in the parent needs.
P_CASES = 5                # \begin{cases} … \end{cases}
P_OR, P_AND, P_NOT, P_CMP = 10, 20, 30, 40
P_SUM = 50                 # a + b, a - b, -a
P_BIG = 55                 # \sum x: reaches right over a product, stops at + and -
P_PROD = 60                # juxtaposition, \odot, A x
P_FRAC = 70                # \frac{a}{b}: delimited, but not a base for ^
P_SUP = 80                 # x^{2}, x^\top, A^{-1}: ends in a superscript
P_CALL = 90                # \tanh(x), \sqrt{x}
P_SUB = 95                 # x_{1}, W_{1}: ends in a subscript
P_ATOM = 100               # x, 2, \left( … \right), \begin{bmatrix} … \end{bmatrix}


class Tex:
    """One node's LaTeX: its text, precedence level and what a parent must know.

    kind: for a product, how it multiplies ("scale": one factor is a scalar,
    "odot": elementwise of non-scalars, "jux": elementwise of unknown shapes,
    "mm": a matrix product).  open: the text ends in a \\sum that would reach over
    anything written to its right.  row: a vector written as a row (x^\\top A).
    pos: for a negation, the Tex of what is negated (so -a - -b can be a - b …).
    For a superscript, kind is "T" (a transpose), "inv" or "invT"."""
    __slots__ = ("text", "prec", "kind", "open", "row", "pos", "inner")

    def __init__(self, text: str, prec: int, kind: str | None = None, open: bool = False,
                 row: bool = False, pos: Tex | None = None, inner: Tex | None = None):
        self.text, self.prec, self.kind, self.open, self.row, self.pos = text, prec, kind, open, row, pos
        self.inner = inner            # of a transpose: what is transposed

    def __repr__(self) -> str:
        return f"Tex({self.text!r}, {self.prec})"


def _bracket(text: str) -> str:
    return rf"\left({text}\right)"


def wrap(t: Tex, level: int) -> str:
    """t's text, bracketed if it binds looser than `level`."""
    return _bracket(t.text) if t.prec < level else t.text


# ── names ────────────────────────────────────────────────────────────────

_GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\varepsilon",
    "ϵ": r"\epsilon", "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta",
    "ι": r"\iota", "κ": r"\kappa", "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi",
    "ο": "o", "π": r"\pi", "ϖ": r"\varpi", "ρ": r"\rho", "ϱ": r"\varrho", "σ": r"\sigma",
    "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon", "φ": r"\varphi", "ϕ": r"\phi",
    "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi",
    "Π": r"\Pi", "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X", "∂": r"\partial ",
}
_NAME_PARTS = re.compile(r"^([^\W\d_]+?)(\d*)((?:_[^\W_]+)*)$")


def _word(w: str) -> str:
    """A run of letters: one letter as itself, Greek by its command, else upright."""
    if len(w) == 1 and w.isascii():
        return w
    if all(ch in _GREEK for ch in w):
        return " ".join(_GREEK[ch].strip() for ch in w) if len(w) > 1 else _GREEK[w].strip()
    if w.isascii():
        return rf"\mathrm{{{w}}}"
    return rf"\text{{{_escape_text(w)}}}"


def name_latex(name: str) -> tuple[str, int]:
    """A bp name as LaTeX, with its level: `x`, `\\theta`, `W_{1}`, `\\mathrm{lr}`,
    `x_{i}`, `\\theta_{2}` (trailing digits and `_` parts become a subscript)."""
    m = _NAME_PARTS.match(name)
    if m is None:
        return rf"\mathrm{{{_escape_text(name)}}}" if name.isascii() else \
            rf"\text{{{_escape_text(name)}}}", P_ATOM
    head, digits, rest = m.groups()
    subs = [digits] if digits else []
    subs += [p if p.isdigit() else _word(p) for p in rest.split("_")[1:]]
    base = _word(head)
    if not subs:
        return base, P_ATOM
    return f"{base}_{{{', '.join(subs)}}}", P_SUB


def global_latex(node) -> tuple[str, int]:
    """A global's leaf: its name, the fields and items on the way as a subscript
    (θ.W is \\theta_{W}, T[1] is T_{1})."""
    text, prec = name_latex(node.attr("name"))
    path = node.attr("path", ())
    if not path:
        return text, prec
    subs = ", ".join(str(key) if kind == "item" else name_latex(key)[0] for kind, key in path)
    if prec == P_SUB:
        text = rf"\left({text}\right)"
    return f"{text}_{{{subs}}}", P_SUB


def _escape_text(s: str) -> str:
    out = []
    for ch in s:
        if ch in "\\":
            out.append(r"\textbackslash{}")
        elif ch in "{}_&%$#":
            out.append("\\" + ch)
        elif ch == "^":
            out.append(r"\^{}")
        elif ch == "~":
            out.append(r"\~{}")
        elif ch in _GREEK and _GREEK[ch].startswith("\\"):
            out.append(rf"\ensuremath{{{_GREEK[ch].strip()}}}")
        else:
            out.append(ch)
    return "".join(out)


# ── numbers and tensors ──────────────────────────────────────────────────

def number_latex(x: float, precision: int = 8) -> Tex:
    """A number: `2`, `0.5`, `\\frac{1}{3}` (a fraction that decimals would round),
    `1.5 \\times 10^{-5}`, `\\infty`, `\\pi`, `\\mathrm{NaN}`; negative numbers as
    negations (so a parent can write a - 2)."""
    x = float(x)
    if math.isnan(x):
        return Tex(r"\mathrm{NaN}", P_ATOM)
    if x == 0:
        return Tex("0", P_ATOM)                   # -0.0 too: the sign of zero is not math
    if x < 0:
        pos = number_latex(-x, precision)
        return Tex("-" + wrap(pos, P_BIG), P_SUM, pos=pos)
    if math.isinf(x):
        return Tex(r"\infty", P_ATOM)
    if x == math.pi:
        return Tex(r"\pi", P_ATOM)
    if x == math.e:
        return Tex(r"\mathrm{e}", P_ATOM)
    s = format_number(x, precision)
    if x != 0 and float(s) != x and x < 1e6:
        f = Fraction(x).limit_denominator(1000)
        if f.denominator > 1 and float(f) == x and f.numerator < 1000:
            return Tex(rf"\frac{{{f.numerator}}}{{{f.denominator}}}", P_FRAC)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)e([-+])0*(\d+)", s)
    if m:
        mant, sign, exp = m.groups()
        power = f"10^{{{'-' if sign == '-' else ''}{exp}}}"
        if mant == "1":
            return Tex(power, P_SUP)
        return Tex(rf"{mant} \times {power}", P_PROD, kind="scale")
    return Tex(s, P_ATOM)


def tensor_latex(a: np.ndarray, precision: int = 8) -> Tex:
    """A tensor as a `bmatrix`: a vector as a column, a matrix by rows, a higher
    rank as a column of its sub-tensors; past MAX_COLUMNS columns or MAX_ROWS rows
    the middle is summarised with \\cdots, \\vdots and \\ddots."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return number_latex(float(a), precision)
    if a.size == 0:
        return Tex(r"\begin{bmatrix}\end{bmatrix}", P_ATOM)

    def entry(x):
        return number_latex(float(x), precision).text

    def rows_of(n):
        if n <= MAX_ROWS:
            return list(range(n))
        return list(range(5)) + [None] + list(range(n - 5, n))

    def cols_of(n):
        if n <= MAX_COLUMNS:
            return list(range(n))
        return list(range(4)) + [None] + list(range(n - 4, n))

    if a.ndim == 1:
        cells = [entry(a[i]) if i is not None else r"\vdots" for i in rows_of(a.shape[0])]
        return Tex(r"\begin{bmatrix}" + r" \\ ".join(cells) + r"\end{bmatrix}", P_ATOM)
    if a.ndim == 2:
        lines = []
        cols = cols_of(a.shape[1])
        for i in rows_of(a.shape[0]):
            if i is None:
                lines.append(" & ".join(r"\ddots" if j is None else r"\vdots" for j in cols))
            else:
                lines.append(" & ".join(r"\cdots" if j is None else entry(a[i, j]) for j in cols))
        return Tex(r"\begin{bmatrix}" + r" \\ ".join(lines) + r"\end{bmatrix}", P_ATOM)
    cells = [tensor_latex(a[i], precision).text if i is not None else r"\vdots"
             for i in rows_of(a.shape[0])]
    return Tex(r"\begin{bmatrix}" + r" \\ ".join(cells) + r"\end{bmatrix}", P_ATOM)


def const_latex(value: np.ndarray, precision: int = 8) -> Tex:
    """A constant in a graph: a number; a diagonal matrix as I_{n}, c I_{n} or
    \\operatorname{diag}(…); one value everywhere as \\mathbf{1}_{3}, \\mathbf{0}_{3},
    c \\mathbf{1}_{3}; else its bmatrix."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return number_latex(float(value), precision)
    dims = r" \times ".join(map(str, value.shape))
    if value.ndim == 2 and value.shape[0] == value.shape[1] > 1 and \
            (value == np.diag(np.diag(value))).all() and value.any():
        d = np.diag(value)
        n = value.shape[0]
        if (d == 1).all():
            return Tex(f"I_{{{n}}}", P_SUB)
        if (d == d[0]).all():
            return _scale(number_latex(float(d[0]), precision), Tex(f"I_{{{n}}}", P_SUB))
        return Tex(rf"\operatorname{{diag}}({tensor_latex(d, precision).text})", P_CALL)
    first = value.flat[0]
    if value.size >= 4 and (value == first).all():
        if first == 0:
            return Tex(rf"\mathbf{{0}}_{{{dims}}}", P_SUB)
        ones = Tex(rf"\mathbf{{1}}_{{{dims}}}", P_SUB)
        return ones if first == 1 else _scale(number_latex(float(first), precision), ones)
    return tensor_latex(value, precision)


def value_latex(v, precision: int = 8, function=None) -> str:
    """A value as LaTeX: a tensor (see tensor_latex), a tuple `\\left(a, b\\right)`, a
    record `\\left\\{W = …, b = …\\right\\}`, a string as text; a function through
    `function` (the interpreter's, which builds its graph)."""
    if isinstance(v, tuple):
        return _bracket(", ".join(value_latex(x, precision, function) for x in v) + "," * (len(v) == 1))
    if isinstance(v, Record):
        inner = ", ".join(f"{name_latex(k)[0]} = {value_latex(x, precision, function)}"
                          for k, x in v.items())
        return rf"\left\{{{inner}\right\}}"
    if isinstance(v, str):
        return rf"\text{{{_escape_text(v)}}}"
    if isinstance(v, (np.ndarray, float, int, np.floating)):
        return tensor_latex(np.asarray(v, dtype=np.float64), precision).text
    if function is not None:
        return function(v)
    return rf"\text{{{_escape_text(str(v))}}}"


# ── building blocks ──────────────────────────────────────────────────────

def _neg(t: Tex) -> Tex:
    if t.pos is not None:
        return t.pos
    return Tex("-" + wrap(t, P_BIG), P_SUM, pos=t)


def _compatible(parent: str, child: str | None) -> bool:
    """May a product of kind `child` stand unbracketed as a factor of `parent`?
    Scalars commute with everything, elementwise products with each other, and
    matrix products with matrix products."""
    if child == "scale" or parent == "scale" or child == parent:
        return True
    return {parent, child} == {"odot", "jux"}


def _factor(t: Tex, parent: str, left: bool) -> str:
    if left and t.open:
        return _bracket(t.text)
    if t.prec > P_PROD or (t.prec == P_PROD and _compatible(parent, t.kind)):
        return t.text
    if not left and t.prec == P_BIG:
        return t.text
    return _bracket(t.text)


def _product(kind: str, a: Tex, b: Tex, row: bool = False) -> Tex:
    """a times b (kind as in Tex), a negation pulled out in front."""
    sign = (a.pos is not None) != (b.pos is not None)
    a = a.pos or a
    b = b.pos or b
    left, right = _factor(a, kind, True), _factor(b, kind, False)
    if kind == "odot":
        sep = r" \odot "
    elif right[:1].isdigit() or (right.startswith(r"\frac") and re.fullmatch(r"[\d.]+", left)):
        sep = r" \cdot "
    else:
        sep = " "
    # \odot binds looser than juxtaposition: a product with an unbracketed \odot in it
    # is one for its parent (2 I \odot A is (2 I) \odot A, no factor of A^\top 2 I \odot A)
    # likewise a product by a scalar of a matrix product (2 A x) is a matrix product
    shown = [f.kind for f, text in ((a, left), (b, right)) if f.prec == P_PROD and text == f.text]
    if "odot" in shown:
        kind = "odot"
    elif kind == "scale" and "mm" in shown:
        kind = "mm"
    t = Tex(left + sep + right, P_PROD, kind=kind, open=b.open or b.prec == P_BIG, row=row)
    return _neg(t) if sign else t


def _bracketed_scalar(t: Tex) -> Tex:
    p = t.pos or t
    if p.prec == P_PROD and p.kind == "mm":
        p = Tex(_bracket(p.text), P_ATOM)
        return _neg(p) if t.pos is not None else p
    return t


def _scale(c: Tex, t: Tex) -> Tex:
    return _product("scale", c, t)


def _frac(a: Tex, b: Tex) -> Tex:
    sign = (a.pos is not None) != (b.pos is not None)
    t = Tex(rf"\frac{{{(a.pos or a).text}}}{{{(b.pos or b).text}}}", P_FRAC)
    return _neg(t) if sign else t


def _add(a: Tex, b: Tex) -> Tex:
    if b.pos is not None:
        return _sub(a, b.pos)
    if b.prec == P_SUM and b.text.startswith("-"):       # a + (-p - q) is a - p - q
        return Tex(f"{wrap(a, P_SUM)} - {b.text[1:]}", P_SUM)
    return Tex(f"{wrap(a, P_SUM)} + {wrap(b, P_SUM)}", P_SUM)


def _sub(a: Tex, b: Tex) -> Tex:
    if b.pos is not None:
        return _add(a, b.pos)
    return Tex(f"{wrap(a, P_SUM)} - {wrap(b, P_SUM + 1)}", P_SUM)


def _sup(t: Tex, sup: str) -> Tex:
    """t with a superscript (t^\\top, t^{-1}): a transpose of an inverse, or an
    inverse of a transpose, is A^{-\\top}."""
    if t.pos is not None and sup in (r"\top", "{-1}"):
        return _neg(_sup(t.pos, sup))
    if t.kind == "T" and sup == r"\top" and t.inner is not None:
        return t.inner                                   # (A^\top)^\top is A
    if {t.kind, sup} == {"inv", r"\top"} or {t.kind, sup} == {"T", "{-1}"}:
        return Tex(t.text[:t.text.rindex("^")] + r"^{-\top}", P_SUP, kind="invT")
    return Tex(f"{wrap(t, P_CALL)}^{sup}", P_SUP, kind={"{-1}": "inv", r"\top": "T"}.get(sup),
               inner=t)


def _transpose(t: Tex) -> Tex:
    return _sup(t, r"\top")


def _call(fn: str, args: list[str], sub: str = "") -> Tex:
    inner = ", ".join(args)
    sub = f"_{{{sub}}}" if sub else ""
    if _tall(inner):
        return Tex(rf"{fn}{sub}\left({inner}\right)", P_CALL)
    return Tex(f"{fn}{sub}({inner})", P_CALL)


def _tall(text: str) -> bool:
    return any(s in text for s in (r"\frac", r"\sum", r"\prod", r"\begin"))


def _opname(name: str) -> str:
    return rf"\operatorname{{{_escape_text(name)}}}"


def _axis_sub(axis) -> str:
    if axis is None:
        return ""
    if isinstance(axis, tuple):
        if len(axis) == 1:
            return rf"\text{{axis }} {axis[0]}"
        return rf"\text{{axes }} {', '.join(map(str, axis))}"
    return rf"\text{{axis }} {axis}"


def _cases(c: Tex, a: Tex, b: Tex) -> Tex:
    return Tex(rf"\begin{{cases}} {a.text} & \text{{if }} {c.text} \\ {b.text} & "
               rf"\text{{otherwise}} \end{{cases}}", P_CASES)


_FUNCS = {"sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "sinh": r"\sinh", "cosh": r"\cosh",
          "tanh": r"\tanh", "asin": r"\arcsin", "acos": r"\arccos", "atan": r"\arctan",
          "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma", "det": r"\det",
          "trace": r"\operatorname{tr}", "diag": r"\operatorname{diag}", "lgamma": r"\log\Gamma",
          "log_softmax": r"\log\operatorname{softmax}", "size_of": r"\operatorname{size}"}
_CMP = {"less": "<", "less_equal": r"\le", "greater": ">", "greater_equal": r"\ge",
        "equal": "=", "not_equal": r"\ne"}
_REDUCE_BIG = {"sum": r"\sum", "prod": r"\prod"}
_REDUCE_CALL = {"mean": _opname("mean"), "max": r"\max", "min": r"\min",
                "logsumexp": _opname("logsumexp")}


def _rank(shape) -> int | None:
    return len(shape) if isinstance(shape, tuple) else None


def op_latex(op: str, ins: list[Tex], attrs: dict, shapes: list | None = None,
             defaults=None, row: bool = False) -> Tex:
    """One operation's LaTeX from its operands' (shapes: the operands' shapes, a
    tuple where known; None where nothing is known, as for an AST).  row: the
    result is used only as the left operand of matrix products, so a vector times
    a matrix may be written as a row (x^\top A, read on as x^\top A x)."""
    shapes = shapes if shapes is not None else [None] * len(ins)
    if op in ("add", "sub"):
        return _add(*ins) if op == "add" else _sub(*ins)
    if op == "neg":
        return _neg(ins[0])
    if op == "mul":
        if any(s == () for s in shapes):
            kind = "scale"
        elif all(isinstance(s, tuple) for s in shapes):
            kind = "odot"
        else:
            kind = "jux"
        a, b = ins
        if kind == "scale":
            # a scalar that is a matrix product (x^\top x) beside a tensor is bracketed:
            # read left to right, D x^\top x would start with D x^\top
            a, b = (_bracketed_scalar(t) if shapes[k] == () and shapes[1 - k] != () else t
                    for k, t in enumerate((a, b)))
        return _product(kind, a, b)
    if op == "div":
        return _frac(ins[0], ins[1])
    if op == "pow":
        # of a matrix, elementwise: the Hadamard power A^{\circ 2} (A^{2} would be A A)
        base, exp = ins
        circ = r"\circ " if (_rank(shapes[0]) or 0) >= 2 else ""
        return Tex(f"{wrap(base, P_CALL)}^{{{circ}{exp.text}}}", P_SUP)
    if op == "matmul":
        a, b = ins
        ra, rb = _rank(shapes[0]), _rank(shapes[1])
        if b.row:
            b = _transpose(b)
        if ra == 1 and rb == 2 and not row:
            # a vector times a matrix, used as a vector: the column B^\top x (= (x^\top B)^\top)
            if a.row:
                return _transpose(_product("mm", a, b))
            return _product("mm", _transpose(b), a)
        if ra == 1 and not a.row:
            a = _transpose(a)
        return _product("mm", a, b, row=(ra == 1 and rb == 2))
    if op == "outer":
        a, b = ins
        if a.row:
            a = _transpose(a)
        return _product("mm", a, b if b.row else _transpose(b))
    if op == "solve":
        b = _transpose(ins[1]) if ins[1].row else ins[1]
        return _product("mm", _sup(ins[0], "{-1}"), b)
    if op == "inv":
        return _sup(ins[0], "{-1}")
    if op == "transpose":
        axes = attrs.get("axes")
        r = _rank(shapes[0])
        if axes is None or (r is not None and tuple(axes) == tuple(reversed(range(r)))):
            return _transpose(ins[0])
        return _call(_opname("transpose"), [ins[0].text], "(" + ", ".join(map(str, axes)) + ")")
    if op == "swapaxes":
        if {attrs.get("axis1"), attrs.get("axis2")} == {-1, -2}:
            return _transpose(ins[0])
        return _call(_opname("swapaxes"), [ins[0].text], f"{attrs.get('axis1')}, {attrs.get('axis2')}")
    if op in _CMP:
        return Tex(f"{wrap(ins[0], P_SUM)} {_CMP[op]} {wrap(ins[1], P_SUM)}", P_CMP)
    if op == "and":
        return Tex(rf"{wrap(ins[0], P_NOT)} \land {wrap(ins[1], P_NOT)}", P_AND)
    if op == "or":
        return Tex(rf"{wrap(ins[0], P_AND)} \lor {wrap(ins[1], P_AND)}", P_OR)
    if op == "not":
        return Tex(rf"\lnot {wrap(ins[0], P_SUM)}", P_NOT)
    if op == "where":
        return _cases(*ins)
    if op in _REDUCE_BIG:
        x = ins[0]
        sub = _axis_sub(attrs.get("axis"))
        sym = _REDUCE_BIG[op] + (f"_{{{sub}}}" if sub else "")
        if op == "sum" and x.pos is not None:
            return _neg(op_latex(op, [x.pos], attrs, shapes))
        return Tex(f"{sym} {wrap(x, P_BIG)}", P_BIG, open=True)
    if op in _REDUCE_CALL:
        return _call(_REDUCE_CALL[op], [ins[0].text], _axis_sub(attrs.get("axis")))
    if op in ("softmax",):
        axis = attrs.get("axis", -1)
        return _call(_opname("softmax"), [ins[0].text], "" if axis == -1 else _axis_sub(axis))
    if op == "log_softmax":
        axis = attrs.get("axis", -1)
        return _call(_FUNCS[op], [ins[0].text], "" if axis == -1 else _axis_sub(axis))
    if op in _FUNCS:
        # diag's and trace's diagonal k other than the main one: a subscript, tr_{1}(A)
        k = attrs.get("k", attrs.get("offset", 0)) if op in ("diag", "trace") else 0
        return _call(_FUNCS[op], [i.text for i in ins], str(k) if k else "")
    if op == "sqrt":
        return Tex(rf"\sqrt{{{ins[0].text}}}", P_CALL)
    if op == "abs":
        l, r = (r"\left\lvert ", r" \right\rvert") if _tall(ins[0].text) else (r"\lvert ", r" \rvert")
        return Tex(l + ins[0].text + r, P_ATOM)
    if op == "floor":
        l, r = (r"\left\lfloor ", r" \right\rfloor") if _tall(ins[0].text) else (r"\lfloor ", r" \rfloor")
        return Tex(l + ins[0].text + r, P_ATOM)
    if op == "log1p":
        return _call(r"\log", [_add(Tex("1", P_ATOM), ins[0]).text])
    if op == "expm1":
        return _sub(_call(r"\exp", [ins[0].text]), Tex("1", P_ATOM))
    if op == "maximum":
        return _call(r"\max", [i.text for i in ins])
    if op == "minimum":
        return _call(r"\min", [i.text for i in ins])
    if op == "digamma":
        n = attrs.get("n", 0)
        return _call(r"\psi" if not n else rf"\psi^{{({n})}}", [ins[0].text])
    if op == "eye":
        return Tex(f"I_{{{attrs['n']}}}", P_SUB)
    if op in ("zeros", "ones"):
        dims = r" \times ".join(map(str, attrs.get("shape", ()))) or "1"
        return Tex(rf"\mathbf{{{0 if op == 'zeros' else 1}}}_{{{dims}}}", P_SUB)
    if op == "full":
        dims = r" \times ".join(map(str, attrs.get("shape", ()))) or "1"
        return _scale(number_latex(attrs["value"]), Tex(rf"\mathbf{{1}}_{{{dims}}}", P_SUB))
    if op == "index":
        return Tex(f"{wrap(ins[0], P_ATOM)}_{{{index_source(attrs['items'])}}}", P_SUB)
    if op == "unindex":
        items = attrs["items"]
        sub = index_source(items)
        if all(i[0] == "i" for i in items):
            return _product("mm", ins[0], Tex(rf"\mathbf{{e}}_{{{sub}}}", P_SUB))
        return _call(_opname("scatter"), [ins[0].text], sub)
    if op == "broadcast_like":
        return _scale(ins[0], Tex(r"\mathbf{1}", P_ATOM))
    if op == "zeros_like":
        return Tex("0", P_ATOM)
    if op == "concat" and attrs.get("axis", 0) in (0, 1):
        sep = r" \\ " if attrs.get("axis", 0) == 0 else " & "
        return Tex(r"\begin{bmatrix}" + sep.join(i.text for i in ins) + r"\end{bmatrix}", P_ATOM)
    if op == "cross_entropy_back":
        axis = attrs.get("axis", -1)
        sm = op_latex("softmax", [ins[0]], {"axis": axis})
        total = op_latex("sum", [ins[1]], {"axis": axis})
        return _sub(_product("jux", sm, total), ins[1])
    if op == "host":
        return _call(_opname(attrs["fn"].name), [i.text for i in ins])
    if op == "host_vjp":
        return _call(_opname("vjp"), [i.text for i in ins], f"{_opname(attrs['fn'].name)}, {attrs['i']}")
    return _generic(op, ins, attrs, defaults)


def _generic(op: str, ins: list[Tex], attrs: dict, defaults=None, sub: str = "") -> Tex:
    """\\operatorname{op}(operands, attributes), as bp would write the call."""
    args = [i.text for i in ins]
    for a in defaults or ():
        value = attrs.get(a.name, a.default)
        if a.kind == "shape":
            args.append(r" \times ".join(map(str, value)) if value else "()")
        elif value != a.default or a.required:
            shown = _attr_latex(value)
            args.append(shown if a.required else rf"\text{{{_escape_text(a.name)}}} = {shown}")
    if defaults is None:
        args += [rf"\text{{{_escape_text(k)}}} = {_attr_latex(v)}" for k, v in attrs.items()]
    return _call(_opname(op), args, sub)


def _attr_latex(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    if isinstance(value, float):
        return number_latex(value).text
    return _escape_text(str(value))


def node_latex(node: Node, tex: dict, precision: int = 8, row: bool = False) -> Tex:
    """One graph node's LaTeX from its operands' (tex: id → Tex); row as in op_latex."""
    from .ops import REGISTRY
    if node.op == "input":
        return Tex(*global_latex(node))
    if node.op == "const":
        return const_latex(node.value, precision)
    if node.op == "loop":
        from .errors import BpValueError
        raise BpValueError("latex cannot show a loop (a while or for loop with a runtime count "
                           "in a function): print the function for its bp form", node.span)
    ins = [tex[id(i)] for i in node.inputs]
    shapes = [i.shape for i in node.inputs]
    if node.op in ("add", "sub", "mul", "div") and len(ins) == 2:
        # a constant with one value everywhere, beside an operand of the result's shape,
        # is that one value (as render prints it)
        for k in (0, 1):
            c, other = node.inputs[k], node.inputs[1 - k]
            if c.op == "const" and c.value.ndim > 0 and c.value.size >= 2 and other.shape == node.shape:
                first = c.value.flat[0]
                if (c.value == first).all():
                    ins[k] = number_latex(float(first), precision)
                    shapes[k] = ()
    if node.op == "broadcast_like":
        # g spread over the shape of y: g itself where that is g's shape, else g times
        # the tensor of ones (a sum over it counts, a matrix product sums its rows)
        if node.inputs[0].shape == node.shape:
            return ins[0]
        dims = r" \times ".join(map(str, node.shape)) if isinstance(node.shape, tuple) else ""
        ones = Tex(r"\mathbf{1}" + (f"_{{{dims}}}" if dims else ""), P_SUB if dims else P_ATOM)
        return ones if ins[0].text == "1" else _scale(ins[0], ones)
    if node.op == "unbroadcast" and isinstance(node.shape, tuple) and isinstance(shapes[0], tuple):
        # summed down to the shape of `like`: over its leading axes, a sum
        lead = len(shapes[0]) - len(node.shape)
        if lead > 0 and shapes[0][lead:] == node.shape:
            axis = None if not node.shape else (tuple(range(lead)) if lead > 1 else 0)
            return op_latex("sum", [ins[0]], {"axis": axis})
    opdef = REGISTRY.get(node.op)
    index = getattr(opdef.form, "index", None) if opdef else None
    if index is not None:
        # one result of a multi-result op (CallForm(index=)): eigh(A)[1] is eigh_{1}(A)
        attrs = dict(node.attrs)
        part = attrs.pop(index, 0)
        return _generic(opdef.form.name, ins, attrs, [a for a in opdef.attrs if a.name != index],
                        str(part))
    return op_latex(node.op, ins, dict(node.attrs), shapes, opdef.attrs if opdef else None, row)


# ── functions ────────────────────────────────────────────────────────────

def width(text: str) -> int:
    """About how many characters `text` is wide when typeset."""
    s = re.sub(r"\\(left|right)(?![a-zA-Z])", "", text)
    s = re.sub(r"\\(operatorname|mathrm|mathbf|text|mathit)\{([^{}]*)\}", r"\2", s)
    s = re.sub(r"\\(arcsin|arccos|arctan|sinh|cosh|tanh|sin|cos|tan|exp|log|det|max|min)"
               r"(?![a-zA-Z])", r"\1", s)
    s = re.sub(r"\\[a-zA-Z]+", "#", s)
    s = re.sub(r"\\.|[{}\s]", "", s)
    return len(s)


def format_graph_latex(names: list[str], out, inputs: list | None = None,
                       precision: int = 8) -> str:
    """A function's graph as LaTeX: `x \\mapsto …`, or an aligned block whose first
    line is the function and whose next lines bind its long shared subexpressions."""
    outs = [o for o in leaves(out) if isinstance(o, Node)]
    order = topo_order(outs)
    uses = use_counts(order, outs)
    # the nodes used only as the left operand of a matrix product (x @ A in x @ A @ y)
    left_only: dict[int, bool] = {}
    for node in order:
        for k, i in enumerate(node.inputs):
            left_only[id(i)] = left_only.get(id(i), True) and node.op == "matmul" and k == 0 \
                and node.inputs[1] is not i
    for o in outs:
        left_only[id(o)] = False
    params: dict[int, Tex] = {}
    by_name: dict[str, Tex] = {}
    for k, name in enumerate(names):
        t = Tex(*name_latex(name))
        if inputs is not None:
            params[id(inputs[k])] = t
        by_name[name] = t
    taken = {t.text for t in by_name.values()}
    taken |= {global_latex(n)[0] for n in order if n.op == "input"}
    tex: dict[int, Tex] = {}
    lines: list[tuple[str, str]] = []
    k = 0
    for node in order:
        if id(node) in params:
            tex[id(node)] = params[id(node)]
            continue
        if inputs is None and node.op == "input" and node.attr("name") in by_name \
                and not node.attr("path", ()):
            tex[id(node)] = by_name[node.attr("name")]
            continue
        t = node_latex(node, tex, precision, left_only.get(id(node), False))
        if uses.get(id(node), 0) > 1 and node.op not in ("input", "const") and width(t.text) > BIND_WIDTH:
            k += 1
            while f"t_{{{k}}}" in taken:
                k += 1
            name = f"t_{{{k}}}"
            lines.append((name, t.text))
            t = Tex(name, P_SUB, row=t.row)
        tex[id(node)] = t
    result = _container(out, tex, precision)
    heads = [params[id(n)].text for n in inputs] if inputs is not None else \
        [by_name[n].text for n in names]
    head = heads[0] if len(heads) == 1 else "(" + ", ".join(heads) + ")"
    if not lines:
        return rf"{head} \mapsto {result}"
    body = [rf"{head} &\mapsto {result}"]
    body += [(r"\text{where}\quad " if i == 0 else "") + f"{name} &= {text}"
             for i, (name, text) in enumerate(lines)]
    return "\\begin{aligned}\n" + " \\\\\n".join(body) + "\n\\end{aligned}"


def _container(out, tex, precision) -> str:
    if isinstance(out, tuple):
        return _bracket(", ".join(_container(x, tex, precision) for x in out) + "," * (len(out) == 1))
    if isinstance(out, Record):
        inner = ", ".join(f"{name_latex(k)[0]} = {_container(v, tex, precision)}" for k, v in out.items())
        return rf"\left\{{{inner}\right\}}"
    if isinstance(out, Node):
        return tex[id(out)].text
    return value_latex(out, precision)


def transform_latex(kind: str, inner: str, options: tuple = ()) -> str:
    """A transform that could not be expanded (it needs known shapes), applied to
    its function's LaTeX: \\nabla, \\nabla^{2}, \\operatorname{jacobian}, …"""
    sym = {"grad": r"\nabla", "hessian": r"\nabla^{2}"}.get(kind, _opname(kind))
    def option(k, v):
        if k == "wrt" and isinstance(v, (str, tuple)) and all(isinstance(n, str) for n in
                                                              (v if isinstance(v, tuple) else (v,))):
            return ", ".join(name_latex(n)[0] for n in (v if isinstance(v, tuple) else (v,)))
        return rf"\text{{{_escape_text(str(k))}}} = {_attr_latex(v)}"
    sub = "_{" + ", ".join(option(k, v) for k, v in options) + "}" if options else ""
    return rf"{sym}{sub}\left({inner}\right)"


def display_math(text: str) -> str:
    """LaTeX as IPython's `_repr_latex_` gives it (SymPy's convention)."""
    return rf"$\displaystyle {text}$"


# ── functions from their AST (where no graph can be built) ───────────────

_BINOPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow",
           "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal",
           "==": "equal", "!=": "not_equal", "and": "and", "or": "or"}


def lambda_latex(params, body, precision: int = 8) -> str:
    """A function from its AST (a closure that takes a record, say): the same forms,
    shapes unknown."""
    names = [name_latex(p.name)[0] for p in params]
    head = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
    from . import ast
    if isinstance(body, ast.Block):
        lines, result = [], None
        for s in body.stmts:
            if isinstance(s, ast.Assign):
                lhs = ", ".join(name_latex(t)[0] for t in s.targets)
                lines.append((lhs, expr_latex(s.value, precision).text))
            elif isinstance(s, ast.Return):
                result = expr_latex(s.value, precision).text
            else:
                raise _NoLatex()
        if result is None:
            raise _NoLatex()
        if not lines:
            return rf"{head} \mapsto {result}"
        rows = [rf"{head} &\mapsto {result}"]
        rows += [(r"\text{where}\quad " if i == 0 else "") + f"{n} &= {t}" for i, (n, t) in enumerate(lines)]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    return rf"{head} \mapsto {expr_latex(body, precision).text}"


class _NoLatex(Exception):
    """An AST form with no LaTeX here (a loop in a body): the caller writes the source."""


def source_latex(text: str) -> str:
    """bp source as typewriter text (the last resort)."""
    return rf"\texttt{{{_escape_text(text)}}}"


def expr_latex(e, precision: int = 8) -> Tex:
    from . import ast
    from .ops import REGISTRY
    if isinstance(e, ast.Call) and isinstance(e.func, ast.BuiltinRef):   # bp.sum(x) is sum(x)
        e = ast.Call(ast.Name(e.func.name, e.func.span), e.args, e.kwargs, e.span)
    match e:
        case ast.BuiltinRef(name):
            return expr_latex(ast.Name(name, e.span), precision)
        case ast.Num(value):
            return number_latex(value, precision)
        case ast.Str(value):
            return Tex(rf"\text{{{_escape_text(value)}}}", P_ATOM)
        case ast.Name(name):
            if name == "pi":
                return Tex(r"\pi", P_ATOM)
            if name == "inf":
                return Tex(r"\infty", P_ATOM)
            return Tex(*name_latex(name))
        case ast.BinOp(op, left, right):
            return op_latex(_BINOPS[op], [expr_latex(left, precision), expr_latex(right, precision)], {})
        case ast.Unary(op, operand):
            inner = expr_latex(operand, precision)
            if op == "+":
                return inner
            return op_latex("neg" if op == "-" else "not", [inner], {})
        case ast.IfExpr(cond, then, orelse):
            return _cases(expr_latex(cond, precision), expr_latex(then, precision),
                          expr_latex(orelse, precision))
        case ast.Lambda(params, body):
            return Tex(lambda_latex(params, body, precision), P_CASES)
        case ast.Call(ast.Name(fn), args, kwargs) if fn in REGISTRY and REGISTRY[fn].builtin \
                and len(args) == len(REGISTRY[fn].params) and not REGISTRY[fn].variadic \
                and all(_static(k.value) is not None for k in kwargs):
            attrs = {k.name: _static(k.value) for k in kwargs}
            return op_latex(fn, [expr_latex(a, precision) for a in args], attrs)
        case ast.Call(func, args, kwargs):
            f = expr_latex(func, precision)
            if isinstance(func, ast.Name) and (func.id in REGISTRY or _is_transform(func.id)):
                f = Tex(_opname(func.id), P_CALL)
            parts = [expr_latex(a, precision).text for a in args]
            parts += [rf"\text{{{_escape_text(k.name)}}} = {expr_latex(k.value, precision).text}"
                      for k in kwargs]
            return _call(wrap(f, P_CALL), parts)
        case ast.Index(value, items):
            subs = []
            for item in items:
                if isinstance(item, ast.Slice):
                    ends = ["" if p is None else expr_latex(p, precision).text for p in (item.start, item.stop)]
                    s = ":".join(ends)
                    subs.append(s + (":" + expr_latex(item.step, precision).text if item.step else ""))
                else:
                    subs.append(expr_latex(item, precision).text)
            return Tex(f"{wrap(expr_latex(value, precision), P_ATOM)}_{{{', '.join(subs)}}}", P_SUB)
        case ast.Transpose(value):
            return _transpose(expr_latex(value, precision))
        case ast.Field(value, name):
            return Tex(f"{wrap(expr_latex(value, precision), P_ATOM)}_{{{name_latex(name)[0]}}}", P_SUB)
        case ast.TupleLit(items):
            return Tex(_bracket(", ".join(expr_latex(x, precision).text for x in items)), P_ATOM)
        case ast.ListLit(items):
            return Tex(r"\begin{bmatrix}" + r" \\ ".join(expr_latex(x, precision).text for x in items)
                       + r"\end{bmatrix}", P_ATOM)
        case ast.RecordLit(fields):
            inner = ", ".join(f"{name_latex(f.name)[0]} = {expr_latex(f.value, precision).text}"
                              for f in fields)
            return Tex(rf"\left\{{{inner}\right\}}", P_ATOM)
    raise _NoLatex()


def _is_transform(name: str) -> bool:
    return name in ("grad", "value_and_grad", "diff", "jacobian", "hessian", "jvp", "vjp", "hvp",
                    "gradcheck", "taylor")


def _static(e):
    """A keyword argument's constant value (axis=0, axis=(0, 1)), or None."""
    from . import ast
    if isinstance(e, ast.Num):
        return int(e.value) if e.value == int(e.value) else e.value
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Num):
        v = -e.operand.value
        return int(v) if v == int(v) else v
    if isinstance(e, ast.TupleLit):
        items = [_static(x) for x in e.items]
        return None if any(i is None for i in items) else tuple(items)
    return None


def closure_latex(fn, precision: int = 8) -> str:
    """A closure from its AST, or its bp source as typewriter text."""
    from .render import format_function
    try:
        return lambda_latex(fn.params, fn.body, precision)
    except (_NoLatex, KeyError):
        return source_latex(format_function(fn))
