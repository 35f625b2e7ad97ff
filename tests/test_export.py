"""export: the generated module, imported in a fresh process with only NumPy,
gives the numbers bp gives (SPEC §7)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import dsl

MLP = """
X = [[0.5, -1, 2], [1.5, 0.25, -0.5], [-1, 1, 0], [0, 0.5, 1]]
Y = one_hot([0, 1, 1, 0], 2)
def loss(W1, b1, W2, b2) {
    h = tanh(X @ W1 + b1)
    return cross_entropy(h @ W2 + b2, Y) + 0.01 * (sum(W1^2) + sum(W2^2))
}
def rosen(x: [3]) = sum(100 * (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)
"""


def run_fresh(module_dir, code: str):
    """Run code in a new interpreter that can import only NumPy and the module."""
    script = f"import sys; sys.path.insert(0, {str(module_dir)!r}); " + code
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.fixture
def bp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interp = dsl.Interpreter()
    interp.exec(MLP)
    return interp


def test_export_grad_of_mlp_loss_matches_bp(bp, tmp_path):
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
              "W2": rng.normal(size=(5, 2)), "b2": rng.normal(size=2)}
    for k, v in params.items():
        bp[k + "0"] = v
    bp.exec('export grad(loss, wrt=(W1, b1, W2, b2)) to "mlp_grad.py"', filename=str(tmp_path / "x.bp"))
    ours = bp.eval("grad(loss, wrt=(W1, b1, W2, b2))(W10, b10, W20, b20)")
    args = ", ".join(f"np.array({v.tolist()!r})" for v in params.values())
    theirs = run_fresh(tmp_path, "import numpy as np, json, mlp_grad; "
                       f"print(json.dumps([g.tolist() for g in mlp_grad.grad_loss({args})]))")
    source = (tmp_path / "mlp_grad.py").read_text()
    assert "import numpy as np" in source and "import dsl" not in source
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, np.array(b), rtol=1e-12, atol=1e-14)


def test_export_hessian_of_rosenbrock_matches_bp(bp, tmp_path):
    bp.exec('export hessian(rosen) to "rosen_h.py"', filename=str(tmp_path / "x.bp"))
    x = [1.2, -0.7, 0.4]
    ours = bp.eval(f"hessian(rosen)({x})")
    theirs = run_fresh(tmp_path, "import json, rosen_h; "
                       f"print(json.dumps(rosen_h.hessian_rosen({x}).tolist()))")
    np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-12)
    # and both are the true Hessian (by hand: d²/dx² of the two-term Rosenbrock sum)
    x0, x1, x2 = x
    by_hand = np.array([[2 - 400 * (x1 - x0**2) + 800 * x0**2, -400 * x0, 0],
                        [-400 * x0, 200 + 2 - 400 * (x2 - x1**2) + 800 * x1**2, -400 * x1],
                        [0, -400 * x1, 200]])
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)


def test_export_names_follow_the_expression(bp, tmp_path):
    bp.exec('df = grad(rosen)\nexport df to "a.py"\nexport rosen to "b.py"',
            filename=str(tmp_path / "x.bp"))
    assert "def df(x):" in (tmp_path / "a.py").read_text()
    assert "def rosen(x):" in (tmp_path / "b.py").read_text()


# ── hygiene (SPEC §13): the module never depends on which names the program uses ──

def load(path):
    """The exported module, run in a fresh namespace (its own imports only)."""
    scope = {"__name__": "exported"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)
    return scope


def export(bp, tmp_path, src: str, name: str = "m.py"):
    bp.exec(src, filename=str(tmp_path / "x.bp"))
    return load(tmp_path / name)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_export_parameters_named_like_python_keywords_builtins_and_np(bp, tmp_path):
    m = export(bp, tmp_path, 'def f(lambda, np) = sum(lambda * np)\nexport grad(f) to "m.py"')
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, -5.0, 0.5])
    np.testing.assert_array_equal(m["grad_f"](a, b), b)              # d/dλ sum(λ·np) = np
    np.testing.assert_array_equal(m["grad_f"](a, b), bp.function("grad(f)")(a, b))


def test_export_parameters_named_like_the_modules_own_names(bp, tmp_path):
    # helpers (_unbroadcast, _sigmoid), a temporary (t1), an array constant (_C0),
    # a builtin the code might use (float) and Python keywords (None, True)
    m = export(bp, tmp_path, """
def f(float, None, True, t1, _C0, _unbroadcast, _sigmoid) =
    sum(float * None + sigmoid(True) * t1 + _C0 * [1, 2] + _unbroadcast^2 + exp(_sigmoid))
export grad(f, wrt=(float, None, True, t1, _C0, _unbroadcast, _sigmoid)) to "m.py"
""")
    F, N, T, t1, C, U, S = np.array([0.5, -1.5]), 2.0, 0.3, -0.7, 1.25, 0.4, -0.2
    got = m["grad_f"](F, N, T, t1, C, U, S)
    s = sigmoid(T)          # by hand: every term is summed over the 2 elements of F
    want = [np.array([N, N]), F.sum(), 2 * s * (1 - s) * t1, 2 * s, 3.0, 4 * U, 2 * np.exp(S)]
    for g, w, b in zip(got, want, bp.function(
            "grad(f, wrt=(float, None, True, t1, _C0, _unbroadcast, _sigmoid))")(
            F, N, T, t1, C, U, S)):
        np.testing.assert_allclose(g, w, rtol=1e-14)
        np.testing.assert_allclose(g, b, rtol=1e-15)
    import inspect
    assert list(inspect.signature(m["grad_f"]).parameters) == [
        "float", "None_", "True_", "t1", "_C0", "_unbroadcast_", "_sigmoid_"]


def test_export_globals_named_like_temporaries_constants_helpers_and_np(bp, tmp_path):
    m = export(bp, tmp_path, """
t1 = 3; _C0 = [1, 2]; np = 2; _sigmoid = 0.5; __name__ = 4; len = 10
def f(x) = sum(t1 * sin(x) * _C0 + [5, 6] * x + np * x^2 + _sigmoid * len * __name__ * x)
export grad(f) to "m.py"
""")
    x = np.array([0.3, -1.1])
    want = 3 * np.cos(x) * np.array([1, 2]) + np.array([5, 6]) + 2 * 2 * x + 0.5 * 10 * 4
    np.testing.assert_allclose(m["grad_f"](x), want, rtol=1e-15)
    np.testing.assert_allclose(m["grad_f"](x), bp.function("grad(f)")(x), rtol=1e-15)
    assert m["__name__"] == "exported" and m["np"].__name__ == "numpy"


def test_export_global_named_like_the_exported_function(bp, tmp_path):
    m = export(bp, tmp_path, 'grad_f = 2\ndef f(x) = grad_f * x^3\nexport grad(f) to "m.py"')
    assert callable(m["grad_f"])                        # SPEC §12's name is the function's
    assert float(m["grad_f"](2.0)) == 24.0              # d/dx 2x³ = 6x²


def test_export_parameter_and_global_of_the_same_name(bp, tmp_path):
    # g reads the global x; f's own parameter is also called x
    m = export(bp, tmp_path, """
x = 10
def g(y) = y * x
def f(x) = sum(g(x) + x^2)
export grad(f) to "m.py"
export f to "n.py"
""")
    v = np.array([1.0, -2.0])
    np.testing.assert_array_equal(m["grad_f"](v), 10 + 2 * v)
    assert float(load(tmp_path / "n.py")["f"](v)) == float(np.sum(10 * v + v**2))
    np.testing.assert_array_equal(m["grad_f"](v), bp.function("grad(f)")(v))


def test_export_globals_whose_python_spellings_collide(bp, tmp_path):
    # `lambda` is mangled and `lambda_` is taken; `ﬁ` reads as `fi` in Python (NFKC);
    # `ⸯ` is a bp name but no Python identifier
    m = export(bp, tmp_path, """
lambda = 2; lambda_ = 3; ﬁ = 5; fi = 7; ⸯ = 11
def f(x) = lambda * x + lambda_ * x^2 + ﬁ * x^3 + fi * x^4 + ⸯ * x^5
export grad(f) to "m.py"
""")
    x = 1.5
    want = 2 + 6 * x + 15 * x**2 + 28 * x**3 + 55 * x**4
    assert float(m["grad_f"](x)) == pytest.approx(want, rel=1e-15)
    assert float(m["grad_f"](x)) == pytest.approx(float(bp.eval(f"grad(f)({x})")), rel=1e-15)
    source = (tmp_path / "m.py").read_text(encoding="utf-8")
    assert "lambda → " in source and "ﬁ → " in source and "ⸯ → " in source


def test_export_mangled_function_name(bp, tmp_path):
    m = export(bp, tmp_path, 'def None(x) = x^2\nexport None to "m.py"\n'
                             'def _unbroadcast(g, y) = unbroadcast(g, y)\n'
                             'export _unbroadcast to "n.py"')
    assert float(m["None_"](3.0)) == 9.0
    n = load(tmp_path / "n.py")         # the function is renamed, the helper it calls is not
    np.testing.assert_array_equal(n["_unbroadcast_"]([[1.0, 2.0], [3.0, 4.0]], [0.0, 0.0]), [4.0, 6.0])
    assert n["_unbroadcast"].__name__ == "_unbroadcast"


def hostile_names():
    """Names that bp accepts and that a naive export would break on: Python keywords
    and builtins, the module's helpers and generated names, numpy's alias, dunders."""
    import builtins
    import keyword
    from dsl import codegen
    defined, read = codegen._reserved()
    cands = (sorted(keyword.kwlist) + sorted(defined | read) +
             ["float", "int", "slice", "len", "range", "sum", "abs", "print", "exec", "dict",
              "object", "t1", "t2", "t3", "_C0", "_C1", "grad_f", "__name__", "__doc__",
              "__builtins__", "lambda_", "np_", "x"])
    assert set(dir(builtins)) & set(cands)
    out = []
    for n in dict.fromkeys(cands):
        try:
            dsl.Interpreter().exec(f"{n} = 1\ndef g({n}) = {n}")
        except dsl.BpError:
            continue                                  # a bp keyword (def, for, …)
        out.append(n)
    return out


@pytest.mark.parametrize("params_first", [True, False])
def test_export_every_hostile_name_as_parameter_and_as_global(bp, tmp_path, params_first):
    names = hostile_names()
    assert {"lambda", "None", "np", "float", "_unbroadcast", "t1", "_C0", "grad_f"} <= set(names)
    params, globals_ = (names[0::2], names[1::2]) if params_first else (names[1::2], names[0::2])
    values = {g: float(i + 2) for i, g in enumerate(globals_)}
    k = min(len(params), len(globals_))
    # (@ [1, 1] sums: `sum` itself may be one of the names)
    body = " + ".join(f"{p} * {g} * [1, 2] @ [1, 1]" for p, g in zip(params[:k], globals_[:k]))
    src = "; ".join(f"{g} = {v}" for g, v in values.items())
    src += f"\ndef f({', '.join(params)}) = {body} + sigmoid([1, 2] * {params[-1]}) @ [1, 1]"
    src += f'\nexport grad(f, wrt=({", ".join(params)})) to "m.py"\nexport f to "n.py"'
    m = export(bp, tmp_path, src)
    args = [0.1 * (i + 1) for i in range(len(params))]
    got = m["grad_f"](*args)
    f = load(tmp_path / "n.py")["f"]
    for i, p in enumerate(params):            # by hand: d/dp sum(p·g·[1, 2]) = 3g
        want = 3 * values[globals_[i]] if i < k else 0.0
        if i == len(params) - 1:
            want += sum(w * sigmoid(w * args[i]) * (1 - sigmoid(w * args[i])) for w in (1, 2))
        assert float(got[i]) == pytest.approx(want, rel=1e-14), p
    want_f = sum(3 * a * values[g] for a, g in zip(args, globals_[:k]))
    want_f += sum(sigmoid(w * args[-1]) for w in (1, 2))
    assert float(f(*args)) == pytest.approx(want_f, rel=1e-14)


def test_export_runs_in_a_fresh_process_with_hostile_names(bp, tmp_path):
    bp.exec("""
t1 = 3; np = 2; grad_f = 0.5
def f(lambda, float, _sigmoid) = sum(t1 * lambda^2 + np * sigmoid(float) + grad_f * _sigmoid)
export grad(f, wrt=(lambda, float, _sigmoid)) to "hyg.py"
""", filename=str(tmp_path / "x.bp"))
    out = run_fresh(tmp_path, "import json, sys, hyg; "
                    "print(json.dumps([[float(v) for v in hyg.grad_f(1.5, 0.25, 9.0)], "
                    "sorted(m for m in sys.modules if m.split('.')[0] == 'dsl')]))")
    s = sigmoid(0.25)
    np.testing.assert_allclose(out[0], [3 * 2 * 1.5, 2 * s * (1 - s), 0.5], rtol=1e-15)
    assert out[1] == []


# ── constants: the same float64 bits ─────────────────────────────────────

def bits(x):
    return np.asarray(x, dtype=np.float64).view(np.uint64)


def test_export_non_finite_and_signed_constants(bp, tmp_path):
    bp.exec("""
def f(x) = sum(maximum(x, -inf))
export grad(f) to "a.py"
export f to "b.py"
export x -> x * nan to "c.py"
export x -> x + -0.0 to "d.py"
export x -> minimum(x, inf) to "e.py"
export grad(x -> sum(minimum(x, inf))) to "g.py"
export x -> where(x > 0, x, -0.0) to "h.py"
export x -> x * [1, inf, -inf, nan, -0.0] to "i.py"
""", filename=str(tmp_path / "x.bp"))
    x = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_array_equal(load(tmp_path / "a.py")["grad_f"](x), [1.0, 1.0, 1.0])
    assert float(load(tmp_path / "b.py")["f"](x)) == -0.5
    assert np.all(np.isnan(load(tmp_path / "c.py")["f"](x)))
    assert bits(load(tmp_path / "d.py")["f"](-0.0)) == bits(-0.0)    # -0.0 + -0.0 = -0.0
    np.testing.assert_array_equal(load(tmp_path / "e.py")["f"](x), x)
    np.testing.assert_array_equal(load(tmp_path / "g.py")["grad_f"](x), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(bits(load(tmp_path / "h.py")["f"](x)), bits([-0.0, -0.0, 2.5]))
    got = load(tmp_path / "i.py")["f"](1.0)
    np.testing.assert_array_equal(bits(got), bits([1.0, np.inf, -np.inf, np.nan, -0.0]))
    for name in "abcdeghi":                  # and bp's own values, bit for bit
        fn = "grad_f" if name in "ag" else "f"
        src = {"a": "grad(f)", "b": "f", "c": "x -> x * nan", "d": "x -> x + -0.0",
               "e": "x -> minimum(x, inf)", "g": "grad(x -> sum(minimum(x, inf)))",
               "h": "x -> where(x > 0, x, -0.0)", "i": "x -> x * [1, inf, -inf, nan, -0.0]"}[name]
        arg = 1.0 if name == "i" else -0.0 if name == "d" else x
        np.testing.assert_array_equal(bits(load(tmp_path / f"{name}.py")[fn](arg)),
                                      bits(bp.function(src)(arg)))


def test_export_constant_spellings_read_back_bit_for_bit():
    from dsl import codegen
    odd = np.array([0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001],
                   dtype=np.uint64).view(np.float64)
    values = [0.0, -0.0, 1.5, -2.25, 1e-310, -5e-324, 1.7976931348623157e308, np.inf, -np.inf,
              np.nan, -np.nan, 0.1, -1 / 3] + list(odd)
    for v in values:
        text = codegen._number(v)
        got = eval(text, {"np": np, "__builtins__": {}})
        assert bits(got) == bits(v), (v, text)
    for arr in [np.array(values), np.array(values[:12]).reshape(3, 4), np.zeros((0, 3)),
                np.array([[-0.0, np.nan], [np.inf, -np.inf]])]:
        text = codegen._array_literal(arr)
        got = eval(text, {"np": np, "__builtins__": {}})
        assert got.shape == arr.shape
        np.testing.assert_array_equal(bits(got), bits(arr))


# ── records: unread record parameters, leaves of record globals ──────────

def test_export_unread_record_parameter(bp, tmp_path):
    bp.exec("""
def f(θ, x) = sum(x^2)
export grad(f, wrt=x) to "a.py"
export f to "b.py"
export grad(f) to "c.py"
""", filename=str(tmp_path / "x.bp"))
    theta = {"W": [[1.0, 2.0]], "b": 0.5}
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(load(tmp_path / "a.py")["grad_f"](theta, x), 2 * x)
    assert float(load(tmp_path / "b.py")["f"](theta, x)) == 5.0
    g = load(tmp_path / "c.py")["grad_f"](theta, x)                 # zeros, as records
    assert set(g) == {"W", "b"}
    np.testing.assert_array_equal(g["W"], np.zeros((1, 2)))
    assert np.shape(g["b"]) == () and float(g["b"]) == 0.0
    ours = bp.function("grad(f)")(theta, x)
    assert set(ours) == set(g) and all(np.array_equal(ours[k], g[k]) for k in g)
    t = load(tmp_path / "c.py")["grad_f"]((1.0, [2.0, 3.0]), x)     # a tuple, as a tuple
    assert isinstance(t, tuple) and np.array_equal(t[1], [0.0, 0.0])


def test_export_leaves_of_record_and_tuple_globals(bp, tmp_path):
    m = export(bp, tmp_path, """
P = {a: [1, 2, 3], b: 2}
T = ([4, 5, 6], 7)
def f(x) = sum(x * P.a) * P.b + sum(x * T[0]) + T[1]
export grad(f) to "m.py"
export f to "n.py"
P = {a: [10, 20, 30], b: 0}
T = 0
""")
    n = load(tmp_path / "n.py")
    x = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(m["grad_f"](x), [2 * 1 + 4, 2 * 2 + 5, 2 * 3 + 6])
    assert float(n["f"](x)) == 6 * 2 + 15 + 7
    # the module holds the values at export: rebinding P and T afterwards changes nothing
    np.testing.assert_array_equal(load(tmp_path / "m.py")["grad_f"](x), [6.0, 9.0, 12.0])
    assert "P_a" in n and "T_0" in n


def test_export_returns_copies_not_the_modules_constants(bp, tmp_path):
    m = export(bp, tmp_path, 'W = [1, 2]\nexport x -> W to "m.py"')
    out = m["f"](0.0)
    out[0] = 99.0
    np.testing.assert_array_equal(m["f"](0.0), [1.0, 2.0])


# ── every op: its code under hostile parameter names, and no builtin in a body ──

def _op_cases():
    import test_ops_forward as tf
    from dsl import ops
    return [c for c in tf.CASES if ops.REGISTRY[c.values[0]].params]


@pytest.mark.parametrize("name, sample", _op_cases())
def test_export_every_op_under_hostile_names(name, sample):
    """Each op's code, with its inputs named like the module's own names, gives the
    kernel's values; and the function reads nothing from the module but NumPy,
    the helpers and its constants (no builtin, which a parameter could shadow)."""
    import symtable
    from dsl import codegen
    from test_ops_forward import run_exported
    hostile = ["np", "float", "_unbroadcast", "t1", "_C0", "lambda", "slice", "int", "None",
               "_sigmoid", "math"]
    names = [hostile[i % len(hostile)] + "_" * (i // len(hostile))
             for i in range(len(sample.inputs))]
    got, want, source = run_exported(name, sample, names)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, equal_nan=True)
    table = symtable.symtable(source, "<export>", "exec")
    fn, = [t for t in table.get_children() if t.get_name() == "f"]
    read = {s.get_name() for s in fn.get_symbols() if s.is_global()}
    defined, _ = codegen._reserved()
    consts = {s.get_name() for s in table.get_symbols() if s.is_assigned()}
    assert read <= defined | consts, f"{name}: the body reads {sorted(read - defined - consts)}"
