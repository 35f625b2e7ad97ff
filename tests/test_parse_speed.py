"""The parser's fast paths keep its behaviour (issue 19: parsing a big program).

dsl/parser.py's driver lexes inside its loop, follows a chain of unit rules
with one look-up, builds spans only for rules that use them, reduces by a
function per rule (the hot rules' making their nodes through the slots, a
token's value its text), pauses the cyclic collector, and checks placement
with a quicker walk for nodes that have no rule of their own (and none of
expressions where no lambda was built); dsl/struct.py gives a class without
defaults an __init__ for its arity.  These tests check each against what it
replaces: Lark's parser on the same tables for ASTs, spans and the token an
error is found at, the generic reductions (build for every rule) for values
and depth limits, the generic placement walk for placement errors, and
struct's generic __init__ for construction.  No test here measures time.
"""
from __future__ import annotations

import contextlib
import gc
import random

import pytest
from hypothesis import given, settings, strategies as st

from dsl import parser, struct
from dsl.errors import BpSyntaxError, Span
import test_parser
from test_parser import TOKENS, same_parse, spans


def rosenbrock(n: int) -> str:
    terms = " + ".join(f"100*(x[{i + 1}] - x[{i}]^2)^2 + (1 - x[{i}])^2" for i in range(n - 1))
    return f"def f(x) = {terms}\n"


BIG = [
    rosenbrock(60),
    "def f(x) {\n  y = " + " +\n    ".join(f"sin(x[{i}]) * cos(x[{i + 1}, :], k={i})" for i in range(40))
    + "\n  return y   # done\n}\nprint f([1, 2, 3])\n",
    "z = [" + ",\n ".join(f"{{a: {i}, b: [{i}, {i}.5e-3]}}" for i in range(50)) + "]\n",
    "w = " + " \\\n  * ".join(f"(a{i} - b{i})'" for i in range(50)) + "; q = w.T\n",
    "x = " + "(" * 40 + "1" + ")" * 40 + "\n" + "y = " + "-" * 40 + "2 ^ -3 ^ 4\n",
    "for i in range(3) {\n" + "".join(f"  if i == {k} {{ print {k} }} else {{ t = {k} }}\n"
                                      for k in range(30)) + "}\n",
    "g = (a, b: [2, n], c=0.1) -> { while a < b { a = a + c\n break }\n return a[1:, ::2] }\n",
    # repetitions grown in place, nested in one another: statements, arguments, items
    "def h(p, q, r) {\n" + "".join(
        f"  t{k} = h([{k}, [{k}, {k + 1}], p], q, r={k}) + g({k}, {k + 1}, {k + 2})\n"
        f"  if t{k} > 0 {{ u = [t{k}, t{k}]; v = u }}\n" for k in range(40)) + "  return t39\n}\n",
    # the hot rules' own reductions, and each of their ways back to the generic one
    "a = f()\nb = g(a, k=1)(2)[0]'\nc = -a ** -b + c and not c\nx[1, 2:3] = 2\nx[0] += 1\n"
    "p, q = 1, 2\nh = (x: [2], y) -> x\nk = (t=1) -> t\nm = (((a)))\nprint (1), (a, b)\n"
    "f(x)\n-x; +y; z\n\n  # blank and comment lines\n\nr = {a: 1}.a\ns = bp.sum(x[::2])\n",
    "def f(x) {\n  y = x\n\n  ; return (y)\n}\nfor i in range(2) { if i { break } }\n"
    "while 0 { t = 1; }\nw = [1, 2,\n  3]\nv = 1 +\n  2 - 3 * 4 / 5 % 6 @ 7\n",
    "\n".join(f"t{i} = tanh(t{i - 1}) * x[{i}] + {i}.5" for i in range(1, 60)) + "\n",
]


@pytest.mark.parametrize("text", BIG, ids=range(len(BIG)))
def test_big_programs_parse_as_lark_parses_them(text):
    same_parse(text)


def _lark_error(text: str):
    """Where Lark's parser stops on `text`: the unexpected token, or character."""
    import lark
    test_parser.lark_ast("")                  # builds the parser once
    lk, post = test_parser._LARK
    post.text = text
    try:
        lk.parse(text)
    except lark.exceptions.UnexpectedToken as err:
        return "token", err.token.type, None if err.token.type == "$END" else err.token.start_pos
    except lark.exceptions.UnexpectedCharacters as err:
        return "character", err.pos_in_stream, err.line, err.column
    return None


def _our_error(text: str):
    try:
        parser._run(text, parser._recognise)
    except parser._Unexpected as err:
        return "token", err.token.type, None if err.token.type == "$END" else err.token.start_pos
    except parser._BadCharacter as err:
        return "character", err.pos, err.line, err.column
    return None


SOUP = TOKENS + ["$", "\"open", "#c\n", "\\\n", "\t", "?", "break", "while", "bp", "plot", "on",
                 "to", "graph", "assert", "latex", "export", "import"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=16))
def test_errors_are_found_where_lark_finds_them(tokens):
    text = " ".join(tokens) + "\n"
    assert _our_error(text) == _lark_error(text), text


def test_errors_in_a_big_program_are_found_where_lark_finds_them():
    text = rosenbrock(30)
    rng = random.Random(19)
    for _ in range(60):
        cut = rng.randrange(len(text))
        for bad in (text[:cut] + "\n", text[:cut] + ")" + text[cut:], text[:cut] + "$" + text[cut:],
                    text[:cut] + "," + text[cut:]):
            assert _our_error(bad) == _lark_error(bad), bad


STATEMENTS = ["x = 1", "print x", "return x", "break", "assert x", "import \"m.bp\"", "latex x",
              "plot x", "graph f", "export f to \"f.py\"", "f((a: [2]) -> a)", "y = (a: [2])",
              "y = (lr=1)", "if x { print 1 }", "z = a -> { return a }", "w = a -> { break }",
              "for i in r { break }", "while x { return 1 }", "def g(x) { print x }",
              "def g(x) { y = x\n return y }", "def g(x) = x + [(t: [1])]", "q = {a: (lr=1)}",
              "def g(x) = x", "k = (a, b) -> a * b", "for j in r { y = j }"]


def _placement(text: str):
    try:
        program = parser.parse(text)
    except BpSyntaxError as err:
        return err.message, err.span
    return program


@contextlib.contextmanager
def generic_walk():
    """_check_placement on every program, with every node through its generic path."""
    saved, matters, only = dict(parser._PLAIN), parser._placement_matters, parser._statements_only
    parser._PLAIN.clear()
    parser._placement_matters = lambda built: True
    parser._statements_only = lambda built: False
    try:
        yield
    finally:
        parser._PLAIN.update(saved)
        parser._placement_matters = matters
        parser._statements_only = only


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=5),
       st.sampled_from(["top", "def", "for", "lambda", "if"]))
def test_placement_walk_finds_what_the_generic_walk_finds(statements, around):
    body = "\n".join(statements)
    text = {"top": body, "def": f"def f(x) {{\n{body}\n}}", "for": f"for i in r {{\n{body}\n}}",
            "lambda": f"h = x -> {{\n{body}\n}}", "if": f"if c {{\n{body}\n}} else {{\n{body}\n}}"}[around]
    quick = _placement(text)
    with generic_walk():
        generic = _placement(text)
    assert quick == generic, text
    if not isinstance(quick, tuple):
        assert spans(quick) == spans(generic)


EXPRESSION_STATEMENTS = ["f(x -> { return x })", "y = (a: [2])", "z = g((lr=1))",
                         "w = x -> { print x }", "v = [x -> { break }]"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(STATEMENTS + EXPRESSION_STATEMENTS), min_size=1, max_size=5),
       st.sampled_from(["top", "def", "for", "while"]))
def test_placement_walk_of_statements_only_finds_what_the_generic_walk_finds(statements, around):
    """Where no lambda (nor a parameter-like item) is built, the walk skips expressions."""
    body = "\n".join(statements)
    text = {"top": body, "def": f"def f(x) {{\n{body}\n}}", "for": f"for i in r {{\n{body}\n}}",
            "while": f"while c {{\n{body}\n}}"}[around]
    quick = _placement(text)
    with generic_walk():
        generic = _placement(text)
    assert quick == generic, text


def test_statements_only_needs_no_lambda():
    assert parser._statements_only({"def_stmt", "return_stmt", "print_stmt"})
    assert not parser._statements_only({"def_stmt", "lambda"})
    assert not parser._statements_only({"typed_name"})
    assert not parser._statements_only({"named_default", "break_stmt"})


def _generic_run(text: str, limit):
    """parser._run with every reduction through build (a callable that is no bound build)."""
    builder = parser._Builder(text, "<string>")
    try:
        return parser._run(text, lambda rule, kids, extent: builder.build(rule, kids, extent), limit)
    except parser._TooDeep as err:
        return "too deep", err.extent
    except BpSyntaxError as err:
        return "error", err.message, err.span
    except parser._Unexpected as err:
        return "unexpected", err.token.type, err.token.start_pos


def _fast_run(text: str, limit):
    try:
        return parser._run(text, parser._Builder(text, "<string>").build, limit)
    except parser._TooDeep as err:
        return "too deep", err.extent
    except BpSyntaxError as err:
        return "error", err.message, err.span
    except parser._Unexpected as err:
        return "unexpected", err.token.type, err.token.start_pos


NESTED = ["x = " + "(" * 12 + "1" + ")" * 12, "y = " + "-" * 9 + "a", "z = f(g(h(k(1))))[0][1]",
          "w = a + b * c ^ d ^ e - f(x)[y]", "v = [[[[1]]]]", "u = 1 + 2 + 3 + 4 + (5 + 6 + 7)",
          "t = x -> y -> (z -> z)", "s = a.b.c.d(e)'", "def f(x) {\n  return x[x[x[0]]]\n}"]


@pytest.mark.parametrize("text", BIG + NESTED, ids=range(len(BIG) + len(NESTED)))
def test_hot_reductions_make_what_build_makes(text):
    """Values, spans and the depth limit (the extent it is exceeded at) as build's."""
    text = text if text.endswith("\n") else text + "\n"
    for limit in [None, *range(0, 16), 40, 200]:
        fast, generic = _fast_run(text, limit), _generic_run(text, limit)
        assert fast == generic, (text, limit)
        if not isinstance(fast, tuple):
            assert spans(fast) == spans(generic)


@pytest.mark.parametrize("cls", [Span, parser.ast.Name, parser.ast.Num, parser.ast.BinOp,
                                 parser.ast.Unary, parser.ast.Call, parser.ast.Index,
                                 parser.ast.Assign, parser.ast.ExprStmt])
def test_nodes_made_through_their_slots_are_the_class_s(cls):
    args = [object() for _ in cls._fields]
    made, plain = parser._fields_setter(cls)(*args), cls(*args)
    assert type(made) is cls
    assert all(getattr(made, f) is getattr(plain, f) is a for f, a in zip(cls._fields, args))
    assert made == plain and hash(made) == hash(plain)


@pytest.mark.parametrize("pattern, flags, holds", [
    (r"[^\W\d]\w*", 32, False), (r"#[^\n]*", 32, False), (r'"(\\.|[^"\\\n])*"', 32, False),
    (r"a\nb", 0, True), (r".", 0, False), (r"(?s).", 0, True), (r"[\s]", 0, True), (r"\D", 0, True),
    (r"[^a]", 0, True), (r"(\r?\n[\t ]*)+", 32, True), (r"\\[\t \f]*\r?\n", 32, True),
    (r"x|y\n", 0, True), (r"(?=\n)a", 0, True), (r"(?i)a", 0, True), (r"[a-z]+", 0, False),
])
def test_multiline_says_which_regexes_can_match_a_newline(pattern, flags, holds):
    """(True if unsure: a lookahead is.)  Where it says no, no match holds one."""
    assert parser._multiline(pattern, flags) is holds
    if not holds:
        regex = __import__("re").compile(pattern, flags)
        for text in ["a\nb", "\n", "#x\ny", '"a\nb"', "x\n", "\\\n", "ab\n\n"]:
            for start in range(len(text)):
                m = regex.match(text, start)
                assert m is None or "\n" not in m.group(), (pattern, text)


def test_placement_is_checked_wherever_it_can_fail():
    """The rules whose nodes make _check_placement walk are builders of the grammar."""
    builders = {rule[5] for rule in parser.T.RULES}
    assert parser._CONFINED | parser._TOP_LEVEL | parser._BODIES <= builders & parser._METHODS.keys()
    assert not parser._placement_matters({"def_stmt", "binop", "assign"})
    assert not parser._placement_matters({"print_stmt", "if_stmt", "for_stmt"})
    assert parser._placement_matters({"print_stmt", "lambda"})
    assert parser._placement_matters({"break_stmt"})


def test_parse_leaves_the_collector_as_it_found_it():
    assert gc.isenabled()
    parser.parse("x = 1")
    assert gc.isenabled()
    with pytest.raises(BpSyntaxError):
        parser.parse("x = (")
    assert gc.isenabled()
    with pytest.raises(BpSyntaxError):
        parser.parse("x = " + "(" * 50 + "1" + ")" * 50, max_depth=5)
    assert gc.isenabled()
    gc.disable()
    try:
        parser.parse("x = 1")
        assert not gc.isenabled()
    finally:
        gc.enable()


# ── struct: the __init__ of a class's arity against the generic one ──────

@struct.struct
class One:
    a: object


@struct.struct
class Three:
    a: object
    b: object
    c: object


@struct.struct
class Five:
    a: object
    b: object
    c: object
    d: object
    e: object


@struct.struct
class Defaulted:
    a: object
    b: object = 2


@struct.struct
class Six:
    a: object
    b: object
    c: object
    d: object
    e: object
    f: object


def _generic(cls, *args, **kwargs):
    made = object.__new__(cls)
    struct._init(made, *args, **kwargs)
    return made


def _outcome(make):
    try:
        made = make()
    except TypeError as err:
        return "TypeError", str(err)
    return type(made).__name__, tuple(getattr(made, name) for name in made._fields)


@pytest.mark.parametrize("cls", [One, Three, Five, Defaulted, Six, Span])
def test_struct_init_of_an_arity_is_the_generic_init(cls):
    n = len(cls._fields)
    calls = [((), {}), (tuple(range(n)), {}), (tuple(range(n - 1)), {}), (tuple(range(n + 1)), {}),
             ((), dict(zip(cls._fields, range(n)))), (tuple(range(n - 1)), {cls._fields[-1]: 9}),
             (tuple(range(n)), {"zz": 1}), (tuple(range(n)), {cls._fields[0]: 1}),
             ((), {"zz": 1})]
    for args, kwargs in calls:
        assert _outcome(lambda: cls(*args, **kwargs)) == _outcome(lambda: _generic(cls, *args, **kwargs)), \
            (args, kwargs)
    assert (cls.__init__ is struct._init) == (n > 5 or bool(cls._defaults))


# ── the lexer of a state for one character against the state's whole lexer ──

ALPHABET = [chr(i) for i in range(0x180)] + list("é٣ßΩ中\u2028\u00a0\u3000\U0001d7d8")
PIECES = ["else", "then", "and", "or", "on", "to", "if", "in", "not", "bp", "1.5e-3", ".5", "**=",
          "->", "<=", "\"a\\\"b\"", "\\\n", "\r\n  ", "#x\n", "x_1", "2.", "1e", "+=", "--"]


def test_a_lexer_for_one_character_matches_what_the_whole_lexer_matches():
    rng = random.Random(19)
    for index in range(len(parser.T.LEXERS)):
        whole = parser._scanner(index)[0]
        for c in ALPHABET:
            for _ in range(3):
                text = "q" + c + "".join(rng.choice(ALPHABET + PIECES) for _ in range(rng.randint(0, 4)))
                a, b = whole(text, 1), parser._char_lexer(index, c)(text, 1)
                assert (a and (a.lastgroup, a.group())) == (b and (b.lastgroup, b.group())), (index, text)
                kept = parser._CHAR_LEXERS[index][c]       # the driver's: a match, or the terminal
                if isinstance(kept, str):
                    assert a and (a.lastgroup, a.group()) == (kept, c), (index, text)
                else:
                    b = kept(text, 1)
                    assert (a and (a.lastgroup, a.group())) == (b and (b.lastgroup, b.group()))


@pytest.mark.parametrize("pattern, flags", [
    (r"(?=a)b", 0), (r"a?b", 0), (r"(?i)x", 0), (r"x", 2), (r"\bq", 0), (r"(ab|)c", 0),
    (r"[^a]", 0), (r"x*", 0), (r"(a)\1", 0), (r"[a-c\d]+", 0), (r"(?>ab)|c", 0), (r"\W", 0),
    (r".", 0), (r"(?:a|b*)+c", 0), (r"[^\W\d]\w*", 0), (r"\s+", 256),
])
def test_can_start_errs_towards_can(pattern, flags):
    """Wherever the regex matches a string starting with c, _can_start says it can."""
    regex = __import__("re").compile(pattern, flags)
    for c in ALPHABET:
        for rest in ("", "a", "b", "c", "ab", "bc", "x", "1", " ", "\n", "é"):
            if regex.match(c + rest):
                assert parser._can_start(pattern, c, flags), (pattern, c, rest)
