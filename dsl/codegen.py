"""Graph → a standalone Python module that imports only NumPy (SPEC §7).

One Python function per exported bp function, one line per node.  Globals
the function reads become module-level constants holding their values at
export.  Ops with stable or unusual kernels get a small helper written out
in the module's preamble.

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

import keyword
import math
import struct
import unicodedata

import numpy as np

from .errors import BpTypeError
from .graph import Node, topo_order
from .ops import REGISTRY
from .values import Record, leaves

_BINARY = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
           "pow": "np.power({0}, {1})", "matmul": "np.matmul({0}, {1})",
           "maximum": "np.maximum({0}, {1})", "minimum": "np.minimum({0}, {1})",
           "less": "np.less({0}, {1}).astype(np.float64)",
           "less_equal": "np.less_equal({0}, {1}).astype(np.float64)",
           "greater": "np.greater({0}, {1}).astype(np.float64)",
           "greater_equal": "np.greater_equal({0}, {1}).astype(np.float64)",
           "equal": "np.equal({0}, {1}).astype(np.float64)",
           "not_equal": "np.not_equal({0}, {1}).astype(np.float64)",
           "and": "(({0} != 0) & ({1} != 0)).astype(np.float64)",
           "or": "(({0} != 0) | ({1} != 0)).astype(np.float64)",
           "outer": "np.outer({0}, {1})", "solve": "_solve({0}, {1})",
           "unbroadcast": "_unbroadcast({0}, {1})",
           "broadcast_like": "np.broadcast_to({0}, np.shape({1})).copy()",
           "reshape_like": "np.reshape({0}, np.shape({1}))"}
_UNARY = {"neg": "-{0}", "not": "({0} == 0).astype(np.float64)", "abs": "np.abs({0})",
          "sign": "np.sign({0})", "exp": "np.exp({0})", "log": "np.log({0})", "log1p": "np.log1p({0})",
          "expm1": "np.expm1({0})", "sqrt": "np.sqrt({0})", "sin": "np.sin({0})", "cos": "np.cos({0})",
          "tan": "np.tan({0})", "asin": "np.arcsin({0})", "acos": "np.arccos({0})",
          "atan": "np.arctan({0})", "sinh": "np.sinh({0})", "cosh": "np.cosh({0})",
          "tanh": "np.tanh({0})", "sigmoid": "_sigmoid({0})", "relu": "np.maximum({0}, 0.0)",
          "softplus": "np.logaddexp(0.0, {0})", "floor": "np.floor({0})", "round": "np.round({0})",
          "trace": "np.trace({0})", "diag": "np.diag({0})", "inv": "np.linalg.inv({0})",
          "det": "np.linalg.det({0})", "zeros_like": "_zeros_like({0})"}
_REDUCE = {"sum": "np.sum", "mean": "np.mean", "prod": "np.prod", "max": "np.max", "min": "np.min",
           "logsumexp": "_logsumexp"}

_HELPERS = '''

def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    z = x - np.where(np.isfinite(m), m, 0.0)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _cross_entropy(logits, targets, axis=-1):
    per = -np.sum(targets * _log_softmax(logits, axis), axis=axis)
    return np.mean(per) if per.ndim else per


def _unbroadcast(g, like):
    like = np.shape(like)
    g = np.asarray(g)
    if g.ndim > len(like):
        g = g.sum(axis=tuple(range(g.ndim - len(like))))
    axes = tuple(i for i, d in enumerate(like) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _cross_entropy_back(logits, targets, axis=-1):
    s = np.exp(_log_softmax(logits, axis))
    g = s * np.sum(targets, axis=axis, keepdims=True) - targets
    top = s > 0.5
    rest = np.where(top, 0.0, g)
    return np.where(top, -np.sum(rest, axis=axis, keepdims=True), rest)


def _unjoin(ct, k, axis, stacking, *pieces):
    if stacking:
        return np.take(ct, k, axis=axis)
    cuts = np.cumsum([np.shape(piece)[axis] for piece in pieces])[:-1]
    return np.split(ct, cuts, axis=axis)[k]


def _unindex(g, like, index):
    out = np.zeros(np.shape(like))
    out[index] = g
    return out


def _zeros_like(x):
    if isinstance(x, dict):
        return {k: _zeros_like(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_zeros_like(v) for v in x)
    return np.zeros(np.shape(x))
'''


_TRIANGLES = '''

def _triu_unpack(v, n, k):
    rows, cols = np.triu_indices(n, k)
    out = np.zeros(np.shape(v)[:-1] + (n, n))
    out[..., rows, cols] = v
    return out


def _triu_pack(a, k):
    rows, cols = np.triu_indices(np.shape(a)[-1], k)
    return np.asarray(a)[..., rows, cols]
'''


def _special_helpers(names: set[str]) -> str:
    """lgamma and digamma for the module: the kernels' own source (dsl/ops/special.py),
    so the exported functions compute exactly what bp does."""
    import inspect
    from .ops import special
    parts = ["", "import math"]
    if "_lgamma" in names:
        parts += [inspect.getsource(special._lgamma_one),
                  "_lgamma_each = np.frompyfunc(_lgamma_one, 1, 1)\n",
                  inspect.getsource(special._lgamma)]
    if "_digamma" in names:
        parts += [f"_BERNOULLI = {special._BERNOULLI!r}", f"_SHIFT = {special._SHIFT!r}\n"]
        parts += [inspect.getsource(f) for f in (special._asymptotic, special._positive,
                                                 special._cot_derivative, special._digamma)]
    return "\n\n".join(parts)


def _preamble(ops: set[str]) -> list[str]:
    """The module's helpers, for the ops its functions use."""
    parts = [_HELPERS]
    if ops & {"triu_unpack", "triu_pack"}:
        parts.append(_TRIANGLES)
    special = ({"_lgamma"} if "lgamma" in ops else set()) | \
        ({"_digamma"} if "digamma" in ops else set())
    if special:
        parts.append(_special_helpers(special))
    from .ops import linalg
    for op, fn in _KERNEL_SOURCES.items():    # the kernels' own source (solve: NumPy 2's rule)
        if op in ops and hasattr(linalg, fn):
            import inspect
            parts.append("\n\n" + inspect.getsource(getattr(linalg, fn)))
    return parts


# Ops whose module code is their kernel's own source, a function of dsl/ops/linalg.py.
_KERNEL_SOURCES = {"solve": "_solve", "matmul_vjp": "_matmul_vjp_kernel"}


_RESERVED: tuple[frozenset, frozenset] | None = None


def _reserved() -> tuple[frozenset, frozenset]:
    """(the names any preamble defines, the names its code reads from the module's
    globals, builtins included), from the text of all helpers at once, so which
    names are free does not depend on which helpers a module needs."""
    global _RESERVED
    if _RESERVED is None:
        import symtable
        src = "import numpy as np\n" + "\n".join(_preamble(
            {"triu_unpack", "lgamma", "digamma"} | set(_KERNEL_SOURCES)))
        top = symtable.symtable(src, "<export preamble>", "exec")
        defined = {s.get_name() for s in top.get_symbols()
                   if s.is_assigned() or s.is_imported() or s.is_namespace()}
        read, tables = set(), [top]
        while tables:
            t = tables.pop()
            read |= {s.get_name() for s in t.get_symbols()
                     if s.is_global() or (t is top and s.is_referenced())}
            tables.extend(t.get_children())
        _RESERVED = frozenset(defined | {"np", "math"}), frozenset(read - defined)
    return _RESERVED


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


def _choose_names(fn_syms, params, temps, global_syms, const_syms) -> None:
    """Every Python name of the module.  Module-level names avoid keywords, what the
    helpers define and every name they read (builtins included).  The exported
    functions are named first, so they keep their SPEC §12 names; then each
    function's parameters (its keyword names), which avoid keywords and the helpers;
    then the globals' constants, which avoid the parameters as well (a body reads
    both); the generated names (array constants, temporaries) last."""
    defined, read = _reserved()
    module_taken = set(keyword.kwlist) | defined | read
    _assign(fn_syms, module_taken)
    for ps in params:
        _assign(ps, set(keyword.kwlist) | defined)
        module_taken |= {p.name for p in ps}
    _assign([g for g in global_syms if g.shown == g.want], module_taken)
    _assign([g for g in global_syms if g.shown != g.want], module_taken)  # leaves: P.a → P_a
    _generate(const_syms, module_taken, 0)
    for ps, ts in zip(params, temps):
        _generate(ts, module_taken | {p.name for p in ps}, 1)


def _index_expr(items) -> str:
    """The index in subscript syntax (`1:3, 0`): no builtin (`slice`) is named."""
    parts = []
    for item in items:
        if item[0] == "i":
            parts.append(str(int(item[1])))
        else:
            parts.append(":".join("" if b is None else str(int(b)) for b in item[1:]))
    return ", ".join(parts) if parts else "()"


def _expr(node: Node, args: list[str]) -> str:
    op, a = node.op, dict(node.attrs)
    if op in _BINARY:
        return _BINARY[op].format(*args)
    if op in _UNARY:
        return _UNARY[op].format(*args)
    if op in _REDUCE:
        return f"{_REDUCE[op]}({args[0]}, axis={a.get('axis')!r}, keepdims={bool(a.get('keepdims'))})"
    match op:
        case "where":
            return f"np.where({args[0]} != 0, {args[1]}, {args[2]})"
        case "transpose":
            return f"np.transpose({args[0]}, {a.get('axes')!r})"
        case "reshape":
            return f"np.reshape({args[0]}, {a['shape']!r})"
        case "broadcast_to":
            return f"np.broadcast_to({args[0]}, {a['shape']!r}).copy()"
        case "expand_dims":
            return f"np.expand_dims({args[0]}, {a['axis']!r})"
        case "concat":
            return f"np.concatenate([{', '.join(args)}], axis={a.get('axis', 0)})"
        case "unjoin":
            return (f"_unjoin({args[0]}, {a['k']}, {a['axis']}, {int(a.get('stacking', 0))}, "
                    f"{', '.join(args[1:])})")
        case "stack":
            return f"np.stack([{', '.join(args)}], axis={a.get('axis', 0)})"
        case "index":
            return f"{args[0]}[{_index_expr(a['items'])}]"
        case "unindex":
            return f"_unindex({args[0]}, {args[1]}, np.s_[{_index_expr(a['items'])}])"
        case "softmax":
            return f"np.exp(_log_softmax({args[0]}, {a.get('axis', -1)}))"
        case "log_softmax":
            return f"_log_softmax({args[0]}, {a.get('axis', -1)})"
        case "cross_entropy":
            return f"_cross_entropy({args[0]}, {args[1]}, {a.get('axis', -1)})"
        case "cross_entropy_back":
            return f"_cross_entropy_back({args[0]}, {args[1]}, {a.get('axis', -1)})"
        case "one_hot":
            return f"np.eye({a['n']})[np.asarray({args[0]}).astype(np.intp)]"
        case "lgamma":
            return f"_lgamma({args[0]})"
        case "digamma":
            return f"_digamma({args[0]}, {a.get('n', 0)})"
        case "triu_unpack":
            return f"_triu_unpack({args[0]}, {a['n']}, {a.get('k', 0)})"
        case "triu_pack":
            return f"_triu_pack({args[0]}, {a.get('k', 0)})"
        case "swapaxes":
            return f"np.swapaxes({args[0]}, {a['axis1']}, {a['axis2']})"
        case "matmul_vjp":
            return f"_matmul_vjp_kernel({', '.join(args)}, {a.get('wrt', 0)})"
    if op in ("host", "host_vjp"):
        raise BpTypeError(f"export writes NumPy code, and {a['fn'].name} is a Python function "
                          f"defined into the session: it cannot be exported")
    raise BpTypeError(f"export has no NumPy code for the op {op!r}")


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


def module(functions: dict[str, tuple], globals_: dict) -> str:
    """The module's source.  `functions` maps each function's bp-side name (SPEC §12)
    to (parameter names, inputs, output); `globals_` holds the values of the globals
    the graphs read (an input that stands for a global carries its name, and for a
    leaf of a container the path to it).  The text is written with a placeholder
    for every name it binds, and `_choose_names` fills them in at the end."""
    syms: list[_Sym] = []

    def ref(sym: _Sym) -> str:
        syms.append(sym)
        return f"\0{len(syms) - 1}\0"

    fn_syms: list[_Sym] = []
    params: list[list[_Sym]] = []
    temps: list[list[_Sym]] = []
    global_syms: list[_Sym] = []
    const_syms: list[_Sym] = []
    constant_lines: list[str] = []
    shared: dict[int, str] = {}          # a global's or an array constant's placeholder, by node
    ops_used: set[str] = set()
    bodies: list[str] = []
    for fname, (names, inputs, out) in functions.items():
        fsym = _Sym(fname)
        psyms = [_Sym(n) for n in names]
        tsyms: list[_Sym] = []
        fn_syms.append(fsym)
        params.append(psyms)
        temps.append(tsyms)
        label = {id(n): ref(p) for n, p in zip(inputs, psyms)}
        own = set(label)
        order = topo_order([o for o in leaves(out) if isinstance(o, Node)])
        # A parameter is made an array only if an op reads its values: one that is
        # unused, or only the model of a zero gradient, may be a record or a tuple.
        arrays = {id(i) for node in order if node.op not in ("input", "const", "zeros_like")
                  for i in node.inputs if id(i) in own}
        body = [f"def {ref(fsym)}({', '.join(label[id(n)] for n in inputs)}):"]
        body += [f"    {label[id(n)]} = np.asarray({label[id(n)]}, dtype=np.float64)"
                 for n in inputs if id(n) in arrays]
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
            ops_used.add(node.op)
            tsym = _Sym("t")
            tsyms.append(tsym)
            label[id(node)] = ref(tsym)
            own.add(id(node))
            code = _expr(node, [label[id(i)] for i in node.inputs])
            body.append(f"    {label[id(node)]} = {code}")
        params_given = {id(n) for n in inputs}

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

    _choose_names(fn_syms, params, temps, global_syms, const_syms)
    renamed = dict.fromkeys(f"{s.shown} → {s.name}" for s in
                            fn_syms + [p for ps in params for p in ps] + global_syms
                            if s.name != s.shown)
    doc = "Generated by bp export: a standalone NumPy module."
    if renamed:
        doc += ("\n\nbp names spelled differently here (a Python keyword, a name the module\n"
                "itself uses, a clash, or a leaf of a container):\n" +
                "".join(f"    {r}\n" for r in renamed))
    text = "\n".join([f'"""{doc}"""', "import numpy as np"] + _preamble(ops_used) +
                     constant_lines + ["", "\n\n".join(bodies)]) + "\n"
    parts = text.split("\0")
    for i in range(1, len(parts), 2):
        parts[i] = syms[int(parts[i])].name
    return "".join(parts)


def has_code(op: str) -> bool:
    """Whether export can write `op` (a registry test checks every op)."""
    return op in _BINARY or op in _UNARY or op in _REDUCE or op in (
        "where", "transpose", "reshape", "broadcast_to", "expand_dims", "concat", "stack", "index",
        "unindex", "softmax", "log_softmax", "cross_entropy", "cross_entropy_back", "one_hot",
        "lgamma", "digamma", "triu_unpack", "triu_pack", "swapaxes", "matmul_vjp", "unjoin") or \
        not REGISTRY[op].params
