"""bp's einsum gradient step against hand-written NumPy einsum (and PyTorch when
installed), in one process, in the shape of benchmarks/run.py's rows.

    .venv/bin/python benchmarks/einsum.py            # 15 rounds
    .venv/bin/python benchmarks/einsum.py --quick    # 5 rounds, shorter samples

Two workloads, each the loss and the gradients wrt every parameter:

- `batched`: L(A, B) = sum(einsum("bij,bjk->bik", A, B)^2), A [32, 48, 64], B [32, 64, 40]
  (hand NumPy: C = einsum(A, B); Ā = 2 einsum("bik,bjk->bij", C, B),
  B̄ = 2 einsum("bij,bik->bjk", A, C));
- `bilinear`: L(W) = mean((einsum("bi,ij,bj->b", X, W, X) - y)^2), X [256, 128], W [128, 128]
  (hand NumPy: r = einsum(X, W, X) - y; W̄ = (2/B) einsum("b,bi,bj->ij", r, X, X)).

NumPy's einsums are called with optimize=True (BLAS where the contraction allows; the
faster of the two NumPy paths here).  The timing rules are run.py's (benchmarks/timing.py):
the process pinned to one CPU before NumPy is imported, 2 checked warm-up calls,
samples calibrated to ~0.1 s, interleaved rounds in shuffled order, medians; the
ratio is bp's median over the faster of NumPy and PyTorch in the same run (issue 14's
target: ≤ 1.5×).  A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

BP_BATCHED = 'def loss(A, B) = sum(einsum("bij,bjk->bik", A, B)^2)'
BP_BILINEAR = 'def loss(W) = mean((einsum("bi,ij,bj->b", X, W, X) - y)^2)'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 rounds of ~0.03 s samples")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the first allowed)")
    opts = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        cpu = opts.cpu if opts.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    import numpy as np                       # only after pinning: one thread everywhere

    import dsl
    from timing import Candidate, fmt_ratio, fmt_time, measure

    rounds, target = (5, 0.03) if opts.quick else (15, 0.1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("torch: not installed, skipped")
    rng = np.random.default_rng(0)
    rows = []

    # ── batched: sum(einsum("bij,bjk->bik", A, B)^2) ──────────────────────
    A, B = rng.standard_normal((32, 48, 64)), rng.standard_normal((32, 64, 40))

    def np_batched(A=A, B=B):
        C = np.einsum("bij,bjk->bik", A, B, optimize=True)
        gA = 2 * np.einsum("bik,bjk->bij", C, B, optimize=True)
        gB = 2 * np.einsum("bij,bik->bjk", A, C, optimize=True)
        return np.sum(C * C), (gA, gB)

    bp = dsl.Interpreter()
    bp.exec(BP_BATCHED)
    f = bp.function("value_and_grad(loss, wrt=(A, B))")
    ref = np_batched()
    cands = [Candidate("numpy", "einsum", np_batched, _flat(ref)),
             Candidate("bp", "einsum", lambda: f(A, B), _flat(ref))]
    if torch is not None:
        tA, tB = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)

        def t_batched():
            tA.grad = tB.grad = None
            out = torch.einsum("bij,bjk->bik", tA, tB).pow(2).sum()
            out.backward()
            return out.detach().numpy(), (tA.grad.numpy(), tB.grad.numpy())
        cands.append(Candidate("torch", "einsum", t_batched, _flat(ref)))
    rows.append(("batched `bij,bjk->bik` A [32, 48, 64], B [32, 64, 40]: loss + Ā, B̄",
                 measure(cands, rounds, target)))

    # ── bilinear: mean((einsum("bi,ij,bj->b", X, W, X) - y)^2) ────────────
    X, W, y = rng.standard_normal((256, 128)), rng.standard_normal((128, 128)) / 10, rng.standard_normal(256)

    def np_bilinear(W=W):
        r = np.einsum("bi,ij,bj->b", X, W, X, optimize=True) - y
        gW = (2 / len(y)) * np.einsum("b,bi,bj->ij", r, X, X, optimize=True)
        return np.mean(r * r), gW

    bp = dsl.Interpreter()
    bp["X"], bp["y"] = X, y
    bp.exec(BP_BILINEAR)
    g = bp.function("value_and_grad(loss)")
    ref = np_bilinear()
    cands = [Candidate("numpy", "einsum", np_bilinear, _flat(ref)),
             Candidate("bp", "einsum", lambda: g(W), _flat(ref))]
    if torch is not None:
        tX, ty, tW = torch.tensor(X), torch.tensor(y), torch.tensor(W, requires_grad=True)

        def t_bilinear():
            tW.grad = None
            out = (torch.einsum("bi,ij,bj->b", tX, tW, tX) - ty).pow(2).mean()
            out.backward()
            return out.detach().numpy(), tW.grad.numpy()
        cands.append(Candidate("torch", "einsum", t_bilinear, _flat(ref)))
    rows.append(("bilinear `bi,ij,bj->b` X [256, 128], W [128, 128]: loss + W̄",
                 measure(cands, rounds, target)))

    print(f"{rounds} rounds, medians (one CPU)")
    print("| workload | numpy | torch | bp | bp / faster of numpy and torch |")
    print("|---|---|---|---|---|")
    for what, cands in rows:
        by = {c.peer: c for c in cands}
        for c in cands:
            if not c.ok:
                print(f"  {c.label}: {c.status}")
        times = {p: (c.median if c.ok else None) for p, c in by.items()}
        floor = min((t for p, t in times.items() if p != "bp" and t), default=None)
        ratio = times.get("bp") / floor if times.get("bp") and floor else None
        print(f"| {what} | {fmt_time(times.get('numpy'))} | {fmt_time(times.get('torch'))} | "
              f"{fmt_time(times.get('bp'))} | {fmt_ratio(ratio)} |")
    return 0


def _flat(result):
    import numpy as np
    value, grads = result
    grads = grads if isinstance(grads, tuple) else (grads,)
    return [np.asarray(value, dtype=float)] + [np.asarray(x, dtype=float) for x in grads]


if __name__ == "__main__":
    sys.exit(main())
