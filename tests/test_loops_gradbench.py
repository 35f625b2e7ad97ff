"""GradBench's saddle and particle written with while loops (issue 15, acceptance 2's
bp side): benchmarks/gradbench/saddle.bp and particle.bp against the constants the
GradBench evals check (../shared/GRADBENCH.md §7, computed by upstream's tools).
Wiring them into benchmarks/gradbench/tool.py is separate work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dsl

GRADBENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "gradbench"


def session(name: str) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    bp.run_file(GRADBENCH / f"{name}.bp")
    return bp


@pytest.mark.parametrize("mode", ["rr", "ff"])
def test_saddle(mode):
    bp = session("saddle")
    got = np.asarray(bp.function(mode)(np.array([1.0, 1.0])))
    np.testing.assert_allclose(got, [8.246324826140356e-06] * 4, rtol=1e-8)


@pytest.mark.parametrize("mode", ["fr", "ff", "rr"])
def test_particle(mode):
    bp = session("particle")
    got = float(bp.function(mode)(0.0))
    assert got == pytest.approx(0.2071918746486116, rel=1e-12)
