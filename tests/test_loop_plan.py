"""A constant-count loop in a graph built to be run (dsl/lower_loops.py, RUN_LOOP_MIN).

A `for` over a constant count of at most UNROLL_MAX iterations is unrolled where the
graph is read (printing, `graph`, LaTeX) exactly as before, but with RUN_LOOP_MIN set
(off by default; these tests set it) in a plan (a call, a derivative's call) a count
of RUN_LOOP_MIN or more whose iterations run at once (dsl/loop_map.py) stays a loop
node, so the first result does not pay for ~10 nodes per iteration.  Expected values are derived by hand (NumPy formulas of the
Rosenbrock sum's gradient and Hessian); a printed form is compared with what the old
rule (every such loop unrolled) prints.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl
from dsl import loop_map, lower_loops

ROSEN_FN = """
def rosen(x) {
    s = 0
    for i in range(size(x) - 1) {
        s = s + 100 * (x[i + 1] - x[i]^2)^2 + (1 - x[i])^2
    }
    return s
}
"""

N = 100
RUN_MIN = 64                     # the threshold switched on for these tests (off by default)
assert RUN_MIN <= N - 1 <= lower_loops.UNROLL_MAX


@pytest.fixture(autouse=True)
def run_loops(monkeypatch):
    monkeypatch.setattr(lower_loops, "RUN_LOOP_MIN", RUN_MIN)


def rosen_value(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_grad(x):
    t = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * t - 2 * (1 - x[:-1])
    g[1:] += 200 * t
    return g


def rosen_hessian(x):
    """Tridiagonal: d²/dx_i² = 1200 x_i² - 400 x_{i+1} + 2 (i < n-1), + 200 (i > 0);
    d²/dx_i dx_{i+1} = -400 x_i."""
    n = len(x)
    h = np.zeros((n, n))
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    h[np.arange(n), np.arange(n)] = d
    off = -400 * x[:-1]
    h[np.arange(n - 1), np.arange(1, n)] = off
    h[np.arange(1, n), np.arange(n - 1)] = off
    return h


def plan_of(bp):
    return next(iter(bp._plans.values()))[0]


def ops_of(plan):
    return [step[4].op for step in plan.steps]


@pytest.fixture
def spy(monkeypatch):
    """The loops loop_map ran at once (True) or handed back (False)."""
    seen: list[bool] = []
    real = loop_map.run

    def run(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out is not None)
        return out
    monkeypatch.setattr(loop_map, "run", run)
    return seen


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max(initial=0))), (a, b)


def test_the_gradient_plan_is_a_loop_node_with_the_gradient_by_hand(spy):
    x = np.linspace(-1.2, 1.3, N)
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN)
    g = bp.function("grad(rosen)")
    close(g(x), rosen_grad(x))
    close(g(x), rosen_grad(x))                 # again, through the kept batched plan
    plan = plan_of(bp)
    assert "loop" in ops_of(plan) and len(plan.steps) < 30
    assert spy and all(spy)                    # every loop ran its iterations at once
    y = np.cos(np.arange(N, dtype=float))      # other values, the same shapes
    close(g(y), rosen_grad(y))


def test_the_value_and_value_and_grad_by_hand():
    x = np.linspace(-1.2, 1.3, N)
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN)
    close(bp.function("rosen")(x), rosen_value(x))
    v, gr = bp.function("value_and_grad(rosen)")(x)
    close(v, rosen_value(x))
    close(gr, rosen_grad(x))


def test_the_old_rule_unrolls_the_same_program(monkeypatch):
    """RUN_LOOP_MIN off (the default): the plan of the same gradient is unrolled (no loop
    node; the steps are the unrolled graph's, or its sums rerolled), with the same values."""
    monkeypatch.setattr(lower_loops, "RUN_LOOP_MIN", None)
    x = np.linspace(-1.2, 1.3, N)
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN)
    close(bp.function("grad(rosen)")(x), rosen_grad(x))
    plan = plan_of(bp)
    assert "loop" not in ops_of(plan)


def test_printed_graph_and_latex_of_the_derivative_are_unchanged(monkeypatch):
    """Display builds keep unrolling: the text, graph and LaTeX of grad(f) for a
    constant count are what the old rule gives."""
    src = ("def f(x) { s = 0; for i in range(99) { s = s + 100*(x[i+1] - x[i]^2)^2 "
           "+ (1 - x[i])^2 }; return s }")

    def shown():
        bp = dsl.Interpreter()
        bp.exec(src)
        graph = bp.graph("grad(f)")
        return (bp.format(bp.eval("grad(f)")), bp.format(bp.eval("f")), bp.latex("grad(f)"),
                sorted(n.op for n in graph.nodes), bp)

    text, ftext, tex, graph_ops, bp = shown()
    with monkeypatch.context() as m:
        m.setattr(lower_loops, "RUN_LOOP_MIN", None)
        old = shown()
    assert (text, ftext, tex, graph_ops) == old[:4]
    assert "loop" not in graph_ops and "for" not in text
    # …while the same function's plan is a loop node, with the gradient by hand
    x = np.linspace(-1.2, 1.3, N)
    close(bp.function("grad(f)")(x), rosen_grad(x))
    assert "loop" in ops_of(plan_of(bp))


def test_hessian_and_hvp_through_the_loop_node_by_hand():
    x = np.linspace(-1.2, 1.3, N)
    v = np.sin(np.arange(N, dtype=float))
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN)
    close(bp.function("hvp(rosen)")(x, v), rosen_hessian(x) @ v, 1e-10)
    close(bp.function("hessian(rosen)")(x), rosen_hessian(x), 1e-10)


def test_nested_grad_of_a_gradient_component_by_hand():
    """grad of one component of the gradient: row 3 of the Hessian."""
    x = np.linspace(-1.2, 1.3, N)
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN + "def g3(x) { return grad(rosen)(x)[3] }")
    close(bp.function("grad(g3)")(x), rosen_hessian(x)[3], 1e-10)


def test_short_constant_loops_still_unroll_in_plans():
    """Below RUN_LOOP_MIN a constant loop is unrolled in a plan too."""
    n = RUN_MIN - 1
    bp = dsl.Interpreter()
    bp.exec(f"def f(x) {{ s = 0; for i in range({n}) {{ s = s + x[i]^2 }}; return s }}")
    x = np.linspace(0, 1, n)
    close(bp.function("grad(f)")(x), 2 * x)
    assert "loop" not in ops_of(plan_of(bp))


def test_a_loop_that_does_not_run_at_once_unrolls_in_plans():
    """A recurrence (s = s*c + x[i]) is no map-reduce: the plan unrolls it as before.
    Horner's rule, by hand: s = Σ x[i] c^(n-1-i); ds/dx[i] = c^(n-1-i)."""
    n = 80
    bp = dsl.Interpreter()
    bp.exec(f"def f(x) {{ s = 0; for i in range({n}) {{ s = s * 0.9 + x[i] }}; return s }}")
    x = np.linspace(0, 1, n)
    close(bp.function("f")(x), np.sum(x * 0.9 ** (n - 1 - np.arange(n))))
    close(bp.function("grad(f)")(x), 0.9 ** (n - 1 - np.arange(n)))
    assert all("loop" not in ops_of(plan) for plan, *_ in bp._plans.values())


def test_an_index_out_of_range_is_the_plain_loops_error():
    """A batched run that fails falls back to the plain loop, which locates the error."""
    bp = dsl.Interpreter()
    bp.exec("def f(x) { s = 0; for i in range(99) { s = s + x[i + 1] }; return s }")
    with pytest.raises(dsl.BpError) as err:
        bp.function("f")(np.arange(99.0))
    assert "99" in str(err.value) or "index" in str(err.value)
    close(bp.function("f")(np.arange(100.0)), np.sum(np.arange(1.0, 100.0)))


def test_fractional_index_is_an_error_as_before():
    bp = dsl.Interpreter()
    bp.exec("def f(x) { s = 0; for i in range(80) { s = s + x[i / 2] }; return s }")
    with pytest.raises(dsl.BpError) as err:
        bp.function("f")(np.arange(100.0))
    assert "whole number" in str(err.value)


def test_a_long_sums_gradient_runs_no_forward_loop(monkeypatch):
    """Past UNROLL_MAX the loop is a loop node whatever RUN_LOOP_MIN is.  Its adjoint reads
    no tape (the accumulator's cotangent is the same at every iteration), so the plan of
    the gradient counts the iterations (loops.COUNT) instead of running the forward
    loop: no loop in it carries s.  Gradient and value_and_grad by hand."""
    from dsl import loops
    monkeypatch.setattr(lower_loops, "RUN_LOOP_MIN", None)
    n = lower_loops.UNROLL_MAX + 44
    x = np.linspace(-1.2, 1.3, n)
    bp = dsl.Interpreter()
    bp.exec(ROSEN_FN)
    close(bp.function("grad(rosen)")(x), rosen_grad(x))
    bodies = {step[4].attr("body") for step in plan_of(bp).steps if step[4].op == "loop"}
    assert bodies and all(b.names != ("s",) for b in bodies)   # only the adjoint (∂s)
    assert not any(b is loops.COUNT for b in bodies)            # a constant count folded
    v, gr = bp.function("value_and_grad(rosen)")(x)
    close(v, rosen_value(x))
    close(gr, rosen_grad(x))


def test_a_runtime_count_gradient_counts_with_the_count_loop():
    """A count known only when it runs: the adjoint's trip count comes from loops.COUNT."""
    from dsl import loops
    bp = dsl.Interpreter()
    bp.exec("def f(x, m) { s = 0; for i in range(m) { s = s + 100*(x[i+1] - x[i]^2)^2 "
            "+ (1 - x[i])^2 }; return s }")
    x = np.linspace(-1.2, 1.3, N)
    close(bp.function("grad(f)")(x, np.float64(N - 1)), rosen_grad(x))
    bodies = [step[4].attr("body") for step in plan_of(bp).steps if step[4].op == "loop"]
    assert any(b is loops.COUNT for b in bodies)
    m = 40                                     # the first 40 terms only
    want = np.zeros(N)
    want[:m + 1] = rosen_grad(x[:m + 1])
    close(bp.function("grad(f)")(x, np.float64(m)), want)
