"""Batching: one graph for many seeds at once (vmap over a linear map).

A Jacobian needs the VJP for every output direction (or the JVP for every
input direction).  Instead of building the derivative graph once per
direction, the derivative is built once with a placeholder seed, and
`batch` rewrites the part of the graph that depends on the seed so that
every value there carries a leading axis of size m: one graph computes
all m directions.  Each op's rule (`OpDef.batch`, written next to the op;
dsl/ops/batched.py has the shared ones) says how it acts on a batched
operand.  An op without a rule makes `batch` give up (None), and the caller
falls back to one derivative per direction.  Shapes must be known.
"""
from __future__ import annotations

import numpy as np

from .graph import Node, topo_order
from .ops import REGISTRY, apply, building, const
from .ops.batched import Rebatch

Batched = tuple[Node, bool]          # the new node, and whether it has the batch axis


def batch(outputs: list[Node], seed: Node, replacement: Node) -> list[Node] | None:
    """`outputs` with `seed` (shape s) replaced by `replacement` (shape (m,) + s),
    each output gaining a leading axis of size m; None if some op has no rule."""
    return batch_map(outputs, {id(seed): replacement}, replacement.shape[0])


def batch_map(outputs: list[Node], replacements: dict, m: int, broadcast: bool = True):
    """`outputs` with each node whose id is in `replacements` replaced by its batched
    form (shape (m,) + its shape), and each output gaining the batch axis; None if some
    op on the way has no rule.  With broadcast=False an output that does not depend on
    a replaced node stays as it is: the result is then a list of (node, batched)."""
    new: dict[int, Batched] = {k: (v, True) for k, v in replacements.items()}
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        ins = [new.get(id(i), (i, False)) for i in node.inputs]
        if not any(b for _, b in ins):
            new[id(node)] = (node, False)
            continue
        rule = _rule(node.op)
        if rule is None:
            return None
        # Rules need known shapes; one marked symbolic_ok (a loop's) checks for itself
        # and needs them only where the batch axis goes.
        if getattr(rule, "symbolic_ok", False):
            if not all(isinstance(i.shape, tuple) for i, (_, b) in zip(node.inputs, ins) if b):
                return None
        elif not all(isinstance(i.shape, tuple) for i in node.inputs) or not isinstance(node.shape, tuple):
            return None
        with building("d", node.span):
            result = rule(node, ins, m)
        if isinstance(result, Rebatch):         # a rewritten form, batched in its place
            out = batch(result.outputs, result.seed, result.replacement)
            result = None if out is None else out[0]
        if result is None:
            return None
        new[id(node)] = result if isinstance(result, tuple) else (result, True)
    if not broadcast:
        return [new[id(o)] for o in outputs]
    out = []
    for o in outputs:
        n, batched = new[id(o)]
        out.append(n if batched else apply("broadcast_to", [n], {"shape": (m,) + o.shape}))
    return out


def _rule(op: str):
    """The op's batching rule (OpDef.batch), or None (a string there says why not)."""
    rule = REGISTRY[op].batch
    return rule if callable(rule) else None


def has_rule(op: str) -> bool:
    return _rule(op) is not None


# ── an identity seed kept as bands ───────────────────────────────────────
#
# A Jacobian's seed is the identity, and batching it densely turns every value
# on the way into an (m, n) matrix, O(n²) work per op even where the Jacobian
# is banded (the Hessian of a function of neighbouring elements, x[1:] - x[:-1]).
# batch_identity keeps such a value as bands instead: {d: w_d} stands for the
# batched value B[k, j] = w_d[j] where k = j + d, and 0 elsewhere.  The seed is
# {0: ones}; an elementwise op with an unbatched operand acts on each w_d; a
# slice x[a:b] moves band d to d + a and slices w_d; its adjoint (unindex)
# moves it back (each op's rule is its OpDef.banded).  Every nonzero entry of a w_d stays inside the matrix (k in
# [0, m)), so the result is written into the dense (m, n) array once, at the
# end, by a strided placement.  Ops without a banded rule give None, and the
# caller batches the dense identity instead.

Bands = dict          # offset d -> w_d, a vector node


def batch_identity(outputs: list[Node], seed: Node) -> list[Node] | None:
    """`batch(outputs, seed, eye(m))` for a vector seed of m elements, on bands;
    None if some op on the way has no banded rule."""
    if not isinstance(seed.shape, tuple) or len(seed.shape) != 1:
        return None
    m = seed.shape[0]
    new: dict[int, Node | Bands] = {id(seed): {0: const(np.ones(m))}}
    banded: set[int] = {id(seed)}
    for node in topo_order(outputs):
        if id(node) in new:
            continue
        if not any(id(i) in banded for i in node.inputs):
            continue
        if not isinstance(node.shape, tuple) or len(node.shape) != 1:
            return None
        rule = REGISTRY[node.op].banded
        if rule is None:
            return None
        with building("d", node.span):
            bands = rule(node, [new[id(i)] if id(i) in banded else None for i in node.inputs])
        if bands is None:
            return None
        new[id(node)] = bands
        banded.add(id(node))
    out = []
    for o in outputs:
        if id(o) not in banded:
            out.append(apply("broadcast_to", [o], {"shape": (m,) + o.shape}))
            continue
        if not isinstance(o.shape, tuple) or len(o.shape) != 1:
            return None
        dense = _dense(new[id(o)], m, o.shape[0])
        if dense is None:
            return None
        out.append(dense)
    return out


def _dense(bands: Bands, m: int, n: int) -> Node | None:
    """The (m, n) matrix of the bands: out[j + d, j] = w_d[j].

    Row k holds the bands side by side: out[k, k - d] for d from hi down to lo,
    at flat positions k·(n + 1) - d.  So each band is shifted to s_d[k] =
    w_d[k - d] (zeros where k - d falls outside), the shifted bands are stacked
    as the columns of T (m, nb), T is written into a zero (m + 1, n + 1) array at
    [1:, :nb], and the matrix is read back as one flat slice of it: the entries
    land on their diagonals, and the zeros of T outside the matrix on cells
    that no band owns or outside the slice."""
    bands = {d: w for d, w in bands.items() if -n < d < m}
    if not bands:
        return const(np.zeros((m, n)))
    lo, hi = min(bands), max(bands)
    nb = hi - lo + 1
    if nb > n + 1 or nb > 64:
        return None
    zero = const(np.zeros(m))
    columns = [_shifted(bands[d], d, m, n) if d in bands else zero for d in range(hi, lo - 1, -1)]
    t = apply("stack", columns, {"axis": 1})
    placed = apply("unindex", [t, const(np.zeros((m + 1, n + 1)))],
                   {"items": (("s", 1, None, None), ("s", 0, nb, None))})
    flat = apply("reshape", [placed], {"shape": (-1,)})
    start = n + 1 + hi
    rows = apply("index", [flat], {"items": (("s", start, start + m * n, None),)})
    return apply("reshape", [rows], {"shape": (m, n)})


def _shifted(w: Node, d: int, m: int, n: int) -> Node:
    """s[k] = w[k - d] for k in [0, m), 0 where k - d is outside [0, n)."""
    lo, hi = max(0, -d), min(n, m - d)            # the part of w that lands inside
    part = w if (lo, hi) == (0, n) else apply("index", [w], {"items": (("s", lo, hi, None),)})
    if (lo + d, hi + d) == (0, m):
        return part
    return apply("unindex", [part, const(np.zeros(m))], {"items": (("s", lo + d, hi + d, None),)})
