"""Printed derivatives read back for every name and every rank (issue 13; SPEC §13).

Hypothesis writes functions whose parameter and global names are drawn
adversarially (the names transforms and the printer use themselves: v, u, z,
t1; builtin names; Python keywords; bp's constants), and calls each at several
shape assignments of different ranks (scalars, vectors, matrices).  For every
transform of SPEC §5, `g = <printed text>` is read back in the same session,
where those names are bound, and must give the numbers the transform itself
gives; the gradient must also match central finite differences of the function
(an independent reference).  `python -m tests.fuzz_long` runs the same with
more examples.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
pytestmark = [pytest.mark.filterwarnings("ignore:Generating overly large repr"),
              # an exported module is plain NumPy: at a point with no value (std of one
              # number) it warns as NumPy does, and the nan it gives is compared
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

# Names a transform, the printer or the exporter might use, builtins, Python's words.
NAMES = ["x", "v", "u", "z", "t1", "t2", "z1", "v1", "u1", "sum", "mean", "unbroadcast",
         "broadcast_like", "grad", "cos", "inf", "nan", "e", "pi", "lambda", "np", "float",
         "None", "print_", "_C0", "grad_f", "λ", "θ_2"]

BUILTIN_NAMES = {"sum", "mean", "unbroadcast", "broadcast_like", "grad", "cos"}

UNARY = ["sin({})", "cos({})", "tanh({})", "sigmoid({})", "softplus({})", "({})^2", "({})^3",
         "exp(tanh({}))", "-({})", "log(1 + ({})^2)"]
# Every op family of SPEC §6, at shapes where it applies (a shape where the function
# itself is an error is skipped): nn, linear algebra with a global matrix Q, shapes,
# selection, a closure called in place, an unrolled loop.
FAMILIES = ["softmax({})", "log_softmax({})", "({} @ Q)", "(Q @ {})", "flatten({})",
            "transpose({})", "stack({0}, 2 * {0})", "concat({0}, {0})", "maximum({0}, 0.5 * {0})",
            "(if {0} > 0.1 then {0}^2 else -{0})", "(z -> z * sin(z))({})", "(t1 -> t1^2 + 1)({})",
            "clip({0}, -1, 1)",
            # the standard library (issue 14): elementwise, scans, shapes, gathers, contractions
            # (not cumprod, inner, kron, tensordot, top_k: their derivatives need known shapes,
            # as docs/language.md says, and a parameter here has none)
            "erf({})", "gelu({})", "atan2({0}, 1 + ({0})^2)", "hypot({0}, 0.5)", "asinh({})",
            "cbrt(1 + ({})^2)", "logaddexp({0}, 2 * {0})", "square({})", "exp2({})",
            "reciprocal(2 + ({})^2)", "cumsum({})", "var({})", "std({0}, ddof=1)",
            "flip({})", "roll({0}, 1)", "tile({0}, 2)", "zeros_like({0}) + {0}",
            "stop_gradient({0}) * {0}", "take({0}, [0, 0])", "tril({})",
            'einsum("...i,...i->...", {0}, {0})', "logsumexp({0}, axis=-1)", "({0})[[0, 0]]",
            # decompositions of a matrix made from the parameter (3 elements: others are
            # shape errors, and skipped)
            "logdet(2 * eye(3) + outer({0}, {0}))", "cholesky(2 * eye(3) + outer({0}, {0}))",
            "eigh(2 * eye(3) + outer({0}, {0}))[0]", "pinv(Q + 0.1 * outer({0}, {0}))",
            "solve_triangular(Q + 2 * eye(3), {0}, lower=1)",
            # more of the standard library: the rest of the elementwise and shape families,
            # contractions, sorting and the neural-network ops
            "mod({0}, 0.7)", "nan_to_num({0})", "squeeze({0})", "repeat({0}, 2)", "pad({0}, 1)",
            "split(concat({0}, {0}), 2)[1]", "sort({0})",    # (not inner, kron: known ranks)
            "cross({0}, [0.5, 1, 2])", "layer_norm({0})",
            "conv1d(reshape({0}, 1, 1, -1), [[[1, -0.5]]])",
            "avg_pool2d(reshape(concat({0}, {0}), 1, 1, 2, -1), 2, stride=1)"]
BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / (1 + ({})^2))"]
Q = np.array([[0.8, -0.3, 0.5], [0.2, 0.6, -0.7], [-0.4, 0.1, 0.9]])
REDUCE = ["sum({0})", "mean({0})", "sum({0}) * mean({0}^2)", "logsumexp({0})"]

SHAPES = [(), (3,), (2, 3)]


@st.composite
def programs(draw):
    """(parameter names, globals {name: value}, body text)."""
    n_params = draw(st.integers(1, 2))
    params = draw(st.lists(st.sampled_from(NAMES), min_size=n_params, max_size=n_params, unique=True))
    # Globals may rebind builtins too (sum = 0.5): printed text then writes bp.sum.
    glob = draw(st.lists(st.sampled_from([n for n in NAMES if n not in params]),
                         min_size=2, max_size=2, unique=True))
    leaves = st.sampled_from(params * 3 + glob + ["0.5", "2"])
    # the body cannot call a builtin that a parameter or a global shadows (its
    # derivative still may)
    bound = set(params) | set(glob)
    unary = [t for t in UNARY + FAMILIES if not _tokens(t) & (bound | {"z", "t1"})] \
        + [t for t in FAMILIES if (t.startswith("(z ") or t.startswith("(t1 ")) and not _tokens(t) & bound - {"z", "t1"}]
    reduces = [t for t in REDUCE if not _tokens(t) & bound]

    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(unary), children).map(lambda p: p[0].format(p[1])),
            st.tuples(st.sampled_from(BINARY), children, children).map(lambda p: p[0].format(p[1], p[2])),
        )
    body = draw(st.recursive(leaves, extend, max_leaves=6).filter(
        lambda t: any(p in _tokens(t) for p in params)))
    reduce = draw(st.sampled_from(reduces))
    if draw(st.booleans()):                  # an index read: the adjoint's lambda is printed
        body = f"({body}) + {params[0]}[0]^2"
    values = {g: draw(st.sampled_from([0.5, -1.25, 2.0])) for g in glob}
    body = reduce.format(body)
    if draw(st.booleans()):                  # a block body with an unrolled loop
        acc = draw(st.sampled_from(["acc", "t1", "z", "v"]))
        if acc not in bound and not {"sum", "tanh"} & bound:
            body = (f"{{ {acc} = {params[0]}; for i in range(2) {{ {acc} = tanh({acc}) * 0.5 }}; "
                    f"return {body} + sum({acc}^2) }}")
    return params, values, body


def _tokens(text: str) -> set[str]:
    import re
    return set(re.findall(r"[^\W\d]\w*", text))


def _session(params, values, body) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    bp["Q"] = Q
    for name, value in values.items():
        bp[name] = value
    if body.startswith("{"):
        bp.exec(f"def f({', '.join(params)}) {body}")
    else:
        bp.exec(f"def f({', '.join(params)}) = {body}")
    return bp


def _applies(f, args) -> bool:
    """Whether the function takes arguments of these shapes (a family may not: Q @ x
    needs a last axis of 3)."""
    try:
        f(*args)
        return True
    except dsl.BpError:
        return False


def _arguments(rng, shape, n):
    # a leading index x[0] needs rank ≥ 1; scalars come in at rank 1 then (shape (3,))
    return [rng.uniform(-1.2, 1.2, shape) for _ in range(n)]


def _close(a, b, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"{what}: shape {a.shape} against {b.shape}"
    both = np.isnan(a) & np.isnan(b)          # std(x, ddof=1) of a scalar: nan either way
    assert np.array_equal(np.isnan(a), both) and np.array_equal(np.isnan(b), both), \
        f"{what}: nan in one only\n{a}\n{b}"
    a, b = np.where(both, 0.0, a), np.where(both, 0.0, b)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    err = float(np.max(np.abs(a - b), initial=0.0))
    assert err <= 1e-9 * scale, f"{what}: off by {err:.3e}\n{a}\n{b}"


def _flat(v):
    return [np.asarray(x) for x in (v if isinstance(v, tuple) else (v,))
            for x in (_flat(x) if isinstance(x, tuple) else (x,))]


TRANSFORMS = {                               # transform: what follows f's arguments
    "grad(f)": None, "value_and_grad(f)": None, "jvp(f)": "tangent", "vjp(f)": "cotangent",
    "hvp(f)": "tangent", "hessian(f)": None, "jacobian(f)": None,
}


@SETTINGS
@given(program=programs(), seed=st.integers(0, 2**16))
def test_printed_derivatives_read_back_for_every_name_and_rank(program, seed):
    params, values, body = program
    bp = _session(params, values, body)
    rng = np.random.default_rng(seed)
    f = bp.function("f")
    transforms = dict(TRANSFORMS)
    if len(params) > 1:
        transforms["grad(f, wrt=1)"] = None
    for transform, extra in transforms.items():
        text = bp.show("bp." + transform)      # bp.grad: the program may bind `grad`
        bp.exec(f"g = {text}")
        printed, direct = bp.function("g"), bp.function("bp." + transform)
        for shape in SHAPES:
            if transform in ("hessian(f)", "jacobian(f)") and shape == (2, 3):
                continue                     # a 4-tensor: right, but slow to compare; rank 1 covers it
            args = _transform_arguments(rng, f, shape, len(params), extra)
            if args is not None:
                _close_all(printed(*args), direct(*args), f"{transform} printed as {text} at shape {shape}")


def _transform_arguments(rng, f, shape, n, extra):
    """f's arguments at this shape and what the transform takes after them (a tangent
    of the shape, or the scalar output's cotangent); None where f takes no such shape."""
    args = _arguments(rng, shape, n)
    if not _applies(f, args):
        return None
    if extra == "tangent":
        args.append(rng.uniform(-1, 1, shape))
    elif extra == "cotangent":
        args.append(np.float64(rng.uniform(-1, 1)))
    return args


def _close_all(got, want, what):
    got, want = _flat(got), _flat(want)
    assert len(got) == len(want), what
    for a, b in zip(got, want):
        _close(a, b, what)


@SETTINGS
@given(program=programs(), seed=st.integers(0, 2**16))
def test_printed_gradient_matches_finite_differences_at_every_rank(program, seed):
    params, values, body = program
    if "stop_gradient" in body:
        return                               # its gradient is not the function's slope, by design
    bp = _session(params, values, body)
    text = bp.show("bp.grad(f)")
    bp.exec(f"g = {text}")
    g, f = bp.function("g"), bp.function("f")
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        args = _arguments(rng, shape, len(params))
        if not _applies(f, args) or not np.isfinite(f(*args)):
            continue                         # no shape fits, or no value there (std of one number)
        x = args[0]
        fd = np.empty(x.shape)
        h = 1e-5
        for i in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (float(f(up, *args[1:])) - float(f(down, *args[1:]))) / (2 * h)
        got = np.asarray(g(*args))
        scale = max(1.0, float(np.max(np.abs(fd), initial=0.0)))
        assert got.shape == x.shape and np.max(np.abs(got - fd), initial=0.0) <= 1e-5 * scale, \
            f"printed grad {text} at shape {shape}:\n{got}\nfinite differences:\n{fd}"


def test_the_generator_draws_the_adversarial_names():
    """The strategy reaches the names that broke printing (a check that the fuzz is not tame)."""
    seen = set()

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(program=programs())
    def collect(program):
        seen.update(program[0])
    collect()
    assert {"v", "u", "z", "t1", "sum", "unbroadcast", "inf"} <= seen


EXPORTED = {"grad(f)": "grad_f", "value_and_grad(f)": "value_and_grad_f", "jvp(f)": "jvp_f",
            "vjp(f)": "vjp_f", "hvp(f)": "hvp_f", "hessian(f)": "hessian_f",
            "jacobian(f)": "jacobian_f"}


@SETTINGS
@given(program=programs(), seed=st.integers(0, 2**16))
def test_exported_derivatives_match_bp_for_every_name_and_rank(program, seed):
    """export writes each transform to a NumPy module whose function gives bp's numbers
    at every rank, whatever the program's names (SPEC §7, §13)."""
    import tempfile
    from pathlib import Path
    params, values, body = program
    bp = _session(params, values, body)
    rng = np.random.default_rng(seed)
    f = bp.function("f")
    if not any(_applies(f, _arguments(rng, shape, len(params))) for shape in SHAPES):
        return                               # a function no arguments fit (softmax of a scalar global)
    with tempfile.TemporaryDirectory() as tmp:
        for transform, pyname in EXPORTED.items():
            path = Path(tmp) / f"{pyname}.py"
            bp.exec(f'export bp.{transform} to "{path}"')
            scope = {"__name__": "exported"}
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)
            exported, direct = scope[pyname], bp.function("bp." + transform)
            extra = TRANSFORMS[transform]
            for shape in SHAPES:
                args = _transform_arguments(rng, f, shape, len(params), extra)
                if args is not None:
                    _close_all(_py(exported(*args)), direct(*args),
                               f"export {transform} at shape {shape}:\n{path.read_text()}")


def _py(v):
    return tuple(_py(x) for x in v) if isinstance(v, (tuple, list)) else np.asarray(v)


@st.composite
def elementwise(draw):
    """(parameter name, global values, an elementwise body in that one parameter)."""
    name = draw(st.sampled_from([n for n in NAMES if n not in BUILTIN_NAMES]))
    glob = draw(st.sampled_from([n for n in NAMES if n not in BUILTIN_NAMES and n != name]))
    unary = [t for t in UNARY if not _tokens(t) & {name}]
    body = draw(st.recursive(st.sampled_from([name, name, glob, "0.5"]),
                             lambda c: st.one_of(
                                 st.tuples(st.sampled_from(unary), c).map(lambda p: p[0].format(p[1])),
                                 st.tuples(st.sampled_from(BINARY), c, c).map(
                                     lambda p: p[0].format(p[1], p[2]))),
                             max_leaves=5).filter(lambda t: name in _tokens(t)))
    return name, {glob: 0.75}, body


@SETTINGS
@given(program=elementwise(), seed=st.integers(0, 2**16))
def test_printed_diff_reads_back_for_every_name_and_rank(program, seed):
    name, values, body = program
    bp = dsl.Interpreter()
    for g, v in values.items():
        bp[g] = v
    bp.exec(f"def d({name}) = {body}")
    rng = np.random.default_rng(seed)
    for transform in ("diff(d)", "diff(d, 2)", "diff(d, 3)"):
        text = bp.show(transform)
        bp.exec(f"g = {text}")
        for shape in SHAPES:
            x = rng.uniform(-1.2, 1.2, shape)
            _close(bp.function("g")(x), bp.function(transform)(x), f"{transform} printed as {text}")


@SETTINGS
@given(program=programs(), seed=st.integers(0, 2**16))
def test_functions_of_records_and_tuples_print_and_read_back(program, seed):
    """The same bodies with the parameters in a record, or in a tuple: their transforms
    print (a record's expanded, its fields read as θ.x; a tuple's from the source), read
    back to the same numbers, and the record's gradient exports (a dict in, a dict out)."""
    import tempfile
    from pathlib import Path
    params, values, body = program
    bp = _session(params, values, body)
    rng = np.random.default_rng(seed)
    bp.exec(f"def r(θ) = f({', '.join(f'θ.{p}' for p in params)})\n"
            f"def tp(pq) = f({', '.join(f'pq[{k}]' for k in range(len(params)))})")
    f = bp.function("f")
    for shape in SHAPES:
        args = _arguments(rng, shape, len(params))
        if not _applies(f, args):
            continue
        record = dict(zip(params, args))
        for transform, call in (("grad(r)", (record,)), ("value_and_grad(r)", (record,)),
                                ("grad(tp)", (tuple(args),))):
            text = bp.show("bp." + transform)
            bp.exec(f"g = {text}")
            _close_all(_py(_leaves(bp.function("g")(*call))), _py(_leaves(bp.function("bp." + transform)(*call))),
                       f"{transform} printed as {text} at shape {shape}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "grad_r.py"
            bp.exec(f'export bp.grad(r) to "{path}"')
            scope = {"__name__": "exported"}
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)
            _close_all(_py(_leaves(scope["grad_r"](record))), _py(_leaves(bp.function("bp.grad(r)")(record))),
                       f"export grad(r) at shape {shape}:\n{path.read_text()}")


def _leaves(v):
    if isinstance(v, dict):
        return tuple(_leaves(x) for x in v.values())
    if isinstance(v, tuple):
        return tuple(_leaves(x) for x in v)
    return v
