"""Time bp's GradBench tool at the sizes GRADBENCH.md quotes, through the protocol.

    .venv/bin/python -m benchmarks.gradbench.measure [eval …] [--runs N] [--seconds S]

Inputs are generated as the evals make them (seeded; GRADBENCH.md §6), sent to
`python -m benchmarks.gradbench` as evaluate messages, and the tool's own
"evaluate" timings are summarised: the first run (which builds bp's plan, as a
JIT compiles), the fastest run, and the mean that GradBench's website scores.
The tool runs single-threaded (OMP/OpenBLAS/MKL threads = 1), as the figures
in GRADBENCH.md were measured.  Outputs are not checked here (tests do that).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def lse(rng):
    yield "n=1280000", {"x": rng.random(1_280_000)}, ("primal", "gradient")


def llsq(rng):
    yield "m=128 n=16392", {"x": rng.random(128), "n": 16392}, ("primal", "gradient")


def det(rng):
    for ell in (5, 7, 9, 11):
        yield f"ell={ell}", {"A": rng.random(ell * ell), "ell": ell}, ("primal", "gradient")


def gmm(rng):
    for d, k in ((2, 5), (10, 25), (64, 100)):
        n = 1000
        inp = {"d": d, "k": k, "n": n, "m": 0, "gamma": 1.0, "alpha": rng.standard_normal(k),
               "mu": rng.random((k, d)), "q": rng.standard_normal((k, d)),
               "l": rng.standard_normal((k, d * (d - 1) // 2)), "x": rng.standard_normal((n, d))}
        yield f"d={d} k={k} n={n}", inp, ("objective", "jacobian")


def kmeans(rng):
    for k, n, d in ((10, 1000, 8), (1000, 10000, 16)):
        points = rng.random((n, d))
        yield f"k={k} n={n} d={d}", {"points": points, "centroids": points[-k:]}, ("cost", "dir")


def ode(rng):
    for n, s in ((1000, 10), (100000, 100)):
        yield f"n={n} s={s}", {"x": rng.random(n), "s": s}, ("primal", "gradient")


def saddle(rng):
    yield "start=[1, 1]", {"start": [1.0, 1.0]}, ("ff", "fr", "rf", "rr")


def particle(rng):
    yield "w=0", {"w": 0.0}, ("ff", "fr", "rf", "rr")


def lstm(rng):
    """ADBench's sizes: l layers, c characters of b bits (7 for ASCII text, 14 with a
    character past U+2000 such as an em dash); parameters U[0, 1), the bits random."""
    for l, c, b in ((2, 1024, 7), (2, 1024, 14), (6, 8192, 14)):
        inp = {"main_params": rng.random((2 * l, 4 * b)), "extra_params": rng.random((3, b)),
               "state": rng.random((2 * l, b)),
               "sequence": rng.integers(0, 2, (c, b)).astype(float)}
        yield f"l={l} c={c} b={b}", inp, ("objective", "jacobian")


def ba(rng):
    """The sizes of upstream's ba1 and ba3 data files; the eval sends one camera, point,
    weight and feature with the counts, and the tool repeats them."""
    for n, m, p in ((49, 7776, 31843), (161, 48126, 182072)):
        cam = np.r_[rng.standard_normal(3) * 0.1, rng.standard_normal(3), 400 + rng.random(),
                    rng.random(2), rng.random(2) * 1e-3]
        inp = {"n": n, "m": m, "p": p, "cam": cam, "x": rng.standard_normal(3) + [0, 0, 5],
               "w": rng.random(), "feat": rng.random(2)}
        yield f"n={n} m={m} p={p}", inp, ("objective", "jacobian")


WORKLOADS = {"lse": lse, "llsq": llsq, "det": det, "gmm": gmm, "kmeans": kmeans, "ode": ode,
             "saddle": saddle, "particle": particle, "lstm": lstm, "ba": ba}


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    return {k: _plain(x) for k, x in v.items()} if isinstance(v, dict) else v


class Client:
    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.gradbench"], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.id = 0

    def send(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps({"id": self.id, **msg}).encode() + b"\n")
        self.proc.stdin.flush()
        self.id += 1
        return json.loads(self.proc.stdout.readline())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evals", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--runs", type=int, default=5, help="min_runs (default 5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="min_seconds (default 1)")
    args = parser.parse_args(argv)
    client = Client()
    client.send({"kind": "start"})
    print("| eval | size | function | first run | fastest | mean | runs |")
    print("|---|---|---|---|---|---|---|")
    for name in args.evals:
        if not client.send({"kind": "define", "module": name})["success"]:
            print(f"| {name} | – | undefined | | | | |")
            continue
        rng = np.random.default_rng(31337)
        for size, inp, functions in WORKLOADS[name](rng):
            inp = {**_plain(inp), "min_runs": args.runs, "min_seconds": args.seconds}
            for fn in functions:
                r = client.send({"kind": "evaluate", "module": name, "function": fn, "input": inp})
                if not r["success"]:
                    print(f"| {name} | {size} | {fn} | failed: {r.get('error', '')[:60]} | | | |")
                    continue
                ns = [t["nanoseconds"] for t in r["timings"] if t["name"] == "evaluate"]
                print(f"| {name} | {size} | {fn} | {_ms(ns[0])} | {_ms(min(ns))} | "
                      f"{_ms(sum(ns) / len(ns))} | {len(ns)} |", flush=True)
    client.proc.stdin.close()
    return client.proc.wait()


def _ms(ns: float) -> str:
    ms = ns / 1e6
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.3g} ms"


if __name__ == "__main__":
    sys.exit(main())
