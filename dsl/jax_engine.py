"""The JAX engine (issue 18): a compiled plan as one jitted JAX function.

`Interpreter(engine="jax")` makes `JaxPlan`s where the NumPy engine makes
`evaluate.Plan`s: per function and argument shapes, cached the same way.  A
JaxPlan writes its graph as the JAX module `export … as jax` writes
(`codegen.module(…, engine="jax")`: each op's JAX form from the registry) and
jits it: XLA compiles it once, on the first call, and every later call of the
plan runs the compiled program.  Constants larger than a few elements (the data
and weights a function reads as globals) are arguments of the jitted function,
put on the device once, not literals in its text.  Results come back as NumPy
arrays.

With `devices=N` the plan is data-parallel over a 1-D mesh of N devices
(`jax.sharding.NamedSharding`): the data are split along their first axis, the
rest (parameters, small constants) replicated, and XLA's SPMD partitioner
inserts the reductions.  The data are the inputs and constants whose first axis
is the plan's batch size, the longest first axis among them, when N divides it
(a training step's X and Y; its weights are shorter).  On one device it is the
same program.

A loop that keeps a tape (a reverse-mode derivative through it) needs the tape's
size when XLA compiles: a bound on its trip count known from the graph.  Where the
count is an argument (`range(n)` of a parameter n), the plan is specialised to
each value of n it is called with: a JaxPlan of the graph with n a constant, one
jitted function per value (up to COUNT_PLANS of them).

Where JAX cannot take a plan, the NumPy plan runs it, and `fallback` says why:
a host function (Python code that jit cannot trace), a loop keeping a tape of a
length known only as it runs (a while loop), and `--check-nan` (which checks
each step).
"""
from __future__ import annotations

import weakref

import numpy as np

from . import autodiff, codegen, ops
from .errors import BpError, BpValueError
from .evaluate import Plan
from .graph import Node, topo_order

INSTALL = "pip install 'bp-lang[jax]'"
LITERAL_MAX = 16          # constants with more elements are arguments of the jitted function
STRICT = False            # tests: a plan JAX cannot take is an error, not the NumPy plan
COUNT_PLANS = 16          # specialisations of a plan to the values of its loop counts


# Arrays stay on the device between calls: each result handed back as a (read-only)
# NumPy array remembers the device array it came from, and a call given that NumPy
# array again (a training loop's parameters, a minibatch read twice) passes the device
# array, not a fresh copy of the host one.  The entry dies with the NumPy array.
_RESIDENT: dict[int, tuple] = {}


def _keep(host: np.ndarray, device) -> None:
    key = id(host)
    _RESIDENT[key] = (weakref.ref(host, lambda _, key=key: _RESIDENT.pop(key, None)), device)


def _on_device(a):
    """The device array `a` (a NumPy array) was made from, if it is unchanged; else a."""
    hit = _RESIDENT.get(id(a))
    if hit is not None and hit[0]() is a and not a.flags.writeable:
        return hit[1]
    return a


def resident(a) -> bool:
    """Whether a call given `a` passes a device array kept for it (tests)."""
    return _on_device(a) is not a


def require(span=None):
    """jax, imported (with float64 on), or a clear error saying how to install it."""
    try:
        import jax
    except ImportError:
        raise BpValueError(f"the JAX engine needs JAX, which is not installed: {INSTALL}",
                           span) from None
    jax.config.update("jax_enable_x64", True)
    return jax


def mesh(devices: int, span=None):
    """A 1-D mesh ("data") over the first `devices` devices, or a clear error."""
    jax = require(span)
    found = jax.devices()
    if devices < 1 or devices > len(found):
        raise BpValueError(f"--devices {devices}: JAX sees {len(found)} device"
                           f"{'s' if len(found) != 1 else ''} ({found[0].platform}); on a CPU, "
                           f"XLA_FLAGS=--xla_force_host_platform_device_count=N makes N", span)
    from jax.sharding import Mesh
    return Mesh(np.array(found[:devices]), ("data",))


class JaxPlan:
    """A plan run by JAX: the same interface as evaluate.Plan (run, python, has_loops)."""

    def __init__(self, inputs: list[Node], outputs: list[Node], mesh=None):
        self.inputs, self.outputs = inputs, outputs
        self.n_inputs = len(inputs)
        self.input_shapes = [n.shape for n in inputs]
        order = topo_order(outputs)
        self.has_loops = any(n.op == "loop" for n in order)
        self._numpy: Plan | None = None
        self._pack = None
        self._mesh = mesh
        self.fallback: str | None = None      # why the NumPy plan runs this one
        self._jit = None
        self._traced = False
        self._count_slots = ()
        self._place = None                    # with a mesh: puts the inputs on their devices
        if any(n.op in ("host", "host_vjp") for n in order):
            self.fallback = "it calls a host function (Python code JAX cannot trace)"
            return
        given = {id(n) for n in inputs}
        consts = [n for n in order if n.op == "const" and n.value.size > LITERAL_MAX
                  and id(n) not in given]
        names = [f"a{i}" for i in range(len(inputs))] + [f"c{i}" for i in range(len(consts))]
        try:
            src = codegen.module({"plan": (names, list(inputs) + consts, tuple(outputs))}, {},
                                 engine="jax")
        except BpError as err:
            self._count_slots = _count_inputs(order, inputs)
            if self._count_slots:              # range(n) of an argument: specialised to n
                self._by_count: dict = {}
                return
            if STRICT:
                raise
            self.fallback = err.message
            return
        jax = require()
        scope: dict = {}
        # The text is codegen's, from the registry's templates and this plan's slot names.
        exec(compile(src, "<bp jax plan>", "exec"), scope)
        fn = scope["plan"]
        self.source = src
        self._consts = [n.value for n in consts]
        if mesh is None:
            self._jit = jax.jit(fn)
            self._consts = [jax.device_put(v) for v in self._consts]
        else:
            from jax.sharding import NamedSharding, PartitionSpec
            n = mesh.devices.size
            shapes = [s for s in self.input_shapes + [v.shape for v in self._consts]
                      if isinstance(s, tuple) and s]
            batch = max((s[0] for s in shapes), default=0)

            def sharding(shape):
                split = isinstance(shape, tuple) and len(shape) >= 1 and shape[0] == batch \
                    and batch % n == 0 and batch > 1
                return NamedSharding(mesh, PartitionSpec("data") if split else PartitionSpec())
            self.input_shardings = [sharding(s) for s in self.input_shapes]
            const_shardings = [sharding(v.shape) for v in self._consts]
            self._consts = [jax.device_put(v, s) for v, s in zip(self._consts, const_shardings)]
            self._jit = jax.jit(fn, in_shardings=tuple(self.input_shardings + const_shardings))
            self._place = lambda arrays: [jax.device_put(a, s) for a, s in
                                          zip(arrays, self.input_shardings)]

    def __len__(self) -> int:
        return len(topo_order(self.outputs))

    def numpy_plan(self) -> Plan:
        if self._numpy is None:
            self._numpy = Plan(self.inputs, self.outputs)
        return self._numpy

    def run(self, arrays, check_nan: bool | None = None, flag=None) -> list[np.ndarray]:
        """The outputs for these input arrays, as NumPy arrays of their own."""
        if self._count_slots and not check_nan:
            return self._counted(arrays).run(arrays, check_nan, flag)
        if self._jit is None or check_nan:
            return self.numpy_plan().run(arrays, check_nan, flag)
        host = arrays
        arrays = [_on_device(a) for a in arrays]
        if self._place is not None:
            arrays = self._place(arrays)
        if not self._traced:                  # the first call traces: JAX may refuse the code
            try:
                out = self._jit(*arrays, *self._consts)
            except BpError:
                raise
            except Exception as err:
                if STRICT:
                    raise
                self._jit, self.fallback = None, f"JAX could not trace it ({type(err).__name__})"
                return self.numpy_plan().run(host, check_nan, flag)
            self._traced = True
        else:
            out = self._jit(*arrays, *self._consts)
        results = []
        for o in out:
            r = np.asarray(o, dtype=np.float64)     # on a CPU, often the device's own buffer
            if r.flags.writeable:
                r.flags.writeable = False
            _keep(r, o)
            results.append(r)
        return results

    def _counted(self, arrays) -> JaxPlan:
        """The plan for these values of its loop counts: the graph with each a constant."""
        key = tuple(float(arrays[i]) for i in self._count_slots)
        plan = self._by_count.get(key)
        if plan is None:
            mapping = {id(self.inputs[i]): ops.const(v) for i, v in zip(self._count_slots, key)}
            plan = JaxPlan(self.inputs, autodiff.substitute(self.outputs, mapping), self._mesh)
            if plan._count_slots:              # still unbounded: not a count of these
                raise BpValueError("a loop's tape has no size known when it is compiled")
            if len(self._by_count) >= COUNT_PLANS:
                self._by_count.pop(next(iter(self._by_count)))
            self._by_count[key] = plan
        return plan

    def device_arrays(self, arrays) -> list:
        """The outputs as JAX arrays where they are (sharded over the mesh): for tests."""
        arrays = [_on_device(a) for a in arrays]
        if self._place is not None:
            arrays = self._place(arrays)
        return list(self._jit(*arrays, *self._consts))

    def python(self, results, template, general):
        pack = self._pack
        if pack is None:
            from .evaluate import packer
            pack = self._pack = packer(template) or general
        return pack(results)


def _count_inputs(order, inputs) -> list[int]:
    """The positions of the plan's scalar inputs that a tape-keeping loop's trip count is
    (directly, or through the count of the loop it reverses)."""
    given = {id(n): i for i, n in enumerate(inputs)}
    found = set()
    for node in order:
        if node.op != "loop" or not node.attr("body").emit:
            continue
        n = node.inputs[0]
        while n.op == "loop":
            b = n.attr("body")
            if n.attr("part") != len(b.carried) + len(b.emit):
                break
            n = n.inputs[0]
        if id(n) in given and n.shape == ():
            found.add(given[id(n)])
    return sorted(found)
