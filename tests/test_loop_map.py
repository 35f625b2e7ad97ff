"""Loops whose iterations do not depend on one another, run at once (dsl/loop_map.py).

Inputs have 300 elements or more: a loop of at most lower_loops.UNROLL_MAX constant
iterations is unrolled, not a loop node.  Each program is run twice, once as it is and once with the batched path switched off
(MIN_TRIPS beyond any trip count, so every iteration runs through the body's plan as
before): the values, gradients, Hessian-vector products and second derivatives must
agree, and the first run must really have been batched (a spy on loop_map.run).
The expected values of a few are also derived by hand with NumPy.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl
from dsl import loop_map


@pytest.fixture
def spy(monkeypatch):
    """Counts the loops loop_map ran at once (True) or handed back (False)."""
    seen: list[bool] = []
    real = loop_map.run

    def run(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out is not None)
        return out
    monkeypatch.setattr(loop_map, "run", run)
    return seen


def both(monkeypatch, source: str, expr: str, *args):
    """(the result as it is, the result one iteration at a time)."""
    bp = dsl.Interpreter()
    bp.exec(source)
    fast = bp.function(expr)(*args)
    with monkeypatch.context() as m:
        m.setattr(loop_map, "MIN_TRIPS", 10 ** 12)
        slow_bp = dsl.Interpreter()
        slow_bp.exec(source)
        slow = slow_bp.function(expr)(*args)
    return fast, slow


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max(initial=0))), (a, b)


ROSEN = """
def rosen(x) {
    s = 0
    for i in range(size(x) - 1) {
        s = s + 100 * (x[i + 1] - x[i]^2)^2 + (1 - x[i])^2
    }
    return s
}
"""


def rosen_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_hvp(x, v):
    """H v of the Rosenbrock sum, by hand: H is tridiagonal."""
    n = len(x)
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    off = -400 * x[:-1]
    return d * v + np.r_[off * v[1:], 0] + np.r_[0, off * v[:-1]]


def test_rosenbrock_value_gradient_hvp_by_hand(monkeypatch, spy):
    x = np.linspace(-1.2, 1.3, 1000)
    v = np.cos(np.arange(1000.0))
    value, _ = both(monkeypatch, ROSEN, "rosen", x)
    want = np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    close(value, want)
    g, g_slow = both(monkeypatch, ROSEN, "grad(rosen)", x)
    close(g, rosen_grad(x))
    close(g_slow, rosen_grad(x))
    h, h_slow = both(monkeypatch, ROSEN, "hvp(rosen)", x, v)
    close(h, rosen_hvp(x, v), 1e-10)
    close(h_slow, h, 1e-10)
    assert any(spy)


SHAPES = """
def f(x, w) {
    a = zeros(shape(w))
    b = 0
    c = 1
    last = 0
    for i in range(size(x)) {
        a = a + w * sin(x[i])
        b = b - x[i]^2 + 3 - exp(-x[i])
        last = x[i] * 2
        c = c
    }
    return sum(a) + b + last + c
}
"""


@pytest.mark.parametrize("expr", ["f", "grad(f)", "grad(f, wrt=1)", "hvp(x -> f(x, w0))"])
def test_sum_last_keep_and_broadcast_terms_match_the_plain_loop(monkeypatch, spy, expr):
    x = np.linspace(-1, 2, 300)
    w = np.array([[0.5, -1.0, 2.0]])
    src = SHAPES + "w0 = [[0.5, -1.0, 2.0]]\n"
    args = (x, np.sin(3 * x)) if "x ->" in expr else (x, w)
    fast, slow = both(monkeypatch, src, expr, *args)
    close(fast, slow)
    assert spy and spy[0]


def test_sum_last_keep_by_hand(monkeypatch):
    x = np.linspace(-1, 2, 300)
    w = np.array([[0.5, -1.0, 2.0]])
    value, _ = both(monkeypatch, SHAPES, "f", x, w)
    want = np.sum(w) * np.sin(x).sum() + np.sum(-x ** 2 + 3 - np.exp(-x)) + 2 * x[-1] + 1
    close(value, want)


def test_chunks_and_a_padded_last_chunk(monkeypatch, spy):
    monkeypatch.setattr(loop_map, "CHUNK_ELEMENTS", 64)     # 1000 iterations: 16 chunks, the last short
    x = np.linspace(-1.2, 1.3, 1000)
    g, _ = both(monkeypatch, ROSEN, "grad(rosen)", x)
    close(g, rosen_grad(x))
    assert any(spy)


RECURRENCE = """
def horner(c, t) {
    s = 0
    for i in range(size(c)) {
        s = s * t + c[i]
    }
    return s
}
"""


def test_a_real_recurrence_runs_one_iteration_at_a_time(monkeypatch, spy):
    c = np.array([1.0, -2.0, 0.5, 3.0, 1.5] * 60)
    t = 0.7
    value, slow = both(monkeypatch, RECURRENCE, "horner", c, t)
    close(value, np.polyval(c, t))
    close(slow, value)
    d, _ = both(monkeypatch, RECURRENCE, "grad(horner, wrt=1)", c, t)
    close(d, np.polyval(np.polyder(c), t), 1e-10)
    assert spy and not any(spy)


BREAK = """
def until(x) {
    s = 0
    for i in range(size(x)) {
        if x[i] > 0.5 { break }
        s = s + x[i]^2
    }
    return s
}
"""


def test_a_loop_with_break_is_not_batched(monkeypatch, spy):
    x = np.linspace(0, 1, 50)
    value, _ = both(monkeypatch, BREAK, "until", x)
    close(value, np.sum(x[x <= 0.5] ** 2))
    assert not any(spy)


def test_tapes_of_carried_values_are_their_values_before_each_iteration(monkeypatch, spy):
    # grad of a product of a sum and a last value: the adjoint reads both tapes
    src = """
def f(x) {
    s = 1
    p = 0
    for i in range(size(x)) {
        s = s + x[i]^2
        p = x[i]
    }
    return s * p
}
def g(x) {
    s = 1
    q = 0
    for i in range(size(x)) {
        q = q + s * x[i]
        s = s + x[i]^2
    }
    return q
}
"""
    x = np.linspace(-1, 1, 300)
    fast, slow = both(monkeypatch, src, "grad(f)", x)
    want = 2 * x * x[-1]
    want[-1] += 1 + np.sum(x ** 2)
    close(fast, want)
    close(slow, want)
    fast, slow = both(monkeypatch, src, "grad(g)", x)
    close(fast, slow)                   # q reads s: that loop runs one iteration at a time


def test_errors_inside_a_batched_loop_are_the_plain_loops(monkeypatch):
    src = """
def f(x) {
    s = 0
    for i in range(size(x)) { s = s + x[i + 1] }
    return s
}
"""
    bp = dsl.Interpreter()
    bp.exec(src)
    with pytest.raises(dsl.BpError) as err:
        bp.exec("f(linspace(0, 1, 300))")
    assert "index 300" in str(err.value) and err.value.span is not None


def test_a_carried_value_that_would_change_shape_is_still_an_error():
    # a runtime count (n a parameter): a loop node, whose carried values keep their shapes
    bp = dsl.Interpreter()
    bp.exec("""
def f(x, n) {
    s = 0
    for i in range(n) { s = s + x[i:i + 2] }
    return s
}
""")
    with pytest.raises(dsl.BpError) as err:
        bp.exec("f(linspace(0, 1, 300), 299)")
    assert "shape" in str(err.value) and err.value.span is not None


@pytest.mark.parametrize("names", [("k", "T"), ("i", "s"), ("c", "τ"), ("sum", "lambda")])
def test_names_are_data(monkeypatch, spy, names):
    acc, var = names
    if acc in ("sum", "lambda"):
        acc = f"{acc}_"
    src = f"""
def f(x, T0) {{
    {acc} = T0
    for {var} in range(size(x)) {{ {acc} = {acc} + x[{var}] * T0 }}
    return {acc}
}}
"""
    x = np.linspace(0, 1, 300)
    fast, slow = both(monkeypatch, src, "grad(f)", x, 2.0)
    close(fast, np.full(300, 2.0))
    close(slow, fast)
    assert spy and spy[0]


def test_iteration_cap_still_applies(monkeypatch):
    bp = dsl.Interpreter(max_iterations=100)
    bp.exec("""
def f(x, n) {
    s = 0
    for i in range(n) { s = s + x[i] }
    return s
}
""")
    x = np.linspace(0, 1, 300)
    f = bp.function("f")
    assert float(f(x, 100)) == pytest.approx(x[:100].sum())
    with pytest.raises(dsl.BpError) as err:
        f(x, 101)
    assert "max_iterations" in str(err.value)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_take_batched_over_its_indices(axis):
    """take's batching rule with the indices batched (a loop's x[k] at k = 0, 1, …)
    against NumPy's take row by row."""
    from dsl.batching import batch_map
    from dsl.evaluate import Plan
    from dsl.graph import make_input
    from dsl.ops import apply
    X = np.arange(24.0).reshape(2, 3, 4)
    x, k = make_input("x", X.shape), make_input("k", (2,))
    kb = make_input("k", (5, 2))
    (out, batched), = batch_map([apply("take", [x, k], {"axis": axis})], {id(k): kb}, 5,
                                broadcast=False)
    K = np.array([[0, 1], [1, 0], [1, 1], [0, 0], [1, 0]], dtype=float)
    got = Plan([kb, x], [out]).run([K, X])[0]
    want = np.stack([np.take(X, K[i].astype(int), axis=axis) for i in range(5)])
    assert batched and np.array_equal(got, want)


def test_a_loop_over_size_x_prints_lists_and_exports_at_unknown_shapes(tmp_path, monkeypatch):
    """size(x) of a parameter without an annotation is a node (size_of), so a loop over
    it is a loop node with a runtime count: the function prints from its graph, `graph`
    lists it, and it and its gradient export and run in a fresh process."""
    import subprocess
    import sys
    bp = dsl.Interpreter()
    bp.exec("""
def r(x) {
    s = 0
    for i in range(size(x) - 1) { s = s + (x[i + 1] - x[i])^2 }
    return s
}
""")
    printed = bp.format(bp.eval("r"))
    assert "for i in range(t1)" in printed and "size(x) - 1" in printed
    again = dsl.Interpreter()
    again.exec(f"r2 = {printed}")
    x = np.array([1.0, 2.0, 4.0, 3.5])
    assert float(again.function("r2")(x)) == pytest.approx(np.sum(np.diff(x) ** 2))
    listing = str(bp.graph("r"))
    assert "loop1" in listing and "size(x)" in listing
    monkeypatch.chdir(tmp_path)
    bp.exec('export r to "r.py"\nexport grad(r) to "gr.py"')
    out = subprocess.run([sys.executable, "-I", "-c",
                          "import sys, numpy as np; sys.path.insert(0, '.'); import r, gr; "
                          "x = np.array([1.0, 2.0, 4.0, 3.5]); "
                          "print(float(r.r(x)), gr.grad_r(x).tolist())"],
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout.split(" ", 1)
    d = np.diff(x)
    want_g = np.zeros(4)
    want_g[1:] += 2 * d
    want_g[:-1] -= 2 * d
    assert float(out[0]) == pytest.approx(np.sum(d ** 2))
    assert np.allclose(eval(out[1]), want_g)
