"""Structured loops (issue 15): the cost of an iteration and of a loop's gradient.

    python benchmarks/loops.py               # one long loop: per iteration, memory
    python benchmarks/loops.py --unroll      # unrolled against a loop node, by count

(The 10⁴-term Rosenbrock written as a loop, against CasADi, is workload 8 of
benchmarks/run.py: `python benchmarks/run.py --only loop10k`.)

Builds x ← x + h·cos(x) for 10⁵ iterations as one loop node (a while loop
counting to N), with dsl.loops over the graph builder, and times the value and
the value with the gradient in h (the loop, the saving loop that keeps the
tape, and the adjoint loop), each the second run of its plan (the first
compiles the body's plans); then the peak of NumPy's allocations for the
gradient (tracemalloc), which the tape of 10⁵ floats (0.8 MB) bounds.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

from dsl import loops
from dsl.autodiff import vjp_graph
from dsl.evaluate import Plan
from dsl.graph import make_input
from dsl.ops import apply, const

N = 100_000


def build():
    h, x0 = make_input("h", ()), make_input("x0", ())
    k, x = loops.counter(), make_input("x", ())
    nxt = apply("add", [x, apply("mul", [h, apply("cos", [x])])])
    cond = apply("less", [k, const(float(N))])
    xf, _ = loops.make_loop(const(np.inf), [x0], k, [x], [nxt], cond=cond, names=("x",))
    (gh,) = vjp_graph([xf], [const(1.0)], [h])
    return [h, x0], xf, gh


def unroll_table() -> None:
    """Time to a first result (build, differentiate, compile, run) and per call after,
    of a value and its gradient, for N iterations unrolled and as one loop node: what
    lower_loops.UNROLL_MAX is chosen from."""
    from dsl.evaluate import Plan as P

    def step(x, h, W):
        if W is None:
            return apply("add", [x, apply("mul", [h, apply("cos", [x])])])
        return apply("add", [x, apply("mul", [h, apply("tanh", [apply("matmul", [W, x])])])])
    for shape in [(), (10,)]:
        for n in [4, 16, 64, 256, 1024]:
            row = []
            for mode in ("unrolled", "loop"):
                t0 = time.perf_counter()
                h, x0 = make_input("h", ()), make_input("x0", shape)
                W = make_input("W", shape + shape) if shape else None
                if mode == "unrolled":
                    x = x0
                    for _ in range(n):
                        x = step(x, h, W)
                else:
                    k, c = loops.counter(), make_input("x", shape)
                    x, _ = loops.make_loop(const(float(n)), [x0], k, [c], [step(c, h, W)])
                loss = apply("sum", [apply("mul", [x, x])], {"axis": None, "keepdims": False})
                g = vjp_graph([loss], [const(1.0)], [h])
                ins = [h, x0] + ([W] if W is not None else [])
                plan = P(ins, [loss] + g)
                args = [np.asarray(0.1), np.full(shape, 0.5)] + ([np.eye(10)] if W is not None else [])
                plan.run(args)
                first = time.perf_counter() - t0
                plan.run(args)
                t1 = time.perf_counter()
                for _ in range(5):
                    plan.run(args)
                row.append(f"{mode}: first {first * 1e3:7.1f} ms, then {(time.perf_counter() - t1) / 5 * 1e3:6.2f} ms")
            print(f"x{list(shape)} N={n:5d}  " + "   ".join(row))


def main() -> None:
    import sys
    if "--unroll" in sys.argv:
        return unroll_table()
    inputs, xf, gh = build()
    args = [np.asarray(1e-5), np.asarray(0.0)]
    for name, outs in (("value", [xf]), ("value and gradient", [xf, gh])):
        plan = Plan(inputs, outs)
        plan.run(args)
        start = time.perf_counter()
        plan.run(args)
        took = time.perf_counter() - start
        print(f"{name}: {took:.3f} s for {N:,} iterations ({took / N * 1e6:.1f} µs an iteration)")
    plan = Plan(inputs, [xf, gh])
    tracemalloc.start()
    plan.run(args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"peak NumPy allocations of the gradient: {peak / 1e6:.1f} MB "
          f"(the tape: {N * 8 / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
