"""The parser's tables (dsl/_grammar_tables.py) against the grammar and Lark.

bp parses with its own LALR(1) driver over tables that `python -m dsl.lalr`
generates from grammar/bp.lark.  These tests check that the tables were
generated from the grammar as it is now, and that the driver gives the
same AST, spans included, as Lark's own LALR parser given the same
newline rules, on every bp program in the repository and the conformance
suite, and on generated ones.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from dsl import _grammar_tables as T
from dsl import lalr, parser
from dsl.errors import BpSyntaxError, Span

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"     # beside the clone, in CI; not in a bare clone
OWN = sorted([*ROOT.glob("tests/golden/**/*.bp"), *ROOT.glob("examples/*.bp"),
              *ROOT.glob("benchmarks/**/*.bp")])
CORPUS = OWN + sorted(CONFORMANCE.glob("*.bp"))


def test_tables_were_generated_from_this_grammar():
    text = lalr.grammar_path().read_text(encoding="utf-8")
    assert T.GRAMMAR_SHA256 == lalr.grammar_digest(text), \
        "grammar/bp.lark changed: run `python -m dsl.lalr` to regenerate dsl/_grammar_tables.py"


def test_tables_are_what_lark_builds_now():
    """Regenerating gives the same tables (holds while Lark's analysis is unchanged)."""
    text = lalr.grammar_path().read_text(encoding="utf-8")
    fresh = lalr.tables(text)
    assert fresh["RULES"] == T.RULES
    assert fresh["TERMINALS"] == T.TERMINALS
    assert len(fresh["STATES"]) == len(T.STATES)


class _LarkNewlines:
    """The driver's newline rules as a Lark postlexer."""
    always_accept = ("_NL",)

    def __init__(self):
        self.text = ""

    def process(self, stream):
        keep = parser._Newlines(self.text)
        for tok in stream:
            if keep.keep(tok):
                yield tok


_LARK = None


def lark_ast(text: str):
    """The AST from Lark's parser: its tree, built bottom-up with the same reductions."""
    global _LARK
    from lark import Tree
    if _LARK is None:
        post = _LarkNewlines()
        from lark import Lark
        lk = Lark(lalr.grammar_path().read_text(encoding="utf-8"), parser="lalr",
                  lexer="contextual", propagate_positions=True, maybe_placeholders=True,
                  postlex=post)
        _LARK = (lk, post)
    lk, post = _LARK
    if not text.endswith("\n"):
        text += "\n"
    post.text = text
    tree = lk.parse(text)
    builder = parser._Builder(text, "<string>")
    done: dict[int, object] = {}
    stack = [tree]
    while stack:
        node = stack[-1]
        pending = [c for c in node.children if isinstance(c, Tree) and id(c) not in done]
        if pending:
            stack.extend(reversed(pending))
            continue
        stack.pop()
        kids = [done.pop(id(c)) if isinstance(c, Tree) else token(c) for c in node.children]
        meta = node.meta
        extent = None if meta.empty else (meta.line, meta.column, meta.end_line, meta.end_column)
        done[id(node)] = builder.build(node.data, kids, extent)
    return done[id(tree)]


def token(tok):
    """A Lark token as the driver's Token (None stays None: a placeholder)."""
    if tok is None:
        return None
    return parser.Token(tok.type, str(tok), tok.start_pos, tok.line, tok.column,
                        tok.end_line, tok.end_column)


def spans(node) -> list:
    """Every node's type, fields and span, in order: equality with spans."""
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if isinstance(x, tuple):
            stack.extend(reversed(x))
        elif hasattr(x, "_fields") and not isinstance(x, Span):
            out.append((type(x).__name__, x.span))
            stack.extend(reversed([getattr(x, f) for f in x._fields if f != "span"]))
        else:
            out.append(x)
    return out


def same_parse(text: str) -> None:
    text = text if text.endswith("\n") else text + "\n"
    try:           # the driver alone: parse() also checks where statements may appear
        ours = parser._run(text, parser._Builder(text, "<string>").build)
    except (BpSyntaxError, parser._BadCharacter, parser._Unexpected):
        ours = None
    try:
        theirs = lark_ast(text)
    except BpSyntaxError:        # a check of the builder's (e.g. a repeated parameter)
        theirs = None
    except Exception:            # Lark's parse errors
        theirs = None
    if ours is None or theirs is None:
        assert ours is None and theirs is None, text
        return
    assert ours == theirs
    assert spans(ours) == spans(theirs)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_same_ast_as_lark(path):
    same_parse(path.read_text(encoding="utf-8"))


def test_corpus_is_not_empty():
    assert len(OWN) > 100


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason=f"the conformance suite is not beside this "
                    f"clone (no {CONFORMANCE}); CI has it, in shared/")
def test_corpus_holds_the_conformance_programs():
    assert len(CORPUS) - len(OWN) >= 40


SNIPPETS = [
    "x = 1 +\n 2", "f = (a, b) -> a * b", "def g(x: [2, 3]) { y = x'\n return y }",
    "y = if a then b else c", "z = {a: 1,\n b: [1, 2,\n 3]}", "print x[1:, ::2, 0]",
    "for i in range(3) {\n print i\n}", "if x > 1 {\n print 1\n}\nelse {\n print 2\n}",
    "h = x -> { t = x^2\n return t }", "graph grad(f) to \"g.dot\"", "plot f, g on [0, 1] to \"a.png\"",
    "x = -a ** -b", "x = not a and b or c", "x = a < b", "x = f(a, b=2,)", "x = ()", "x = (1,)",
    "x = [\n]", "x = {}", "x = 1 +", "x = (1", "print )", "x = $", "def f(x, x) = x",
    "f(a=1, 2)", "x = a.b.c(1)[2]'", "import \"m.bp\"", "export f to \"f.py\"", "assert x == 1",
    "x = 1; y = 2", "x = 1 \\\n + 2", "# only a comment", "", "x = \"a\\\"b\"", "x = \"open",
    # SPEC §13: tuple binding, updates, augmented assignment, defaults, %
    "a, b = 1, 2", "a, b = f(x)", "a, b = b, a", "x[1, :] = v", "x[i : i + 2] -= v", "x += 1",
    "x **= 2", "x[0] %= 3", "x @= W", "def f(x, lr=0.1) = x * lr", "def f(x: [3] = 1, y=2) { return x }",
    "g = (x, lr=0.1) -> x", "g = (x: [2] = 3) -> x", "y = a % b * c", "def f(x=1, y) = x",
    "f(x)[0] = 1", "a, b[0] = 1, 2", "x = (lr=2)", "x +=\n 1", "x[[0, 2]] = [1, 2]",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_same_ast_as_lark_on_snippets(text):
    same_parse(text)


TOKENS = ["x", "f", "1", "2.5", "+", "-", "*", "^", "(", ")", "[", "]", "{", "}", ",", ":",
          "->", "=", "'", ".", "if", "then", "else", "def", "return", "for", "in", "print",
          "\n", ";", "<", "and", "not", "\"s\"", "a", "b", "+=", "%", "[0]"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_same_ast_as_lark_on_token_soup(tokens):
    same_parse(" ".join(tokens))


@pytest.mark.parametrize("text, complete", [
    ("x = (1", False), ("x = 1", True), ("x = 1 +", False), ("def f(x) {", False),
    ("y = [1,", False), ("print )", True), ("x = $", True),
])
def test_is_complete(text, complete):
    assert parser.is_complete(text) is complete
