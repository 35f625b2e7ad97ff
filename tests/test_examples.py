"""Every examples/*.bp runs with the command line, and prints the right numbers.

Each program runs in-process through ``dsl.cli.main`` from a temporary
working directory (once per module; the output is shared by the checks).
The expected numbers are derived here, independently of bp, with NumPy:
the same data from the same seeds (bp's ``randn(shape, seed=k)`` is
``np.random.default_rng(k).standard_normal(shape)``), the same models and
training loops written out by hand, and gradients checked by finite
differences.  Nothing here is bp output pasted back.

Plots are checked only for having appeared (their legend labels); programs
that draw in the terminal are skipped when plotext is not installed.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

import dsl.cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROGRAMS = sorted(EXAMPLES.glob("*.bp"))
try:
    import plotext  # noqa: F401
    HAVE_PLOTEXT = True
except ImportError:
    HAVE_PLOTEXT = False
NO_PLOTEXT = "plotext is not installed: terminal plots (`plot … on …`, `plot v`) cannot be drawn"

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")


def draws_in_terminal(path: Path) -> bool:
    """A `plot` statement without `to "file"`."""
    return any(re.match(r"\s*plot\b", line) and not re.search(r"\bto\s+\"", line)
               for line in path.read_text(encoding="utf-8").splitlines())


def randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


# ── running the programs ─────────────────────────────────────────────────

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """run(name) -> stdout of examples/name, run once per module."""
    done = {}

    def run_(name):
        if name not in done:
            path = EXAMPLES / name
            if draws_in_terminal(path) and not HAVE_PLOTEXT:
                pytest.skip(NO_PLOTEXT)
            out, err = io.StringIO(), io.StringIO()
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(tmp_path_factory.mktemp(path.stem))
                code = dsl.cli.main([str(path)], stdout=out, stderr=err)
            done[name] = (code, out.getvalue(), err.getvalue())
        code, out, err = done[name]
        assert code == 0, f"{name} exited {code}:\n{err}"
        assert err == "", f"{name} wrote to stderr:\n{err}"
        return out
    return run_


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_runs(run, path):
    out = run(path.name)
    assert out.strip()


def test_the_examples_are_there():
    names = {p.name for p in PROGRAMS}
    assert {"backprop_mlp.bp", "xor.bp", "newton.bp", "logistic_regression.bp",
            "rnn.bp", "higher_order.bp", "fig6_10.bp", "tour.bp"} <= names


# ── reading printed numbers ──────────────────────────────────────────────

def after(out: str, label: str, count: int = 1, start: int = 0) -> np.ndarray:
    """The first `count` numbers printed after `label` (from offset `start`),
    across line breaks, so a matrix printed over several lines reads whole."""
    i = out.find(label, start)
    assert i >= 0, f"{label!r} not in the output:\n{out}"
    found = NUMBER.findall(out[i + len(label):])[:count]
    assert len(found) == count, f"fewer than {count} numbers after {label!r}"
    return np.array([float(x) for x in found])


def close(printed, expected, rtol=1e-6, atol=1e-9):
    expected = np.ravel(np.asarray(expected, dtype=float))
    np.testing.assert_allclose(printed, expected, rtol=rtol, atol=atol)


def fd_grad(f, x, h=1e-6):
    """Central finite differences of a scalar f at the array x."""
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = h * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += step
        xm[i] -= step
        g[i] = (f(xp) - f(xm)) / (2 * step)
    return g


def with_field(params: dict, name: str, value) -> dict:
    return {**params, name: value}


# ── backprop_mlp.bp: Algorithms 6.3 / 6.4 ────────────────────────────────

def mlp_setup():
    X = randn(1, 2, 8)
    y = np.tanh(X[0] * X[1]).reshape(1, 8)
    θ = {"W1": 0.5 * randn(2, 4, 2), "b1": 0.1 * randn(3, 4, 1),
         "W2": 0.5 * randn(4, 4, 4), "b2": 0.1 * randn(5, 4, 1),
         "W3": 0.5 * randn(6, 1, 4), "b3": 0.1 * randn(7, 1, 1)}
    return X, y, θ, 0.01


def mlp_forward(θ, X):
    h1 = np.tanh(θ["b1"] + θ["W1"] @ X)
    h2 = np.tanh(θ["b2"] + θ["W2"] @ h1)
    return h1, h2, θ["b3"] + θ["W3"] @ h2


def weight_penalty(θ):
    return sum(np.sum(θ[w] ** 2) for w in ("W1", "W2", "W3"))


def mlp_mse(θ, X, y, lam):
    return np.mean((np.tanh(mlp_forward(θ, X)[2]) - y) ** 2) + lam * weight_penalty(θ)


def mlp_cross_entropy(θ, X, T, lam):
    z = mlp_forward(θ, X)[2].T                                  # [8, 2] logits
    log_p = z - np.max(z, axis=1, keepdims=True)
    log_p = log_p - np.log(np.sum(np.exp(log_p), axis=1, keepdims=True))
    return -np.mean(np.sum(T * log_p, axis=1)) + lam * weight_penalty(θ)


def fd_grads(J, θ):
    return {k: fd_grad(lambda v, k=k: J(with_field(θ, k, v)), θ[k]) for k in θ}


def test_backprop_mlp(run):
    out = run("backprop_mlp.bp")
    X, y, θ, lam = mlp_setup()

    # The loss, and its gradient by the chain rule written out in NumPy,
    # itself checked against finite differences.
    close(after(out, "J(θ) ="), mlp_mse(θ, X, y, lam))
    h1, h2, a3 = mlp_forward(θ, X)
    g = 2 * (np.tanh(a3) - y) / y.size * (1 - np.tanh(a3) ** 2)
    grads = {"W3": g @ h2.T + 2 * lam * θ["W3"], "b3": g.sum(1, keepdims=True)}
    g = (θ["W3"].T @ g) * (1 - h2 ** 2)
    grads.update(W2=g @ h1.T + 2 * lam * θ["W2"], b2=g.sum(1, keepdims=True))
    g = (θ["W2"].T @ g) * (1 - h1 ** 2)
    grads.update(W1=g @ X.T + 2 * lam * θ["W1"], b1=g.sum(1, keepdims=True))
    numeric = fd_grads(lambda p: mlp_mse(p, X, y, lam), θ)
    for k in θ:
        np.testing.assert_allclose(grads[k], numeric[k], rtol=1e-6, atol=1e-9)

    for section in ("gradient norms (grad):", "gradient norms (by hand):"):
        start = out.index(section)
        for k in ("W1", "b1", "W2", "b2", "W3", "b3"):
            close(after(out, f"|∇{k} J| =", start=start), np.linalg.norm(grads[k]))

    # The differences that the program asserts on are printed, and tiny.
    assert after(out, "max |grad - Algorithm 6.4| =")[0] < 1e-12
    assert after(out, "max |grad(J6, wrt=…) - Algorithm 6.4| =")[0] < 1e-12
    assert after(out, "max |grad - Algorithm 6.4| (cross-entropy) =")[0] < 1e-12

    # Cross-entropy with a 2-logit output layer, gradients by finite differences.
    θc = {**θ, "W3": 0.5 * randn(8, 2, 4), "b3": np.zeros((2, 1))}
    T = np.eye(2)[(y.ravel() > 0).astype(int)]
    close(after(out, "Jc(θ) ="), mlp_cross_entropy(θc, X, T, lam))
    numeric = fd_grads(lambda p: mlp_cross_entropy(p, X, T, lam), θc)
    for k in ("W1", "W2", "W3"):
        close(after(out, f"|∇{k} Jc| ="), np.linalg.norm(numeric[k]), rtol=1e-6)


# ── xor.bp: §6.1, trained from a seed ────────────────────────────────────

def test_xor(run):
    out = run("xor.bp")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    W, c, w, b = randn(31, 2, 2), np.full(2, 0.1), randn(32, 2), 0.0
    lr, steps = 0.1, 2000

    def forward(W, c, w, b):
        a = X @ W + c
        return a, np.maximum(a, 0) @ w + b

    losses = [np.mean((forward(W, c, w, b)[1] - y) ** 2)]
    for _ in range(steps):                     # gradient descent, backprop by hand
        a, p = forward(W, c, w, b)
        g = 2 * (p - y) / 4
        gh = np.outer(g, w) * (a > 0)          # relu'(a), 0 at the kink
        W, c, w, b = (W - lr * X.T @ gh, c - lr * gh.sum(0),
                      w - lr * np.maximum(a, 0).T @ g, b - lr * g.sum())
        losses.append(np.mean((forward(W, c, w, b)[1] - y) ** 2))
    p = forward(W, c, w, b)[1]

    close(after(out, "Figure 6.3 solution:", 4), y)
    start, final = after(out, "loss: start", 3)[[0, 2]]
    close(start, losses[0])
    assert after(out, "loss: start", 3)[1] == steps
    assert final < 1e-20 and losses[-1] < 1e-20
    close(after(out, "learned θ: {W:", 4), W, rtol=1e-6, atol=1e-9)
    close(after(out, "w:", 2), w, rtol=1e-6, atol=1e-9)
    close(after(out, "predictions:", 4), p, atol=1e-9)
    assert np.all(np.abs(p - y) < 0.1)
    assert "losses" in out and "┤" in out            # the loss curve was drawn


# ── newton.bp: Newton's method on Rosenbrock ─────────────────────────────

def test_newton(run):
    out = run("newton.bp")

    def f(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    def gradient(x):
        return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                         200 * (x[1] - x[0] ** 2)])

    def hessian(x):
        return np.array([[2 - 400 * x[1] + 1200 * x[0] ** 2, -400 * x[0]],
                         [-400 * x[0], 200.0]])

    x = np.array([-1.2, 1.0])
    close(after(out, "H(x0) =", 4), hessian(x))
    close(after(out, "step 0 x =", 3), [*x, f(x)])
    for k in range(1, 26):
        step = np.linalg.solve(hessian(x), gradient(x))
        x = x - step
        printed = after(out, f"step {k} x =", 4)      # x, f(x), |Δx|
        close(printed[:2], x, rtol=1e-6, atol=1e-9)
        close(printed[2], f(x), rtol=1e-5, atol=1e-20)
        # the last step is at the level of rounding errors near x* = (1, 1)
        close(printed[3], np.linalg.norm(step), rtol=1e-5, atol=1e-12)
        if np.linalg.norm(step) < 1e-9:
            break
    assert np.max(np.abs(x - 1)) < 1e-10
    assert f"step {k + 1} x =" not in out
    assert after(out, "in", 1, start=out.index("converged to [1, 1]"))[0] == k
    assert after(out, "max |x - (1, 1)| =")[0] < 1e-10
    close(after(out, "H(x*) =", 4), hessian(np.ones(2)))
    close(after(out, "det =")[0], np.linalg.det(hessian(np.ones(2))))


# ── logistic_regression.bp ───────────────────────────────────────────────

def test_logistic_regression(run):
    out = run("logistic_regression.bp")
    n = 50
    X = np.concatenate([randn(1, n, 2) + [-1.5, -1], randn(2, n, 2) + [1.5, 1]])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    w, b = np.zeros(2), 0.0

    def loss(w, b):                              # mean binary cross-entropy
        p = 1 / (1 + np.exp(-(X @ w + b)))
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    def gradient(w, b):
        r = 1 / (1 + np.exp(-(X @ w + b))) - y
        return X.T @ r / len(y), np.mean(r)

    close(after(out, "initial loss:"), np.log(2))
    for _ in range(200):
        gw, gb = gradient(w, b)
        w, b = w - 0.5 * gw, b - 0.5 * gb
    accuracy = np.mean((X @ w + b > 0) == y)

    close(after(out, "w =", 2), w)
    close(after(out, "b =")[0], b)
    close(after(out, "final loss:"), loss(w, b))
    close(after(out, "training accuracy:"), accuracy)
    assert accuracy >= 0.9
    gw, gb = gradient(w, b)
    close(after(out, "|∇w J| ="), np.linalg.norm(gw), rtol=1e-5)
    close(after(out, "|∇b J| ="), abs(gb), rtol=1e-5)


# ── rnn.bp: backprop through three unrolled steps ────────────────────────

def test_rnn(run):
    out = run("rnn.bp")
    xs = randn(1, 3, 2)
    target = np.array([0.5, -0.5, 0.25])
    W0, U0, b0 = 0.5 * randn(2, 3, 3), 0.5 * randn(3, 3, 2), 0.1 * randn(4, 3)

    def last_state(W, U, b):
        h = np.zeros(3)
        for t in range(3):
            h = np.tanh(W @ h + U @ xs[t] + b)
        return h

    def L(W, U, b):
        return np.sum((last_state(W, U, b) - target) ** 2)

    close(after(out, "h⁽³⁾ =", 3), last_state(W0, U0, b0))
    close(after(out, "L =", 1), L(W0, U0, b0))
    close(after(out, "∂L/∂W =", 9), fd_grad(lambda W: L(W, U0, b0), W0), rtol=1e-6, atol=1e-8)
    close(after(out, "∂L/∂U =", 6), fd_grad(lambda U: L(W0, U, b0), U0), rtol=1e-6, atol=1e-8)
    close(after(out, "∂L/∂b =", 3), fd_grad(lambda b: L(W0, U0, b), b0), rtol=1e-6, atol=1e-8)
    errors = after(out, "gradcheck relative errors: W", 3)
    assert np.all(errors < 1e-6)


# ── the derivatives of tanh: higher_order.bp, fig6_10.bp, tour.bp ────────

def tanh_derivatives(x, n):
    """d^k/dx^k tanh(x) for k = 1..n, as polynomials in t = tanh(x):
    d/dx p(t) = p'(t) (1 - t²)."""
    t = np.tanh(x)
    p = np.polynomial.Polynomial([0, 1])              # tanh itself
    out = []
    for _ in range(n):
        p = p.deriv() * np.polynomial.Polynomial([1, 0, -1])
        out.append(p(t))
    return np.array(out)


def test_higher_order(run):
    out = run("higher_order.bp")
    expected = tanh_derivatives(0.5, 8)
    for k in range(1, 9):
        close(after(out, f"d {k} :"), expected[k - 1])
    for label in ("tanh", "diff(tanh)", "diff(tanh, 2)"):
        assert label in out
    assert "┤" in out                                # the plot was drawn


def test_fig6_10(run):
    out = run("fig6_10.bp")
    w = 0.5
    x = np.tanh(w)
    yy = np.tanh(x)
    z = np.tanh(yy)
    dz = (1 - z ** 2) * (1 - yy ** 2) * (1 - x ** 2)
    close(after(out, "z(0.5) ="), z)
    close(after(out, "grad(z)(0.5) ="), dz)
    close(after(out, "by hand:"), dz)
    assert "diff(tanh, 2)" in out and "┤" in out   # the plot was drawn


def test_tour(run):
    out = run("tour.bp")
    close(after(out, "f(2) ="), 4 * np.sin(2))
    close(after(out, "newton_sqrt([2, 9]) =", 2), np.sqrt([2, 9]))
    assert "all assertions passed" in out


# ── minibatch_mlp.bp: minibatch SGD with dynamic slices ──────────────────

def test_minibatch_mlp(run):
    out = run("minibatch_mlp.bp")
    N, B, K = 240, 24, 3
    # The data and the initial model, from the same seeds (bp's rand(n, seed=k) is
    # np.random.default_rng(k).random(n)): epoch 0's numbers by hand.
    labels = np.floor(K * np.random.default_rng(1).random(N)).astype(int)
    centres = np.array([[2, 0], [-1, 1.7], [-1, -1.7]])
    X = centres[labels] + 0.8 * randn(2, N, 2)
    W1, W2 = 0.5 * randn(3, 2, 16), 0.5 * randn(4, 16, K)
    z = np.tanh(X @ W1) @ W2
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    loss0 = -logp[np.arange(N), labels].mean()
    close(after(out, "epoch 0 loss", 2), [loss0, np.mean(z.argmax(axis=1) == labels)])
    chance = np.bincount(labels).max() / N            # always guessing the commonest class
    assert chance < 0.4
    # training: the loss falls and the accuracy ends far above chance
    losses = [after(out, f"epoch {e} loss")[0] for e in (0, 5, 10, 15, 20)]
    accuracy = after(out, "epoch 20 loss", 2)[1]
    assert losses[-1] < losses[0] / 10 and losses[-1] <= min(losses)
    assert accuracy > 0.9 > chance + 0.5
    assert round(accuracy * N) == pytest.approx(accuracy * N, abs=1e-5)   # a count of examples
    # the gradient of one minibatch's loss wrt the data lives on that minibatch's rows
    close(after(out, "gradient outside rows", 3), [3 * B, 4 * B - 1, 0])
    close(after(out, "gradient inside:"), 1)
