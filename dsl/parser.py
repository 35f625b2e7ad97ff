"""Text → AST.  The only module that imports lark.

The grammar (grammar/bp.lark, shipped inside the package) is parsed with
LALR(1) and the contextual lexer; the analysed parser is cached on disk so
start-up does not pay for it.  A postlexer decides which newlines end a
statement.  Lark's errors become BpSyntaxError with a human sentence.  The
parse tree is turned into the AST by an explicit-stack walk, so deeply
nested source never meets Python's recursion limit here.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import fields, is_dataclass
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .errors import BpSyntaxError, Span


# A newline after one of these continues the statement (SPEC §2).
_CONTINUES = {"ADD_OP", "MUL_OP", "POW_OP", "COMP_OP", "AND", "OR", "NOT", "COMMA",
              "ARROW", "EQUAL", "THEN", "ELSE", "COLON"}
_OPENERS = {"LPAR": "(", "LSQB": "[", "LBRACE": "{"}
_CLOSERS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}
_BINARY = {"ADD_OP", "MUL_OP", "POW_OP", "COMP_OP", "AND", "OR", "ARROW", "EQUAL"}


class _PostLexer:
    """Drops the newlines that do not end a statement.

    Inside ( ) and [ ] and a record's { } newlines are ignored; a block's
    { } keeps them.  A `{` opens a record when `NAME :` follows, and a
    newline before `else` is dropped.  Both need lookahead, which the
    contextual lexer cannot give (it lexes in the parser's current state),
    so they look at the raw text instead: `text` is set before each parse.
    """
    always_accept = ("_NL",)
    text = ""

    def process(self, stream):
        text = self.text
        stack: list[str] = []           # "(", "[", "rec", "blk"
        prev = None
        for tok in stream:
            kind = tok.type
            if kind == "_NL":
                if (stack and stack[-1] != "blk") or (prev is not None and prev.type in _CONTINUES):
                    continue
                if _ELSE_AHEAD.match(text, tok.end_pos):
                    continue
            elif kind in ("LPAR", "LSQB"):
                stack.append(kind)
            elif kind == "LBRACE":
                stack.append("rec" if _FIELD_AHEAD.match(text, tok.end_pos) else "blk")
            elif kind in _CLOSERS and stack:
                stack.pop()
            prev = tok
            yield tok


_SKIP = r"(?:\s|#[^\n]*+)*+"     # possessive: no backtracking into a comment
_ELSE_AHEAD = re.compile(_SKIP + r"else\b")
_FIELD_AHEAD = re.compile(_SKIP + r"[^\W\d]\w*[\t ]*:")


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "bp.lark", here.parent / "grammar" / "bp.lark"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("bp.lark not found beside the dsl package")


_POSTLEX = _PostLexer()
_parser: Lark | None = None
_LOCK = threading.RLock()


def _lark() -> Lark:
    global _parser
    if _parser is None:
        text = _grammar_path().read_text(encoding="utf-8")
        options = dict(parser="lalr", lexer="contextual", postlex=_POSTLEX,
                       propagate_positions=True, maybe_placeholders=True)
        cache = _cache_file(text)
        try:
            _parser = Lark(text, cache=cache, **options) if cache else Lark(text, **options)
        except OSError:
            _parser = Lark(text, **options)
    return _parser


def _cache_file(grammar: str) -> str | None:
    """A per-user, private place for Lark's analysed parser (a pickle: it must not
    be somewhere another user could write), or None to build it every time."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "bp")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
            return None
    except OSError:
        return None
    import hashlib
    from lark import __version__ as lark_version
    key = hashlib.sha256((lark_version + grammar).encode()).hexdigest()[:16]
    return os.path.join(folder, f"grammar-{key}.lark-cache")


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
    if tok.type in ("NAME", "NUMBER"):
        return f"'{tok.value}'"
    return f"'{tok.value}'"


def _relex(text: str, upto: int) -> list[Token]:
    """Tokens before position `upto`, for error messages (best effort)."""
    out: list[Token] = []
    _POSTLEX.text = text
    try:
        for tok in _lark().lex(text, dont_ignore=False):
            if tok.start_pos is not None and tok.start_pos >= upto:
                break
            out.append(tok)
    except UnexpectedInput:
        pass
    return out


def _open_brackets(tokens: list[Token]) -> list[Token]:
    stack: list[Token] = []
    for tok in tokens:
        if tok.type in _OPENERS:
            stack.append(tok)
        elif tok.type in _CLOSERS and stack and stack[-1].type == _CLOSERS[tok.type]:
            stack.pop()
    return stack


def _syntax_error(err: UnexpectedInput, text: str, filename: str) -> BpSyntaxError:
    lines = text.splitlines() or [""]

    def span_at(line: int, col: int, width: int = 1) -> Span:
        return Span(filename, line, col, line, col + width)

    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        what = "unterminated string" if ch == '"' else f"unexpected character {ch!r}"
        return BpSyntaxError(what, span_at(err.line, err.column))

    tok = getattr(err, "token", None)
    at_end = isinstance(err, UnexpectedEOF) or (tok is not None and tok.type == "$END")
    pos = len(text) if at_end or tok is None or tok.start_pos is None else tok.start_pos
    before = [t for t in _relex(text, pos) if t.type != "_NL"]
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

    assert tok is not None
    where = span_at(tok.line, tok.column, max(1, len(str(tok.value).rstrip("\n")) if tok.type != "_NL" else 1))
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
    if tok.type == "_NL" and unclosed and unclosed[-1].type == "LBRACE":
        pass
    expected = sorted(getattr(err, "expected", ()) or ())
    hint = ""
    open_types = {o.type for o in unclosed}
    expected = [e for e in expected if e not in _CLOSERS or _CLOSERS[e] in open_types]
    wanted = [_DESCRIBE[e] for e in expected if e in _DESCRIBE and e not in ("_NL", "$END", "SEMI")]
    if 0 < len(wanted) <= 3 and len(wanted) == len([e for e in expected if e not in ("_NL", "$END", "SEMI")]):
        hint = f"; expected {' or '.join(wanted)}"
    return BpSyntaxError(f"unexpected {_describe(tok)}{hint}", where)


def is_complete(text: str) -> bool:
    """False when `text` could become valid by typing more (open brackets, a
    trailing operator): the REPL's continuation test."""
    try:
        with _LOCK:
            parser = _lark()
            _POSTLEX.text = text + "\n"
            parser.parse(text + "\n")
    except (UnexpectedEOF,) as err:
        return False
    except UnexpectedToken as err:
        return err.token.type != "$END"
    except UnexpectedInput:
        return True
    return True


# ── tree → AST ───────────────────────────────────────────────────────────

def parse(text: str, filename: str = "<string>", max_depth: int = 1000) -> ast.Program:
    """Parse a whole program; raise BpSyntaxError on the first mistake."""
    if not text.endswith("\n"):
        text += "\n"
    with _LOCK:
        try:
            parser = _lark()
            _POSTLEX.text = text
            tree = parser.parse(text)
        except UnexpectedInput as err:
            raise _syntax_error(err, text, filename) from None
    program = _Builder(text, filename, max_depth).build(tree)
    _check_placement(program)
    return program


_BODY_STMTS = (ast.Assign, ast.Def, ast.Return, ast.For, ast.ExprStmt)
_STMT_WORD = {ast.Print: "print", ast.Assert: "assert", ast.If: "an if statement",
              ast.Break: "break", ast.Import: "import", ast.Export: "export",
              ast.GraphStmt: "graph", ast.Plot: "plot"}


def _check_placement(program: ast.Program) -> None:
    """Statements that can only appear in some places (SPEC §4), checked
    before anything runs: a function body holds bindings, for and return;
    break leaves a top-level loop; return ends a function body."""
    stack: list[tuple[object, str, bool]] = [(s, "top", False) for s in program.stmts]
    while stack:
        node, where, in_loop = stack.pop()
        if where == "body" and isinstance(node, tuple(_STMT_WORD)):
            hint = "; use if … then … else" if isinstance(node, ast.If) else ""
            if isinstance(node, ast.Break):
                hint = "; a loop in a function is unrolled and runs all its steps"
            raise BpSyntaxError(f"{_STMT_WORD[type(node)]} cannot appear in a function body{hint}",
                                node.span)
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
                stack.extend((s, where, where == "top") for s in stmts)
                continue
            case ast.If(test=test, then=then, orelse=orelse):
                stack.append((test, "expr", False))
                stack.extend((s, where, in_loop) for s in then.stmts)
                if isinstance(orelse, ast.Block):
                    stack.extend((s, where, in_loop) for s in orelse.stmts)
                elif orelse is not None:
                    stack.append((orelse, where, in_loop))
                continue
        for f in fields(node) if is_dataclass(node) else ():
            child = getattr(node, f.name)
            for c in (child if isinstance(child, tuple) else (child,)):
                if is_dataclass(c) and not isinstance(c, Span):
                    stack.append((c, "expr" if where != "body" or not isinstance(c, ast.Block) else where,
                                  in_loop))


class _Builder:
    def __init__(self, text: str, filename: str, max_depth: int = 1000):
        # Parse-tree depth runs about twice the nesting a reader sees (a call is two levels).
        self.max_tree_depth = 2 * max_depth
        self.max_depth = max_depth
        self.text = text
        self.filename = filename
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def span(self, item) -> Span:
        if isinstance(item, Token):
            return Span(self.filename, item.line, item.column, item.end_line, item.end_column)
        meta = item.meta
        if getattr(meta, "empty", True):
            return Span(self.filename, 1, 1, 1, 1)
        return Span(self.filename, meta.line, meta.column, meta.end_line, meta.end_column)

    def source(self, span: Span) -> str:
        start = self._line_starts[span.line - 1] + span.col - 1
        end = self._line_starts[span.end_line - 1] + span.end_col - 1
        return self.text[start:end]

    def build(self, tree: Tree) -> ast.Program:
        """Post-order walk with an explicit stack: children first, then the rule."""
        done: dict[int, object] = {}
        stack: list[tuple[Tree, int]] = [(tree, 0)]
        while stack:
            node, depth = stack[-1]
            pending = [c for c in node.children if isinstance(c, Tree) and id(c) not in done]
            if pending:
                if depth >= self.max_tree_depth:
                    raise BpSyntaxError(f"the source is nested too deeply (more than {self.max_depth} "
                                        f"levels: the max_depth limit; raise it with "
                                        f"Interpreter(max_depth=…) or --max-depth)", self.span(node))
                stack.extend((c, depth + 1) for c in reversed(pending))
                continue
            stack.pop()
            kids = [done.pop(id(c)) if isinstance(c, Tree) else c for c in node.children]
            done[id(node)] = getattr(self, "r_" + node.data)(node, kids)
        return done[id(tree)]

    # ── statements ──
    @staticmethod
    def _stmts(kids) -> tuple:
        return tuple(k for k in kids if k is not None and not isinstance(k, Token))

    def r_start(self, node, kids):
        return ast.Program(self._stmts(kids), self.span(node))

    def r_block(self, node, kids):
        return ast.Block(self._stmts(kids), self.span(node))

    def r_assign(self, node, kids):
        names = tuple(str(k) for k in kids[:-1] if isinstance(k, Token) and k.type == "NAME")
        return ast.Assign(names, kids[-1], self.span(node))

    def r_def_stmt(self, node, kids):
        params = kids[3] or ()
        return ast.Def(str(kids[1]), tuple(params), kids[-1], self.span(node))

    def r_params(self, node, kids):
        params = [k for k in kids if isinstance(k, ast.Param)]
        seen = set()
        for p in params:
            if p.name in seen:
                raise BpSyntaxError(f"parameter '{p.name}' appears twice", p.span)
            seen.add(p.name)
        return tuple(params)

    def r_param(self, node, kids):
        shape = kids[2] if len(kids) > 2 else None
        return ast.Param(str(kids[0]), shape, self.span(node))

    def r_shape_ann(self, node, kids):
        return tuple(k for k in kids if isinstance(k, int))

    def r_dim(self, node, kids):
        value = float(kids[0])
        if value != int(value):
            raise BpSyntaxError("a shape dimension must be a whole number", self.span(node))
        return int(value)

    def r_return_stmt(self, node, kids):
        return ast.Return(kids[1], self.span(node))

    def r_print_stmt(self, node, kids):
        return ast.Print(tuple(k for k in kids[1:] if k is not None and not isinstance(k, Token)),
                         self.span(node))

    def r_assert_stmt(self, node, kids):
        return ast.Assert(kids[1], self.source(kids[1].span), self.span(node))

    def r_for_stmt(self, node, kids):
        return ast.For(str(kids[1]), kids[3], kids[4], self.span(node))

    def r_if_stmt(self, node, kids):
        orelse = kids[4] if len(kids) > 4 else None
        return ast.If(kids[1], kids[2], orelse, self.span(node))

    def r_break_stmt(self, node, kids):
        return ast.Break(self.span(node))

    def r_import_stmt(self, node, kids):
        return ast.Import(_unquote(kids[1]), self.span(node))

    def r_export_stmt(self, node, kids):
        return ast.Export(kids[1], _unquote(kids[3]), self.span(node))

    def r_graph_stmt(self, node, kids):
        path = _unquote(kids[3]) if len(kids) > 3 else None
        return ast.GraphStmt(kids[1], path, self.span(node))

    def r_plot_stmt(self, node, kids):
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
        return ast.Plot(tuple(values), on, path, self.span(node))

    def r_expr_stmt(self, node, kids):
        return ast.ExprStmt(kids[0], self.span(node))

    # ── expressions ──
    def r_lambda(self, node, kids):
        head, body = kids[0], kids[2]
        items = head.items if isinstance(head, ast.TupleLit) else (head,)
        params = []
        for item in items:
            if not isinstance(item, ast.Name):
                raise BpSyntaxError("a lambda's parameters must be names, as in (x, y) -> e",
                                    item.span)
            params.append(ast.Param(item.id, None, item.span))
        return ast.Lambda(tuple(params), body, self.span(node))

    def r_ifexpr(self, node, kids):
        return ast.IfExpr(kids[1], kids[3], kids[5], self.span(node))

    def r_binop(self, node, kids):
        op = str(kids[1])
        return ast.BinOp("^" if op == "**" else op, kids[0], kids[2], self.span(node))

    def r_unary(self, node, kids):
        return ast.Unary(str(kids[0]), kids[1], self.span(node))

    def r_call(self, node, kids):
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
        return ast.Call(kids[0], tuple(args), tuple(kwargs), self.span(node))

    def r_args(self, node, kids):
        return tuple(k for k in kids if not isinstance(k, Token))

    def r_keyword(self, node, kids):
        return ast.Keyword(str(kids[0]), kids[2], self.span(node))

    def r_index(self, node, kids):
        return ast.Index(kids[0], kids[2], self.span(node))

    def r_indices(self, node, kids):
        return tuple(k for k in kids if not isinstance(k, Token))

    def r_slice(self, node, kids):
        parts, current = [], None
        for k in kids:
            if isinstance(k, Token) and k.type == "COLON":
                parts.append(current)
                current = None
            else:
                current = k
        parts.append(current)
        parts += [None] * (3 - len(parts))
        return ast.Slice(parts[0], parts[1], parts[2], self.span(node))

    def r_transpose(self, node, kids):
        return ast.Transpose(kids[0], self.span(node))

    def r_field(self, node, kids):
        return ast.Field(kids[0], str(kids[2]), self.span(node))

    def r_number(self, node, kids):
        return ast.Num(float(kids[0]), self.span(kids[0]))

    def r_name(self, node, kids):
        return ast.Name(str(kids[0]), self.span(kids[0]))

    def r_string(self, node, kids):
        return ast.Str(_unquote(kids[0]), self.span(kids[0]))

    def r_paren(self, node, kids):
        return kids[1]

    def r_tuple(self, node, kids):
        return ast.TupleLit(tuple(k for k in kids if not isinstance(k, Token)), self.span(node))

    def r_list(self, node, kids):
        return ast.ListLit(tuple(k for k in kids if k is not None and not isinstance(k, Token)),
                           self.span(node))

    def r_record(self, node, kids):
        fields = [k for k in kids if isinstance(k, ast.Keyword)]
        seen = set()
        for f in fields:
            if f.name in seen:
                raise BpSyntaxError(f"field '{f.name}' appears twice in the record", f.span)
            seen.add(f.name)
        return ast.RecordLit(tuple(fields), self.span(node))

    def r_field_def(self, node, kids):
        return ast.Keyword(str(kids[0]), kids[2], self.span(node))


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
