"""Timing and checking for benchmarks/run.py (see /work/shared/BENCHMARKS.md).

A `Candidate` is one unit of work as a zero-argument callable, with the
reference its result must match.  `measure` runs a group of candidates
the BENCHMARKS way: 2 warm-up calls each (their results are checked
against the reference, the first one after the second call, so a result
that a later call overwrites is caught), calibration of `number` calls
per sample to about `target_s`, then `rounds` rounds each taking one
sample of every candidate in a freshly shuffled order, with the garbage
collector off during a sample.  A candidate that fails its check is never
timed, so no figure is printed for a wrong result.

Imports NumPy: import this module only after the process is pinned.
"""
from __future__ import annotations

import gc
import math
import random
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

TOLERANCE = 1e-8          # normwise relative error, float64
TOLERANCE_F32 = 1e-4      # float32 results against the float64 reference


def flatten(result) -> list[np.ndarray]:
    """A peer's result (converted to NumPy) as a flat list of float64 arrays."""
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in flatten(r)]
    if isinstance(result, dict):
        return [a for r in result.values() for a in flatten(r)]
    return [np.asarray(result, dtype=np.float64)]


def rel_error(result: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """max over arrays of max|a - b| / max|b| (inf on a structure or shape mismatch)."""
    if len(result) != len(reference):
        return math.inf
    worst = 0.0
    for a, b in zip(result, reference):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return math.inf
        if a.size == 0:
            continue
        scale = float(np.max(np.abs(b)))
        diff = float(np.max(np.abs(a - b)))
        if not math.isfinite(diff):
            return math.inf
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


@dataclass
class Candidate:
    """One peer doing one unit of work."""
    peer: str                                   # "numpy", "bp", "autograd", "torch", …
    unit: str                                   # what it computes: "gradient", "Hessian", …
    fn: Callable[[], Any]                       # the timed call
    reference: list[np.ndarray] | None = None   # what its result must match
    convert: Callable[[Any], Any] = lambda r: r  # peer result → NumPy (outside the timing)
    tolerance: float = TOLERANCE
    note: str = ""
    # filled in by measure()
    number: int = 0
    wall: list[float] = field(default_factory=list)      # seconds per call, one per sample
    cpu: list[float] = field(default_factory=list)
    error: float | None = None
    status: str = "pending"                     # "ok", "WRONG", "FAILED: …"

    @property
    def label(self) -> str:
        return f"{self.peer} {self.unit}"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def minimum(self) -> float:
        return min(self.wall)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.wall) < 2:
            return self.wall[0], self.wall[0]
        q = statistics.quantiles(self.wall, n=4, method="inclusive")
        return q[0], q[2]

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def check(c: Candidate) -> bool:
    """Warm up (2 calls) and check both results against the reference."""
    try:
        first = c.fn()
        second = c.fn()
        results = [flatten(c.convert(first)), flatten(c.convert(second))]
    except Exception as err:                      # a peer that cannot do the work
        c.status = f"FAILED: {type(err).__name__}: {err}".splitlines()[0][:200]
        c._trace = traceback.format_exc()
        return False
    if c.reference is None:
        c.error = None
        c.status = "ok"
        return True
    c.error = max(rel_error(r, c.reference) for r in results)
    c.status = "ok" if c.error <= c.tolerance else "WRONG"
    return c.ok


def _sample(fn: Callable[[], Any], number: int) -> tuple[float, float]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        t1 = time.perf_counter()
        c1 = time.process_time()
    finally:
        if enabled:
            gc.enable()
    return t1 - t0, c1 - c0


def calibrate(fn: Callable[[], Any], target_s: float) -> int:
    """Calls per sample so that one sample lasts about target_s."""
    number = 1
    while True:
        t, _ = _sample(fn, number)
        if t >= target_s / 5 or number >= 1 << 24:
            break
        number *= 10 if t < target_s / 50 else 2
    per_call = max(t / number, 1e-9)
    return max(1, round(target_s / per_call))


def measure(cands: list[Candidate], rounds: int, target_s: float, seed: int = 0,
            progress: Callable[[str], None] | None = None) -> list[Candidate]:
    """Check, calibrate and time a group of candidates, interleaved."""
    live = []
    for c in cands:
        if check(c):
            live.append(c)
        elif progress:
            progress(f"  {c.label}: {c.status}" + (f" (error {c.error:.2e})" if c.error else ""))
    for c in live:
        c.number = calibrate(c.fn, target_s)
    order = list(live)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for c in order:
            wall, cpu = _sample(c.fn, c.number)
            c.wall.append(wall / c.number)
            c.cpu.append(cpu / c.number)
    # One more check after all the calls: a plan that reuses buffers must
    # still give the right answer (and a fresh object) at the end.
    for c in live:
        if c.reference is not None:
            err = rel_error(flatten(c.convert(c.fn())), c.reference)
            c.error = max(c.error or 0.0, err)
            if err > c.tolerance:
                c.status = "WRONG (after timing)"
                c.wall.clear()
    return cands


def once(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any, float]:
    """Median wall time of `repeat` fresh single calls (each call builds anew),
    the last result, and the median process CPU time."""
    times, cpus, result = [], [], None
    for _ in range(repeat):
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(times), result, statistics.median(cpus)


def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return "–"
    return f"{r:.3g}×"
