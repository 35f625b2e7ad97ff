"""Functions of record parameters print, list and export expanded (issue 13).

A parameter without an annotation that the body reads fields of (`θ.W`) is
lowered, for printing, `graph` and `export`, as a record of inputs of unknown
shape, one per field read: the printed derivative reads those leaves (`θ.W`),
the listing shows them, and the exported module takes a dict.  The numbers
are compared with the in-session transform (and, for the two-layer model, with
a gradient derived by hand).
"""
import json
import subprocess
import sys

import numpy as np
import pytest

import dsl

NET = "def net(θ, x) = sum(tanh(θ.l1.W @ x + θ.l1.b) * θ.out)"
THETA = {"l1": {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.1, 0.2])},
         "out": np.array([1.0, -1.0])}
X = np.array([0.5, -0.5])


def hand_gradient(theta, x):
    """∂/∂θ of sum(tanh(W x + b) ⊙ o): with h = tanh(W x + b) and d = o ⊙ (1 - h²),
    W̄ = d xᵀ, b̄ = d, ō = h."""
    h = np.tanh(theta["l1"]["W"] @ x + theta["l1"]["b"])
    d = theta["out"] * (1 - h ** 2)
    return {"l1": {"W": np.outer(d, x), "b": d}, "out": h}


def assert_records_close(got, want):
    assert list(got) == list(want)
    for k in want:
        if isinstance(want[k], dict):
            assert_records_close(got[k], want[k])
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-13, atol=1e-15)


def to_plain(r):
    return {k: to_plain(v) if not isinstance(v, np.ndarray) else v for k, v in r.items()}


@pytest.fixture
def bp():
    interp = dsl.Interpreter()
    interp.exec(NET)
    interp["θ0"] = dsl.Interpreter().eval("{l1: {W: [[1, 2], [3, 4]], b: [0.1, 0.2]}, out: [1, -1]}")
    interp["x0"] = X
    return interp


def test_printed_gradient_of_a_record_reads_its_leaves_and_reads_back(bp):
    text = bp.show("grad(net)")
    assert text.startswith("(θ, x) -> ") and "θ.l1.W" in text and "grad(" not in text
    bp.exec("g = " + text)
    want = hand_gradient(THETA, X)
    assert_records_close(to_plain(bp.eval("g(θ0, x0)")), want)
    assert_records_close(to_plain(bp.eval("grad(net)(θ0, x0)")), want)


@pytest.mark.parametrize("param, fields", [("v", ("t1", "sum")), ("sum", ("x", "np")),
                                           ("t1", ("v", "lambda")), ("x", ("x", "u"))])
def test_record_parameters_and_fields_with_hostile_names(param, fields):
    a, b = fields
    bp = dsl.Interpreter()
    bp.exec(f"def f({param}, y) = bp.sum(({param}.{a} * y + {param}.{b})^2)")
    for transform in ("f", "grad(f)", "grad(f, wrt=1)", "value_and_grad(f)"):
        text = bp.show(transform)
        assert "grad(" not in text.split("->", 1)[0], text
        bp.exec("g = " + text)
        args = f"{{{a}: [1, 2], {b}: 0.5}}, [3, -1]"
        assert bp.format(bp.eval(f"g({args})")) == bp.format(bp.eval(f"{transform}({args})"))


def test_graph_lists_the_leaves_of_a_record_parameter(bp):
    listing = bp.exec("graph grad(net)") or str(bp.graph("grad(net)"))
    lines = listing.splitlines()
    assert lines[:4] == ["θ.l1.W: shape(θ.l1.W)", "θ.l1.b: shape(θ.l1.b)",
                         "θ.out: shape(θ.out)", "x: shape(x)"]


def test_export_of_a_record_function_takes_a_dict(bp, tmp_path):
    path = tmp_path / "net_grad.py"
    bp.exec(f'export grad(net) to "{path}"')
    source = path.read_text()
    assert "import dsl" not in source
    arg = ("{'l1': {'W': np.array([[1.0, 2.0], [3.0, 4.0]]), 'b': np.array([0.1, 0.2])}, "
           "'out': np.array([1.0, -1.0])}")
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import json, numpy as np, "
              f"net_grad; g = net_grad.grad_net({arg}, np.array([0.5, -0.5])); "
              "print(json.dumps({'W': g['l1']['W'].tolist(), 'b': g['l1']['b'].tolist(), "
              "'out': g['out'].tolist()}))")
    out = json.loads(subprocess.run([sys.executable, "-I", "-c", script], capture_output=True,
                                    text=True, check=True).stdout)
    want = hand_gradient(THETA, X)
    np.testing.assert_allclose(out["W"], want["l1"]["W"], rtol=1e-13)
    np.testing.assert_allclose(out["b"], want["l1"]["b"], rtol=1e-13)
    np.testing.assert_allclose(out["out"], want["out"], rtol=1e-13)


def test_export_record_leaves_keep_python_names_apart(tmp_path):
    # a parameter `np` with a field `lambda`, beside a parameter called np_lambda
    bp = dsl.Interpreter()
    bp.exec("def f(np, np_lambda) = sum(np.lambda * np_lambda)")
    path = tmp_path / "m.py"
    bp.exec(f'export grad(f) to "{path}"')
    scope: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    g = scope["grad_f"]({"lambda": np.array([1.0, 2.0])}, np.array([3.0, 4.0]))
    np.testing.assert_array_equal(g["lambda"], [3.0, 4.0])


def test_a_record_read_only_through_another_function_still_prints(bp):
    # fields read inside a helper are not seen: the transform prints unexpanded,
    # and still reads back
    bp.exec("def inner(p) = sum(p.w^2)\ndef outer(q) = inner(q)")
    text = bp.show("grad(outer)")
    bp.exec("g = " + text)
    assert bp.format(bp.eval("g({w: [1, 2]})")) == "{w: [2, 4]}"
