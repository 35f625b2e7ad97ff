"""bp as a GradBench tool (benchmarks/gradbench), driven as the eval drives it.

A small in-repo eval: it starts `python -m benchmarks.gradbench` as a
subprocess, sends start / define / evaluate / analysis lines as GradBench
does (../shared/GRADBENCH.md), and checks each output against a reference
computed here with NumPy from the formulas (gradients by central finite
differences of the NumPy primal where no closed form is short), with the
eval's rule |x − y| / max(1, |x| + |y|) ≤ 1e-4.  Then the protocol's edges:
an unknown module, failing evaluates, output that would be nan, a line of
tens of megabytes, analysis messages, min_runs/min_seconds.
"""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dsl

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-4


# ── the eval's side ──────────────────────────────────────────────────────

def _no_constants(name):
    raise AssertionError(f"the tool sent {name}, which is not JSON")


class Eval:
    """Plays the eval (and the intermediary's checks) against one tool process."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.gradbench"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.next_id = 0

    def send(self, msg: dict) -> dict:
        msg = {"id": self.next_id, **msg}
        self.next_id += 1
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.endswith(b"\n"), f"no response line to {msg['kind']} (tool exited?)"
        response = json.loads(line, parse_constant=_no_constants)
        assert response["id"] == msg["id"], (response, msg["id"])
        if msg["kind"] in ("define", "evaluate"):
            assert isinstance(response["success"], bool)
            if response["success"]:
                assert "error" not in response
            for t in response.get("timings", []):
                assert isinstance(t["name"], str)
                assert isinstance(t["nanoseconds"], int) and t["nanoseconds"] >= 0
        return response

    def define(self, module: str) -> dict:
        return self.send({"kind": "define", "module": module})

    def evaluate(self, module: str, function: str, inp, **runs) -> dict:
        if isinstance(inp, dict):
            inp = {"min_runs": 1, "min_seconds": 0, **inp, **runs}
        response = self.send({"kind": "evaluate", "module": module, "function": function,
                              "input": inp})
        if response["success"]:
            assert "output" in response
            self.send({"kind": "analysis", "of": self.next_id - 1, "valid": True})
        return response

    def output(self, module: str, function: str, inp):
        response = self.evaluate(module, function, inp)
        assert response["success"], response.get("error")
        return response["output"]

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


@pytest.fixture(scope="module")
def tool():
    ev = Eval()
    start = ev.send({"kind": "start", "eval": "test"})
    assert start.get("tool") == "bp"
    yield ev
    assert ev.close() == 0


def mismatches(x, y, path="") -> list[str]:
    """comparison.py's walk: same types and keys, numbers within the tolerance."""
    if isinstance(x, dict):
        if not isinstance(y, dict) or set(x) != set(y):
            return [f"{path}: keys {sorted(x) if isinstance(x, dict) else x} vs "
                    f"{sorted(y) if isinstance(y, dict) else y}"]
        return [m for k in x for m in mismatches(x[k], y[k], f"{path}.{k}")]
    if isinstance(x, list):
        if not isinstance(y, list) or len(x) != len(y):
            return [f"{path}: a list of {len(x)} vs {y if not isinstance(y, list) else len(y)}"]
        return [m for i, (a, b) in enumerate(zip(x, y)) for m in mismatches(a, b, f"{path}[{i}]")]
    ok_types = isinstance(x, (int, float)) and not isinstance(x, bool) and \
        isinstance(y, (int, float)) and not isinstance(y, bool)
    if not ok_types:
        return [f"{path}: {x!r} vs {y!r}"]
    return [] if abs(x - y) / max(1.0, abs(x) + abs(y)) <= TOL else [f"{path}: {x} vs {y}"]


def check(output, expected):
    expected = json.loads(json.dumps(_plain(expected)))
    bad = mismatches(output, expected)
    assert not bad, "; ".join(bad[:10])


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (np.floating, np.integer)):
        return float(v)
    return v


def fd_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a NumPy function, one coordinate at a time."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g


# ── hello, lse, llsq ─────────────────────────────────────────────────────

def test_gradbench_hello_sequence(tool):
    assert tool.define("hello")["success"]
    x = 1.0
    for _ in range(4):
        y = tool.output("hello", "square", x)
        assert np.isclose(y, x * x, rtol=1e-5, atol=1e-8)
        x = tool.output("hello", "double", y)
        assert np.isclose(x, 2 * y, rtol=1e-5, atol=1e-8)
    assert x == 32768.0             # inputs 1, 1, 2, 4, 8, 64, 128, 16384


def test_gradbench_lse(tool):
    assert tool.define("lse")["success"]
    x = np.random.default_rng(1).random(257)
    a = x.max()
    e = np.exp(x - a)
    check(tool.output("lse", "primal", {"x": x.tolist()}), a + math.log(e.sum()))
    check(tool.output("lse", "gradient", {"x": x.tolist()}), e / e.sum())


def _llsq_ref(x: np.ndarray, n: int) -> float:
    t = -1 + 2 * np.arange(n) / (n - 1)
    powers = np.ones((n, len(x)))
    for j in range(1, len(x)):                     # cumulative products tᵢʲ
        powers[:, j] = powers[:, j - 1] * t
    return 0.5 * float(np.sum((np.sign(t) - powers @ x) ** 2))


@pytest.mark.parametrize("m, n", [(4, 16), (12, 33)])
def test_gradbench_llsq(tool, m, n):
    assert tool.define("llsq")["success"]
    x = np.random.default_rng(m).random(m)
    check(tool.output("llsq", "primal", {"x": x.tolist(), "n": n}), _llsq_ref(x, n))
    t = -1 + 2 * np.arange(n) / (n - 1)
    vander = t[:, None] ** np.arange(m)
    residual = np.sign(t) - vander @ x
    check(tool.output("llsq", "gradient", {"x": x.tolist(), "n": n}), -(vander.T @ residual))


# ── det ──────────────────────────────────────────────────────────────────

def _det_leibniz(a: np.ndarray) -> float:
    n = len(a)
    total = 0.0
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        total += (-1) ** inversions * math.prod(a[i, perm[i]] for i in range(n))
    return total


def _cofactors(a: np.ndarray) -> np.ndarray:
    n = len(a)
    if n == 1:
        return np.ones((1, 1))
    out = np.zeros_like(a)
    for i, j in np.ndindex(a.shape):
        minor = np.delete(np.delete(a, i, axis=0), j, axis=1)
        out[i, j] = (-1) ** (i + j) * _det_leibniz(minor)
    return out


@pytest.mark.parametrize("ell", [1, 2, 3, 5, 7])
def test_gradbench_det(tool, ell):
    assert tool.define("det")["success"]
    a = np.random.default_rng(ell).random((ell, ell))
    inp = {"A": a.reshape(-1).tolist(), "ell": ell}
    check(tool.output("det", "primal", inp), _det_leibniz(a))
    check(tool.output("det", "gradient", inp), _cofactors(a).reshape(-1))


# Lowerer.inline remembers a call of the same function on the same nodes, so building
# det_minors is O(ℓ·2^ℓ) like its graph, not O(ℓ!) (docs/gradbench.md).
def test_gradbench_det_building_is_as_cheap_as_its_graph():
    bp = dsl.run_file(ROOT / "benchmarks" / "gradbench" / "det.bp", max_nodes=50_000)
    a = np.random.default_rng(7).random((7, 7))
    assert abs(float(bp.function("primal")(a)) - np.linalg.det(a)) < 1e-12


# ── gmm ──────────────────────────────────────────────────────────────────

def _gmm_input(d, k, n, m, gamma, seed):
    rng = np.random.default_rng(seed)
    return {"d": d, "k": k, "n": n, "m": m, "gamma": gamma,
            "x": rng.standard_normal((n, d)), "alpha": rng.standard_normal(k),
            "mu": rng.random((k, d)), "q": rng.standard_normal((k, d)),
            "l": rng.standard_normal((k, d * (d - 1) // 2))}


def _gmm_ref(inp, alpha, mu, q, l) -> float:
    """GRADBENCH.md's objective, term by term, with Qₖ filled column by column."""
    d, k, n, m, gamma, x = (inp[f] for f in ("d", "k", "n", "m", "gamma", "x"))
    qs = []
    for c in range(k):
        mat = np.diag(np.exp(q[c]))
        entries = iter(l[c])
        for col in range(d):
            for row in range(col + 1, d):
                mat[row, col] = next(entries)
        qs.append(mat)

    def lse(v):
        top = max(v)
        return top + math.log(sum(math.exp(t - top) for t in v))
    total = -(n * d / 2) * math.log(2 * math.pi) - n * lse(alpha)
    for i in range(n):
        total += lse([alpha[c] + q[c].sum() - 0.5 * np.sum((qs[c] @ (x[i] - mu[c])) ** 2)
                      for c in range(k)])
    big_n = d + m + 1
    log_mvgamma = d * (d - 1) / 4 * math.log(math.pi) + sum(
        math.lgamma(big_n / 2 + (1 - j) / 2) for j in range(1, d + 1))
    total += k * (big_n * d * (math.log(gamma) - 0.5 * math.log(2)) - log_mvgamma)
    for c in range(k):
        total -= 0.5 * gamma ** 2 * (np.sum(np.exp(q[c]) ** 2) + np.sum(l[c] ** 2)) - m * q[c].sum()
    return total


@pytest.mark.parametrize("d, k, n, m, gamma", [(2, 3, 5, 0, 1.0), (4, 3, 6, 2, 1.5)])
def test_gradbench_gmm(tool, d, k, n, m, gamma):
    assert tool.define("gmm")["success"]
    inp = _gmm_input(d, k, n, m, gamma, seed=d)
    params = {f: inp[f] for f in ("alpha", "mu", "q", "l")}
    check(tool.output("gmm", "objective", _plain(inp)), _gmm_ref(inp, **params))
    expected = {}
    for f in params:
        def along(v, f=f):
            return _gmm_ref(inp, **{**params, f: v})
        expected[f] = fd_gradient(along, params[f])
    check(tool.output("gmm", "jacobian", _plain(inp)), expected)


# ── kmeans ───────────────────────────────────────────────────────────────

def test_gradbench_kmeans(tool):
    assert tool.define("kmeans")["success"]
    rng = np.random.default_rng(5)
    points = rng.random((60, 3))
    centroids = points[-6:].copy()
    inp = {"points": points.tolist(), "centroids": centroids.tolist()}
    dist = np.array([[np.sum((p - c) ** 2) for c in centroids] for p in points])
    check(tool.output("kmeans", "cost", inp), dist.min(axis=1).sum())
    nearest = dist.argmin(axis=1)
    means = np.array([points[nearest == j].mean(axis=0) for j in range(len(centroids))])
    check(tool.output("kmeans", "dir", inp), centroids - means)     # J ⊘ h = Cⱼ − P̄ⱼ


# ── ode ──────────────────────────────────────────────────────────────────

def _ode_ref(x: np.ndarray, s: int) -> np.ndarray:
    def g(y):
        return x * np.concatenate([[1.0], y[:-1]])
    y, h = np.zeros_like(x), 2 / s
    for _ in range(s):
        k1 = g(y)
        k2 = g(y + h / 2 * k1)
        k3 = g(y + h / 2 * k2)
        k4 = g(y + h * k3)
        y = y + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    return y


@pytest.mark.parametrize("n, s", [(6, 1), (5, 3), (12, 10)])
def test_gradbench_ode(tool, n, s):
    assert tool.define("ode")["success"]
    x = np.random.default_rng(n).random(n)
    inp = {"x": x.tolist(), "s": s}
    check(tool.output("ode", "primal", inp), _ode_ref(x, s))
    # The RK4 scheme's own gradient: finite differences of the primal (GRADBENCH.md).
    check(tool.output("ode", "gradient", inp), fd_gradient(lambda v: _ode_ref(v, s)[-1], x))


# ── saddle, particle ─────────────────────────────────────────────────────
# The evals check these against constants (GRADBENCH.md §6), which upstream's tools
# computed (`finite`, central differences without AD, reproduces them).  Each run takes
# seconds, so the tool is asked here for the modes tests/test_loops_gradbench.py does not
# run through the bp session (saddle fr and rf, particle rf); together the two files
# cover every mode of both.

SADDLE = [8.246324826140356e-06] * 4
PARTICLE = 0.2071918746486116


@pytest.mark.parametrize("mode", ["fr", "rf"])
def test_gradbench_saddle(tool, mode):
    assert tool.define("saddle")["success"]
    out = tool.output("saddle", mode, {"start": [1.0, 1.0]})
    check(out, SADDLE)
    # The eval's absolute 1e-4 would pass zeros too: the point itself, relatively.
    np.testing.assert_allclose(out, SADDLE, rtol=1e-6)


def test_gradbench_particle(tool):
    assert tool.define("particle")["success"]
    out = tool.output("particle", "rf", {"w": 0.0})
    check(out, PARTICLE)
    assert out == pytest.approx(PARTICLE, rel=1e-10)       # far inside the eval's 1e-4


def test_gradbench_saddle_and_particle_serve_all_four_modes(tool):
    assert tool.define("saddle")["success"] and tool.define("particle")["success"]
    for module, inp in (("saddle", {"start": [1.0, 1.0]}), ("particle", {"w": 0.0})):
        wrong = tool.evaluate(module, "fff", inp)
        assert wrong["success"] is False
        assert all(m in wrong["error"] for m in ("ff", "fr", "rf", "rr")), wrong["error"]


# ── the protocol's edges ─────────────────────────────────────────────────

def test_gradbench_unknown_module_is_undefined(tool):
    response = tool.define("no_such_module")
    assert response["success"] is False and "no_such_module" in response["error"]
    assert "saddle" in response["error"] and "particle" in response["error"]   # the list
    assert tool.send({"kind": "start"})["id"] == tool.next_id - 1     # still serving


def test_gradbench_failing_evaluates_answer_and_keep_serving(tool):
    tool.define("kmeans")
    undefined = tool.evaluate("no_such_module", "rr", {"w": 0.0})
    assert undefined["success"] is False and "no_such_module" in undefined["error"]
    unknown = tool.evaluate("kmeans", "objective", {"points": [[0.0]], "centroids": [[0.0]]})
    assert unknown["success"] is False and "objective" in unknown["error"]
    mismatch = tool.evaluate("kmeans", "cost", {"points": [[0.0, 1.0]], "centroids": [[0.0]]})
    assert mismatch["success"] is False and "shape error" in mismatch["error"]
    missing = tool.evaluate("kmeans", "cost", {"points": [[0.0]]})
    assert missing["success"] is False and "centroids" in missing["error"]
    assert tool.output("kmeans", "cost", {"points": [[0.0], [2.0]], "centroids": [[1.0]]}) == 2.0


def test_gradbench_nan_output_is_a_failure_not_invalid_json(tool):
    tool.define("kmeans")
    # The second centroid is nobody's nearest: J = h = 0 there, so J ⊘ h is nan.
    response = tool.evaluate("kmeans", "dir", {"points": [[0.0], [1.0]], "centroids": [[0.5], [9.0]]})
    assert response["success"] is False and "nan" in response["error"]


def test_gradbench_huge_line_is_read_whole(tool):
    tool.define("lse")
    x = np.random.default_rng(3).random(100_000)
    msg = {"kind": "evaluate", "module": "lse", "function": "gradient",
           "description": "padding " * 4_000_000,        # a 32 MB line in all
           "input": {"x": x.tolist(), "min_runs": 1, "min_seconds": 0}}
    response = tool.send(msg)
    assert response["success"], response.get("error")
    e = np.exp(x - x.max())
    check(response["output"], e / e.sum())


def test_gradbench_runs_and_timings(tool):
    tool.define("lse")
    response = tool.evaluate("lse", "primal", {"x": [0.0, 1.0]}, min_runs=3)
    runs = [t for t in response["timings"] if t["name"] == "evaluate"]
    assert len(runs) == 3
    response = tool.evaluate("lse", "primal", {"x": [0.0, 1.0]}, min_seconds=0.02)
    runs = [t["nanoseconds"] for t in response["timings"] if t["name"] == "evaluate"]
    assert sum(runs) >= 0.02e9 and len(runs) >= 1
    response = tool.evaluate("lse", "primal", {"x": [0.0, 1.0]}, min_runs=0)
    assert [t["name"] for t in response["timings"]].count("evaluate") == 1     # still one run


def test_gradbench_analysis_and_unknown_kinds_get_only_the_id(tool):
    assert tool.send({"kind": "analysis", "of": 0, "valid": False, "error": "x"}) == \
        {"id": tool.next_id - 1}
    assert tool.send({"kind": "end"}) == {"id": tool.next_id - 1}
