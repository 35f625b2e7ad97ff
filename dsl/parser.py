"""Text → AST, with bp's own LALR(1) driver.

The grammar (grammar/bp.lark) is analysed by Lark — LALR(1) with the
contextual lexer — ahead of time: `python -m dsl.lalr` writes the parse
table, the rules' tree shapes and each state's lexer to
dsl/_grammar_tables.py, which is the cache, compiled to bytecode when the
package is installed.  So parsing never imports Lark.  This module drives
those tables: a lexer that matches only the terminals the current state
accepts, a filter that decides which newlines end a statement, and a
shift-reduce loop whose reductions build the AST directly.  The loop keeps
its own stacks, so deeply nested source never meets Python's recursion
limit.  Errors become BpSyntaxError with a human sentence.
"""
from __future__ import annotations

import gc
import re

from . import _grammar_tables as T
from . import ast
from .errors import BpSyntaxError, Span


class Token:
    """A terminal: its type (a grammar terminal name), text and position
    (1-based lines and columns; the end is just past the last character)."""
    __slots__ = ("type", "value", "start_pos", "line", "column", "end_line", "end_column")

    def __init__(self, type_, value, start_pos, line, column, end_line, end_column):
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"


class _BadCharacter(Exception):
    def __init__(self, pos: int, line: int, column: int):
        self.pos, self.line, self.column = pos, line, column


class _Unexpected(Exception):
    def __init__(self, token: Token, expected):
        self.token, self.expected = token, expected


# A newline after one of these continues the statement (SPEC §2).
# x += v and the other augmented assignments: one terminal each
_AUGMENTED = {"PLUSEQUAL", "MINEQUAL", "STAREQUAL", "SLASHEQUAL", "PERCENTEQUAL", "ATEQUAL",
              "CARETEQUAL", "POWEQUAL"}
_CONTINUES = {"ADD_OP", "MUL_OP", "POW_OP", "COMP_OP", "AND", "OR", "NOT", "COMMA",
              "ARROW", "EQUAL", "THEN", "ELSE", "COLON"} | _AUGMENTED
_OPENERS = {"LPAR": "(", "LSQB": "[", "LBRACE": "{"}
_CLOSERS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}
_BINARY = {"ADD_OP", "MUL_OP", "POW_OP", "COMP_OP", "AND", "OR", "ARROW", "EQUAL"} | _AUGMENTED

_SKIP = r"(?:\s|#[^\n]*+)*+"     # possessive: no backtracking into a comment
_ELSE_AHEAD = re.compile(_SKIP + r"else\b")
_FIELD_AHEAD = re.compile(_SKIP + r"[^\W\d]\w*[\t ]*:")

_SCANNERS: dict[int, tuple] = {}


def _scanner(index: int):
    """The compiled lexer of LEXERS[index], built the first time a state needs it."""
    found = _SCANNERS.get(index)
    if found is None:
        order, flags, unless = T.LEXERS[index]
        regex = re.compile("|".join(f"(?P<{n}>{T.TERMINALS[n]})" for n in order), flags)
        found = _SCANNERS[index] = (regex.match, unless)
    return found


# A lexer tries its terminals in order, and Python's re tries each alternative in
# turn: matching "(" with a state's whole lexer cost 0.3-1 us, with the one or two
# terminals that can start with "(" 0.1 us.  So the driver's lexer of a state is,
# for each character it meets there, the sub-lexer of the terminals whose match can
# start with that character, in the same order: the same first match, as the others
# cannot match there.  Which can start with a character is read off the regex's
# syntax tree (re._parser, as Lark and Hypothesis read it), erring towards "can"
# wherever the tree holds something not followed here.

_CATEGORIES = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
               "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W"}


def _in_class(items, c: str, flags: int) -> bool:
    """Whether c is in a character class [...] of the syntax tree (True if unsure)."""
    negate = found = False
    for kind, value in items:
        kind = str(kind)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            found = found or chr(value) == c
        elif kind == "RANGE":
            found = found or value[0] <= ord(c) <= value[1]
        elif kind == "CATEGORY" and str(value) in _CATEGORIES:
            found = found or re.match(_CATEGORIES[str(value)], c, flags) is not None
        else:
            return True
    return found != negate


def _first(items, c: str, flags: int) -> tuple[bool, bool]:
    """Whether a match of a sequence of the syntax tree can start with c, and
    whether it can be empty (so that what follows may start the match)."""
    for op, value in items:
        op = str(op)
        if op == "LITERAL":
            can, empty = chr(value) == c, False
        elif op == "NOT_LITERAL":
            can, empty = chr(value) != c, False
        elif op == "IN":
            can, empty = _in_class(value, c, flags), False
        elif op == "SUBPATTERN" and not value[1] & re.IGNORECASE:
            can, empty = _first(value[-1], c, flags)
        elif op == "ATOMIC_GROUP":
            can, empty = _first(value, c, flags)
        elif op == "BRANCH":
            can = empty = False
            for branch in value[1]:
                branch_can, branch_empty = _first(branch, c, flags)
                can, empty = can or branch_can, empty or branch_empty
        elif op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            can, empty = _first(value[2], c, flags)
            empty = empty or value[0] == 0
        elif op in ("AT", "ASSERT", "ASSERT_NOT"):
            can, empty = False, True       # zero width: the match starts with what follows
        else:
            return True, True
        if can:
            return True, empty
        if not empty:
            return False, False
    return False, True


_TREES: dict[tuple[str, int], object] = {}
_STARTS: dict[tuple[str, str, int], bool] = {}


def _can_start(pattern: str, c: str, flags: int) -> bool:
    """Whether a match of the regex can start with the character c (True if unsure)."""
    found = _STARTS.get((pattern, c, flags))
    if found is None:
        if flags & re.IGNORECASE:
            found = True
        else:
            try:
                tree = _TREES.get((pattern, flags))
                if tree is None:
                    from re import _parser
                    tree = _TREES[pattern, flags] = _parser.parse(pattern, flags)
                if tree.state.flags & re.IGNORECASE:       # (?i) at the start
                    found = True
                else:
                    can, empty = _first(tree, c, flags)
                    found = can or empty
            except Exception:          # a syntax this does not know
                found = True
        _STARTS[pattern, c, flags] = found
    return found


_SUBLEXERS: dict[tuple, object] = {}


def _char_lexer(index: int, c: str):
    """The match of the sub-lexer of LEXERS[index] for a token starting with c."""
    order, flags, unless = T.LEXERS[index]
    names = tuple(n for n in order if _can_start(T.TERMINALS[n], c, flags))
    match = _SUBLEXERS.get((names, flags))
    if match is None:              # no terminal can start with c: (?!) fails, as the whole lexer
        match = re.compile("|".join(f"(?P<{n}>{T.TERMINALS[n]})" for n in names) or "(?!)",
                           flags).match
        _SUBLEXERS[names, flags] = match
    # One terminal that is this one character ("(", ",", …): the driver's lexer
    # keeps its name, and knows the token without matching.
    single = len(names) == 1 and T.TERMINALS[names[0]] in (c, re.escape(c)) \
        and not flags & re.IGNORECASE and names[0] not in unless
    _CHAR_LEXERS[index][c] = names[0] if single else match
    return match


_CHAR_LEXERS: list[dict[str, object]] = [{} for _ in T.LEXERS]


class _Lexer:
    """Tokens of `text`, one at a time, each lexed with the lexer of the
    parser state that asks for it (the contextual lexer)."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0

    def next(self, lexer: int) -> Token | None:
        """The next token, None at the end; _BadCharacter where no terminal matches."""
        text, n = self.text, len(self.text)
        match, unless = _scanner(lexer)
        while self.pos < n:
            m = match(text, self.pos)
            if m is None:
                raise _BadCharacter(self.pos, self.line, self.pos - self.line_start + 1)
            kind, value = m.lastgroup, m.group()
            start, line, column = self.pos, self.line, self.pos - self.line_start + 1
            self.pos += len(value)
            if kind in T.NEWLINE_TYPES:
                newlines = value.count("\n")
                if newlines:
                    self.line += newlines
                    self.line_start = start + value.rindex("\n") + 1
            if kind in T.IGNORE:
                continue
            if kind in unless:
                kind = unless[kind].get(value, kind)
            return Token(kind, value, start, line, column, self.line, self.pos - self.line_start + 1)
        return None


class _Newlines:
    """Decides which newlines end a statement.

    Inside ( ) and [ ] and a record's { } newlines are ignored; a block's
    { } keeps them, and so does the top level, except after an operator or
    `,` (SPEC §2).  A `{` opens a record when `NAME :` follows, and a
    newline before `else` is dropped: both look ahead in the raw text.
    """

    def __init__(self, text: str):
        self.text = text
        self.stack: list[str] = []          # "LPAR", "LSQB", "rec", "blk"
        self.prev: str | None = None        # the type of the last token kept

    def keep(self, tok: Token) -> bool:
        if tok.type in _LAYOUT and not self.kept(tok.type, tok.start_pos + len(tok.value), self.prev):
            return False
        self.prev = tok.type
        return True

    def kept(self, kind: str, end: int, prev: str | None) -> bool:
        """keep() for a newline or bracket ending at `end`, after a token of type `prev`."""
        stack = self.stack
        if kind == "_NL":
            if (stack and stack[-1] != "blk") or prev in _CONTINUES:
                return False
            if _ELSE_AHEAD.match(self.text, end):
                return False
        elif kind in ("LPAR", "LSQB"):
            stack.append(kind)
        elif kind == "LBRACE":
            stack.append("rec" if _FIELD_AHEAD.match(self.text, end) else "blk")
        elif stack:
            stack.pop()
        return True


_LAYOUT = frozenset({"_NL", "LPAR", "LSQB", "LBRACE", *_CLOSERS})      # what keep() looks at
_BLANK = T.IGNORE - T.NEWLINE_TYPES         # ignored, and holding no newline: spaces, tabs


def _tokens(text: str, upto: int) -> list[Token]:
    """The statement-level tokens before position `upto` (every terminal
    allowed, as if no parser state restricted them), for error messages."""
    lexer, newlines, out = _Lexer(text), _Newlines(text), []
    try:
        while (tok := lexer.next(T.ROOT_LEXER)) is not None and tok.start_pos < upto:
            if newlines.keep(tok):
                out.append(tok)
    except _BadCharacter:
        pass
    return out


_ROWS: list[dict[str, int] | None] = [None] * len(T.STATES)


def _row(state: int) -> dict[str, int]:
    """The actions of a parser state: symbol → next state, or ~rule to reduce by."""
    row = _ROWS[state]
    if row is None:
        words = T.STATES[state].split()
        row = _ROWS[state] = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return row


def _expected(state: int) -> set[str]:
    return {symbol for symbol in _row(state) if symbol.isupper()}


def _is_unit(rule: tuple) -> bool:
    """A rule of one symbol that passes its value on (sum: product): reducing by it
    changes only the state; the value, its extent, depth and kind stay."""
    name, size, include, append_none, inline_one, builder = rule
    return inline_one and size == 1 and include is None and not append_none


_UNIT = [_is_unit(rule) for rule in T.RULES]
_AFTER: dict[tuple[int, int, str], int] = {}


def _after(below: int, rule: int, kind: str) -> int:
    """The state that reducing by RULES[rule] leads to, over state `below` with
    lookahead `kind`: the goto, then the goto of each unit rule the table asks
    for next (a precedence chain, atom to expression), up to the end state."""
    state = _row(below)[T.RULES[rule][0]]
    while not (kind == "$END" and state == T.END):
        action = _row(state).get(kind)
        if action is None or action >= 0 or not _UNIT[~action]:
            break
        state = _row(below)[T.RULES[~action][0]]
    _AFTER[below, rule, kind] = state
    return state


# Each lexer's keywords ({terminal: {word: keyword terminal}})
_UNLESS = [unless for order, flags, unless in T.LEXERS]


def _unexpected_character(text: str, err: _BadCharacter, state: int) -> Exception:
    """The error where no terminal `state` accepts matches: if some other terminal
    does, the token is unexpected; else the character is."""
    try:
        probe = _Lexer(text)
        probe.pos, probe.line, probe.line_start = err.pos, err.line, err.pos - err.column + 1
        tok = probe.next(T.ROOT_LEXER)
    except _BadCharacter:
        return err
    return _Unexpected(tok, _expected(state))


def _run(text: str, build, max_depth: int | None = None):
    """Parse `text`: shift tokens, and at each reduction call
    build(rule name, children, extent) for the rule's value.  An extent is
    (line, column, end line, end column, …): a tuple whose first four items
    are those, or None for a rule that matched nothing.  Raises _BadCharacter
    or _Unexpected.

    The lexer (_Lexer.next) and the newline filter (_Newlines.keep) are
    written into the loop, a token costing a few dictionary look-ups.  Beside
    the values the loop keeps one stack of entries, one per value: (line,
    column, end line, end column, depth, kind, state), where kind is the rule
    that made the value (None: a splice) and state the parser state after it;
    a token's value is its text, and its entry (line, column, end line, end
    column, 0, its type, state, start): what its Token is made of, where a
    rule keeps the token itself (_tokens_made).  Each rule reduces by its own function (_reducer): the generic
    reduction with the rule's shape read once, or, for the rules most
    reductions are by, a specialised one (and, where `build` is a _Builder's,
    one that makes the node itself, as build would)."""
    if getattr(build, "__func__", None) is _Builder.build and type(build.__self__) is _Builder:
        ctx, reducers, make = _Context(build, max_depth, build.__self__.filename), _FAST, _fast_reducer
    else:
        ctx, reducers, make = _Context(build, max_depth, None), _GENERIC, _generic_reducer
    rows, state_info = _ROWS, _STATE_INFO
    end_state = T.END
    multiline, ignore, layout, blank = _MULTILINE, T.IGNORE, _LAYOUT, _BLANK
    state = T.START
    stack: list[tuple] = [(None, None, None, None, 0, None, state)]
    values: list = []
    n, pos, line, line_start = len(text), 0, 1, 0
    newlines = _Newlines(text)
    kept, prev, brackets, closers = newlines.kept, None, newlines.stack, _CLOSERS
    while True:
        lexer, by_char, unless, special, spaces = state_info[state] or _state_info(state)
        while True:                    # the next token this state's lexer matches
            if pos >= n:
                kind = None
                break
            c = text[pos]
            if c == " " and spaces:    # a space: only ever part of an ignored blank
                pos += 1
                continue
            match = by_char.get(c)
            if match is None:
                _char_lexer(lexer, c)
                match = by_char[c]
            if type(match) is str:     # the terminal that is this character
                kind, value = match, c
            else:
                m = match(text, pos)
                if m is None:
                    raise _unexpected_character(
                        text, _BadCharacter(pos, line, pos - line_start + 1), state) from None
                kind = m.lastgroup
                value = m.group()
            if kind not in special:    # no newline in it, kept, no keyword, no bracket
                start, start_line, column = pos, line, pos - line_start + 1
                pos += len(value)
            else:
                if kind in blank:      # spaces and tabs
                    pos += len(value)
                    continue
                at, at_line, at_column = pos, line, pos - line_start + 1
                pos += len(value)
                if kind in multiline:
                    newline_count = value.count("\n")
                    if newline_count:
                        line += newline_count
                        line_start = at + value.rindex("\n") + 1
                if kind in ignore:
                    continue
                if kind in unless:
                    kind = unless[kind].get(value, kind)
                if kind in layout:     # _Newlines.kept, its brackets written in
                    if kind == "LPAR" or kind == "LSQB":
                        brackets.append(kind)
                    elif kind in closers:
                        if brackets:
                            brackets.pop()
                    elif not kept(kind, pos, prev):
                        continue
                start, start_line, column = at, at_line, at_column
            prev = kind
            end_line, end_column = line, pos - line_start + 1
            break
        is_end = kind is None
        if is_end:
            kind = "$END"
            tok = _end_token(None if prev is None else (start, start_line, column, end_line, end_column))
            value, start, start_line, column, end_line, end_column = "", tok.start_pos, tok.line, \
                tok.column, tok.end_line, tok.end_column
        while True:                    # reduce as long as the table says, then shift
            action = (rows[state] or _row(state)).get(kind)
            if action is None:
                raise _Unexpected(Token(kind, value, start, start_line, column, end_line, end_column),
                                  _expected(state))
            if action >= 0:
                state = action
                stack.append((start_line, column, end_line, end_column, 0, kind, state, start))
                values.append(value)
                break
            state = (reducers[~action] or make(~action))(stack, values, kind, ctx)
            if is_end and state == end_state:
                return values[-1]


def _multiline(pattern: str, flags: int) -> bool:
    """Whether a match of the regex can hold a newline (True if unsure)."""
    from re import _parser
    try:
        tree = _parser.parse(pattern, flags)
    except Exception:
        return True
    return bool(tree.state.flags & re.IGNORECASE) or _holds(tree, "\n", tree.state.flags)


def _holds(items, c: str, flags: int) -> bool:
    """Whether a match of a sequence of the syntax tree can hold c (True if unsure)."""
    for op, value in items:
        op = str(op)
        if op == "LITERAL":
            found = chr(value) == c
        elif op == "NOT_LITERAL":
            found = chr(value) != c
        elif op == "IN":
            found = _in_class(value, c, flags)
        elif op == "ANY":
            found = c != "\n" or bool(flags & re.DOTALL)
        elif op == "SUBPATTERN" and not value[1] & re.IGNORECASE:
            found = _holds(value[-1], c, flags)
        elif op == "ATOMIC_GROUP":
            found = _holds(value, c, flags)
        elif op == "BRANCH":
            found = any(_holds(branch, c, flags) for branch in value[1])
        elif op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            found = _holds(value[2], c, flags)
        elif op == "AT":
            found = False
        else:
            return True
        if found:
            return True
    return False


# Lark's newline types, less those whose regex cannot match a newline (a name):
# the driver counts the newlines of these tokens only.
_MULTILINE = frozenset(kind for kind in T.NEWLINE_TYPES
                       if kind not in T.TERMINALS
                       or any(_multiline(T.TERMINALS[kind], flags)
                              for flags in {flags for _, flags, _ in T.LEXERS}))

# Per lexer, the terminals its tokens need more than the plain path for: spaces,
# newlines, ignored, keywords, brackets (made the first time a state needs it).
_SPECIAL: list = [None] * len(T.LEXERS)


def _special(index: int) -> frozenset:
    order, flags, unless = T.LEXERS[index]
    found = _SPECIAL[index] = frozenset(_BLANK | _MULTILINE | T.IGNORE | set(unless) | _LAYOUT)
    return found


_STATE_INFO: list = [None] * len(T.STATES)


def _state_info(state: int) -> tuple:
    """What the driver's lexer reads for a state: its lexer's index, sub-lexers by
    character, keywords and special terminals (_special), and whether a space can
    start only an ignored blank there (so that it is skipped a character at a
    time, as the blank's match would skip it: a blank does nothing else)."""
    lexer = T.STATE_LEXER[state]
    order, flags, unless = T.LEXERS[lexer]
    starting = {n for n in order if _can_start(T.TERMINALS[n], " ", flags)}
    found = _STATE_INFO[state] = (lexer, _CHAR_LEXERS[lexer], _UNLESS[lexer],
                                  _SPECIAL[lexer] or _special(lexer),
                                  bool(starting) and starting <= _BLANK)
    return found


def _end_token(last) -> Token:
    """The $END token: where the last token kept is (1:1 in an empty text)."""
    if last is None:
        return Token("$END", "", 0, 1, 1, 1, 1)
    return Token("$END", "", *last)


class _Context:
    """What a run's reductions read: the builder, the depth limit, and the file
    name spans carry (None: the generic reductions, which call build)."""
    __slots__ = ("build", "limit", "file")

    def __init__(self, build, limit, file):
        self.build, self.limit, self.file = build, limit, file


# The reduction of each rule, made the first time a run reduces by it: _GENERIC's
# call build, _FAST's (a _Builder's build) make the hot rules' nodes themselves.
_GENERIC: list = [None] * len(T.RULES)
_FAST: list = [None] * len(T.RULES)


def _goto(below: int, rule: int, kind: str) -> int:
    state = _AFTER.get((below, rule, kind))
    return _after(below, rule, kind) if state is None else state


def _generic_reducer(rule: int):
    """The reduction by RULES[rule]: pop its children, shape them as Lark's tree
    builder would (kept, spliced, inlined, Nones for [x]), and push the value
    with its extent, depth, kind and the state after it."""
    found = _GENERIC[rule] = _splice_reducer(rule) or _reduce_any(rule)
    return found


def _fast_reducer(rule: int):
    found = _FAST[rule] = _splice_reducer(rule) or _build_reducer(rule) or _reduce_any(rule)
    return found


def _reduce_any(rule: int):
    name, size, include, append_none, inline_one, builder = T.RULES[rule]
    after, unit_after = _AFTER, _after
    grows = bool(include and include[0][1] and include[0][0] == 0 and not include[0][2])
    rest_include = include[1:] if grows else include
    splices = name[0] == "_"

    def reduce(stack, values, kind, ctx):
        if size:
            children = values[-size:]
            first, end = stack[-size], stack[-1]
            if size == 1:
                rest_depth = 0
            elif size == 2:
                rest_depth = end[4]
            elif size == 3:
                middle = stack[-2][4]
                rest_depth = middle if middle > end[4] else end[4]
            else:
                rest_depth = max([entry[4] for entry in stack[1 - size:]])
            if first[0] is None or end[0] is None:
                first, end = _ends(stack[-size:])
            _tokens_made(children, stack, size)
            del stack[-size:], values[-size:]
            first_depth, first_kind = first[4], first[5]
        else:
            children, first, end, first_depth, rest_depth, first_kind = [], None, None, 0, 0, None
        if include is not None:
            kept_children: list = []
            parts = include
            if grows and type(children[0]) is list:
                # A left-recursive repetition (statements, arguments) grows its
                # own list in place: the list is only on the value stack, and a
                # copy per item made a block of n lines cost n².
                kept_children, parts = children[0], rest_include
            for i, splice, nones in parts:
                if nones:
                    kept_children += [None] * nones
                if splice:
                    kept_children += children[i]
                else:
                    kept_children.append(children[i])
            if append_none:
                kept_children += [None] * append_none
            children = kept_children
        built = False
        depth = first_depth if first_depth > rest_depth else rest_depth     # the deepest child
        if inline_one and len(children) == 1:
            value = children[0]
            made = first_kind
        elif splices:
            value = children       # spliced into the rule that uses it
            made = None
        else:
            built, made = True, name
            # A left-recursive rule continuing its own chain (a + b + c: sum over sum)
            # is not nesting: a flat sum of 2,000 terms reads as flat.  Its other
            # operands nest one level down.
            if first_kind == name:
                depth = first_depth if first_depth > rest_depth else rest_depth + 1
            else:
                depth += 1
        below = stack[-1][6]
        state = after.get((below, rule, kind))
        if state is None:
            state = unit_after(below, rule, kind)
        if first is None or first[0] is None:
            entry = (None, None, None, None, depth, made, state)
            extent = None
        else:
            entry = extent = (first[0], first[1], end[2], end[3], depth, made, state)
        if built:
            limit = ctx.limit
            if limit is not None and depth > limit:
                raise _TooDeep(extent and extent[:4])
            value = ctx.build(builder, children, extent)
        stack.append(entry)
        values.append(value)
        return state

    return reduce


def _tokens_made(children: list, stack: list, size: int) -> None:
    """The children of a reduction with each token's text made its Token."""
    for i in range(-size, 0):
        entry = stack[i]
        if len(entry) == 8:
            children[i] = Token(entry[5], children[i], entry[7], entry[0], entry[1], entry[2],
                                entry[3])


def _splice_reducer(rule: int):
    """The reductions of the rules that only pass lists on (a statement, a line,
    a separator, a repetition), specialised; None for the others.  As
    _reduce_any reduces them: a splice's kind is None, its depth its deepest
    child's."""
    name, size, include, append_none, inline_one, builder = T.RULES[rule]
    if name[0] != "_" or append_none or inline_one:
        return None
    after, unit_after = _AFTER, _after
    if size == 1 and include is None:            # _stmt: [child]; a separator [SEMI]
        def reduce(stack, values, kind, ctx):
            e = stack[-1]
            below = stack[-2][6]
            state = after.get((below, rule, kind))
            if state is None:
                state = unit_after(below, rule, kind)
            if len(e) == 8:
                values[-1] = [Token(e[5], values[-1], e[7], e[0], e[1], e[2], e[3])]
            else:
                values[-1] = [values[-1]]
            stack[-1] = (e[0], e[1], e[2], e[3], e[4], None, state)
            return state
        return reduce
    if size == 1 and include == ():              # a separator kept as nothing
        def reduce(stack, values, kind, ctx):
            e = stack[-1]
            below = stack[-2][6]
            state = after.get((below, rule, kind))
            if state is None:
                state = unit_after(below, rule, kind)
            values[-1] = []
            stack[-1] = (e[0], e[1], e[2], e[3], e[4], None, state)
            return state
        return reduce
    if size == 1 and include == ((0, True, 0),):     # _line: its statement's list
        def reduce(stack, values, kind, ctx):
            e = stack[-1]
            below = stack[-2][6]
            state = after.get((below, rule, kind))
            if state is None:
                state = unit_after(below, rule, kind)
            if type(values[-1]) is not list:
                values[-1] = list(values[-1])
            stack[-1] = (e[0], e[1], e[2], e[3], e[4], None, state)
            return state
        return reduce
    if size in (2, 3) and include == tuple((i, True, 0) for i in range(size)):
        # a repetition of spliced items (the statements): the first list grows
        def reduce(stack, values, kind, ctx):
            first = stack[-size]
            end = stack[-1]
            grown = values[-size]
            if type(grown) is not list:
                grown = list(grown)
            if size == 2:
                rest_depth = end[4]
                grown += values[-1]
            else:
                middle = stack[-2][4]
                rest_depth = middle if middle > end[4] else end[4]
                grown += values[-2]
                grown += values[-1]
            if first[0] is None or end[0] is None:
                first, end = _ends(stack[-size:])
            depth = first[4] if first[4] > rest_depth else rest_depth
            del stack[1 - size:], values[1 - size:]
            below = stack[-2][6]
            state = after.get((below, rule, kind))
            if state is None:
                state = unit_after(below, rule, kind)
            values[-1] = grown
            if first[0] is None:
                stack[-1] = (None, None, None, None, depth, None, state)
            else:
                stack[-1] = (first[0], first[1], end[2], end[3], depth, None, state)
            return state
        return reduce
    return None


def _ends(entries: list) -> tuple:
    """The first and the last of a rule's children that have an extent (None, None
    if none has), for a rule with an empty child at one end; the first child's
    depth and kind stay the first child's."""
    first = next((e for e in entries if e[0] is not None), None)
    if first is None:
        return (None, None, None, None, entries[0][4], entries[0][5]), None
    end = next(e for e in reversed(entries) if e[0] is not None)
    return (first[0], first[1], None, None, entries[0][4], entries[0][5]), end


class _TooDeep(Exception):
    def __init__(self, extent):
        self.extent = extent


def _open_brackets(tokens: list[Token]) -> list[Token]:
    stack: list[Token] = []
    for tok in tokens:
        if tok.type in _OPENERS:
            stack.append(tok)
        elif tok.type in _CLOSERS and stack and stack[-1].type == _CLOSERS[tok.type]:
            stack.pop()
    return stack


# ── errors ───────────────────────────────────────────────────────────────

_DESCRIBE = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "LPAR": "'('", "LSQB": "'['",
             "LBRACE": "'{'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "SEMI": "';'",
             "ARROW": "'->'", "DOT": "'.'", "QUOTE": "'", "_NL": "a newline",
             "$END": "the end of the input", "NAME": "a name", "NUMBER": "a number",
             "STRING": "a string"}


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the input"
    if tok.type == "_NL":
        return "the end of the line"
    if tok.type == "STRING":
        return f"the string {tok.value}"
    return f"'{tok.value}'"


def _syntax_error(err: Exception, text: str, filename: str) -> BpSyntaxError:
    lines = text.splitlines() or [""]

    def span_at(line: int, col: int, width: int = 1) -> Span:
        return Span(filename, line, col, line, col + width)

    if isinstance(err, _BadCharacter):
        ch = text[err.pos] if err.pos < len(text) else ""
        what = "unterminated string" if ch == '"' else f"unexpected character {ch!r}"
        return BpSyntaxError(what, span_at(err.line, err.column))

    assert isinstance(err, _Unexpected)
    tok = err.token
    at_end = tok.type == "$END"
    pos = len(text) if at_end else tok.start_pos
    before = [t for t in _tokens(text, pos) if t.type != "_NL"]
    prev = before[-1] if before else None
    unclosed = _open_brackets(before)

    if at_end:
        if unclosed:
            o = unclosed[-1]
            return BpSyntaxError(f"unclosed '{o.value}' opened at {o.line}:{o.column}",
                                 span_at(o.line, o.column))
        line = len(lines)
        col = len(lines[-1]) + 1
        if prev is not None:
            line, col = prev.end_line, prev.end_column
        if prev is not None and prev.type in _BINARY:
            return BpSyntaxError(f"expected an expression after '{prev.value}'",
                                 span_at(prev.line, prev.column, len(prev.value)))
        return BpSyntaxError("unexpected end of input", span_at(line, col))

    where = span_at(tok.line, tok.column, max(1, len(tok.value.rstrip("\n")) if tok.type != "_NL" else 1))
    if tok.type in _CLOSERS:
        if not unclosed or unclosed[-1].type != _CLOSERS[tok.type]:
            if unclosed:
                o = unclosed[-1]
                return BpSyntaxError(f"'{tok.value}' does not close the '{o.value}' opened at "
                                     f"{o.line}:{o.column}", where)
            return BpSyntaxError(f"unmatched '{tok.value}'", where)
    if prev is not None and prev.type in _BINARY | {"NOT"} and tok.type not in ("NAME", "NUMBER", "STRING"):
        return BpSyntaxError(f"expected an expression after '{prev.value}'", where)
    if unclosed and unclosed[-1].type in ("LPAR", "LSQB") and tok.line > unclosed[-1].line:
        o = unclosed[-1]
        return BpSyntaxError(f"unexpected {_describe(tok)}: the '{o.value}' opened at "
                             f"{o.line}:{o.column} is not closed", where)
    expected = sorted(err.expected)
    hint = ""
    open_types = {o.type for o in unclosed}
    expected = [e for e in expected if e not in _CLOSERS or _CLOSERS[e] in open_types]
    wanted = [_DESCRIBE[e] for e in expected if e in _DESCRIBE and e not in ("_NL", "$END", "SEMI")]
    if 0 < len(wanted) <= 3 and len(wanted) == len([e for e in expected if e not in ("_NL", "$END", "SEMI")]):
        hint = f"; expected {' or '.join(wanted)}"
    return BpSyntaxError(f"unexpected {_describe(tok)}{hint}", where)


def _recognise(builder, children, extent):
    return None


def is_complete(text: str) -> bool:
    """False when `text` could become valid by typing more (open brackets, a
    trailing operator): the REPL's continuation test."""
    try:
        _run(text + "\n", _recognise)
    except _Unexpected as err:
        return err.token.type != "$END"
    except _BadCharacter:
        return True
    return True


# ── tokens → AST ─────────────────────────────────────────────────────────

def parse(text: str, filename: str = "<string>", max_depth: int = 1000) -> ast.Program:
    """Parse a whole program; raise BpSyntaxError on the first mistake."""
    if not text.endswith("\n"):
        text += "\n"
    builder = _Builder(text, filename, max_depth)
    # A parse makes no reference cycles, but a big one makes millions of objects, and
    # each of the cyclic collector's passes would walk them all (a quarter of parsing
    # 10^4 terms); what cycles an error makes are collected after.
    paused = gc.isenabled()
    gc.disable()
    parsed = False
    try:
        # Parse-tree depth runs about twice the nesting a reader sees (a call is two levels).
        program = _run(text, builder.build, 2 * max_depth)
        if _placement_matters(builder.placed):
            _check_placement(program, _statements_only(builder.placed))
        parsed = True
    except (_BadCharacter, _Unexpected) as err:
        raise _syntax_error(err, text, filename) from None
    except _TooDeep as err:
        raise BpSyntaxError(f"the source is nested too deeply (more than {max_depth} levels: the "
                            f"max_depth limit; raise it with Interpreter(max_depth=…) or "
                            f"--max-depth)", builder.span(err.extent)) from None
    finally:
        if paused:
            if parsed:
                promote_survivors()   # the AST is long-lived (graph.promote_survivors)
            gc.enable()
    return program


def promote_survivors() -> None:
    """graph.promote_survivors (the parser imports nothing of the graph's): the objects
    a paused collector let pile up in its youngest generation moved to its oldest
    without a pass over them, unless the program froze objects itself."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


_BODY_STMTS = (ast.Assign, ast.Update, ast.Def, ast.Return, ast.For, ast.While, ast.ExprStmt)
_STMT_WORD = {ast.Print: "print", ast.Latex: "latex", ast.Assert: "assert", ast.If: "an if statement",
              ast.Break: "break", ast.Import: "import", ast.Export: "export",
              ast.GraphStmt: "graph", ast.Plot: "plot"}


# The AST's node classes, and for those with no placement rule of their own
# (expressions, bindings) the fields that may hold nodes: all but the span.
_NODES = frozenset(cls for cls in vars(ast).values()
                   if isinstance(cls, type) and hasattr(cls, "_fields") and cls is not Span)
_PLAIN = {cls: tuple(name for name in cls._fields if name != "span") for cls in _NODES
          if cls not in _STMT_WORD and cls not in (ast.TypedName, ast.Return, ast.Def, ast.Lambda,
                                                   ast.For, ast.While)}


# What _check_placement can find fault with, by the rules that build it: break,
# return and a parameter's annotation or default outside a lambda's head, wherever
# they are; a statement of the top level (print, import, ...) only inside a
# function's body, so only where a def or a lambda was built too.
_CONFINED = frozenset({"break_stmt", "return_stmt", "typed_name", "named_default"})
_TOP_LEVEL = frozenset({"print_stmt", "latex_stmt", "assert_stmt", "import_stmt", "export_stmt",
                        "graph_stmt", "plot_stmt"})
_BODIES = frozenset({"def_stmt", "lambda"})


# What can put a statement or a parameter's annotation inside an expression: where
# none was built, what _check_placement can find fault with is a statement outside
# expressions, and its walk need not enter them.
_IN_EXPRESSIONS = frozenset({"lambda", "typed_name", "named_default"})


def _statements_only(built: set[str]) -> bool:
    """Whether _check_placement may skip expressions (see _IN_EXPRESSIONS)."""
    return not built & _IN_EXPRESSIONS


def _placement_matters(built: set[str]) -> bool:
    """Whether a program whose builder built these rules can misplace a statement."""
    return bool(built & _CONFINED) or bool(built & _TOP_LEVEL and built & _BODIES)


def _check_placement(program: ast.Program, statements_only: bool = False) -> None:
    """Statements that can only appear in some places (SPEC §4), checked
    before anything runs: a function body holds bindings, for, while, if and
    return; break leaves a loop; return ends a function body.  With
    `statements_only` (no lambda and no parameter-like item was built, so no
    expression holds a statement or a TypedName) the walk skips expressions:
    the statements are met in the same order, and only they can be at fault."""
    stack: list[tuple[object, str, bool]] = [(s, "top", False) for s in program.stmts]
    plain, nodes, block = _PLAIN, _NODES, ast.Block
    while stack:
        node, where, in_loop = stack.pop()
        fields = plain.get(type(node))
        if fields is not None:     # no rule of its own: its children, as below but quicker
            if statements_only:
                continue
            for name in fields:
                child = getattr(node, name)
                if type(child) is tuple:
                    for c in child:
                        if type(c) in nodes:
                            stack.append((c, "expr" if where != "body" or type(c) is not block
                                          else where, in_loop))
                elif type(child) in nodes:
                    stack.append((child, "expr" if where != "body" or type(child) is not block
                                  else where, in_loop))
            continue
        if where == "body" and isinstance(node, tuple(_STMT_WORD)) \
                and not isinstance(node, (ast.If, ast.Break)):
            raise BpSyntaxError(f"{_STMT_WORD[type(node)]} cannot appear in a function body",
                                node.span)
        if isinstance(node, ast.TypedName) and node.shape is not None:
            raise BpSyntaxError(f"a shape annotation ({node.name}: [...]) belongs on a parameter: "
                                f"def f({node.name}: [...]) or ({node.name}: [...]) -> e", node.span)
        if isinstance(node, ast.TypedName):
            raise BpSyntaxError(f"'{node.name}=…' inside parentheses is a parameter's default: "
                                f"(x, {node.name}=…) -> e or def f(x, {node.name}=…); a keyword "
                                f"argument belongs in a call", node.span)
        if isinstance(node, ast.Break) and not in_loop:
            raise BpSyntaxError("break outside a loop", node.span)
        if isinstance(node, ast.Return) and where != "body":
            raise BpSyntaxError("return outside a function body", node.span)
        match node:
            case ast.Def(body=ast.Block(stmts)) | ast.Lambda(body=ast.Block(stmts)):
                stack.extend((s, "body", False) for s in stmts)
                continue
            case ast.For(iter=it, body=ast.Block(stmts)):
                if not statements_only:
                    stack.append((it, "expr", False))
                stack.extend((s, where, True) for s in stmts)
                continue
            case ast.While(test=test, body=ast.Block(stmts)):
                if not statements_only:
                    stack.append((test, "expr", False))
                stack.extend((s, where, True) for s in stmts)
                continue
            case ast.If(test=test, then=then, orelse=orelse):
                if not statements_only:
                    stack.append((test, "expr", False))
                stack.extend((s, where, in_loop) for s in then.stmts)
                if isinstance(orelse, ast.Block):
                    stack.extend((s, where, in_loop) for s in orelse.stmts)
                elif orelse is not None:
                    stack.append((orelse, where, in_loop))
                continue
        if statements_only:        # what is left of a statement is expressions
            continue
        for name in getattr(node, "_fields", ()):
            child = getattr(node, name)
            for c in (child if isinstance(child, tuple) else (child,)):
                if hasattr(c, "_fields") and not isinstance(c, Span):
                    stack.append((c, "expr" if where != "body" or not isinstance(c, ast.Block) else where,
                                  in_loop))


class _Builder:
    """The reductions that make AST nodes: r_<rule>(span, children)."""

    def __init__(self, text: str, filename: str, max_depth: int = 1000):
        self.max_depth = max_depth
        self.text = text
        self.filename = filename
        self._line_starts: list[int] | None = None      # made when an assert needs its text
        self.placed: set[str] = set()       # the rules built that _check_placement looks at

    def build(self, rule: str, kids: list, extent):
        method, spanned, placed = _METHODS[rule]
        if placed:
            self.placed.add(rule)
        if not spanned:
            return method(self, None, kids)
        if extent is None:
            return method(self, Span(self.filename, 1, 1, 1, 1), kids)
        return method(self, Span(self.filename, extent[0], extent[1], extent[2], extent[3]), kids)

    def span(self, extent) -> Span:
        """The span of an extent (see _run), of None (an empty rule) or of a token."""
        if isinstance(extent, tuple):
            return Span(self.filename, *extent)
        if extent is None:
            return Span(self.filename, 1, 1, 1, 1)
        return Span(self.filename, extent.line, extent.column, extent.end_line, extent.end_column)

    def source(self, span: Span) -> str:
        if self._line_starts is None:
            self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        start = self._line_starts[span.line - 1] + span.col - 1
        end = self._line_starts[span.end_line - 1] + span.end_col - 1
        return self.text[start:end]

    # ── statements ──
    @staticmethod
    def _stmts(kids) -> tuple:
        return tuple(k for k in kids if k is not None and not isinstance(k, Token))

    def r_start(self, span, kids):
        return ast.Program(self._stmts(kids), span)

    def r_block(self, span, kids):
        return ast.Block(self._stmts(kids), span)

    def r_assign(self, span, kids):
        equal = next(i for i, k in enumerate(kids) if isinstance(k, Token) and k.type == "EQUAL")
        targets = [k for k in kids[:equal] if not isinstance(k, Token)]
        values = [k for k in kids[equal + 1:] if not isinstance(k, Token)]
        value = values[0] if len(values) == 1 else \
            ast.TupleLit(tuple(values), values[0].span.to(values[-1].span))
        if len(targets) == 1 and isinstance(targets[0], ast.Index):
            name = _update_target(targets[0])
            return ast.Update(name, targets[0].items, None, value, span)
        names = []
        for t in targets:
            if not isinstance(t, ast.Name):
                raise BpSyntaxError(_bad_target(t, len(targets) > 1), t.span)
            names.append(t.id)
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise BpSyntaxError(f"'{twice}' appears twice on the left of '='", span)
        return ast.Assign(tuple(names), value, span)

    def r_update(self, span, kids):
        target, op, value = kids[0], str(kids[1])[:-1], kids[2]
        op = "^" if op == "**" else op
        if isinstance(target, ast.Index):
            return ast.Update(_update_target(target), target.items, op, value, span)
        if not isinstance(target, ast.Name):
            raise BpSyntaxError(_bad_target(target, False, f"{op}="), target.span)
        return ast.Assign((target.id,), ast.BinOp(op, target, value, span), span)

    def r_def_stmt(self, span, kids):
        params = kids[3] or ()
        return ast.Def(str(kids[1]), tuple(params), kids[-1], span)

    def r_params(self, span, kids):
        params = [k for k in kids if isinstance(k, ast.Param)]
        seen = set()
        for p in params:
            if p.name in seen:
                raise BpSyntaxError(f"parameter '{p.name}' appears twice", p.span)
            seen.add(p.name)
        _check_defaults_last(params)
        return tuple(params)

    def r_param(self, span, kids):
        shape, default = None, None
        for i, k in enumerate(kids):
            if isinstance(k, Token) and k.type == "COLON":
                shape = kids[i + 1]
            elif isinstance(k, Token) and k.type == "EQUAL":
                default = kids[i + 1]
        return ast.Param(str(kids[0]), shape, span, default)

    def r_shape_ann(self, span, kids):
        return tuple(k for k in kids if isinstance(k, (int, str)) and not isinstance(k, Token))

    def r_typed_name(self, span, kids):
        default = kids[4] if len(kids) > 4 else None
        return ast.TypedName(str(kids[0]), kids[2], span, default)

    def r_named_default(self, span, kids):
        return ast.TypedName(str(kids[0]), None, span, kids[2])

    def r_dim(self, span, kids):
        if kids[0].type == "NAME":
            return str(kids[0])
        value = float(kids[0].value)
        if value != int(value):
            raise BpSyntaxError("a shape dimension must be a whole number", span)
        return int(value)

    def r_return_stmt(self, span, kids):
        return ast.Return(kids[1], span)

    def r_print_stmt(self, span, kids):
        return ast.Print(tuple(k for k in kids[1:] if k is not None and not isinstance(k, Token)),
                         span)

    def r_latex_stmt(self, span, kids):
        return ast.Latex(kids[1], span)

    def r_assert_stmt(self, span, kids):
        return ast.Assert(kids[1], self.source(kids[1].span), span)

    def r_for_stmt(self, span, kids):
        return ast.For(str(kids[1]), kids[3], kids[4], span)

    def r_while_stmt(self, span, kids):
        return ast.While(kids[1], kids[2], span)

    def r_if_stmt(self, span, kids):
        orelse = kids[4] if len(kids) > 4 else None
        return ast.If(kids[1], kids[2], orelse, span)

    def r_break_stmt(self, span, kids):
        return ast.Break(span)

    def r_import_stmt(self, span, kids):
        return ast.Import(_unquote(kids[1]), span)

    def r_export_stmt(self, span, kids):
        engine = "numpy"
        if len(kids) > 4 and kids[4] is not None:          # … to "m.py" as jax
            word, name = kids[4], kids[5]
            if word.value != "as" or name.value not in ("numpy", "jax"):
                bad = word if word.value != "as" else name
                raise BpSyntaxError("export … to \"file\" may end with `as jax` or `as numpy`, "
                                    f"not '{word.value} {name.value}'",
                                    Span(self.filename, bad.line, bad.column, bad.end_line,
                                         bad.end_column))
            engine = name.value
        return ast.Export(kids[1], _unquote(kids[3]), span, engine)

    def r_graph_stmt(self, span, kids):
        path = _unquote(kids[3]) if len(kids) > 3 else None
        return ast.GraphStmt(kids[1], path, span)

    def r_plot_stmt(self, span, kids):
        values, on, path, mode = [], None, None, "values"
        for k in kids[1:]:
            if isinstance(k, Token):
                mode = {"ON": "on", "TO": "to"}.get(k.type, mode)
                if k.type == "STRING":
                    path = _unquote(k)
            elif mode == "values":
                values.append(k)
            elif mode == "on":
                on = k
        return ast.Plot(tuple(values), on, path, span)

    def r_expr_stmt(self, span, kids):
        return ast.ExprStmt(kids[0], span)

    # ── expressions ──
    def r_lambda(self, span, kids):
        head, body = kids[0], kids[2]
        items = head.items if isinstance(head, ast.TupleLit) else (head,)
        params = []
        for item in items:
            if isinstance(item, ast.TypedName):
                params.append(ast.Param(item.name, item.shape, item.span, item.default))
                continue
            if not isinstance(item, ast.Name):
                raise BpSyntaxError("a lambda's parameters must be names, as in (x, y) -> e "
                                    "or (x: [n], y) -> e", item.span)
            params.append(ast.Param(item.id, None, item.span))
        if len({p.name for p in params}) != len(params):
            raise BpSyntaxError("a lambda's parameters must have different names", span)
        _check_defaults_last(params)
        return ast.Lambda(tuple(params), body, span)

    def r_ifexpr(self, span, kids):
        return ast.IfExpr(kids[1], kids[3], kids[5], span)

    def r_binop(self, span, kids):
        op = kids[1].value
        return ast.BinOp("^" if op == "**" else op, kids[0], kids[2], span)

    def r_unary(self, span, kids):
        return ast.Unary(str(kids[0]), kids[1], span)

    def r_call(self, span, kids):
        args, kwargs = [], []
        for a in (kids[2] or ()):
            if isinstance(a, ast.Keyword):
                if any(k.name == a.name for k in kwargs):
                    raise BpSyntaxError(f"keyword argument '{a.name}' given twice", a.span)
                kwargs.append(a)
            elif kwargs:
                raise BpSyntaxError("a positional argument follows a keyword argument", a.span)
            else:
                args.append(a)
        return ast.Call(kids[0], tuple(args), tuple(kwargs), span)

    def r_args(self, span, kids):
        return tuple(k for k in kids if not isinstance(k, Token))

    def r_keyword(self, span, kids):
        return ast.Keyword(str(kids[0]), kids[2], span)

    def r_index(self, span, kids):
        return ast.Index(kids[0], kids[2], span)

    def r_indices(self, span, kids):
        return tuple(k for k in kids if not isinstance(k, Token))

    def r_slice(self, span, kids):
        parts, current = [], None
        for k in kids:
            if isinstance(k, Token) and k.type == "COLON":
                parts.append(current)
                current = None
            else:
                current = k
        parts.append(current)
        parts += [None] * (3 - len(parts))
        return ast.Slice(parts[0], parts[1], parts[2], span)

    def r_transpose(self, span, kids):
        return ast.Transpose(kids[0], span)

    def r_field(self, span, kids):
        return ast.Field(kids[0], str(kids[2]), span)

    def r_number(self, span, kids):
        return ast.Num(float(kids[0].value), span)

    def r_name(self, span, kids):
        return ast.Name(kids[0].value, span)

    def r_builtin_ref(self, span, kids):
        return ast.BuiltinRef(str(kids[2]), span)

    def r_string(self, span, kids):
        return ast.Str(_unquote(kids[0]), span)

    def r_paren(self, span, kids):
        return kids[1]

    def r_tuple(self, span, kids):
        return ast.TupleLit(tuple(k for k in kids if not isinstance(k, Token)), span)

    def r_list(self, span, kids):
        return ast.ListLit(tuple(k for k in kids if k is not None and not isinstance(k, Token)),
                           span)

    def r_record(self, span, kids):
        fields = [k for k in kids if isinstance(k, ast.Keyword)]
        seen = set()
        for f in fields:
            if f.name in seen:
                raise BpSyntaxError(f"field '{f.name}' appears twice in the record", f.span)
            seen.add(f.name)
        return ast.RecordLit(tuple(fields), span)

    def r_field_def(self, span, kids):
        return ast.Keyword(str(kids[0]), kids[2], span)


# Each builder's method, whether it uses the span (the reductions that return a
# child or a tuple do not: no Span made for them), and whether _check_placement
# looks at what it makes.
_METHODS = {name[2:]: (method, name[2:] not in ("paren", "args", "indices", "params", "shape_ann"),
                       name[2:] in _CONFINED | _TOP_LEVEL | _BODIES)
            for name, method in vars(_Builder).items() if name.startswith("r_")}


def _check_defaults_last(params) -> None:
    """As in Python: once a parameter has a default, every later one has one."""
    after = None
    for p in params:
        if p.default is not None:
            after = p
        elif after is not None:
            raise BpSyntaxError(f"parameter '{p.name}' has no default but follows '{after.name}', "
                                f"which has one: parameters with defaults come last", p.span)


def _update_target(target: ast.Index) -> str:
    """The name that `x[…] = v` rebinds: the indexed value must be a plain name."""
    if not isinstance(target.value, ast.Name):
        raise BpSyntaxError("an indexed update rebinds a name: write x[i] = v with x a name "
                            "(for a record field, rebuild the record)", target.value.span)
    return target.value.id


def _bad_target(t, several: bool, op: str = "=") -> str:
    if several:
        return f"only names can be bound together, as in a, b = f(x); cannot assign to this"
    return (f"cannot assign to this with '{op}': the left side of '{op}' is a name (x {op} e) "
            f"or an indexed name (x[i] {op} e)")


def _unquote(tok: Token) -> str:
    body = str(tok)[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ── the reductions that make the hot rules' nodes ───────────────────────
#
# A _Builder's build(rule, children, extent) looks the rule's method up, makes
# a Span and calls the method, whose node's __init__ (dsl/struct.py) sets each
# field in turn: most of a reduction's cost.  For the rules most reductions are
# by (names, numbers, operators, calls, indexing, assignment), _FAST's
# reductions make the same node directly: the object made with object.__new__
# and each field set through its slot (what struct's __init__ does, without its
# checks for missing or keyword arguments), and the Span the same way.  Any
# other case (an error to raise, a keyword argument) goes to the _Builder method.

_new = object.__new__


def _fields_setter(cls):
    """make(*fields) for a struct class: cls(*fields), made through its slots."""
    setters = tuple(cls.__dict__[name].__set__ for name in cls._fields)
    assert all(type(cls.__dict__[name]).__name__ == "member_descriptor" for name in cls._fields)
    if len(setters) == 2:
        s0, s1 = setters

        def make(a, b):
            o = _new(cls)
            s0(o, a)
            s1(o, b)
            return o
    elif len(setters) == 3:
        s0, s1, s2 = setters

        def make(a, b, c):
            o = _new(cls)
            s0(o, a)
            s1(o, b)
            s2(o, c)
            return o
    elif len(setters) == 4:
        s0, s1, s2, s3 = setters

        def make(a, b, c, d):
            o = _new(cls)
            s0(o, a)
            s1(o, b)
            s2(o, c)
            s3(o, d)
            return o
    else:
        assert len(setters) == 5
        s0, s1, s2, s3, s4 = setters

        def make(a, b, c, d, e):
            o = _new(cls)
            s0(o, a)
            s1(o, b)
            s2(o, c)
            s3(o, d)
            s4(o, e)
            return o
    return make


_span = _fields_setter(Span)
_name_node = _fields_setter(ast.Name)
_num_node = _fields_setter(ast.Num)
_binop_node = _fields_setter(ast.BinOp)
_unary_node = _fields_setter(ast.Unary)
_call_node = _fields_setter(ast.Call)
_index_node = _fields_setter(ast.Index)
_assign_node = _fields_setter(ast.Assign)
_expr_stmt_node = _fields_setter(ast.ExprStmt)
_Keyword, _NameNode = ast.Keyword, ast.Name


# A token among the children is its text (see _run); _SLOW: the generic
# reduction, with Tokens, is to make this one (to raise its error).
_SLOW = object()


def _make_name(token, span):
    return _name_node(token, span)


def _make_number(token, span):
    return _num_node(float(token), span)


def _make_binop(left, op, right, span):
    return _binop_node("^" if op == "**" else op, left, right, span)


def _make_unary(op, operand, span):
    return _unary_node(op, operand, span)


def _make_call(func, lpar, args, rpar, span):
    for a in args:
        if type(a) is _Keyword:
            return _SLOW
    return _call_node(func, args, (), span)


def _make_call_empty(func, lpar, rpar, span):          # f(): postfix LPAR RPAR
    return _call_node(func, (), (), span)


def _make_index(value, lsqb, items, rsqb, span):
    return _index_node(value, items, span)


def _make_assign(target, equal, value, span):         # target = value
    if type(target) is _NameNode:
        return _assign_node((target.id,), value, span)
    return _SLOW


def _make_expr_stmt(value, span):
    return _expr_stmt_node(value, span)


def _make_one(arg, span):                  # args: arg (a tuple of it)
    return (arg,)


def _make_indices(items, span):            # indices: _index_item (its list, as a tuple)
    if len(items) == 1 and type(items[0]) is not Token:
        return (items[0],)
    return _SLOW


def _make_paren(lpar, items, rpar, span):  # ( _item ): the item
    if len(items) == 1:
        return items[0]
    return _SLOW


# (builder, length, children kept, Nones after) → the node from the children
# before shaping (a token as its text, a spliced child as its list), one
# argument each, and the span (None where the method takes none).
_MAKERS = {
    ("name", 1, None, 0): _make_name,
    ("number", 1, None, 0): _make_number,
    ("binop", 3, None, 0): _make_binop,
    ("unary", 2, None, 0): _make_unary,
    ("call", 4, None, 0): _make_call,
    ("call", 3, ((0, False, 0), (1, False, 0), (2, False, 1)), 0): _make_call_empty,
    ("index", 4, None, 0): _make_index,
    ("assign", 3, None, 0): _make_assign,
    ("expr_stmt", 1, None, 0): _make_expr_stmt,
    ("args", 1, None, 0): _make_one,
    ("indices", 1, ((0, True, 0),), 0): _make_indices,
    ("paren", 3, ((0, False, 0), (1, True, 0), (2, False, 0)), 0): _make_paren,
}


def _build_reducer(rule: int):
    """The reduction by a hot rule for a _Builder's run (see _MAKERS), or None:
    the same value, extent, depth and state as _reduce_any's with build (which
    it falls back on for an empty child at either end, or a _SLOW)."""
    name, size, include, append_none, inline_one, builder = T.RULES[rule]
    maker = _MAKERS.get((builder, size, include, append_none))
    if maker is None or inline_one or name[0] == "_" or not 1 <= size <= 4 or _METHODS[builder][2]:
        return None
    spanned = _METHODS[builder][1]
    after, unit_after, slow = _AFTER, _after, _reduce_any(rule)

    def finish(stack, values, kind, ctx, first, end, depth, value):
        """Push the value (for size 2 to 4) and return the state after it."""
        below = stack[-size - 1][6]
        state = after.get((below, rule, kind))
        if state is None:
            state = unit_after(below, rule, kind)
        del stack[1 - size:], values[1 - size:]
        values[-1] = value
        stack[-1] = (first[0], first[1], end[2], end[3], depth, name, state)
        return state

    if size == 1:
        def reduce(stack, values, kind, ctx):
            e = stack[-1]
            if e[0] is None:
                return slow(stack, values, kind, ctx)
            depth = e[4] if e[5] == name and e[4] > 0 else e[4] + 1
            limit = ctx.limit
            if limit is not None and depth > limit:
                raise _TooDeep((e[0], e[1], e[2], e[3]))
            value = maker(values[-1], _span(ctx.file, e[0], e[1], e[2], e[3]) if spanned else None)
            if value is _SLOW:
                return slow(stack, values, kind, ctx)
            below = stack[-2][6]
            state = after.get((below, rule, kind))
            if state is None:
                state = unit_after(below, rule, kind)
            values[-1] = value
            stack[-1] = (e[0], e[1], e[2], e[3], depth, name, state)
            return state
        return reduce

    def reduce(stack, values, kind, ctx):
        first = stack[-size]
        end = stack[-1]
        if first[0] is None or end[0] is None:
            return slow(stack, values, kind, ctx)
        rest = end[4]
        if size >= 3:
            middle = stack[-2][4]
            if middle > rest:
                rest = middle
            if size == 4:
                middle = stack[-3][4]
                if middle > rest:
                    rest = middle
        depth = first[4]
        if first[5] == name:           # a chain continued (a + b + c): flat
            depth = depth if depth > rest else rest + 1
        else:
            depth = (depth if depth > rest else rest) + 1
        limit = ctx.limit
        if limit is not None and depth > limit:
            raise _TooDeep((first[0], first[1], end[2], end[3]))
        span = _span(ctx.file, first[0], first[1], end[2], end[3]) if spanned else None
        if size == 3:
            value = maker(values[-3], values[-2], values[-1], span)
        elif size == 2:
            value = maker(values[-2], values[-1], span)
        else:
            value = maker(values[-4], values[-3], values[-2], values[-1], span)
        if value is _SLOW:
            return slow(stack, values, kind, ctx)
        return finish(stack, values, kind, ctx, first, end, depth, value)

    return reduce
