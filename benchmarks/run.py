"""bp against the hand-written NumPy floor (and autograd, PyTorch, JAX when installed)
on the workloads of BENCHMARKS.md, in one process; writes benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/run.py            # the full run (several minutes)
    .venv/bin/python benchmarks/run.py --quick    # every workload, few rounds (< 1 minute)
    .venv/bin/python benchmarks/run.py --only mlp,hessian

Workloads: 1 `mlp` (MLP loss + all gradients, B=128 784-256-256-10 and B=16
16-32-32-4, float64; float32 for the floor and the peers), 2 `loop`
(Rosenbrock n=100 with scalar indexing in a loop: gradient, time to first
result), 3 `higher` (k-th derivative of tanh and of sin(x)·exp(−x²/2) by
nested grad, k = 1…8: size, first result, per evaluation), 4 `hessian`
(vectorized Rosenbrock n = 10, 100, 300: gradient, dense Hessian, HVP),
5 `startup` (whole processes: `bp -c "print 1"` beside `python -c "import
numpy"` and the rest), 6 `conv` (a small CNN's loss and gradients: conv2d,
relu, max_pool2d, dense, cross-entropy; bp against PyTorch and hand NumPy), 7
`einsum` (a batched matrix product and a bilinear form written with einsum, loss
and gradients; bp against PyTorch and hand NumPy einsums), 8 `loop10k` (the
Rosenbrock loop of workload 2 at n = 10⁴, one loop node: time to first result,
gradient against CasADi SX in the same run when CasADi is installed), 9 `mlpjax`
(workload 1's MLP step at B = 128 and 4096 on bp's NumPy and JAX engines beside
hand JAX's jax.jit(jax.value_and_grad(…)); it prints the device it ran on, so the
same command measures a GPU machine), 10 `build` (issue 19: the gradient of the
Rosenbrock sum written out with n = 10⁴ terms and of a chain of 10⁵ tanh, 10³ and
10⁴ with --quick: time to first result in fresh sessions, per plan step and against
CasADi SX's build and PyTorch eager, the second call, per evaluation against
CasADi; the fixed cost of a call of `def f(x) = x`; workload 1's MLP at B = 1
against JAX jit; a full `--only build` takes a few minutes, most of it bp's builds).

The timing rules are BENCHMARKS.md's: start-up first, with the unmodified
environment; then the process is pinned to one CPU (os.sched_setaffinity)
*before* NumPy or any peer is imported, so every library runs one thread;
2 warm-up calls per candidate, whose results are checked against the
reference (normwise relative error ≤ 1e-8) before any figure is taken;
`number` calls per sample calibrated to ~0.1 s (0.05 s for workload 3);
15 rounds (7 for workload 3), each one sample of every candidate in a
freshly shuffled order, with the garbage collector off during a sample;
medians, and ratios of medians to the NumPy floor of the same run.

Peers that are not installed are skipped with a printed line, and one whose
set-up fails is skipped with its error (`pip install -e .[bench]` installs
them all: SymPy, autograd, PyTorch, JAX, CasADi).  A benchmark, not a test:
it exits 0 unless it could not run at all, whatever the figures.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STARTUP_TARGET = 1.5


# ── 5. start-up: whole processes, run before anything is pinned or imported ──

NUMPY_LABEL = "python -c \"import numpy\""
BP_LABEL = "bp -c \"print 1\""
CACHED_NUMPY = NUMPY_LABEL + " (bytecode cached)"
CACHED_BP = BP_LABEL + " (bytecode cached)"


def _startup_commands(pycache: str) -> list[tuple[str, list[str], dict | None]]:
    """(label, command, environment); None: the unmodified environment."""
    import importlib.util
    sys.path.insert(0, str(HERE))
    from startup import bp_command          # reuse: the venv's `bp` script, else python -m dsl
    py = sys.executable
    cmds = [("python -c \"pass\"", [py, "-c", "pass"], None),
            (NUMPY_LABEL, [py, "-c", "import numpy"], None),
            ("python -c \"import lark, numpy, rich, prompt_toolkit\"",
             [py, "-c", "import lark, numpy, rich, prompt_toolkit"], None)]
    for mod in ("jax", "torch"):
        if importlib.util.find_spec(mod) is not None:
            cmds.append((f"python -c \"import {mod}\"", [py, "-c", f"import {mod}"], None))
        else:
            print(f"{mod}: not installed, `import {mod}` start-up skipped")
    cmds.append((BP_LABEL, bp_command() + ["-c", "print 1"], None))
    # The same two with every module's bytecode cached (as after `pip install .`): an
    # editable install under PYTHONDONTWRITEBYTECODE=1 compiles dsl's sources at each
    # start. A private pycache prefix, filled by the warm-up run, serves both alike.
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = pycache
    cmds.append((CACHED_NUMPY, [py, "-c", "import numpy"], cached))
    cmds.append((CACHED_BP, bp_command() + ["-c", "print 1"], cached))
    return cmds


def _run_process(cmd: list[str], env: dict | None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + sys, from wait4) and peak RSS (KiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def workload_startup(runs: int) -> tuple[list[str], list[tuple]]:
    import shutil
    import tempfile
    pycache = tempfile.mkdtemp(prefix="bp-bench-pycache-")
    try:
        cmds = _startup_commands(pycache)
        print(f"start-up: {len(cmds)} commands, 1 warm-up + {runs} runs each, interleaved", flush=True)
        for _, cmd, env in cmds:
            _run_process(cmd, env)                          # file cache (and the bytecode cache)
        samples: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _, _ in cmds}
        rng = random.Random(0)
        order = list(cmds)
        for _ in range(runs):
            rng.shuffle(order)
            for label, cmd, env in order:
                samples[label].append(_run_process(cmd, env))
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    med = {label: statistics.median(s[0] for s in v) for label, v in samples.items()}
    cpu = {label: statistics.median(s[1] for s in v) for label, v in samples.items()}
    dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
    lines = ["## 5. Start-up (whole process)", "",
             "Unpinned children, before the driver imports anything; 1 warm-up and "
             f"{runs} runs each, interleaved in shuffled order. CPU (user + system) and peak RSS "
             "from `wait4`. The first rows run in the unmodified environment"
             + (f" (here PYTHONDONTWRITEBYTECODE={dont_write!r}: NumPy's bytecode was compiled at "
                "install time, but the editable dsl's is compiled from source at every start)"
                if dont_write else "")
             + "; the last two with every module's bytecode cached in a private "
               "PYTHONPYCACHEPREFIX, as after `pip install .`.", "",
             "| command | median wall | min | CPU (median) | peak RSS (median) | ratio to `import numpy` |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, _, env in cmds:
        s = samples[label]
        base = CACHED_NUMPY if env is not None else NUMPY_LABEL
        lines.append(f"| `{label}` | {med[label] * 1e3:.1f} ms | {min(x[0] for x in s) * 1e3:.1f} ms "
                     f"| {cpu[label] * 1e3:.1f} ms "
                     f"| {statistics.median(x[2] for x in s) / 1024:.1f} MiB "
                     f"| {med[label] / med[base]:.2f}× |")
    lines.append("")
    targets = []
    for what, bp, base in (("`bp -c \"print 1\"` / `python -c \"import numpy\"`", BP_LABEL, NUMPY_LABEL),
                           ("the same, bytecode cached for both", CACHED_BP, CACHED_NUMPY)):
        r, rc = med[bp] / med[base], cpu[bp] / cpu[base]
        targets.append(("5. Start-up", what, f"{r:.2f}×", f"≤ {STARTUP_TARGET}×", r <= STARTUP_TARGET,
                        f"{rc:.2f}×", rc <= STARTUP_TARGET))
    return lines, targets


# ── the machine ──────────────────────────────────────────────────────────

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_share(seconds: float = 0.3) -> float:
    """CPU time over wall time of a busy loop: 1.0 when the pinned CPU is ours alone,
    about 0.5 when another job shares it (then wall times double, ratios hold)."""
    c0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sum(range(1000))
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def pin(cpu: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="every workload with few rounds and short samples (a smoke run)")
    parser.add_argument("--only", default="",
                        help="comma-separated: mlp,loop,higher,hessian,conv,einsum,loop10k,mlpjax,build,startup")
    parser.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the last allowed)")
    parser.add_argument("--output", default=None,
                        help="where to write the report (default: benchmarks/RESULTS.md for a full "
                             "run of every workload, nowhere for --quick or --only)")
    opts = parser.parse_args(argv)
    chosen = [w.strip() for w in opts.only.split(",") if w.strip()]
    known = ["mlp", "loop", "higher", "hessian", "conv", "einsum", "loop10k", "mlpjax", "build",
             "startup"]
    for w in chosen:
        if w not in known:
            parser.error(f"unknown workload {w!r} (choose from {', '.join(known)})")
    selected = chosen or known
    output = opts.output
    if output is None and not opts.quick and not chosen:
        output = str(HERE / "RESULTS.md")
    started = time.perf_counter()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpus_before = len(os.sched_getaffinity(0))

    sections: list[list[str]] = []
    targets: list[tuple] = []
    if "startup" in selected:                      # before pinning, before importing numpy
        lines, t = workload_startup(runs=3 if opts.quick else 10)
        startup_section = lines
        targets += t
    else:
        startup_section = None

    cpu = pin(opts.cpu)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, str(HERE))
    import numpy as np                              # noqa: E402  (after pinning, on purpose)
    import dsl                                      # noqa: E402
    import workloads as W                           # noqa: E402

    def log(msg: str) -> None:
        print(msg, flush=True)
    share_before = cpu_share()
    print(f"pinned to CPU {cpu} (of {cpus_before}); quick={opts.quick}; "
          f"CPU share {share_before:.0%}", flush=True)
    peers = W.Peers(log)
    w_opts = W.Options(quick=opts.quick, rounds=3 if opts.quick else 15, rounds3=2 if opts.quick else 7,
                       target_s=0.01 if opts.quick else 0.1, target_s3=0.005 if opts.quick else 0.05,
                       builds=1 if opts.quick else 3, log=log)
    runners = [("mlp", W.workload_mlp), ("loop", W.workload_rosen_loop),
               ("higher", W.workload_higher), ("hessian", W.workload_hessian),
               ("conv", W.workload_conv), ("einsum", W.workload_einsum),
               ("loop10k", W.workload_rosen_loop10k), ("mlpjax", W.workload_mlp_jax),
               ("build", W.workload_build)]
    for name, fn in runners:
        if name not in selected:
            continue
        try:
            lines, t = fn(w_opts, peers)
        except Exception as err:                 # bp itself failed: say so, go on with the rest
            import traceback
            traceback.print_exc()
            lines = [f"## {name}: FAILED", "", f"`{type(err).__name__}: {err}`", ""]
            t = []
        print("\n".join(lines), flush=True)
        sections.append(lines)
        targets += [(x.workload, x.what, x.measured, x.target, x.met, x.cpu, x.cpu_met) for x in t]
    if startup_section is not None:
        print("\n".join(startup_section), flush=True)
        sections.append(startup_section)

    share_after = cpu_share()
    load = os.getloadavg()
    busy = min(share_before, share_after) < 0.9
    summary = ["## Targets (issue 6, and the issues the rows name)", "",
               f"Share of the pinned CPU this process got in a busy loop: {share_before:.0%} before "
               f"the workloads, {share_after:.0%} after (load average {load[0]:.1f} at the end, on "
               f"{os.cpu_count()} CPUs)."
               + (" **Another job shared the CPU**: wall times are inflated by about the inverse "
                  "of that share, for bp and the floor alike, so ratios hold but absolute times "
                  "(the Rosenbrock and tanh targets) are better judged by the CPU column." if busy else ""),
               "",
               "Measured: from medians of wall time, as BENCHMARKS.md reports. CPU: the same figure "
               "from medians of process CPU time, which another job sharing the CPU inflates less.",
               "",
               "| workload | what | measured | target | met? | CPU | met by CPU? |",
               "| --- | --- | ---: | --- | --- | ---: | --- |"]
    for wl, what, measured, target, met, cpu_fig, cpu_met in targets:
        summary.append(f"| {wl} | {what} | {measured} | {target} | {W._yes(met)} | {cpu_fig} "
                       f"| {W._yes(cpu_met)} |")
    summary.append("")
    print("\n".join(summary))

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        blas = "?"
    header = [
        "# bp benchmarks: results",
        "",
        f"Written by `benchmarks/run.py`{' --quick' if opts.quick else ''} on {when} "
        f"({time.perf_counter() - started:.0f} s). The workloads, inputs and timing rules are "
        "those of `BENCHMARKS.md` (shared); run it again with `.venv/bin/python benchmarks/run.py`. "
        "Absolute times drift between machines and runs: compare the ratios to the NumPy floor "
        "measured in the same run.",
        "",
        "| | |", "| --- | --- |",
        f"| machine | {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()} |",
        f"| pinned to | CPU {cpu} (one thread for every library) |",
        f"| Python | {platform.python_version()} ({sys.executable}) |",
        f"| NumPy | {np.__version__} (BLAS: {blas}) |",
        f"| bp | {dsl.__version__}, commit {git_state()} |",
        "| peers | " + ", ".join(f"{k} {v}" for k, v in peers.versions.items()) + " |",
        f"| rounds | {w_opts.rounds} × ~{w_opts.target_s * 1e3:.0f} ms samples "
        f"(workload 3: {w_opts.rounds3} × ~{w_opts.target_s3 * 1e3:.0f} ms); "
        "medians; every result checked (normwise relative error ≤ 1e-8) before timing |",
        "",
        "Ratios are ratios of medians to the hand-written NumPy candidate of the same "
        "workload and dtype. Peers that are not installed are absent; their figures from "
        "BENCHMARKS.md are the yardstick the targets were set against.",
        "",
    ]
    if output:
        text = "\n".join(header + summary + [line for s in sections for line in s]) + "\n"
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
