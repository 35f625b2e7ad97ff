"""bp on JAX (issue 18): `export … as jax` and the JAX engine.

The registry walk writes every op's samples (tests/ops_samples, as
tests/test_export_fresh.py does for NumPy) into ONE JAX module, runs each function
under jax.jit in a fresh `python -I` that imports only jax and that module, and
compares with the NumPy engine within 1e-12 relative: an op whose JAX form (its
export with jnp for np, or its own `OpDef.jax`) is missing or wrong fails here.
Skipped when jax is not installed.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax")

from dsl import codegen, graph, ops  # noqa: E402
from dsl.evaluate import Plan  # noqa: E402
from tests.test_ops_forward import CASES, assert_close  # noqa: E402

# Ops with no JAX form, and why (each also a clear error: test_no_jax_form_is_a_clear_error).
NO_JAX = {"host", "host_vjp"}


def test_every_op_has_a_jax_form():
    missing = [name for name, opdef in ops.REGISTRY.items()
               if opdef.export is not None and name not in NO_JAX
               and not codegen.has_code(name, "jax")]
    assert missing == []
    assert not any(codegen.has_code(name, "jax") for name in NO_JAX)   # each says why


def _run_fresh(tmp_path, source: str, inputs_of: dict) -> tuple[dict, dict]:
    """Import the module in a fresh `python -I`, call each function on its inputs
    under jax.jit (all of them in one jitted call: one compilation), and give back the
    results and the errors (of tracing) by function."""
    (tmp_path / "jax_module.py").write_text(source, encoding="utf-8")
    np.savez(tmp_path / "inputs.npz", **{f"{k}_{i}": a for k, xs in inputs_of.items()
                                          for i, a in enumerate(xs)})
    counts = {k: len(xs) for k, xs in inputs_of.items()}
    script = (f"import sys, json; sys.path.insert(0, {str(tmp_path)!r})\n"
              "import numpy as np, jax, jax_module\n"
              f"counts = {counts!r}\n"
              f"data = np.load({str(tmp_path / 'inputs.npz')!r})\n"
              "args = {k: [data[f'{k}_{i}'] for i in range(n)] for k, n in counts.items()}\n"
              "errors = {}\n"
              "for k in counts:\n"          # traced one by one (cheap), so errors name their op
              "    try:\n"
              "        jax.eval_shape(getattr(jax_module, k), *args[k])\n"
              "    except Exception as err:\n"
              "        errors[k] = f'{type(err).__name__}: {err}'[:300]\n"
              "good = [k for k in counts if k not in errors]\n"
              "every = lambda a: {k: getattr(jax_module, k)(*a[k]) for k in good}\n"
              "out = {k: np.asarray(v) for k, v in jax.jit(every)(args).items()}\n"
              f"np.savez({str(tmp_path / 'out.npz')!r}, **out)\n"
              f"open({str(tmp_path / 'errors.json')!r}, 'w').write(json.dumps(errors))\n"
              "print(sorted(sys.modules.keys() & {'dsl', 'torch'}))\n")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"             # nothing of bp was imported
    got = np.load(tmp_path / "out.npz")
    return {k: got[k] for k in got.files}, json.loads((tmp_path / "errors.json").read_text())


def test_every_op_runs_as_jax_in_a_fresh_process(tmp_path):
    functions, inputs_of, want = {}, {}, {}
    for case in CASES:
        name, sample = case.values
        if not ops.REGISTRY[name].params or name in NO_JAX:
            continue                               # constructors: no inputs to export over
        key = f"f{len(functions)}"
        names = [f"x{i}" for i in range(len(sample.inputs))]
        inputs = [graph.make_input(n, np.shape(x)) for n, x in zip(names, sample.inputs)]
        node = ops.apply(name, inputs, dict(sample.attrs))
        functions[key] = (names, inputs, node)
        arrays = [np.asarray(x, dtype=float) for x in sample.inputs]
        inputs_of[key] = arrays
        with np.errstate(all="ignore"):
            want[key] = (case.id, Plan(inputs, [node]).run(arrays)[0])
    got, errors = _run_fresh(tmp_path, codegen.module(functions, {}, engine="jax"), inputs_of)
    assert len(functions) > 200
    failures = [f"{want[k][0]}: {e}" for k, e in errors.items()]
    for key, (label, expected) in want.items():
        if key in errors:
            continue
        try:
            assert_close(got[key], expected)
        except AssertionError as err:
            failures.append(f"{label}: {str(err).strip()[:300]}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


# ── the engine: programs give the NumPy engine's numbers ─────────────────

import io  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from dsl import Interpreter, jax_engine  # noqa: E402
from dsl.errors import BpError  # noqa: E402
from dsl.jax_engine import JaxPlan  # noqa: E402
from dsl.values import Record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("BP_CONFORMANCE", "/work/shared/conformance"))
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")
RTOL = 1e-12


@pytest.fixture(autouse=True)
def strict_jax(monkeypatch):
    monkeypatch.setattr(jax_engine, "STRICT", True)     # no quiet fallback to NumPy


def _session(path: Path, engine: str):
    """Run a program in a session of the engine, from its directory: (session, stdout,
    the error's kind and message or None, how many JAX plans ran)."""
    out = io.StringIO()
    bp = Interpreter(stdout=out, engine=engine)
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        bp.run_file(path.name)
        err = None
    except BpError as e:
        err = (e.kind, e.message)
    finally:
        os.chdir(here)
    jax_plans = sum(isinstance(entry[0], JaxPlan) and entry[0].fallback is None
                    for entry in bp._plans.values())
    return bp, out.getvalue(), err, jax_plans


def _same_value(a, b, where: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape, where
        finite = a[np.isfinite(a)]
        scale = float(np.max(np.abs(finite))) if finite.size else 0.0
        # relative 1e-12, with an absolute floor: 1e-12 of the value's largest entry, and
        # 1e-14 for a value that is all rounding residue (a gradient minus its finite
        # differences, ~1e-17, has no relative accuracy on any engine)
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=max(RTOL * scale, 1e-14),
                                   equal_nan=True, err_msg=where)
    elif isinstance(a, (tuple, Record)):
        items = a.items() if isinstance(a, Record) else enumerate(a)
        for k, x in items:
            _same_value(x, b[k], f"{where}[{k}]")


# Quantities that are rounding residue amplified, on any two engines whose exp, tanh, …
# differ in the last bit (XLA's are its own): not compared beyond their printed text's form.
ILL_CONDITIONED = {
    # the last Newton step of a converged iteration (~1e-11): the residue of H s = ∇f at x*
    "newton.bp": {"step"},
    # gradcheck's finite differences (f(x+h) - f(x-h)) / 2h turn 1e-16 into 1e-10
    "rnn.bp": {"gradcheck", "eW", "eU", "eb"},
}


def _check_same(path: Path) -> int:
    """The program under --engine jax: the same output (printed numbers within 1e-7,
    the printing's precision), the same error, the same globals within 1e-12 relative;
    returns how many JAX plans ran."""
    ref, ref_out, ref_err, _ = _session(path, "numpy")
    got, got_out, got_err, plans = _session(path, "jax")
    skip = ILL_CONDITIONED.get(path.name, set())
    assert got_err == ref_err
    assert NUMBER.sub("#", got_out) == NUMBER.sub("#", ref_out)
    for want, line in zip(ref_out.splitlines(), got_out.splitlines()):
        if any(word in want for word in skip):
            continue
        for x, y in zip(NUMBER.findall(want), NUMBER.findall(line)):
            assert float(y) == pytest.approx(float(x), rel=1e-7, abs=1e-12, nan_ok=True), \
                f"{path.name}: {line!r} != {want!r}"
    assert set(got.globals) == set(ref.globals)
    for name, value in ref.globals.items():
        if name not in skip:
            _same_value(value, got.globals[name], f"{path.name}: {name}")
    return plans


def _conformance() -> list[Path]:
    names = (ROOT / "tests" / "conformance.txt").read_text().split()
    return [CONFORMANCE / n for n in names if n.endswith(".bp")]


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="the conformance suite is not here")
def test_conformance_programs_under_the_jax_engine():
    plans = sum(_check_same(p) for p in _conformance())
    assert plans > 20                 # JAX really ran them


EXAMPLES = sorted((ROOT / "examples").glob("*.bp"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_under_the_jax_engine(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if any(re.match(r"\s*plot\b", line) and "to \"" not in line
           for line in path.read_text().splitlines()):
        pytest.importorskip("plotext")
    _check_same(path)


LOOPS = """
def f(x) {
  s = x
  for k in range(300) { s = sin(s) * 0.5 + x * 0.1 }
  return sum(s^2)
}
def h(x) {
  s = x
  for k in range(300) { s = sin(s) * 0.5 + x * 0.1; if sum(s) > 1.5 { break } }
  return sum(s^2)
}
def w(x) {
  s = x
  while sum(s) < 100 { s = s * 1.5 + 1 }
  return sum(s^2)
}
def r(x, n) {
  s = x
  for k in range(n) { s = sin(s) * x + k }
  return sum(s)
}
"""


@pytest.mark.parametrize("call", ["grad(f)([1, 2])", "hessian(f)([1, 2])", "h([1, 2])",
                                  "grad(h)([1, 2])", "w([1, 2])", "grad(w)([0.5, 2])",
                                  "grad(r)([1, 2], 4)", "hessian(r)([1, 2], 300)"])
def test_loops_under_the_jax_engine(call):
    """Loop nodes (300 iterations, or a count given at the call: not unrolled) become
    jax.lax.while_loop, their tapes arrays of the forward loop's count (range(n) of an
    argument: the plan specialised to n); a while loop's tape, of a length known only as
    it runs, goes to the NumPy plan (the one fallback here)."""
    want = Interpreter().exec(LOOPS + call, echo=lambda v: None)[-1]
    jax_engine.STRICT = call != "grad(w)([0.5, 2])"
    bp = Interpreter(engine="jax")
    got = bp.exec(LOOPS + call, echo=lambda v: None)[-1]
    _same_value(want, got, call)
    reasons = [entry[0].fallback for entry in bp._plans.values()]
    assert reasons and all(r is None for r in reasons) == jax_engine.STRICT


TRAIN = """
W = randn(3, 2, seed=1)
X = randn(50, 3, seed=2)
def loss(p) = sum((tanh(X @ p.W + p.b))^2)
p = {W: W, b: zeros(2)}
def step(p) = p - 0.1 * grad(loss)(p)
for i in range(5) { p = step(p) }
"""


def test_a_training_loop_keeps_its_parameters_on_the_device():
    """Each result the JAX engine hands back remembers its device array, and a call
    given it again passes that array: the parameters of a training loop whose update is
    a function (docs/scaling.md) go to the device once.  A NumPy array of the user's own
    (writeable, or a copy) is never taken for one."""
    want = Interpreter()
    want.exec(TRAIN)
    bp = Interpreter(engine="jax")
    bp.exec(TRAIN)
    p = bp.globals["p"]
    for k in ("W", "b"):
        np.testing.assert_allclose(p[k], want.globals["p"][k], rtol=1e-12)
        assert not p[k].flags.writeable
        assert jax_engine.resident(p[k]), k
        assert not jax_engine.resident(np.array(p[k]))
    mine = np.array(p["W"])
    mine.flags.writeable = False
    assert not jax_engine.resident(mine)


def test_export_as_jax_runs_in_a_fresh_process(tmp_path):
    """`export … as jax`: bp's own derivative graphs (a record parameter, a global, a
    loop with a tape, a Jacobian of unknown shapes) as a module that imports only jax,
    jitted, equal to the NumPy engine."""
    program = LOOPS + """
W = randn(3, 2, seed=1)
def loss(p, x, y) = sum((tanh(p.A @ W @ x + p.b) - y)^2)
export grad(loss) to "m.py" as jax
export grad(f) to "loop.py" as jax
export jacobian(x -> sin(x) * x) to "jac.py" as jax
export hessian(f) to "hess.py" as jax
"""
    (tmp_path / "p.bp").write_text(program)
    bp = Interpreter()
    bp.run_file(tmp_path / "p.bp")
    p = {"A": np.arange(6.0).reshape(2, 3) / 7, "b": np.array([0.1, -0.2])}
    x, y = np.array([0.3, -0.5]), np.array([1.0, 2.0])
    cases = {"m.grad_loss": ((p, x, y), bp.function("grad(loss)")(p, x, y)),
             "loop.grad_f": ((x,), bp.function("grad(f)")(x)),
             "jac.jacobian_f": ((x,), bp.function("jacobian(x -> sin(x) * x)")(x)),
             "hess.hessian_f": ((x,), bp.function("hessian(f)")(x))}
    script = (f"import sys, pickle; sys.path.insert(0, {str(tmp_path)!r})\n"
              "import numpy as np, jax, m, loop, jac, hess\n"
              f"cases = pickle.load(open({str(tmp_path / 'in.pkl')!r}, 'rb'))\n"
              "out = {}\n"
              "for key, args in cases.items():\n"
              "    mod, fn = key.split('.')\n"
              "    f = getattr(sys.modules[mod], fn)\n"
              "    got = jax.jit(f)(*args)\n"
              "    out[key] = jax.tree_util.tree_map(np.asarray, got)\n"
              f"pickle.dump(out, open({str(tmp_path / 'out.pkl')!r}, 'wb'))\n"
              "print(sorted(sys.modules.keys() & {'dsl', 'torch'}))\n")
    import pickle
    (tmp_path / "in.pkl").write_bytes(pickle.dumps({k: a for k, (a, _) in cases.items()}))
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
    got = pickle.loads((tmp_path / "out.pkl").read_bytes())
    for key, (_, want) in cases.items():
        want = want if not isinstance(want, dict) else Record(want)
        _same_value(want, got[key], key)
    assert "import numpy" not in (tmp_path / "m.py").read_text()


def test_export_as_jax_refuses_what_jax_cannot_run(tmp_path):
    bp = Interpreter()
    bp.define("double", lambda x: 2 * x)
    with pytest.raises(BpError, match="JAX has no form of the op 'host': a host function"):
        bp.exec(f'export (x -> double(x)) to "{tmp_path}/h.py" as jax')
    with pytest.raises(BpError, match="size known when the graph is built") as err:
        bp.exec(LOOPS + f'export grad(w) to "{tmp_path}/w.py" as jax', filename="w.bp")
    assert err.value.line == 14                       # the while loop
    with pytest.raises(BpError, match="as jax` or `as numpy`"):
        bp.exec('export w to "w.py" as torch')


def test_engine_options_and_errors(monkeypatch):
    with pytest.raises(BpError, match="the engines are numpy and jax"):
        Interpreter(engine="torch")
    with pytest.raises(BpError, match="needs engine='jax'"):
        Interpreter(devices=2)
    bp = Interpreter()
    bp.exec("def f(x) = sum(x^2)")
    assert bp.function("grad(f)")([1.0, 2.0]).tolist() == [2.0, 4.0]
    bp.set_engine("jax")
    assert bp.function("grad(f)")([1.0, 2.0]).tolist() == [2.0, 4.0]
    assert all(isinstance(e[0], JaxPlan) for e in bp._plans.values()) and bp._plans
    # without jax installed: a clear error saying how to install it
    import builtins
    real = builtins.__import__

    def no_jax(name, *args, **kwargs):
        if name == "jax" or name.startswith("jax."):
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_jax)
    with pytest.raises(BpError, match=r"pip install 'bp-lang\[jax\]'"):
        Interpreter(engine="jax")
    from dsl import cli
    err = io.StringIO()
    assert cli.main(["--engine", "jax", "-c", "1"], stdout=io.StringIO(), stderr=err) == 1
    assert "pip install 'bp-lang[jax]'" in err.getvalue()


DEVICES = r'''
import os, io, json, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import numpy as np
from dsl import Interpreter, jax_engine
jax_engine.STRICT = True
os.chdir(sys.argv[1])

def run(devices):
    out = io.StringIO()
    bp = Interpreter(engine="jax", devices=devices, stdout=out)
    bp.run_file("minibatch_mlp.bp")
    return bp, out.getvalue()

one, text1 = run(None)
four, text4 = run(4)
theta, xs = four.globals["θ"], four.globals["Xs"]
plan = [e[0] for e in four._plans.values() if e[0].n_inputs == 7][0]   # the training step's
args = [theta[k] for k in theta.keys()] + [xs, four.globals["Ys"], np.asarray(2.0)]
placed = plan._place(args)
report = {
    "text1": text1, "text4": text4,
    "theta": {k: [one.globals["θ"][k].tolist(), theta[k].tolist()] for k in theta.keys()},
    "specs": [list(a.sharding.spec) for a in placed],
    "shards": [sorted({tuple(s.data.shape) for s in a.addressable_shards}) for a in placed],
    "devices": [len(a.sharding.device_set) for a in placed],
}
print(json.dumps(report))
'''


def test_devices_shard_the_data_and_give_the_same_losses():
    """--devices 4 on four CPU devices (XLA_FLAGS): the minibatch MLP trains to the same
    losses and weights as on one device within 1e-10, its data (X, Y: 240 rows) split in
    four along the first axis, its parameters replicated."""
    done = subprocess.run([sys.executable, "-c", DEVICES, str(ROOT / "examples")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    assert NUMBER.sub("#", r["text1"]) == NUMBER.sub("#", r["text4"])
    for a, b in zip(NUMBER.findall(r["text1"]), NUMBER.findall(r["text4"])):
        assert float(b) == pytest.approx(float(a), rel=1e-7, abs=1e-10)
    for name, (a, b) in r["theta"].items():
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12, err_msg=name)
    # θ's four leaves replicated, Xs and Ys split in four (60 rows each), b replicated
    assert r["specs"] == [[]] * 4 + [["data"]] * 2 + [[]]
    assert r["shards"][4] == [[60, 2]] and r["shards"][5] == [[60, 3]]
    assert r["shards"][0] == [[2, 16]]
    assert r["devices"] == [4] * 7


# ── property: random well-formed functions, the same numbers on both engines ──

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "log1p(abs", "sqrt(abs", "relu",
         "abs", "softmax", "log_softmax", "cumsum", "sort", "erf", "atan", "square"]
BINARY = ["+", "-", "*", "/", "^ 2 *", "@ A @"]


def _grow(e):
    return st.one_of(
        st.tuples(st.sampled_from(UNARY), e).map(
            lambda p: f"{p[0]}({p[1]}){')' if '(' in p[0] else ''}"),
        st.tuples(e, st.sampled_from(BINARY), e).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(e, e).map(lambda p: f"where({p[0]} > 0, {p[0]}, {p[1]})"),
        st.tuples(e, e).map(lambda p: f"maximum({p[0]}, {p[1]})"),
        e.map(lambda x: f"(x * sum({x}) / 3)"),
        e.map(lambda x: f"(x - mean({x}))"),
    )


Interpreter().exec("0")   # raises the recursion limit once, before hypothesis notes it

FUNCTIONS = st.recursive(st.sampled_from(["x", "(2 * x)", "(x + 1)", "[0.5, -1, 2]"]), _grow,
                         max_leaves=6)
OUTCOMES: list = []
CALLS = ["h(v)", "grad(x -> sum(h(x)))(v)", "jacobian(h)(v)", "hvp(x -> sum(h(x)^2))(v, w)"]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(FUNCTIONS, st.sampled_from(CALLS))
def test_random_functions_give_the_same_numbers_on_both_engines(body, call):
    program = (f"A = [[1, 0.5, 0], [0.5, 2, 0.25], [0, 0.25, 1]]\nv = [0.3, -1.2, 0.7]\n"
               f"w = [1, -1, 0.5]\ndef h(x) = {body}\n")
    results = []
    for engine in ("numpy", "jax"):
        bp = Interpreter(engine=engine)
        bp.exec(program)
        try:
            results.append(bp.eval(call))
        except BpError as err:
            results.append(err.kind)
    want, got = results
    OUTCOMES.append(isinstance(want, str))
    if isinstance(want, str):
        assert got == want
    else:
        _same_value(np.asarray(want), np.asarray(got), f"{body}: {call}")


# ── the property tests' functions (tests/test_properties.py) on both engines ──

from test_properties import A as PA, B as PB, X_SHAPE, Y_SHAPE, exprs, points, reductions  # noqa: E402

PROPERTY = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _both_engines(defs: str, calls: list[tuple[str, tuple]]) -> None:
    """Each call through bp.function on the NumPy and the JAX engine: within 1e-12."""
    got = {}
    for engine in ("numpy", "jax"):
        bp = Interpreter(engine=engine)
        bp["A"], bp["B"] = PA, PB
        bp.exec(defs)
        got[engine] = [bp.function(src)(*args) for src, args in calls]
    for (src, _), want, have in zip(calls, got["numpy"], got["jax"]):
        _same_value(want if not isinstance(want, np.ndarray) else np.asarray(want),
                    have, f"{src} of {defs}")


@PROPERTY
@given(exprs(("x",), matmul=False), st.floats(-1.5, 1.5, allow_nan=False))
def test_properties_scalar_functions_on_jax(e, x):
    x0 = np.float64(x)
    _both_engines(f"def f(x) = {e.text}", [("f", (x0,)), ("grad(f)", (x0,)), ("diff(f, 2)", (x0,))])


@PROPERTY
@given(exprs(("x",)), reductions, points(X_SHAPE))
def test_properties_vector_functions_on_jax(e, reduce, x):
    _both_engines(f"def f(x) = {reduce}({e.text})",
                  [("value_and_grad(f)", (x,)), ("hessian(f)", (x,)), ("hvp(f)", (x, np.cos(x)))])


@PROPERTY
@given(exprs(("x", "y")), reductions, points(X_SHAPE), points(Y_SHAPE))
def test_properties_two_argument_functions_on_jax(e, reduce, x, y):
    _both_engines(f"def f(x, y) = {reduce}({e.text})",
                  [("grad(f, wrt=(x, y))", (x, y)), ("jvp(f)", (x, y, np.sin(x)))])


@PROPERTY
@given(exprs(("x",), vector=True), points(X_SHAPE), points((2,)))
def test_properties_vector_valued_functions_on_jax(e, x, u):
    _both_engines(f"def f(x) = B @ ({e.text})", [("vjp(f)", (x, u)), ("jacobian(f)", (x,))])


def test_export_as_jax_names_are_data(tmp_path):
    """Parameters and globals called jnp, jax, np, lambda do not capture the module's names."""
    bp = Interpreter()
    bp.exec(f"""
jnp = [1, 2]
def f(jax, np, lambda) = sum(jnp * sin(jax) * np + lambda)
export grad(f) to "{tmp_path}/names.py" as jax
""")
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
              "import numpy as np, jax, names\n"
              "print(np.asarray(jax.jit(names.grad_f)(np.array([0.5, 1.0]), 2.0, 3.0)).tolist())\n")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    want = bp.function("grad(f)")(np.array([0.5, 1.0]), 2.0, 3.0)
    _same_value(np.asarray(want), np.asarray(eval(done.stdout)), "names")
    np.testing.assert_allclose(want, np.array([1, 2]) * np.cos([0.5, 1.0]) * 2, rtol=1e-15)
