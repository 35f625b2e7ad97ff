"""Graph → flat plan → NumPy.

A plan is compiled once per graph: a list of steps in topological order,
each a kernel, its operand slots and its result slot, and the slots to
free after it (each intermediate is dropped after its last use).  It is
cached by the caller per (function, argument shapes) and run many times.

Three ways to run a plan, with the same kernels and bit-for-bit the same
results (tests/test_engine.py):

- the step loop (`Plan.run_loop`): the reference, and what runs with
  --check-nan and for a plan's first call;
- generated straight-line Python (`_generate`): one line per step, compiled
  once per plan on its second call; a plan is cut into chunks of CHUNK steps,
  with an interrupt check between chunks and after every large step, and
  chunks of the same structure share one compiled code (each with its own
  tuple of kernels, constants and slot numbers), so a long plan of repeated
  structure compiles only its distinct chunks;
- the same with a scalar fast path: a step whose operands and result are all
  0-d runs on Python floats (`+ - * /` are IEEE operations, exactly NumPy's;
  transcendental functions still call the NumPy ufunc, on a float, because
  `math`'s differ from NumPy's SIMD ones in the last bit).  A float
  operation that raises where NumPy gives inf or nan (x / 0, sqrt(-1)) makes
  the plan run again without the fast path.

Generated code also computes large elementwise and matmul results into
buffers the plan owns (_assign_buffers), reused across calls; what a call
returns is never one of them.

A few nodes may become one step when the plan is made, where the values between
them are read by nothing else: sum(x^2) over every axis as a dot product
(_fuse_sum_of_squares), p + a @ b of an outer product, and c * q + a @ b, made a
block of rows at a time (_fuse_add_outer); an output of + - * / may be computed
into an operand made for it alone (_outputs_in_place).  Every engine runs the
fused steps, and --check-nan still names the node of theirs that first made a nan
or an inf (the kernel's bp_check replays the nodes when the fused value is not
finite).

ENGINE selects among them ("plain", "generated", "scalar"); it is a module
setting for tests and measurements, not an option of the language.
docs/performance.md describes the engine and what each part buys.
"""
from __future__ import annotations

import bisect
import functools
import math
import operator
import re
import threading
import warnings
import weakref

import numpy as np

from .errors import BpError, BpInternalError, BpInterrupted, BpValueError
from .graph import Node, collector_paused, topo_order
from .ops import ACTIVE, REGISTRY

ENGINE = "scalar"        # "plain": the step loop only; "generated": no scalar fast path
COMPILE_AFTER = 1        # calls of a plan run by the loop before it is compiled
CHUNK = 1000             # steps per generated function (interrupt checks between them)
MAX_GENERATED = None     # tests: longer plans are run by the loop (None: no limit)
STRICT = False           # tests: a plan that cannot be compiled is an error, not the loop

_F64 = np.float64
_F64_DTYPE = np.dtype(np.float64)

# NumPy's floating-point error state.  From NumPy 2 it is a context variable whose
# value np.errstate(all="ignore") sets and resets; setting it to the state that
# errstate would make costs a tenth of entering errstate (~0.1 µs of ~0.7), which a
# small plan's call notices.  The state made is errstate's own, kept for the state it
# was made from: a caller's np.seterr, np.setbufsize or np.errstate is seen as before.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _FP_STATE
except ImportError:          # NumPy 1.x: errstate is a thread's global, entered as it is
    _FP_STATE = None
_fp_quiet = (None, None)     # (a state seen, that state with every error ignored)


def _fp_ignore():
    """Enter np.errstate(all="ignore"); give what _fp_restore needs to leave it."""
    global _fp_quiet
    if _FP_STATE is None:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    now = _FP_STATE.get()
    seen, quiet = _fp_quiet
    if seen is not now:
        with np.errstate(all="ignore"):
            quiet = _FP_STATE.get()
        _fp_quiet = (now, quiet)
    return _FP_STATE.set(quiet)


def _fp_restore(token) -> None:
    if _FP_STATE is None:
        token.__exit__(None, None, None)
    else:
        _FP_STATE.reset(token)


def _check_finite(value, args, node) -> None:
    """--check-nan: the first node that makes a nan or inf out of finite inputs."""
    if type(value) is tuple:         # a loop's results: its body's plans checked each step
        return
    if np.all(np.isfinite(value)):
        return
    if all(np.all(np.isfinite(a)) for a in args):
        bad = "nan" if np.any(np.isnan(value)) else "inf"
        what = "a derivative of this expression" if node.origin == "d" else "this expression"
        raise BpValueError(f"{node.op} gave {bad} from finite inputs in {what} (--check-nan)",
                           node.span)


def _interrupted(flag, span):
    flag.clear()
    raise BpInterrupted("the statement was interrupted", span)


# ── kernels chosen when the plan is built (shapes and constants known) ──────

def _square(a, b, out=None):
    return np.multiply(a, a, out=out)


def _cube(a, b, out=None):
    return np.multiply(np.multiply(a, a), a, out=out)


def _whole_power(n: int):
    """x^n for a whole n from 4 to MAX_SQUARINGS_POWER by repeated squaring: a few
    multiplications, where np.power with a float exponent takes ~10 times as long as
    a product (Taylor mode and the builder's polynomials write x^4 … x^9 often); within
    a few ulps of np.power."""
    def power(a, b, out=None):
        result, base, k = None, a, n
        while True:
            if k & 1:
                result = base if result is None else np.multiply(result, base)
            k >>= 1
            if not k:
                break
            base = np.multiply(base, base)
        return result                # n >= 4: a product, never an operand
    power.bp_quiet = power.bp_fresh = True
    return power


MAX_SQUARINGS_POWER = 16


def _quiet(fn):
    """Mark a kernel that cannot warn through Python's warnings and whose result is
    a new array, never an operand or a view of one."""
    fn.bp_quiet = fn.bp_fresh = True
    return fn


def _base(kernel):
    return kernel.func if isinstance(kernel, functools.partial) else kernel


def _reduce_to(lead: tuple, keep: tuple):
    """unbroadcast with its axes worked out: the same two sums as the generic kernel."""
    add_reduce = np.add.reduce
    if lead and keep:
        return _quiet(lambda g, like: add_reduce(add_reduce(g, axis=lead), axis=keep, keepdims=True))
    if lead:
        return _quiet(lambda g, like: add_reduce(g, axis=lead))
    return _quiet(lambda g, like: add_reduce(g, axis=keep, keepdims=True))


def _reshape_to(shape):
    return lambda x: np.asarray(x).reshape(shape)


def _transpose_to(axes):
    return lambda x: np.asarray(x).transpose(axes)


@_quiet
def _stack_scalars(*xs):
    """stack of 0-d operands: the same vector, from Python floats as they are."""
    return np.array(xs, dtype=_F64)


_stack_scalars.bp_floats = True     # takes the scalar fast path's floats unconverted


def _index_at(where):
    return lambda x: x[where]                       # a view, as before


def _unindex_at(shape, where):
    @_quiet
    def unindex(g, like):
        out = np.zeros(shape)
        out[where] = g
        return out
    return unindex


def _identity(g, like):
    return g


_identity.bp_quiet = True           # but its result is its operand


_quiet(_square)
_quiet(_cube)


def _loop_kernel(node: Node, body):
    """All the results of a loop (a tuple), its body run by plans of its own."""
    run = REGISTRY["loop"].kernel.run
    span = node.span
    return lambda n, *arrays: run(n, *arrays, body=body, span=span)


def _take_at(axis):
    """take(x, i) of a 0-d index i (x[i] at a runtime i, as in a loop's body): the
    same checks and the same np.take as the op's kernel, without the array-wide
    checks that cost most of a read of one element."""
    take = np.take

    def take_one(x, idx):
        f = float(idx)
        if f != f or f in (math.inf, -math.inf) or f != int(f):
            raise BpValueError(f"an index must be a whole number, got {f:g}")
        return take(x, int(f), axis=axis)
    return _quiet(take_one)             # np.take makes a new array and cannot warn


def _pick(c, a, b):
    """where(c, a, b) of a 0-d c between operands of the result's shape: one of them,
    as it is (np.where would copy it; a loop's body, where if and break lower to
    where, runs many of these)."""
    return a if c != 0 else b


_pick.bp_quiet = True               # but its result is an operand, not fresh


def _pick_to(shape):
    """_pick where an operand is smaller than the result: the chosen one broadcast (a
    read-only view, as broadcast_to gives)."""
    broadcast_to = np.broadcast_to

    def pick(c, a, b):
        x = a if c != 0 else b
        return x if x.shape == shape else broadcast_to(x, shape)
    pick.bp_quiet = True
    return pick


OUTER_MIN = 1024   # elements: a matmul (m, 1) @ (1, n) this large runs as a product
OUTER_UNBUFFERED = 128   # columns: an outer product this wide runs with small ufunc buffers
OUTER_CHECK = 16384      # elements: an outer product this large looks for a -0 first


def _small_buffers():
    """Enter the running floating-point state with a ufunc buffer of 16 elements (a
    token for _FP_STATE.reset), or None on NumPy 1.x.  A broadcast product whose
    operand has stride 0 along rows of 128 or more elements is not worth buffering:
    NumPy 2's iterator copies the broadcast operand into its 8,192-element buffer to
    make the inner loop longer, which took (784, 1) * (1, 256) 2-3x as long as the
    unbuffered rows.  Elementwise products give the same numbers either way."""
    global _fp_small
    if _FP_STATE is None or _make_extobj is None:
        return None
    now = _FP_STATE.get()
    seen, small = _fp_small
    if seen is not now:
        small = _make_extobj(bufsize=16)       # the state now, its buffer size changed
        _fp_small = (now, small)
    return _FP_STATE.set(small)


try:
    from numpy._core.umath import _make_extobj
except ImportError:          # NumPy 1.x: buffers as they are
    _make_extobj = None
_fp_small = (None, None)


def _outer_product(a, b, out=None):
    """a @ b for a of shape (m, 1) and b of (1, n), as a broadcast product (gemm with
    an inner dimension of 1 takes 2-3 times as long: MLP gradients at a batch of 1).
    It is np.matmul's result to the bit: matmul sums the one product onto +0, so it
    gives +0 where the product is -0, and so does adding +0 (which changes nothing else).
    A large one skips that pass when no product can be zero: when the smallest
    magnitudes of a and b (nan aside) have a nonzero product, every product of two
    numbers is at least that large or nan (0 * inf, where one operand is all infinite)."""
    token = _small_buffers() if b.shape[-1] >= OUTER_UNBUFFERED else None
    try:
        r = np.multiply(a, b, out=out)
    finally:
        if token is not None:
            _FP_STATE.reset(token)
    if r.size >= OUTER_CHECK:
        fmin = np.fmin.reduce
        if fmin(np.abs(a), axis=None) * fmin(np.abs(b), axis=None) != 0:
            return r
    return np.add(r, 0.0, out=r)


_outer_product.bp_outer = True
_quiet(_outer_product)


# ── fused steps: one kernel for a few nodes, where the nodes between are read once ──

DOT_CHUNK = 1 << 16   # elements: a longer sum of squares adds the dots of chunks this long


def _readers(order: list[Node], outputs: list[Node]) -> dict:
    """How many times each node is read by the nodes of the plan (an output once more)."""
    count: dict = {}
    get = count.get
    for node in order:
        for i in node.inputs:
            count[i] = get(i, 0) + 1
    for node in outputs:
        count[node] = get(node, 0) + 1
    return count


def _square_of(node: Node):
    """x when node is x^2 (x^2 with a constant 2, or x * x) of x's own shape, else None."""
    if node.op == "pow":
        x, e = node.inputs
        if e.op == "const" and e.value.shape == () and float(e.value) == 2.0 \
                and x.shape == node.shape:
            return x
    elif node.op == "mul":
        x, y = node.inputs
        if x is y and x.shape == node.shape:
            return x
    return None


def _fuse_sum_of_squares(node, slot, readers, kernels, operands, results, nodes):
    """sum(x^2) over every axis whose square is read by the sum alone: the square's
    step (already made) becomes one step computing the sum as a dot product of x
    raveled with itself (one pass, no temporary of x's size, where x^2 then a sum
    made and read a temporary), the sum's node its node.  Its index, or None."""
    sq = node.inputs[0]
    if readers.get(sq) != 1 or sq.op not in ("pow", "mul"):
        return None
    x = _square_of(sq)
    if x is None or not isinstance(x.shape, tuple) or not x.shape:
        return None
    axis = node.attr("axis")
    rank = len(x.shape)
    if axis is not None and sorted(a % rank for a in axis) != list(range(rank)):
        return None
    j = _step_of(sq, slot, results, nodes)
    if j is None or x not in slot:
        return None
    kernels[j] = _sum_of_squares(node.shape, sq, node)
    operands[j] = (slot[x],)
    nodes[j] = node
    return j


def _sum_of_squares(shape, sq_node: Node, sum_node: Node):
    """The kernel of a fused sum(x^2): x raveled dotted with itself (BLAS; the dots of
    DOT_CHUNK-element chunks added pairwise past that, so a long sum keeps the
    accuracy of a pairwise one).  The same sum as x*x then np.add.reduce to rounding:
    every term is >= 0, so signed zeros and cancellations do not arise."""
    dot = np.dot
    keep = shape != ()

    def sum_of_squares(x):
        r = np.asarray(x, dtype=_F64).reshape(-1)
        n = r.size
        if n <= DOT_CHUNK:
            v = dot(r, r)
        else:
            parts = [dot(c, c) for c in (r[i:i + DOT_CHUNK] for i in range(0, n, DOT_CHUNK))]
            v = np.add.reduce(np.array(parts))
        return np.reshape(v, shape) if keep else v

    def check(value, args):
        """--check-nan: the node of the two that first gave a nan or inf."""
        if np.all(np.isfinite(value)):
            return
        x = np.asarray(args[0])
        squares = np.multiply(x, x)
        _check_finite(squares, [x], sq_node)
        _check_finite(value, [squares], sum_node)

    sum_of_squares.bp_quiet = sum_of_squares.bp_fresh = True
    sum_of_squares.bp_check = check
    return sum_of_squares


ADD_OUTER_MIN = 8192     # elements: an outer product this large added to a tensor is fused
ADD_OUTER_BLOCK = 32768  # elements of the result made and added a block at a time


def _step_of(node, slot, results, nodes):
    """The index of node's step in the plan being made (None if it has none)."""
    s = slot.get(node)
    if s is None:
        return None
    j = bisect.bisect_left(results, s)
    if j == len(results) or results[j] != s or nodes[j] is not node:
        return None
    return j


def _uniform(value):
    """A constant's one value as a 0-d array when all its elements are that value
    (a broadcast scalar the builder made into a tensor), else None."""
    v = np.asarray(value)
    if v.ndim == 0:
        return v
    if v.size == 0 or v.dtype != _F64_DTYPE:
        return None
    first = v.flat[0]
    if first == first and (v == first).all():
        return np.asarray(first)
    return None


def _fuse_add_outer(node, slot, readers, kernels, operands, results, nodes, fast_of):
    """p + a @ b, a of shape (m, 1) and b of (1, n) (an outer product, read by this add
    alone), as one step: the product made a block of rows at a time straight into the
    result and added to p's rows while they are in cache (where the product step wrote
    a whole temporary and the add read it back).  When p is c * q, c a constant of one
    value, read by this add alone, that product is made per block too.  The same
    numbers as the steps it replaces.  (kernel, operand slots) with the steps of the
    outer product (and of c * q) taken out of the plan, or None."""
    shape = node.shape
    if not isinstance(shape, tuple) or len(shape) != 2 or math.prod(shape) < ADD_OUTER_MIN:
        return None
    for pos in (0, 1):
        o, p = node.inputs[pos], node.inputs[1 - pos]
        if o.op == "matmul" and readers.get(o) == 1 and o.shape == shape and p.shape == shape \
                and o is not p:
            j = _step_of(o, slot, results, nodes)
            if j is not None and kernels[j] is _outer_product:
                break
    else:
        return None
    a_slot, b_slot = operands[j]
    drop = [j]
    scale = None
    if p.op == "mul" and readers.get(p) == 1:
        i = _step_of(p, slot, results, nodes)
        if i is not None and kernels[i] is np.multiply:
            for cpos in (0, 1):
                c, q = p.inputs[cpos], p.inputs[1 - cpos]
                if c.op == "const" and q.shape == shape and q in slot and c is not q:
                    u = _uniform(c.value)
                    if u is not None:
                        scale = (cpos, u, p)
                        drop.append(i)
                        p_slot = slot[q]
                        break
    if scale is None:
        if p not in slot:
            return None
        p_slot = slot[p]
    for i in sorted(drop, reverse=True):
        for lst in (kernels, operands, results, nodes, fast_of):
            del lst[i]
    kernel = _add_outer(shape, pos, scale, node, o)
    return kernel, (p_slot, a_slot, b_slot)


def _add_outer(shape, pos: int, scale, add_node: Node, outer_node: Node):
    """The kernel of a fused p + a @ b (pos: the product's side of the +), or of
    c * q + a @ b (scale: (c's side of the *, c as a 0-d array, the product's node))."""
    m, n = shape
    rows = max(1, ADD_OUTER_BLOCK // max(n, 1))
    multiply, add = np.multiply, np.add
    unbuffered = n >= OUTER_UNBUFFERED
    cpos, c = (scale[0], scale[1]) if scale is not None else (0, None)

    def add_outer(p, a, b):
        r = np.empty(shape)
        zero = r.size < OUTER_CHECK or \
            not np.fmin.reduce(np.abs(a), axis=None) * np.fmin.reduce(np.abs(b), axis=None) != 0
        t = np.empty((min(rows, m), n)) if c is not None else None
        for i in range(0, m, rows):
            rb = r[i:i + rows]
            token = _small_buffers() if unbuffered else None
            try:
                multiply(a[i:i + rows], b, out=rb)      # the outer product's rows, as _outer_product
            finally:
                if token is not None:
                    _FP_STATE.reset(token)
            if zero:
                add(rb, 0.0, out=rb)
            pb = p[i:i + rows]
            if c is not None:                           # c * q's rows
                tb = t[:len(rb)]
                if cpos:
                    multiply(pb, c, out=tb)
                else:
                    multiply(c, pb, out=tb)
                pb = tb
            if pos:
                add(pb, rb, out=rb)
            else:
                add(rb, pb, out=rb)
        return r

    def check(value, args):
        """--check-nan: the node of the two or three that first gave a nan or inf."""
        if np.all(np.isfinite(value)):
            return
        p, a, b = args
        if c is not None:
            q = p
            p = multiply(q, c) if cpos else multiply(c, q)
            _check_finite(p, [c, q], scale[2])
        o = _outer_product(a, b)
        _check_finite(o, [a, b], outer_node)
        _check_finite(value, [o, p] if pos == 0 else [p, o], add_node)

    add_outer.bp_quiet = add_outer.bp_fresh = True
    add_outer.bp_check = check
    return add_outer


INPLACE_MIN = 8192   # elements: an output this large may be computed into its operand
_IN_PLACE = (np.add, np.subtract, np.multiply, np.divide)


def _outputs_in_place(kernels, operands, results, nodes, outs, n_inputs, const_slots) -> set:
    """Output steps of +, -, * and / computed into an operand (out=) instead of a new
    array: an operand of the result's shape that only this step reads, made by an
    elementwise kernel (a ufunc, x^2, x^3, an outer product) that is then never given
    one of the plan's buffers, so it is a new array of this run (e.g. the weight
    gradient at a batch of 1: 2λ·W + x'·g, the outer product written over by the sum).
    What the caller gets is still an array of its own.  The slots so taken."""
    taken: set = set()
    cands = [k for k, kernel in enumerate(kernels)
             if kernel in _IN_PLACE and results[k] in outs and isinstance(nodes[k].shape, tuple)
             and math.prod(nodes[k].shape) >= INPLACE_MIN]
    if not cands:
        return taken
    reads: dict[int, int] = {}
    for ins in operands:
        for s in ins:
            reads[s] = reads.get(s, 0) + 1
    for k in cands:
        ins = operands[k]
        for pos, s in enumerate(ins):
            if s < n_inputs or s in const_slots or s in outs or reads.get(s) != 1:
                continue
            j = bisect.bisect_left(results, s)
            if j >= k or results[j] != s or nodes[j].shape != nodes[k].shape \
                    or not _writes_out(kernels[j]):
                continue
            kernels[k] = _into_operand(kernels[k], pos)
            taken.add(s)
            break
    return taken


def _into_operand(ufunc, pos: int):
    """ufunc(a, b) computed into operand `pos` when it is a float64 array (the plan made
    it for this step alone; see _outputs_in_place), else as a new array."""
    ndarray, f64 = np.ndarray, _F64_DTYPE

    def into(a, b):
        x = b if pos else a
        if type(x) is ndarray and x.dtype == f64:
            return ufunc(a, b, out=x)
        return ufunc(a, b)
    into.bp_quiet = into.bp_fresh = True     # its result is an array of this run's
    into.bp_plain = ufunc                    # --check-nan: the operands kept to check
    return into


def _kernel(node: Node):
    """The kernel of one step, and its name in the scalar fast path (or None).  An op
    chosen here by more than its name is in _CHOSEN (Plan looks up the others once)."""
    op = node.op
    if op == "matmul":
        a, b = node.inputs[0].shape, node.inputs[1].shape
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 \
                and a[1] == b[0] == 1 and a[0] * b[1] >= OUTER_MIN:
            return _outer_product, None
    if op == "where" and node.inputs[0].shape == () and isinstance(node.shape, tuple) \
            and node.shape != () and all(isinstance(i.shape, tuple) for i in node.inputs):
        if node.inputs[1].shape == node.inputs[2].shape == node.shape:
            return _pick, None
        return _pick_to(node.shape), None
    if op == "take" and node.inputs[1].shape == () and isinstance(node.inputs[0].shape, tuple):
        return _take_at(node.attr("axis")), None
    if op == "pow":
        b = node.inputs[1]
        if b.op == "const" and b.value.shape == () and node.inputs[0].shape == node.shape:
            e = float(b.value)
            if e == 2.0:
                return _square, "square"
            if e == 3.0:
                return _cube, "cube"
            if 4 <= e <= MAX_SQUARINGS_POWER and e == int(e):
                return _whole_power(int(e)), None
    if op == "unbroadcast":
        g, like = node.inputs[0].shape, node.inputs[1].shape
        if isinstance(g, tuple) and isinstance(like, tuple) and len(g) >= len(like):
            extra = len(g) - len(like)
            rest = g[extra:]
            keep = tuple(i for i, d in enumerate(like) if d == 1 and rest[i] != 1)
            if not extra and not keep:
                return _identity, None
            if not keep and all(d == 1 for d in g[:extra]):
                # sums over axes of length 1: the same numbers as a view (a bias's gradient
                # at a batch of 1, (1, n) -> (n,))
                shape = like
                return (lambda g, like: np.asarray(g).reshape(shape)), None
            return _reduce_to(tuple(range(extra)), keep), None
    if op in ("expand_dims", "reshape") and isinstance(node.shape, tuple):
        return _reshape_to(node.shape), None       # a view of the operand, as before
    if op == "transpose":
        return _transpose_to(node.attr("axes")), None
    if op == "stack" and node.attr("axis", 0) == 0 and all(i.shape == () for i in node.inputs):
        return _stack_scalars, None
    if op in ("index", "unindex") and isinstance(node.shape, tuple):
        where = tuple(i[1] if i[0] == "i" else slice(*i[1:]) for i in node.attr("items"))
        if op == "index":
            return _index_at(where), "index"
        return _unindex_at(node.shape, where), None
    opdef = REGISTRY[node.op]
    kernel = functools.partial(opdef.kernel, **dict(node.attrs)) if node.attrs else opdef.kernel
    return kernel, op


# The scalar fast path: an expression per op over Python floats, exactly what
# NumPy computes for 0-d operands.  Any other op whose kernel is a ufunc runs
# that ufunc on the floats.
# a + b and a * b are written b + a and b * a: the same number, and when both are nan,
# the same nan as NumPy's (CPython's compiled float_add returns the other operand's).
_FLOAT = {
    "add": "{1} + {0}", "sub": "{0} - {1}", "mul": "{1} * {0}", "div": "{0} / {1}",
    "neg": "-{0}", "abs": "abs({0})", "sqrt": "_sqrt({0})",
    "square": "{0} * {0}", "cube": "{0} * {0} * {0}", "pow": "_float(_power({0}, {1}))",
    "less": "(1.0 if {0} < {1} else 0.0)", "less_equal": "(1.0 if {0} <= {1} else 0.0)",
    "greater": "(1.0 if {0} > {1} else 0.0)", "greater_equal": "(1.0 if {0} >= {1} else 0.0)",
    "equal": "(1.0 if {0} == {1} else 0.0)", "not_equal": "(1.0 if {0} != {1} else 0.0)",
    "and": "(1.0 if {0} != 0 and {1} != 0 else 0.0)", "or": "(1.0 if {0} != 0 or {1} != 0 else 0.0)",
    "not": "(1.0 if {0} == 0 else 0.0)", "where": "({1} if {0} != 0 else {2})",
}
_SIMPLE = {"square", "cube"}     # operands appear twice: give them a name first


# Ops whose kernel _kernel chooses from the node's shapes or inputs; any other op
# without attributes has its registry kernel, looked up once per plan (not per step).
_CHOSEN = {"matmul", "where", "take", "pow", "unbroadcast", "expand_dims", "reshape",
           "transpose", "stack", "index", "unindex"}


class Plan:
    def __init__(self, inputs: list[Node], outputs: list[Node], order: list[Node] | None = None):
        """The plan computing `outputs` from `inputs`; `order` is topo_order(outputs)
        if the caller has it already (a walk of a large graph costs ~0.5 µs a node)."""
        if order is None:
            order = topo_order(outputs)
        # A step is made as five parallel lists, zipped into tuples at the end.  Slots
        # are looked up by node (nodes hash by identity).
        slot: dict[Node, int] = {}
        self.n_inputs = len(inputs)
        self.input_shapes = [node.shape for node in inputs]
        for i, node in enumerate(inputs):
            slot[node] = i
        slot_of = slot.__getitem__
        self.consts: list[tuple[int, np.ndarray]] = []
        consts = self.consts
        kernels: list = []
        operands: list[tuple] = []
        results: list[int] = []
        nodes: list[Node] = []
        fast_of: list = []               # per step: the scalar fast path's name, or None
        plain: dict[str, tuple] = {}     # op → (kernel, fast name) of an op not in _CHOSEN
        nslots = len(inputs)
        loops: dict = {}                 # (body, inputs) → the slot of the loop's results
        loop_keys = None
        readers = None                   # node → how many reads (once a fusion may apply)
        given = [node for node in inputs if node.op != "input"]   # (as a rule, none)
        for node in order:
            op = node.op
            if op == "input":
                if node in slot:
                    continue
                raise BpValueError("the graph reads an input that was not given", node.span)
            if given and node in slot:
                continue
            if op == "const":
                slot[node] = nslots
                consts.append((nslots, node.value))
                nslots += 1
                continue
            if op == "loop":
                if loop_keys is None:
                    loop_keys = {(id(n.attr("body")), tuple(map(id, n.inputs)))
                                 for n in order if n.op == "loop"}
                # A loop runs once for all its parts: a step whose result is the tuple
                # of the loop's results (dsl/loops.py), and one step per part taking its own.
                # A loop whose reverse-mode saving loop (the same iterations, keeping the
                # tape) is in the plan too takes its results from that one.
                body, j = node.attr("body"), node.attr("part")
                ids = tuple(map(id, node.inputs))
                save = body._derived.get("save") if not body.emit else None
                if save is not None and (id(save), ids) in loop_keys:
                    body, j = save, (j if j < len(save.carried) else 2 * len(save.carried))
                key = (id(body), ids)
                whole = loops.get(key)
                if whole is None:
                    whole = loops[key] = nslots
                    nslots += 1
                    kernels.append(_loop_kernel(node, body))
                    operands.append(tuple(map(slot_of, node.inputs)))
                    results.append(whole)
                    nodes.append(node)
                    fast_of.append(None)
                slot[node] = nslots
                kernels.append(operator.itemgetter(j))
                operands.append((whole,))
                results.append(nslots)
                nodes.append(node)
                fast_of.append(None)
                nslots += 1
                continue
            if op == "sum" and node.inputs[0].op in ("pow", "mul"):
                if readers is None:
                    readers = _readers(order, outputs)
                j = _fuse_sum_of_squares(node, slot, readers, kernels, operands, results, nodes)
                if j is not None:            # step j, the square, is now the whole sum
                    fast_of[j] = None
                    slot[node] = results[j]
                    continue
            if op == "add" and (node.inputs[0].op == "matmul" or node.inputs[-1].op == "matmul") \
                    and isinstance(node.shape, tuple) and len(node.shape) == 2 \
                    and math.prod(node.shape) >= ADD_OUTER_MIN:
                if readers is None:
                    readers = _readers(order, outputs)
                fused = _fuse_add_outer(node, slot, readers, kernels, operands, results, nodes,
                                        fast_of)
                if fused is not None:
                    kernel, ins = fused
                    slot[node] = nslots
                    kernels.append(kernel)
                    operands.append(ins)
                    results.append(nslots)
                    nodes.append(node)
                    fast_of.append(None)
                    nslots += 1
                    continue
            if op in _CHOSEN or node.attrs:
                kernel, fast = _kernel(node)
            else:
                chosen = plain.get(op)
                if chosen is None:
                    chosen = plain[op] = _kernel(node)
                kernel, fast = chosen
            slot[node] = nslots
            kernels.append(kernel)
            operands.append(tuple(map(slot_of, node.inputs)))
            results.append(nslots)
            nodes.append(node)
            fast_of.append(fast)
            nslots += 1
        self._fast = fast_of
        self.nslots = nslots
        self.out_slots = [slot[o] for o in outputs]
        # Free each slot after the step that reads it last (never an output's); a step
        # frees its slots in the order of their first reads.
        keep = set(self.out_slots)
        # An output of +, -, * or / may be computed into a large operand made fresh for it.
        self.taken = _outputs_in_place(kernels, operands, results, nodes, keep,
                                       self.n_inputs, {s for s, _ in consts})
        last = {s: k for k, ins in enumerate(operands) for s in ins}
        frees: dict[int, list[int]] = {}
        for s, k in last.items():
            if s not in keep:
                got = frees.get(k)
                if got is None:
                    frees[k] = [s]
                else:
                    got.append(s)
        freed = [()] * len(operands)
        for k, got in frees.items():
            freed[k] = tuple(got)
        self.steps = list(zip(kernels, operands, results, freed, nodes))
        self.has_loops = bool(loops)     # its loops read the session's limits as they run
        self.shared = set(range(self.n_inputs)) | {s for s, _ in self.consts}
        # Outputs whose step may return an operand itself (not a new array): copied.
        # (Steps' result slots increase: an output's step is found by bisection.)
        self.copy_out = [s in self.shared or not _fresh(kernels[bisect.bisect_left(results, s)])
                         for s in self.out_slots]
        self.outs = list(zip(self.out_slots, self.copy_out))
        self._pack = None
        self._calls = 0
        self._compiled: dict = {}        # scalar fast path (bool) → _Generated, or None: too long

    def __len__(self) -> int:
        return len(self.steps)

    def run(self, arrays, check_nan: bool | None = None, flag=None) -> list[np.ndarray]:
        """The outputs for these input arrays (float64, the shapes the plan was built for).

        check_nan and flag (the interrupt event) default to the running session's."""
        if check_nan is None:
            active = ACTIVE
            check_nan, flag = active.limits.check_nan, active.interrupt
        engine = ENGINE
        if check_nan or engine == "plain" or not self.steps:
            return self.run_loop(arrays, check_nan, flag)
        if self._calls < COMPILE_AFTER:
            self._calls += 1
            return self.run_loop(arrays, check_nan, flag)
        scalar = engine == "scalar"
        gen = self._compiled.get(scalar, 0)
        if gen == 0:
            gen = self._compiled[scalar] = _compile(self, scalar)
        if gen is None:
            return self.run_loop(arrays, check_nan, flag)
        if gen.floats:
            try:
                return gen.run(self, arrays, flag)
            except (ZeroDivisionError, OverflowError, ValueError):
                # A float operation refused (x / 0, sqrt(-1)): NumPy gives inf or nan.
                gen = self._compiled.get(False, 0)
                if gen == 0:
                    gen = self._compiled[False] = _compile(self, False)
                if gen is None:
                    return self.run_loop(arrays, check_nan, flag)
        return gen.run(self, arrays, flag)

    def stepper(self, check_nan: bool, flag):
        """A function running this plan again and again with the same settings (a loop
        body's plan, once per iteration; dsl/loops.py): the generated code called
        directly, with buffers of its own, and NumPy's floating-point state and
        Python's warnings left to the caller (the loop sets them once).  Results are
        as run() gives them; errors are located the same way."""
        if check_nan or ENGINE == "plain" or not self.steps:
            return lambda arrays: self.run_loop(arrays, check_nan, flag)
        scalar = ENGINE == "scalar"
        gen = self._compiled.get(scalar, 0)
        if gen == 0:
            gen = self._compiled[scalar] = _compile(self, scalar)
        if gen is None:
            return lambda arrays: self.run_loop(arrays, check_nan, flag)
        chunks = [c for c, _ in gen.chunks]
        bufs = [np.empty(sh) for sh in gen.buffer_shapes]
        n_inputs, nslots = self.n_inputs, gen.n_slots or self.nslots   # listed vectors too
        outs = list(zip(self.out_slots, self.copy_out))
        ndarray, asarray = np.ndarray, np.asarray
        floats = gen.floats

        def step(arrays):
            env = [None] * nslots
            env[:n_inputs] = arrays
            i = 0
            try:
                for chunk in chunks:
                    chunk(env, flag, bufs)
                    i += 1
            except (ZeroDivisionError, OverflowError, ValueError):
                if floats:                  # a float refused: the plan's own path redoes it
                    return self.run(arrays, check_nan, flag)
                raise gen._locate(self, i) from None
            except Exception:
                raise gen._locate(self, i) from None
            result = []
            for s, copy in outs:
                v = env[s]
                if type(v) is not ndarray or v.dtype != _F64:
                    v = asarray(v, dtype=_F64)
                elif copy or v.base is not None:
                    v = v.copy()
                result.append(v)
            return result
        return step

    def python(self, results, template, general):
        """The results as the caller of a bp function gets them: by packer, or by
        general(results) for a structure packer does not handle."""
        pack = self._pack
        if pack is None:
            pack = self._pack = packer(template) or general
        return pack(results)

    def run_loop(self, arrays, check_nan: bool = False, flag=None) -> list[np.ndarray]:
        """The reference: one Python loop over the steps."""
        env: list = [None] * self.nslots
        env[: self.n_inputs] = arrays
        for s, value in self.consts:
            env[s] = value
        if not self.steps:               # the outputs are inputs and constants: copied
            return _outputs(env, self)
        step = None
        is_set = flag.is_set if flag is not None else _never
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for step in self.steps:
                    kernel, ins, out, free, node = step
                    if check_nan:           # operands are checked after: none written over
                        kernel = getattr(kernel, "bp_plain", kernel)
                    n = len(ins)            # (most steps have one or two operands)
                    if n == 2:
                        value = env[out] = kernel(env[ins[0]], env[ins[1]])
                    elif n == 1:
                        value = env[out] = kernel(env[ins[0]])
                    else:
                        value = env[out] = kernel(*[env[i] for i in ins])
                    if check_nan:
                        args = [env[i] for i in ins]
                        check = getattr(kernel, "bp_check", None)
                        if check is not None:       # a fused step: which of its nodes
                            check(value, args)
                        _check_finite(value, args, node)
                    for s in free:
                        env[s] = None
                    if is_set():
                        _interrupted(flag, node.span)
        except Exception as err:
            raise _located(err, step[4] if step else None) from None
        return _outputs(env, self)


def _never() -> bool:
    return False


def _fresh(kernel) -> bool:
    """A kernel whose result is a new array, never an operand or a view of one."""
    return isinstance(kernel, np.ufunc) or getattr(_base(kernel), "bp_fresh", False)


def _outputs(env, plan) -> list[np.ndarray]:
    """The results, each an array of its own: never an argument, a constant or a
    buffer of the plan, or a view (the caller may write to what it gets, or keep it
    while the plan runs again).  Outputs never go into buffers, so a result that
    could be one is a view of it or the result of a step that may return its
    operand (copy_out)."""
    out = []
    for s, copy in plan.outs:
        v = env[s]
        if type(v) is float:                    # the scalar fast path's
            out.append(np.asarray(v))
        elif type(v) is not np.ndarray or v.dtype is not _F64_DTYPE and v.dtype != _F64:
            out.append(np.asarray(v, dtype=_F64))
        elif copy or v.base is not None:
            out.append(v.copy())
        else:
            out.append(v)
    return out


def packer(template):
    """For a plan's outputs that are one tensor or a tuple of tensors and tuples of
    tensors (value_and_grad's (v, (g1, g2))), a function
    from the result arrays to what Python gets (each array read-only, as
    Interpreter.to_python gives them); None for other structures."""
    if isinstance(template, Node):
        def pack(results):
            r = results[0]
            r.setflags(write=False)
            return r
        return pack
    if isinstance(template, tuple) and all(
            isinstance(x, Node) or isinstance(x, tuple) and all(isinstance(y, Node) for y in x)
            for x in template):
        sizes = [None if isinstance(x, Node) else len(x) for x in template]   # (v, (g1, g2))

        def pack(results):
            for r in results:
                r.setflags(write=False)
            out, i = [], 0
            for n in sizes:
                if n is None:
                    out.append(results[i])
                    i += 1
                else:
                    out.append(tuple(results[i:i + n]))
                    i += n
            return tuple(out)
        return pack
    return None


def _located(err: Exception, node: Node | None) -> Exception:
    """A kernel's failure as a BpError at the step's node (others unchanged)."""
    span = node.span if node is not None else None
    if isinstance(err, BpError):
        return err.located(span)
    if isinstance(err, np.linalg.LinAlgError):
        return BpValueError(f"{node.op}: {str(err).lower()}", span)
    if isinstance(err, (ValueError, IndexError, TypeError, MemoryError, OverflowError,
                        ZeroDivisionError)) and node is not None:
        return BpValueError(f"{node.op}: {err}", span)
    return err


# ── generated code ──────────────────────────────────────────────────────────

class _Generated:
    """A plan as straight-line Python: chunk functions over a shared slot list."""

    def __init__(self, chunks, starts, lines, out_slots, floats, quiet, n_inputs, buffer_shapes=(),
                 n_slots: int | None = None):
        self.chunks = chunks            # [(function, span of the chunk's last step)]
        self.starts = starts            # the plan's step each chunk starts at
        self.lines = lines              # code object → {line number: step in its chunk}
        self.out_slots = out_slots
        self.floats = floats            # uses the scalar fast path
        self.quiet = quiet              # only ufuncs: no Python warnings possible
        self.n_inputs = n_inputs
        self.n_slots = n_slots          # the plan's slots and the listed vectors'
        self.pad = [None] * ((n_slots or 0) - n_inputs)   # env after the inputs
        self.buffer_shapes = list(buffer_shapes)
        self.arenas: list[list[np.ndarray]] = []    # sets of buffers not in use by a run
        self.arena_bytes = 8 * sum(math.prod(sh) for sh in self.buffer_shapes)
        self.kept = [0]                 # bytes of this plan's idle arenas (in KEEP_MAX)
        if self.arena_bytes:
            weakref.finalize(self, _give_back, self.kept)

    def run(self, plan: Plan, arrays, flag):
        env = [*arrays, *self.pad]
        # One set of buffers per run in progress (another thread, or a host function
        # calling back into bp, gets a set of its own).  Idle sets are kept for the
        # next run while all plans together keep at most KEEP_MAX bytes.
        size = self.arena_bytes
        if not size:
            bufs = ()
        elif self.arenas:
            bufs = self.arenas.pop()
            _give_back(self.kept, size)
        else:
            bufs = [np.empty(sh) for sh in self.buffer_shapes]
        fp = _fp_ignore()
        i = 0                           # the chunk running (its code may be another's too)
        try:
            if self.quiet:
                for chunk, span in self.chunks:
                    chunk(env, flag, bufs)
                    if flag is not None and flag.is_set():
                        _interrupted(flag, span)
                    i += 1
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for chunk, span in self.chunks:
                        chunk(env, flag, bufs)
                        if flag is not None and flag.is_set():
                            _interrupted(flag, span)
                        i += 1
        except (ZeroDivisionError, OverflowError, ValueError):
            if self.floats:
                raise                   # Plan.run runs it again without floats
            raise self._locate(plan, i) from None
        except Exception:
            raise self._locate(plan, i) from None
        finally:
            _fp_restore(fp)
            if size and _take(self.kept, size):
                self.arenas.append(bufs)
        return _outputs(env, plan)

    def _locate(self, plan: Plan, i: int) -> Exception:
        """The error being handled, located at the step of chunk i that raised it."""
        import sys
        err = sys.exc_info()[1]
        if isinstance(err, BpInterrupted):
            return err
        node = None
        tb = err.__traceback__
        while tb is not None:
            where = self.lines.get(tb.tb_frame.f_code)
            if where is not None:
                k = where.get(tb.tb_lineno)
                if k is not None:
                    node = plan.steps[self.starts[i] + k][4]
            tb = tb.tb_next
        return _located(err, node)


def _compile(plan: Plan, scalar: bool) -> _Generated | None:
    """Generated code for the plan, or None: the loop runs it.  Generating is an
    optimisation; should it fail, the plan still runs (unless STRICT)."""
    try:
        return _generate(plan, scalar)
    except Exception:
        if STRICT:
            raise
        return None


def _generate(plan: Plan, scalar: bool) -> _Generated | None:
    """Straight-line Python for the plan (None past MAX_GENERATED steps, if set)."""
    if MAX_GENERATED is not None and len(plan.steps) > MAX_GENERATED:
        return None
    with collector_paused():     # (generating makes no cycles, but many objects)
        return _generate_code(plan, scalar)


def _generate_code(plan: Plan, scalar: bool) -> _Generated:
    steps = plan.steps
    n = len(steps)
    const_slots = {s: v for s, v in plan.consts}
    shape = {}
    for i, sh in enumerate(plan.input_shapes):
        shape[i] = sh
    for s, v in plan.consts:
        shape[s] = v.shape
    for step in steps:
        shape[step[2]] = step[4].shape
    has_host = any(step[4].op in ("host", "host_vjp") for step in steps)
    scalar = scalar and not has_host    # a Python host function must not run twice
    # Which steps run on floats: a 0-d result from 0-d operands, with a float form.
    is_float = [False] * n
    if scalar:
        for k, (kernel, ins, out, free, node) in enumerate(steps):
            fast = plan._fast[k]
            if shape[out] != () or any(shape[i] != () for i in ins) or fast is None:
                continue
            if fast in _FLOAT or isinstance(kernel, np.ufunc) and kernel.nout == 1:
                is_float[k] = True
        # an index to a 0-d from a tensor reads one element
        for k, (kernel, ins, out, free, node) in enumerate(steps):
            items = node.attr("items") if plan._fast[k] == "index" else None
            if items and shape[out] == () and len(shape[ins[0]]) == len(items) \
                    and all(item[0] == "i" for item in items):
                is_float[k] = True
    float_slot = {steps[k][2] for k in range(n) if is_float[k]}
    floats = bool(float_slot)
    # Element reads: of a tensor read often enough, read its elements as a Python list.
    reads: dict[int, int] = {}
    for k in range(n):
        if is_float[k] and plan._fast[k] == "index":
            reads[steps[k][1][0]] = reads.get(steps[k][1][0], 0) + 1
    as_list = {s for s, count in reads.items()
               if count * 64 >= int(np.prod(shape[s], dtype=np.int64))}
    last_use: dict[int, int] = {}
    for k, step in enumerate(steps):
        for s in step[1]:
            last_use[s] = k
    defined_at = {step[2]: k for k, step in enumerate(steps)}
    outs = set(plan.out_slots)

    buffer_of, buffer_shapes = _assign_buffers(plan, shape, is_float, last_use, outs)
    heavy = _heavy_slots(shape)

    ns: dict = {"_sqrt": math.sqrt, "_float": float, "_asarray": np.asarray,
                "_power": np.power, "_interrupted": _interrupted}

    # Each chunk is written in its own names: its slots v0, v1, … (and listed vectors
    # l…) in the order it first uses them, and P[0], P[1], … for everything else it
    # reads (kernels, constants, slot and buffer numbers, indices, spans), P being the
    # tuple the closure make(P) returns was made with.  Chunks of the same structure (an
    # unrolled loop or a long chain, cut at CHUNK steps) are then the same text, compiled
    # once: a long plan's code costs what its distinct chunks cost to compile (CPython
    # compiles ~5 µs a step), not its length times that.  (A tuple, not a closure over
    # p0, p1, …: thousands of free variables make each call copy them all into a frame
    # too large for CPython's frame stack, ~40 µs a chunk.)
    made: dict[str, tuple] = {}          # text → (make, {line: step in the chunk})
    # A constant read as a float is one float for the whole plan, not one per use: the
    # chunks of a long plan read their P entries once a step, and a float of their own
    # for each would spread them over more memory than the caches hold (a 10⁴-term
    # Rosenbrock gradient ran 1.5-2x slower).
    const_floats = {s: float(v) for s, v in plan.consts if v.shape == ()}
    chunks, starts = [], []
    lines_of: dict = {}
    # A vector read one element at a time as a Python list: listed once per run, by the
    # first chunk that reads it, and handed to later chunks in a slot after the plan's
    # own (listing it in every chunk cost a long plan n²/CHUNK element copies).
    list_slot: dict[int, int] = {}
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        names: dict = {}                 # slot → its name here
        lists: dict = {}                 # listed vector's slot → its list's name here
        params: list = []

        def local(s: int) -> str:
            name = names.get(s)
            if name is None:
                name = names[s] = f"v{len(names)}"
            return name

        def param(value) -> str:
            params.append(value)
            return f"P[{len(params) - 1}]"

        def operand(s: int, want_float: bool, kernel) -> str:
            if s in const_slots:
                if want_float and shape[s] == ():
                    return param(const_floats[s])
                return param(const_slots[s])
            name = local(s)
            if want_float:
                return name if s in float_slot else f"_float({name})"
            if s in float_slot and not isinstance(kernel, np.ufunc) \
                    and not getattr(kernel, "bp_floats", False):
                return f"_asarray({name})"
            return name

        body: list[str] = []
        line_step: dict[int, int] = {}
        live_in = []
        seen = set()
        for k in range(start, stop):
            for s in steps[k][1]:
                if s in const_slots or s in seen:
                    continue
                if s < plan.n_inputs or defined_at[s] < start:
                    seen.add(s)
                    live_in.append(s)
        for s in live_in:
            body.append(f"{local(s)} = env[{param(s)}]")
            if last_use.get(s, -1) < stop and s not in outs:
                body.append(f"env[{param(s)}] = None")
        listed = set()
        for k in range(start, stop):
            kernel, ins, out, free, node = steps[k]
            fast = plan._fast[k]
            if is_float[k] and fast == "index":
                src = ins[0]
                items = node.attr("items")
                if src in as_list:
                    name = lists.setdefault(src, f"l{len(lists)}")
                    if src not in listed:
                        if src in list_slot:
                            body.append(f"{name} = env[{param(list_slot[src])}]")
                        else:
                            list_slot[src] = plan.nslots + len(list_slot)
                            body.append(f"{name} = {operand(src, False, kernel)}.tolist()")
                            body.append(f"env[{param(list_slot[src])}] = {name}")
                        listed.add(src)
                    expr = name + "".join(f"[{param(item[1])}]" for item in items)
                else:
                    expr = f"_float({operand(src, False, kernel)}[{', '.join(param(i[1]) for i in items)}])"
            elif is_float[k]:
                # (x^2 and x^3 read only x, not the exponent)
                args = [operand(s, True, kernel) for s in (ins[:1] if fast in _SIMPLE else ins)]
                if fast in _FLOAT:
                    if fast in _SIMPLE and not args[0].isidentifier():
                        body.append(f"t_ = {args[0]}")
                        args[0] = "t_"
                    expr = _FLOAT[fast].format(*args)
                else:
                    expr = f"_float({param(kernel)}({', '.join(args)}))"
            else:
                fn = param(kernel)
                args = [operand(s, False, kernel) for s in ins]
                if k in buffer_of:
                    args.append(f"out=bufs[{param(buffer_of[k])}]")
                expr = f"{fn}({', '.join(args)})"
            body.append(f"{local(out)} = {expr}")
            line_step[len(body) + 2] = k - start      # +2: the lines of the two defs
            if heavy and (out in heavy or not heavy.isdisjoint(ins)):
                body.append(f"if flag is not None and flag.is_set(): _interrupted(flag, {param(node.span)})")
            for s in free:
                if s not in const_slots:
                    body.append(f"del {local(s)}")
        # what later chunks (or the caller) read
        for k in range(start, stop):
            out = steps[k][2]
            if out in outs or last_use.get(out, -1) >= stop:
                body.append(f"env[{param(out)}] = {local(out)}")
        if stop == n:
            for s in plan.out_slots:
                if s in const_slots:
                    body.append(f"env[{param(s)}] = {param(const_slots[s])}")
        src = ("def make(P):\n    def chunk(env, flag, bufs):\n        " + "\n        ".join(body)
               + "\n    return chunk\n")
        hit = made.get(src)
        if hit is None:
            _check_source(src)
            # The one place bp compiles Python: the text above, made of this module's
            # templates and names only (checked), never of anything a program wrote.
            code = compile(src, f"<bp plan {id(plan):x}:{start}>", "exec")
            scope = dict(ns)
            exec(code, scope)
            hit = made[src] = (scope["make"], line_step)
        # The chunk's numbers as ints of its own, made together (tolist makes them one
        # after another): the plan's slot numbers live scattered over its memory, and
        # reading them from there once a step made a 10⁴-term Rosenbrock gradient ~1.5x
        # slower (median of 5 processes).
        at = [j for j, v in enumerate(params) if type(v) is int]
        for j, v in zip(at, np.array([params[j] for j in at], dtype=np.int64).tolist()):
            params[j] = v
        fn = hit[0](tuple(params))
        chunks.append((fn, steps[stop - 1][4].span))
        starts.append(start)
        lines_of[fn.__code__] = hit[1]
    quiet = all(is_float[k] or _is_quiet(steps[k][0], steps[k][4].op) for k in range(n))
    return _Generated(chunks, starts, lines_of, plan.out_slots, floats, quiet, plan.n_inputs,
                      buffer_shapes, plan.nslots + len(list_slot))


KEEP_MAX = 1 << 30   # bytes of idle buffers all plans together keep between runs
_kept_total = [0]
_kept_lock = threading.Lock()


def _take(kept: list, size: int) -> bool:
    """Count `size` more bytes of idle buffers against KEEP_MAX; False if over."""
    with _kept_lock:
        if _kept_total[0] + size > KEEP_MAX:
            return False
        _kept_total[0] += size
        kept[0] += size
        return True


def _give_back(kept: list, size: int | None = None) -> None:
    """Uncount idle buffers: `size` bytes taken for a run, or all of a dead plan's."""
    with _kept_lock:
        size = kept[0] if size is None else size
        _kept_total[0] -= size
        kept[0] -= size


BUFFER_MIN = 8192    # elements: a result this large is computed into a buffer of the plan
BUFFER_MAX = 1 << 26  # elements (512 MiB) of buffers a plan may keep; larger results stay fresh


def _writes_out(kernel) -> bool:
    """A kernel that can compute into a given array (out=), elementwise or matmul."""
    return (isinstance(kernel, np.ufunc) and kernel.nout == 1) or kernel in (_square, _cube, _outer_product)


def _assign_buffers(plan: Plan, shape, is_float, last_use, outs):
    """Buffers the plan owns, reused across calls and between steps: {step: buffer}
    and the buffers' shapes.

    A large result of an elementwise ufunc or matmul is computed (out=) into a
    buffer: the operand's own when an operand of the same shape dies at that step
    (in place; never for matmul), else one freed by an earlier step, else a new
    one.  A buffer is free again once no live slot can see it: a step that may
    return a view (transpose, reshape, an index…) keeps its operands' buffers
    alive as long as its result lives.  Outputs never go into buffers (the caller
    keeps them), and a result that is a view of a buffer is copied (_outputs).
    """
    steps = plan.steps
    taken = plan.taken               # made for an output to be computed into: never a buffer
    buffer_of: dict[int, int] = {}
    shapes: list[tuple] = []
    if BUFFER_MIN is None or not any(
            not is_float[k] and step[2] not in outs and _writes_out(step[0])
            and isinstance(shape[step[2]], tuple) and math.prod(shape[step[2]]) >= BUFFER_MIN
            for k, step in enumerate(steps)):
        return buffer_of, shapes          # no step could use one (a plan of small steps)
    roots: dict[int, frozenset] = {}          # slot → buffers it may be a view of
    users: dict[int, set] = {}                # buffer → live slots that may see it
    free: dict[tuple, list[int]] = {}         # shape → free buffers
    owner: dict[int, int] = {}                # slot → the buffer it was computed into
    dying: dict[int, list[int]] = {}          # step → slots whose last use it is
    kept = 0                                  # elements in buffers so far
    for s, k in last_use.items():
        dying.setdefault(k, []).append(s)
    for k, (kernel, ins, out, _free, node) in enumerate(steps):
        sh = shape[out]
        chosen = None
        if not is_float[k] and out not in outs and _writes_out(kernel) and out not in taken \
                and isinstance(sh, tuple) and math.prod(sh) >= BUFFER_MIN:
            if kernel is not np.matmul:
                for s in ins:
                    b = owner.get(s)
                    if b is not None and last_use.get(s) == k and s not in outs \
                            and shape[s] == sh and users.get(b) == {s}:
                        chosen = b                # in place: the operand dies here
                        break
            if chosen is None:
                pool = free.get(sh)
                if pool:
                    chosen = pool.pop()
                elif kept + math.prod(sh) <= BUFFER_MAX:
                    chosen = len(shapes)
                    shapes.append(sh)
                    users[chosen] = set()
                    kept += math.prod(sh)
        if chosen is not None:
            buffer_of[k] = chosen
            owner[out] = chosen
            roots[out] = frozenset((chosen,))
        elif _fresh(kernel):
            roots[out] = frozenset()
        else:
            roots[out] = frozenset().union(*(roots.get(s, frozenset()) for s in ins))
        for b in roots[out]:
            users.setdefault(b, set()).add(out)
        # the slots read for the last time here (and a result nobody reads) die
        for s in dying.get(k, []) + ([out] if out not in last_use and out not in outs else []):
            if s in outs:
                continue
            for b in roots.get(s, ()):
                users[b].discard(s)
                if not users[b] and b != chosen:
                    free.setdefault(shapes[b], []).append(b)
        if chosen is not None and not users[chosen]:
            free.setdefault(sh, []).append(chosen)
    return buffer_of, shapes


_WORDS = {"def", "make", "P", "chunk", "return", "env", "flag", "bufs", "out", "del", "if", "else", "and", "or",
          "is", "not", "None", "tolist", "is_set", "t_", "abs", "_float", "_power", "_sqrt", "_asarray",
          "_interrupted"}
_NAME = re.compile(r"[A-Za-z_]\w*")
_SLOT_NAME = re.compile(r"[vlcfks]\d+")


def _check_source(src: str) -> None:
    """Generated code holds only this module's words and slot names: no string, no
    attribute but tolist, nothing from a program's text."""
    for word in _NAME.findall(src):
        if word not in _WORDS and not _SLOT_NAME.fullmatch(word):
            raise BpInternalError(f"generated plan code has an unexpected name {word!r}")
    if any(ch in src for ch in "'\"#\\;@{}"):
        raise BpInternalError("generated plan code has an unexpected character")


HEAVY = 4096   # elements: a step this large checks for an interrupt after it


def _heavy_slots(shape: dict) -> set:
    """The slots of HEAVY elements or more (or of unknown size): a step that makes or
    reads one may take long, so the interrupt is checked after it, not only between
    chunks (a chunk of light steps takes a few milliseconds at most)."""
    big: dict = {}                       # shape → heavy (a plan has few distinct shapes)
    out = set()
    for s, sh in shape.items():
        if not isinstance(sh, tuple):
            out.add(s)
            continue
        b = big.get(sh)
        if b is None:
            b = big[sh] = math.prod(sh) >= HEAVY
        if b:
            out.add(s)
    return out


# Ops whose kernels call only NumPy functions that report floating-point trouble
# through errstate, never through Python's warnings (np.mean of an empty slice or a
# host function could): a plan of these and of quiet kernels skips catch_warnings.
QUIET_OPS = {"softmax", "log_softmax", "cross_entropy", "logsumexp", "transpose", "reshape",
             "expand_dims", "broadcast_like", "broadcast_to", "index", "unindex", "concat",
             "stack", "zeros_like", "where", "relu", "sigmoid", "softplus", "outer", "trace",
             "diag", "unbroadcast"} | set(_FLOAT)


def _is_quiet(kernel, op: str) -> bool:
    """A kernel that cannot warn through Python's warnings (NumPy's floating-point
    complaints are silenced by errstate)."""
    return isinstance(kernel, np.ufunc) or getattr(_base(kernel), "bp_quiet", False) \
        or op in QUIET_OPS
