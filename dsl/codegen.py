"""Graph → a standalone Python module that imports only NumPy (SPEC §7).

One Python function per exported bp function, one line per node, named
after the bp source where there are names.  Globals the function reads
become module-level constants.  Ops with stable or unusual kernels get a
small helper written out in the module's preamble.
"""
from __future__ import annotations

import numpy as np

from .errors import BpTypeError
from .graph import Node, topo_order
from .ops import REGISTRY
from .values import Record, leaves

_BINARY = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
           "pow": "np.power({0}, {1})", "matmul": "np.matmul({0}, {1})",
           "maximum": "np.maximum({0}, {1})", "minimum": "np.minimum({0}, {1})",
           "less": "np.less({0}, {1}).astype(float)", "less_equal": "np.less_equal({0}, {1}).astype(float)",
           "greater": "np.greater({0}, {1}).astype(float)",
           "greater_equal": "np.greater_equal({0}, {1}).astype(float)",
           "equal": "np.equal({0}, {1}).astype(float)", "not_equal": "np.not_equal({0}, {1}).astype(float)",
           "and": "(({0} != 0) & ({1} != 0)).astype(float)", "or": "(({0} != 0) | ({1} != 0)).astype(float)",
           "outer": "np.outer({0}, {1})", "solve": "_solve({0}, {1})",
           "unbroadcast": "_unbroadcast({0}, {1})",
           "broadcast_like": "np.broadcast_to({0}, np.shape({1})).copy()"}
_UNARY = {"neg": "-{0}", "not": "({0} == 0).astype(float)", "abs": "np.abs({0})",
          "sign": "np.sign({0})", "exp": "np.exp({0})", "log": "np.log({0})", "log1p": "np.log1p({0})",
          "expm1": "np.expm1({0})", "sqrt": "np.sqrt({0})", "sin": "np.sin({0})", "cos": "np.cos({0})",
          "tan": "np.tan({0})", "asin": "np.arcsin({0})", "acos": "np.arccos({0})",
          "atan": "np.arctan({0})", "sinh": "np.sinh({0})", "cosh": "np.cosh({0})",
          "tanh": "np.tanh({0})", "sigmoid": "_sigmoid({0})", "relu": "np.maximum({0}, 0.0)",
          "softplus": "np.logaddexp(0.0, {0})", "floor": "np.floor({0})", "round": "np.round({0})",
          "trace": "np.trace({0})", "diag": "np.diag({0})", "inv": "np.linalg.inv({0})",
          "det": "np.linalg.det({0})", "zeros_like": "np.zeros_like({0})"}
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


def _unindex(g, like, index):
    out = np.zeros(np.shape(like))
    out[index] = g
    return out
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


def _index_expr(items) -> str:
    parts = []
    for item in items:
        if item[0] == "i":
            parts.append(str(item[1]))
        else:
            parts.append("slice(%r, %r, %r)" % item[1:])
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


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
        case "stack":
            return f"np.stack([{', '.join(args)}], axis={a.get('axis', 0)})"
        case "index":
            return f"{args[0]}[{_index_expr(a['items'])}]"
        case "unindex":
            return f"_unindex({args[0]}, {args[1]}, {_index_expr(a['items'])})"
        case "softmax":
            return f"np.exp(_log_softmax({args[0]}, {a.get('axis', -1)}))"
        case "log_softmax":
            return f"_log_softmax({args[0]}, {a.get('axis', -1)})"
        case "cross_entropy":
            return f"_cross_entropy({args[0]}, {args[1]}, {a.get('axis', -1)})"
        case "cross_entropy_back":
            return f"_cross_entropy_back({args[0]}, {args[1]}, {a.get('axis', -1)})"
        case "one_hot":
            return f"np.eye({a['n']})[np.asarray({args[0]}).astype(int)]"
        case "lgamma":
            return f"_lgamma({args[0]})"
        case "digamma":
            return f"_digamma({args[0]}, {a.get('n', 0)})"
        case "triu_unpack":
            return f"_triu_unpack({args[0]}, {a['n']}, {a.get('k', 0)})"
        case "triu_pack":
            return f"_triu_pack({args[0]}, {a.get('k', 0)})"
    if op in ("host", "host_vjp"):
        raise BpTypeError(f"export writes NumPy code, and {a['fn'].name} is a Python function "
                          f"defined into the session: it cannot be exported")
    raise BpTypeError(f"export has no NumPy code for the op {op!r}")


def _array_literal(value: np.ndarray) -> str:
    if value.ndim == 0:
        return repr(float(value))
    return f"np.array({value.tolist()!r})"


def module(functions: dict[str, tuple], globals_: dict) -> str:
    """The module's source; functions maps a Python name to (param names, inputs, output)."""
    lines = ['"""Generated by bp export: a standalone NumPy module."""', "import numpy as np"]
    lines.append(_HELPERS)
    consts: dict[int, str] = {}
    constant_lines: list[str] = []
    bodies: list[str] = []
    for fname, (names, inputs, out) in functions.items():
        outs = [o for o in leaves(out) if isinstance(o, Node)]
        label = {id(n): name for n, name in zip(inputs, names)}
        body = [f"def {fname}({', '.join(names)}):"]
        body += [f"    {n} = np.asarray({n}, dtype=float)" for n in names]
        k = 0
        for node in topo_order(outs):
            if id(node) in label:
                continue
            if node.op == "input":                       # a global the function reads
                name = node.attr("name")
                if name not in globals_:
                    raise BpTypeError(f"export: {name} is not bound to a value")
                value = np.asarray(globals_[name], dtype=float)
                if f"{name} =" not in "\n".join(constant_lines):
                    constant_lines.append(f"{name} = {_array_literal(value)}")
                label[id(node)] = name
                continue
            if node.op == "const":
                if node.value.ndim == 0:
                    label[id(node)] = repr(float(node.value))
                else:
                    cname = consts.setdefault(id(node), f"_C{len(consts)}")
                    if not any(line.startswith(cname + " ") for line in constant_lines):
                        constant_lines.append(f"{cname} = {_array_literal(node.value)}")
                    label[id(node)] = cname
                continue
            k += 1
            label[id(node)] = f"t{k}"
            body.append(f"    t{k} = {_expr(node, [label[id(i)] for i in node.inputs])}")

        def result(x):
            if isinstance(x, tuple):
                return "(" + ", ".join(result(y) for y in x) + ("," if len(x) == 1 else "") + ")"
            if isinstance(x, Record):
                return "{" + ", ".join(f"{k!r}: {result(v)}" for k, v in x.items()) + "}"
            return f"np.asarray({label[id(x)]})"
        body.append(f"    return {result(out)}")
        bodies.append("\n".join(body))
    code = "\n\n".join(bodies)
    used = {name for name in ("_lgamma", "_digamma", "_triu_unpack") if name + "(" in code}
    if "_triu_unpack(" in code or "_triu_pack(" in code:
        lines.append(_TRIANGLES)
    if used - {"_triu_unpack"}:
        lines.append(_special_helpers(used))
    if "_solve(" in code:                   # the kernel's own source: NumPy 2's rule on any NumPy
        import inspect
        from .ops import linalg
        lines.append("\n\n" + inspect.getsource(linalg._solve))
    return "\n".join(lines + constant_lines + [""] + [code]) + "\n"


def has_code(op: str) -> bool:
    """Whether export can write `op` (a registry test checks every op)."""
    return op in _BINARY or op in _UNARY or op in _REDUCE or op in (
        "where", "transpose", "reshape", "broadcast_to", "expand_dims", "concat", "stack", "index",
        "unindex", "softmax", "log_softmax", "cross_entropy", "cross_entropy_back", "one_hot",
        "lgamma", "digamma", "triu_unpack", "triu_pack") or \
        not REGISTRY[op].params
