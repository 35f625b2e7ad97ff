"""The workloads of /work/shared/BENCHMARKS.md, for bp, the hand-written
NumPy floor and (when installed) autograd, PyTorch, JAX, SymPy, CasADi.

Each workload function takes the options and returns (markdown lines,
targets).  bp programs are bp source, called through the embedding API
(`Interpreter.function`), so the timed call is what a user's Python code
pays.  Every candidate's result is checked against the reference before
it is timed (timing.measure); a wrong or failing one gets no figure.

Imports NumPy: import this module only after the process is pinned.
"""
from __future__ import annotations

import gc
import importlib
import math
import os
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import dsl
from timing import (TOLERANCE, TOLERANCE_F32, Candidate, flatten, fmt_ratio, fmt_time, measure,
                    once, rel_error)

LAMBDA = 1e-4


@dataclass
class Target:
    workload: str
    what: str
    measured: str
    target: str
    met: bool | None          # None: could not be decided (a failing candidate)
    cpu: str = "–"            # the same figure from process CPU time (robust to a busy machine)
    cpu_met: bool | None = None


@dataclass
class Options:
    quick: bool
    rounds: int               # 15 (7 for workload 3)
    rounds3: int
    target_s: float           # 0.1 s (0.05 s for workload 3)
    target_s3: float
    builds: int               # fresh builds for "first result" medians
    log: Callable[[str], None]


# ── peers ────────────────────────────────────────────────────────────────

class Peers:
    """The optional peers, imported once (after pinning); None when not installed."""

    def __init__(self, log: Callable[[str], None]):
        self.versions: dict[str, str] = {}
        self.autograd = self._load("autograd", log)
        self.torch = self._load("torch", log)
        self.jax = self._load("jax", log)
        if self.jax is not None:
            self.jax.config.update("jax_enable_x64", True)
        self.sympy = self._load("sympy", log)
        self.casadi = self._load("casadi", log)

    def only(self, name: str) -> "Peers":
        """A view with one peer left (the others None)."""
        view = object.__new__(Peers)
        view.versions = self.versions
        for other in ("autograd", "torch", "jax", "sympy", "casadi"):
            setattr(view, other, getattr(self, other) if other == name else None)
        return view

    def each(self, log, build: Callable[["Peers"], Any], names=("autograd", "torch", "jax", "casadi")):
        """build(view) for each installed peer alone; a peer whose set-up fails is skipped
        with a printed line, never the run."""
        results = []
        for name in names:
            if getattr(self, name) is None:
                continue
            try:
                results.append(build(self.only(name)))
            except Exception as err:
                log(f"{name}: could not set up this workload ({type(err).__name__}: {err}); skipped")
        return results

    def _load(self, name: str, log) -> Any:
        try:
            mod = importlib.import_module(name)
        except Exception as err:                 # ImportError, or a broken install
            self.versions[name] = "not installed"
            log(f"{name}: not installed ({type(err).__name__}), skipped")
            return None
        self.versions[name] = getattr(mod, "__version__", "?")
        return mod


def _bp_plan_steps(bp: dsl.Interpreter) -> int | None:
    """Steps of the largest compiled plan of a session (a private detail, for the report)."""
    try:
        return max(len(entry[0]) for entry in bp._plans.values())
    except Exception:
        return None


def _steps_as_written(src: str, arg) -> int | None:
    """Plan steps of grad(f) built without rerolling long sums (dsl/reroll.py): the size of
    the derivative as written, which a build per step is counted against (a private
    setting, for the report; one extra build, outside the timings)."""
    saved = dsl.reroll.MIN_TERMS
    dsl.reroll.MIN_TERMS = math.inf
    try:
        bp = dsl.Interpreter()
        bp.exec(src)
        bp.function("grad(f)")(arg)
        return _bp_plan_steps(bp)
    finally:
        dsl.reroll.MIN_TERMS = saved


def _met(measured: float | None, limit: float | None) -> bool | None:
    if measured is None or limit is None or not math.isfinite(measured):
        return None
    return measured <= limit


def _yes(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "?"}[met]


def _find(cands: list[Candidate], peer: str, unit: str) -> Candidate | None:
    for c in cands:
        if c.peer == peer and c.unit == unit:
            return c
    return None


def _median(c: Candidate | None) -> float | None:
    return c.median if c is not None and c.ok and c.wall else None


def _cpu_ratio(a: Candidate | None, b: Candidate | None) -> float | None:
    if _median(a) is None or _median(b) is None or b.cpu_median <= 0:
        return None
    return a.cpu_median / b.cpu_median


def _cpu_time(c: Candidate | None) -> float | None:
    return c.cpu_median if _median(c) is not None else None


def _cpu_pair(ratio: float | None, limit: float) -> tuple[str, bool | None]:
    return fmt_ratio(ratio), _met(ratio, limit)


def _status_cell(c: Candidate) -> str:
    if c.ok:
        return f"{c.error:.1e}" if c.error is not None else "–"
    return c.status + (f" ({c.error:.1e})" if c.error is not None else "")


def _timing_table(cands: list[Candidate], floor_of: Callable[[Candidate], Candidate | None],
                  targets: dict[str, str] | None = None) -> list[str]:
    """One row per candidate: median, min, quartiles, CPU, ratio to its floor, check."""
    targets = targets or {}
    lines = ["| candidate | median | min | q1–q3 | CPU (median) | calls/sample | ratio to floor "
             "| target | rel. error |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for c in cands:
        if not c.ok or not c.wall:
            lines.append(f"| {c.label} | – | – | – | – | – | – | {targets.get(c.label, '')} "
                         f"| {_status_cell(c)} |")
            continue
        floor = floor_of(c)
        ratio = c.median / floor.median if floor is not None and _median(floor) else None
        q1, q3 = c.quartiles
        lines.append(f"| {c.label} | {fmt_time(c.median)} | {fmt_time(c.minimum)} "
                     f"| {fmt_time(q1)}–{fmt_time(q3)} | {fmt_time(c.cpu_median)} | {c.number} "
                     f"| {fmt_ratio(ratio)} | {targets.get(c.label, '')} | {_status_cell(c)} |")
    return lines


# ── 1. MLP gradient step ─────────────────────────────────────────────────

BP_MLP = """
def loss(W1, b1, W2, b2, W3, b3) {
    H1 = tanh(X @ W1 + b1)
    H2 = tanh(H1 @ W2 + b2)
    Z = H2 @ W3 + b3
    return mean(logsumexp(Z, axis=1) - sum(Y * Z, axis=1)) +
           λ * (sum(W1^2) + sum(W2^2) + sum(W3^2))
}
"""


def mlp_inputs(B: int, sizes: tuple[int, int, int, int]):
    rng = np.random.default_rng(0)
    n0, n1, n2, n3 = sizes
    X = rng.standard_normal((B, n0))
    labels = rng.integers(0, n3, size=B)
    Y = np.eye(n3)[labels]
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in))
        params.append(0.1 * rng.standard_normal(n_out))
    return X, Y, params


def mlp_numpy_backprop(X, Y, W1, b1, W2, b2, W3, b3, lam=LAMBDA):
    """Forward, then Algorithm 6.4 by hand: the practical floor for NumPy."""
    B = X.shape[0]
    H1 = np.tanh(X @ W1 + b1)
    H2 = np.tanh(H1 @ W2 + b2)
    Z = H2 @ W3 + b3
    m = Z.max(axis=1, keepdims=True)
    E = np.exp(Z - m)
    s = E.sum(axis=1, keepdims=True)
    L = (np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(Y * Z, axis=1))
         + lam * (np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3)))
    G = (E / s - Y) / B
    dW3 = H2.T @ G + 2 * lam * W3
    db3 = G.sum(axis=0)
    G = (G @ W3.T) * (1 - H2 * H2)
    dW2 = H1.T @ G + 2 * lam * W2
    db2 = G.sum(axis=0)
    G = (G @ W2.T) * (1 - H1 * H1)
    dW1 = X.T @ G + 2 * lam * W1
    db1 = G.sum(axis=0)
    return L, (dW1, db1, dW2, db2, dW3, db3)


def _mlp_peers(peers: Peers, X, Y, P, dtype, ref, tol) -> list[Candidate]:
    tag = np.dtype(dtype).name
    out: list[Candidate] = []
    lam = LAMBDA
    if peers.autograd is not None:
        import autograd
        import autograd.numpy as anp
        try:
            from autograd.scipy.special import logsumexp as a_lse
        except ImportError:                        # autograd.scipy needs SciPy
            def a_lse(Z, axis):
                m = anp.max(Z, axis=axis, keepdims=True)
                return anp.log(anp.sum(anp.exp(Z - m), axis=axis)) + anp.squeeze(m, axis)

        def a_loss(params):
            W1, b1, W2, b2, W3, b3 = params
            H1 = anp.tanh(anp.dot(X, W1) + b1)
            H2 = anp.tanh(anp.dot(H1, W2) + b2)
            Z = anp.dot(H2, W3) + b3
            return (anp.mean(a_lse(Z, axis=1) - anp.sum(Y * Z, axis=1))
                    + lam * (anp.sum(W1 ** 2) + anp.sum(W2 ** 2) + anp.sum(W3 ** 2)))
        a_vg = autograd.value_and_grad(a_loss)
        a_params = list(P)
        out.append(Candidate("autograd", tag, lambda: a_vg(a_params), ref, tolerance=tol))
    if peers.torch is not None:
        torch = peers.torch
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        Pt = [torch.tensor(p, requires_grad=True) for p in P]

        def t_step():
            W1, b1, W2, b2, W3, b3 = Pt
            H1 = torch.tanh(Xt @ W1 + b1)
            H2 = torch.tanh(H1 @ W2 + b2)
            Z = H2 @ W3 + b3
            L = (torch.mean(torch.logsumexp(Z, dim=1) - torch.sum(Yt * Z, dim=1))
                 + lam * (torch.sum(W1 ** 2) + torch.sum(W2 ** 2) + torch.sum(W3 ** 2)))
            return L, torch.autograd.grad(L, Pt)
        out.append(Candidate("torch eager", tag, t_step, ref, tolerance=tol,
                             convert=lambda r: (r[0].detach().numpy(), [g.numpy() for g in r[1]])))
    if peers.jax is not None:
        jax = peers.jax
        jnp = jax.numpy
        j_loss = _mlp_jax_loss(jax)
        Pj = [jnp.asarray(p) for p in P]
        Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
        jit_vg = jax.jit(jax.value_and_grad(j_loss))
        vg = jax.value_and_grad(j_loss)
        conv = lambda r: (np.asarray(r[0]), [np.asarray(g) for g in r[1]])
        out.append(Candidate("JAX jit", tag, lambda: jax.block_until_ready(jit_vg(Pj, Xj, Yj)),
                             ref, tolerance=tol, convert=conv))
        out.append(Candidate("JAX no-jit", tag, lambda: jax.block_until_ready(vg(Pj, Xj, Yj)),
                             ref, tolerance=tol, convert=conv))
    return out


def workload_mlp(opts: Options, peers: Peers):
    lines = ["## 1. MLP gradient step (loss and all six gradients)", ""]
    targets: list[Target] = []
    shapes = [("large", 128, (784, 256, 256, 10), 1.05), ("small", 16, (16, 32, 32, 4), 1.5)]
    for name, B, sizes, limit in shapes:
        opts.log(f"MLP {name}: B={B} {'-'.join(map(str, sizes))}")
        X, Y, P = mlp_inputs(B, sizes)
        ref = flatten(mlp_numpy_backprop(X, Y, *P))
        bp = dsl.Interpreter()
        bp["X"], bp["Y"], bp["λ"] = X, Y, LAMBDA
        bp.exec(BP_MLP)
        f = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2, W3, b3))")
        cands = [Candidate("numpy", "float64", lambda X=X, Y=Y, P=P: mlp_numpy_backprop(X, Y, *P), ref),
                 Candidate("bp", "float64", lambda P=P: f(*P), ref)]
        for more in peers.each(opts.log, lambda pv: _mlp_peers(pv, X, Y, P, np.float64, ref, TOLERANCE)):
            cands += more
        # float32: everything cast; λ stays a Python float.
        X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
        P32 = [p.astype(np.float32) for p in P]
        cands.append(Candidate("numpy", "float32",
                               lambda: mlp_numpy_backprop(X32, Y32, *P32), ref, tolerance=TOLERANCE_F32))
        for more in peers.each(opts.log, lambda pv: _mlp_peers(pv, X32, Y32, P32, np.float32, ref,
                                                              TOLERANCE_F32)):
            cands += more
        measure(cands, opts.rounds, opts.target_s, progress=opts.log)
        plan = _bp_plan_steps(bp)

        def floor_of(c, cands=cands):
            return _find(cands, "numpy", c.unit)
        bp_c = _find(cands, "bp", "float64")
        np_c = _find(cands, "numpy", "float64")
        ratio = _median(bp_c) / _median(np_c) if _median(bp_c) and _median(np_c) else None
        lines += [f"### {name}: B = {B}, layers {'-'.join(map(str, sizes))}, λ = {LAMBDA}", ""]
        lines += _timing_table(cands, floor_of,
                               {"bp float64": f"≤ {limit}× numpy: met? {_yes(_met(ratio, limit))}"})
        lines += ["| bp float32 | – | – | – | – | – | – | | not run: bp is float64-only "
                  "(`from_python` casts every input to float64) |", ""]
        lines += [f"bp's compiled plan: {plan} steps. float32 rows are checked against the "
                  f"float64 reference with tolerance {TOLERANCE_F32:g}.", ""]
        targets.append(Target("1. MLP", f"B={B} {'-'.join(map(str, sizes))} loss+grads, bp / numpy",
                              fmt_ratio(ratio), f"≤ {limit}×", _met(ratio, limit),
                              fmt_ratio(_cpu_ratio(bp_c, np_c)), _met(_cpu_ratio(bp_c, np_c), limit)))
    return lines, targets


# ── 2. Rosenbrock with scalar indexing in a loop ─────────────────────────

BP_ROSEN_LOOP = """
def rosenbrock_loop(x) {
    s = 0
    for i in range(size(x) - 1) {
        s = s + 100 * (x[i + 1] - x[i]^2)^2 + (1 - x[i])^2
    }
    return s
}
"""
TORCH_EAGER_ROSEN = 14.5e-3       # BENCHMARKS.md: torch eager 14–15 ms
JAX_FIRST_ROSEN = 1.7             # BENCHMARKS.md: JAX jit first call 1.7–2.5 s (the lower figure)
ROSEN_FIRST_19 = 0.040            # issue 19 target 4: first result ≤ 40 ms, whatever this run's JAX


def rosenbrock_loop(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def rosen_grad_numpy(x):
    t = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * t - 2 * (1 - x[:-1])
    g[1:] += 200 * t
    return g


def rosen_grad_floats(x: list[float]) -> list[float]:
    n = len(x)
    g = [0.0] * n
    for i in range(n - 1):
        xi = x[i]
        t = x[i + 1] - xi * xi
        g[i] += -400.0 * xi * t - 2.0 * (1.0 - xi)
        g[i + 1] += 200.0 * t
    return g


def _bp_rosen_first(x):
    bp = dsl.Interpreter()
    bp.exec(BP_ROSEN_LOOP)
    return bp.function("grad(rosenbrock_loop)")(x)


def _rosen_loop_peers(peers: Peers, x, ref, opts: Options, found: dict) -> list[Candidate]:
    out: list[Candidate] = []
    if peers.autograd is not None:
        import autograd
        a_g = autograd.grad(rosenbrock_loop)
        out.append(Candidate("autograd", "loop", lambda: a_g(x), ref))
    if peers.torch is not None:
        torch = peers.torch
        xt = torch.tensor(x, requires_grad=True)

        def t_grad():
            return torch.autograd.grad(rosenbrock_loop(xt), xt)[0]
        out.append(Candidate("torch eager", "loop", t_grad, ref, convert=lambda r: r.numpy()))
    if peers.jax is not None:
        jax = peers.jax
        xj = jax.numpy.asarray(x)

        def fresh_jit():
            def f(x):                         # a new function object: no cache can help
                return rosenbrock_loop(x)
            return jax.block_until_ready(jax.jit(jax.grad(f))(xj))
        try:
            found["jax_first"] = once(fresh_jit, opts.builds)[0]
        except Exception as err:
            opts.log(f"JAX first call failed: {err}")
        j_jit = jax.jit(jax.grad(rosenbrock_loop))
        j_nojit = jax.grad(rosenbrock_loop)
        out.append(Candidate("JAX jit", "loop", lambda: jax.block_until_ready(j_jit(xj)), ref,
                             convert=np.asarray))
        out.append(Candidate("JAX no-jit", "loop", lambda: jax.block_until_ready(j_nojit(xj)), ref,
                             convert=np.asarray))
    return out


def workload_rosen_loop(opts: Options, peers: Peers):
    n = 100
    opts.log(f"Rosenbrock scalar loop, n={n}")
    x = np.linspace(-1.2, 1.3, n)
    ref = [rosen_grad_numpy(x)]
    lines = [f"## 2. Rosenbrock n = {n}, scalar indexing in a loop: gradient", ""]
    targets: list[Target] = []

    # time to first result, fresh sessions, before anything else is built
    first, result, first_cpu = once(lambda: _bp_rosen_first(x), opts.builds)
    first_err = rel_error(flatten(result), ref)
    first_ok = first_err <= TOLERANCE

    bp = dsl.Interpreter()
    bp.exec(BP_ROSEN_LOOP)
    g = bp.function("grad(rosenbrock_loop)")
    xl = x.tolist()
    cands = [Candidate("numpy", "vectorized", lambda: rosen_grad_numpy(x), ref),
             Candidate("Python floats", "loop", lambda: rosen_grad_floats(xl), ref, convert=np.asarray),
             Candidate("bp", "loop in a function", lambda: g(x), ref)]
    found: dict = {}
    for more in peers.each(opts.log, lambda pv: _rosen_loop_peers(pv, x, ref, opts, found)):
        cands += more
    jax_first = found.get("jax_first")
    measure(cands, opts.rounds, opts.target_s, progress=opts.log)

    def floor_of(c):
        return cands[0]
    torch_c = _find(cands, "torch eager", "loop")
    torch_t = _median(torch_c)
    grad_limit = 0.1 * (torch_t if torch_t else TORCH_EAGER_ROSEN)
    grad_source = "measured torch eager" if torch_t else "torch eager 14.5 ms in BENCHMARKS.md"
    first_limit = 0.05 * (jax_first if jax_first else JAX_FIRST_ROSEN)
    first_source = "measured JAX jit first call" if jax_first else "JAX jit 1.7 s in BENCHMARKS.md"
    bp_c = _find(cands, "bp", "loop in a function")
    bp_t = _median(bp_c)
    lines += _timing_table(cands, floor_of, {"bp loop in a function": f"≤ {fmt_time(grad_limit)}: "
                                             f"met? {_yes(_met(bp_t, grad_limit))}"})
    lines += ["", "| | bp | JAX jit |", "| --- | ---: | ---: |",
              f"| time to first result (build + first evaluation), median of {opts.builds} "
              f"fresh builds | {fmt_time(first) if first_ok else 'WRONG'} | "
              f"{fmt_time(jax_first) if jax_first else 'not run (BENCHMARKS.md: 1.7–2.5 s)'} |",
              f"| time per scalar op (gradient / 1089) | {fmt_time(bp_t / 1089 if bp_t else None)} "
              f"| {fmt_time(_median(_find(cands, 'JAX jit', 'loop')) / 1089) if _median(_find(cands, 'JAX jit', 'loop')) else '–'} |",
              "", f"bp's compiled plan of the gradient: {_bp_plan_steps(bp)} steps.", ""]
    targets.append(Target("2. Rosenbrock loop", "gradient, bp", fmt_time(bp_t),
                          f"≤ 0.1 × torch eager = {fmt_time(grad_limit)} ({grad_source})",
                          _met(bp_t, grad_limit), fmt_time(_cpu_time(bp_c)),
                          _met(_cpu_time(bp_c), grad_limit)))
    targets.append(Target("2. Rosenbrock loop", "time to first result, bp (issue 6: against this run's JAX)",
                          fmt_time(first) if first_ok else "WRONG",
                          f"≤ 5% of JAX jit first call = {fmt_time(first_limit)} ({first_source})",
                          _met(first, first_limit) if first_ok else False, fmt_time(first_cpu),
                          _met(first_cpu, first_limit) if first_ok else False))
    targets.append(Target("2. Rosenbrock loop", "time to first result, bp (issue 19: fixed)",
                          fmt_time(first) if first_ok else "WRONG",
                          f"≤ {fmt_time(ROSEN_FIRST_19)} (5% of JAX's first call on a quiet machine)",
                          _met(first, ROSEN_FIRST_19) if first_ok else False, fmt_time(first_cpu),
                          _met(first_cpu, ROSEN_FIRST_19) if first_ok else False))
    return lines, targets


# ── 8. the 10⁴-term Rosenbrock as a loop node (issue 15) ────────────────

LOOP10K_FIRST = 0.2               # issue 15 acceptance 3: first result ≤ 0.2 s
LOOP10K_CASADI = 3.0              # … and the gradient within 3× CasADi's


def _bp_rosen_value_first(x):
    bp = dsl.Interpreter()
    bp.exec(BP_ROSEN_LOOP)
    return bp.function("rosenbrock_loop")(x)


def _casadi_rosen_grad(ca, n: int):
    """CasADi's natural form: SX scalars, the same Python loop (unrolled into an SX
    expression graph), `gradient`, a `Function` run by CasADi's virtual machine."""
    xs = ca.SX.sym("x", n)
    g = ca.Function("g", [xs], [ca.gradient(rosenbrock_loop(ca.vertsplit(xs)), xs)])
    return g


def workload_rosen_loop10k(opts: Options, peers: Peers):
    """BP_ROSEN_LOOP at n = 10⁴: its `for` loop over a runtime count is one loop node
    (dsl/lower_loops.py) where workload 2's n = 100 unrolls, so building no longer costs
    the length; the gradient is the saving loop and the adjoint loop."""
    n = 10_000
    opts.log(f"Rosenbrock loop node, n={n}")
    x = np.linspace(-1.2, 1.3, n)
    ref = [rosen_grad_numpy(x)]
    lines = [f"## 8. Rosenbrock n = {n} written as a loop (one loop node): first result, gradient", ""]
    targets: list[Target] = []
    value_ref = [np.asarray(rosenbrock_loop(x))]
    v_first, v_result, v_cpu = once(lambda: _bp_rosen_value_first(x), opts.builds)
    v_ok = rel_error(flatten(v_result), value_ref) <= TOLERANCE
    g_first, g_result, g_cpu = once(lambda: _bp_rosen_first(x), opts.builds)
    g_ok = rel_error(flatten(g_result), ref) <= TOLERANCE

    bp = dsl.Interpreter()
    bp.exec(BP_ROSEN_LOOP)
    g = bp.function("grad(rosenbrock_loop)")
    cands = [Candidate("numpy", "vectorized", lambda: rosen_grad_numpy(x), ref),
             Candidate("bp", "loop node", lambda: g(x), ref)]
    ca_first = None
    if peers.casadi is not None:
        ca = peers.casadi
        def ca_build():
            f = _casadi_rosen_grad(ca, n)
            return f, f(x)
        try:                           # one fresh build: it takes seconds
            ca_first, (cg, first_out), _ = once(ca_build, 1)
            if rel_error([np.asarray(first_out.full()).ravel()], ref) > TOLERANCE:
                ca_first = None
            cands.append(Candidate("CasADi SX", "gradient", lambda: cg(x), ref,
                                   convert=lambda r: np.asarray(r.full()).ravel()))
        except Exception as err:
            opts.log(f"casadi: could not set up this workload ({type(err).__name__}: {err}); skipped")
    measure(cands, opts.rounds, opts.target_s, progress=opts.log)

    bp_c, ca_c = _find(cands, "bp", "loop node"), _find(cands, "CasADi SX", "gradient")
    ratio = _median(bp_c) / _median(ca_c) if _median(bp_c) and _median(ca_c) else None
    cpu_ratio = _cpu_ratio(bp_c, ca_c)
    no_casadi = ("not measured: CasADi is not installed (`pip install casadi`, in the bench extra)"
                 if peers.casadi is None else "not measured: CasADi's set-up failed")
    lines += _timing_table(cands, lambda c: cands[0],
                           {"bp loop node": f"≤ {LOOP10K_CASADI:g}× CasADi SX: {fmt_ratio(ratio)}, "
                                            f"met? {_yes(_met(ratio, LOOP10K_CASADI))}"
                                            if ca_c is not None else no_casadi})
    lines += ["", "| time to first result (build + first evaluation) | bp | CasADi SX |",
              "| --- | ---: | ---: |",
              f"| value, median of {opts.builds} fresh sessions | "
              f"{fmt_time(v_first) if v_ok else 'WRONG'} | – |",
              f"| gradient, median of {opts.builds} fresh sessions (CasADi: one build: SX graph, "
              f"`gradient`, `Function`, first call) | {fmt_time(g_first) if g_ok else 'WRONG'} | "
              f"{fmt_time(ca_first) if ca_first is not None else '–'} |",
              "", f"bp's compiled plan of the gradient: {_bp_plan_steps(bp)} steps (the loops "
              f"count as one step each).", ""]
    for what, t, cpu, ok in (("value", v_first, v_cpu, v_ok), ("gradient", g_first, g_cpu, g_ok)):
        targets.append(Target("8. Rosenbrock loop 10⁴", f"time to first result ({what}), bp",
                              fmt_time(t) if ok else "WRONG", f"≤ {fmt_time(LOOP10K_FIRST)}",
                              _met(t, LOOP10K_FIRST) if ok else False, fmt_time(cpu),
                              _met(cpu, LOOP10K_FIRST) if ok else False))
    targets.append(Target("8. Rosenbrock loop 10⁴", "gradient evaluation, bp / CasADi SX",
                          fmt_ratio(ratio) if ca_c is not None else no_casadi,
                          f"≤ {LOOP10K_CASADI:g}×", _met(ratio, LOOP10K_CASADI),
                          fmt_ratio(cpu_ratio), _met(cpu_ratio, LOOP10K_CASADI)))
    return lines, targets


# ── 3. higher derivatives by nested grad ─────────────────────────────────

FUNCTIONS3 = {
    "tanh": dict(bp="tanh", sympy=lambda sp, x: sp.tanh(x),
                 jax=lambda jnp: jnp.tanh, anp=lambda anp: anp.tanh, torch=lambda t: t.tanh),
    "sin(x)·exp(−x²/2)": dict(
        bp="x -> sin(x)*exp(-x^2/2)", sympy=lambda sp, x: sp.sin(x) * sp.exp(-x ** 2 / 2),
        jax=lambda jnp: (lambda x: jnp.sin(x) * jnp.exp(-x ** 2 / 2)),
        anp=lambda anp: (lambda x: anp.sin(x) * anp.exp(-x ** 2 / 2)),
        torch=lambda t: (lambda x: t.sin(x) * t.exp(-x ** 2 / 2))),
}
EXACT = {("tanh", 8): 322.8593181, ("sin(x)·exp(−x²/2)", 8): 699.4218504}


def _bp_nodes(bp: dsl.Interpreter, src: str) -> int:
    return sum(1 for n in bp.graph(src).nodes if n.op not in ("input", "const"))


def _bp_diff_first(src: str, k: int, x0):
    bp = dsl.Interpreter()
    return bp.function(f"diff({src}, {k})")(x0)


def _jaxpr_size(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (list, tuple)) else (p,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    n += _jaxpr_size(inner)
    return n


def _exact_derivatives(peers: Peers, name: str, kmax: int) -> dict[int, float] | None:
    sp = peers.sympy
    if sp is None:
        return None
    x = sp.Symbol("x")
    f = FUNCTIONS3[name]["sympy"](sp, x)
    return {k: float(sp.diff(f, x, k).subs(x, sp.Rational(1, 2)).evalf(30)) for k in range(1, kmax + 1)}


def workload_higher(opts: Options, peers: Peers):
    lines = ["## 3. k-th derivative by nested reverse-mode differentiation, x0 = 0.5", ""]
    targets: list[Target] = []
    x0 = np.asarray(0.5)
    kmax = 8
    for name, spec in FUNCTIONS3.items():
        opts.log(f"k-th derivative of {name}")
        exact = _exact_derivatives(peers, name, kmax)
        size_rows, time_groups = [], []
        bp = dsl.Interpreter()
        for k in range(1, kmax + 1):
            reference = exact[k] if exact else None
            if reference is None and (name, k) in EXACT:
                reference = EXACT[(name, k)]
            ref = [np.asarray(reference)] if reference is not None else None
            # bp: size, first result (fresh sessions), per evaluation
            nodes = _bp_nodes(bp, f"diff({spec['bp']}, {k})")
            first, value, first_cpu = once(lambda: _bp_diff_first(spec["bp"], k, x0), opts.builds)
            first_ok = ref is None or rel_error(flatten(value), ref) <= TOLERANCE
            d = bp.function(f"diff({spec['bp']}, {k})")
            cands = [Candidate("bp", f"k={k}", lambda d=d: d(x0), ref)]
            row = {"k": k, "bp nodes": nodes, "bp first": fmt_time(first) if first_ok else "WRONG",
                   "first_s": first if first_ok else None, "first_cpu": first_cpu}
            for extra in peers.each(opts.log, lambda pv: _higher_peers(pv, spec, k, cands, ref, opts),
                                    names=("sympy", "jax", "autograd", "torch")):
                row.update(extra)
            measure(cands, opts.rounds3, opts.target_s3, progress=opts.log)
            size_rows.append(row)
            time_groups.append(cands)
            if name == "tanh" and k == kmax:
                bp_c = cands[0]
                targets.append(Target("3. tanh k=8", "first result, bp", row["bp first"],
                                      "≤ 50 ms", _met(row["first_s"], 0.050), fmt_time(first_cpu),
                                      _met(first_cpu, 0.050)))
                targets.append(Target("3. tanh k=8", "per evaluation, bp", fmt_time(_median(bp_c)),
                                      "≤ 10 µs", _met(_median(bp_c), 10e-6), fmt_time(_cpu_time(bp_c)),
                                      _met(_cpu_time(bp_c), 10e-6)))
        # tables: sizes and first results; per evaluation
        lines += [f"### {name}", "",
                  "| k | bp nodes | SymPy count_ops (raw / cse) | JAX jaxpr eqns (grad / jet) "
                  "| bp first result | SymPy diff cold / fresh | SymPy cse | JAX jit first call (grad / jet) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in size_rows:
            lines.append(f"| {r['k']} | {r['bp nodes']} | {r.get('sympy ops', '–')} "
                         f"| {r.get('jax eqns', '–')} | {r['bp first']} | {r.get('sympy diff', '–')} "
                         f"| {r.get('sympy cse', '–')} | {r.get('jax first', '–')} |")
        peers_seen = []
        for cands in time_groups:
            for c in cands:
                if c.peer not in peers_seen:
                    peers_seen.append(c.peer)
        lines += ["", f"Per evaluation (median; {opts.rounds3} interleaved rounds; every value "
                  "checked against SymPy's exact derivative):", "",
                  "| k | " + " | ".join(peers_seen) + " |",
                  "| ---: | " + " | ".join("---:" for _ in peers_seen) + " |"]
        for k, cands in enumerate(time_groups, start=1):
            cells = []
            for p in peers_seen:
                c = next((c for c in cands if c.peer == p), None)
                cells.append("–" if c is None else fmt_time(c.median) if c.ok and c.wall else c.status)
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines, targets


def _higher_peers(peers: Peers, spec, k, cands, ref, opts) -> dict:
    """The peers' candidates for the k-th derivative (appended to cands); table cells."""
    if peers.sympy is not None:
        return _sympy_rows(peers.sympy, spec, k, cands, ref)
    if peers.jax is not None:
        return _jax_rows(peers.jax, spec, k, cands, ref, opts)
    if peers.autograd is not None:
        import autograd
        import autograd.numpy as anp
        g = spec["anp"](anp)
        for _ in range(k):
            g = autograd.grad(g)
        cands.append(Candidate("autograd", f"k={k}", lambda: g(0.5), ref))
    if peers.torch is not None:
        torch = peers.torch
        tf = spec["torch"](torch)

        def t_kth():
            x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
            y = tf(x)
            for j in range(k):
                y, = torch.autograd.grad(y, x, create_graph=j < k - 1)
            return y
        cands.append(Candidate("torch", f"k={k}", t_kth, ref, convert=lambda r: r.detach().numpy()))
    return {}


def _sympy_rows(sp, spec, k, cands, ref) -> dict:
    """SymPy: sizes, diff and cse times (cold and in a warm session), lambdify candidates."""
    from sympy.core.cache import clear_cache
    x = sp.Symbol("x")
    f = spec["sympy"](sp, x)
    clear_cache()
    t0 = time.perf_counter()
    d = sp.diff(f, x, k)
    cold = time.perf_counter() - t0
    fresh_sym = sp.Symbol(f"x_fresh_{k}_{time.perf_counter_ns()}")
    f2 = spec["sympy"](sp, fresh_sym)
    t0 = time.perf_counter()
    sp.diff(f2, fresh_sym, k)
    fresh = time.perf_counter() - t0
    t0 = time.perf_counter()
    replacements, reduced = sp.cse(d)
    cse_t = time.perf_counter() - t0
    after = sum(sp.count_ops(e) for _, e in replacements) + sp.count_ops(reduced[0])
    plain = sp.lambdify(x, d, "math")
    with_cse = sp.lambdify(x, d, "math", cse=True)
    cands.append(Candidate("SymPy lambdify", f"k={k}", lambda: plain(0.5), ref))
    cands.append(Candidate("SymPy lambdify cse", f"k={k}", lambda: with_cse(0.5), ref))
    return {"sympy ops": f"{sp.count_ops(d)} / {after}",
            "sympy diff": f"{fmt_time(cold)} / {fmt_time(fresh)}", "sympy cse": fmt_time(cse_t)}


def _jax_rows(jax, spec, k, cands, ref, opts) -> dict:
    jnp = jax.numpy
    row: dict = {}
    try:
        from jax.experimental import jet
    except Exception:
        jet = None

    def nested():
        g = spec["jax"](jnp)
        for _ in range(k):
            g = jax.grad(g)
        return g

    def jetted():
        f = spec["jax"](jnp)

        def g(x):
            series = (jnp.ones_like(x),) + tuple(jnp.zeros_like(x) for _ in range(k - 1))
            return jet.jet(f, (x,), (series,))[1][k - 1]
        return g
    x0 = jnp.asarray(0.5)
    try:
        sizes = [str(_jaxpr_size(jax.make_jaxpr(nested())(0.5).jaxpr))]
        firsts = [fmt_time(once(lambda: jax.block_until_ready(jax.jit(nested())(x0)), opts.builds)[0])]
        if jet is not None:
            sizes.append(str(_jaxpr_size(jax.make_jaxpr(jetted())(0.5).jaxpr)))
            firsts.append(fmt_time(once(lambda: jax.block_until_ready(jax.jit(jetted())(x0)),
                                        opts.builds)[0]))
        row["jax eqns"] = " / ".join(sizes)
        row["jax first"] = " / ".join(firsts)
    except Exception as err:
        opts.log(f"JAX sizes/first call failed: {err}")
    g_jit, g_nojit = jax.jit(nested()), nested()
    cands.append(Candidate("JAX jit", f"k={k}", lambda: jax.block_until_ready(g_jit(x0)), ref,
                           convert=np.asarray))
    cands.append(Candidate("JAX no-jit", f"k={k}", lambda: jax.block_until_ready(g_nojit(x0)), ref,
                           convert=np.asarray))
    if jet is not None:
        j_jit = jax.jit(jetted())
        cands.append(Candidate("JAX jet jit", f"k={k}", lambda: jax.block_until_ready(j_jit(x0)), ref,
                               convert=np.asarray))
    return row


# ── 4. Hessian, HVP and gradient of the vectorized Rosenbrock ────────────

BP_ROSEN = "def rosen(x) = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)"


def rosen_hessian_numpy(x):
    n = x.size
    d = np.zeros(n)
    d[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    off = -400 * x[:-1]
    H = np.zeros((n, n))
    H.flat[:: n + 1] = d
    H.flat[1:: n + 1] = off
    H.flat[n:: n + 1] = off
    return H


def rosen_hvp_numpy(x, v):
    d = np.zeros_like(x)
    d[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    off = -400 * x[:-1]
    hv = d * v
    hv[:-1] += off * v[1:]
    hv[1:] += off * v[:-1]
    return hv


def _rosen_generic(x, sum_):
    return sum_(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _hessian_peers(peers: Peers, x, v, refs, opts) -> tuple[list[Candidate], dict[str, str]]:
    out: list[Candidate] = []
    setup: dict[str, str] = {}
    if peers.jax is not None:
        jax = peers.jax
        jnp = jax.numpy
        f = lambda x: _rosen_generic(x, jnp.sum)
        xj, vj = jnp.asarray(x), jnp.asarray(v)
        makers = {"gradient": lambda: jax.jit(jax.grad(f)),
                  "Hessian": lambda: jax.jit(jax.hessian(f)),
                  "HVP": lambda: jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])}
        try:
            firsts = [fmt_time(once(lambda: jax.block_until_ready(makers["gradient"]()(xj)), opts.builds)[0]),
                      fmt_time(once(lambda: jax.block_until_ready(makers["Hessian"]()(xj)), opts.builds)[0]),
                      fmt_time(once(lambda: jax.block_until_ready(makers["HVP"]()(xj, vj)), opts.builds)[0])]
            setup["JAX jit"] = "first calls (trace + compile + run): " + " / ".join(firsts)
        except Exception as err:
            setup["JAX jit"] = f"first calls failed: {err}"
        jg, jh, jv = makers["gradient"](), makers["Hessian"](), makers["HVP"]()
        out += [Candidate("JAX jit", "gradient", lambda: jax.block_until_ready(jg(xj)), refs["gradient"],
                          convert=np.asarray),
                Candidate("JAX jit", "Hessian", lambda: jax.block_until_ready(jh(xj)), refs["Hessian"],
                          convert=np.asarray),
                Candidate("JAX jit", "HVP", lambda: jax.block_until_ready(jv(xj, vj)), refs["HVP"],
                          convert=np.asarray)]
    if peers.torch is not None:
        torch = peers.torch
        tfn = torch.func
        f = lambda x: _rosen_generic(x, torch.sum)
        xt, vt = torch.from_numpy(x), torch.from_numpy(v)
        tg, th = tfn.grad(f), tfn.hessian(f)
        conv = lambda r: r.detach().numpy()
        out += [Candidate("torch.func", "gradient", lambda: tg(xt), refs["gradient"], convert=conv),
                Candidate("torch.func", "Hessian", lambda: th(xt), refs["Hessian"], convert=conv),
                Candidate("torch.func", "HVP", lambda: tfn.jvp(tg, (xt,), (vt,))[1], refs["HVP"],
                          convert=conv)]
    if peers.autograd is not None:
        import autograd
        import autograd.numpy as anp
        f = lambda x: _rosen_generic(x, anp.sum)
        ag, ah, av = autograd.grad(f), autograd.hessian(f), autograd.hessian_tensor_product(f)
        out += [Candidate("autograd", "gradient", lambda: ag(x), refs["gradient"]),
                Candidate("autograd", "Hessian", lambda: ah(x), refs["Hessian"]),
                Candidate("autograd", "HVP", lambda: av(x, v), refs["HVP"])]
    if peers.casadi is not None:
        ca = peers.casadi
        n = x.size
        t0 = time.perf_counter()
        xs, vs = ca.SX.sym("x", n), ca.SX.sym("v", n)
        fs = _rosen_generic(xs, ca.sum1)
        H, g = ca.hessian(fs, xs)
        cg = ca.Function("g", [xs], [g])
        ch = ca.Function("H", [xs], [H])
        cv = ca.Function("hvp", [xs, vs], [ca.jtimes(g, xs, vs)])
        setup["CasADi SX"] = f"symbolic set-up: {fmt_time(time.perf_counter() - t0)}"
        out += [Candidate("CasADi SX", "gradient", lambda: cg(x), refs["gradient"],
                          convert=lambda r: np.asarray(r.full()).ravel()),
                Candidate("CasADi SX", "Hessian", lambda: ch(x).full(), refs["Hessian"]),
                Candidate("CasADi SX", "HVP", lambda: cv(x, v), refs["HVP"],
                          convert=lambda r: np.asarray(r.full()).ravel())]
    return out, setup


def workload_hessian(opts: Options, peers: Peers):
    lines = ["## 4. Vectorized Rosenbrock: gradient, dense Hessian, Hessian-vector product", ""]
    targets: list[Target] = []
    units = ("gradient", "Hessian", "HVP")
    for n in (10, 100, 300):
        opts.log(f"Rosenbrock vectorized, n={n}")
        x = np.linspace(-1.2, 1.3, n)
        v = np.cos(np.arange(n, dtype=np.float64))
        refs = {"gradient": [rosen_grad_numpy(x)], "Hessian": [rosen_hessian_numpy(x)],
                "HVP": [rosen_hvp_numpy(x, v)]}
        bp = dsl.Interpreter()
        bp.exec(BP_ROSEN)
        bg, bh, bv = (bp.function("grad(rosen)"), bp.function("hessian(rosen)"),
                      bp.function("hvp(rosen)"))
        cands = [Candidate("numpy", "gradient", lambda x=x: rosen_grad_numpy(x), refs["gradient"]),
                 Candidate("numpy", "Hessian", lambda x=x: rosen_hessian_numpy(x), refs["Hessian"]),
                 Candidate("numpy", "HVP", lambda x=x, v=v: rosen_hvp_numpy(x, v), refs["HVP"]),
                 Candidate("bp", "gradient", lambda x=x: bg(x), refs["gradient"]),
                 Candidate("bp", "Hessian", lambda x=x: bh(x), refs["Hessian"]),
                 Candidate("bp", "HVP", lambda x=x, v=v: bv(x, v), refs["HVP"])]
        setup: dict[str, str] = {}
        for more, peer_setup in peers.each(opts.log, lambda pv: _hessian_peers(pv, x, v, refs, opts)):
            cands += more
            setup.update(peer_setup)
        measure(cands, opts.rounds, opts.target_s, progress=opts.log)
        plans = {u: None for u in units}
        try:
            for entry in bp._plans.values():
                kind = entry[3].kind               # (plan, template, deps, fn, function arguments)
                plans[{"grad": "gradient", "hessian": "Hessian", "hvp": "HVP"}[kind]] = len(entry[0])
        except Exception:
            pass
        lines += [f"### n = {n}", "",
                  "| peer | gradient | Hessian | HVP | Hessian / gradient | HVP / gradient "
                  "| Hessian / numpy Hessian | rel. error (max) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        peers_seen = list(dict.fromkeys(c.peer for c in cands))
        np_h = _median(_find(cands, "numpy", "Hessian"))
        for p in peers_seen:
            m = {u: _median(_find(cands, p, u)) for u in units}
            cs = [_find(cands, p, u) for u in units]
            bad = [c for c in cs if c is not None and not c.ok]
            errs = [c.error for c in cs if c is not None and c.error is not None]
            err_cell = "; ".join(f"{c.unit}: {c.status}" for c in bad) or (f"{max(errs):.1e}" if errs else "–")
            r = lambda a, b: a / b if a and b else None
            lines.append(f"| {p} | {fmt_time(m['gradient'])} | {fmt_time(m['Hessian'])} "
                         f"| {fmt_time(m['HVP'])} | {fmt_ratio(r(m['Hessian'], m['gradient']))} "
                         f"| {fmt_ratio(r(m['HVP'], m['gradient']))} | {fmt_ratio(r(m['Hessian'], np_h))} "
                         f"| {err_cell} |")
        lines += [""]
        lines += [f"- {k}: {s}" for k, s in setup.items()]
        lines += [f"- bp plan steps: gradient {plans['gradient']}, Hessian {plans['Hessian']}, "
                  f"HVP {plans['HVP']}", ""]
        if n == 100:
            bg_t, bh_t, bv_t = (_median(_find(cands, "bp", u)) for u in units)
            hr = bh_t / np_h if bh_t and np_h else None
            vr = bv_t / bg_t if bv_t and bg_t else None
            targets.append(Target("4. Rosenbrock n=100", "dense Hessian, bp / numpy Hessian",
                                  fmt_ratio(hr), "≤ 3×", _met(hr, 3.0),
                                  *_cpu_pair(_cpu_ratio(_find(cands, "bp", "Hessian"),
                                                        _find(cands, "numpy", "Hessian")), 3.0)))
            targets.append(Target("4. Rosenbrock n=100", "HVP / gradient, bp", fmt_ratio(vr),
                                  "≤ 1.5×", _met(vr, 1.5),
                                  *_cpu_pair(_cpu_ratio(_find(cands, "bp", "HVP"),
                                                        _find(cands, "bp", "gradient")), 1.5)))
            lines += [f"Targets at n = 100: bp Hessian / numpy Hessian {fmt_ratio(hr)} (≤ 3×: "
                      f"{_yes(_met(hr, 3.0))}); bp HVP / bp gradient {fmt_ratio(vr)} (≤ 1.5×: "
                      f"{_yes(_met(vr, 1.5))}).", ""]
    return lines, targets


# ── 6. conv2d training step (issue 14) ───────────────────────────────────

BP_CNN = """
def loss(W1, b1, W2, b2) {
    h = relu(conv2d(X, W1, b1, padding=1))
    p = max_pool2d(h, 2)
    return cross_entropy(reshape(p, B, F) @ W2 + b2, Y)
}
"""
CONV_TARGET = 1.5                 # issue 14: ≤ 1.5× the faster of PyTorch and NumPy


def cnn_inputs(B: int, C: int, H: int, O: int, K: int = 3, classes: int = 10):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, C, H, H))
    Y = np.eye(classes)[rng.integers(0, classes, size=B)]
    F = O * (H // 2) ** 2
    params = [rng.standard_normal((O, C, K, K)) / np.sqrt(C * K * K), 0.1 * rng.standard_normal(O),
              rng.standard_normal((F, classes)) / np.sqrt(F), 0.1 * rng.standard_normal(classes)]
    return X, Y, params


def cnn_numpy_backprop(X, Y, W1, b1, W2, b2):
    """The floor: conv (3×3, padding 1) → relu → 2×2 max pool → dense → cross-entropy and
    its gradient by hand, im2col by numpy.lib.stride_tricks.sliding_window_view and one
    matrix product per image (forward) and for the weights (backward)."""
    from numpy.lib.stride_tricks import sliding_window_view
    n, c, h, _ = X.shape
    o, k = W1.shape[0], W1.shape[2]
    half = h // 2
    win = sliding_window_view(np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1))), (k, k), axis=(2, 3))
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, h * h)      # (N, CKK, HW)
    pre = (W1.reshape(o, -1) @ cols).reshape(n, o, h, h) + b1[:, None, None]
    act = np.maximum(pre, 0.0)
    quads = act.reshape(n, o, half, 2, half, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, o, half, half, 4)
    first = quads.argmax(axis=-1)                   # the first largest, as PyTorch routes it
    pooled = np.take_along_axis(quads, first[..., None], axis=-1)[..., 0]
    flat = pooled.reshape(n, -1)
    Z = flat @ W2 + b2
    m = Z.max(axis=1, keepdims=True)
    E = np.exp(Z - m)
    s = E.sum(axis=1, keepdims=True)
    L = np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(Y * Z, axis=1))
    G = (E / s - Y) / n
    dW2, db2 = flat.T @ G, G.sum(axis=0)
    dq = np.zeros_like(quads)
    np.put_along_axis(dq, first[..., None], (G @ W2.T).reshape(n, o, half, half, 1), axis=-1)
    dpre = dq.reshape(n, o, half, half, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, o, h, h)
    dpre *= pre > 0
    db1 = dpre.sum(axis=(0, 2, 3))
    dW1 = (dpre.reshape(n, o, -1).transpose(1, 0, 2).reshape(o, -1)
           @ cols.transpose(0, 2, 1).reshape(-1, c * k * k)).reshape(W1.shape)
    return L, (dW1, db1, dW2, db2)


def _cnn_torch(torch, X, Y, P, ref) -> Candidate:
    F = torch.nn.functional
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    Pt = [torch.tensor(p, requires_grad=True) for p in P]
    B = X.shape[0]

    def t_step():
        W1, b1, W2, b2 = Pt
        p = F.max_pool2d(F.relu(F.conv2d(Xt, W1, b1, padding=1)), 2)
        Z = p.reshape(B, -1) @ W2 + b2
        L = torch.mean(torch.logsumexp(Z, dim=1) - torch.sum(Yt * Z, dim=1))
        return L, torch.autograd.grad(L, Pt)
    return Candidate("torch eager", "float64", t_step, ref,
                     convert=lambda r: (r[0].detach().numpy(), [g.numpy() for g in r[1]]))


def workload_conv(opts: Options, peers: Peers):
    lines = ["## 6. conv2d training step (loss and the four gradients of a small CNN)", ""]
    targets: list[Target] = []
    B, C, H, O = 32, 3, 16, 16
    opts.log(f"CNN: B={B} {C}×{H}×{H} → conv {O}×{C}×3×3 → relu → max_pool2d 2 → dense 10")
    X, Y, P = cnn_inputs(B, C, H, O)
    ref = flatten(cnn_numpy_backprop(X, Y, *P))
    bp = dsl.Interpreter()
    bp["X"], bp["Y"], bp["B"], bp["F"] = X, Y, B, P[2].shape[0]
    bp.exec(BP_CNN)
    f = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2))")
    cands = [Candidate("numpy", "float64", lambda: cnn_numpy_backprop(X, Y, *P), ref),
             Candidate("bp", "float64", lambda: f(*P), ref)]
    if peers.torch is None:
        opts.log("torch: not installed, the conv2d row compares with NumPy only")
    bp_c, np_c, fastest, ratio, cpu = _against_torch_and_numpy(
        cands, "float64", peers, opts, lambda torch: _cnn_torch(torch, X, Y, P, ref))
    lines += [f"B = {B} images {C}×{H}×{H}; conv2d {O}×{C}×3×3, padding 1, bias; relu; "
              f"max_pool2d 2; dense {P[2].shape[0]}→10; cross_entropy. float64, one thread.", ""]
    lines += _timing_table(cands, lambda c: np_c,
                           {"bp float64": f"≤ {CONV_TARGET}× the faster of torch and numpy "
                                          f"({fastest.peer if fastest else '?'}): "
                                          f"{fmt_ratio(ratio)}, met? {_yes(_met(ratio, CONV_TARGET))}"})
    lines += ["", f"bp's compiled plan: {_bp_plan_steps(bp)} steps. The ratio column is to the "
                  "hand-written NumPy floor; the target is against the faster of it and PyTorch.", ""]
    targets.append(Target("6. conv2d", f"B={B} CNN loss+grads, bp / faster of torch, numpy",
                          fmt_ratio(ratio), f"≤ {CONV_TARGET}×", _met(ratio, CONV_TARGET),
                          fmt_ratio(cpu), _met(cpu, CONV_TARGET)))
    return lines, targets


def _against_torch_and_numpy(cands, unit, peers, opts, torch_candidate):
    """Time bp against hand NumPy and (when installed) PyTorch eager on one thread, in
    the same run: (bp, numpy, the faster of numpy and torch, bp's ratio to it by wall
    time, by CPU time)."""
    threads = None
    if peers.torch is not None:
        threads = peers.torch.get_num_threads()
        peers.torch.set_num_threads(1)           # the pinned CPU: one thread, as for NumPy
        cands.append(torch_candidate(peers.torch))
    try:
        measure(cands, opts.rounds, opts.target_s, progress=opts.log)
    finally:
        if threads is not None:
            peers.torch.set_num_threads(threads)
    bp_c, np_c = _find(cands, "bp", unit), _find(cands, "numpy", unit)
    t_c = _find(cands, "torch eager", unit)
    fastest = min((c for c in (np_c, t_c) if _median(c)), key=_median, default=None)
    ratio = _median(bp_c) / _median(fastest) if _median(bp_c) and fastest is not None else None
    cpu = _cpu_ratio(bp_c, fastest) if fastest is not None else None
    return bp_c, np_c, fastest, ratio, cpu


# ── 7. einsum: two contractions and their gradients (issue 14) ────────────

EINSUM_TARGET = 1.5               # issue 14: ≤ 1.5× the faster of PyTorch and NumPy
BP_EINSUM_BATCHED = 'def loss(A, B) = sum(einsum("bij,bjk->bik", A, B)^2)'
BP_EINSUM_BILINEAR = 'def loss(W) = mean((einsum("bi,ij,bj->b", X, W, X) - y)^2)'


def workload_einsum(opts: Options, peers: Peers):
    """Loss and gradients of a batched matrix product and of a bilinear form, each
    written with einsum: bp against hand-written NumPy einsums (optimize=True, their
    gradients derived by hand) and PyTorch's einsum with autograd, in the same run."""
    lines = ["## 7. einsum (loss and gradients of two contractions)", ""]
    targets: list[Target] = []
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((32, 48, 64)), rng.standard_normal((32, 64, 40))
    X, W, y = rng.standard_normal((256, 128)), rng.standard_normal((128, 128)) / 10, rng.standard_normal(256)

    def np_batched():
        # C = A B per batch; L = Σ C²: Ā = 2 C Bᵀ, B̄ = 2 Aᵀ C
        C = np.einsum("bij,bjk->bik", A, B, optimize=True)
        return (np.sum(C * C), np.einsum("bik,bjk->bij", 2 * C, B, optimize=True),
                np.einsum("bij,bik->bjk", A, 2 * C, optimize=True))

    def np_bilinear():
        # r_b = x_bᵀ W x_b - y_b; L = mean r²: W̄ = (2/n) Σ_b r_b x_b x_bᵀ
        r = np.einsum("bi,ij,bj->b", X, W, X, optimize=True) - y
        return np.mean(r * r), (2 / len(y)) * np.einsum("b,bi,bj->ij", r, X, X, optimize=True)

    for name, label, src, bind, wrt, args, np_fn, torch_fn in (
            ("batched", "batched `bij,bjk->bik`, A [32, 48, 64], B [32, 64, 40]", BP_EINSUM_BATCHED,
             {}, "(A, B)", (A, B), np_batched, _einsum_torch_batched),
            ("bilinear", "bilinear `bi,ij,bj->b`, X [256, 128], W [128, 128]", BP_EINSUM_BILINEAR,
             {"X": X, "y": y}, "W", (W,), np_bilinear, _einsum_torch_bilinear)):
        ref = flatten(np_fn())
        bp = dsl.Interpreter()
        for k, v in bind.items():
            bp[k] = v
        bp.exec(src)
        f = bp.function(f"value_and_grad(loss, wrt={wrt})")
        cands = [Candidate("numpy", "einsum", np_fn, ref),
                 Candidate("bp", "einsum", lambda f=f, args=args: f(*args), ref)]
        bp_c, np_c, fastest, ratio, cpu = _against_torch_and_numpy(
            cands, "einsum", peers, opts,
            lambda torch, torch_fn=torch_fn, ref=ref: torch_fn(torch, X, W, y, A, B, ref))
        lines += [f"**{label}**: loss and gradients.", ""]
        lines += _timing_table(cands, lambda c, np_c=np_c: np_c,
                               {"bp einsum": f"≤ {EINSUM_TARGET}× the faster of torch and numpy "
                                             f"({fastest.peer if fastest else '?'}): "
                                             f"{fmt_ratio(ratio)}, met? {_yes(_met(ratio, EINSUM_TARGET))}"})
        lines.append("")
        targets.append(Target("7. einsum", f"{name} loss+grads, bp / faster of torch, numpy",
                              fmt_ratio(ratio), f"≤ {EINSUM_TARGET}×", _met(ratio, EINSUM_TARGET),
                              fmt_ratio(cpu), _met(cpu, EINSUM_TARGET)))
    return lines, targets


def _einsum_torch_batched(torch, X, W, y, A, B, ref):
    tA, tB = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)

    def run():
        tA.grad = tB.grad = None
        out = torch.einsum("bij,bjk->bik", tA, tB).pow(2).sum()
        out.backward()
        return out.detach().numpy(), tA.grad.numpy(), tB.grad.numpy()
    return Candidate("torch eager", "einsum", run, ref)


def _einsum_torch_bilinear(torch, X, W, y, A, B, ref):
    tX, ty, tW = torch.tensor(X), torch.tensor(y), torch.tensor(W, requires_grad=True)

    def run():
        tW.grad = None
        out = (torch.einsum("bi,ij,bj->b", tX, tW, tX) - ty).pow(2).mean()
        out.backward()
        return out.detach().numpy(), tW.grad.numpy()
    return Candidate("torch eager", "einsum", run, ref)


# ── 9. the MLP step on the JAX engine (issue 18) ─────────────────────────

def workload_mlp_jax(opts: Options, peers: Peers):
    """Workload 1's MLP step at B = 128 and B = 4096: bp's NumPy engine, bp's JAX engine
    (Interpreter(engine="jax"): the plan as one jitted function, NumPy arrays in and
    out), and hand JAX, jax.jit(jax.value_and_grad(...)), with its arrays on the device
    (the issue's yardstick) and with NumPy arrays in and out (what bp's engine does)."""
    lines = ["## 9. MLP gradient step on the JAX engine (issue 18)", ""]
    targets: list[Target] = []
    if peers.jax is None:
        lines += ["not measured: JAX is not installed (`pip install '.[jax]'`)", ""]
        return lines, targets
    jax = peers.jax
    device = jax.devices()[0]
    lines += [f"JAX {jax.__version__} on `{device.platform}` ({device.device_kind}), "
              f"{jax.device_count()} device(s).", ""]
    sizes = (784, 256, 256, 10)
    for B in (128, 4096):
        opts.log(f"MLP on the JAX engine: B={B} {'-'.join(map(str, sizes))}")
        X, Y, P = mlp_inputs(B, sizes)
        ref = flatten(mlp_numpy_backprop(X, Y, *P))
        fs = {}
        for engine in ("numpy", "jax"):
            bp = dsl.Interpreter(engine=engine)
            bp["X"], bp["Y"], bp["λ"] = X, Y, LAMBDA
            bp.exec(BP_MLP)
            fs[engine] = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2, W3, b3))")
        cands = [Candidate("numpy", "float64", lambda X=X, Y=Y, P=P: mlp_numpy_backprop(X, Y, *P), ref),
                 Candidate("bp", "numpy engine", lambda P=P: fs["numpy"](*P), ref),
                 Candidate("bp", "jax engine", lambda P=P, f=fs["jax"]: f(*P), ref)]
        jnp = jax.numpy
        jit_vg = jax.jit(jax.value_and_grad(_mlp_jax_loss(jax)))
        Pj, Xj, Yj = [jnp.asarray(p) for p in P], jnp.asarray(X), jnp.asarray(Y)
        conv = lambda r: (np.asarray(r[0]), [np.asarray(g) for g in r[1]])

        def numpy_in(P=P, X=X, Y=Y):
            v, g = jit_vg(list(P), X, Y)
            return np.asarray(v), [np.asarray(x) for x in g]
        cands += [Candidate("JAX jit", "device arrays",
                            lambda: jax.block_until_ready(jit_vg(Pj, Xj, Yj)), ref, convert=conv),
                  Candidate("JAX jit", "NumPy in and out", numpy_in, ref)]
        measure(cands, opts.rounds, opts.target_s, progress=opts.log)
        eng, hand_c = _find(cands, "bp", "jax engine"), _find(cands, "JAX jit", "device arrays")
        ratio = _median(eng) / _median(hand_c) if _median(eng) and _median(hand_c) else None
        lines += [f"### B = {B}, layers {'-'.join(map(str, sizes))}", ""]
        lines += _timing_table(cands, lambda c, cands=cands: _find(cands, "numpy", "float64"),
                               {"bp jax engine": f"≤ 1.2× JAX jit (device arrays): "
                                                 f"{fmt_ratio(ratio)}, met? {_yes(_met(ratio, 1.2))}"})
        lines += [""]
        targets.append(Target("9. MLP, JAX engine", f"B={B} loss+grads, bp jax engine / hand JAX jit",
                              fmt_ratio(ratio), "≤ 1.2×", _met(ratio, 1.2),
                              fmt_ratio(_cpu_ratio(eng, hand_c)), _met(_cpu_ratio(eng, hand_c), 1.2)))
    return lines, targets


def _mlp_jax_loss(jax):
    jnp = jax.numpy

    def j_loss(params, X, Y):
        W1, b1, W2, b2, W3, b3 = params
        H1 = jnp.tanh(X @ W1 + b1)
        H2 = jnp.tanh(H1 @ W2 + b2)
        Z = H2 @ W3 + b3
        return (jnp.mean(jax.nn.logsumexp(Z, axis=1) - jnp.sum(Y * Z, axis=1))
                + LAMBDA * (jnp.sum(W1 ** 2) + jnp.sum(W2 ** 2) + jnp.sum(W3 ** 2)))
    return j_loss


# ── 10. building big graphs, and the fixed cost of a call (issue 19) ────

BUILD_STEP_CPU = 15e-6            # issue 19 target 1: ≤ 15 µs of CPU per plan step …
BUILD_CASADI = 3.0                # … i.e. within 3× CasADi's build
EVAL_CASADI = 2.0                 # target 2: per evaluation within 2× CasADi
FIXED_COST = 3e-6                 # target 3: ≤ 3 µs a call …
MLP1_JAX = 2.0                    # … and the MLP at B = 1 within 2× JAX jit
TORCH_ROUNDS = 3                  # PyTorch eager builds at every call: a few rounds suffice


def rosen_sum_source(n: int) -> str:
    """The n-term Rosenbrock written out as one sum (no loop: a `for` would be a loop
    node past lower_loops.UNROLL_MAX), in rosenbrock_loop's order."""
    terms = (f"100*(x[{i + 1}] - x[{i}]^2)^2 + (1 - x[{i}])^2" for i in range(n - 1))
    return "def f(x) = " + " + ".join(terms)


def tanh_chain_source(n: int) -> str:
    """tanh(tanh(…tanh(x)…)), n deep, as a chain of bindings in a block body (nested
    calls n deep would pass the parser's max_depth)."""
    body = ["    t1 = tanh(x)"] + [f"    t{i + 1} = tanh(t{i})" for i in range(1, n)]
    return "def f(x) {\n" + "\n".join(body) + f"\n    return t{n}\n}}\n"


def tanh_chain_grad(x0: float, n: int) -> float:
    """d/dx of the n-fold tanh at x0: the product of 1 - t_k² along the chain."""
    t, d = x0, 1.0
    for _ in range(n):
        t = math.tanh(t)
        d *= 1.0 - t * t
    return d


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and process CPU seconds of one call (after a collection, as timing.once)."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _copied(result) -> list[np.ndarray]:
    """A result as fresh float64 arrays (a later call may reuse a plan's buffers)."""
    return [np.array(a, dtype=np.float64, copy=True) for a in flatten(result)]


@dataclass
class _Builds:
    """Fresh builds of one candidate: wall and CPU seconds of each, and whether every
    result matched the reference."""
    wall: list
    cpu: list
    ok: bool = True
    wall2: list | None = None         # bp: the second call, which compiles generated code
    cpu2: list | None = None

    def med(self, which: str = "wall") -> float | None:
        xs = getattr(self, which)
        return statistics.median(xs) if xs and self.ok else None


def _big_graph(opts: Options, peers: Peers, title: str, label: str, src: str, arg,
               ref: list[np.ndarray], casadi_build, torch_call, floor: Candidate | None):
    """One large workload: opts.builds rounds, each a fresh bp session (exec, grad,
    first call, second call), a fresh CasADi SX build (graph, gradient, Function, first
    call) and a PyTorch eager call, in a shuffled order; then per evaluation, bp and
    CasADi interleaved (PyTorch eager in a few rounds of its own)."""
    lines = [f"### {title}", ""]
    targets: list[Target] = []
    builds: dict[str, _Builds] = {}
    held: dict[str, Any] = {}

    def bp_build():
        held.pop("bp", None)                   # one session alive at a time
        def first():
            bp = dsl.Interpreter()
            bp.exec(src)
            g = bp.function("grad(f)")
            return bp, g, _copied(g(arg))      # the copy is the result's, inside the timing
        wall, cpu, (bp, g, r1) = _timed(first)
        wall2, cpu2, r2 = _timed(lambda: g(arg))
        b = builds.setdefault("bp", _Builds([], [], wall2=[], cpu2=[]))
        b.wall.append(wall)
        b.cpu.append(cpu)
        b.wall2.append(wall2)
        b.cpu2.append(cpu2)
        b.ok &= max(rel_error(r1, ref), rel_error(flatten(r2), ref)) <= TOLERANCE
        held["bp"] = (bp, g)

    makers = {"bp": bp_build}
    if peers.casadi is not None and casadi_build is not None:
        def ca_build():
            wall, cpu, (g, out) = _timed(lambda: casadi_build(peers.casadi))
            b = builds.setdefault("CasADi SX", _Builds([], []))
            b.wall.append(wall)
            b.cpu.append(cpu)
            b.ok &= rel_error(flatten(np.asarray(out.full()).reshape(ref[0].shape)), ref) <= TOLERANCE
            held["CasADi SX"] = g
        makers["CasADi SX"] = ca_build
    if peers.torch is not None and torch_call is not None:
        def t_build():
            wall, cpu, out = _timed(torch_call)
            b = builds.setdefault("torch eager", _Builds([], []))
            b.wall.append(wall)
            b.cpu.append(cpu)
            b.ok &= rel_error(flatten(out.detach().numpy()), ref) <= TOLERANCE
        makers["torch eager"] = t_build
    order = list(makers)
    rng = random.Random(0)
    for k in range(opts.builds):
        rng.shuffle(order)
        for name in order:
            opts.log(f"  build {k + 1}/{opts.builds}: {name}")
            try:
                makers[name]()
            except Exception as err:
                opts.log(f"  {name}: build failed ({type(err).__name__}: {err})")
                builds.setdefault(name, _Builds([], [])).ok = False
                if name == "bp":
                    raise

    bp, g = held["bp"]
    run_steps = _bp_plan_steps(bp)
    steps = _steps_as_written(src, arg)          # the build's size: its graph as written
    cands = ([floor] if floor is not None else []) + [Candidate("bp", label, lambda: g(arg), ref)]
    ca_g = held.get("CasADi SX")
    if ca_g is not None:
        cands.append(Candidate("CasADi SX", label, lambda: ca_g(arg), ref,
                               convert=lambda r: np.asarray(r.full()).reshape(ref[0].shape)))
    measure(cands, opts.rounds, opts.target_s, progress=opts.log)
    t_c = None
    if "torch eager" in makers:
        t_c = Candidate("torch eager", label, torch_call, ref, convert=lambda r: r.detach().numpy())
        measure([t_c], TORCH_ROUNDS, opts.target_s, progress=opts.log)
        cands.append(t_c)
    bp_c, ca_c = _find(cands, "bp", label), _find(cands, "CasADi SX", label)

    bb, cb, tb = builds["bp"], builds.get("CasADi SX"), builds.get("torch eager")
    per_step = bb.med() / steps if bb.med() is not None and steps else None
    per_step_cpu = bb.med("cpu") / steps if bb.med("cpu") is not None and steps else None
    r = lambda a, b: a / b if a is not None and b else None
    peer_cols = [(name, builds.get(name)) for name in ("CasADi SX", "torch eager") if name in makers]
    lines += ["| | bp | " + " | ".join(name for name, _ in peer_cols) + " |",
              "| --- | ---: |" + " ---: |" * len(peer_cols)]

    def row(what, bp_cell, peer_cell):
        lines.append(f"| {what} | {bp_cell} | " + " | ".join(peer_cell(name, b) for name, b in peer_cols) + " |")

    def wrong(b):
        return b is None or not b.ok
    row(f"first result (build + first call), median of {opts.builds} fresh builds: wall / CPU",
        "WRONG" if wrong(bb) else f"{fmt_time(bb.med())} / {fmt_time(bb.med('cpu'))}",
        lambda name, b: "WRONG or failed" if wrong(b) else f"{fmt_time(b.med())} / {fmt_time(b.med('cpu'))}")
    row("second call: wall / CPU (bp: compiles the plan's generated code)",
        "WRONG" if wrong(bb) else f"{fmt_time(bb.med('wall2'))} / {fmt_time(bb.med('cpu2'))}",
        lambda name, b: "as the first" if name == "torch eager" else "–")
    row("per evaluation after that, median: wall / CPU",
        f"{fmt_time(_median(bp_c))} / {fmt_time(_cpu_time(bp_c))}",
        lambda name, b: (lambda c: f"{fmt_time(_median(c))} / {fmt_time(_cpu_time(c))}")(_find(cands, name, label)))
    row("plan steps as written (as run, long sums rerolled); build per step as written "
        "(first result / steps): wall / CPU",
        f"{steps} ({run_steps}); {fmt_time(per_step)} / {fmt_time(per_step_cpu)}", lambda name, b: "–")
    row("bp / peer: first result, wall / CPU", "",
        lambda name, b: "–" if wrong(b) or wrong(bb) else
        f"{fmt_ratio(r(bb.med(), b.med()))} / {fmt_ratio(r(bb.med('cpu'), b.med('cpu')))}")
    row("bp / peer: per evaluation, wall / CPU", "",
        lambda name, b: (lambda c: f"{fmt_ratio(r(_median(bp_c), _median(c)))} / "
                                   f"{fmt_ratio(_cpu_ratio(bp_c, c))}")(_find(cands, name, label)))
    lines += ["", "Per evaluation (the ratio column is to CasADi SX of the same run; PyTorch eager "
              f"in {TORCH_ROUNDS} rounds of its own, one call a sample):", ""]
    lines += _timing_table(cands, lambda c: ca_c,
                           {f"bp {label}": f"≤ {EVAL_CASADI:g}× CasADi SX: "
                                           f"{fmt_ratio(r(_median(bp_c), _median(ca_c)))}"})
    lines.append("")

    short = title.split(":")[0]
    ok = not wrong(bb)
    targets.append(Target(f"10. Build, {short}", "build per plan step as written (first result / steps), bp",
                          fmt_time(per_step) if ok else "WRONG", f"≤ {fmt_time(BUILD_STEP_CPU)} CPU",
                          _met(per_step, BUILD_STEP_CPU) if ok else False, fmt_time(per_step_cpu),
                          _met(per_step_cpu, BUILD_STEP_CPU) if ok else False))
    if "CasADi SX" in makers:
        fr = r(bb.med(), cb.med()) if not wrong(cb) else None
        fr_cpu = r(bb.med("cpu"), cb.med("cpu")) if not wrong(cb) else None
        targets.append(Target(f"10. Build, {short}", "first result, bp / CasADi SX build + first call",
                              fmt_ratio(fr) if ok else "WRONG", f"≤ {BUILD_CASADI:g}×",
                              _met(fr, BUILD_CASADI) if ok else False, fmt_ratio(fr_cpu),
                              _met(fr_cpu, BUILD_CASADI) if ok else False))
        er = r(_median(bp_c), _median(ca_c))
        targets.append(Target(f"10. Build, {short}", "per evaluation, bp / CasADi SX", fmt_ratio(er),
                              f"≤ {EVAL_CASADI:g}×", _met(er, EVAL_CASADI),
                              *_cpu_pair(_cpu_ratio(bp_c, ca_c), EVAL_CASADI)))
    else:
        lines += ["CasADi is not installed (`pip install casadi`, in the bench extra): the "
                  "ratios to its build and evaluation are not measured.", ""]
    return lines, targets


def _fixed_cost(opts: Options, peers: Peers):
    """The cost of a call that does nothing: `def f(x) = x` (and x + 1, one step) through
    Interpreter.function on a 0-d and a [3] array, beside a Python function's call and
    JAX jit's dispatch of the same."""
    lines = ["### Fixed cost of a call", ""]
    targets: list[Target] = []
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x\ndef g(x) = x + 1")
    f, g = bp.function("f"), bp.function("g")
    x0, x3 = np.asarray(0.5), np.arange(3.0)

    def py_identity(x):
        return x
    cands = [Candidate("Python", "x -> x, 0-d", lambda: py_identity(x0), [x0]),
             Candidate("bp", "x -> x, 0-d", lambda: f(x0), [x0]),
             Candidate("bp", "x -> x, [3]", lambda: f(x3), [x3]),
             Candidate("bp", "x -> x + 1, 0-d", lambda: g(x0), [x0 + 1]),
             Candidate("bp", "x -> x + 1, [3]", lambda: g(x3), [x3 + 1])]
    if peers.jax is not None:
        jax = peers.jax
        j_id, j_inc = jax.jit(lambda x: x), jax.jit(lambda x: x + 1)
        j0, j3 = jax.numpy.asarray(x0), jax.numpy.asarray(x3)
        cands += [Candidate("JAX jit", "x -> x, 0-d", lambda: jax.block_until_ready(j_id(j0)), [x0],
                            convert=np.asarray),
                  Candidate("JAX jit", "x -> x + 1, [3]", lambda: jax.block_until_ready(j_inc(j3)),
                            [x3 + 1], convert=np.asarray)]
    measure(cands, opts.rounds, opts.target_s, progress=opts.log)
    lines += _timing_table(cands, lambda c: cands[0], {
        f"bp x -> x, {s}": f"≤ {fmt_time(FIXED_COST)}: met? {_yes(_met(_median(_find(cands, 'bp', f'x -> x, {s}')), FIXED_COST))}"
        for s in ("0-d", "[3]")})
    lines += ["", "The ratio column is to a Python function's call (`def f(x): return x`).", ""]
    for s in ("0-d", "[3]"):
        c = _find(cands, "bp", f"x -> x, {s}")
        targets.append(Target("10. Fixed cost", f"a call of def f(x) = x on a {s} array, bp",
                              fmt_time(_median(c)), f"≤ {fmt_time(FIXED_COST)}", _met(_median(c), FIXED_COST),
                              fmt_time(_cpu_time(c)), _met(_cpu_time(c), FIXED_COST)))
    return lines, targets


def _mlp_b1(opts: Options, peers: Peers):
    """Workload 1's MLP step (both layer shapes) at B = 1, where a call's fixed cost is
    most of it: bp against hand JAX jit (device arrays; NumPy in and out beside it)."""
    lines = ["### MLP gradient step at B = 1", ""]
    targets: list[Target] = []
    for sizes in ((784, 256, 256, 10), (16, 32, 32, 4)):
        shape = "-".join(map(str, sizes))
        opts.log(f"MLP B=1 {shape}")
        X, Y, P = mlp_inputs(1, sizes)
        ref = flatten(mlp_numpy_backprop(X, Y, *P))
        bp = dsl.Interpreter()
        bp["X"], bp["Y"], bp["λ"] = X, Y, LAMBDA
        bp.exec(BP_MLP)
        f = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2, W3, b3))")
        cands = [Candidate("numpy", shape, lambda X=X, Y=Y, P=P: mlp_numpy_backprop(X, Y, *P), ref),
                 Candidate("bp", shape, lambda P=P, f=f: f(*P), ref)]
        if peers.jax is not None:
            jax = peers.jax
            jnp = jax.numpy
            jit_vg = jax.jit(jax.value_and_grad(_mlp_jax_loss(jax)))
            Pj, Xj, Yj = [jnp.asarray(p) for p in P], jnp.asarray(X), jnp.asarray(Y)
            conv = lambda r: (np.asarray(r[0]), [np.asarray(g) for g in r[1]])

            def numpy_in(P=P, X=X, Y=Y, jit_vg=jit_vg):
                v, gs = jit_vg(list(P), X, Y)
                return np.asarray(v), [np.asarray(x) for x in gs]
            cands += [Candidate("JAX jit", shape, lambda: jax.block_until_ready(jit_vg(Pj, Xj, Yj)),
                                ref, convert=conv),
                      Candidate("JAX jit, NumPy in and out", shape, numpy_in, ref)]
        measure(cands, opts.rounds, opts.target_s, progress=opts.log)
        bp_c, j_c = _find(cands, "bp", shape), _find(cands, "JAX jit", shape)
        ratio = _median(bp_c) / _median(j_c) if _median(bp_c) and _median(j_c) else None
        lines += [f"**B = 1, layers {shape}** (ratio column: to hand NumPy):", ""]
        lines += _timing_table(cands, lambda c, cands=cands: cands[0],
                               {f"bp {shape}": f"≤ {MLP1_JAX:g}× JAX jit (device arrays): "
                                               f"{fmt_ratio(ratio)}, met? {_yes(_met(ratio, MLP1_JAX))}"
                                               if j_c is not None else "JAX not installed"})
        lines.append("")
        if j_c is not None:
            targets.append(Target("10. Fixed cost", f"MLP B=1 {shape} loss+grads, bp / JAX jit",
                                  fmt_ratio(ratio), f"≤ {MLP1_JAX:g}×", _met(ratio, MLP1_JAX),
                                  *_cpu_pair(_cpu_ratio(bp_c, j_c), MLP1_JAX)))
    return lines, targets


def workload_build(opts: Options, peers: Peers):
    """Issue 19: the time to a first result of two big gradients (the n-term Rosenbrock
    written out as one sum, a chain of tanh), per plan step and against CasADi SX's build
    and PyTorch eager, their per-evaluation time against CasADi's; and the fixed cost of a
    call (an identity function; the MLP at B = 1 against JAX jit)."""
    lines = ["## 10. Building big graphs; the fixed cost of a call (issue 19)", ""]
    targets: list[Target] = []
    n_rosen, n_tanh = (1_000, 10_000) if opts.quick else (10_000, 100_000)
    threads = None
    if peers.torch is not None:
        threads = peers.torch.get_num_threads()
        peers.torch.set_num_threads(1)           # the pinned CPU: one thread, as for NumPy
    else:
        opts.log("torch: not installed, the build rows compare with CasADi only")
    try:
        opts.log(f"build: Rosenbrock written out as a sum, n={n_rosen}")
        x = np.linspace(-1.2, 1.3, n_rosen)
        torch = peers.torch

        def t_rosen():
            xt = torch.tensor(x, requires_grad=True)
            return torch.autograd.grad(rosenbrock_loop(xt), xt)[0]

        def ca_rosen(ca):
            g = _casadi_rosen_grad(ca, n_rosen)
            return g, g(x)
        more, t = _big_graph(
            opts, peers, f"unrolled Rosenbrock sum n = {n_rosen}: gradient", "gradient",
            rosen_sum_source(n_rosen), x, [rosen_grad_numpy(x)], ca_rosen,
            t_rosen if torch is not None else None,
            Candidate("numpy", "vectorized", lambda: rosen_grad_numpy(x), [rosen_grad_numpy(x)]))
        lines += ["bp source: `def f(x) = 100*(x[1] - x[0]^2)^2 + (1 - x[0])^2 + …`, the "
                  f"{n_rosen - 1} terms written out; CasADi and PyTorch run rosenbrock_loop "
                  "(workload 2's Python loop) on SX scalars and on a tensor.", ""] + more
        targets += t

        opts.log(f"build: a chain of {n_tanh} tanh")
        x0 = np.asarray(0.5)

        def t_chain():
            xt = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
            y = xt
            for _ in range(n_tanh):
                y = torch.tanh(y)
            return torch.autograd.grad(y, xt)[0]

        def ca_chain(ca):
            xs = ca.SX.sym("x")
            y = xs
            for _ in range(n_tanh):
                y = ca.tanh(y)
            g = ca.Function("g", [xs], [ca.gradient(y, xs)])
            return g, g(0.5)
        more, t = _big_graph(
            opts, peers, f"chain of {n_tanh} tanh: gradient", "gradient", tanh_chain_source(n_tanh),
            x0, [np.asarray(tanh_chain_grad(0.5, n_tanh))], ca_chain,
            t_chain if torch is not None else None, None)
        lines += ["bp source: `def f(x) { t1 = tanh(x); t2 = tanh(t1); …; return "
                  f"t{n_tanh} }}`, one binding a line; at x = 0.5.", ""] + more
        targets += t
    finally:
        if threads is not None:
            peers.torch.set_num_threads(threads)
    for part in (_fixed_cost, _mlp_b1):
        more, t = part(opts, peers)
        lines += more
        targets += t
    return lines, targets
