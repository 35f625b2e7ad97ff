"""The Interpreter: a bp session and the public API (SPEC §11).

The one engine behind the CLI, the REPL and embedding.  It holds the
globals, the random generator, the options and the output stream; runs
top-level statements one at a time (a failing statement raises a BpError
and leaves earlier bindings intact); and calls bp functions through
compiled plans cached per argument shapes.  Nothing here writes to the
terminal except through `self.stdout`.
"""
from __future__ import annotations

import math
import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from . import ast, autodiff, ops, render
from .errors import (BpAssertionError, BpError, BpImportError, BpInternalError, BpIOError, BpNameError,
                     BpShapeError, BpTypeError, BpValueError, SourceName, Span)
from .evaluate import Plan
from .graph import Node, collector_paused, make_input, topo_order
from .lower import _REQUIRED as REQUIRED  # the mark of a parameter without a default
from .lower import CONSTANTS, SPECIAL, Lowerer, loop_count, parameter_defaults, unpack
from .ops import Limits
from .parser import is_complete as _is_complete
from .parser import parse
from .shapes import SymShape
from .values import (Builtin, Closure, Function, HostFunction, Record, Transform, leaf_paths,
                     leaves, rebuild)

_ABSENT = object()          # a global that was not bound when a plan was built
KEYWORDS = ("def return for while in if then else and or not import export print plot assert graph "
            "on to break latex bp").split()
MAX_PLANS = 1024            # compiled plans kept per session, oldest dropped first


class _Break(Exception):
    pass


class _ProcessStdout:
    """The default output stream: the process's `sys.stdout` as it is at each write,
    so `contextlib.redirect_stdout` and pytest's capture see prints (as with Python's
    exec and runpy).  A session made with a reset copies this object and keeps following."""

    def write(self, text: str) -> int:
        out = sys.stdout
        return 0 if out is None else out.write(text)    # no stdout (pythonw): like print

    def flush(self) -> None:
        if sys.stdout is not None:
            sys.stdout.flush()

    def __getattr__(self, name):                          # isatty, fileno, encoding, …
        return getattr(sys.stdout, name)

    def __repr__(self) -> str:
        return "<sys.stdout at each write>"


PROCESS_STDOUT = _ProcessStdout()


class _Globals:
    """The lowering context over a session: how names, calls and seeds resolve.

    With `deps` (a dict), every global read is recorded, so a plan built
    from this lowering can later check that what it baked in is unchanged.
    """

    def __init__(self, interp: Interpreter, deps: dict | None = None, symbolic: bool = False):
        self.interp = interp
        self.deps = deps
        self.symbolic = symbolic         # tensors stay named inputs, for printing and export
        self.named: dict[str, Any] = {}

    def resolve_global(self, name: str, span: Span):
        value = self.interp.globals.get(name, _ABSENT)
        if self.deps is not None:
            self.deps[name] = value
        if value is not _ABSENT:
            if self.symbolic and not isinstance(value, Function) and name not in CONSTANTS:
                if name not in self.named:
                    self.named[name] = rebuild(value, iter(
                        [make_input(name, leaf.shape, path=path)
                         for leaf, path in zip(leaves(value), leaf_paths(value))]))
                return self.named[name]
            return to_lowered(value)
        if name in ops.BUILTINS or name in SPECIAL:
            return Builtin(name)
        import difflib                           # only on this error path: start-up stays quick
        known = list(self.interp.globals) + list(ops.BUILTINS) + list(SPECIAL)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise BpNameError(f"name '{name}' is not defined{hint}", span)

    def call_eager(self, fn, args, kwargs, span):
        return self.interp._call_compiled(fn, args, kwargs, span)

    def gradcheck(self, fn, args, span):
        return self.interp._gradcheck(fn, args, span)

    def next_seed(self) -> int:
        interp = self.interp
        if interp._rng is None:
            interp._rng = np.random.default_rng(interp.seed)
        return int(interp._rng.integers(2**63 - 1))


class Interpreter:
    """A bp session.

    >>> bp = Interpreter()
    >>> bp.exec("def f(x) = x^2 * sin(x)")
    >>> float(bp.eval("f(2)"))
    3.637189707302727
    """

    def __init__(self, *, stdout=None, precision: int = 8, seed: int = 0, files: bool = True,
                 check_nan: bool = False, max_elements: int = Limits.max_elements,
                 max_nodes: int = Limits.max_nodes, max_unroll: int = Limits.max_unroll,
                 max_depth: int = Limits.max_depth, max_iterations: int = Limits.max_iterations,
                 engine: str = "numpy", devices: int | None = None):
        self.stdout = stdout if stdout is not None else PROCESS_STDOUT
        self.files = files
        self.limits = Limits(max_elements=max_elements, max_nodes=max_nodes,
                             max_unroll=max_unroll, max_depth=max_depth, check_nan=check_nan,
                             max_iterations=max_iterations)
        self._interrupt = threading.Event()
        self.precision = precision
        self.seed = seed
        self._rng = None                  # made on first use: numpy.random costs start-up time
        self.globals: dict[str, Any] = {k: np.asarray(v) for k, v in CONSTANTS.items()}
        self.sources: dict[str, list[str]] = {}
        self._imported: set[str] = set()
        self._plans: dict = {}
        self._engine, self._mesh, self.devices = "numpy", None, None
        self.set_engine(engine, devices)
        self._looping = 0
        # Set by a front end to show progress of a top-level loop: (steps, label) → an
        # object with advance() and close().  None: no progress display.
        self.progress: Callable[[int, str], Any] | None = None
        # Set by a front end that can show pictures (the IPython extension in a notebook):
        # `graph e` and `plot …` without `to` call it with ("graph", FunctionGraph) or
        # ("plot", plot.Figure); True means it showed them, else the text is written to
        # stdout as usual.  None: always the text.
        self.display: Callable[[str, Any], bool] | None = None

    # ── engines ──────────────────────────────────────────────────────────
    ENGINES = ("numpy", "jax")

    @property
    def engine(self) -> str:
        """What runs compiled plans: "numpy" (the default) or "jax" (dsl/jax_engine.py)."""
        return self._engine

    def set_engine(self, engine: str, devices: int | None = None, span: Span | None = None) -> None:
        """Run compiled plans with NumPy or JAX (on `devices` devices, data-parallel).
        The plans made so far are dropped: each engine makes its own."""
        if engine not in self.ENGINES:
            raise BpValueError(f"unknown engine {engine!r}: the engines are numpy and jax", span)
        if devices is not None and engine != "jax":
            raise BpValueError("devices= shards over JAX devices: it needs engine='jax'", span)
        mesh = None
        if engine == "jax":
            from . import jax_engine
            jax_engine.require(span)
            if devices is not None:
                mesh = jax_engine.mesh(devices, span)
        self._engine, self._mesh, self.devices = engine, mesh, devices
        self._plans.clear()

    def _plan(self, inputs: list[Node], outputs: list[Node], order: list[Node] | None = None):
        """A compiled plan of the session's engine (`order`: topo_order(outputs), when the
        caller has walked the graph already)."""
        if self._engine == "jax":
            from . import jax_engine
            return jax_engine.JaxPlan(inputs, outputs, self._mesh)
        return Plan(inputs, outputs, order)

    # ── running source ───────────────────────────────────────────────────
    def exec(self, src: str, *, filename: str = "<string>",
             echo: bool | Callable[[Any], None] = False) -> list:
        """Run statements.  With `echo`, expression statements give their values:
        printed to stdout (echo=True) or passed to a callback; returned either way."""
        name = SourceName(filename, src.splitlines())
        self.sources[filename] = name.lines
        self._interrupt.clear()                  # an interrupt while idle does not carry over
        with self._running():
            program = self._guard(lambda: parse(src, name, self.limits.max_depth))
            shown: list = []
            for stmt in program.stmts:
                ops.ACTIVE.nodes = 0
                self._guard(lambda: (ops.check_interrupt(stmt.span),
                                     self._exec_stmt(stmt, echo, shown)), stmt.span)
        return shown

    def interrupt(self) -> None:
        """Stop the running statement (callable from another thread): it raises a
        BpError of kind `interrupted`, and the session stays usable."""
        self._interrupt.set()

    @contextmanager
    def _running(self):
        """Make this session's limits and interrupt flag the ones the builder sees."""
        active = ops.ACTIVE
        saved = (active.limits, active.interrupt, active.nodes)
        active.limits, active.interrupt, active.nodes = self.limits, self._interrupt, 0
        # Lowering recurses over the source's nesting (bounded by max_depth), and inlined
        # calls nest; Python-to-Python calls do not use the C stack.  The limit is only
        # ever raised, never put back: another thread's session may be deep in it.
        needed = 20 * self.limits.max_depth + 5000
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        try:
            yield
        finally:
            active.limits, active.interrupt, active.nodes = saved

    def run_file(self, path: str | os.PathLike) -> Interpreter:
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8-sig") as file:      # a BOM is no character
                text = file.read()
        except (OSError, UnicodeDecodeError) as err:
            raise BpImportError(f"cannot read {path!r}: {_reason(err)}") from None
        self._imported.add(os.path.realpath(path))
        self.exec(text, filename=path)
        return self

    def eval(self, src: str):
        """The value of one expression, as Python: ndarray, tuple, dict or callable."""
        return self.to_python(self._value_of(src))

    def show(self, src: str) -> str:
        """How `print` shows the value of an expression (a function as bp source)."""
        return self.format(self._value_of(src))

    def latex(self, src: str) -> str:
        """The value of one expression as LaTeX math (SPEC §13), as `latex e` prints
        it: a function's body from the same graph `show` prints, a tensor as a bmatrix."""
        value = self._value_of(src)
        return self._guard(lambda: self.format_latex(value))

    def format_latex(self, value, span: Span | None = None) -> str:
        """A value as LaTeX (see dsl/latex.py); a function from its graph."""
        from . import latex
        if isinstance(value, str):
            raise BpTypeError("latex shows a function or a value, not a string", span)
        if not isinstance(value, (np.ndarray, tuple, Record, Function)):
            value = from_python(value, copy=False)
        return latex.value_latex(value, self.precision, self._latex_function)

    def _latex_function(self, fn: Function) -> str:
        """Follows _format_function: named dimensions printed at known ranks where the
        text holds for every size, else the graph of unknown shapes, else a transform
        of its function's LaTeX, else the closure's AST."""
        from . import latex
        ranked = self._latex_with_named_dims(fn)
        if ranked is not None:
            return ranked
        try:
            names, inputs, out = self._function_graph(fn)
            return latex.format_graph_latex(names, out, inputs, self.precision)
        except BpError:
            if isinstance(fn, Transform):
                return latex.transform_latex(fn.kind, self._latex_function(fn.fn), fn.options)
            if isinstance(fn, Closure):
                return latex.closure_latex(fn, self.precision)
            return latex.source_latex(render.format_function(fn))

    def _latex_with_named_dims(self, fn: Function) -> str | None:
        """As _format_with_named_dims: the graph at two assignments of sizes that share
        no number, used only where both the bp text and the LaTeX agree."""
        from . import latex
        dims = [(name, k) if d == "_" else d for name, ann in _annotations(fn).items()
                for k, d in enumerate(ann) if isinstance(d, str)]
        if not dims:
            return None
        dims = list(dict.fromkeys(dims))
        texts, tex = set(), set()
        for first in (3, 4):
            sizes = {d: first + 2 * i for i, d in enumerate(dims)}
            try:
                names, inputs, out = self._function_graph(fn, sizes=sizes)
                texts.add(render.format_graph_function(names, out, inputs, self._shadowed_names()))
                tex.add(latex.format_graph_latex(names, out, inputs, self.precision))
            except BpError:
                return None
        return tex.pop() if len(texts) == 1 and len(tex) == 1 else None

    def format(self, value) -> str:
        """A value as `print` shows it; a function as its simplified formula."""
        if not isinstance(value, (np.ndarray, tuple, Record, Function, str)):
            value = from_python(value, copy=False)
        if isinstance(value, Function):
            return self._format_function(value)
        if isinstance(value, tuple):
            inner = ", ".join(self.format(x) for x in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, Record):
            return "{" + ", ".join(f"{k}: {self.format(x)}" for k, x in value.items()) + "}"
        return render.format_value(value, self.precision)

    def _format_function(self, fn: Function) -> str:
        """The function's body from its graph.  Where no graph can be built without
        shapes (the jacobian of a parameter without an annotation), a transform prints
        as itself applied to its function's printed body: the captured values of a
        closure are in that body, so the text reads back to the same function
        whatever the names mean where it is read."""
        if isinstance(fn, Builtin):
            return render.format_function(fn)
        _check_wrt(fn)                   # a wrong wrt= is an error, printed or called
        ranked = self._format_with_named_dims(fn)
        if ranked is not None:
            return ranked
        try:
            names, inputs, out = self._function_graph(fn, records=True)
            return render.format_graph_function(names, out, inputs, self._shadowed_names(),
                                                self._default_sources(fn))
        except BpError:
            if isinstance(fn, Transform):
                inner = self._format_function(fn.fn)
                return render.format_function(fn, inner=inner, shadowed=self._shadowed_names())
            return render.format_function(fn, defaults=self._default_sources(fn))

    def result_shape(self, fn: Function) -> str | None:
        """The shape fn returns, in terms of its parameters' annotations (`[m]` for
        `layer(W: [m, n], x: [n]) = tanh(W @ x)`), or None where a parameter has no
        annotation.  Built for two assignments of sizes that share no number, as
        printing does: a dimension is a name where it is that name's size in both, a
        number where it is the same number in both, else `_`."""
        known = _annotations(fn)
        names = list(autodiff.param_names(fn))
        if not names or any(n not in known for n in names):
            return None
        dims = list(dict.fromkeys((name, k) if d == "_" else d for name, ann in known.items()
                                  for k, d in enumerate(ann) if isinstance(d, str)))
        outs = []
        for first in (3, 4):
            sizes = {d: first + 2 * i for i, d in enumerate(dims)}
            try:
                outs.append((sizes, self._function_graph(fn, sizes=sizes)[2]))
            except BpError:
                return None
        (s1, o1), (s2, o2) = outs
        named = {v: d for d, v in s1.items() if isinstance(d, str)}

        def dim(a, b):
            d = named.get(a)
            if d is not None and s2.get(d) == b:
                return d
            return str(a) if a == b else "_"

        def shape_of(x, y):
            if isinstance(x, tuple) and isinstance(y, tuple):
                inner = ", ".join(shape_of(a, b) for a, b in zip(x, y))
                return f"({inner},)" if len(x) == 1 else f"({inner})"
            if isinstance(x, Record) and isinstance(y, Record):
                return "{" + ", ".join(f"{k}: {shape_of(x[k], y[k])}" for k in x.keys()) + "}"
            if isinstance(x, Node) and isinstance(x.shape, tuple) and isinstance(y.shape, tuple):
                return "[" + ", ".join(dim(a, b) for a, b in zip(x.shape, y.shape)) + "]"
            return "…"
        return shape_of(o1, o2)

    def _default_sources(self, fn: Function) -> dict:
        """The printed defaults of fn's parameters (`lr=0.1`), each as bp source of its
        value.  None printed where a parameter without one follows one with one (jvp's
        tangent after a defaulted parameter: bp's syntax puts defaults last)."""
        spec = parameter_defaults(fn)
        given = [d is not REQUIRED for _, d in spec]
        if not any(given) or any(not g for g in given[given.index(True):]):
            return {}
        out = {}
        for name, value in spec:
            if value is REQUIRED:
                continue
            text = self._value_source(value)
            if text is None:
                return {}
            out[name] = text
        return out

    def _value_source(self, v) -> str | None:
        """A lowered constant value as bp source that reads back to it, or None."""
        if isinstance(v, Node):
            return render.const_source(v.value, self._shadowed_names())[0] if v.op == "const" else None
        if isinstance(v, Function):
            return f"({self._format_function(v)})"
        if isinstance(v, tuple):
            items = [self._value_source(x) for x in v]
            if None in items:
                return None
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if isinstance(v, Record):
            items = {k: self._value_source(x) for k, x in v.items()}
            if None in items.values():
                return None
            return "{" + ", ".join(f"{k}: {t}" for k, t in items.items()) + "}"
        return None

    def _format_with_named_dims(self, fn: Function) -> str | None:
        """A function of parameters with named dimensions (`W: [m, n], x: [n]`), printed
        with their ranks known (so in matrix-calculus form), where that text holds for
        every size: it is built for two assignments of sizes that share no number
        (3, 5, 7, … and 4, 6, 8, …), and used only if both print the same, so no size
        can have gone into the text.  None otherwise (the caller prints the graph of
        unknown shapes, right for every shape)."""
        known = _annotations(fn)
        dims = [(name, k) if d == "_" else d for name, ann in known.items()
                for k, d in enumerate(ann) if isinstance(d, str)]
        if not dims:
            return None
        dims = list(dict.fromkeys(dims))
        texts = set()
        for first in (3, 4):
            sizes = {d: first + 2 * i for i, d in enumerate(dims)}      # 3, 5, 7 … or 4, 6, 8 …
            try:
                names, inputs, out = self._function_graph(fn, sizes=sizes)
                texts.add(render.format_graph_function(names, out, inputs, self._shadowed_names()))
            except BpError:
                return None
        return texts.pop() if len(texts) == 1 else None

    def _shadowed_names(self) -> frozenset:
        """The builtins and constants whose names the session has bound to something
        else (`sum = 3`, `inf = 5`): printed text calls those bp.sum, bp.inf."""
        out = {name for name in self.globals if name in ops.BUILTINS or name in SPECIAL}
        for name, value in CONSTANTS.items():
            v = self.globals.get(name)
            if not (isinstance(v, np.ndarray) and v.shape == () and
                    (float(v) == value or math.isnan(value) and math.isnan(float(v)))):
                out.add(name)
        return frozenset(out)

    def function(self, src: str) -> Callable:
        """A Python callable for a bp function: takes arrays or floats, returns arrays."""
        fn = self._value_of(src)
        if not isinstance(fn, Function):
            raise BpTypeError(f"{src!r} is not a function")
        return self._callable(fn)

    def graph(self, src: str) -> Graph:
        """The graph of a function, built for symbolic (unknown) argument shapes."""
        fn = self._value_of(src)
        if not isinstance(fn, Function):
            raise BpTypeError(f"{src!r} is not a function")
        names, inputs, out = self._guard(lambda: self._function_graph(fn, records=True))
        return render.FunctionGraph(*_flat_inputs(names, inputs),
                                    [o for o in leaves(out) if isinstance(o, Node)],
                                    _transform_word(fn))

    def define(self, name: str, fn: Callable, vjp: Callable | None = None,
               shape: Callable | None = None) -> None:
        """Make a Python function callable from bp as `name(…)`.

        fn takes NumPy arrays and returns one.  vjp(*args, out, ct) returns one
        cotangent per argument (each of its argument's shape); with it, grad and
        the other reverse-mode transforms go through the function — to first
        order only, since the vjp is Python code bp cannot differentiate again.
        shape(*arg_shapes) gives the result's shape; by default the arguments'
        broadcast shape, as for an elementwise function.
        """
        if not name.isidentifier() or name in KEYWORDS:
            raise BpValueError(f"{name!r} is not a bp name")
        import inspect
        if isinstance(getattr(fn, "nin", None), int):          # a NumPy ufunc
            params = ("x",) if fn.nin == 1 else tuple(f"x{i}" for i in range(fn.nin))
        else:
            try:
                params = tuple(p.name for p in inspect.signature(fn).parameters.values()
                               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                               and p.default is p.empty)
            except (TypeError, ValueError):
                params = ("x",)
        self.globals[name] = HostFunction(name, fn, params or ("x",), vjp, shape)

    def is_expression(self, src: str) -> bool:
        """Whether src is one expression (what `%bp e` returns the value of)."""
        try:
            program = parse(src, SourceName("<line>", src.splitlines()), self.limits.max_depth)
        except BpError:
            return False
        return len(program.stmts) == 1 and isinstance(program.stmts[0], ast.ExprStmt)

    def is_complete(self, src: str) -> bool:
        """False when more lines could complete the input (the REPL's continuation test)."""
        return _is_complete(src)

    def __getitem__(self, name: str):
        if name not in self.globals:
            raise BpNameError(f"name '{name}' is not defined")
        return self.to_python(self.globals[name])

    def __setitem__(self, name: str, value) -> None:
        if not name.isidentifier() or name in KEYWORDS:
            raise BpValueError(f"{name!r} is not a bp name")
        self.globals[name] = from_python(value)

    def names(self) -> list[str]:
        return [n for n in self.globals if n not in CONSTANTS or self.globals[n] is not None]

    # ── statements ───────────────────────────────────────────────────────
    def _exec_stmt(self, stmt, echo, shown: list) -> None:
        match stmt:
            case ast.Assign(targets, value):
                v = self._eval(value)
                parts = unpack(targets, v, stmt.span)
                for part in parts:
                    if isinstance(part, str):
                        raise BpTypeError("a string can only be printed or name a file", value.span)
                self.globals.update(zip(targets, parts))
            case ast.Update(name):
                self.globals[name] = to_value(Lowerer(_Globals(self), eager=True).update(stmt, None))
            case ast.Def(name, params, body):
                # parameter defaults are evaluated here, once (as Python does)
                self.globals[name] = Lowerer(_Globals(self), eager=True).closure(
                    name, params, body, None, stmt.span)
            case ast.Print(values):
                text = " ".join(self.format(self._eval(v)) for v in values)
                self._write(text + "\n")
            case ast.Latex(value):
                self._write(self.format_latex(self._eval(value), value.span) + "\n")
            case ast.Assert(test, text):
                v = self._eval(test)
                if not isinstance(v, np.ndarray):
                    raise BpTypeError(f"assert needs a tensor, got {ops.describe(to_lowered(v))}",
                                      test.span)
                if not np.all(v != 0):
                    raise BpAssertionError(text, stmt.span)
            case ast.For(var, it, body):
                n = loop_count(Lowerer(_Globals(self), eager=True), it, None)
                bar = self.progress(n, f"for {var}") if self.progress and not self._looping else None
                self._looping += 1
                try:
                    for i in range(n):
                        ops.check_interrupt(stmt.span)
                        self.globals[var] = np.asarray(float(i))
                        self._exec_block(body, echo, shown)
                        if bar is not None:
                            bar.advance()
                except _Break:
                    pass
                finally:
                    self._looping -= 1
                    if bar is not None:
                        bar.close()
            case ast.While(test, body):
                # as Python runs it: the test re-read before each iteration, a scalar
                cap = self.limits.max_iterations
                k = 0
                self._looping += 1
                try:
                    while True:
                        ops.check_interrupt(stmt.span)
                        v = self._eval(test)
                        if not isinstance(v, np.ndarray) or v.size != 1:
                            raise BpShapeError("the test of a while loop must be a scalar, got "
                                               f"{ops.describe(to_lowered(v))}", test.span)
                        if float(v.reshape(())) == 0:
                            break
                        if k >= cap:
                            raise ops.limit_error("this while loop's condition was still true "
                                                  "after the iteration cap", "max_iterations",
                                                  cap, stmt.span)
                        k += 1
                        self._exec_block(body, echo, shown)
                except _Break:
                    pass
                finally:
                    self._looping -= 1
            case ast.If(test, then, orelse):
                v = self._eval(test)
                if not isinstance(v, np.ndarray) or v.size != 1:
                    raise BpShapeError("the test of an if statement must be a scalar, got "
                                       f"{ops.describe(to_lowered(v))}", test.span)
                branch = then if float(v.reshape(())) != 0 else orelse
                if isinstance(branch, ast.If):
                    self._exec_stmt(branch, echo, shown)
                elif branch is not None:
                    self._exec_block(branch, echo, shown)
            case ast.Break():
                raise _Break()
            case ast.Import(path):
                self._import(path, stmt.span)
            case ast.GraphStmt(value, path):
                fn, (names, inputs, out) = self._graph_of(value, "graph shows")
                g = render.FunctionGraph(*_flat_inputs(names, inputs),
                                         [o for o in leaves(out) if isinstance(o, Node)],
                                         _transform_word(fn))
                if path is None:
                    if not (self.display is not None and self.display("graph", g)):
                        self._write(g.listing() + "\n")
                else:
                    write_file(self._path(path, stmt.span), g.to_dot(), stmt.span)
            case ast.Export(value, path, _, engine):
                from . import codegen           # only export needs it: start-up stays quick
                fn = self._eval(value)
                if not isinstance(fn, Function):
                    raise BpTypeError(f"export writes a function, got "
                                      f"{ops.describe(to_lowered(fn))}", value.span)
                try:
                    entry = self._function_graph(fn, value.span, records=True, to_read=False)
                except BpError:
                    entry = self._row_jacobian(fn, value.span)
                    if entry is None:
                        raise
                source = codegen.module({_export_name(value): entry},
                                        {n: v for n, v in self.globals.items()}, engine)
                write_file(self._path(path, stmt.span), source, stmt.span)
            case ast.Plot(values, on, path):
                from . import plot
                series = [self._series(v, on) for v in values]
                if path is None:
                    if not (self.display is not None and self.display("plot", plot.Figure(series))):
                        colour = getattr(self.stdout, "isatty", lambda: False)()
                        self._write(plot.terminal(series, colour, stmt.span) + "\n")
                else:
                    plot.image(series, str(self._path(path, stmt.span)), stmt.span)
            case ast.ExprStmt(value):
                v = self._eval(value)
                if echo:
                    shown.append(v)
                    if callable(echo):
                        echo(v)
                    else:
                        self._write(self.format(v) + "\n")
            case _:
                raise BpTypeError(f"'{type(stmt).__name__.lower()}' is not allowed here", stmt.span)

    def _graph_of(self, value: ast.Expr, what: str):
        """The function an expression names, and its graph (for graph and export)."""
        fn = self._eval(value)
        if not isinstance(fn, Function):
            raise BpTypeError(f"{what} a function, got {ops.describe(to_lowered(fn))}", value.span)
        return fn, self._function_graph(fn, value.span, records=True)

    def _exec_block(self, block: ast.Block, echo, shown: list) -> None:
        for stmt in block.stmts:
            self._exec_stmt(stmt, echo, shown)

    def _path(self, path: str, span: Span) -> Path:
        from pathlib import Path          # here, not at the top: pathlib costs start-up time
        self._need_files(span)
        base = Path(span.file).parent if span.file and not span.file.startswith("<") else Path.cwd()
        return base / path

    def _need_files(self, span: Span | None) -> None:
        if not self.files:
            raise BpIOError("this interpreter has no file access (Interpreter(files=False)): "
                            "import, export, graph … to and plot … to are refused", span)

    def _import(self, path: str, span: Span) -> None:
        self._need_files(span)
        if not path.endswith(".bp"):
            raise BpImportError(f"cannot import {path!r}: bp imports bp source files (.bp)", span)
        from pathlib import Path
        base = Path(span.file).parent if span.file and not span.file.startswith("<") else Path.cwd()
        target = (base / path).resolve()
        if str(target) in self._imported:
            return
        try:
            text = target.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise BpImportError(f"cannot import {path!r}: {_reason(err)}", span) from None
        self._imported.add(str(target))
        shown_name = os.path.relpath(target) if not os.path.isabs(path) else str(target)
        self.exec(text, filename=shown_name)

    # ── expressions ──────────────────────────────────────────────────────
    def _eval(self, e: ast.Expr):
        return to_value(Lowerer(_Globals(self), eager=True).expr(e, None))

    def _value_of(self, src: str):
        with self._running():
            return self._value_of_running(src)

    def _value_of_running(self, src: str):
        name = SourceName("<eval>", src.splitlines())
        self.sources["<eval>"] = name.lines
        program = self._guard(lambda: parse(src, name, self.limits.max_depth))
        if len(program.stmts) != 1 or not isinstance(program.stmts[0], ast.ExprStmt):
            raise BpTypeError("expected a single expression", program.stmts[0].span if program.stmts else None)
        e = program.stmts[0].value
        return self._guard(lambda: self._eval(e), e.span)

    def _call_compiled(self, fn: Closure, args: list, kwargs: dict, span: Span):
        """Call a bp function on constant arguments through a cached plan.

        The plan is specialised to the arguments' shapes and to the globals
        that lowering read, and rebuilt when any of them changes.  Returns
        None when the result is not made of tensors (a function returned
        from a function), and the caller then inlines the call instead.
        """
        arg_values = [to_value(a) for a in args]
        kw_values = {k: to_value(v) for k, v in kwargs.items()}
        key = (tuple(map(_signature, arg_values)),
               tuple((k, _signature(v)) for k, v in sorted(kw_values.items())))
        key = (_function_key(fn),) + key
        entry = self._plans.get(key)
        if entry is not None and any(self.globals.get(n, _ABSENT) is not v
                                     for n, v in entry[2].items()):
            entry = None
        if entry is None:
            with collector_paused(), ops.built_to_run():
                entry = self._specialise(fn, arg_values, kw_values, span)
            if entry is None:
                return None
            if len(self._plans) >= MAX_PLANS:
                self._plans.pop(next(iter(self._plans)))
            # The function and any function arguments too: their ids are in the key.
            self._plans[key] = entry + (fn, [v for v in leaves(tuple(arg_values) + tuple(kw_values.values()))
                                             if isinstance(v, Function)])
        plan, template = entry[0], entry[1]
        flat = [leaf for v in list(arg_values) + [kw_values[k] for k in sorted(kw_values)]
                for leaf in leaves(v) if isinstance(leaf, np.ndarray)]
        results = plan.run(flat)
        return rebuild(template, iter([ops.const(r, span) for r in results]))

    def _series(self, e: ast.Expr, on: ast.Expr | None):
        """What `plot` draws for one expression: a function over the interval, or a vector."""
        label = render.format_expr(e)
        v = self._eval(e)
        if isinstance(v, np.ndarray):
            if v.ndim != 1:
                raise BpShapeError(f"plot draws vectors, got shape {list(v.shape)}", e.span)
            return label, np.arange(v.size, dtype=float), v
        if not isinstance(v, Function):
            raise BpTypeError(f"plot draws functions and vectors, got {ops.describe(to_lowered(v))}",
                              e.span)
        if on is None:
            raise BpTypeError(f"plotting a function needs an interval: plot {label} on (a, b)", e.span)
        bounds = self._eval(on)
        if not (isinstance(bounds, tuple) and len(bounds) == 2
                and all(isinstance(b, np.ndarray) and b.size == 1 for b in bounds)):
            raise BpTypeError("the interval of plot … on (a, b) is a pair of numbers", on.span)
        xs = np.linspace(float(bounds[0]), float(bounds[1]), 400)
        ys = to_value(Lowerer(_Globals(self), eager=True).call(v, [ops.const(xs)], {}, e.span))
        if not isinstance(ys, np.ndarray) or ys.shape != xs.shape:
            raise BpShapeError(f"plot draws one-argument elementwise functions; {label} gives "
                               f"{ops.describe(to_lowered(ys))} for a vector of {xs.size}", e.span)
        return label, xs, ys

    def _gradcheck(self, fn: Function, args: list, span: Span):
        """SPEC §12: max|a − b| / max(max|b|, 1e-12) between grad(f) and central
        differences with step 1e-6·max(1, |xᵢ|), over the first argument."""
        values = [to_value(a) for a in args]
        x = values[0]
        if not isinstance(x, np.ndarray):
            raise BpTypeError("gradcheck checks the gradient for a tensor argument", span)

        def call(f, first):
            lowered = [to_lowered(first)] + [to_lowered(v) for v in values[1:]]
            return to_value(Lowerer(_Globals(self), eager=True).call(f, lowered, {}, span))

        analytic = np.asarray(call(Transform("grad", fn, (), span), x), dtype=np.float64)
        numeric = np.empty(x.shape)
        for i in np.ndindex(x.shape):
            h = 1e-6 * max(1.0, abs(float(x[i])))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            numeric[i] = (float(call(fn, up)) - float(call(fn, down))) / (2 * h)
        scale = max(float(np.max(np.abs(numeric), initial=0.0)), 1e-12)
        return ops.const(float(np.max(np.abs(analytic - numeric), initial=0.0)) / scale, span)

    def _specialise(self, fn, arg_values, kw_values, span):
        deps: dict = {}
        inputs: list[Node] = []

        def as_input(v):
            if isinstance(v, np.ndarray):
                node = make_input(f"a{len(inputs)}", v.shape, span)
                inputs.append(node)
                return node
            return to_lowered(v)

        args = [rebuild(v, iter([as_input(x) for x in leaves(v)])) for v in arg_values]
        kwargs = {k: rebuild(kw_values[k], iter([as_input(x) for x in leaves(kw_values[k])]))
                  for k in sorted(kw_values)}
        lowerer = Lowerer(_Globals(self, deps), eager=False)
        order = None                        # topo_order of the outputs, when a walk made it
        if isinstance(fn, Transform):
            # The plan can read the transform's placeholders directly: no substitution.
            pairs: list = []
            out = autodiff.call_transform(lowerer, fn, args, kwargs, span, pairs)
            outs = leaves(out)
            if not all(isinstance(o, Node) for o in outs):
                return None
            swap = {id(actual): ph for ph, actual in pairs}
            if len(swap) == len(pairs) and all(a.op == "input" for _, a in pairs):
                walked = topo_order(outs)
                if not any(id(n) in swap for n in walked):
                    return self._plan([swap.get(id(i), i) for i in inputs], outs, walked), out, deps
            out = rebuild(out, iter(autodiff.substitute(outs, {id(p): a for p, a in pairs})))
        else:
            out, order = autodiff.rerolled(lowerer.call(fn, args, kwargs, span))
        outs = leaves(out)
        if not all(isinstance(o, Node) for o in outs):
            return None
        return self._plan(inputs, outs, order), out, deps

    def _function_graph(self, fn: Function, span: Span | None = None, sizes: dict | None = None,
                        records: bool = False, to_read: bool = True):
        """Lower fn on inputs of unknown shape (or the annotated one): names, inputs, output.

        A parameter annotated with named dimensions (`W: [m, n]`) has an unknown
        shape, unless `sizes` gives each name (and each `_`, by position) a size.
        With `records`, a parameter that the body reads fields of (`θ.W`) is a
        record of inputs of unknown shape, one per field read (nested for `θ.l1.W`):
        its inputs are then that record (the printer writes its leaves θ.W).
        A graph `to_read` (printed, listed, typeset; not exported, whose module runs
        whatever it is given) has the parameters a scalar-output transform needs 0-d
        made 0-d (_scalar_inputs)."""
        names = list(autodiff.param_names(fn))
        known = _annotations(fn)
        fields = _record_params(fn) if records else {}

        def shape_of(name):
            ann = known.get(name)
            if ann is None or not all(isinstance(d, int) for d in ann) and sizes is None:
                return SymShape.of(name)
            return tuple(d if isinstance(d, int) else sizes[(name, k) if d == "_" else d]
                         for k, d in enumerate(ann))

        def record_of(name, tree):
            return Record({k: record_of(f"{name}.{k}", sub) if sub else
                           make_input(f"{name}.{k}", SymShape.of(f"{name}.{k}"), span)
                           for k, sub in tree.items()})
        inputs = [record_of(n, fields[n]) if fields.get(n) else make_input(n, shape_of(n), span)
                  for n in names]
        with collector_paused():
            scalar = self._scalar_inputs(fn, names, list(inputs), span) if to_read else inputs
            rng = self._rng
            state = rng.bit_generator.state if rng is not None else None
            try:
                out = Lowerer(_Globals(self, {}, symbolic=True), eager=False).call(fn, scalar, {}, span)
                inputs = scalar
            except BpError:
                if scalar is inputs:
                    raise
                # No call works then either (each has those parameters 0-d): the graph
                # is the one of the shapes as written, drawing what it drew before.
                self._rng = rng
                if rng is not None:
                    rng.bit_generator.state = state
                out = Lowerer(_Globals(self, {}, symbolic=True), eager=False).call(fn, inputs, {}, span)
        if not all(isinstance(o, Node) for o in leaves(out)):
            raise BpTypeError("the function does not return tensors", span)
        return names, inputs, out

    def _scalar_inputs(self, fn: Function, names: list, inputs: list, span: Span | None) -> list:
        """The inputs, with each parameter of unknown shape that a scalar-output transform
        (grad, value_and_grad, hessian, hvp) needs to be 0-d made 0-d.

        Such a transform fails at the call unless its function returns a 0-d value, and
        an output whose shape is the broadcast of some parameters' shapes (sum(v) + t^3:
        the shape of t) is 0-d only where each of them is.  So every call that works has
        those parameters 0-d, and the derivative printed for them (3*t^2, not a cotangent
        spread to t's shape and summed back) holds for every call; the others keep
        their unknown shapes.  Each transform down the chain adds its own (grad(grad(f))
        needs grad(f)'s output 0-d, and f's)."""
        rng = self._rng
        state = rng.bit_generator.state if rng is not None else None
        inner = fn
        while isinstance(inner, Transform):
            if inner.kind in _SCALAR_OUTPUT:
                self._make_scalar(inner, names, inputs, span)
            inner = inner.fn
        self._rng = rng                         # the probes drew no random numbers
        if rng is not None:
            rng.bit_generator.state = state
        return inputs

    def _make_scalar(self, t: Transform, names: list, inputs: list, span: Span | None) -> None:
        """_scalar_inputs for one transform t: lower t's function (on the inputs as they
        are) and make 0-d, in place, each parameter of unknown shape its value's shape
        is a broadcast of."""
        n = len(autodiff.param_names(t.fn))
        try:
            out = Lowerer(_Globals(self, {}, symbolic=True), eager=False).call(t.fn, inputs[:n], {}, span)
        except BpError:
            return                              # the lowering after raises it, located
        shape = out.shape if isinstance(out, Node) else None
        if not isinstance(shape, SymShape) or shape.parts is None \
                or not all(type(p) is str or p == () for p in shape.parts):
            return
        for k, name in enumerate(names[:n]):
            if name in shape.parts and isinstance(inputs[k], Node) and inputs[k].shape == SymShape.of(name):
                inputs[k] = make_input(name, (), span)
        if t.kind == "hvp" and len(inputs) > n:
            # the vector has the shape of the parameter it is a direction of
            wrt, many = autodiff.resolve_wrt(t, tuple(names[:n]), span)
            if not many and inputs[wrt[0]].shape == () and isinstance(inputs[n], Node) \
                    and inputs[n].shape == SymShape.of(names[n]):
                inputs[n] = make_input(names[n], (), span)

    def _row_jacobian(self, fn: Function, span: Span):
        """What export writes for a jacobian or hessian whose shapes are known only at
        the call (parameters without annotations): the value (f, or grad(f) for a
        hessian) and its VJP, each built for unknown shapes, which the module loops
        over, one VJP per output element.  None where that cannot be built either."""
        from . import codegen
        if not (isinstance(fn, Transform) and fn.kind in ("jacobian", "hessian")):
            return None
        try:
            names = list(autodiff.param_names(fn))
            wrt, many = autodiff.resolve_wrt(fn, tuple(names), span)
            value = fn.fn if fn.kind == "jacobian" else Transform("grad", fn.fn, fn.options, fn.span)
            entry = self._function_graph(value, span, to_read=False)
            inputs = [make_input(n, SymShape.of(n), span) for n in names]
            out = Lowerer(_Globals(self, {}, symbolic=True), eager=False).call(value, inputs, {}, span)
            outs = leaves(out)
            if not outs or not all(isinstance(o, Node) for o in outs):
                return None
            cnames = [f"∂{k}" for k in range(len(outs))]
            cts = [make_input(c, o.shape, span) for c, o in zip(cnames, outs)]
            grads = autodiff.vjp_graph(outs, cts, [inputs[i] for i in wrt])
        except BpError:
            return None
        vjp_names = names + [autodiff.fresh_name(f"u{k}", names) for k in range(len(outs))]
        return codegen.RowJacobian(names, entry, (vjp_names, inputs + cts, tuple(grads)),
                                   tuple(wrt), many)

    def _callable(self, fn: Function) -> Callable:
        return BpFunction(fn, self)

    def _repr_latex(self, value) -> str | None:
        """IPython's `_repr_latex_`: the value as display math, or None (plain text)."""
        from . import latex
        try:
            return latex.display_math(self.format_latex(value))
        except BpError:
            return None

    def to_python(self, v):
        if isinstance(v, np.ndarray):
            v.flags.writeable = False          # the session's own array: read it, don't change it
            return v
        if isinstance(v, tuple):
            return tuple(self.to_python(x) for x in v)
        if isinstance(v, Record):
            return {k: self.to_python(x) for k, x in v.items()}
        if isinstance(v, Function):
            return self._callable(v)
        return v

    # ── errors ───────────────────────────────────────────────────────────
    def _write(self, text: str) -> None:
        """Output of print, latex, graph and plot: a full disk or a closed pipe's other
        failures are an io error at the statement, not an internal one."""
        try:
            self.stdout.write(text)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise BpIOError(f"cannot write the output: {_reason(err)}") from None

    def _guard(self, thunk, span: Span | None = None):
        """Run thunk; every failure leaves as a BpError with its source line."""
        try:
            return thunk()
        except _Break:
            raise
        except BpError as err:
            raise self._attach(err.located(span)) from None
        except RecursionError:
            raise self._attach(BpValueError("the program is nested too deeply to evaluate", span)) from None
        except (KeyboardInterrupt, BrokenPipeError):
            self._interrupt.clear()
            raise
        except Exception as err:          # a bug in bp: say so, located, never a traceback
            raise self._attach(BpInternalError(f"{type(err).__name__}: {err}", span)) from None

    def _attach(self, err: BpError) -> BpError:
        """Give the error its source line, but only from bp source: an import of
        some other file reports the place, never the file's contents."""
        if err.span is not None and err.source_line is None and _is_bp_source(err.span.file):
            lines = getattr(err.span.file, "lines", None)       # the text the span was parsed from
            if lines is None:
                lines = self.sources.get(err.span.file)
            if lines is not None and 0 < err.span.line <= len(lines):
                err.source_line = lines[err.span.line - 1]
        return err


# ── conversions ──────────────────────────────────────────────────────────

class BpFunction:
    """A bp function as a Python callable (what `Interpreter.function` and `eval`
    give): called with arrays or floats, it returns arrays.  Its repr and __doc__
    are the function as bp prints it, `_repr_latex_` shows it as math in IPython,
    and `bp_function` is the bp value, so `bp[name] = bp.eval("grad(f)")` binds it
    back."""

    def __init__(self, fn: Function, interp: Interpreter):
        self.bp_function, self._interp = fn, interp
        # What the direct path reads on every call (none of it is ever rebound).
        self._key = _function_key(fn) if isinstance(fn, (Closure, Transform)) else None
        self._plans, self._globals, self._interrupt = interp._plans, interp.globals, interp._interrupt
        self.__name__ = getattr(fn, "name", None) or "bp_function"
        self.__doc__ = render.format_value(fn)

    def __call__(self, *args, **kwargs):
        # The direct path: a plan built by an earlier call for these argument shapes
        # (and still valid for the globals it read) runs straight on the arrays, all
        # in this one frame (a call of a small plan costs a few µs: each step counts).
        interrupt = self._interrupt
        if interrupt.is_set():                # an interrupt while idle does not carry over
            interrupt.clear()
        fkey = self._key
        if fkey is None:
            return self._first_call(args, kwargs)
        ndarray = np.ndarray
        values = [a if type(a) is ndarray and a.dtype is _F64 else _argument(a) for a in args]
        if kwargs:
            kw_values = {k: _argument(v) for k, v in kwargs.items()}
            names = sorted(kw_values)
            key = (fkey, tuple(map(_signature, values)),
                   tuple((k, _signature(kw_values[k])) for k in names))
            values += [kw_values[k] for k in names]
        else:
            key = (fkey, tuple([v.shape if type(v) is ndarray else _signature(v) for v in values]), ())
        entry = self._plans.get(key)
        if entry is None:
            return self._first_call(args, kwargs)
        get = self._globals.get
        for name, v in entry[2].items():
            if get(name, _ABSENT) is not v:
                return self._first_call(args, kwargs)
        flat = values
        for v in values:
            if type(v) is not ndarray:
                flat = [leaf for v in values for leaf in leaves(v) if isinstance(leaf, ndarray)]
                break
        plan, interp = entry[0], self._interp
        try:
            if plan.has_loops:                # a loop's iteration cap is this session's
                with interp._running():
                    results = plan.run(flat, interp.limits.check_nan, interrupt)
            else:
                results = plan.run(flat, interp.limits.check_nan, interrupt)
        except BaseException as err:          # located, as every failure of a call is
            interp._guard(lambda: _reraise(err))
            raise
        return plan.python(results, entry[1],
                           lambda r: interp.to_python(rebuild(entry[1], iter(r))))

    def _first_call(self, args, kwargs):
        """The first call for these shapes (or a function without a plan) lowers
        eagerly: on copies, since what it returns may be an argument or a view of one,
        and goes out read-only.  It builds and caches the plan (_call_compiled)."""
        interp = self._interp
        lowered = [to_lowered(from_python(a)) for a in args]
        kw = {k: to_lowered(from_python(v)) for k, v in kwargs.items()}
        lowerer = Lowerer(_Globals(interp), eager=True)
        with interp._running():
            result = interp._guard(lambda: to_value(lowerer.call(self.bp_function, lowered, kw, None)))
        return interp.to_python(result)

    def __repr__(self) -> str:
        try:                                   # the formula, as print shows it
            text = self._interp.format(self.bp_function)
        except BpError:
            text = self.__doc__
        return f"<bp function {text if len(text) <= 72 else text[:71] + '…'}>"

    def _repr_latex_(self) -> str | None:
        return self._interp._repr_latex(self.bp_function)


def to_lowered(v):
    """A session value as a lowered value (tensors become constant nodes)."""
    if isinstance(v, np.ndarray):
        return ops.const(v)
    if isinstance(v, tuple):
        return tuple(to_lowered(x) for x in v)
    if isinstance(v, Record):
        return Record({k: to_lowered(x) for k, x in v.items()})
    return v


def to_value(lv):
    """A lowered value whose tensors are all constants, as a session value."""
    if isinstance(lv, Node):
        if lv.op != "const":
            raise BpInternalError(f"a {lv.op} node was left unevaluated", lv.span)
        return lv.value
    if isinstance(lv, tuple):
        return tuple(to_value(x) for x in lv)
    if isinstance(lv, Record):
        return Record({k: to_value(x) for k, x in lv.items()})
    return lv


_F64 = np.dtype(np.float64)


def _argument(v):
    """An argument of a call from Python, as from_python(v, copy=False), quickly."""
    if type(v) is np.ndarray and v.dtype == _F64:
        return v
    if type(v) is float:
        return np.asarray(v)                   # a Python float is a float64
    return from_python(v, copy=False)


def _reraise(err: BaseException):
    """Raise err again (inside Interpreter._guard, which locates it)."""
    raise err


def from_python(v, copy: bool = True):
    """Host data as a bp value: numbers, lists and arrays become float64 tensors.

    A value bound to a name is copied (the host may change its array later);
    the arguments of one call need not be (bp never writes into an array).
    """
    if isinstance(v, (Function, Record)):
        return v
    if callable(v) and isinstance(getattr(v, "bp_function", None), Function):
        return v.bp_function
    if isinstance(v, tuple):
        return tuple(from_python(x, copy) for x in v)
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str) or not k.isidentifier() or k in KEYWORDS:
                raise BpValueError(f"a record field must be a bp name, not {k!r}")
        return Record({k: from_python(x, copy) for k, x in v.items()})
    if v is None or isinstance(v, (str, bytes)):
        raise BpTypeError(f"cannot use a Python {type(v).__name__} as a bp value")
    try:
        arr = np.array(v, dtype=np.float64) if copy else np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise BpTypeError(f"cannot use a Python {type(v).__name__} as a bp value") from None
    if arr.dtype == object:
        raise BpTypeError("cannot use a ragged or mixed Python list as a bp value")
    return arr


def _is_bp_source(filename: str) -> bool:
    return filename.startswith("<") or filename.endswith(".bp")


# The transforms whose function must return a 0-d value (SPEC §5).
_SCALAR_OUTPUT = frozenset(("grad", "value_and_grad", "hessian", "hvp"))


def _annotations(fn: Function) -> dict:
    """Shapes the function's parameters are annotated with (through transforms)."""
    if isinstance(fn, Closure):
        return {p.name: p.shape for p in fn.params if p.shape is not None}
    if isinstance(fn, Transform):
        return _annotations(fn.fn)
    return {}


def _check_wrt(fn: Function) -> None:
    """Raise the located error a call would raise for a wrt= that names no parameter."""
    while isinstance(fn, Transform):
        if fn.kind != "diff":
            autodiff.resolve_wrt(fn, autodiff.param_names(fn.fn), fn.span)
        fn = fn.fn


def _flat_inputs(names: list[str], inputs: list) -> tuple[list[str], list[Node]]:
    """One name per input node: a record parameter's leaves as θ.W, θ.l1.b."""
    out_names, out_nodes = [], []
    for name, x in zip(names, inputs):
        for path, leaf in zip(leaf_paths(x), leaves(x)):
            out_names.append(name + "".join(f".{k}" if kind == "field" else f"[{k}]"
                                            for kind, k in path))
            out_nodes.append(leaf)
    return out_names, out_nodes


def _record_params(fn: Function) -> dict:
    """The fields the body reads of each parameter, as nested dicts ({θ: {W: {}, b: {}}}
    for θ.W and θ.b): which parameters are records, for printing a function whose
    parameters have no annotation.  Read off the source (fields read through a
    function that the parameter is passed to are not seen)."""
    while isinstance(fn, Transform):
        fn = fn.fn
    if not isinstance(fn, Closure):
        return {}
    params = set(fn.param_names)
    out: dict = {}
    stack: list = [fn.body]
    while stack:
        x = stack.pop()
        if isinstance(x, tuple):
            stack.extend(reversed(x))             # source order: fields print as first read
            continue
        if not hasattr(x, "_fields") or isinstance(x, Span):
            continue
        if isinstance(x, ast.Field):
            chain, base = [], x
            while isinstance(base, ast.Field):
                chain.append(base.name)
                base = base.value
            if isinstance(base, ast.Name) and base.id in params:
                tree = out.setdefault(base.id, {})
                for name in reversed(chain):
                    tree = tree.setdefault(name, {})
        stack.extend(reversed([getattr(x, f) for f in x._fields]))
    return out


def _transform_word(fn: Function) -> str:
    return fn.kind if isinstance(fn, Transform) else "grad"


def _export_name(e: ast.Expr) -> str:
    """SPEC §12: a name stays a name; transforms join by underscores (grad(f) → grad_f)."""
    match e:
        case ast.Name(name):
            return name
        case ast.Call(ast.Name(name) | ast.BuiltinRef(name), args, _) if args:
            return f"{name}_{_export_name(args[0])}"
    return "f"


def write_file(path: Path, text: str, span: Span) -> None:
    """Write atomically: a temporary file beside the target, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise BpIOError(f"cannot write {str(path)!r}: {_reason(err)}", span) from None


def _function_key(fn):
    """What a compiled plan of fn depends on besides argument shapes and globals.

    A top-level lambda is keyed by its source (a loop that writes
    `grad(v -> …)` makes a new closure each time round, but the same plan
    serves); a closure over a function's locals by its identity.
    """
    match fn:
        case Closure(env=None):
            return ("λ", id(fn.body))
        case Closure():
            return ("c", id(fn))
        case Builtin(name):
            return ("b", name)
        case Transform(kind, inner, options):
            return ("t", kind, _function_key(inner), options)
    return ("?", id(fn))


def _signature(v):
    if isinstance(v, np.ndarray):
        return v.shape
    if isinstance(v, tuple):
        return ("(",) + tuple(map(_signature, v))
    if isinstance(v, Record):
        return ("{",) + tuple((k, _signature(x)) for k, x in v.items())
    # A function argument is inlined into the plan: key it by what it is (a builtin by
    # name, a closure by its body or identity), never by a bare id that could be reused.
    return ("fn", _function_key(v))


def _reason(err: Exception) -> str:
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, IsADirectoryError):
        return "it is a directory"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return err.strerror or str(err)


def run_file(path, **options) -> Interpreter:
    """Run a script in a fresh session and return the session."""
    return Interpreter(**options).run_file(path)
