"""A Pygments lexer for bp, registered as the `bp` plugin (pyproject.toml).

The keyword, builtin, transform and constant lists come from the engine
(the grammar's keywords, the op registry, the transforms), never from a
list written here, so a new builtin is highlighted without touching this
file.  Used by the REPL's input line, its values and its error excerpts,
and by `pygmentize -l bp`.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String,
                            Whitespace)

from . import introspect

_NAME = r"[^\W\d]\w*"


class BpLexer(RegexLexer):
    name = "bp"
    # Pygments ≥ 2.18 has a builtin lexer (Soong, for Android.bp files) with the
    # alias "bp", and builtins win an alias lookup: `pygmentize -l bp-lang`, or
    # no -l at all (`*.bp` files find this plugin by name), picks this one.
    aliases = ["bp-lang", "bplang", "bp"]
    filenames = ["*.bp"]
    mimetypes = ["text/x-bp"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"(\\.|[^"\\\n])*"', String.Double),
            (r"^:\w+", Keyword.Pseudo),                        # a REPL command
            (r"(\bdef)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Function)),
            (words(introspect.keywords(), prefix=r"\b", suffix=r"\b"), Keyword),
            (words(introspect.transforms(), prefix=r"\b", suffix=r"\b"), Name.Builtin.Pseudo),
            (words(tuple(introspect.builtins()), prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(introspect.constants(), prefix=r"\b", suffix=r"\b"), Name.Constant),
            (r"(\.)(" + _NAME + ")", bygroups(Punctuation, Name.Attribute)),
            (r"(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", Number.Float),
            (_NAME, Name),
            (r"->|\*\*|<=|>=|==|!=|[-+*/@^<>=']", Operator),
            (r"[()\[\]{},;:]", Punctuation),
            (r".", Name),                                      # anything else, unhighlighted
        ],
    }
