"""Batching rules that many op families share (dsl/batching.py runs them).

A batching rule is an `OpDef.batch`: `(node, ins, m)`, where `ins` holds one
`(new operand, has the batch axis)` pair per input of `node` and m is the
batch size, returning the batched node (which has a leading axis of size m),
`(node, False)` when the result does not depend on the seed after all, a
`Rebatch` to batch a rewritten form instead, or None to give up (the caller
then builds one derivative per direction).  A string in `OpDef.batch` says
why an op has no rule.

A banded rule is an `OpDef.banded`: `(node, bands)`, with `bands[i]` the bands
{d: w_d} of input i (None where the input does not depend on the identity
seed), returning the output's bands or None (docs/design.md, "Jacobians on
bands").
"""
from __future__ import annotations

from typing import Any

from ..graph import Node
from ..struct import struct
from . import apply

# The reasons an op has no batching rule (OpDef.batch as a string).
NO_SEED = "never depends on a seed (no tensor inputs, or a Python function of the session)"
FALLBACK = "its derivatives batch through the ops they are made of, or take one per direction"


@struct
class Rebatch:
    """A rule's answer: batch `outputs` (one node) with `seed` replaced by `replacement`."""
    outputs: Any
    seed: Node
    replacement: Node


def lift(x: Node, batched: bool, rank: int, m: int) -> Node:
    """A batched operand reshaped to (m, 1, …, 1, *s) so it broadcasts like the
    unbatched operand of rank `rank` would; an unbatched one as it is."""
    if not batched:
        return x
    s = x.shape[1:]
    if len(s) >= rank:
        return x
    return apply("reshape", [x], {"shape": (m,) + (1,) * (rank - len(s)) + s})


def with_batch(x: Node, batched: bool, m: int) -> Node:
    """An operand with the batch axis, broadcast to it if it has none."""
    return x if batched else apply("broadcast_to", [x], {"shape": (m,) + x.shape})


def shift(axes, rank: int) -> tuple:
    """Axes of an operand of rank `rank`, counted in its batched form."""
    return tuple(a % rank + 1 for a in axes)


def elementwise(node, ins, m):
    """An op that broadcasts its operands: the same op on the lifted operands."""
    rank = len(node.shape)
    return apply(node.op, [lift(x, b, rank, m) for x, b in ins], dict(node.attrs))


def reduction(node, ins, m):
    """A reduction with axis= and keepdims=: the same reduction, its axes shifted."""
    (x, _), = ins
    attrs = dict(node.attrs)
    rank = len(node.inputs[0].shape)
    axis = attrs.get("axis")
    attrs["axis"] = tuple(range(1, rank + 1)) if axis is None else shift(axis, rank)
    return apply(node.op, [x], attrs)


def on_last_axes(node, ins, m):
    """An op that acts on its input's last axes whatever leads them: the op itself."""
    (x, _), = ins
    return apply(node.op, [x], dict(node.attrs))


def along_axis(node, ins, m):
    """An op of one input with one axis= (an int) that keeps the rank: the same op,
    its axis counted in the batched form."""
    (x, _), = ins
    attrs = dict(node.attrs)
    rank = len(node.inputs[0].shape)
    attrs["axis"] = attrs.get("axis", -1) % rank + 1
    return apply(node.op, [x], attrs)


def map_bands(bands: dict, fn) -> dict:
    return {d: fn(w) for d, w in bands.items()}
