"""Graph → a standalone Python module that imports only NumPy (SPEC §7).

One Python function per exported bp function, one line per node.  Globals
the function reads become module-level constants holding their values at
export.  Each node's code is its op's export template (`OpDef.export`);
the helpers those templates call (`OpDef.helpers`, often the kernel's own
source) are written once in the module's preamble.

Hygiene (SPEC §13): the code is first written with a placeholder for every
name it binds (functions, parameters, global constants, array constants,
temporaries), and the Python names are chosen last, by `_choose_names`: a bp
name is kept where it is a safe identifier that nothing else in the module
needs, otherwise mangled deterministically (`lambda` → `lambda_`), and the
generated names skip every name already taken.  Nothing the program names can
then capture or shadow `np`, a helper, a builtin or another name, and every
constant is spelled so it reads back to the same float64 bits.
"""
from __future__ import annotations

import inspect
import keyword
import math
import re
import struct
import unicodedata

import numpy as np

from .errors import BpTypeError
from .graph import Node, topo_order
from .ops import ACTIVE, REGISTRY, Jax
from .values import Record, leaf_paths, leaves

# A Jacobian whose shapes are known only at the call (jacobian and hessian of
# parameters without annotations) is exported as a loop of VJPs, one per output
# element, over two functions of the module: the value and its VJP.
_JACOBIAN_ROWS = '''
def _tree_leaves(x):
    if isinstance(x, tuple):
        return [y for z in x for y in _tree_leaves(z)]
    if isinstance(x, dict):
        return [y for z in x.values() for y in _tree_leaves(z)]
    return [np.asarray(x, dtype=np.float64)]


def _tree_rebuild(x, it):
    if isinstance(x, tuple):
        return tuple(_tree_rebuild(z, it) for z in x)
    if isinstance(x, dict):
        return {k: _tree_rebuild(z, it) for k, z in x.items()}
    return next(it)


def _jacobian_rows(value, vjp, args, wrt, many):
    """d value(*args) / d args[i] for i in wrt, shaped shape(out) + shape(arg): one
    VJP per element of each output, the cotangent a basis vector."""
    out = value(*args)
    outs = _tree_leaves(out)
    xs = [np.asarray(args[i], dtype=np.float64) for i in wrt]
    per_out = []
    for k, o in enumerate(outs):
        blocks = [np.zeros(o.shape + x.shape) for x in xs]
        for n, e in enumerate(np.eye(o.size)):
            us = [e.reshape(o.shape) if j == k else np.zeros(p.shape) for j, p in enumerate(outs)]
            for block, c in zip(blocks, vjp(*args, *us)):
                block.reshape((o.size,) + block.shape[o.ndim:])[n] = c
        per_out.append(tuple(blocks) if many else blocks[0])
    return _tree_rebuild(out, iter(per_out))
'''


# The same as jax.numpy code: rows stacked, not written in place.
_JACOBIAN_ROWS_JAX = '''
def _tree_leaves(x):
    if isinstance(x, tuple):
        return [y for z in x for y in _tree_leaves(z)]
    if isinstance(x, dict):
        return [y for z in x.values() for y in _tree_leaves(z)]
    return [np.asarray(x, dtype=np.float64)]


def _tree_rebuild(x, it):
    if isinstance(x, tuple):
        return tuple(_tree_rebuild(z, it) for z in x)
    if isinstance(x, dict):
        return {k: _tree_rebuild(z, it) for k, z in x.items()}
    return next(it)


def _jacobian_rows(value, vjp, args, wrt, many):
    """d value(*args) / d args[i] for i in wrt, shaped shape(out) + shape(arg): one
    VJP per element of each output, the cotangent a basis vector."""
    out = value(*args)
    outs = _tree_leaves(out)
    xs = [np.asarray(args[i], dtype=np.float64) for i in wrt]
    per_out = []
    for k, o in enumerate(outs):
        rows = [[] for _ in xs]
        for e in np.eye(o.size):
            us = [e.reshape(o.shape) if j == k else np.zeros(p.shape) for j, p in enumerate(outs)]
            for row, c in zip(rows, vjp(*args, *us)):
                row.append(np.asarray(c, dtype=np.float64))
        blocks = [(np.stack(r) if r else np.zeros((0,) + x.shape)).reshape(o.shape + x.shape)
                  for r, x in zip(rows, xs)]
        per_out.append(tuple(blocks) if many else blocks[0])
    return _tree_rebuild(out, iter(per_out))
'''


class RowJacobian:
    """An export entry for a Jacobian of unknown shapes: the parameters' names, the
    value's graph and its VJP's graph (each (names, inputs, output), the VJP's
    parameters followed by one cotangent per output leaf and its output the tuple
    of cotangents of the wrt leaves), the wrt positions, and whether wrt is a tuple."""
    __slots__ = ("names", "value", "vjp", "wrt", "many")

    def __init__(self, names, value, vjp, wrt, many):
        self.names, self.value, self.vjp, self.wrt, self.many = names, value, vjp, wrt, many


def _helper_source(item) -> str:
    """A helper as module code: a string as it is, a function by its own source."""
    if isinstance(item, str):
        return item.strip("\n")
    return inspect.getsource(item).strip("\n")


# ── the JAX form of a module (`export … as jax`, the JAX engine) ──────────
#
# One mechanism: an op's export (its template and its helpers) with jax.numpy for
# NumPy, `np.` read as `jnp.` (jax.numpy matches NumPy in names, arguments and
# results for most ops).  Where it does not (in-place writes, Python-side reads of
# traced values, loops), the op's own `OpDef.jax` form; tests/test_jax_engine.py runs
# every op's samples through the JAX module and fails for a form that is missing or
# wrong.

_NP = re.compile(r"(?<![\w.])np\.")


def to_jax(code: str) -> str:
    """NumPy source as jax.numpy source: every `np.` (not `xnp.`, not `a.np.`) is `jnp.`,
    and what jax.numpy spells otherwise: np.intp is jnp.int64, np.ascontiguousarray jnp.asarray."""
    return (_NP.sub("jnp.", code).replace("jnp.intp", "jnp.int64")
            .replace("jnp.ascontiguousarray(", "jnp.asarray("))


def _trip_bound(n: Node) -> int | None:
    """A bound on a loop's trip count known from the graph, or None: a constant count, or
    the count another loop ran (a reverse-mode loop runs as many times as its forward
    loop), bounded by that loop's own count."""
    while True:
        if n.op == "const" and n.value.ndim == 0:
            v = float(n.value)
            return max(0, math.ceil(v)) if math.isfinite(v) else None
        if n.op != "loop":
            return None
        b = n.attr("body")
        if n.attr("part") != len(b.carried) + len(b.emit):
            return None
        n = n.inputs[0]


def _jax_form(opdef) -> Jax:
    """The op's JAX form: its own (OpDef.jax), else its export with jnp for np."""
    form = opdef.jax
    if form is None:
        code = opdef.export
        if isinstance(code, str):
            code = to_jax(code)
        elif code is not None:
            code = (lambda f: lambda args, attrs: to_jax(f(args, attrs)))(code)
        return Jax(code, tuple(to_jax(_helper_source(h)) for h in opdef.helpers))
    if isinstance(form, Jax):
        return form
    return Jax(form)


def _helpers_of(opdef, engine: str) -> tuple:
    return opdef.helpers if engine == "numpy" else _jax_form(opdef).helpers


_HEADERS = {
    "numpy": "import numpy as np",
    "jax": "import jax\nimport jax.numpy as jnp\n\njax.config.update(\"jax_enable_x64\", True)",
}


def _preamble(ops, engine: str = "numpy") -> list[str]:
    """The module's helpers: what the exports of the ops its functions use call
    (`OpDef.helpers`, or for JAX their JAX forms), each once, in the order the
    registry lists them."""
    seen: dict[str, None] = {}
    for name, opdef in REGISTRY.items():
        if name in ops:
            for item in _helpers_of(opdef, engine):
                seen.setdefault(_helper_source(item))
    return ["\n\n" + text for text in seen]


_RESERVED: dict[str, tuple[frozenset, frozenset]] = {}


def _reserved(engine: str = "numpy") -> tuple[frozenset, frozenset]:
    """(the names any preamble defines, the names its code reads from the module's
    globals, builtins included), from the text of all helpers at once, so which
    names are free does not depend on which helpers a module needs."""
    if engine not in _RESERVED:
        import symtable
        rows = _JACOBIAN_ROWS if engine == "numpy" else to_jax(_JACOBIAN_ROWS_JAX)
        src = _HEADERS[engine] + "\n" + "\n".join(_preamble(set(REGISTRY), engine)) + rows
        top = symtable.symtable(src, "<export preamble>", "exec")
        defined = {s.get_name() for s in top.get_symbols()
                   if s.is_assigned() or s.is_imported() or s.is_namespace()}
        read, tables = set(), [top]
        while tables:
            t = tables.pop()
            read |= {s.get_name() for s in t.get_symbols()
                     if s.is_global() or (t is top and s.is_referenced())}
            tables.extend(t.get_children())
        imported = {"np", "math"} | ({"jnp", "jax"} if engine == "jax" else set())
        _RESERVED[engine] = frozenset(defined | imported), frozenset(read - defined)
    return _RESERVED[engine]


# ── names: every identifier in the module is chosen last, here ───────────

class _Sym:
    """A name the module binds: `want` is the bp name (or a generated stem),
    `shown` how bp spells it (`P.a`), for the module's note on renamed names."""
    __slots__ = ("want", "shown", "name")

    def __init__(self, want: str, shown: str | None = None):
        self.want, self.shown, self.name = want, shown or want, None


def _safe(name: str) -> bool:
    """Whether a bp name can be a Python identifier as it is.  Python reads
    identifiers in NFKC form (`ﬁ` is `fi`), so only NFKC-stable names qualify;
    keywords and dunders do not."""
    return (name.isidentifier() and unicodedata.normalize("NFKC", name) == name
            and not keyword.iskeyword(name)
            and not (name.startswith("__") and name.endswith("__")))


def _stem(name: str) -> str:
    """What a mangled name is built on: the NFKC form, else an ASCII spelling."""
    norm = unicodedata.normalize("NFKC", name)
    if norm.isidentifier():
        return norm
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"_u{ord(ch):x}"
                  for ch in name)
    return "_" + out if not out or out[0].isdigit() else out


def _assign(syms: list[_Sym], taken: set[str]) -> None:
    """Python names for bp names, none in `taken` (which grows): every safe, free name
    keeps its spelling, then the others become `stem_`, `stem_2`, `stem_3`, …"""
    for s in syms:
        if _safe(s.want) and s.want not in taken:
            s.name = s.want
            taken.add(s.name)
    for s in syms:
        if s.name is None:
            stem, k = _stem(s.want), 2
            name = stem + "_"
            while name in taken:
                name, k = f"{stem}_{k}", k + 1
            s.name = name
            taken.add(name)


def _generate(syms: list[_Sym], taken: set[str], start: int) -> None:
    """Generated names (t1, t2, …; _C0, _C1, …): the next number whose name is free."""
    k = start
    for s in syms:
        while f"{s.want}{k}" in taken:
            k += 1
        s.name = f"{s.want}{k}"
        taken.add(s.name)
        k += 1


def _choose_names(fn_syms, params, leaf_syms, temps, global_syms, const_syms,
                  called=(), engine: str = "numpy") -> None:
    """Every Python name of the module.  Module-level names avoid keywords, what the
    helpers define and every name they read (builtins included).  The exported
    functions are named first, so they keep their SPEC §12 names; then each
    function's parameters (its keyword names), which avoid keywords, the helpers
    and the functions a body calls; then the globals' constants, which avoid the parameters as well (a body reads
    both); the generated names (array constants, temporaries) last."""
    defined, read = _reserved(engine)
    module_taken = set(keyword.kwlist) | defined | read
    _assign(fn_syms, module_taken)
    called_names = {f.name for f in called}       # functions a body calls: not shadowed
    for ps in params:
        _assign(ps, set(keyword.kwlist) | defined | called_names)
        module_taken |= {p.name for p in ps}
    _assign([g for g in global_syms if g.shown == g.want], module_taken)
    _assign([g for g in global_syms if g.shown != g.want], module_taken)  # leaves: P.a → P_a
    _generate(const_syms, module_taken, 0)
    for ps, ls, ts in zip(params, leaf_syms, temps):
        taken = module_taken | {p.name for p in ps}
        _assign(ls, taken)                # a record parameter's leaves: p['W'] → p_W
        _generate(ts, taken, 1)


def _expr(node: Node, args: list[str], engine: str = "numpy") -> str:
    """The node's NumPy code, from its op's export template (OpDef.export), or its
    JAX code (`_jax_form`)."""
    opdef = REGISTRY[node.op]
    attrs = {a.name: a.default for a in opdef.attrs} | dict(node.attrs)
    if engine == "numpy":
        code = opdef.export
        if code is None:
            raise BpTypeError(f"export has no NumPy code for the op {node.op!r}", node.span)
    else:
        form = _jax_form(opdef)
        code = form.code
        if code is None:
            why = f": {form.why}" if form.why else ""
            raise BpTypeError(f"JAX has no form of the op {node.op!r}{why}", node.span)
    return code.format(*args, **attrs) if isinstance(code, str) else code(args, attrs)


# ── constants, spelled to read back to the same float64 bits ─────────────

def _bits(v: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", v))[0]


_NAN = _bits(math.nan)                   # np.nan's bits; -np.nan flips the sign bit


def _number(v) -> str:
    """A float64 as source that nothing in the module can shadow (`np` is
    reserved): inf, nan and -0.0 included, a negative number in parentheses."""
    v = float(v)
    if math.isnan(v):
        bits = _bits(v)
        return ("np.nan" if bits == _NAN else "(-np.nan)" if bits == _NAN | 1 << 63 else
                f"np.uint64({bits:#x}).view(np.float64)")
    if math.isinf(v):
        return "np.inf" if v > 0 else "(-np.inf)"
    text = repr(v)
    return f"({text})" if text.startswith("-") else text


def _array_literal(value) -> str:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return _number(value)
    if value.size == 0:
        return f"np.zeros({value.shape!r})"
    flat = [float(x) for x in value.ravel()]
    if any(math.isnan(x) and _bits(x) not in (_NAN, _NAN | 1 << 63) for x in flat):
        bits = ", ".join(f"{_bits(x):#x}" for x in flat)        # a NaN payload, kept
        return f"np.array([{bits}], dtype=np.uint64).view(np.float64).reshape({value.shape!r})"

    def nested(a) -> str:
        if a.ndim == 1:
            return "[" + ", ".join(_number(x) for x in a) + "]"
        return "[" + ", ".join(nested(row) for row in a) + "]"
    return f"np.array({nested(value)})"


# ── the module ───────────────────────────────────────────────────────────

def _follow(value, path: tuple):
    """The leaf of a global's container that an input's path leads to."""
    for _kind, key in path:
        value = value[key]
    return value


def module(functions: dict[str, tuple], globals_: dict, engine: str = "numpy") -> str:
    """The module's source.  `functions` maps each function's bp-side name (SPEC §12)
    to (parameter names, inputs, output); `globals_` holds the values of the globals
    the graphs read (an input that stands for a global carries its name, and for a
    leaf of a container the path to it).  The text is written with a placeholder
    for every name it binds, and `_choose_names` fills them in at the end.
    `engine` "jax" writes the JAX form: jax.numpy, every function jittable."""
    jax = engine == "jax"
    syms: list[_Sym] = []

    def ref(sym: _Sym) -> str:
        syms.append(sym)
        return f"\0{len(syms) - 1}\0"

    fn_syms: list[_Sym] = []
    params: list[list[_Sym]] = []
    temps: list[list[_Sym]] = []
    leaf_syms: list[list[_Sym]] = []
    global_syms: list[_Sym] = []
    const_syms: list[_Sym] = []
    constant_lines: list[str] = []
    shared: dict[int, str] = {}          # a global's or an array constant's placeholder, by node
    ops_used: set[str] = set()
    bodies: list[str] = []
    # A RowJacobian is two functions of the module's own (named after every exported
    # one) and a wrapper under the exported name that loops over them.
    entries, inner_syms, wrappers = [], [], []
    for fname, entry in functions.items():
        if not isinstance(entry, RowJacobian):
            entries.append((_Sym(fname), entry))
            continue
        value_sym, vjp_sym = _Sym(f"_{fname}_value"), _Sym(f"_{fname}_vjp")
        inner_syms += [value_sym, vjp_sym]
        entries += [(value_sym, entry.value), (vjp_sym, entry.vjp)]
        wrappers.append((_Sym(fname), entry, value_sym, vjp_sym))
    # A loop node's body (and its condition) is a function of the module's own, called
    # by the _bp_loop helper; the parts of one loop share one call.
    body_fns: dict[int, tuple] = {}
    loop_calls: dict[tuple, str] = {}

    def body_function(b) -> tuple:
        if id(b) not in body_fns:
            names = [ph.attr("name") for ph in b.inputs]
            bsym = _Sym("_loop_body")
            entries.append((bsym, (names, b.inputs, tuple(b.next) + tuple(b.emit))))
            csym = None
            if b.cond is not None:
                csym = _Sym("_loop_cond")
                entries.append((csym, (names, b.inputs, b.cond)))
            inner_syms.extend([bsym] + ([csym] if csym else []))
            body_fns[id(b)] = (b, bsym, csym)          # b kept: its id stays its own
        return body_fns[id(b)][1:]

    def loop_part(node, tsyms, label) -> str:
        b = node.attr("body")
        key = (id(b), tuple(map(id, node.inputs)))
        if key not in loop_calls:
            bsym, csym = body_function(b)
            p, q = len(b.carried), len(b.captured)
            args = [label[id(i)] for i in node.inputs]
            tup = lambda xs: "(" + "".join(x + ", " for x in xs) + ")"    # noqa: E731
            whole = _Sym("t")
            tsyms.append(whole)
            rows = ""
            if jax:                          # a tape's rows: a bound on the trip count
                bound = _trip_bound(node.inputs[0]) if b.emit else 0
                if bound is None:
                    raise BpTypeError("JAX keeps a loop's tape (what a reverse-mode derivative "
                                      "reads) in an array of a size known when the graph is "
                                      "built: this loop's trip count is not (a while loop, or "
                                      "range(n) of a parameter n)", node.span)
                rows = f", {bound}"
            lines.append(f"    {ref(whole)} = _bp_loop({ref(bsym)}, "
                        f"{ref(csym) if csym else 'None'}, {args[0]}, {tup(args[1:1 + p])}, "
                        f"{tup(args[1 + p:1 + p + q])}, {len(b.emit)}, "
                        f"{ACTIVE.limits.max_iterations}{rows})")
            loop_calls[key] = lines[-1].split(" = ", 1)[0].strip()
        tsym = _Sym("t")
        tsyms.append(tsym)
        lines.append(f"    {ref(tsym)} = {loop_calls[key]}[{node.attr('part')}]")
        return lines[-1].split(" = ", 1)[0].strip()

    lines: list[str] = []
    for fsym, (names, inputs, out) in entries:
        loop_calls.clear()                       # a loop's call is its function's own
        psyms = [_Sym(n) for n in names]
        tsyms: list[_Sym] = []
        fn_syms.append(fsym)
        params.append(psyms)
        temps.append(tsyms)
        label = {id(n): ref(p) for n, p in zip(inputs, psyms)}
        # A record parameter (a dict here, as the module returns records) is read
        # leaf by leaf: p['W'] into a local of its own.
        reads, lsyms = [], []
        leaf_syms.append(lsyms)
        for n, p in zip(inputs, psyms):
            if isinstance(n, Node):
                continue
            for path, leaf in zip(leaf_paths(n), leaves(n)):
                lsym = _Sym("_".join([p.want] + [str(k) for _, k in path]))
                lsyms.append(lsym)
                label[id(leaf)] = ref(lsym)
                reads.append((leaf, f"{label[id(n)]}" + "".join(f"[{k!r}]" for _, k in path)))
        own = set(label)
        order = topo_order([o for o in leaves(out) if isinstance(o, Node)])
        # A parameter is made an array only if an op reads its values: one that is
        # unused, or only the model of a zero gradient, may be a record or a tuple.
        arrays = {id(i) for node in order if node.op not in ("input", "const", "zeros_like")
                  for i in node.inputs if id(i) in own}
        body = lines = [f"def {ref(fsym)}({', '.join(label[id(n)] for n in inputs)}):"]
        body += [f"    {label[id(n)]} = np.asarray({label[id(n)]}, dtype=np.float64)"
                 for n in inputs if id(n) in arrays]
        body += [f"    {label[id(leaf)]} = np.asarray({source}, dtype=np.float64)"
                 for leaf, source in reads]
        for node in order:
            if id(node) in own:
                continue
            if node.op == "input":                # a global, or a leaf of one, that it reads
                if id(node) not in shared:
                    name, path = node.attr("name"), node.attr("path") or ()
                    shown = name + "".join(f".{k}" if kind == "field" else f"[{k}]"
                                           for kind, k in path)
                    if name not in globals_:
                        raise BpTypeError(f"export: {shown} is not bound to a value")
                    value = _follow(globals_[name], path)
                    if not isinstance(value, (np.ndarray, float, int)):
                        raise BpTypeError(f"export: {shown} is not a tensor")
                    gsym = _Sym(name + "".join(f"_{k}" for _, k in path), shown)
                    global_syms.append(gsym)
                    shared[id(node)] = ref(gsym)
                    constant_lines.append(f"{shared[id(node)]} = {_array_literal(value)}")
                label[id(node)] = shared[id(node)]
                continue
            if node.op == "const":
                if node.value.ndim == 0:
                    label[id(node)] = _number(node.value)
                    continue
                if id(node) not in shared:
                    csym = _Sym("_C")
                    const_syms.append(csym)
                    shared[id(node)] = ref(csym)
                    constant_lines.append(f"{shared[id(node)]} = {_array_literal(node.value)}")
                label[id(node)] = shared[id(node)]
                continue
            if node.op == "loop":                 # a structured loop: a function per body
                ops_used.add("loop")
                label[id(node)] = loop_part(node, tsyms, label)
                own.add(id(node))
                continue
            ops_used.add(node.op)
            tsym = _Sym("t")
            tsyms.append(tsym)
            label[id(node)] = ref(tsym)
            own.add(id(node))
            code = _expr(node, [label[id(i)] for i in node.inputs], engine)
            body.append(f"    {label[id(node)]} = {code}")
        params_given = {id(n) for n in inputs} | {id(leaf) for leaf, _ in reads}
        arrays |= {id(leaf) for leaf, _ in reads}

        def result(x):
            if isinstance(x, tuple):
                return "(" + ", ".join(result(y) for y in x) + ("," if len(x) == 1 else "") + ")"
            if isinstance(x, Record):
                return "{" + ", ".join(f"{k!r}: {result(v)}" for k, v in x.items()) + "}"
            if id(x) in params_given:
                # as given when no op read it (it may be a container), else a copy
                return label[id(x)] if id(x) not in arrays else f"np.array({label[id(x)]})"
            if x.op == "zeros_like":
                return label[id(x)]                      # zeros shaped like what was given
            # a temporary is the function's own; a module constant is copied
            return f"np.{'asarray' if id(x) in own else 'array'}({label[id(x)]})"
        body.append(f"    return {result(out)}")
        bodies.append("\n".join(body))

    for fsym, entry, value_sym, vjp_sym in wrappers:
        psyms = [_Sym(n) for n in entry.names]
        fn_syms.append(fsym)
        params.append(psyms)
        temps.append([])
        leaf_syms.append([])
        args = ", ".join(ref(p) for p in psyms)
        bodies.append(f"def {ref(fsym)}({args}):\n"
                      f"    return _jacobian_rows({ref(value_sym)}, {ref(vjp_sym)}, ({args},), "
                      f"{tuple(entry.wrt)!r}, {bool(entry.many)})")
    if wrappers:
        constant_lines.append((_JACOBIAN_ROWS_JAX if jax else _JACOBIAN_ROWS).rstrip("\n"))
    inner = {id(s) for s in inner_syms}
    fn_syms = [s for s in fn_syms if id(s) not in inner] + inner_syms   # exported names first
    _choose_names(fn_syms, params, leaf_syms, temps, global_syms, const_syms, inner_syms,
                  engine)
    renamed = dict.fromkeys(f"{s.shown} → {s.name}" for s in
                            fn_syms + [p for ps in params for p in ps] + global_syms
                            if s.name != s.shown)
    doc = ("Generated by bp export: a standalone JAX module (jax.numpy in float64; every\n"
           "function can be jax.jit-ted)." if jax else
           "Generated by bp export: a standalone NumPy module.")
    if renamed:
        doc += ("\n\nbp names spelled differently here (a Python keyword, a name the module\n"
                "itself uses, a clash, or a leaf of a container):\n" +
                "".join(f"    {r}\n" for r in renamed))
    code = "\n".join([_HEADERS[engine]] + _preamble(ops_used, engine) +
                      constant_lines + ["", "\n\n".join(bodies)]) + "\n"
    if jax:
        code = to_jax(code)             # what the templates and the body lines spell np.
    text = f'"""{doc}"""\n' + code
    parts = text.split("\0")
    for i in range(1, len(parts), 2):
        parts[i] = syms[int(parts[i])].name
    return "".join(parts)


def has_code(op: str, engine: str = "numpy") -> bool:
    """Whether export can write `op` (a registry test checks every op)."""
    if engine == "numpy":
        return REGISTRY[op].export is not None
    return _jax_form(REGISTRY[op]).code is not None
