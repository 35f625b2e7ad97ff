"""Start-up time of `bp -c "print 1"` against `python -c "import numpy"`.

Both run as whole processes with the interpreter of the current virtual
environment (`sys.executable`), interleaved, after warm-up runs; the figure
is the median wall-clock time of each.  bp imports numpy anyway, so the
ratio measures what bp adds on top of it (target: at most 1.8x).

Also reports whether `bp -c` imports prompt_toolkit or rich, which only
the REPL and coloured errors on a terminal should need.

    .venv/bin/python benchmarks/startup.py [--runs N] [--warmup N]

A benchmark, not a test: it prints figures and always exits 0.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.8


def bp_command() -> list[str]:
    """The `bp` script next to this interpreter, else `python -m dsl`."""
    script = Path(sys.executable).with_name("bp")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dsl"]


def run_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def probe() -> tuple[bool, bool, bool]:
    """While `bp -c "print 1"` runs: is prompt_toolkit imported, is rich
    imported, and was dsl loaded from cached bytecode (.pyc)?"""
    code = ("import io, os, sys, dsl.cli\n"
            "dsl.cli.main(['-c', 'print 1'], stdout=io.StringIO())\n"
            "spec = sys.modules['dsl.interpreter'].__spec__\n"
            "cached = bool(spec.cached) and os.path.exists(spec.cached)\n"
            "print('prompt_toolkit' in sys.modules, 'rich' in sys.modules, cached)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL).stdout.split()
    return out[0] == "True", out[1] == "True", out[2] == "True"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each (at least 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each first")
    opts = parser.parse_args(argv)
    runs = max(opts.runs, 15)

    bp = bp_command() + ["-c", "print 1"]
    numpy = [sys.executable, "-c", "import numpy"]
    for _ in range(opts.warmup):
        run_once(bp)
        run_once(numpy)
    bp_times, numpy_times = [], []
    for _ in range(runs):                 # interleaved, so drift hits both alike
        bp_times.append(run_once(bp))
        numpy_times.append(run_once(numpy))

    bp_ms = statistics.median(bp_times) * 1000
    numpy_ms = statistics.median(numpy_times) * 1000
    ratio = bp_ms / numpy_ms
    print(f"python:  {sys.executable} ({sys.version.split()[0]})")
    print(f"runs:    {runs} each, interleaved, after {opts.warmup} warm-ups")
    print(f"bp -c \"print 1\":          median {bp_ms:7.1f} ms")
    print(f"python -c \"import numpy\": median {numpy_ms:7.1f} ms")
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"ratio:   {ratio:.2f}x (target <= {TARGET}x: {verdict})")
    pt, rich, cached = probe()
    print(f"bp -c imports prompt_toolkit: {pt}, rich: {rich}")
    if not cached:
        # An editable install under PYTHONDONTWRITEBYTECODE=1 compiles every dsl
        # module on every run; `pip install .` precompiles them.
        print("note: dsl has no cached bytecode here (PYTHONDONTWRITEBYTECODE="
              f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}), so bp's time includes "
              "compiling its sources; a regular `pip install .` precompiles them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
