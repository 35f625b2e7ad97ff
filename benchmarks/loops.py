"""Structured loops (issue 15): the cost of an iteration and of a loop's gradient.

    python benchmarks/loops.py

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


def main() -> None:
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
