"""Nothing but a clean BpError escapes `Interpreter.exec`, whatever the text.

Generators feed a fresh session (with a few bindings to work on): (a)
random characters; (b) random sequences of the grammar's terminals joined
by spaces (plain, and after a real statement's first tokens); (c) programs
derived from grammar/bp.lark itself (hypothesis' `from_lark`, a space
after every token: lark issue #1804); (d) well-formed expressions in
statement templates, which get past the parser to the builtins, shapes
and transforms.  Every
error must be a `BpError` of a SPEC §8 kind — never the "internal error"
that the boundary turns a stray Python exception into — rendered as
`file:line:col: kind: message`, and the session must keep working.
The settings are derandomized so CI sees the same programs on every run.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import dsl

GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "bp.lark"
KINDS = {"syntax error", "name error", "type error", "shape error", "value error",
         "import error", "io error", "assertion failed"}
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

PRELUDE = """
_keep_ = 42
s = 2; v = [1, 2, 3]; M = [[1, 2, 3], [4, 5, 6]]; A = [[2, 1], [1, 3]]
r = {W: A, b: [0, 1]}; t = (1, v)
def f(x) = x^2 * sin(x)
g = x -> tanh(x)
"""

# Names the generators use: the prelude's, builtins of every family,
# transforms, keyword-argument names, and names nothing defines.
NAMES = ["s", "v", "M", "A", "r", "t", "f", "g", "x", "y", "W", "b", "θ", "undefined",
         "sum", "mean", "max", "sin", "exp", "log", "sqrt", "tanh", "relu", "softmax",
         "cross_entropy", "one_hot", "reshape", "concat", "stack", "transpose", "broadcast_to",
         "expand_dims", "det", "inv", "solve", "trace", "diag", "outer", "dot", "norm", "mse",
         "clip", "where", "maximum", "zeros", "ones", "full", "eye", "arange", "linspace",
         "randn", "rand", "shape", "size", "ndim", "flatten", "range", "pi", "e", "inf", "nan",
         "grad", "value_and_grad", "diff", "jacobian", "hessian", "jvp", "vjp", "hvp",
         "gradcheck", "axis", "keepdims", "axes", "wrt", "seed", "value", "n"]
# Small numbers only: a random call like zeros(9, 9, 9, 9, 9, 9, 9, 9) must stay cheap.
NUMBERS = ["0", "1", "2", "3", ".5", "2.5", "1e-3", "6.02E-1", "1e0"]
STRINGS = ['"lib.bp"', '"missing.bp"', '"out.dot"', '"out.py"', '""', r'"a\"b\\c\n"']

# Terminals that are patterns, not literals: what to put in their place.
PATTERN_SAMPLES = {
    "NAME": NAMES,
    "NUMBER": NUMBERS,
    "STRING": STRINGS,
    "COMP_OP": ["<", "<=", ">", ">=", "==", "!="],
    "ADD_OP": ["+", "-"],
    "MUL_OP": ["*", "/", "@"],
    "POW_OP": ["^", "**"],
    "_NL": ["\n"],
    "COMMENT": ["# note\n"],
}


def _grammar_terminals() -> dict[str, list[str]]:
    """Every terminal of grammar/bp.lark with the texts that stand for it."""
    lark = Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual")
    out = {}
    for term in lark.terminals:
        if term.pattern.type == "str":
            out[term.name] = [term.pattern.value]
        elif term.name in PATTERN_SAMPLES:
            out[term.name] = PATTERN_SAMPLES[term.name]
        elif term.name.startswith("__"):
            continue                                   # an anonymous %ignore pattern
        else:
            out[term.name] = []                        # a new pattern terminal: see the test
    return out


TERMINALS = _grammar_terminals()
TOKENS = sorted({text for texts in TERMINALS.values() for text in texts})


@pytest.fixture(scope="module", autouse=True)
def _in_scratch_dir(tmp_path_factory):
    """Programs may import, export and write graphs: keep that in a scratch directory."""
    scratch = tmp_path_factory.mktemp("fuzz")
    (scratch / "lib.bp").write_text("def libf(x) = x + 1\nlib_value = 3\n", encoding="utf-8")
    old = os.getcwd()
    os.chdir(scratch)
    yield scratch
    os.chdir(old)


def session() -> dsl.Interpreter:
    bp = dsl.Interpreter()
    bp.exec(PRELUDE)
    return bp


def check_clean(src: str) -> None:
    """Run src; it may succeed or raise a well-formed BpError, and the session survives."""
    bp = session()
    try:
        with np.errstate(all="ignore"):
            bp.exec(src)
    except dsl.BpError as err:
        assert err.kind != "internal error", f"internal error on {src!r}: {err}"
        assert err.kind in KINDS, f"unknown kind {err.kind!r} on {src!r}"
        assert err.filename is not None and err.line is not None and err.column is not None, \
            f"error without a location on {src!r}: {err}"
        head = f"{err.filename}:{err.line}:{err.column}: {err.kind}: "
        assert str(err).startswith(head), f"{str(err)!r} does not start with {head!r}"
    assert float(bp.eval("_keep_ + 1")) == 43.0


# ── (a) random characters ────────────────────────────────────────────────

ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCXYZ_0123456789θλ \t\n"
            "()[]{}:;,.'\"#+-*/@^<>=!\\")


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_fuzz_random_text_raises_only_clean_errors(src):
    check_clean(src)


# ── (b) random terminal sequences ────────────────────────────────────────

def test_fuzz_every_grammar_terminal_has_samples():
    unsampled = sorted(name for name, texts in TERMINALS.items() if not texts)
    assert not unsampled, f"grammar terminals with no sample text in PATTERN_SAMPLES: {unsampled}"
    assert {"DEF", "ARROW", "LBRACE", "POW_OP", "_NL"} <= set(TERMINALS)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_fuzz_token_sequences_raise_only_clean_errors(tokens):
    check_clean(" ".join(tokens))


# Sequences that start like real statements get past the parser more often.
STARTS = ["x =", "def h(x) =", "def h(x) {", "print", "assert", "for i in range(3) {",
          "if s > 1 {", "y = grad(", "(x, y) ->", "z = ["]


@FUZZ
@given(st.sampled_from(STARTS), st.lists(st.sampled_from(TOKENS), max_size=20))
def test_fuzz_statement_prefixed_tokens_raise_only_clean_errors(start, tokens):
    check_clean(" ".join([start, *tokens]))


# ── (c) programs derived from the grammar ────────────────────────────────

def _spaced(texts: list[str]):
    return st.sampled_from(texts).map(lambda text: text if text.endswith("\n") else text + " ")


def _grammar_strategy():
    # Without the %ignore lines, from_lark spends its examples on programs
    # that are all comments and whitespace; spaces come from the tokens.
    text = re.sub(r"(?m)^%ignore.*$", "", GRAMMAR.read_text(encoding="utf-8"))
    lark = Lark(text, parser="lalr", lexer="contextual")
    explicit = {name: _spaced(texts) for name, texts in TERMINALS.items()
                if texts and name != "COMMENT"}
    return from_lark(lark, explicit=explicit)


# from_lark draws big trees and discards most of them: few examples cost seconds.
@settings(FUZZ, max_examples=30)
@given(_grammar_strategy())
def test_fuzz_grammar_programs_raise_only_clean_errors(src):
    check_clean(src)


# ── (d) well-formed expressions and statements ───────────────────────────
# Past the parser: builtins with wrong arities, shapes, kinds and keyword
# arguments; transforms of all that; containers where tensors belong.

CALLEES = [n for n in NAMES if n not in ("x", "y", "W", "b", "θ", "axis", "keepdims", "axes",
                                         "wrt", "seed", "value", "n", "pi", "e", "inf", "nan")]
KWARGS = ["axis", "keepdims", "axes", "wrt", "seed", "value", "n", "x"]
BINOPS = ["+", "-", "*", "/", "@", "^", "<", "==", "!=", "and", "or"]
INDICES = ["0", "-1", "1:", "::2", "0, 1", ":, 0", "5", ".5", "nan", "1:2:0"]
ATOMS = ["s", "v", "M", "A", "r", "t", "f", "g", "x", "pi", "nan", "inf", "0", "1", "2", "-1",
         ".5", "1e-3", "r.W", "t[1]", "[]", "[[1, 2], [3, 4]]", "(1,)"]


def _extend(e):
    call = st.tuples(st.sampled_from(CALLEES), st.lists(e, max_size=3),
                     st.lists(st.tuples(st.sampled_from(KWARGS), e), max_size=1))
    binop = st.tuples(e, st.sampled_from(BINOPS), e)
    return st.one_of(                       # calls and operators most often
        call.map(_call), call.map(_call), call.map(_call),
        binop.map(" ".join).map("({})".format), binop.map(" ".join).map("({})".format),
        st.tuples(st.sampled_from(["-", "not "]), e).map("".join),
        st.tuples(e, st.sampled_from(INDICES)).map(lambda p: f"{p[0]}[{p[1]}]"),
        e.map(lambda x: f"{x}'"),
        st.lists(e, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        st.lists(e, min_size=2, max_size=3).map(lambda xs: f"({', '.join(xs)})"),
        st.tuples(e, e, e).map(lambda p: f"(if {p[0]} then {p[1]} else {p[2]})"),
        st.tuples(e, e).map(lambda p: f"{{W: {p[0]}, b: {p[1]}}}.W"),
    )


def _call(parts) -> str:
    name, args, kwargs = parts
    return f"{name}({', '.join([*args, *(f'{k}={v}' for k, v in kwargs)])})"


EXPRESSIONS = st.recursive(st.sampled_from(ATOMS), _extend, max_leaves=8)
STATEMENTS = [
    "y = {}", "print {}", "assert {}", "{}",
    "def h(x, y) = {}\nz = h(v, M)\nprint z, h",
    "def h(x) {{ w = {}; return w }}\nprint h(s), h",
    "for i in range(2) {{ y = {} }}",
    "if s > 1 {{ y = {} }} else {{ y = 0 }}",
    "print grad(x -> sum({}))(v)",
    "print grad(x -> sum({}))",
    "print jacobian(x -> {})(v)",
    "print value_and_grad(x -> sum({}), wrt=0)(A)",
]


@FUZZ
@given(st.sampled_from(STATEMENTS), EXPRESSIONS)
def test_fuzz_expressions_raise_only_clean_errors(template, e):
    check_clean(template.format(e))


# ── the session after an error ───────────────────────────────────────────

@pytest.mark.parametrize("bad, kind", [
    ("c = undefined_name", "name error"),
    ("c = ones(2) @ ones(3)", "shape error"),
    ("c = f(1, 2)", "type error"),
    ("assert 1 > 2", "assertion failed"),
    ("c = one_hot([5], 2)", "value error"),
    ('import "missing.bp"', "import error"),
])
def test_fuzz_session_survives_a_failing_statement(bad, kind):
    bp = session()
    with pytest.raises(dsl.BpError) as info:
        bp.exec(f"before = 1\n{bad}\nafter = 2")
    assert info.value.kind == kind
    assert info.value.line == 2
    assert float(bp.eval("before")) == 1.0          # bindings before the failure stay
    assert "after" not in bp.names()                # nothing after it ran
    assert float(bp.eval("f(2)")) == pytest.approx(4 * np.sin(2))
    bp.exec("c = 3")
    assert float(bp.eval("c + before")) == 4.0


def test_fuzz_syntax_error_runs_nothing_of_the_text():
    bp = session()
    with pytest.raises(dsl.BpSyntaxError):
        bp.exec("early = 1\nlate = (2")
    assert "early" not in bp.names()
    assert float(bp.eval("_keep_")) == 42.0


def test_fuzz_failed_rebinding_keeps_the_old_value():
    bp = session()
    with pytest.raises(dsl.BpShapeError):
        bp.exec("v = v + [1, 2]")
    np.testing.assert_array_equal(bp.eval("v"), [1.0, 2.0, 3.0])


def test_fuzz_failure_inside_a_loop_keeps_earlier_iterations():
    bp = session()
    with pytest.raises(dsl.BpAssertionError):
        bp.exec("total = 0\nfor i in range(5) { total = total + 1; assert i < 2 }")
    assert float(bp.eval("total")) == 3.0
    assert float(bp.eval("i")) == 2.0


# ── crashers found while fuzzing (fixed; kept as regressions) ───────────

CRASHERS = [
    ("expand_dims([1, 2], axis=nan)",
     "an axes attribute of nan becomes None, and expand_dims' shape rule takes len(None)"),
    ("broadcast_to(shape=3)", "ops.bind does not check that a shape-taking op got its tensor "
                              "argument; the shape rule then indexes an empty list"),
    ("reshape(shape=3)", "ops.bind: missing tensor argument of a shape-taking op (IndexError)"),
    ("transpose([[1, 2]], axes=[1, nan])", "ops.static_ints calls int() on a nan element of a "
                                           "1-d argument"),
    ("sum([1, 2], axis=[nan])", "ops.static_ints: int(nan) on a 1-d axes argument"),
    ("zeros([inf])", "ops.static_ints: int(inf) on a 1-d shape argument (OverflowError)"),
    ("eye(1e300)", "ops.check_size formats an int beyond float range with :.3g (OverflowError)"),
    ("zeros(1e200, 1e200)", "ops.check_size: the element count overflows float in the message"),
    ("print grad(x -> cross_entropy(2, x))",
     "cross_entropy's VJP takes axis % rank with a scalar (rank 0) logits: ZeroDivisionError; "
     "the shape rule only checks the rank when both shapes are concrete"),
    ("def h(x) = x^inf\nh([1, 2])", "simplify.combine calls int() on a non-finite exponent"),
]


@pytest.mark.parametrize("src", [pytest.param(src, id=src.replace("\n", "; "))
                                 for src, why in CRASHERS])
def test_fuzz_known_crasher_raises_a_clean_error(src):
    check_clean(src)


# Found by fuzzing and since fixed: they stay here as regressions.
FIXED = ["hvp(x -> sum(x))([1, 2, 3], [1, 1, 1])"]


@pytest.mark.parametrize("src", FIXED)
def test_fuzz_fixed_crasher_stays_fixed(src):
    check_clean(src)


def test_fuzz_hvp_of_a_linear_function_is_zero():
    got = dsl.Interpreter().eval("hvp(x -> sum(2 * x))([1, 2, 3], [1, 1, 1])")
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])
