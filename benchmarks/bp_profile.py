"""Where bp's time goes on the workloads that miss their targets (docs/performance.md).

    .venv/bin/python benchmarks/bp_profile.py [--only tanh,mlp,loop,hessian] [--cprofile]

For each workload, pinned to one CPU like benchmarks/run.py, splits one
call of the bp function into layers:

- `call`: what a user pays, `bp.function(...)(arrays)` (the embedding API);
- `plan.run`: the compiled plan alone, on the same arrays, as a call runs it
  (generated code, the scalar fast path, the plan's buffers), so call −
  plan.run is the embedding layer (argument conversion, the plan-cache key and
  globals check, packing the results);
- `generated, no floats`: the same without the scalar fast path
  (evaluate.ENGINE = "generated");
- `generated, no buffers`: with the scalar fast path but every result a new
  array (evaluate.BUFFER_MIN = None), so its difference to plan.run is what
  the plan's own buffers save (page faults of fresh large temporaries);
- `step loop`: the reference loop over the steps (`Plan.run_loop`), what
  every plan ran before the generated code; loop − generated is what
  generating code saved;
- `Σ kernels`: the kernels alone, timed one by one, by op (the graph's cost:
  what better kernels, fusion or fewer nodes would change).

With --cprofile, also a cProfile of the call and, for the scalar loop, of
the build (time to first result).  Uses private parts of the interpreter
(`Interpreter._plans`, `Plan.steps`, `evaluate.ENGINE`): a diagnostic, not an API.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _calls_per_sample(fn, sample_s: float) -> int:
    for _ in range(3):        # warm up first: a plan compiles on its second call, and a
        fn()                  # calibration that timed the compile would take 1 call a sample
    n = 1
    while True:
        t0 = time.process_time()
        for _ in range(n):
            fn()
        t = time.process_time() - t0
        if t > sample_s / 5:
            return max(1, int(n * sample_s / t))
        n *= 4


def interleaved(fns: dict, rounds: int = 11, sample_s: float = 0.03) -> dict:
    """Median process CPU time per call of each callable, sampled in interleaved rounds.

    CPU time, not wall time, and interleaved: on a shared machine another job
    inflates wall time at random, which would blur the differences between the
    layers this script subtracts."""
    import gc
    import statistics
    numbers = {k: _calls_per_sample(f, sample_s) for k, f in fns.items()}
    samples: dict = {k: [] for k in fns}
    gc.disable()
    try:
        for _ in range(rounds):
            for k, f in fns.items():
                n = numbers[k]
                t0 = time.process_time()
                for _ in range(n):
                    f()
                samples[k].append((time.process_time() - t0) / n)
    finally:
        gc.enable()
    return {k: statistics.median(v) for k, v in samples.items()}


def per_call(fn) -> float:
    return interleaved({"f": fn})["f"]


def kernel_times(plan, inputs, reps: int) -> tuple[dict, float]:
    """Seconds per call in each op's kernels, and their sum: each step timed
    singly, its fastest of `reps` runs (robust to another job taking the CPU)."""
    import numpy as np
    best = [float("inf")] * len(plan.steps)
    perf = time.perf_counter
    with np.errstate(all="ignore"):
        for _ in range(reps):
            env = [None] * plan.nslots
            env[: plan.n_inputs] = inputs
            for s, value in plan.consts:
                env[s] = value
            for k, (kernel, ins, out, free, node) in enumerate(plan.steps):
                args = [env[i] for i in ins]
                t0 = perf()
                env[out] = kernel(*args)
                t = perf() - t0
                if t < best[k]:
                    best[k] = t
                for s in free:
                    env[s] = None
    agg: dict = defaultdict(lambda: [0, 0.0])
    for k, step in enumerate(plan.steps):
        node = step[4]
        entry = agg[(node.op, "×".join(map(str, node.shape)) or "()")]
        entry[0] += 1
        entry[1] += best[k]
    table = {key: (n, t) for key, (n, t) in agg.items()}
    return table, sum(best)


def fmt(s: float) -> str:
    return f"{s * 1e6:9.1f} µs" if s < 1e-2 else f"{s * 1e3:9.2f} ms"


def layers(title: str, bp, call, inputs, floor=None, top: int = 12, cprofile: bool = False) -> None:
    from dsl import evaluate
    plan = max((entry[0] for entry in bp._plans.values()), key=len)

    def generated():
        evaluate.ENGINE = "generated"
        try:
            plan.run(inputs, False, None)
        finally:
            evaluate.ENGINE = "scalar"
    saved, evaluate.BUFFER_MIN = evaluate.BUFFER_MIN, None
    try:
        unbuffered = evaluate._generate(plan, True)       # the same code, every result fresh
    finally:
        evaluate.BUFFER_MIN = saved
    fns = {"call": call, "plan": lambda: plan.run(inputs, False, None), "gen": generated,
           "fresh": lambda: unbuffered.run(plan, inputs, None), "loop": lambda: plan.run_loop(inputs)}
    if floor is not None:
        fns["floor"] = floor
    t = interleaved(fns)
    t_call, t_plan, t_gen, t_fresh, t_loop = t["call"], t["plan"], t["gen"], t["fresh"], t["loop"]
    floor = t.get("floor")
    reps = min(200, max(5, int(0.3 / max(t_loop, 1e-7))))
    ops, t_kern = kernel_times(plan, inputs, reps)
    n = max(len(plan), 1)
    print(f"\n## {title}: {len(plan)} plan steps (CPU time per call, medians of interleaved samples)")
    if floor is not None:
        print(f"  hand-written NumPy floor   {fmt(floor)}")
    print(f"  call (embedding API)       {fmt(t_call)}   ({t_call / floor:.2f}× the floor)" if floor
          else f"  call (embedding API)       {fmt(t_call)}")
    print(f"  plan.run                   {fmt(t_plan)}   (embedding layer {fmt(t_call - t_plan)})")
    print(f"  generated, no floats       {fmt(t_gen)}   (the scalar fast path saves {fmt(t_gen - t_plan)})")
    print(f"  generated, no buffers      {fmt(t_fresh)}   (the plan's buffers save {fmt(t_fresh - t_plan)}; "
          f"{len(plan._compiled[True].buffer_shapes)} buffers)")
    print(f"  step loop (reference)      {fmt(t_loop)}   (generated code, no floats, saves "
          f"{fmt(t_loop - t_gen)}, {(t_loop - t_gen) / n * 1e9:.0f} ns/step, buffers included)")
    print(f"  Σ kernels (each its fastest){fmt(t_kern)}")
    print(f"  by op (top {top}):   op, result shape: steps, time per call")
    for (op, shape), (k, tk) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {op:16s} {shape:14s} {k:5d}  {fmt(tk)}")
    if cprofile:
        profile_calls(call, t_call)


def profile_calls(call, t_call: float, lines: int = 18) -> None:
    import cProfile
    import pstats
    n = max(1, int(1.0 / max(t_call, 1e-7)))
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(n):
        call()
    pr.disable()
    print(f"  cProfile of {n} calls (tottime):")
    pstats.Stats(pr, stream=sys.stdout).sort_stats("tottime").print_stats(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="tanh,mlp,loop,hessian")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    opts = parser.parse_args(argv)
    cpu = opts.cpu if opts.cpu is not None else sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, str(HERE))
    import numpy as np
    import dsl
    import workloads as W
    only = opts.only.split(",")

    if "tanh" in only:
        bp = dsl.Interpreter()
        d = bp.function("diff(tanh, 8)")
        x0 = np.asarray(0.5)
        d(x0)
        layers("tanh, 8th derivative, per evaluation", bp, lambda: d(x0), [x0],
               cprofile=opts.cprofile)
    if "mlp" in only:
        for B, sizes in ((16, (16, 32, 32, 4)), (128, (784, 256, 256, 10)), (1, (784, 256, 256, 10))):
            X, Y, P = W.mlp_inputs(B, sizes)
            bp = dsl.Interpreter()
            bp["X"], bp["Y"], bp["λ"] = X, Y, W.LAMBDA
            bp.exec(W.BP_MLP)
            f = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2, W3, b3))")
            f(*P)
            floor = lambda: W.mlp_numpy_backprop(X, Y, *P)
            layers(f"MLP B={B} {'-'.join(map(str, sizes))}", bp, lambda: f(*P), P, floor,
                   cprofile=opts.cprofile)
    if "loop" in only:
        x = np.linspace(-1.2, 1.3, 100)
        if opts.cprofile:
            import cProfile
            import pstats
            W._bp_rosen_first(x)
            pr = cProfile.Profile()
            pr.enable()
            W._bp_rosen_first(x)
            pr.disable()
            print("\n## Rosenbrock loop: build + first evaluation, cProfile (cumtime)")
            pstats.Stats(pr, stream=sys.stdout).sort_stats("cumtime").print_stats(30)
        t0 = time.perf_counter()
        W._bp_rosen_first(x)
        print(f"\nRosenbrock loop: time to first result {fmt(time.perf_counter() - t0)}")
        bp = dsl.Interpreter()
        bp.exec(W.BP_ROSEN_LOOP)
        g = bp.function("grad(rosenbrock_loop)")
        g(x)
        layers("Rosenbrock n=100 scalar loop, gradient", bp, lambda: g(x), [x],
               floor=lambda: W.rosen_grad_numpy(x), cprofile=opts.cprofile)
    if "hessian" in only:
        for n in (100, 300):
            x = np.linspace(-1.2, 1.3, n)
            bp = dsl.Interpreter()
            bp.exec(W.BP_ROSEN)
            h = bp.function("hessian(rosen)")
            h(x)
            layers(f"Rosenbrock n={n} dense Hessian", bp, lambda: h(x), [x],
                   floor=lambda: W.rosen_hessian_numpy(x), top=20)
            plan = next(iter(bp._plans.values()))[0]
            print("  the plan:")
            for kernel, ins, out, free, node in plan.steps:
                attrs = ", ".join(f"{k}={v}" for k, v in node.attrs)
                print(f"    v{out} = {node.op}({', '.join(f'v{i}' for i in ins)}"
                      f"{'; ' + attrs if attrs else ''})  {tuple(node.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
