"""Every registered op's forward behaviour: kernel values and shape rules.

Walks `ops.REGISTRY` (STYLE B7), so a new op is covered as soon as it has
a row in the FORWARD table of its family's module, tests/ops_samples/<family>.py
(merged into `SAMPLES`); an op without one fails `test_ops_forward_table_covers_registry`.
For each sample (several shapes per op, broadcasting included):

- value: `ops.apply` on constant inputs (which folds by running the kernel)
  equals a NumPy/`math` reference written here, to 1e-12 relative;
- shape: the same op applied to *input* nodes (nothing folds) has the shape
  of the reference result;
- symbolic: on inputs of the symbolic shape `shape(x)` the node's shape is a
  SymShape, or exactly what the rule can prove (`Spec.symbolic`).

Then shape rules against NumPy on random shapes (hypothesis), the shape
errors each family must raise, and the builtins that are Macros (mse,
clip, norm, …) through `Interpreter.eval`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl
from dsl import graph, ops, shapes
from dsl.errors import BpShapeError
from ops_samples import FORWARD as SAMPLES              # the tables: one module per family
from ops_samples import MACROS as FAMILY_MACROS
from ops_samples import SHAPE_ERRORS as FAMILY_SHAPE_ERRORS
from ops_samples._forward import Sample, U, index_key, ref_matmul

RTOL = 1e-12


def assert_close(actual, expected) -> None:
    """Relative to 1e-12 elementwise, with an absolute floor of 1e-12 × the
    result's largest magnitude (relative error means nothing at a rounded 0)."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    assert actual.dtype == np.float64
    finite = expected[np.isfinite(expected)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, equal_nan=True)


def _cases():
    for name in sorted(ops.REGISTRY):
        spec = SAMPLES.get(name)
        for sample in spec.samples if spec else ():
            yield pytest.param(name, sample, id=f"{name}-{sample.label}")


CASES = list(_cases())


def _reference(name: str, sample: Sample) -> np.ndarray:
    ref = sample.ref or SAMPLES[name].ref
    with np.errstate(all="ignore"):
        return np.asarray(ref(*sample.inputs, **sample.attrs), dtype=np.float64)


# ── coverage ─────────────────────────────────────────────────────────────

def test_ops_forward_table_covers_registry():
    # host and host_vjp run the user's Python: tests/test_host.py covers them; the
    # structured loops' ops (dsl/loops.py) have a body graph, no sample row: tests/test_loops.py.
    missing = sorted(set(ops.REGISTRY) - set(SAMPLES) - {"host", "host_vjp", "loop", "loop_read",
                                                          "loop_write"})
    assert not missing, f"ops without FORWARD samples in tests/ops_samples/<family>.py: {missing}"


def test_ops_forward_table_has_no_stale_rows():
    stale = sorted(set(SAMPLES) - set(ops.REGISTRY))
    assert not stale, f"rows for ops that are not registered: {stale}"


def test_ops_forward_samples_give_every_attribute():
    for name, spec in SAMPLES.items():
        opdef = ops.REGISTRY.get(name)
        if opdef is None:
            continue
        for sample in spec.samples:
            assert set(sample.attrs) >= {a.name for a in opdef.attrs}, (name, sample.label)
            if not opdef.variadic:
                assert len(sample.inputs) == len(opdef.params), (name, sample.label)


# ── (a) values, (b) shape rules ──────────────────────────────────────────

@pytest.mark.parametrize("name, sample", CASES)
def test_ops_forward_kernel_matches_reference(name, sample):
    expected = _reference(name, sample)
    node = ops.apply(name, [ops.const(x) for x in sample.inputs], dict(sample.attrs))
    assert node.op == "const", f"{name} on constants did not fold"
    assert_close(node.value, expected)


@pytest.mark.parametrize("name, sample", CASES)
def test_ops_forward_shape_rule_matches_kernel(name, sample):
    expected = _reference(name, sample)
    opdef = ops.REGISTRY[name]
    assert opdef.shape([x.shape for x in sample.inputs], dict(sample.attrs), None) == expected.shape
    inputs = [graph.make_input(f"x{i}", x.shape) for i, x in enumerate(sample.inputs)]
    node = ops.apply(name, inputs, dict(sample.attrs))
    assert node.shape == expected.shape


# Random shapes (zero-size axes included) and attributes: the rule gives
# NumPy's shape exactly when NumPy accepts, and raises a BpError when it refuses.

DIMS = st.lists(st.sampled_from([0, 1, 1, 2, 3]), max_size=4).map(tuple)
SLICE_PART = st.sampled_from([None, -4, -1, 0, 1, 2, 5])
INDEX_ITEM = st.one_of(st.tuples(st.just("i"), st.integers(-3, 3)),
                       st.tuples(st.just("s"), SLICE_PART, SLICE_PART,
                                 st.sampled_from([None, -2, -1, 1, 2, 3])))
SHAPE_RULES = settings(max_examples=200, deadline=None, derandomize=True)


def assert_rule_agrees_with_numpy(name, input_shapes, attrs, numpy_fn):
    try:
        want = np.shape(numpy_fn(*[np.ones(sh) for sh in input_shapes]))
    except (ValueError, IndexError, TypeError) as err:
        with pytest.raises(dsl.BpError):
            ops.REGISTRY[name].shape(list(input_shapes), attrs, None)
        return
    assert ops.REGISTRY[name].shape(list(input_shapes), attrs, None) == want


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_broadcast_matches_numpy(a, b):
    assert_rule_agrees_with_numpy("add", [a, b], {}, np.add)


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_matmul_matches_numpy(a, b):
    assert_rule_agrees_with_numpy("matmul", [a, b], {}, np.matmul)


@SHAPE_RULES
@given(DIMS, st.one_of(st.none(), st.lists(st.integers(-5, 4), max_size=3).map(tuple)),
       st.booleans())
def test_ops_forward_shape_rule_reduction_matches_numpy(a, axis, keepdims):
    assert_rule_agrees_with_numpy("sum", [a], {"axis": axis, "keepdims": keepdims},
                                  lambda x: np.sum(x, axis=axis, keepdims=keepdims))


@SHAPE_RULES
@given(DIMS, st.lists(INDEX_ITEM, max_size=3).map(tuple))
def test_ops_forward_shape_rule_index_matches_numpy(a, items):
    assert_rule_agrees_with_numpy("index", [a], {"items": items}, lambda x: x[index_key(items)])


@SHAPE_RULES
@given(DIMS, st.lists(st.sampled_from([-1, 0, 1, 2, 3, 6]), max_size=3).map(tuple))
def test_ops_forward_shape_rule_reshape_matches_numpy(a, target):
    assert_rule_agrees_with_numpy("reshape", [a], {"shape": target}, lambda x: np.reshape(x, target))


@SHAPE_RULES
@given(st.lists(DIMS, min_size=1, max_size=3), st.integers(-3, 3), st.booleans())
def test_ops_forward_shape_rule_concat_stack_match_numpy(shs, axis, stacking):
    if stacking:
        assert_rule_agrees_with_numpy("stack", shs, {"axis": axis},
                                      lambda *xs: np.stack(xs, axis=axis))
    else:
        assert_rule_agrees_with_numpy("concat", shs, {"axis": axis},
                                      lambda *xs: np.concatenate(xs, axis=axis))


@SHAPE_RULES
@given(DIMS, st.lists(st.integers(-5, 4), min_size=1, max_size=2).map(tuple))
def test_ops_forward_shape_rule_expand_dims_matches_numpy(a, axis):
    assert_rule_agrees_with_numpy("expand_dims", [a], {"axis": axis},
                                  lambda x: np.expand_dims(x, axis))


@SHAPE_RULES
@given(DIMS, DIMS)
def test_ops_forward_shape_rule_broadcast_to_matches_numpy(a, target):
    assert_rule_agrees_with_numpy("broadcast_to", [a], {"shape": target},
                                  lambda x: np.broadcast_to(x, target))


@SHAPE_RULES
@given(DIMS, st.data())
def test_ops_forward_shape_rule_transpose_matches_numpy(a, data):
    axes = data.draw(st.one_of(st.none(), st.permutations(range(len(a))).map(tuple),
                               st.lists(st.integers(-3, 3), min_size=len(a), max_size=len(a))
                               .map(tuple)))
    assert_rule_agrees_with_numpy("transpose", [a], {"axes": axes}, lambda x: np.transpose(x, axes))


# ── (c) symbolic shapes ──────────────────────────────────────────────────

S = shapes.SymShape.of("x")


def _symbolic_node(name: str, input_shapes) -> graph.Node:
    spec = SAMPLES[name]
    attrs = dict(spec.sym_attrs if spec.sym_attrs is not None else spec.samples[0].attrs)
    inputs = [graph.make_input("x", sh) for sh in input_shapes]
    return ops.apply(name, inputs, attrs)


SYMBOLIC_OPS = [name for name in sorted(ops.REGISTRY)
                if name in SAMPLES and SAMPLES[name].samples[0].inputs]


@pytest.mark.parametrize("name", SYMBOLIC_OPS)
def test_ops_forward_symbolic_shape(name):
    spec = SAMPLES[name]
    node = _symbolic_node(name, [S] * len(spec.samples[0].inputs))
    if spec.symbolic == "any":
        assert isinstance(node.shape, shapes.SymShape), node.shape
    elif spec.symbolic == "same":
        assert node.shape == S and isinstance(node.shape, shapes.SymShape), node.shape
    else:
        assert node.shape == spec.symbolic and isinstance(node.shape, tuple), node.shape


ELEMENTWISE_BINARY = [name for name in SYMBOLIC_OPS
                      if SAMPLES[name].symbolic == "same" and len(SAMPLES[name].samples[0].inputs) == 2
                      and name not in ("unbroadcast", "broadcast_like")]


@pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
def test_ops_forward_symbolic_broadcast_with_scalar_is_same(name):
    assert _symbolic_node(name, [S, ()]).shape == S
    assert _symbolic_node(name, [(), S]).shape == S


@pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
def test_ops_forward_symbolic_broadcast_with_other_shape_stays_symbolic(name):
    for other in [(3,), (2, 1), shapes.SymShape.of("y")]:
        shape = _symbolic_node(name, [S, other]).shape
        assert isinstance(shape, shapes.SymShape) and shape != S, (other, shape)


def test_ops_forward_symbolic_where_of_three():
    assert _symbolic_node("where", [S, S, ()]).shape == S
    assert isinstance(_symbolic_node("where", [(), S, (3,)]).shape, shapes.SymShape)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "logsumexp"])
def test_ops_forward_symbolic_partial_reduction_is_symbolic(name):
    x = graph.make_input("x", S)
    for attrs in [dict(axis=(0,), keepdims=False), dict(axis=None, keepdims=True)]:
        assert isinstance(ops.apply(name, [x], attrs).shape, shapes.SymShape), attrs


def test_ops_forward_symbolic_reshape_with_inferred_dim_is_symbolic():
    x = graph.make_input("x", S)
    assert isinstance(ops.apply("reshape", [x], {"shape": (-1, 2)}).shape, shapes.SymShape)


def test_ops_forward_symbolic_same_shape_node_is_hash_consed():
    x = graph.make_input("x", S)
    assert ops.apply("tanh", [x]) is ops.apply("tanh", [x])


# ── (d) shape errors ─────────────────────────────────────────────────────

SHAPE_ERRORS = [
    ("matmul", [(2, 3), (4, 2)], {}, "inner dimensions"),
    ("matmul", [(3,), (4,)], {}, "inner dimensions"),
    ("matmul", [(2, 2, 3), (3, 3, 2)], {}, "broadcast"),
    ("matmul", [(), (3,)], {}, "rank"),
    ("add", [(3,), (4,)], {}, "broadcast"),
    ("mul", [(2, 3), (3, 2)], {}, "broadcast"),
    ("less", [(2,), (3, 3)], {}, "broadcast"),
    ("where", [(2,), (3,), (3,)], {}, "broadcast"),
    ("maximum", [(5, 2), (5,)], {}, "broadcast"),
    ("concat", [(2, 3), (3,)], {"axis": 0}, "rank"),
    ("concat", [(2, 3), (2, 4)], {"axis": 0}, "differ"),
    ("concat", [(), ()], {"axis": 0}, "rank"),
    ("concat", [(2, 3)], {"axis": 2}, "axis"),
    ("stack", [(3,), (4,)], {"axis": 0}, "equal"),
    ("stack", [(3,), (3,)], {"axis": 2}, "axis"),
    ("reshape", [(2, 3)], {"shape": (4, 2)}, "reshape"),
    ("reshape", [(2, 3)], {"shape": (4, -1)}, "reshape"),
    ("reshape", [(0, 3)], {"shape": (0, -1)}, "reshape"),
    ("broadcast_to", [(3,)], {"shape": (2, 4)}, "broadcast"),
    ("broadcast_to", [(2, 3)], {"shape": (3,)}, "broadcast"),
    ("inv", [(2, 3)], {}, "square"),
    ("inv", [(3,)], {}, "square"),
    ("det", [(3, 2)], {}, "square"),
    ("solve", [(3, 3), (2,)], {}, "differ"),
    ("solve", [(2, 3), (2,)], {}, "square"),
    ("trace", [(3,)], {}, "matrix"),
    ("trace", [()], {}, "matrix"),
    ("diag", [()], {}, "vector, a matrix"),
    ("transpose", [(2, 3)], {"axes": (0, 0)}, "axis"),
    ("transpose", [(2, 3)], {"axes": (0, 1, 2)}, "axis"),
    ("sum", [(2, 3)], {"axis": (2,), "keepdims": False}, "out of range"),
    ("logsumexp", [(2, 3)], {"axis": (0, 0), "keepdims": False}, "repeated"),
    ("mean", [()], {"axis": (0,), "keepdims": False}, "out of range"),
    ("softmax", [()], {"axis": -1}, "rank"),
    ("log_softmax", [(2, 3)], {"axis": 2}, "out of range"),
    ("cross_entropy", [(2, 3), (3, 2)], {"axis": -1}, "differ"),
    ("index", [(3,)], {"items": (("i", 0), ("i", 0))}, "too many"),
    ("expand_dims", [(3,)], {"axis": (3,)}, "out of range"),
    ("broadcast_like", [(3,), (2, 4)], {}, "broadcast"),
    ("triu_unpack", [(5,)], {"n": 3, "k": 0}, "entries"),
    ("triu_unpack", [()], {"n": 3, "k": 1}, "entries"),
    ("triu_pack", [(2, 3)], {"k": 0}, "square"),
] + FAMILY_SHAPE_ERRORS


@pytest.mark.parametrize("name, input_shapes, attrs, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{c[1]}" for c in SHAPE_ERRORS])
def test_ops_forward_shape_error_is_raised(name, input_shapes, attrs, words):
    if name not in ops.REGISTRY:
        pytest.skip(f"{name} is not registered")
    inputs = [graph.make_input(f"x{i}", sh) for i, sh in enumerate(input_shapes)]
    with pytest.raises(BpShapeError) as info:
        ops.apply(name, inputs, attrs)
    assert words in info.value.message


@pytest.mark.parametrize("name, input_shapes, attrs, words", SHAPE_ERRORS[:12],
                         ids=[f"{c[0]}-{c[1]}" for c in SHAPE_ERRORS[:12]])
def test_ops_forward_shape_error_on_constants_too(name, input_shapes, attrs, words):
    inputs = [ops.const(np.ones(sh)) for sh in input_shapes]
    with pytest.raises(BpShapeError):
        ops.apply(name, inputs, attrs)


def test_ops_forward_shape_error_carries_its_span():
    span = dsl.errors.Span("m.bp", 3, 14, 3, 20)
    a, b = graph.make_input("a", (3, 2)), graph.make_input("b", (3,))
    with pytest.raises(BpShapeError) as info:
        ops.apply("matmul", [a, b], {}, span)
    assert info.value.span == span
    assert str(info.value).startswith("m.bp:3:14: shape error: matmul of [3, 2] and [3]")


# ── special values and identities the builder must respect ──────────────

def test_ops_forward_pow_follows_numpy_for_fractional_power_of_negative():
    node = ops.apply("pow", [ops.const(-8.0), ops.const(1.0 / 3.0)])
    assert np.isnan(node.value)


def test_ops_forward_constant_folding_keeps_nan_and_inf():
    inf, nan = ops.const(np.inf), ops.const(np.nan)
    assert np.isnan(ops.apply("sub", [inf, inf]).value)
    assert np.isnan(ops.apply("mul", [nan, ops.const(0.0)]).value)
    assert ops.apply("div", [ops.const(1.0), ops.const(0.0)]).value == np.inf
    assert ops.apply("log", [ops.const(0.0)]).value == -np.inf


@pytest.mark.parametrize("exponent", [np.inf, -np.inf, np.nan])
def test_ops_forward_pow_with_nonfinite_constant_exponent_builds(exponent):
    x = graph.make_input("x", (3,))
    node = ops.apply("pow", [x, ops.const(exponent)])
    assert node.shape == (3,)


@pytest.mark.parametrize("exponent", [np.inf, np.nan])
def test_ops_forward_pow_with_nonfinite_exponent_in_a_function(exponent):
    bp = dsl.Interpreter()
    bp["p"] = exponent
    bp.exec("def h(x) = x^p")
    with np.errstate(all="ignore"):
        expected = np.power(np.array([0.5, 1.0, 2.0]), exponent)
    assert_close(bp.eval("h([0.5, 1, 2])"), expected)


@pytest.mark.parametrize("src", ["mean([])", "mean(zeros(0, 3), axis=0)",
                                 "cross_entropy(zeros(0, 3), zeros(0, 3))"])
def test_ops_forward_empty_mean_is_nan_without_a_python_warning(src):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = dsl.Interpreter().eval(src)
    assert np.all(np.isnan(got))
    assert not caught, [str(w.message) for w in caught]


# ── builtins that are Macros, through bp source ─────────────────────────

def _session(**arrays) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    for name, value in arrays.items():
        bp[name] = value
    return bp


A23, B23 = U(2, 3), U(2, 3)
V3, W3 = U(3), U(3)
M34 = U(3, 4)


def _macro_cases():
    lo, hi = U(2, 3, lo=-1.0, hi=0.0), U(3, lo=0.0, hi=1.0)
    return [
        ("mse", "mse(A, B)", dict(A=A23, B=B23), np.mean((A23 - B23) ** 2)),
        ("mse", "mse(A, v)", dict(A=A23, v=V3), np.mean((A23 - V3) ** 2)),
        ("mse", "mse(s, v)", dict(s=np.array(0.5), v=V3), np.mean((0.5 - V3) ** 2)),
        ("clip", "clip(A, lo, hi)", dict(A=A23, lo=lo, hi=hi), np.minimum(np.maximum(A23, lo), hi)),
        ("clip", "clip(v, -0.5, 0.5)", dict(v=V3), np.clip(V3, -0.5, 0.5)),
        ("norm", "norm(v)", dict(v=V3), math.sqrt(math.fsum(V3 ** 2))),
        ("norm", "norm(A)", dict(A=A23), math.sqrt(math.fsum((A23 ** 2).ravel()))),
        ("norm", "norm(s)", dict(s=np.array(-3.0)), 3.0),
        ("dot", "dot(v, w)", dict(v=V3, w=W3), math.fsum(V3 * W3)),
        ("dot", "dot(A, M)", dict(A=A23, M=M34), ref_matmul(A23, M34)),
        ("dot", "dot(A, v)", dict(A=A23, v=V3), ref_matmul(A23, V3)),
        ("flatten", "flatten(A)", dict(A=A23), np.array([A23[i, j] for i in range(2) for j in range(3)])),
        ("flatten", "flatten(s)", dict(s=np.array(2.0)), np.array([2.0])),
        ("size", "size(A)", dict(A=A23), 6.0),
        ("size", "size(s)", dict(s=np.array(2.0)), 1.0),
        ("ndim", "ndim(A)", dict(A=A23), 2.0),
        ("ndim", "ndim(s)", dict(s=np.array(2.0)), 0.0),
        ("randn", "randn(2, 3, seed=7)", {}, np.random.default_rng(7).standard_normal((2, 3))),
        ("randn", "randn((4,), seed=1)", {}, np.random.default_rng(1).standard_normal(4)),
        ("rand", "rand(2, 3, seed=7)", {}, np.random.default_rng(7).random((2, 3))),
        ("rand", "rand(seed=3)", {}, np.random.default_rng(3).random(())),
    ]


MACRO_CASES = _macro_cases() + FAMILY_MACROS


def test_ops_forward_macro_table_covers_builtins():
    macros = {n for n, b in ops.BUILTINS.items() if isinstance(b, ops.Macro)}
    tested = {c[0] for c in MACRO_CASES} | {"shape", "range"}
    assert not macros - tested, f"Macro builtins without a forward test: {sorted(macros - tested)}"


@pytest.mark.parametrize("name, src, arrays, expected", MACRO_CASES,
                         ids=[c[1] for c in MACRO_CASES])
def test_ops_forward_macro_matches_numpy(name, src, arrays, expected):
    assert_close(_session(**arrays).eval(src), expected)


def test_ops_forward_macro_shape_is_a_tuple_of_scalars():
    bp = _session(A=U(2, 3, 4), s=np.array(1.0))
    got = bp.eval("shape(A)")
    assert isinstance(got, tuple) and [float(d) for d in got] == [2.0, 3.0, 4.0]
    assert all(np.asarray(d).shape == () for d in got)
    assert bp.eval("shape(s)") == ()
    assert_close(bp.eval("zeros(shape(A))"), np.zeros((2, 3, 4)))


def test_ops_forward_macro_random_without_seed_is_reproducible_per_session():
    first, second = dsl.Interpreter(), dsl.Interpreter()
    a, b = first.eval("randn(3)"), first.eval("randn(3)")
    assert a.shape == (3,) and not np.array_equal(a, b)
    assert np.array_equal(second.eval("randn(3)"), a)
    assert not np.array_equal(dsl.Interpreter(seed=1).eval("randn(3)"), a)
    u = dsl.Interpreter().eval("rand(1000)")
    assert u.min() >= 0.0 and u.max() < 1.0 and 0.4 < u.mean() < 0.6


def test_ops_forward_macro_range_outside_a_loop_is_a_type_error():
    with pytest.raises(dsl.BpTypeError):
        dsl.Interpreter().eval("range(3)")


@pytest.mark.parametrize("src, kind", [
    ("mse(ones(3), ones(4))", dsl.BpShapeError),
    ("dot(ones(2, 3), ones(2))", dsl.BpShapeError),
    ("clip(ones(3), ones(2), 1)", dsl.BpShapeError),
    ("mse(ones(3))", dsl.BpTypeError),
    ("norm((1, 2))", dsl.BpTypeError),
])
def test_ops_forward_macro_errors(src, kind):
    with pytest.raises(kind):
        dsl.Interpreter().eval(src)


# ── (c) export: every op's NumPy code gives the kernel's values ──────────

@pytest.mark.parametrize("name, sample", [c for c in CASES if ops.REGISTRY[c.values[0]].params])
def test_ops_forward_export_matches_kernel(name, sample):
    """The code `export` writes for the op, run alone (only NumPy in scope),
    against the op's kernel on the same inputs."""
    got, want, _ = run_exported(name, sample, [f"x{i}" for i in range(len(sample.inputs))])
    assert_close(got, want)


def run_exported(name, sample, names):
    """The op alone on inputs called `names`, exported and run with only NumPy in scope,
    and the op's kernel on the same inputs: (exported result, kernel result, source)."""
    from dsl import codegen
    from dsl.evaluate import Plan
    inputs = [graph.make_input(n, np.shape(x)) for n, x in zip(names, sample.inputs)]
    node = ops.apply(name, inputs, dict(sample.attrs))
    source = codegen.module({"f": (names, inputs, node)}, {})
    scope: dict = {}
    exec(compile(source, f"<export of {name}>", "exec"), scope)
    with np.errstate(all="ignore"):
        got = scope["f"](*sample.inputs)
        want = Plan(inputs, [node]).run([np.asarray(x, dtype=float) for x in sample.inputs])[0]
    return got, want, source
