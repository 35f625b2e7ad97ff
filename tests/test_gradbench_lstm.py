"""GradBench `lstm` (ADBench) through the protocol: benchmarks/gradbench/lstm.bp.

Inputs are made as upstream's generator describes them (evals/lstm/run.py): the
sequence is a text's characters, each written as its code point's binary digits
(ceil(log2(the largest code point)) of them, most significant first); state,
main_params and extra_params are uniform on [0, 1).  No text file is needed: the
texts are written here (any UTF-8 text will do).  The reference objective is
NumPy, written from upstream's C++ (cpp/gradbench/evals/lstm.hpp); the expected
gradient is its central finite differences, all coordinates at once (the NumPy
objective takes a stack of parameter sets), and at the eval's smallest size
(l = 2, c = 1024) a backpropagation written by hand, itself checked against the
finite differences.  Outputs are checked by the eval's rule and, because the
gradient's entries are small (below 0.1, many below 1e-5: the loss is a mean over
(c − 1)·b terms, and the eval's absolute 1e-4 cannot tell them from 0), also
relatively.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dsl
from tests.test_gradbench import ROOT, Eval, check

H = 1e-5            # central differences about 1e-10 off here (with 1e-6 about 1e-9: round-off)
ARRAYS = ("main_params", "extra_params", "state", "sequence")


def char_bits(text: str) -> np.ndarray:
    """One row per character: its code point's binary digits, as upstream's
    text_to_matrix writes them."""
    bits = math.ceil(math.log2(max(ord(ch) for ch in text)))
    return np.array([[int(d) for d in format(ord(ch), f"0{bits}b")] for ch in text], float)


def lstm_input(text: str, layers: int, seed: int) -> dict:
    sequence = char_bits(text)
    b = sequence.shape[1]
    rng = np.random.default_rng(seed)
    return {"main_params": rng.random((2 * layers, 4 * b)),
            "extra_params": rng.random((3, b)),
            "state": rng.random((2 * layers, b)),
            "sequence": sequence}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def objective(main, extra, state, sequence):
    """The ADBench LSTM loss; main [..., 2l, 4b] and extra [..., 3, b] may carry
    leading axes (one loss per parameter set)."""
    c, b = sequence.shape
    layers = main.shape[-2] // 2
    hidden = [state[2 * j] for j in range(layers)]
    cell = [state[2 * j + 1] for j in range(layers)]
    total = 0.0
    for t in range(c - 1):
        x = sequence[t] * extra[..., 0, :]
        for j in range(layers):
            w, bias = main[..., 2 * j, :], main[..., 2 * j + 1, :]
            forget = sigmoid(x * w[..., :b] + bias[..., :b])
            ingate = sigmoid(hidden[j] * w[..., b:2 * b] + bias[..., b:2 * b])
            outgate = sigmoid(x * w[..., 2 * b:3 * b] + bias[..., 2 * b:3 * b])
            change = np.tanh(hidden[j] * w[..., 3 * b:] + bias[..., 3 * b:])
            cell[j] = cell[j] * forget + ingate * change
            hidden[j] = outgate * np.tanh(cell[j])
            x = hidden[j]
        ypred = x * extra[..., 1, :] + extra[..., 2, :]
        ynorm = ypred - np.log(np.sum(np.exp(ypred), axis=-1, keepdims=True) + 2)
        total = total + np.sum(sequence[t + 1] * ynorm, axis=-1)
    return -total / ((c - 1) * b)


def fd_jacobian(inp: dict) -> np.ndarray:
    """Central differences of `objective` in main_params then extra_params, each
    flattened row by row: the eval's layout."""
    main, extra = inp["main_params"], inp["extra_params"]
    theta = np.concatenate([main.ravel(), extra.ravel()])
    steps = H * np.eye(theta.size)
    thetas = np.concatenate([theta + steps, theta - steps])
    values = objective(thetas[:, :main.size].reshape(-1, *main.shape),
                       thetas[:, main.size:].reshape(-1, *extra.shape),
                       inp["state"], inp["sequence"])
    return (values[:theta.size] - values[theta.size:]) / (2 * H)


def hand_jacobian(main, extra, state, sequence) -> np.ndarray:
    """The same gradient by backpropagation derived by hand (the chain rule through
    `objective`, step by step backward), in the eval's layout: a second reference,
    cheap enough for the eval's sizes."""
    c, b = sequence.shape
    layers = main.shape[0] // 2
    count = (c - 1) * b
    hidden = [state[2 * j] for j in range(layers)]
    cell = [state[2 * j + 1] for j in range(layers)]
    tape = []
    for t in range(c - 1):
        x = sequence[t] * extra[0]
        saved = []
        for j in range(layers):
            w, bias = main[2 * j], main[2 * j + 1]
            forget = sigmoid(x * w[:b] + bias[:b])
            ingate = sigmoid(hidden[j] * w[b:2 * b] + bias[b:2 * b])
            outgate = sigmoid(x * w[2 * b:3 * b] + bias[2 * b:3 * b])
            change = np.tanh(hidden[j] * w[3 * b:] + bias[3 * b:])
            new_cell = cell[j] * forget + ingate * change
            saved.append((x, hidden[j], cell[j], forget, ingate, outgate, change,
                          np.tanh(new_cell)))
            cell[j], hidden[j] = new_cell, outgate * np.tanh(new_cell)
            x = hidden[j]
        e = np.exp(x * extra[1] + extra[2])
        tape.append((saved, x, e / (e.sum() + 2)))
    g_main, g_extra = np.zeros_like(main), np.zeros_like(extra)
    g_hidden = [np.zeros(b) for _ in range(layers)]      # ∂loss/∂ the state after step t
    g_cell = [np.zeros(b) for _ in range(layers)]
    for t in range(c - 2, -1, -1):
        saved, top, soft = tape[t]
        g_ynorm = -sequence[t + 1] / count
        g_y = g_ynorm - g_ynorm.sum() * soft                # through y − log(Σ exp y + 2)
        g_extra[1] += g_y * top
        g_extra[2] += g_y
        g_x = g_y * extra[1]
        for j in range(layers - 1, -1, -1):
            x, h, s, forget, ingate, outgate, change, tanh_cell = saved[j]
            w = main[2 * j]
            g_h = g_hidden[j] + g_x
            g_s = g_cell[j] + g_h * outgate * (1 - tanh_cell ** 2)
            z_f = g_s * s * forget * (1 - forget)
            z_i = g_s * change * ingate * (1 - ingate)
            z_o = g_h * tanh_cell * outgate * (1 - outgate)
            z_c = g_s * ingate * (1 - change ** 2)
            g_main[2 * j] += np.concatenate([z_f * x, z_i * h, z_o * x, z_c * h])
            g_main[2 * j + 1] += np.concatenate([z_f, z_i, z_o, z_c])
            g_x = z_f * w[:b] + z_o * w[2 * b:3 * b]
            g_hidden[j] = z_i * w[b:2 * b] + z_c * w[3 * b:]
            g_cell[j] = g_s * forget
        g_extra[0] += g_x * sequence[t]
    return np.concatenate([g_main.ravel(), g_extra.ravel()])


def as_json(inp: dict) -> dict:
    return {k: v.tolist() for k, v in inp.items()}


@pytest.fixture(scope="module")
def tool():
    ev = Eval()
    assert ev.send({"kind": "start", "eval": "lstm"}).get("tool") == "bp"
    assert ev.define("lstm")["success"]
    yield ev
    assert ev.close() == 0


SENTENCE = "The loop over the sequence carries the state from one character to the next. "
CASES = [
    ("ab", 1),                     # one step, one layer
    ("naïve café", 2),             # 8 bits a character; 9 steps, unrolled (constant count)
    ("x—y", 1),                    # an em dash: 14 bits a character
    ((SENTENCE * 4)[:300], 3),     # 299 steps: a loop node and an adjoint loop
]


@pytest.mark.parametrize("text, layers", CASES, ids=lambda v: str(v)[:12])
def test_lstm_objective_and_jacobian(tool, text, layers):
    inp = lstm_input(text, layers, seed=len(text) + layers)
    c, b = inp["sequence"].shape
    assert c == len(text) and inp["main_params"].shape == (2 * layers, 4 * b)
    expected = objective(inp["main_params"], inp["extra_params"], inp["state"], inp["sequence"])
    out = tool.output("lstm", "objective", as_json(inp))
    check(out, float(expected))
    assert out == pytest.approx(float(expected), rel=1e-12)

    out = tool.output("lstm", "jacobian", as_json(inp))
    expected = fd_jacobian(inp)
    assert len(out) == 8 * layers * b + 3 * b
    check(out, expected)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_hand_jacobian_is_the_finite_differences():
    for text, layers in CASES:
        inp = lstm_input(text, layers, seed=7)
        np.testing.assert_allclose(hand_jacobian(*(inp[k] for k in ARRAYS)), fd_jacobian(inp),
                                   rtol=1e-6, atol=1e-9)


def test_lstm_at_the_evals_smallest_size(tool):
    """l = 2, c = 1024 (the eval's smallest workload) with 7-bit characters: the
    sequence loop is a loop node of 1023 iterations."""
    text = (SENTENCE * 14)[:1024]
    inp = lstm_input(text, 2, seed=2)
    assert inp["sequence"].shape == (1024, 7)
    args = [inp[k] for k in ARRAYS]
    check(tool.output("lstm", "objective", as_json(inp)), float(objective(*args)))
    out = tool.output("lstm", "jacobian", as_json(inp))
    expected = hand_jacobian(*args)
    check(out, expected)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-15)


def test_lstm_runs_min_runs(tool):
    inp = lstm_input("abc", 1, seed=0)
    response = tool.evaluate("lstm", "jacobian", as_json(inp), min_runs=3)
    assert response["success"]
    assert [t["name"] for t in response["timings"]].count("evaluate") == 3


def test_lstm_bad_inputs_are_answers(tool):
    inp = as_json(lstm_input("abcd", 2, seed=1))
    short_state = {**inp, "state": inp["state"][:2]}        # one layer's state for two
    response = tool.evaluate("lstm", "objective", short_state)
    assert not response["success"] and "lstm.bp" in response["error"]
    narrow = {**inp, "extra_params": [row[:-1] for row in inp["extra_params"]]}
    response = tool.evaluate("lstm", "jacobian", narrow)
    assert not response["success"] and "shape error" in response["error"]
    ragged = {**inp, "sequence": [[0.0, 1.0], [1.0]]}
    assert not tool.evaluate("lstm", "objective", ragged)["success"]
    missing = {k: v for k, v in inp.items() if k != "state"}
    assert not tool.evaluate("lstm", "objective", missing)["success"]
    # and the tool still answers
    check(tool.output("lstm", "objective", inp),
          float(objective(*(np.asarray(inp[k]) for k in ARRAYS))))


def test_lstm_sequence_loop_is_a_loop_node():
    """At the eval's lengths the loop over the sequence is one loop node, and the
    gradient's graph holds a loop over the iterates (the adjoint loop) too."""
    bp = dsl.Interpreter()
    bp.run_file(ROOT / "benchmarks" / "gradbench" / "lstm.bp")
    for c in (6, 300):
        bp.exec(f"def o{c}(m: [4, 12], e: [3, 3], s: [4, 3], q: [{c}, 3]) = "
                f"objective(m, e, s, q)")
        bp.exec(f"def j{c}(m: [4, 12], e: [3, 3], s: [4, 3], q: [{c}, 3]) = "
                f"jacobian(m, e, s, q)")
    headings = lambda name: [line.split(":")[0] for line in str(bp.graph(name)).splitlines()
                             if line.startswith("loop")]
    assert headings("o6") == []                       # 5 steps: unrolled
    assert headings("o300") == ["loop1"]
    assert headings("j300") == ["loop1", "loop2"]
