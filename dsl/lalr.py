"""The parser's tables, generated from grammar/bp.lark with Lark.

    python -m dsl.lalr          # rewrite dsl/_grammar_tables.py after editing the grammar

Lark analyses the grammar (LALR(1), contextual lexer); this module reads
what Lark built (the parse table, the rules with their tree-shaping
options, and each parser state's lexer) and writes it out as plain Python
literals.  `dsl/parser.py` drives those tables itself, so running bp never
imports Lark or loads a pickled parser: the tables are the cache, compiled
to bytecode when the package is installed.  `tests/test_parser.py` checks
that the tables match the grammar file and that parsing with them gives
the same trees as Lark's own parser.  (Lark numbers the states in an order
that changes from run to run, so regenerating rewrites most of the file even
when the grammar did not change; the parser is the same.)
"""
from __future__ import annotations

import hashlib
import pprint
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLES = HERE / "_grammar_tables.py"


def grammar_path() -> Path:
    for candidate in (HERE / "grammar" / "bp.lark", HERE.parent / "grammar" / "bp.lark"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("bp.lark not found beside the dsl package")


def grammar_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lark_parser(text: str):
    """Lark's own parser for the grammar (the generator's source, and the
    reference the tests compare against)."""
    from lark import Lark
    return Lark(text, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True, postlex=_AcceptNewlines())


class _AcceptNewlines:
    """Stands in for the postlexer while Lark builds the contextual lexer:
    newlines are accepted in every state (dsl/parser.py decides which ones
    end a statement)."""
    always_accept = ("_NL",)

    def process(self, stream):
        return stream


def tables(text: str) -> dict:
    """Everything the table-driven parser needs, as plain literals."""
    from lark.lexer import PatternStr
    from lark.parsers.lalr_analysis import Shift
    from lark.parse_tree_builder import maybe_create_child_filter

    lk = lark_parser(text)
    frontend = lk.parser
    table = frontend.parser._parse_table
    rules = list(lk.rules)
    rule_index = {id(rule): i for i, rule in enumerate(rules)}

    states = []
    for state in range(len(table.states)):
        row = []
        for symbol, (action, arg) in table.states[state].items():
            row.append(f"{symbol} {arg if action is Shift else ~rule_index[id(arg)]}")
        states.append(" ".join(row))

    shaped = []
    for rule in rules:
        options = rule.options
        child_filter = maybe_create_child_filter(rule.expansion, options.keep_all_tokens, False,
                                                 options.empty_indices)
        include, append_none = None, 0
        if child_filter is not None:
            kind = child_filter.func.__name__
            if kind == "ChildFilterLALR":
                include = tuple(child_filter.args[0])
                append_none = child_filter.args[1]
            else:
                assert kind == "ChildFilterLALR_NoPlaceholders", child_filter
                include = tuple((i, splice, 0) for i, splice in child_filter.args[0])
        shaped.append((str(rule.origin.name), len(rule.expansion), include, append_none,
                       bool(options.expand1 and not rule.alias), str(rule.alias or rule.origin.name)))

    contextual = frontend.lexer.lexer
    lexers, lexer_of_state, seen, terminals = [], [], {}, {}

    def spec(basic) -> int:
        key = id(basic)
        if key not in seen:
            scanner = basic._build_scanner()
            assert len(scanner._mres) == 1, "too many terminals for one regex"
            flags = scanner._mres[0].flags
            for term in scanner.terminals:
                regex = term.pattern.to_regexp()
                assert terminals.setdefault(term.name, regex) == regex, term
            order = tuple(term.name for term in scanner.terminals)
            assert scanner._mres[0].pattern == "|".join(f"(?P<{n}>{terminals[n]})" for n in order)
            unless = {}
            for name, callback in basic.callback.items():
                words = {}
                for term in callback.scanner.terminals:
                    assert isinstance(term.pattern, PatternStr) and not term.pattern.flags, term
                    words[term.pattern.value] = term.name
                unless[name] = words
            seen[key] = len(lexers)
            lexers.append((order, flags, unless))
        return seen[key]

    for state in range(len(table.states)):
        lexer_of_state.append(spec(contextual.lexers[state]))
    root = spec(contextual.root_lexer)
    return {
        "GRAMMAR_SHA256": grammar_digest(text),
        "START": table.start_states["start"],
        "END": table.end_states["start"],
        "STATES": tuple(states),
        "RULES": tuple(shaped),
        "TERMINALS": terminals,
        "LEXERS": tuple(lexers),
        "STATE_LEXER": tuple(lexer_of_state),
        "ROOT_LEXER": root,
        "IGNORE": frozenset(contextual.root_lexer.ignore_types),
        "NEWLINE_TYPES": frozenset(contextual.root_lexer.newline_types),
    }


HEADER = '''"""Generated by `python -m dsl.lalr` from grammar/bp.lark: do not edit.

The LALR(1) tables and per-state lexers that dsl/parser.py drives.  STATES
gives each parser state's actions as text, "symbol action …" (decoded when
the state is first reached: a dict literal per state would make this file
slow to compile where bytecode is not cached): n >= 0 shifts to (or, for a
rule name, goes to) state n; ~r, written -r-1, reduces by RULES[r].  A rule is (name,
length, children kept (index, splice, Nones before) or None for all,
Nones after, inline a single child, builder name).  TERMINALS gives each
terminal's regex; LEXERS are (terminals in matching order, regex flags,
{terminal: {word: keyword terminal}}), one per distinct set of terminals
a state accepts.
"""
'''


def render(data: dict) -> str:
    parts = [HEADER]
    for name, value in data.items():
        if isinstance(value, frozenset):
            value = sorted(value)
            parts.append(f"{name} = frozenset({pprint.pformat(value, width=100)})\n")
        else:
            parts.append(f"{name} = {pprint.pformat(value, width=100, sort_dicts=False)}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    text = grammar_path().read_text(encoding="utf-8")
    TABLES.write_text(render(tables(text)), encoding="utf-8")
    print(f"wrote {TABLES}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
