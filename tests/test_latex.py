"""LaTeX (SPEC §13, issue 13 item 5): `latex e`, `Interpreter.latex`, `:latex`, and
IPython's `_repr_latex_`.

The expected texts are written by hand from the mathematics (the matrix-calculus
forms of docs/language.md, "LaTeX").  A property test reads generated scalar
expressions' LaTeX back with a small reader of the notation (below) and checks the
numbers against bp's, so every bracket that precedence needs is there; the same
texts are checked for balanced braces and \\left/\\right, and for a form of every
operation in the graph.
"""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import dsl
from dsl import latex

SETUP = """
A = [[1, 2, 3], [4, 5, 6], [7, 8, 10]]
X = [[1, 0, 2], [0, 1, 1], [1, 1, 0], [2, 0, 1]]
def quad(x: [3]) = x @ A @ x
def cube(x: [3]) = sum(x^3)
def layer(W: [2, 3], x: [3]) = sum(tanh(W @ x))
def named(W: [m, n], x: [n]) = sum(tanh(W @ x))
def sm(x: [3]) = softmax(x)
def f(x) = x^2 * sin(x)
def logistic(w: [3]) = sum(softplus(-(X @ w)))
θ = {W: eye(2), b: [0, 0]}
def J(θ) = sum((θ.W @ [1, 2] + θ.b)^2)
"""


@pytest.fixture
def bp():
    interp = dsl.Interpreter()
    interp.exec(SETUP)
    return interp


EXPECTED = [
    # matrix calculus at known ranks
    ("hessian(quad)", r"x \mapsto A + A^\top"),
    ("quad", r"x \mapsto x^\top A x"),
    ("hessian(cube)", r"x \mapsto \operatorname{diag}(6 x)"),
    ("grad(layer)", r"(W, x) \mapsto \left(1 - \tanh(W x)^{2}\right) x^\top"),
    ("grad(layer, wrt=1)", r"(W, x) \mapsto W^\top \left(1 - \tanh(W x)^{2}\right)"),
    ("grad(named)", r"(W, x) \mapsto \left(1 - \tanh(W x)^{2}\right) x^\top"),
    ("jacobian(sm)", r"x \mapsto \operatorname{diag}(\operatorname{softmax}(x)) - "
                     r"\operatorname{softmax}(x) \operatorname{softmax}(x)^\top"),
    ("hessian(logistic)", r"w \mapsto X^\top \operatorname{diag}(\sigma(X w) \odot \sigma(-X w)) X"),
    ("grad(logistic)", r"w \mapsto -X^\top \sigma(-X w)"),
    ("jacobian((x: [n]) -> x^2)", r"x \mapsto \operatorname{diag}(2 x)"),
    ("(A: [2, 2], B: [2, 2]) -> A * (B @ A)", r"(A, B) \mapsto A \odot \left(B A\right)"),
    ("(A: [2, 2], B: [2, 2]) -> (A * B) @ A", r"(A, B) \mapsto \left(B \odot A\right) A"),
    ("(A: [2, 2], b: [2]) -> solve(A, b) + inv(A') @ b",
     r"(A, b) \mapsto A^{-1} b + A^{-\top} b"),
    ("(a: [2], b: [3]) -> outer(a, b)", r"(a, b) \mapsto a b^\top"),
    ("(A: [2, 2]) -> det(A) + trace(A)", r"A \mapsto \det(A) + \operatorname{tr}(A)"),
    # scalar (shape-polymorphic) functions
    ("f", r"x \mapsto x^{2} \sin(x)"),
    ("grad(f)", r"x \mapsto 2 x \sin(x) + x^{2} \cos(x)"),
    ("grad(grad(f))", r"x \mapsto 2 \sin(x) + 4 x \cos(x) - x^{2} \sin(x)"),
    ("diff(tanh, 2)", r"x \mapsto 2 \tanh(x)^{3} - 2 \tanh(x)"),
    ("tanh", r"x \mapsto \tanh(x)"),
    ("x -> x / (1 + x)", r"x \mapsto \frac{x}{1 + x}"),
    ("x -> (1 - x)^2", r"x \mapsto \left(1 - x\right)^{2}"),
    ("x -> -2*x", r"x \mapsto -2 x"),
    ("x -> x - 1", r"x \mapsto x - 1"),
    ("x -> (-2)^x", r"x \mapsto \left(-2\right)^{x}"),
    ("x -> 2^x^2", r"x \mapsto 2^{x^{2}}"),
    ("x -> sqrt(abs(x)) + exp(-x)", r"x \mapsto \exp(-x) + \sqrt{\lvert x \rvert}"),
    ("x -> log1p(x) * sigmoid(x)", r"x \mapsto \log(1 + x) \sigma(x)"),
    ("x -> relu(x) + softplus(x)", r"x \mapsto \operatorname{relu}(x) + \operatorname{softplus}(x)"),
    ("grad(x -> relu(x))", r"x \mapsto x > 0"),
    ("x -> if x > 0 then sqrt(x) else 0",
     r"x \mapsto \begin{cases} \sqrt{x} & \text{if } x > 0 \\ 0 & \text{otherwise} \end{cases}"),
    ("x -> not (x > 1) or x <= 0", r"x \mapsto \lnot \left(x > 1\right) \lor x \le 0"),
    ("x -> maximum(x, 0.25) + minimum(x, 1e-5)", r"x \mapsto \max(x, 0.25) + \min(x, 10^{-5})"),
    ("x -> x / 3", r"x \mapsto \frac{1}{3} x"),
    # reductions, indexing and the adjoint of indexing
    ("x -> sum(x)^2", r"x \mapsto \left(\sum x\right)^{2}"),
    ("x -> x * sum(x)", r"x \mapsto x \sum x"),
    ("x -> 2 * sum(x, axis=0)", r"x \mapsto 2 \sum_{\text{axis } 0} x"),
    ("x -> mean(x, axis=(0, 1))", r"x \mapsto \operatorname{mean}_{\text{axes } 0, 1}(x)"),
    ("grad(x -> norm(x))", r"x \mapsto \frac{x}{\sqrt{\sum x^{2}}}"),
    ("grad(x -> mean(x))", r"x \mapsto \frac{1}{\operatorname{size}(x)} \mathbf{1}"),
    ("x -> x[1:] + x[0]", r"x \mapsto x_{1:} + x_{0}"),
    ("grad(x -> x[1]^2)", r"x \mapsto 2 x_{1} \mathbf{e}_{1}"),
    ("grad((x: [3]) -> x[1:] @ x[:2])",
     r"x \mapsto \operatorname{scatter}_{:2}(x_{1:}) + \operatorname{scatter}_{1:}(x_{:2})"),
    # names and globals
    ("(θ_2, W1, lr, x_hat) -> θ_2 * W1 * lr * x_hat",
     r"(\theta_{2}, W_{1}, \mathrm{lr}, x_{\mathrm{hat}}) \mapsto \theta_{2} W_{1} \mathrm{lr} x_{\mathrm{hat}}"),
    ("x -> θ.W @ x + θ.b", r"x \mapsto \theta_{W} x + \theta_{b}"),
    ("x -> pi * x", r"x \mapsto \pi x"),
    # containers
    ("value_and_grad(f)", r"x \mapsto \left(x^{2} \sin(x), 2 x \sin(x) + x^{2} \cos(x)\right)"),
    ("x -> (x,)", r"x \mapsto \left(x,\right)"),
    # where no graph can be built: the transform of the function's LaTeX, or its AST
    ("jacobian(x -> x^2)", r"\operatorname{jacobian}\left(x \mapsto x^{2}\right)"),
    ("J", r"\theta \mapsto \sum \left(\theta_{W} \begin{bmatrix}1 \\ 2\end{bmatrix} + \theta_{b}\right)^{2}"),
    ("grad(J)", r"\nabla\left(\theta \mapsto \sum \left(\theta_{W} \begin{bmatrix}1 \\ 2\end{bmatrix}"
                r" + \theta_{b}\right)^{2}\right)"),
    # values
    ("[[1, 2], [3, 4.5]]", r"\begin{bmatrix}1 & 2 \\ 3 & 4.5\end{bmatrix}"),
    ("[1, -2]", r"\begin{bmatrix}1 \\ -2\end{bmatrix}"),
    ("2.5", "2.5"),
    ("-inf", r"-\infty"),
    ("nan", r"\mathrm{NaN}"),
    ("1/3", r"\frac{1}{3}"),
    ("1.5e-7", r"1.5 \times 10^{-7}"),
    ("(1, [1, 2])", r"\left(1, \begin{bmatrix}1 \\ 2\end{bmatrix}\right)"),
    ("θ", r"\left\{W = \begin{bmatrix}1 & 0 \\ 0 & 1\end{bmatrix}, b = \begin{bmatrix}0 \\ 0\end{bmatrix}\right\}"),
    ("(f, 1)", r"\left(x \mapsto x^{2} \sin(x), 1\right)"),
]


def balanced(text: str) -> bool:
    depth = 0
    for m in re.finditer(r"\\[{}]|[{}]", text):
        if m.group() in ("{", "}"):
            depth += 1 if m.group() == "{" else -1
            if depth < 0:
                return False
    lefts = len(re.findall(r"\\left(?![a-zA-Z])", text))
    rights = len(re.findall(r"\\right(?![a-zA-Z])", text))
    begins = re.findall(r"\\begin\{(\w+)\}", text)
    ends = re.findall(r"\\end\{(\w+)\}", text)
    return depth == 0 and lefts == rights and sorted(begins) == sorted(ends)


@pytest.mark.parametrize("src, expected", EXPECTED, ids=[s for s, _ in EXPECTED])
def test_latex_forms(bp, src, expected):
    got = bp.latex(src)
    assert got == expected
    assert balanced(got)


def test_latex_statement_prints_what_the_method_returns(bp):
    bp.stdout = io.StringIO()
    bp.exec("latex grad(f)\nlatex (hessian(quad), 1)\nlatex [1, 2]")
    assert bp.stdout.getvalue().splitlines() == [
        bp.latex("grad(f)"), bp.latex("(hessian(quad), 1)"), bp.latex("[1, 2]")]


def test_latex_follows_show_for_every_transform(bp):
    """The LaTeX is made from the same graph as the printed text: a form of every
    operation appears, for the printed forms the tests of printing pin."""
    for src in ("grad(layer)", "hessian(logistic)", "jacobian(sm)", "grad(grad(f))", "diff(tanh, 5)",
                "hvp((x: [3]) -> sum(exp(x) * x))", "jvp(f)", "vjp(sin)"):
        assert balanced(bp.latex(src)), src


def test_long_shared_subexpressions_are_bound_in_an_aligned_block():
    bp = dsl.Interpreter()
    bp.exec("def mlp(x: [3], W1: [4, 3], b1: [4], w: [4]) = sigmoid(w @ tanh(W1 @ x + b1))\n"
            "def g(x: [], t1: []) = sin(x*t1 + exp(x))^2 + cos(x*t1 + exp(x))")
    # t1 is a parameter, so the temporaries start at t_{2}; a short shared
    # subexpression (\exp(x) + x t_{1}) stays inline
    assert bp.latex("grad(g)") == ("\\begin{aligned}\n"
                                   r"(x, t_{1}) &\mapsto t_{3} t_{1} + t_{3} \exp(x) \\" "\n"
                                   r"\text{where}\quad t_{2} &= \sin(\exp(x) + x t_{1}) \\" "\n"
                                   r"t_{3} &= 2 \cos(\exp(x) + x t_{1}) t_{2} - t_{2}" "\n"
                                   "\\end{aligned}")
    text = bp.latex("grad(mlp, wrt=1)")
    assert text.startswith("\\begin{aligned}\n(x, W_{1}, b_{1}, w) &\\mapsto ")
    assert "\\text{where}\\quad t_{1} &= " in text and balanced(text)


def test_precision_of_numbers():
    bp = dsl.Interpreter(precision=3)
    assert bp.latex("x -> exp(-x^2/2) / sqrt(2*pi)") == r"x \mapsto 0.399 \exp(-0.5 x^{2})"
    assert bp.latex("[0.123456, 2]") == r"\begin{bmatrix}0.123 \\ 2\end{bmatrix}"


def test_names():
    cases = {"x": "x", "θ": r"\theta", "W1": "W_{1}", "t12": "t_{12}", "θ_2": r"\theta_{2}",
             "lr": r"\mathrm{lr}", "x_hat": r"x_{\mathrm{hat}}", "W_1_2": "W_{1, 2}", "Σ": r"\Sigma",
             "αβ": r"\alpha \beta", "lr2": r"\mathrm{lr}_{2}", "x_": r"\mathrm{x\_}", "é": r"\text{é}"}
    for name, expected in cases.items():
        assert latex.name_latex(name)[0] == expected, name


def test_large_tensors_are_summarised_within_bmatrix_limits():
    bp = dsl.Interpreter()
    text = bp.latex("reshape(arange(600), 30, 20)")
    rows = text.removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}").split(r" \\ ")
    assert len(rows) == 11 and all(r.count("&") == 8 for r in rows)
    assert r"\cdots" in rows[0] and r"\vdots" in rows[5] and r"\ddots" in rows[5]
    column = bp.latex("arange(100)")
    assert column.count(r"\\") == 10 and r"\vdots" in column
    assert bp.latex("ones(2, 2, 2)").count(r"\begin{bmatrix}") == 3


def test_constants_in_graphs():
    bp = dsl.Interpreter()
    assert bp.latex("(x: [2]) -> 3*eye(2) @ x") == r"x \mapsto 3 I_{2} x"
    assert bp.latex("(x: [3]) -> x + [1, 2, 3]") == r"x \mapsto \begin{bmatrix}1 \\ 2 \\ 3\end{bmatrix} + x"
    assert bp.latex("(x: [4]) -> x + ones(4)") == r"x \mapsto 1 + x"
    assert bp.latex("hessian((x: [3]) -> sum(x^2))") == r"x \mapsto 2 I_{3}"


def test_outputs_compile_with_pdflatex(tmp_path):
    """Where a LaTeX compiler is installed, every form above is valid LaTeX (with
    amsmath and amssymb, as a paper has them)."""
    import shutil
    import subprocess
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex")
    bp = dsl.Interpreter()
    bp.exec(SETUP + "def g(x: [], t1: []) = sin(x*t1 + exp(x))^2 + cos(x*t1 + exp(x))")
    texts = [bp.latex(src) for src, _ in EXPECTED]
    texts += [bp.latex(s) for s in ("grad(g)", "reshape(arange(600), 30, 20)", "ones(2, 2, 2)",
                                    "θ -> { s = 0; for i in range(2) { s = s + θ.b[i] }; return s }")]
    body = "\n\n".join(f"\\[ {t} \\]" for t in texts)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n"
                                      "\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
                                      f"{body}\n\\end{{document}}\n", encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]


def test_latex_errors_are_located():
    bp = dsl.Interpreter()
    with pytest.raises(dsl.BpError) as err:
        bp.exec('x = 1\nlatex "text"')
    assert err.value.kind == "type error" and (err.value.line, err.value.column) == (2, 7)
    with pytest.raises(dsl.BpError) as err:
        bp.exec("latex nope")
    assert err.value.kind == "name error" and err.value.column == 7
    with pytest.raises(dsl.BpError) as err:
        bp.exec("def f(x) { latex x; return x }")
    assert err.value.kind == "syntax error" and "latex cannot appear in a function body" in str(err.value)
    with pytest.raises(dsl.BpError) as err:
        bp.exec("latex = 3")                              # a keyword now
    assert err.value.kind == "syntax error"
    with pytest.raises(dsl.BpError) as err:
        bp.latex("1 +")
    assert err.value.kind == "syntax error"
    assert "latex" in dsl.interpreter.KEYWORDS


def test_latex_of_a_deep_graph_does_not_recurse():
    bp = dsl.Interpreter()
    # nested: a constant count of at most 64 unrolls (a longer one is a loop node)
    bp.exec("def deep(x) { for i in range(60) { for j in range(50) { x = sin(x) } }; return x }")
    text = bp.latex("deep")
    assert text.count(r"\sin") == 3000 and balanced(text)


def test_repr_latex_of_callables_and_values():
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x^2 * sin(x)")
    df = bp.eval("grad(f)")
    assert df._repr_latex_() == r"$\displaystyle x \mapsto 2 x \sin(x) + x^{2} \cos(x)$"
    assert float(df(2.0)) == pytest.approx(2 * 2 * math.sin(2) + 4 * math.cos(2))


def test_ipython_shows_functions_as_latex():
    pytest.importorskip("IPython")
    from dsl.ipython import Shown
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x^2 * sin(x)")
    shown = Shown(bp.show("f"), True, lambda: bp._repr_latex(bp._value_of("f")))
    assert shown._repr_latex_() == r"$\displaystyle x \mapsto x^{2} \sin(x)$"
    assert shown._repr_html_() is None                   # a notebook would prefer HTML
    value = Shown("[1, 2]", False, lambda: bp._repr_latex(np.array([1.0, 2.0])))
    assert value._repr_latex_() == r"$\displaystyle \begin{bmatrix}1 \\ 2\end{bmatrix}$"
    assert "<pre" in value._repr_html_()
    from IPython.core.formatters import DisplayFormatter
    data, _ = DisplayFormatter().format(bp.eval("grad(f)"))
    assert data["text/latex"] == r"$\displaystyle x \mapsto 2 x \sin(x) + x^{2} \cos(x)$"


def test_ipython_cell_displays_latex():
    IPython = pytest.importorskip("IPython")
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()
    shell.run_line_magic("load_ext", "dsl")
    shown = []
    import dsl.ipython as ext
    original = ext.Shown
    try:
        class Spy(original):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                shown.append(self)
        ext.Shown = Spy
        shell.run_cell("%%bp\ndef sq(x) = x^2\ngrad(sq)\n")
    finally:
        ext.Shown = original
    assert [s._repr_latex_() for s in shown] == [r"$\displaystyle x \mapsto 2 x$"]


def test_repl_latex_command():
    from tests.test_repl import drive
    out, _, _ = drive("def f(x) = x^2 * sin(x)\r:latex grad(f)\r:latex\r:latex nope\r:help commands\r")
    assert r"x \mapsto 2 x \sin(x) + x^{2} \cos(x)" in out.splitlines()
    assert "this command needs an expression" in out
    assert "name error" in out
    assert ":latex e" in out


# ── generated expressions read back ──────────────────────────────────────

class _Unreadable(Exception):
    """A form the reader does not evaluate (reshape, stack, a tensor of rank 3)."""


class _Reader:
    r"""Reads the LaTeX of a function back to numbers, by the conventions the printer
    follows (docs/language.md, "LaTeX"): juxtaposition and \cdot bind tighter than
    + and -, and multiply (by a scalar) or are matrix products (between tensors);
    \odot is elementwise; a leading - negates the product after it; \sum reaches over
    the rest of its product; ^ takes a brace group (\top, -1, -\top, \circ k, or a
    power).  Vectors are read as columns (n, 1); x^\top is a row."""

    TOKEN = re.compile(r"\\begin\{(?:cases|bmatrix)\}|\\end\{(?:cases|bmatrix)\}|\\text\{[^}]*\}|"
                       r"\\left\(|\\right\)|\\left\\lvert|\\right\\rvert|\\[a-zA-Z]+|\\\\|\\_|"
                       r"\d+(?:\.\d+)?|[a-zA-Z]|[{}()^_,+\-&<>=:]")
    FUNCS = {r"\sin": np.sin, r"\cos": np.cos, r"\tanh": np.tanh, r"\exp": np.exp, r"\log": np.log,
             r"\sigma": lambda v: 1 / (1 + np.exp(-v)), r"\max": np.maximum, r"\min": np.minimum,
             r"\operatornamesign": np.sign, r"\det": np.linalg.det, r"\operatornametr": np.trace,
             r"\operatornamediag": lambda v: np.diag(v.ravel()) if 1 in np.shape(v) else np.diag(v)[:, None],
             r"\operatornamesoftmax": lambda v: np.exp(v) / np.sum(np.exp(v))}
    STARTS = (r"\frac", r"\left(", r"\sqrt", r"\lvert", r"\left\lvert", r"\pi", r"\begin{cases}",
              r"\operatorname", r"\mathrm", r"\mathbf", r"\begin{bmatrix}")

    def __init__(self, text, env):
        self.toks = [t for t in self.TOKEN.findall(text)]
        assert re.sub(r"\s+", "", "".join(self.toks)) == re.sub(r"\s+", "", text), text   # all read
        self.i, self.env = 0, dict(env)

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected=None):
        t = self.peek()
        assert expected is None or t == expected, (expected, t, self.toks[self.i - 5:self.i + 5])
        self.i += 1
        return t

    @staticmethod
    def ew(f, a, b):
        """Elementwise, a row and a column of one vector being the same vector."""
        if np.ndim(a) == 2 and np.ndim(b) == 2 and np.shape(a) == np.shape(b)[::-1] and 1 in np.shape(a):
            b = np.reshape(b, np.shape(a))
        return f(a, b)

    @staticmethod
    def jux(a, b):
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        r = a @ b
        return float(r[0, 0]) if r.shape == (1, 1) else r

    def expr(self):
        left = self.sum()
        op = self.peek()
        if op in ("<", ">", r"\le", r"\ge", "=", r"\ne"):
            self.take()
            right = self.sum()
            f = {"<": np.less, ">": np.greater, r"\le": np.less_equal, r"\ge": np.greater_equal,
                 "=": np.equal, r"\ne": np.not_equal}[op]
            return self.ew(lambda a, b: f(a, b).astype(float), left, right)
        return left

    def logic(self):
        if self.peek() == r"\lnot":
            self.take()
            return float(not self.primary())
        left = self.expr()
        while self.peek() in (r"\land", r"\lor"):
            op = self.take()
            right = self.expr() if self.peek() != r"\lnot" else self.logic()
            left = float(bool(left) and bool(right)) if op == r"\land" else float(bool(left) or bool(right))
        return left

    def sum(self):
        value = -self.product() if self.peek() == "-" and self.take() else self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.product()
            value = self.ew(np.add if op == "+" else np.subtract, value, right)
        return value

    def starts_factor(self, t):
        return t is not None and (t[0].isdigit() or (len(t) == 1 and t.isalpha())
                                  or t in self.STARTS or t in self.FUNCS or t == r"\sum")

    def big_sum(self):
        self.take(r"\sum")
        axis = None
        if self.peek() == "_":
            self.take()
            self.take("{")
            if self.take() != r"\text{axis }":
                raise _Unreadable("a sum over several axes")
            negative = self.peek() == "-" and self.take()
            axis = -int(self.take()) if negative else int(self.take())
            self.take("}")
        v = self.product()
        if np.ndim(v) == 2 and 1 not in np.shape(v) and axis is not None:
            return np.sum(v, axis=axis)[:, None]
        return float(np.sum(v))

    def product(self):
        """\\odot-separated juxtapositions (juxtaposition binds tighter than \\odot)."""
        value = self.juxtaposition()
        while self.peek() == r"\odot":
            self.take()
            value = self.ew(np.multiply, value, self.juxtaposition())
        return value

    def juxtaposition(self):
        value = None
        while True:
            t = self.peek()
            if value is not None and t in (r"\cdot", r"\times"):
                self.take()
                t = self.peek()
            elif value is not None and not self.starts_factor(t):
                return value
            v = self.big_sum() if t == r"\sum" else self.factor()
            value = v if value is None else self.jux(value, v)
            if t == r"\sum":
                return value

    def factor(self):
        base = self.primary()
        while self.peek() == "^":
            self.take()
            if self.peek() == r"\top":
                self.take()
                base = np.transpose(base)
                continue
            self.take("{")
            if self.peek() == "-" and self.toks[self.i + 1] == r"\top":
                self.take(), self.take(), self.take("}")
                base = np.linalg.inv(base).T
                continue
            circ = self.peek() == r"\circ" and self.take()
            exp = self.logic()
            self.take("}")
            if not circ and np.ndim(base) == 2 and exp == -1 and 1 not in np.shape(base):
                base = np.linalg.inv(base)
            else:
                base = np.power(base, exp)
        return base

    def group(self):
        self.take("{")
        v = self.logic()
        self.take("}")
        return v

    def word(self):
        self.take("{")
        w = ""
        while self.peek() != "}":
            w += self.take()
        self.take("}")
        return w

    def primary(self):
        t = self.take()
        if t[0].isdigit():
            return float(t)
        if len(t) == 1 and t.isalpha():
            name = t
            if self.peek() == "_":
                self.take()
                name += "_" + self.word()
            return self.env[name]
        if t == r"\pi":
            return math.pi
        if t == r"\mathrm":
            return {"e": math.e}[self.word()]
        if t == r"\mathbf":
            w = self.word()
            self.take("_")
            sub = self.word()
            if w == "e":
                return np.eye(self.env["n"])[:, [int(sub)]]
            dims = [int(d) for d in sub.split(r"\times")]
            return np.full(dims + [1] * (len(dims) == 1), float(w))
        if t == r"\frac":
            a = self.group()
            return self.ew(np.divide, a, self.group())
        if t == r"\sqrt":
            return np.sqrt(self.group())
        if t == r"\left(":
            v = self.logic()
            self.take(r"\right)")
            return v
        if t in (r"\lvert", r"\left\lvert"):
            v = self.logic()
            self.take(r"\rvert" if t == r"\lvert" else r"\right\rvert")
            return abs(v)
        if t == r"\begin{bmatrix}":
            if self.peek() == r"\begin{bmatrix}":
                raise _Unreadable("a tensor of rank 3")
            rows, row = [], [self.logic()]
            while self.peek() != r"\end{bmatrix}":
                sep = self.take()
                if sep == "\\\\":
                    rows.append(row)
                    row = []
                row.append(self.logic())
            self.take()
            rows.append(row)
            return np.array(rows, dtype=float)
        if t == r"\operatorname":
            t += self.word()
            if t not in self.FUNCS:
                raise _Unreadable(t)
        if t in self.FUNCS:
            close = ")"
            if self.take() == r"\left(":
                close = r"\right)"
            args = [self.logic()]
            while self.peek() == ",":
                self.take()
                args.append(self.logic())
            self.take(close)
            if len(args) == 2:
                return self.ew(self.FUNCS[t], *args)
            return self.FUNCS[t](*args)
        if t == r"\begin{cases}":
            a = self.logic()
            self.take("&")
            self.take(r"\text{if }")
            c = self.logic()
            self.take("\\\\")
            b = self.logic()
            self.take("&")
            self.take(r"\text{otherwise}")
            self.take(r"\end{cases}")
            return np.where(c, a, b) if np.ndim(c) else (a if c else b)
        raise AssertionError(f"unexpected {t!r}")

    def function(self):
        """`head \\mapsto body`"""
        while self.take() != r"\mapsto":
            pass
        v = self.logic()
        assert self.peek() is None, self.toks[self.i:]
        return v


def read_function(text: str, env: dict) -> float:
    if text.startswith("\\begin{aligned}"):
        lines = text.removeprefix("\\begin{aligned}\n").removesuffix("\n\\end{aligned}").split(" \\\\\n")
        env = dict(env)
        for line in lines[1:]:
            name, body = line.removeprefix(r"\text{where}\quad ").split(" &= ")
            env[name.replace("_{", "_").replace("}", "")] = \
                _Reader(body, env).logic()
        return _Reader(lines[0].replace("&", "", 1), env).function()
    return _Reader(text, env).function()


_LEAF = st.sampled_from(["x", "y", "2", "3", "0.5", "1"])


def _extend(kids):
    return st.one_of(
        st.tuples(kids, st.sampled_from(["+", "-", "*", "/"]), kids).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(kids, st.sampled_from(["2", "3", "-1"])).map(lambda t: f"({t[0]})^{t[1]}"),
        st.tuples(st.sampled_from(["sin", "cos", "tanh", "sigmoid", "abs", "exp"]), kids)
        .map(lambda t: f"{t[0]}({t[1]})"),
        kids.map(lambda c: f"(-{c})"),
        kids.map(lambda c: f"sqrt(abs({c}))"),
        st.tuples(kids, kids).map(lambda t: f"maximum({t[0]}, {t[1]})"),
        st.tuples(kids, kids, kids).map(lambda t: f"(if {t[0]} > {t[1]} then {t[2]} else {t[0]})"),
    )


_EXPRS = st.recursive(_LEAF, _extend, max_leaves=10)
_MARKS = {"sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh", "sigmoid": r"\sigma", "abs": r"\lvert",
          "exp": r"\exp", "sqrt": r"\sqrt", "div": r"\frac", "pow": "^{", "maximum": r"\max",
          "minimum": r"\min", "where": r"\begin{cases}", "greater": ">", "less": "<"}
# (neg and sub have no mark of their own: -a/-b is a/b, a - -b is a + b)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_EXPRS, st.sampled_from(["", "grad", "diff2"]), st.floats(0.3, 2.0), st.floats(-2.0, -0.3))
def test_generated_expressions_read_back(body, transform, x0, y0):
    bp = dsl.Interpreter(precision=17)
    src = f"(x: [], y: []) -> {body}"
    if transform == "grad":
        src = f"grad({src})"
    elif transform == "diff2":
        src = f"grad(grad({src}))"
    try:
        text = bp.latex(src)
        expected = float(bp.eval(f"({src})({x0!r}, {y0!r})"))
    except dsl.BpError:
        assume(False)
    assert balanced(text), text
    ops = {n.op for n in bp.graph(src).nodes}
    for op in ops:
        if op in _MARKS:
            assert _MARKS[op] in text, (op, text)
    assume(math.isfinite(expected) and abs(expected) < 1e6)
    assume(r"\infty" not in text and "NaN" not in text)
    with np.errstate(all="ignore"):
        got = float(read_function(text, {"x": x0, "y": y0}))
    assume(math.isfinite(got))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), (src, text)


def _typed(kind: str, depth: int):
    """bp source of a scalar (S), vector [3] (V) or matrix [3, 3] (M) expression over
    x: [3] and A: [3, 3]: the matrix-calculus forms in every combination."""
    leaves = {"S": ["x[0]", "x[2]", "2", "0.5"], "V": ["x"], "M": ["A", "eye(3)"]}[kind]
    if depth == 0:
        return st.sampled_from(leaves)
    S, V, M = (_typed(k, depth - 1) for k in "SVM")
    forms = {
        "S": [V.map(lambda v: f"sum({v})"), st.tuples(V, V).map(lambda t: f"({t[0]} @ {t[1]})"),
              M.map(lambda m: f"trace({m})"), M.map(lambda m: f"det({m})"),
              st.tuples(S, S, st.sampled_from("*+-/")).map(lambda t: f"({t[0]} {t[2]} {t[1]})"),
              S.map(lambda s: f"tanh({s})"), st.tuples(M, V).map(lambda t: f"sum({t[0]} @ {t[1]})")],
        "V": [st.tuples(M, V).map(lambda t: f"({t[0]} @ {t[1]})"), V.map(lambda v: f"tanh({v})"),
              st.tuples(V, V, st.sampled_from("*+-")).map(lambda t: f"({t[0]} {t[2]} {t[1]})"),
              V.map(lambda v: f"softmax({v})"), M.map(lambda m: f"diag({m})"),
              st.tuples(S, V).map(lambda t: f"({t[0]} * {t[1]})"),
              st.tuples(M, V).map(lambda t: f"({t[0]}' @ {t[1]})"), V.map(lambda v: f"solve(A, {v})"),
              st.tuples(V, M).map(lambda t: f"({t[0]} @ {t[1]})")],
        "M": [st.tuples(V, V).map(lambda t: f"outer({t[0]}, {t[1]})"),
              st.tuples(M, M, st.sampled_from(["@", "*", "+"])).map(lambda t: f"({t[0]} {t[2]} {t[1]})"),
              M.map(lambda m: f"{m}'"), V.map(lambda v: f"diag({v})"), st.just("inv(A)"),
              st.tuples(S, M).map(lambda t: f"({t[0]} * {t[1]})"), M.map(lambda m: f"({m})^2")],
    }[kind]
    return st.one_of(st.sampled_from(leaves), *forms)


_X0 = np.array([0.7, -0.4, 1.1])
_A0 = np.array([[2.0, 0.3, -0.5], [0.1, 1.5, 0.4], [-0.2, 0.6, 1.8]])


@settings(max_examples=120, deadline=None, derandomize=True)
@given(_typed("S", 3), st.sampled_from(["", "grad", "grad_A", "hessian"]))
def test_generated_matrix_expressions_read_back(body, transform):
    """Transposes, rows and columns, \\odot and the matrix-calculus forms of known ranks
    read back to bp's numbers."""
    bp = dsl.Interpreter(precision=17)
    bp["x0"], bp["A0"] = _X0, _A0
    src = f"(x: [3], A: [3, 3]) -> {body}"
    src = {"": src, "grad": f"grad({src})", "grad_A": f"grad({src}, wrt=1)",
           "hessian": f"hessian({src})"}[transform]
    try:
        text = bp.latex(src)
        expected = np.asarray(bp.eval(f"({src})(x0, A0)"))
    except dsl.BpError:
        assume(False)
    assert balanced(text), text
    assume(np.isfinite(expected).all() and np.abs(expected).max(initial=0) < 1e6)
    assume(r"\infty" not in text and "NaN" not in text)
    env = {"x": _X0[:, None], "A": _A0, "n": 3, "I_3": np.eye(3),
           **{f"x_{i}": float(_X0[i]) for i in range(3)}}
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(read_function(text, env), dtype=float)
    except (_Unreadable, np.linalg.LinAlgError):
        assume(False)
    assert got.size == expected.size, (src, text)
    np.testing.assert_allclose(got.ravel(), expected.ravel(), rtol=1e-6, atol=1e-6,
                               err_msg=f"{src}\n{text}")
