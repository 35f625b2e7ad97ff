"""The cheap gradient principle, in nodes (differentiation issue, point 5).

    python benchmarks/cheap_gradient.py

For the MLP loss of examples/ (two hidden layers, softmax cross-entropy,
an L2 penalty) and for the extended Rosenbrock function, prints the node
count of the function's graph, of value_and_grad's graph, and their ratio
(the bar: at most 3).  Counts are of operation nodes (inputs and constants
excluded) and deterministic.
"""
from __future__ import annotations

import sys

import dsl

MLP = """
X = randn(32, 8, seed=1)
Y = one_hot(arange(32) - 4 * floor(arange(32) / 4), 4)
λ = 0.001
def loss(W1, b1, W2, b2, W3, b3) {
    h1 = tanh(X @ W1 + b1)
    h2 = tanh(h1 @ W2 + b2)
    return cross_entropy(h2 @ W3 + b3, Y) + λ * (sum(W1^2) + sum(W2^2) + sum(W3^2))
}
def loss_shaped(W1: [8, 16], b1: [16], W2: [16, 16], b2: [16], W3: [16, 4], b3: [4]) =
    loss(W1, b1, W2, b2, W3, b3)
"""
ROSENBROCK = """
def rosen(x: [10]) = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)
"""


def nodes(bp: dsl.Interpreter, src: str) -> int:
    return sum(1 for n in bp.graph(src).nodes if n.op not in ("input", "const"))


def main() -> int:
    bp = dsl.Interpreter()
    bp.exec(MLP)
    bp.exec(ROSENBROCK)
    cases = [("MLP loss (all six parameters)", "loss_shaped",
              "value_and_grad(loss_shaped, wrt=(W1, b1, W2, b2, W3, b3))"),
             ("extended Rosenbrock, n = 10", "rosen", "value_and_grad(rosen)")]
    ok = True
    print(f"{'function':32s} {'f':>6s} {'value_and_grad':>15s} {'ratio':>6s}")
    for label, f, vg in cases:
        a, b = nodes(bp, f), nodes(bp, vg)
        ok &= b <= 3 * a
        print(f"{label:32s} {a:6d} {b:15d} {b / a:6.2f}  {'ok' if b <= 3 * a else 'OVER 3'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
