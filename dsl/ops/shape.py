"""Shape ops: reshape, concat, stack, broadcast_to, indexing, unbroadcast."""
from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import BpShapeError, BpValueError
from . import Attr, CallForm, Jax, OpDef, Prefix, apply, const, register
from .batched import FALLBACK, lift, shift, with_batch
from .sym import broadcast_like, unbroadcast


def known_shape(x, what: str):
    """A shape the rule needs to know; a symbolic one is a clean error."""
    if not isinstance(x.shape, tuple):
        raise BpValueError(f"the derivative of {what} needs the argument's shape: give the "
                           f"parameter a shape annotation (x: [3, 2]) to show it")
    return x.shape


def _concrete(shs):
    return all(isinstance(s, tuple) for s in shs)


def _resolve_reshape(size: int, target: tuple, src, span) -> tuple:
    if target.count(-1) > 1:
        raise BpValueError("reshape: at most one dimension can be -1", span)
    known = shapes.size(tuple(d for d in target if d != -1))
    if -1 in target:
        if known == 0 or size % known:
            raise BpShapeError(f"cannot reshape {shapes.fmt(src)} into {shapes.fmt(target)}", span)
        target = tuple(size // known if d == -1 else d for d in target)
    if shapes.size(target) != size:
        raise BpShapeError(f"cannot reshape {shapes.fmt(src)} ({size} elements) into "
                           f"{shapes.fmt(target)}", span)
    return target


def reshape_shape(shs, attrs, span):
    target = attrs["shape"]
    if not _concrete(shs):
        return shapes.SymShape() if -1 in target else target
    return _resolve_reshape(shapes.size(shs[0]), target, shs[0], span)


def _join_shape(stacking: bool):
    def rule(shs, attrs, span):
        if not _concrete(shs):
            return shapes.SymShape()
        first, axis = shs[0], attrs.get("axis", 0)
        name = "stack" if stacking else "concat"
        for s in shs[1:]:
            if len(s) != len(first) or (stacking and s != first):
                raise BpShapeError(f"{name} of shapes {', '.join(shapes.fmt(t) for t in shs)}: "
                                   f"{'shapes must be equal' if stacking else 'ranks differ'}", span)
        if stacking:
            ax, = shapes.normalize_axes((axis,), len(first) + 1, span)
            return first[:ax] + (len(shs),) + first[ax:]
        if len(first) == 0:
            raise BpShapeError("concat needs tensors of rank at least 1", span)
        ax, = shapes.normalize_axes((axis,), len(first), span)
        for s in shs[1:]:
            if s[:ax] + s[ax + 1:] != first[:ax] + first[ax + 1:]:
                raise BpShapeError(f"concat of shapes {', '.join(shapes.fmt(t) for t in shs)}: "
                                   f"sizes differ off axis {axis}", span)
        return first[:ax] + (sum(s[ax] for s in shs),) + first[ax + 1:]
    return rule


def broadcast_to_shape(shs, attrs, span):
    target = attrs["shape"]
    if _concrete(shs):
        if shapes.broadcast(shs[0], target, span=span, what="broadcast_to") != target:
            raise BpShapeError(f"cannot broadcast {shapes.fmt(shs[0])} to {shapes.fmt(target)}", span)
    return target


# An index item is ("i", k) for an integer or ("s", start, stop, step) for a slice.
def index_shape(shs, attrs, span):
    s, items = shs[0], attrs["items"]
    if not _concrete(shs):
        if isinstance(s, shapes.SymShape) and s.parts is not None \
                and all(item[0] == "i" for item in items):
            # k whole-number indices drop the first k axes, whichever they are: x[0] and
            # x[1] have the same shape, so their product needs no broadcasting undone
            k = len(items)
            return shapes.SymShape(frozenset([("drop", s.parts, k)]), f"{s.label}[{k}:]")
        return shapes.SymShape()
    if len(items) > len(s):
        raise BpShapeError(f"too many indices ({len(items)}) for a tensor of shape {shapes.fmt(s)}",
                           span)
    out = []
    for axis, (item, n) in enumerate(zip(items, s)):
        if item[0] == "i":
            if not -n <= item[1] < n:
                raise BpValueError(f"index {item[1]} is out of range for axis {axis} of size {n}",
                                   span)
        else:
            if item[3] == 0:
                raise BpValueError("a slice step cannot be 0", span)
            out.append(len(range(*slice(*item[1:]).indices(n))))
    return tuple(out) + s[len(items):]


def _index(x, items):
    return x[tuple(i[1] if i[0] == "i" else slice(*i[1:]) for i in items)]


def unbroadcast_shape(shs, attrs, span):
    return shs[1]


def _unbroadcast(g, like):
    """Sum g down to like's shape: the adjoint of broadcasting."""
    extra = g.ndim - like.ndim
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(like.shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _join_vjp(stacking: bool):
    def vjp(ct, out, ins, attrs):
        axis = attrs.get("axis", 0)
        if not all(isinstance(x.shape, tuple) for x in (out, *ins)) and not (stacking and axis >= 0):
            # shapes known only at call time: each piece's cotangent is cut out then
            return tuple(apply("unjoin", [ct, *ins], {"k": k, "axis": axis, "stacking": stacking})
                         for k in range(len(ins)))
        if not isinstance(out.shape, tuple):      # stack on a leading axis: any rank
            lead = (("s", None, None, None),) * axis
            return tuple(apply("index", [ct], {"items": lead + (("i", i),)}) for i in range(len(ins)))
        rank = len(out.shape)
        ax = axis % rank
        lead = (("s", None, None, None),) * ax
        if stacking:
            return tuple(apply("index", [ct], {"items": lead + (("i", i),)}) for i in range(len(ins)))
        cts, start = [], 0
        for x in ins:
            n = known_shape(x, "concat")[ax]
            cts.append(apply("index", [ct], {"items": lead + (("s", start, start + n, None),)}))
            start += n
        return tuple(cts)
    return vjp


def _unjoin(ct, *xs, k, axis, stacking):
    if stacking:
        return np.take(ct, k, axis=axis)
    cuts = np.cumsum([np.shape(x)[axis] for x in xs])[:-1]
    return np.split(ct, cuts, axis=axis)[k]


def _fold_unjoin(ins, attrs, shape):
    """Once the shapes are known, the cut is an index of the cotangent."""
    ct, *xs = ins
    if all(isinstance(x.shape, tuple) for x in ins):
        out = apply("stack" if attrs["stacking"] else "concat", xs, {"axis": attrs["axis"]})
        return _join_vjp(attrs["stacking"])(ct, out, tuple(xs), {"axis": attrs["axis"]})[attrs["k"]]
    return None


def _unjoin_vjp(ct, out, ins, attrs):
    # the piece goes back where it was cut from, zeros elsewhere
    xs = ins[1:]
    parts = [ct if j == attrs["k"] else apply("zeros_like", [x]) for j, x in enumerate(xs)]
    name = "stack" if attrs["stacking"] else "concat"
    return (apply(name, parts, {"axis": attrs["axis"]}),) + (None,) * len(xs)


def _join_jvp(name):
    def jvp(ts, out, ins, attrs):
        filled = [t if t is not None else apply("zeros_like", [x]) for t, x in zip(ts, ins)]
        return apply(name, filled, attrs)
    return jvp


def _unindex(g, like, items):
    out = np.zeros(like.shape)
    out[tuple(i[1] if i[0] == "i" else slice(*i[1:]) for i in items)] = g
    return out


def _expand_dims_shape(shs, attrs, span):
    s, axis = shs[0], attrs["axis"]
    if not _concrete(shs):
        return shapes.SymShape()
    rank = len(s) + len(axis)
    axes = shapes.normalize_axes(axis, rank, span)
    it = iter(s)
    return tuple(1 if i in axes else next(it) for i in range(rank))


def _broadcast_like_shape(shs, attrs, span):
    g, like = shs
    if _concrete(shs) and shapes.broadcast(g, like, span=span) != like:
        raise BpShapeError(f"cannot broadcast {shapes.fmt(g)} to {shapes.fmt(like)}", span)
    return like


def _fold_same_shape(ins, attrs, shape):
    g = ins[0]
    return g if g.shape == shape else None


def _fold_broadcast_like(ins, attrs, shape):
    g, like = ins
    if g.shape == shape:
        return g
    if g.op == "const" and isinstance(shape, tuple) and shapes.size(shape) <= 1 << 16:
        from . import ACTIVE, const              # a constant spread over a known shape,
        if not (ACTIVE.to_run and g.value.shape == ()):
            return const(np.broadcast_to(g.value, shape).copy())
        # but in a plan a number stays a number spread (the algebra takes it as the
        # scalar: λ·(2·W) is one product by 2λ, not a full array of λ times 2·W)
    if g.op == "broadcast_like":
        return apply("broadcast_like", [g.inputs[0], like])
    plain = _plainest(like)
    if plain is not like:
        return apply("broadcast_like", [g, plain])
    return None


def _plainest(like):
    """A node of like's shape, as far down its inputs as the shape provably stays the
    same (3*y, exp(y) → y): only the shape of `like` is read, so a broadcast prints
    and runs against the smallest node that has it."""
    while True:
        nxt = next((i for i in like.inputs if i.shape == like.shape and i.op != "const"), None)
        if nxt is None:
            return like
        like = nxt


def _reshape_back(ct, x):
    """ct in x's shape: a reshape where x's shape is known, else reshape_like (which
    prints as reshape(ct, shape(x)) and is resolved when the plan runs)."""
    if isinstance(x.shape, tuple):
        return apply("reshape", [ct], {"shape": x.shape})
    return apply("reshape_like", [ct, x])


def _fold_reshape_like(ins, attrs, shape):
    g, like = ins
    if isinstance(like.shape, tuple):
        return apply("reshape", [g], {"shape": like.shape})
    if g.shape == like.shape:
        return g
    return None


# ── batching rules (dsl/ops/batched.py) ──────────────────────────────────

_ALL = ("s", None, None, None)             # the index item `:`, for the batch axis


def _batch_expand_dims(node, ins, m):
    (x, _), = ins
    return apply("expand_dims", [x], {"axis": shift(node.attr("axis"), len(node.shape))})


def _batch_to_own_shape(node, ins, m):
    (x, _), = ins
    return apply("reshape", [x], {"shape": (m,) + node.shape})


def _batch_broadcast_to(node, ins, m):
    (x, _), = ins
    return apply("broadcast_to", [lift(x, True, len(node.shape), m)], {"shape": (m,) + node.shape})


def _batch_broadcast_like(node, ins, m):
    (g, gb), (like, lb) = ins
    if not gb:                       # only the shape donor depends on the seed
        return apply("broadcast_like", [g, node.inputs[1]]), False
    return apply("broadcast_to", [lift(g, True, len(node.shape), m)], {"shape": (m,) + node.shape})


def _batch_unbroadcast(node, ins, m):
    (g, gb), _ = ins
    if not gb:
        return apply("unbroadcast", [g, node.inputs[1]]), False
    target = node.shape
    extra = len(g.shape) - 1 - len(target)
    if extra > 0:
        g = apply("sum", [g], {"axis": tuple(range(1, extra + 1)), "keepdims": False})
    axes = tuple(i + 1 for i, d in enumerate(target) if d == 1 and g.shape[i + 1] != 1)
    if axes:
        g = apply("sum", [g], {"axis": axes, "keepdims": True})
    return g


def _batch_index(node, ins, m):
    (x, _), = ins
    return apply("index", [x], {"items": (_ALL,) + node.attr("items")})


def _batch_unindex(node, ins, m):
    (g, gb), _ = ins
    if not gb:
        return apply("unindex", [g, node.inputs[1]], dict(node.attrs)), False
    like = const(np.zeros((m,) + node.shape))
    return apply("unindex", [g, like], {"items": (_ALL,) + node.attr("items")})


def _batch_join(node, ins, m):
    rank = len(node.shape)
    axis = node.attr("axis", 0) % rank + 1
    return apply(node.op, [with_batch(x, b, m) for x, b in ins], {"axis": axis})


def _batch_zeros_like(node, ins, m):
    return const(np.zeros((m,) + node.shape))


def _slice_start(node, length: int) -> int | None:
    """The start of a single step-1 slice x[a:b] of a vector, counted from 0."""
    items = node.attr("items")
    if len(items) != 1 or items[0][0] != "s" or items[0][3] not in (None, 1):
        return None
    return slice(*items[0][1:]).indices(length)[0]


def _banded_index(node, ins):
    start = _slice_start(node, node.inputs[0].shape[0])
    if start is None:
        return None
    return {d + start: apply("index", [w], dict(node.attrs)) for d, w in ins[0].items()}


def _banded_unindex(node, ins):
    g, like = node.inputs
    if ins[0] is None or ins[1] is not None:
        return None
    start = _slice_start(node, like.shape[0])
    if start is None:
        return None
    return {d - start: apply("unindex", [w, like], dict(node.attrs)) for d, w in ins[0].items()}


def _banded_same_shape(node, ins):
    """broadcast_like / unbroadcast that change nothing: the shapes are equal."""
    if ins[0] is None or node.inputs[0].shape != node.shape:
        return None
    return ins[0]


# ── export (dsl/codegen.py) ──────────────────────────────────────────────

def index_code(items) -> str:
    """The index in subscript syntax (`1:3, 0`): no builtin (`slice`) is named."""
    parts = []
    for item in items:
        if item[0] == "i":
            parts.append(str(int(item[1])))
        else:
            parts.append(":".join("" if b is None else str(int(b)) for b in item[1:]))
    return ", ".join(parts) if parts else "()"


_UNJOIN_CODE = """
def _unjoin(ct, k, axis, stacking, *pieces):
    if stacking:
        return np.take(ct, k, axis=axis)
    cuts = np.cumsum([np.shape(piece)[axis] for piece in pieces])[:-1]
    return np.split(ct, cuts, axis=axis)[k]
"""

_UNINDEX_CODE = """
def _unindex(g, like, index):
    out = np.zeros(np.shape(like))
    out[index] = g
    return out
"""

_UNBROADCAST_CODE = """
def _unbroadcast(g, like):
    like = np.shape(like)
    g = np.asarray(g)
    if g.ndim > len(like):
        g = g.sum(axis=tuple(range(g.ndim - len(like))))
    axes = tuple(i for i, d in enumerate(like) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g
"""

_ZEROS_LIKE_CODE = """
def _zeros_like(x):
    if isinstance(x, dict):
        return {k: _zeros_like(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_zeros_like(v) for v in x)
    return np.zeros(np.shape(x))
"""


def _join_code(fn: str):
    return lambda args, a: f"np.{fn}([{', '.join(args)}], axis={a['axis']})"


register(OpDef(name="unjoin", kernel=_unjoin, shape=lambda shs, a, span: shs[1 + a["k"]],
               params=("ct", "xs"), variadic=True, builtin=False,
               attrs=(Attr("k", "int", 0), Attr("axis", "int", 0), Attr("stacking", "int", 0)),
               fold=_fold_unjoin, vjp=_unjoin_vjp, batch=FALLBACK + " (it folds to an index once "
               "the shapes are known, and batching needs them)", helpers=(_UNJOIN_CODE,),
               export=lambda args, a: (f"_unjoin({args[0]}, {a['k']}, {a['axis']}, "
                                       f"{int(a['stacking'])}, {', '.join(args[1:])})"),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else apply("unjoin", [ts[0], *ins[1:]], a),
               doc="the cotangent of piece k of concat or stack (xs the pieces), cut out when the "
                   "shapes are known; prints as vjp((a, b, …) -> concat(a, b, …), wrt=k)(xs…, ct)[1]"))
register(OpDef(name="reshape_like", kernel=lambda g, like: np.reshape(g, np.shape(like)),
               shape=lambda shs, a, span: shs[1], params=("g", "like"), builtin=False,
               fold=_fold_reshape_like, batch=_batch_to_own_shape,
               export="np.reshape({0}, np.shape({1}))",
               vjp=lambda ct, out, ins, a: (_reshape_back(ct, ins[0]), None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else apply("reshape_like", [ts[0], ins[1]]),
               doc="g's elements in like's shape (prints as reshape(g, shape(like))): the adjoint "
                   "of a reshape whose argument's shape is known only at call time"))
register(OpDef(name="reshape", kernel=lambda x, shape: np.reshape(x, shape), shape=reshape_shape,
               attrs=(Attr("shape", "shape", required=True),),
               vjp=lambda ct, out, ins, a: (_reshape_back(ct, ins[0]),),
               jvp=lambda ts, out, ins, a: apply("reshape", [ts[0]], a),
               fold=_fold_same_shape, batch=_batch_to_own_shape, export="np.reshape({0}, {shape!r})",
               doc="the same elements in a new shape (one dimension may be -1)"))
def _fold_one_piece(stacking: bool):
    """A join of one piece is the piece (with the new axis, for stack): so no node
    prints as concat(x) or stack(x), which bp reads as the rows of x, as NumPy does."""
    def fold(ins, attrs, shape):
        if len(ins) != 1:
            return None
        if not stacking:
            return ins[0]
        return apply("expand_dims", [ins[0]], {"axis": (attrs.get("axis", 0),)})
    return fold


register(OpDef(name="concat", kernel=lambda *xs, axis=0: np.concatenate(xs, axis=axis),
               shape=_join_shape(False), params=("xs",), variadic=True,
               attrs=(Attr("axis", "int", 0),), vjp=_join_vjp(False), jvp=_join_jvp("concat"),
               batch=_batch_join, export=_join_code("concatenate"), fold=_fold_one_piece(False),
               doc="join tensors along an existing axis"))
def _stack(*xs, axis=0):
    # Along axis 0 (the shape rule has made the shapes equal) np.array stacks in one
    # call, ~30 times faster than np.stack for a hundred scalars.
    return np.array(xs, dtype=np.float64) if axis == 0 else np.stack(xs, axis=axis)


register(OpDef(name="stack", kernel=_stack,
               shape=_join_shape(True), params=("xs",), variadic=True,
               attrs=(Attr("axis", "int", 0),), vjp=_join_vjp(True), jvp=_join_jvp("stack"),
               batch=_batch_join, export=_join_code("stack"), fold=_fold_one_piece(True),
               doc="join tensors of one shape along a new axis"))
register(OpDef(name="broadcast_to", kernel=lambda x, shape: np.broadcast_to(x, shape).copy(),
               shape=broadcast_to_shape, attrs=(Attr("shape", "shape", required=True),),
               vjp=lambda ct, out, ins, a: (unbroadcast(ct, ins[0]),),
               jvp=lambda ts, out, ins, a: apply("broadcast_to", [ts[0]], a),
               fold=_fold_same_shape, batch=_batch_broadcast_to,
               export="np.broadcast_to({0}, {shape!r}).copy()", doc="x broadcast to a shape (NumPy rules)"))
register(OpDef(name="index", kernel=_index, shape=index_shape, builtin=False,
               vjp=lambda ct, out, ins, a: (apply("unindex", [ct, ins[0]], a),),
               jvp=lambda ts, out, ins, a: apply("index", [ts[0]], a),
               batch=_batch_index, banded=_banded_index,
               export=lambda args, a: f"{args[0]}[{index_code(a['items'])}]",
               doc="x[i, a:b:c]: integers and slices, static"))
register(OpDef(name="unindex", kernel=_unindex, shape=lambda shs, a, span: shs[1],
               params=("g", "like"), builtin=False,
               vjp=lambda ct, out, ins, a: (apply("index", [ct], a), None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else apply("unindex", [ts[0], ins[1]], a),
               batch=_batch_unindex, banded=_banded_unindex, helpers=(_UNINDEX_CODE,),
               export=lambda args, a: f"_unindex({args[0]}, {args[1]}, np.s_[{index_code(a['items'])}])",
               jax=lambda args, a: (f"jnp.zeros(jnp.shape({args[1]})).at[jnp.s_[{index_code(a['items'])}]]"
                                    f".set({args[0]})"),
               doc="zeros shaped like `like` with g placed at the index: the adjoint of x[…]"))
register(OpDef(name="unbroadcast", kernel=_unbroadcast, shape=unbroadcast_shape,
               params=("g", "like"), fold=_fold_same_shape, batch=_batch_unbroadcast,
               banded=_banded_same_shape, export="_unbroadcast({0}, {1})", helpers=(_UNBROADCAST_CODE,),
               vjp=lambda ct, out, ins, a: (broadcast_like(ct, ins[0]), None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else unbroadcast(ts[0], ins[1]),
               doc="g summed over the axes that broadcasting added to like's shape"))
register(OpDef(name="broadcast_like", kernel=lambda g, like: np.broadcast_to(g, like.shape).copy(),
               shape=_broadcast_like_shape, params=("g", "like"), fold=_fold_broadcast_like,
               batch=_batch_broadcast_like, banded=_banded_same_shape,
               export="np.broadcast_to({0}, np.shape({1})).copy()",
               vjp=lambda ct, out, ins, a: (unbroadcast(ct, ins[0]), None),
               jvp=lambda ts, out, ins, a: None if ts[0] is None else broadcast_like(ts[0], ins[1]),
               doc="g broadcast to like's shape: the adjoint of unbroadcast"))
register(OpDef(name="expand_dims", kernel=lambda x, axis: np.expand_dims(x, axis),
               shape=_expand_dims_shape, attrs=(Attr("axis", "axes", required=True),),
               vjp=lambda ct, out, ins, a: (apply("sum", [ct], {"axis": a["axis"], "keepdims": False}),),
               jvp=lambda ts, out, ins, a: apply("expand_dims", [ts[0]], a),
               batch=_batch_expand_dims, export="np.expand_dims({0}, {axis!r})",
               doc="x with new axes of size 1 at the given positions"))
def _size_of(x):
    return np.asarray(float(np.size(x)))


def _fold_size_of(ins, attrs, shape):
    x = ins[0]
    if isinstance(x.shape, tuple):
        return const(float(shapes.size(x.shape)))
    # size(x^2) is size(x): down to the first operand of the same shape, as far as it goes
    y = x
    while True:
        same = next((i for i in y.inputs if i.shape == y.shape), None)
        if same is None:
            break
        y = same
    return apply("size_of", [y]) if y is not x else None


def _batch_size_of(node, ins, m):
    (x, _), = ins                  # each lane holds 1/m of the batched elements
    return apply("div", [apply("size_of", [x]), const(float(m))]), False


register(OpDef(name="size_of", kernel=_size_of, shape=lambda shs, a, span: (), builtin=False,
               differentiable=False, fmt=CallForm("size"), fold=_fold_size_of,
               batch=_batch_size_of, export="np.float64(np.size({0}))",
               doc="the number of elements of x, where its shape is known only at the call "
                   "(size(x) in a function of a parameter without an annotation)"))
register(OpDef(name="zeros_like", kernel=np.zeros_like, shape=lambda shs, a, span: shs[0],
               builtin=False, differentiable=False, fmt=CallForm("zeros_like"),
               batch=_batch_zeros_like, export="_zeros_like({0})", helpers=(_ZEROS_LIKE_CODE,),
               doc="zeros of x's shape (prints as 0*x)"))
