"""A long fuzz run of tests/test_fuzz.py's generators, outside pytest.

    python -m tests.fuzz_long --minutes 5 [--seed 0] [--round 100] [--timeout 10]
    python -m tests.fuzz_long --printing --minutes 5 [--seed 0] [--round 100]

Runs the same hypothesis strategies as tests/test_fuzz.py (random text,
terminal sequences, statement-prefixed sequences, programs derived from
grammar/bp.lark, well-formed expressions in statement templates), plus
deeper variants (random text up to 200 characters instead of 60, up to 80
tokens instead of 30, expressions of up to 20 leaves instead of 8), round
after round with fresh seeds until the time is up.  Unlike the pytest
version it never stops at the first failure: every program runs in a fresh
session, and a finding is recorded with its input when

- anything but a `BpError` escapes `Interpreter.exec` (a crash),
- the error is an "internal error" (a stray Python exception, caught), or
  of a kind SPEC §8 does not list, or has no location, or does not render
  as `file:line:col: kind: message`,
- the session no longer works after the program,
- a program runs longer than --timeout seconds (a watchdog thread calls
  `Interpreter.interrupt()`, which is exercised on the way).

Findings are grouped by what went wrong (exception type and message
shape), keeping the shortest input of each group.  The report goes to
stdout; the exit status is 1 when there are findings.  Programs run in a
scratch directory (they may import, export and write graphs there).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

if __package__ in (None, ""):                       # run as a file: python tests/fuzz_long.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dsl  # noqa: E402
from tests import test_fuzz as fz  # noqa: E402


def strategies() -> dict[str, st.SearchStrategy[str]]:
    """The generators of tests/test_fuzz.py, each as a strategy for program text."""
    tokens = st.sampled_from(fz.TOKENS)
    return {
        "random text": st.text(alphabet=fz.ALPHABET, max_size=60),
        "token sequences": st.lists(tokens, max_size=30).map(" ".join),
        "statement-prefixed tokens": st.tuples(st.sampled_from(fz.STARTS), st.lists(tokens, max_size=20))
                                       .map(lambda p: " ".join([p[0], *p[1]])),
        "grammar programs": fz._grammar_strategy(),
        "expressions": st.tuples(st.sampled_from(fz.STATEMENTS), fz.EXPRESSIONS)
                         .map(lambda p: p[0].format(p[1])),
        "random text, 200 chars": st.text(alphabet=fz.ALPHABET, max_size=200),
        "token sequences, 80 tokens": st.lists(tokens, max_size=80).map(" ".join),
        "expressions, 20 leaves": st.tuples(
            st.sampled_from(fz.STATEMENTS),
            st.recursive(st.sampled_from(fz.ATOMS), fz._extend, max_leaves=20))
            .map(lambda p: p[0].format(p[1])),
    }


@dataclass
class Finding:
    what: str                 # the group: exception type and message with numbers blanked
    detail: str               # full message or traceback of the shortest input
    src: str
    strategy: str
    count: int = 1


@dataclass
class Stats:
    programs: Counter = field(default_factory=Counter)      # per strategy
    outcomes: Counter = field(default_factory=Counter)      # "ok" or an error kind
    findings: dict[str, Finding] = field(default_factory=dict)
    slowest: tuple[float, str] = (0.0, "")

    def find(self, what: str, detail: str, src: str, strategy: str) -> None:
        key = re.sub(r"\d+", "N", what)[:200]
        old = self.findings.get(key)
        if old is None:
            self.findings[key] = Finding(what, detail, src, strategy)
        else:
            old.count += 1
            if len(src) < len(old.src):
                old.src, old.detail, old.strategy = src, detail, strategy


def check(src: str, strategy: str, stats: Stats, timeout: float) -> None:
    """Run one program in a fresh session; record what it did and anything wrong."""
    bp = fz.session()
    watchdog = threading.Timer(timeout, bp.interrupt)
    watchdog.daemon = True
    start = time.monotonic()
    watchdog.start()
    try:
        with np.errstate(all="ignore"):
            bp.exec(src)
        stats.outcomes["ok"] += 1
    except dsl.BpError as err:
        stats.outcomes[err.kind] += 1
        if err.kind == "interrupted":
            stats.find(f"slow: still running after {timeout:g} s (interrupted)", str(err), src, strategy)
        elif err.kind == "internal error":
            stats.find(f"internal error: {err.message}", str(err), src, strategy)
        elif err.kind not in fz.KINDS:
            stats.find(f"unknown error kind {err.kind!r}", str(err), src, strategy)
        elif err.filename is None or err.line is None or err.column is None:
            stats.find(f"error without a location: {err.kind}", str(err), src, strategy)
        elif not str(err).startswith(f"{err.filename}:{err.line}:{err.column}: {err.kind}: "):
            stats.find(f"badly rendered {err.kind}", str(err), src, strategy)
    except KeyboardInterrupt:
        raise
    except BaseException as err:                                 # noqa: BLE001 — that is the point
        stats.outcomes["crash"] += 1
        stats.find(f"crash: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                   traceback.format_exc(), src, strategy)
    finally:
        watchdog.cancel()
    elapsed = time.monotonic() - start
    if elapsed > stats.slowest[0]:
        stats.slowest = (elapsed, src)
    try:
        ok = float(bp.eval("_keep_ + 1")) == 43.0
    except BaseException as err:                                 # noqa: BLE001
        ok = False
        src = f"{src}\n# then: {type(err).__name__}: {err}"
    if not ok:
        stats.find("the session stopped working after the program", "", src, strategy)


def run_round(name: str, strategy, n: int, round_seed: int, stats: Stats, deadline: float,
              timeout: float) -> None:
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @seed(round_seed)
    @given(strategy)
    def prop(src):
        if time.monotonic() >= deadline:
            return                                   # time is up: let the round drain
        stats.programs[name] += 1
        check(src, name, stats, timeout)
    prop()


def report(stats: Stats, elapsed: float, rounds: int, args) -> str:
    total = sum(stats.programs.values())
    lines = [f"fuzz_long: {total:,} programs in {elapsed / 60:.1f} min "
             f"({total / max(elapsed, 1e-9):.0f}/s), {rounds} rounds, seed {args.seed}, "
             f"{args.round} examples per strategy per round, timeout {args.timeout:g} s"]
    lines.append("programs per generator:")
    for name, n in stats.programs.most_common():
        lines.append(f"  {name:28} {n:>9,}")
    lines.append("outcomes:")
    for kind, n in stats.outcomes.most_common():
        lines.append(f"  {kind:28} {n:>9,}")
    lines.append(f"slowest program: {stats.slowest[0]:.2f} s: {stats.slowest[1][:120]!r}")
    if not stats.findings:
        lines.append("findings: none")
    else:
        lines.append(f"findings: {len(stats.findings)}")
        for f in sorted(stats.findings.values(), key=lambda f: -f.count):
            lines.append(f"- {f.what}  (x{f.count}, from {f.strategy})")
            lines.append(f"  input: {f.src!r}")
            for d in f.detail.rstrip().splitlines()[-12:]:
                lines.append(f"    {d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz_long", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    p.add_argument("--seed", type=int, default=0, help="first round's seed (rounds count up from it)")
    p.add_argument("--round", type=int, default=100, help="examples per generator per round")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a program counts as slow")
    p.add_argument("--only", action="append", default=None, help="run only this generator (repeatable)")
    p.add_argument("--printing", action="store_true",
                   help="run tests/test_print_fuzz.py's properties instead (printed derivatives "
                        "read back for every name and rank), --round examples a round")
    args = p.parse_args(argv)
    if args.printing:
        return run_printing(args)

    gens = strategies()
    if args.only:
        unknown = set(args.only) - set(gens)
        if unknown:
            p.error(f"unknown generator(s) {sorted(unknown)}; known: {sorted(gens)}")
        gens = {k: v for k, v in gens.items() if k in args.only}
    stats = Stats()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    rounds = 0
    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bp-fuzz-") as scratch:
        (Path(scratch) / "lib.bp").write_text("def libf(x) = x + 1\nlib_value = 3\n", encoding="utf-8")
        os.chdir(scratch)
        try:
            while time.monotonic() < deadline:
                for name, strategy in gens.items():
                    if time.monotonic() >= deadline:
                        break
                    run_round(name, strategy, args.round, args.seed + rounds, stats, deadline, args.timeout)
                rounds += 1
                done = sum(stats.programs.values())
                print(f"  round {rounds}: {done:,} programs, {len(stats.findings)} findings, "
                      f"{(time.monotonic() - start) / 60:.1f} min", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print("  stopped by Ctrl-C; reporting what ran", file=sys.stderr)
        finally:
            os.chdir(old_cwd)
    print(report(stats, time.monotonic() - start, rounds, args))
    return 1 if stats.findings else 0


def run_printing(args) -> int:
    """The printing properties, round after round with fresh seeds, until the time is up;
    the first failure of each property is reported with its input."""
    from tests import test_print_fuzz as pf
    properties = [pf.test_printed_derivatives_read_back_for_every_name_and_rank,
                  pf.test_printed_gradient_matches_finite_differences_at_every_rank,
                  pf.test_exported_derivatives_match_bp_for_every_name_and_rank,
                  pf.test_functions_of_records_and_tuples_print_and_read_back]
    deadline = time.monotonic() + args.minutes * 60
    failures: dict[str, str] = {}
    rounds = examples = 0
    while time.monotonic() < deadline and len(failures) < len(properties):
        for prop in properties:
            if prop.__name__ in failures or time.monotonic() >= deadline:
                continue
            inner = prop.hypothesis.inner_test
            run = seed(args.seed + rounds)(settings(max_examples=args.round, deadline=None,
                                                    derandomize=False, database=None)(
                given(program=pf.programs(), seed=st.integers(0, 2**16))(inner)))
            try:
                run()
            except Exception as err:                 # hypothesis re-raises the shrunk failure
                failures[prop.__name__] = f"{type(err).__name__}: {err}"
            examples += args.round
        rounds += 1
        print(f"  round {rounds}: {examples:,} examples, {len(failures)} failing properties",
              file=sys.stderr, flush=True)
    for name, text in failures.items():
        print(f"FAILED {name}\n{text}\n")
    print(f"printing fuzz: {rounds} rounds, {examples:,} examples, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
