"""What a call of a bp function from Python keeps doing on its direct path (the plan
found in the cache and run straight on the arrays, dsl/interpreter.py BpFunction), and
what the generated code's run keeps doing around the plan (dsl/evaluate.py): NumPy's
floating-point state and Python's warnings as the caller had them, results read-only
and the caller's own, errors located, globals and engines seen.  Issue 19 made these
paths cheaper; these tests say what the cheaper paths must still do (no timings here:
benchmarks/ measures)."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import dsl
from dsl import evaluate

CALLS = 4          # the first call lowers, the second compiles, later ones run the code


@pytest.fixture
def bp():
    return dsl.Interpreter(stdout=io.StringIO())


@pytest.mark.parametrize("src, x", [
    ("x -> x / 0", np.array([1.0, -1.0, 0.0])),          # divide and invalid
    ("x -> exp(x)", np.array([1000.0])),                  # overflow
    ("x -> x * 1e-320 * 1e-10", np.array([1.0])),         # underflow
    ("x -> sqrt(x) + log(x)", np.array([-1.0, 0.0])),     # invalid, divide
    ("x -> x / 0", np.asarray(1.0)),                      # the scalar fast path's refusals
    ("x -> log(x - 1)", 1.0),
])
def test_a_call_keeps_the_callers_floating_point_state(bp, src, x):
    f = bp.function(src)
    with np.errstate(all="raise"):                        # the caller's own state
        for _ in range(CALLS):
            got = f(x)
            assert np.geterr() == {"divide": "raise", "over": "raise", "under": "raise",
                                   "invalid": "raise"}
        with pytest.raises(FloatingPointError):           # and it is still in force
            np.divide(np.ones(1), 0.0)
    assert got.dtype == np.float64


def test_a_call_sees_a_changed_floating_point_state(bp):
    """The state a call enters is made from the caller's state at that call: a seterr
    or errstate between calls is what the next call starts from (and leaves)."""
    f = bp.function("x -> exp(x) / 0")
    x = np.array([1000.0, 1.0])
    old = np.seterr(all="warn")
    try:
        for mode in ("raise", "warn", "ignore", "print", "raise"):
            np.seterr(all=mode)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for _ in range(CALLS):
                    assert f(x).tolist() == [np.inf, np.inf]
            assert set(np.geterr().values()) == {mode}
    finally:
        np.seterr(**old)


@pytest.mark.parametrize("src", ["x -> x / 0", "x -> mean(x[0:0]) + x", "x -> log(x - 2)"])
def test_a_call_leaks_no_warnings(bp, src):
    f = bp.function(src)
    args = [np.array([1.0, 2.0])] + ([] if "[" in src else [np.asarray(1.0), 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = list(warnings.filters)
        for _ in range(CALLS):
            for x in args:
                f(x)
        assert warnings.filters == before              # the caller's filters unchanged


def test_results_are_read_only_and_the_callers_own(bp):
    for src in ("x -> x", "x -> (x, x)", "value_and_grad(x -> sum(x^2))", "x -> x[0]", "x -> 2"):
        f = bp.function(src)
        x = np.array([1.0, 2.0])
        kept = []
        for _ in range(CALLS):
            r = f(x)
            leaves = r if isinstance(r, tuple) else (r,)
            leaves = [a for v in leaves for a in (v if isinstance(v, tuple) else (v,))]
            for a in leaves:
                assert isinstance(a, np.ndarray) and a.dtype == np.float64
                assert not a.flags.writeable
                assert not np.shares_memory(a, x)
                assert all(not np.shares_memory(a, k) for k in kept), "a later call reused a result"
            kept += leaves
        assert x.flags.writeable and x.tolist() == [1.0, 2.0]


def test_floats_lists_and_zero_d_arrays_call_the_same_plan(bp):
    bp.exec("def g(x) = sin(x) * x + 1")
    g = bp.function("g")
    want = np.sin(1.5) * 1.5 + 1
    for arg in (1.5, np.asarray(1.5), np.float64(1.5), 1.5, [1.5][0], np.asarray(1.5)):
        got = g(arg)
        assert got.shape == () and float(got) == want
    assert len(bp._plans) == 1                          # one plan for all of them
    assert g([1.5, 2.0]).tolist() == [want, np.sin(2.0) * 2.0 + 1]
    assert g(np.asarray(1.5, dtype=np.float32)).shape == ()


def test_keywords_records_and_tuples_on_the_direct_path(bp):
    bp.exec("def h(a, b=1) = a * b")
    h = bp.function("h")
    s = bp.function("p -> p.w * p.t[0] + p.t[1]")
    for _ in range(CALLS):
        assert h(2.0, b=3.0).tolist() == 6.0
        assert h(np.array([1.0, 2.0]), b=np.array([3.0, 4.0])).tolist() == [3.0, 8.0]
        assert h(2.0).tolist() == 2.0
        assert s({"w": np.array([1.0, 2.0]), "t": (3.0, 1.0)}).tolist() == [4.0, 7.0]


def test_a_changed_global_makes_a_new_plan(bp):
    bp["a"] = 1.0
    f = bp.function("x -> x + a")
    for _ in range(CALLS):
        assert float(f(1.0)) == 2.0
    bp["a"] = 5.0
    for _ in range(CALLS):
        assert float(f(1.0)) == 6.0
    bp.exec("def a2(x) = 2 * x")
    g = bp.function("x -> a2(x)")
    for _ in range(CALLS):
        assert float(g(1.0)) == 2.0
    bp.exec("def a2(x) = 3 * x")
    assert float(g(1.0)) == 3.0


def test_a_failure_on_the_direct_path_is_a_located_error(bp):
    bp.exec("def f(A) = sum(inv(A))")
    f = bp.function("f")
    for _ in range(CALLS):
        f(np.eye(2))
    with pytest.raises(dsl.BpError) as err:
        f(np.zeros((2, 2)))
    assert err.value.span is not None and err.value.source_line == "def f(A) = sum(inv(A))"
    assert float(f(np.eye(2))) == 2.0                   # and the session goes on


def test_a_host_failure_and_interrupt_on_the_direct_path(bp):
    calls = []

    def boom(x):
        calls.append(x)
        if len(calls) > CALLS:
            raise KeyboardInterrupt
        return x

    bp.define("boom", boom)
    f = bp.function("x -> boom(x) * 2")
    for _ in range(CALLS):
        f(np.ones(2))
    with pytest.raises(KeyboardInterrupt):
        f(np.ones(2))
    assert not bp._interrupt.is_set()
    bp.interrupt()                                       # while idle: not carried over
    calls.clear()
    assert f(np.ones(2)).tolist() == [2.0, 2.0]


def test_no_step_plans_copy_their_inputs(bp):
    f = bp.function("(x, y) -> (y, x)")
    x, y = np.array([1.0]), np.array([2.0])
    for _ in range(CALLS):
        a, b = f(x, y)
        assert a.tolist() == [2.0] and b.tolist() == [1.0]
        assert not np.shares_memory(a, y) and not np.shares_memory(b, x)


@pytest.mark.parametrize("m, n", [(1, 1), (3, 5), (300, 40)])
def test_an_outer_product_matmul_is_numpys_bit_for_bit(m, n):
    """matmul with an inner dimension of 1 runs as a product (gemm is slow there); the
    result is np.matmul's to the bit, signed zeros included (matmul sums from +0)."""
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-320, -1e300, 1e300])
    a = rng.choice(np.concatenate([special, rng.standard_normal(8)]), size=(m, 1))
    b = rng.choice(np.concatenate([special, rng.standard_normal(8)]), size=(1, n))
    bp = dsl.Interpreter()
    f = bp.function("(a, b) -> a @ b")
    with np.errstate(all="ignore"):
        want = np.matmul(a, b)
    for _ in range(CALLS):
        got = f(a, b)
        assert got.tobytes() == want.tobytes()
    plan = next(iter(bp._plans.values()))[0]
    assert len(plan) == 1 and getattr(plan.steps[0][0], "bp_outer", False) == (m * n >= evaluate.OUTER_MIN)


# ── long plans: chunks of the same structure share their code ────────────

def _chain(n: int) -> str:
    body = "\n".join(f"    t{i + 1} = tanh(t{i}) * 0.5 + t{i}^2" for i in range(n))
    return f"def f(t0) {{\n{body}\n    return t{n}\n}}\n"


@pytest.mark.parametrize("name", ["scalar", "generated"])
def test_chunks_of_one_structure_share_their_code_and_keep_the_bits(name, monkeypatch):
    from test_engine import engine
    monkeypatch.setattr(evaluate, "CHUNK", 60)
    bp = dsl.Interpreter()
    bp.exec(_chain(400))
    results = {}
    for eng in ("plain", name):
        with engine(eng):
            for src, x in (("f", np.asarray(0.3)), ("f", np.array([0.1, -0.2])), ("grad(f)", np.asarray(0.3))):
                f = bp.function(src)
                for _ in range(CALLS):
                    got = f(x)
                results[eng, src, x.shape] = got.tobytes()
    assert all(results["plain", k[1], k[2]] == v for k, v in results.items())
    for entry in bp._plans.values():
        gen = entry[0]._compiled.get(name == "scalar")
        codes = {fn.__code__ for fn, _ in gen.chunks}
        assert len(gen.chunks) >= 8 and len(codes) <= len(gen.chunks) // 2, (len(gen.chunks), len(codes))


def test_an_error_in_a_shared_chunk_is_located_at_its_own_step(monkeypatch):
    monkeypatch.setattr(evaluate, "CHUNK", 3)

    def step(x):
        if x >= 12.5:
            raise ValueError("too far")
        return x + 1

    bp = dsl.Interpreter()
    bp.define("step", step)
    n = 30
    lines = [f"    y{i + 1} = step(y{i})" for i in range(n)]
    bp.exec("def f(y0) {\n" + "\n".join(lines) + f"\n    return y{n}\n}}\n")
    f = bp.function("f")
    for _ in range(CALLS):
        assert float(f(-20.0)) == n - 20
    plan = next(iter(bp._plans.values()))[0]
    gen = plan._compiled[True]
    assert len({fn.__code__ for fn, _ in gen.chunks}) < len(gen.chunks)
    for x0, fails in ((0.5, 13), (5.5, 8), (-9.5, 23)):      # y_k = x0 + k; step(y_{k-1}) fails
        with pytest.raises(dsl.BpError, match="too far") as err:
            f(x0)
        assert err.value.source_line == f"    y{fails} = step(y{fails - 1})", err.value.source_line
