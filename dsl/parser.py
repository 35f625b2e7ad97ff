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
        self.prev: Token | None = None

    def keep(self, tok: Token) -> bool:
        kind, stack = tok.type, self.stack
        if kind == "_NL":
            if (stack and stack[-1] != "blk") or (self.prev is not None and self.prev.type in _CONTINUES):
                return False
            if _ELSE_AHEAD.match(self.text, tok.start_pos + len(tok.value)):
                return False
        elif kind in ("LPAR", "LSQB"):
            stack.append(kind)
        elif kind == "LBRACE":
            stack.append("rec" if _FIELD_AHEAD.match(self.text, tok.start_pos + 1) else "blk")
        elif kind in _CLOSERS and stack:
            stack.pop()
        self.prev = tok
        return True


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


def _run(text: str, build, max_depth: int | None = None):
    """Parse `text`: shift tokens, and at each reduction call
    build(rule name, children, extent) for the rule's value.  An extent is
    (line, column, end line, end column) or None for a rule that matched
    nothing.  Raises _BadCharacter or _Unexpected."""
    rows, rules, state_lexer = _ROWS, T.RULES, T.STATE_LEXER
    state_stack = [T.START]
    values: list = []
    extents: list = []
    depths: list[int] = []
    kinds: list = []               # the rule that made each value (None: a token, a splice)
    lexer, newlines = _Lexer(text), _Newlines(text)
    last: Token | None = None
    while True:
        state = state_stack[-1]
        try:
            tok = lexer.next(state_lexer[state])
        except _BadCharacter as err:
            try:                       # a terminal this state does not accept: say which
                probe = _Lexer(text)
                probe.pos, probe.line, probe.line_start = err.pos, err.line, err.pos - err.column + 1
                tok = probe.next(T.ROOT_LEXER)
            except _BadCharacter:
                raise err from None
            raise _Unexpected(tok, _expected(state)) from None
        is_end = tok is None
        if is_end:
            if last is None:
                tok = Token("$END", "", 0, 1, 1, 1, 1)
            else:
                tok = Token("$END", "", last.start_pos, last.line, last.column,
                            last.end_line, last.end_column)
        elif not newlines.keep(tok):
            continue
        last = tok
        kind = tok.type
        while True:                    # reduce as long as the table says, then shift
            state = state_stack[-1]
            action = (rows[state] or _row(state)).get(kind)
            if action is None:
                raise _Unexpected(tok, _expected(state))
            if action >= 0:
                state_stack.append(action)
                values.append(tok)
                extents.append((tok.line, tok.column, tok.end_line, tok.end_column))
                depths.append(0)
                kinds.append(None)
                break
            name, size, include, append_none, inline_one, builder = rules[~action]
            if inline_one and size == 1 and include is None and not append_none:
                # a rule of one symbol that passes its value on (sum: product): the value,
                # its extent, depth and kind stay as they are; only the state changes
                state_stack.pop()
                state_stack.append((rows[state_stack[-1]] or _row(state_stack[-1]))[name])
                if is_end and state_stack[-1] == T.END:
                    return values[-1]
                continue
            if size:
                children, spans, levels = values[-size:], extents[-size:], depths[-size:]
                first_kind = kinds[-size]
                del state_stack[-size:], values[-size:], extents[-size:], depths[-size:]
                del kinds[-size:]
            else:
                children, spans, levels, first_kind = [], [], [], None
            first = next((e for e in spans if e is not None), None)
            if first is None:
                extent = None
            else:
                end = next(e for e in reversed(spans) if e is not None)
                extent = (first[0], first[1], end[2], end[3])
            if include is not None:
                kept: list = []
                for i, splice, nones in include:
                    if nones:
                        kept += [None] * nones
                    if splice:
                        kept += children[i]
                    else:
                        kept.append(children[i])
                if append_none:
                    kept += [None] * append_none
                children = kept
            depth = max(levels, default=0)
            made = name
            if inline_one and len(children) == 1:
                value = children[0]
                made = first_kind
            elif name[0] == "_":
                value = children       # spliced into the rule that uses it
                made = None
            else:
                # A left-recursive rule continuing its own chain (a + b + c: sum over sum)
                # is not nesting: a flat sum of 2,000 terms reads as flat.  Its other
                # operands nest one level down.
                if first_kind == name:
                    depth = max(levels[0], max(levels[1:], default=0) + 1)
                else:
                    depth += 1
                if max_depth is not None and depth > max_depth:
                    raise _TooDeep(extent)
                value = build(builder, children, extent)
            state_stack.append((rows[state_stack[-1]] or _row(state_stack[-1]))[name])
            values.append(value)
            extents.append(extent)
            depths.append(depth)
            kinds.append(made)
            if is_end and state_stack[-1] == T.END:
                return value


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
    try:
        # Parse-tree depth runs about twice the nesting a reader sees (a call is two levels).
        program = _run(text, builder.build, 2 * max_depth)
    except (_BadCharacter, _Unexpected) as err:
        raise _syntax_error(err, text, filename) from None
    except _TooDeep as err:
        raise BpSyntaxError(f"the source is nested too deeply (more than {max_depth} levels: the "
                            f"max_depth limit; raise it with Interpreter(max_depth=…) or "
                            f"--max-depth)", builder.span(err.extent)) from None
    _check_placement(program)
    return program


_BODY_STMTS = (ast.Assign, ast.Update, ast.Def, ast.Return, ast.For, ast.While, ast.ExprStmt)
_STMT_WORD = {ast.Print: "print", ast.Latex: "latex", ast.Assert: "assert", ast.If: "an if statement",
              ast.Break: "break", ast.Import: "import", ast.Export: "export",
              ast.GraphStmt: "graph", ast.Plot: "plot"}


def _check_placement(program: ast.Program) -> None:
    """Statements that can only appear in some places (SPEC §4), checked
    before anything runs: a function body holds bindings, for, while, if and
    return; break leaves a loop; return ends a function body."""
    stack: list[tuple[object, str, bool]] = [(s, "top", False) for s in program.stmts]
    while stack:
        node, where, in_loop = stack.pop()
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
                stack.append((it, "expr", False))
                stack.extend((s, where, True) for s in stmts)
                continue
            case ast.While(test=test, body=ast.Block(stmts)):
                stack.append((test, "expr", False))
                stack.extend((s, where, True) for s in stmts)
                continue
            case ast.If(test=test, then=then, orelse=orelse):
                stack.append((test, "expr", False))
                stack.extend((s, where, in_loop) for s in then.stmts)
                if isinstance(orelse, ast.Block):
                    stack.extend((s, where, in_loop) for s in orelse.stmts)
                elif orelse is not None:
                    stack.append((orelse, where, in_loop))
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
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def build(self, rule: str, kids: list, extent):
        return getattr(self, "r_" + rule)(self.span(extent), kids)

    def span(self, extent) -> Span:
        """The span of an extent (see _run), of None (an empty rule) or of a token."""
        if isinstance(extent, tuple):
            return Span(self.filename, *extent)
        if extent is None:
            return Span(self.filename, 1, 1, 1, 1)
        return Span(self.filename, extent.line, extent.column, extent.end_line, extent.end_column)

    def source(self, span: Span) -> str:
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
        op = str(kids[1])
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
        return ast.Num(float(kids[0].value), self.span(kids[0]))

    def r_name(self, span, kids):
        return ast.Name(str(kids[0]), self.span(kids[0]))

    def r_builtin_ref(self, span, kids):
        return ast.BuiltinRef(str(kids[2]), span)

    def r_string(self, span, kids):
        return ast.Str(_unquote(kids[0]), self.span(kids[0]))

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
