"""The evaluation engines give bit-for-bit the same results (issue 6, acceptance 3).

A plan runs in one of three ways (dsl/evaluate.py): the step loop (the
reference, `ENGINE = "plain"`), generated straight-line Python
("generated"), and generated code with the scalar fast path on Python
floats ("scalar", the default).  Here every engine runs from a plan's first
call (COMPILE_AFTER = 0) on the conformance programs of the shared suite and
on the functions of the property tests, and the results are compared byte
for byte: the same values, the same zeros' signs, the same nans.  The
generated engines also compute every large result into buffers the plan
owns; here every result that can go into a buffer does (BUFFER_MIN = 1), so
the reuse of buffers between steps and across calls is what is tested.
"""
from __future__ import annotations

import io
import math
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl
from dsl import evaluate, reroll
from dsl.values import Function, Record, leaves
from test_properties import A, B, X_SHAPE, Y_SHAPE, exprs, points, reductions

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
PROGRAMS = sorted(CONFORMANCE.glob("*.bp"))
FAST = ("generated", "scalar")
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@contextmanager
def engine(name: str, compile_after: int = 0, buffer_min: int | None = 1):
    """Run plans with one engine from their first call; by default every result
    that can go into a buffer of the plan does, however small."""
    saved = evaluate.ENGINE, evaluate.COMPILE_AFTER, evaluate.BUFFER_MIN, evaluate.STRICT
    evaluate.ENGINE, evaluate.COMPILE_AFTER, evaluate.BUFFER_MIN = name, compile_after, buffer_min
    evaluate.STRICT = True                  # a plan that fails to compile fails the test
    try:
        yield
    finally:
        evaluate.ENGINE, evaluate.COMPILE_AFTER, evaluate.BUFFER_MIN, evaluate.STRICT = saved


def exact(v) -> object:
    """A value as something == compares bit for bit (arrays by their bytes)."""
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, tuple):
        return tuple(exact(x) for x in v)
    if isinstance(v, (dict, Record)):
        return {k: exact(x) for k, x in v.items()}
    if callable(v) or isinstance(v, Function):
        return "function"
    return v


def same(a, b, what: str) -> None:
    if exact(a) != exact(b):
        raise AssertionError(f"{what}: the engines differ\n{a!r}\n{b!r}")


# ── the conformance programs ─────────────────────────────────────────────

def run_program(path: Path, name: str, tmp_path: Path, monkeypatch):
    """stdout (numbers at full precision), the error if any, and every global."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    bp = dsl.Interpreter(stdout=out, precision=17)
    error = None
    with engine(name):
        try:
            bp.run_file(path)
        except dsl.BpError as err:
            error = (err.kind, err.line, err.message)
    values = {n: exact(v) for n, v in bp.globals.items()}
    return out.getvalue(), error, values


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason=f"the conformance suite is not beside this "
                    f"clone (no {CONFORMANCE}); CI has it, in shared/")
def test_the_conformance_programs_are_found():
    assert len(PROGRAMS) >= 40, CONFORMANCE


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_conformance_programs_give_the_same_bits_with_every_engine(path, tmp_path, monkeypatch):
    reference = run_program(path, "plain", tmp_path, monkeypatch)
    for name in FAST:
        got = run_program(path, name, tmp_path, monkeypatch)
        assert got[0] == reference[0], f"{name}: printed output differs"
        assert got[1] == reference[1], f"{name}: error differs"
        assert got[2] == reference[2], f"{name}: globals differ"


# ── the property-test functions ──────────────────────────────────────────

def results(name: str, defs: str, calls: list[tuple[str, tuple]], repeat: int = 2):
    """Each call's results under one engine, through bp.function (the direct path,
    called `repeat` times) and bp.eval (the statement path)."""
    with engine(name):
        bp = dsl.Interpreter()
        bp["A"], bp["B"] = A, B
        bp.exec(defs)
        got = []
        for src, args in calls:
            fn = bp.function(src)
            got.append([exact(fn(*args)) for _ in range(repeat)])
            for i, a in enumerate(args):
                bp[f"arg{i}"] = a
            got.append(exact(bp.eval(f"{src}({', '.join(f'arg{i}' for i in range(len(args)))})")))
        return got


def check_engines(defs: str, calls: list[tuple[str, tuple]]) -> None:
    reference = results("plain", defs, calls)
    for name in FAST:
        got = results(name, defs, calls)
        for (src, _), r, g in zip([c for c in calls for _ in (0, 1)], reference, got):
            same(r, g, f"{name}: {src} with {defs}")


@SETTINGS
@given(exprs(("x",), matmul=False), st.floats(-1.5, 1.5, allow_nan=False))
def test_properties_scalar_functions_and_derivatives_same_bits(e, x):
    """0-d arguments: the plans run on Python floats in the scalar engine."""
    x0 = np.float64(x)
    check_engines(f"def f(x) = {e.text}",
                  [("f", (x0,)), ("grad(f)", (x0,)), ("diff(f, 2)", (x0,)), ("diff(f, 3)", (x0,))])


@SETTINGS
@given(exprs(("x",)), reductions, points(X_SHAPE))
def test_properties_vector_functions_and_derivatives_same_bits(e, reduce, x):
    check_engines(f"def f(x) = {reduce}({e.text})",
                  [("f", (x,)), ("value_and_grad(f)", (x,)), ("hessian(f)", (x,)),
                   ("hvp(f)", (x, np.cos(x)))])


@SETTINGS
@given(exprs(("x", "y")), reductions, points(X_SHAPE), points(Y_SHAPE))
def test_properties_two_argument_functions_same_bits(e, reduce, x, y):
    check_engines(f"def f(x, y) = {reduce}({e.text})",
                  [("grad(f, wrt=(x, y))", (x, y)), ("jvp(f)", (x, y, np.sin(x)))])


@SETTINGS
@given(exprs(("x",), vector=True), points(X_SHAPE), points((2,)))
def test_properties_vector_valued_functions_same_bits(e, x, u):
    check_engines(f"def f(x) = B @ ({e.text})",
                  [("f", (x,)), ("vjp(f)", (x, u)), ("jacobian(f)", (x,))])


def test_fixed_functions_same_bits():
    x = np.array([0.3, -1.2, 0.7])
    check_engines("def f(x) = logsumexp(tanh(x @ A) * x) + sum(log(1 + x^2) / (1 + x^2))\n"
                  "def s(t) = sin(t)^2 * exp(-t^3) / (1 + t^2) + sqrt(t^2 + 1) - abs(t) * t^4",
                  [("hessian(f)", (x,)), ("diff(s, 5)", (np.float64(0.4),)),
                   ("diff(tanh, 8)", (0.5,)), ("grad(s)", (-0.0,))])


# ── the scalar fast path where floats and NumPy part ways ────────────────

@pytest.mark.parametrize("src, x", [
    ("t -> 1 / t", 0.0), ("t -> -1 / t", 0.0), ("t -> t / t", 0.0), ("t -> sqrt(t)", -1.0),
    ("t -> log(t) * t", 0.0), ("t -> t^2 * 1e200", 1e200), ("t -> t^3", -1e120),
    ("t -> t^0.5 + t^-1", -4.0), ("t -> (-8)^t", 1 / 3), ("t -> where(t > 0, t, -t) * sign(t)", -0.0),
    ("t -> maximum(t, 0 / t) + minimum(t, 1)", 0.0), ("t -> exp(t) - exp(t)", 1000.0),
    ("t -> (t == t) + (t != t) + (not t) + (t and 1) + (t or 0) + abs(t) * t", float("nan")),
])
def test_scalar_edge_cases_same_bits(src, x):
    """Division by zero, domain errors and overflow: floats raise or differ where
    NumPy gives inf or nan; the plan runs again without the fast path."""
    check_engines(f"f = {src}", [("f", (x,)), ("grad(f)", (x,))])


def test_element_reads_of_a_vector_in_a_loop_same_bits():
    src = ("def rosen(x) { s = 0; for i in range(9) { s = s + 100 * (x[i + 1] - x[i]^2)^2 "
           "+ (1 - x[i])^2 }; return s }\n"
           "def m(X) = X[1, 2] * X[0, 0] - X[-1, -1]^3")
    x = np.linspace(-1.2, 1.3, 10)
    check_engines(src, [("grad(rosen)", (x,)), ("grad(m)", (np.arange(12.0).reshape(3, 4),))])


# ── generated code: chunks, errors, interrupts, freshness ────────────────

def test_long_plans_run_in_chunks_and_beyond_the_limit_by_the_loop(monkeypatch):
    src = "def f(x) { y = x; for i in range(300) { y = sin(y) * 0.5 + y^2 * 0.25 }; return y }"
    x = np.array([0.1, 0.2])
    monkeypatch.setattr(evaluate, "CHUNK", 37)                  # many chunk boundaries
    check_engines(src, [("f", (x,)), ("grad(f)", (np.float64(0.3),))])
    monkeypatch.setattr(evaluate, "MAX_GENERATED", 100)         # too long: the loop runs it
    check_engines(src, [("f", (x,))])


def test_a_100k_step_plan_runs():
    bp = dsl.Interpreter(max_unroll=200_000, max_nodes=1_000_000)
    # nested: a constant count of at most 64 unrolls (a longer one is a loop node)
    bp.exec("def f(x) { y = x; for i in range(50) { for j in range(50) { for k in range(20) "
            "{ y = sin(y) + x } } }; return y }")
    f = bp.function("f")
    with engine("plain"):
        reference = f(0.5)
    with engine("scalar"):
        assert exact(f(0.5)) == exact(f(0.5)) == exact(reference)
    plan = max((entry[0] for entry in bp._plans.values()), key=len)
    assert len(plan) >= 100_000 and plan._compiled[True] is not None


@pytest.mark.parametrize("name", ("plain",) + FAST)
def test_kernel_errors_are_located_the_same_with_every_engine(name):
    bp = dsl.Interpreter()
    bp.exec("def g(M) {\n  N = M @ M\n  return inv(N - N)\n}")
    g = bp.function("g")
    with engine(name):
        for _ in range(2):
            with pytest.raises(dsl.BpValueError) as info:
                g(np.eye(2))
            assert info.value.line == 3 and "inv" in info.value.message
        np.testing.assert_array_equal(bp.function("M -> M @ M")(np.eye(2)), np.eye(2))


@pytest.mark.parametrize("name", ("plain",) + FAST)
def test_results_are_fresh_arrays(name):
    bp = dsl.Interpreter()
    x = np.array([1.0, 2.0])
    with engine(name):
        for src in ("x -> x", "x -> x[0:1]", "x -> reshape(x, [2, 1])", "x -> [3, 4]", "x -> (x, x * 2)"):
            f = bp.function(src)
            first, second = f(x), f(x)
            for a, b in zip(leaves(first), leaves(second)):
                assert a is not b and not np.shares_memory(a, x) and not np.shares_memory(a, b)
                assert not a.flags.writeable                 # as Interpreter.to_python gives them
        assert x.flags.writeable
        x[0] = 5.0
        assert bp.function("x -> x * 1")(x).tolist() == [5.0, 2.0]


def test_the_direct_path_follows_globals_and_argument_shapes():
    bp = dsl.Interpreter()
    bp.exec("k = 2\ndef g(x) = k * x")
    g = bp.function("grad(x -> sum(g(x)))")
    h = bp.function("g")
    assert g(np.ones(2)).tolist() == [2, 2] and float(h(3.0)) == 6
    bp.exec("k = 10")
    assert g(np.ones(3)).tolist() == [10, 10, 10] and float(h(3.0)) == 30
    assert h(np.ones(2)).tolist() == [10, 10] and float(h(3)) == 30


def test_generated_source_holds_only_slot_names():
    with pytest.raises(dsl.BpError):
        evaluate._check_source("def chunk(env, flag):\n    v1 = __import__(env)\n")
    with pytest.raises(dsl.BpError):
        evaluate._check_source("def chunk(env, flag):\n    v1 = 'text'\n")
    evaluate._check_source("def chunk(env, flag):\n    v0 = env[0]\n    v1 = k1(v0, c2)\n")


def test_the_engine_flag_selects_the_loop():
    bp = dsl.Interpreter()
    f = bp.function("x -> sin(x) * 2")
    with engine("plain"):
        f(1.0), f(1.0)
    plan = next(iter(bp._plans.values()))[0]
    assert plan._compiled == {}
    with engine("scalar"):
        f(1.0)
    assert plan._compiled[True].floats
    assert re.match(r"<bp plan", plan._compiled[True].chunks[0][0].__code__.co_filename)


def test_buffers_are_reused_across_calls_and_results_stay_the_callers():
    """An MLP step at a size where the plan owns its buffers (the default threshold):
    the same bits as the loop, and what one call returned is not changed by the next."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(64, 200)), np.eye(10)[rng.integers(0, 10, 64)]
    params = [rng.normal(size=s) * 0.1 for s in ((200, 128), (128,), (128, 10), (10,))]
    src = ("def loss(W1, b1, W2, b2) {\n  H = tanh(X @ W1 + b1)\n  Z = H @ W2 + b2\n"
           "  return mean(logsumexp(Z, axis=1) - sum(Y * Z, axis=1)) + 1e-4 * sum(W1^2)\n}")
    got = {}
    for name in ("plain",) + FAST:
        with engine(name, buffer_min=evaluate.BUFFER_MIN):
            bp = dsl.Interpreter()
            bp["X"], bp["Y"] = X, Y
            bp.exec(src)
            f = bp.function("value_and_grad(loss, wrt=(W1, b1, W2, b2))")
            first = f(*params)
            kept = exact(first)
            other = f(*[p * 0.5 for p in params])
            assert exact(first) == kept                     # not overwritten by the next call
            got[name] = (kept, exact(other), exact(f(*params)))
            plan = max((entry[0] for entry in bp._plans.values()), key=len)
            if name != "plain":
                assert plan._compiled[name == "scalar"].buffer_shapes     # buffers were used
    assert got["plain"] == got["generated"] == got["scalar"]
    assert got["plain"][0] == got["plain"][2]


def test_a_plan_keeps_no_more_buffers_than_its_cap(monkeypatch):
    monkeypatch.setattr(evaluate, "BUFFER_MAX", 7)        # elements: room for one 2×3 buffer
    x = np.array([[0.3, -1.2, 0.7], [0.1, 0.2, -0.4]])
    check_engines("def f(x) = sum(tanh(x * 2 + 1) * exp(x) - x^2 * sin(x))",
                  [("f", (x,)), ("value_and_grad(f)", (x,))])
    bp = dsl.Interpreter()
    with engine("scalar"):
        bp.exec("def f(x) = sum(tanh(x * 2 + 1) * exp(x) - x^2 * sin(x))")
        g = bp.function("grad(f)")
        g(x)
    plan = max((entry[0] for entry in bp._plans.values()), key=len)
    assert len(plan._compiled[True].buffer_shapes) == 1


def test_all_plans_together_keep_at_most_keep_max_bytes_of_idle_buffers(monkeypatch):
    """Each plan's idle buffers count against one budget for the process; a plan
    past it allocates afresh (same bits), and a plan that dies gives its bytes back."""
    import gc
    x = np.random.default_rng(1).normal(size=(2, 3))
    src = "def f(x) = sum(tanh(x * 2 + 1) * exp(x) - x^2 * sin(x))"
    with engine("scalar"):
        bp = dsl.Interpreter()
        bp.exec(src)
        reference = exact(bp.function("grad(f)")(x))
        plan = max((entry[0] for entry in bp._plans.values()), key=len)
        one = plan._compiled[True].arena_bytes
        assert one > 0
        del bp, plan
        gc.collect()
        start = evaluate._kept_total[0]
        monkeypatch.setattr(evaluate, "KEEP_MAX", start + one)     # room for one idle set
        sessions = [dsl.Interpreter() for _ in range(3)]
        for bp in sessions:
            bp.exec(src)
            g = bp.function("grad(f)")
            for _ in range(3):
                assert exact(g(x)) == reference
            assert evaluate._kept_total[0] <= start + one
        assert evaluate._kept_total[0] == start + one             # the first plan kept its set
        del sessions, bp, g
        gc.collect()
    assert evaluate._kept_total[0] == start


@pytest.mark.parametrize("size", [120, 8])
def test_generated_plans_stop_at_an_interrupt(size, monkeypatch):
    """Large steps check the flag after each step, small ones between chunks."""
    from test_robustness import run_then_interrupt
    monkeypatch.setattr(evaluate, "CHUNK", 50)
    running = threading.Event()
    real = evaluate._Generated.run

    def run(self, plan, arrays, flag):
        running.set()
        return real(self, plan, arrays, flag)
    monkeypatch.setattr(evaluate._Generated, "run", run)
    bp = dsl.Interpreter()
    steps = 600 if size > 100 else 5000
    bp.exec(f"def f(A) {{ y = A; for i in range({steps // 100}) {{ for j in range(10) "   # unrolled
            f"{{ for k in range(10) {{ y = tanh(y @ A) }} }} }}; return y }}")
    f = bp.function("f")
    A = np.full((size, size), 1e-3)
    f(A)                                            # the first call runs the loop
    for _ in range(3 if size <= 100 else 1):        # small steps: run it for long enough
        err, latency = run_then_interrupt(bp, lambda: [f(A) for _ in range(50)], started=running,
                                          after=0.05, again=True)
        assert isinstance(err, dsl.BpInterrupted) and latency < 1.0
    assert f(np.eye(size) * 0.5).shape == (size, size)    # still usable


def test_a_plan_that_cannot_be_compiled_runs_by_the_loop(monkeypatch):
    def broken(plan, scalar):
        raise RuntimeError("no code today")
    monkeypatch.setattr(evaluate, "_generate", broken)
    bp = dsl.Interpreter()
    f = bp.function("x -> sin(x) * x")
    assert [float(f(0.5)) for _ in range(3)] == [np.sin(0.5) * 0.5] * 3
    with engine("scalar"), pytest.raises(dsl.BpError, match="no code today"):
        dsl.Interpreter().function("x -> sin(x) * x")(0.5)


@pytest.mark.parametrize("n", range(4, evaluate.MAX_SQUARINGS_POWER + 1))
def test_a_whole_power_by_squaring_is_numpys_within_a_few_ulps(n):
    """x^n for a whole n from 4 up runs as repeated squaring (evaluate._whole_power):
    the same values as np.power within n ulps, and the same specials."""
    x = np.concatenate([np.linspace(-3, 3, 601), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e80, 1e-80]])
    with np.errstate(all="ignore"):          # as a plan runs its kernels
        got = evaluate._whole_power(n)(x, None)
        want = np.power(x, float(n))
    finite = np.isfinite(want) & (want != 0)
    assert np.all(np.abs(got[finite] / want[finite] - 1) <= n * np.finfo(float).eps)
    same = ~finite
    assert np.array_equal(got[same], want[same], equal_nan=True)
    assert np.array_equal(np.signbit(got[same & ~np.isnan(want)]), np.signbit(want[same & ~np.isnan(want)]))
    bp = dsl.Interpreter()
    assert float(bp.eval(f"(x -> x^{n})(1.1)")) == pytest.approx(1.1 ** n, rel=1e-15)


def test_a_vector_read_element_by_element_is_listed_once_per_run(monkeypatch):
    """Generated code reads x[i] of a vector from a Python list; a plan of many chunks
    lists it once, in the first chunk that reads it, and hands the list on (it was
    listed in every chunk: n²/CHUNK copies for a long unrolled loop)."""
    sources = []
    real = evaluate._check_source
    monkeypatch.setattr(evaluate, "CHUNK", 50)
    monkeypatch.setattr(evaluate, "_check_source", lambda src: (sources.append(src), real(src))[1])
    monkeypatch.setattr(reroll, "MIN_TERMS", math.inf)      # the sum as written: a long plan
    bp = dsl.Interpreter()
    bp.exec("def f(x: [201]) { s = 0; for i in range(200) { s = s + x[i] * x[i + 1] }; return s }")
    f = bp.function("f")
    x = np.linspace(-1, 1, 201)
    for _ in range(3):                       # the step loop, then generated code
        assert float(f(x)) == pytest.approx(float(np.dot(x[:-1], x[1:])), rel=1e-13)
    listing = [s for s in sources if ".tolist()" in s]
    assert len(sources) > 2 and sum(s.count(".tolist()") for s in sources) == 1, len(listing)
