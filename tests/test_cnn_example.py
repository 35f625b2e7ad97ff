"""examples/cnn.bp runs with the command line and prints the right numbers.

As tests/test_examples.py does for the other programs: the program runs
in-process through ``dsl.cli.main`` from a temporary directory, and the
numbers it prints are derived here independently of bp, with NumPy: the same
images from the same seeds (bp's ``rand(shape, seed=k)`` is
``np.random.default_rng(k).random(shape)``, ``randn`` its
``standard_normal``), the same network, and its gradient by backpropagation
written out by hand (the convolution as a sum over the nine taps of the
padded image, the pool's gradient routed to each window's largest entry),
for the same 30 steps of gradient descent.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

import dsl.cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cnn.bp"
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("cnn"))
        code = dsl.cli.main([str(EXAMPLE)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""
    return out.getvalue()


def after(out: str, label: str, count: int) -> np.ndarray:
    i = out.find(label)
    assert i >= 0, f"{label!r} not in the output:\n{out}"
    found = NUMBER.findall(out[i + len(label):])[:count]
    assert len(found) == count
    return np.array([float(x) for x in found])


# ── the example by hand ──────────────────────────────────────────────────

def data(n=16):
    rows = np.floor(8 * np.random.default_rng(1).random(n)).astype(int)
    cols = np.floor(8 * np.random.default_rng(2).random(n)).astype(int)
    images = np.zeros((2 * n, 8, 8))
    for k in range(n):
        images[k, rows[k], :] = 1.0             # a horizontal bar
        images[n + k, :, cols[k]] = 1.0         # a vertical bar
    images += 0.5 * np.random.default_rng(3).standard_normal((2 * n, 8, 8))
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    return images[:, None], labels, np.eye(2)[labels.astype(int)]


def forward(θ, X):
    N = X.shape[0]
    Xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    pre = np.zeros((N, 4, 8, 8)) + θ["b1"][None, :, None, None]
    for a in range(3):
        for b in range(3):                      # tap (a, b) of every 3×3 window
            pre += θ["W1"][None, :, 0, a, b, None, None] * Xp[:, :, a:a + 8, b:b + 8]
    h = np.maximum(pre, 0.0)
    windows = h.reshape(N, 4, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, 4, 4, 4, 4)
    p = windows.max(axis=-1)
    z = p.reshape(N, 64) @ θ["W2"] + θ["b2"]
    return Xp, pre, windows, p, z


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_grad(θ, X, Y):
    N = X.shape[0]
    Xp, pre, windows, p, z = forward(θ, X)
    s = softmax(z)
    loss = -np.mean(np.sum(Y * np.log(s), axis=1))
    dz = (s - Y) / N
    g = {"W2": p.reshape(N, 64).T @ dz, "b2": dz.sum(axis=0)}
    dp = (dz @ θ["W2"].T).reshape(N, 4, 4, 4)
    # each window's gradient goes to its largest entry (the first of equal ones)
    pick = np.zeros_like(windows)
    np.put_along_axis(pick, windows.argmax(axis=-1)[..., None], dp[..., None], axis=-1)
    dh = pick.reshape(N, 4, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, 4, 8, 8)
    dpre = dh * (pre > 0)
    g["b1"] = dpre.sum(axis=(0, 2, 3))
    g["W1"] = np.zeros((4, 1, 3, 3))
    for a in range(3):
        for b in range(3):
            g["W1"][:, 0, a, b] = np.einsum("nohw,nhw->o", dpre, Xp[:, 0, a:a + 8, b:b + 8])
    return loss, g


def train(steps=30, lr=0.1):
    X, labels, Y = data()
    θ = {"W1": 0.5 * np.random.default_rng(4).standard_normal((4, 1, 3, 3)), "b1": np.zeros(4),
         "W2": 0.1 * np.random.default_rng(5).standard_normal((64, 2)), "b2": np.zeros(2)}
    losses = []
    for _ in range(steps):
        loss, g = loss_and_grad(θ, X, Y)
        losses.append(loss)
        θ = {k: θ[k] - lr * g[k] for k in θ}
    losses.append(loss_and_grad(θ, X, Y)[0])
    z = forward(θ, X)[-1]
    return np.array(losses), np.mean((z[:, 1] > z[:, 0]) == labels)


def test_hand_gradient_matches_finite_differences():
    """The reference's own backpropagation, checked before it checks bp."""
    X, _, Y = data()
    rng = np.random.default_rng(0)
    θ = {"W1": rng.standard_normal((4, 1, 3, 3)), "b1": 0.1 * rng.standard_normal(4),
         "W2": 0.1 * rng.standard_normal((64, 2)), "b2": rng.standard_normal(2)}
    _, g = loss_and_grad(θ, X, Y)
    for k in θ:
        d = rng.standard_normal(θ[k].shape)
        h = 1e-6
        up = loss_and_grad({**θ, k: θ[k] + h * d}, X, Y)[0]
        down = loss_and_grad({**θ, k: θ[k] - h * d}, X, Y)[0]
        np.testing.assert_allclose(np.sum(g[k] * d), (up - down) / (2 * h), rtol=1e-6)


def test_cnn_example_loss_falls_as_backpropagation_by_hand_says(output):
    losses, accuracy = train()
    printed = after(output, "loss at steps 0, 10, 20, 30:", 4)
    np.testing.assert_allclose(printed, losses[[0, 10, 20, 30]], rtol=1e-7)
    assert printed[3] < printed[2] < printed[1] < printed[0]
    assert printed[3] < printed[0] / 2
    assert np.all(np.diff(losses) < 0)          # every step of the hand run descends
    assert after(output, "training accuracy:", 1)[0] == accuracy > 0.9
