"""Every registered op's derivative rules against finite differences.

Walks `ops.REGISTRY` (STYLE B7): for each differentiable op, the samples
in `SAMPLES` (shapes with broadcasting, attrs, domains away from kinks and
singularities) are built with `ops.apply` on fresh graph inputs and
checked at a random point (fixed seed per op and sample):

- VJP:  ⟨vjp(u), v⟩ = d/dt ⟨u, f(x + t v)⟩
- JVP:  jvp(v)      = d/dt f(x + t v)
- grad of grad: with g = vjp(u), ⟨vjp of ⟨w, g⟩, v⟩ = d/dt ⟨w, g(x + t v)⟩
- HVP (forward over reverse): jvp of g along v = d/dt g(x + t v)

The right-hand sides are 4th-order central differences, so the truncation
error (≈h⁴) and the rounding error (≈ε/h) both sit far below the 1e-6
tolerance.  Non-differentiable ops must pass exact zeros back and forth.
Adding an op adds rows to the GRAD (or NONDIFF) table of its family's module,
tests/ops_samples/<family>.py, nothing else; an op without a row fails
`test_ops_grad_table_covers_registry`.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from dsl import ops
from dsl.autodiff import jvp_graph, vjp_graph
from dsl.evaluate import Plan
from dsl.graph import make_input

H = 1e-4           # FD step for the 4th-order stencil: h⁴ ≈ 1e-16, ε/h ≈ 1e-12
TOL = 1e-6         # first derivatives
TOL2 = 1e-6        # second derivatives: FD of an exact first derivative is just as good
ZERO = 1e-11       # below this an FD value counts as an exact zero (rounding noise)


# ── the tables: one module per op family (tests/ops_samples/) ────────────

from ops_samples import GRAD as SAMPLES, NONDIFF
from ops_samples._grad import R, Const, In, Sample


# Ops whose rules are the user's Python (Interpreter.define): first order only, tested
# with real host functions in tests/test_host.py.
HOST_OPS = {"host", "host_vjp"}
# Structured loops (dsl/loops.py): a body graph is no sample row; tests/test_loops.py checks them.
HOST_OPS |= {"loop", "loop_read", "loop_write"}


def _differentiable():
    return sorted(n for n, o in ops.REGISTRY.items() if o.differentiable and n not in HOST_OPS)


# Known bugs (reported; strict, so a fix shows up as XPASS and the entry goes).
# Bugs these tests found (now fixed) are pinned here as (test, op, sample) → reason while open.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases(test: str):
    out = []
    for name in _differentiable():
        for i, s in enumerate(SAMPLES.get(name, ())):
            bug = KNOWN_BUGS.get((test, name, s.label))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            out.append(pytest.param(name, s, id=f"{name}-{s.label or i}", marks=marks))
    return out


# ── building and evaluating one sample ───────────────────────────────────

class Case:
    """One op applied to fresh inputs, with its point, cotangents and directions."""

    def __init__(self, name: str, sample: Sample):
        rng = np.random.default_rng(zlib.crc32(f"{name}/{sample.label}".encode()))
        self.name = name
        self.inputs, self.values, self.wrt, self.fixed = [], [], [], []
        nodes = []
        for arg in sample.args:
            if isinstance(arg, Const):
                nodes.append(ops.const(arg.value))
                continue
            value = np.asarray(arg.draw(rng) if isinstance(arg, In) else arg.value, dtype=float)
            node = make_input(f"x{len(self.inputs)}", value.shape)
            nodes.append(node)
            self.inputs.append(node)
            self.values.append(value)
            (self.wrt if isinstance(arg, In) else self.fixed).append(node)
        self.out = ops.apply(name, nodes, dict(sample.attrs))
        self.x = [self.values[self.inputs.index(w)] for w in self.wrt]
        self.v = [rng.standard_normal(x.shape) for x in self.x]            # direction
        self.w = [rng.standard_normal(x.shape) for x in self.x]            # outer cotangent
        self.u = rng.standard_normal(self.out.shape)                       # cotangent of out

    def run(self, outputs, x=None):
        """Evaluate `outputs` with the differentiated inputs set to `x`."""
        x = self.x if x is None else x
        by_id = {id(w): xi for w, xi in zip(self.wrt, x)}
        arrays = [by_id.get(id(n), val) for n, val in zip(self.inputs, self.values)]
        return Plan(self.inputs, outputs).run(arrays)

    def along(self, fn, h=H):
        """d/dt fn(x + t v) at t = 0, by the 4th-order central stencil."""
        def at(t):
            return fn([xi + t * vi for xi, vi in zip(self.x, self.v)])
        return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)

    def grad_nodes(self):
        """g = ∂⟨u, f⟩/∂x, built as s = sum(u * f(x)) and reversed."""
        s = ops.apply("sum", [ops.apply("mul", [ops.const(self.u), self.out])], R)
        return vjp_graph([s], [ops.const(1.0)], self.wrt)


def _dot(a, b) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def _check_dot(actual_parts, v, fd: float, tol: float, what: str):
    """⟨actual, v⟩ against a finite difference, relative to the size of the terms
    (so a sum that cancels to nearly 0 is not held to an impossible tolerance)."""
    got = _dot(actual_parts, v)
    scale = max(abs(fd), float(sum(np.sum(np.abs(a * b)) for a, b in zip(actual_parts, v))))
    err = abs(got - fd)
    assert err <= tol * scale or err < ZERO, (
        f"{what}: exact {got!r} vs finite differences {fd!r} (relative error {err / scale:.2e})")


def _check_close(actual, expected, tol: float, what: str):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}")
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(max(np.max(np.abs(expected), initial=0.0), np.max(np.abs(actual), initial=0.0)))
    assert err <= tol * scale or err < ZERO, (
        f"{what}: max error {err:.3e} (relative {err / max(scale, 1e-300):.2e})\n"
        f"exact:\n{actual}\nfinite differences:\n{expected}")


def _check_shapes(nodes, like, what, values=None):
    """A derivative has its input's shape, as a node and (given `values`) when evaluated."""
    for i, (g, x) in enumerate(zip(nodes, like)):
        assert g.shape == x.shape, (
            f"{what}: derivative node has shape {g.shape}, its input {x.shape}")
        if values is not None:
            assert values[i].shape == x.shape, (
                f"{what}: derivative evaluates to shape {values[i].shape}, but its node says "
                f"{g.shape} and the input has shape {x.shape}")


# ── the tests ────────────────────────────────────────────────────────────

def test_ops_grad_table_covers_registry():
    missing = [n for n in _differentiable() if n not in SAMPLES]
    assert not missing, (f"differentiable ops without GRAD samples in tests/ops_samples/<family>.py: "
                         f"{', '.join(missing)}")
    nondiff = sorted(n for n, o in ops.REGISTRY.items() if not o.differentiable)
    missing = [n for n in nondiff if n not in NONDIFF]
    assert not missing, f"non-differentiable ops without a row in NONDIFF: {', '.join(missing)}"
    assert HOST_OPS <= set(ops.REGISTRY), "tests/test_ops_grad.py HOST_OPS names unknown ops"
    stale = sorted((set(SAMPLES) | set(NONDIFF)) - set(ops.REGISTRY))
    assert not stale, f"table rows for ops that are not registered: {', '.join(stale)}"
    wrong = sorted(n for n in SAMPLES if n in ops.REGISTRY and not ops.REGISTRY[n].differentiable)
    assert not wrong, f"ops in SAMPLES that are registered as non-differentiable: {wrong}"


def test_ops_grad_rules_present_for_differentiable_ops():
    bare = [n for n in _differentiable()
            if ops.REGISTRY[n].vjp is None or ops.REGISTRY[n].jvp is None]
    assert not bare, f"differentiable ops missing a VJP or JVP rule: {', '.join(bare)}"


@pytest.mark.parametrize("name, sample", _cases("shape"))
def test_ops_grad_shape_rule_matches_kernel(name, sample):
    case = Case(name, sample)
    value, = case.run([case.out])
    assert value.shape == case.out.shape, (
        f"{name}: shape rule says {case.out.shape}, the kernel gives {value.shape}")


@pytest.mark.parametrize("name, sample", _cases("vjp"))
def test_ops_grad_vjp_matches_finite_differences(name, sample):
    case = Case(name, sample)
    grads = vjp_graph([case.out], [ops.const(case.u)], case.wrt + case.fixed)
    values = case.run(grads)
    _check_shapes(grads, case.wrt + case.fixed, f"{name} vjp", values)
    got, fixed = values[:len(case.wrt)], values[len(case.wrt):]
    fd = case.along(lambda x: _dot([case.u], case.run([case.out], x)))
    _check_dot(got, case.v, fd, TOL, f"{name}: ⟨vjp(u), v⟩")
    for c in fixed:                        # where's condition: never a gradient
        assert np.all(c == 0), f"{name}: a non-differentiable input got cotangent {c}"


@pytest.mark.parametrize("name, sample", _cases("jvp"))
def test_ops_grad_jvp_matches_finite_differences(name, sample):
    case = Case(name, sample)
    tangent, = jvp_graph([case.out], case.wrt, [ops.const(v) for v in case.v])
    got, = case.run([tangent])
    _check_shapes([tangent], [case.out], f"{name} jvp", [got])
    fd = case.along(lambda x: case.run([case.out], x)[0])
    _check_close(got, fd, TOL, f"{name}: jvp(v)")


@pytest.mark.parametrize("name, sample", _cases("vjp_jvp"))
def test_ops_grad_vjp_agrees_with_jvp(name, sample):
    """⟨u, J v⟩ = ⟨Jᵀ u, v⟩, exactly up to rounding: no finite differences."""
    case = Case(name, sample)
    grads = vjp_graph([case.out], [ops.const(case.u)], case.wrt)
    tangent, = jvp_graph([case.out], case.wrt, [ops.const(v) for v in case.v])
    values = case.run(grads + [tangent])
    _check_shapes(grads + [tangent], case.wrt + [case.out], f"{name} vjp and jvp", values)
    left, right = _dot(values[:-1], case.v), float(np.sum(case.u * values[-1]))
    scale = max(float(np.sum(np.abs(case.u * values[-1]))), 1e-300)
    assert abs(left - right) <= 1e-12 * scale + 1e-300, (
        f"{name}: ⟨vjp(u), v⟩ = {left!r} but ⟨u, jvp(v)⟩ = {right!r}")


@pytest.mark.parametrize("name, sample", _cases("grad_grad"))
def test_ops_grad_grad_of_grad_matches_finite_differences(name, sample):
    case = Case(name, sample)
    g = case.grad_nodes()
    total = None
    for gi, wi in zip(g, case.w):
        term = ops.apply("sum", [ops.apply("mul", [ops.const(wi), gi])], R)
        total = term if total is None else ops.apply("add", [total, term])
    gg = vjp_graph([total], [ops.const(1.0)], case.wrt)
    got = case.run(gg)
    _check_shapes(gg, case.wrt, f"{name} grad of grad", got)
    fd = case.along(lambda x: _dot(case.w, case.run(g, x)))
    _check_dot(got, case.v, fd, TOL2, f"{name}: ⟨∇⟨w, g⟩, v⟩ with g = vjp(u)")


@pytest.mark.parametrize("name, sample", _cases("hvp"))
def test_ops_grad_hvp_matches_finite_differences(name, sample):
    case = Case(name, sample)
    g = case.grad_nodes()
    hv = jvp_graph(g, case.wrt, [ops.const(v) for v in case.v])
    got = case.run(hv)
    _check_shapes(hv, case.wrt, f"{name} hvp", got)
    for i, gi in enumerate(got):
        fd = case.along(lambda x: case.run(g, x)[i])
        _check_close(gi, fd, TOL2, f"{name}: jvp of g = vjp(u), component {i}")


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_ops_grad_nondifferentiable_ops_pass_zeros(name):
    """Comparisons, sign, floor, round, one_hot, zeros_like, constructors:
    zero cotangents back and zero tangents forward, also mid-graph."""
    args, attrs = NONDIFF[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    assert not ops.REGISTRY[name].differentiable
    values = [np.asarray(a.draw(rng), dtype=float) for a in args]
    xs = [make_input(f"x{i}", v.shape) for i, v in enumerate(values)]
    bystander = make_input("y", (2,))          # an input every graph depends on linearly
    out = ops.apply(name, xs, attrs)
    plan_in = xs + [bystander]
    arrays = values + [rng.standard_normal(2)]
    u = ops.const(rng.standard_normal(out.shape))

    cts = vjp_graph([out], [u], xs + [bystander])
    for ct, arr in zip(Plan(plan_in, cts).run(arrays), values + [arrays[-1]]):
        assert ct.shape == arr.shape and np.all(ct == 0), f"{name}: cotangent {ct}, expected zeros"
    tans = [ops.const(rng.standard_normal(v.shape)) for v in values + [arrays[-1]]]
    t, = jvp_graph([out], xs + [bystander], tans)
    t_val, = Plan(plan_in, [t]).run(arrays)
    assert t_val.shape == out.shape and np.all(t_val == 0), (
        f"{name}: tangent {t_val}, expected zeros")

    # Mid-graph: s = sum(op(x…)) + Σ sum(x) + sum(y) has gradient exactly 1 everywhere.
    s = ops.apply("sum", [bystander], R)
    for node in [out] + xs:
        s = ops.apply("add", [s, ops.apply("sum", [node], R)])
    for g, arr in zip(Plan(plan_in, vjp_graph([s], [ops.const(1.0)], plan_in)).run(arrays),
                      arrays):
        assert g.shape == arr.shape and np.all(g == 1), (
            f"{name}: gradient of sum({name}(x)) + sum(x) is {g}, expected ones")


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_ops_grad_folds_keep_the_shape(name):
    """Folding is an identity: the folded node has the shape (and value) of the unfolded one."""
    x = make_input("x", (3,))
    a = ops.apply("broadcast_like", [ops.apply("sum", [x], R), x])
    b = ops.apply("broadcast_like", [ops.apply("mean", [x], R), x])
    node = ops.apply(name, [a, b])
    assert node.shape == (3,), f"{name}(broadcast_like(sum(x), x), broadcast_like(mean(x), x)) " \
                               f"folds to {node.op} of shape {node.shape}, not (3,)"


# ── batching: the one-graph Jacobian against one VJP per output element ───

from dsl import autodiff  # noqa: E402  (appended section)

# Bugs the batched-Jacobian walk found, (test, op, sample) → reason, while open.
# (solve with stacked A: fixed, batching falls back to one solve per direction.)


def _reference_jacobian(case: Case, x) -> np.ndarray:
    """d out / d x, shape(out) + shape(x): one VJP graph per output element, each
    seeded with a unit cotangent, evaluated by one Plan."""
    so = case.out.shape
    m = int(np.prod(so, dtype=int))
    eye = np.eye(m)
    rows = [vjp_graph([case.out], [ops.const(eye[i].reshape(so))], [x])[0] for i in range(m)]
    values = Plan(case.inputs, rows).run(case.values)
    return np.stack(values).reshape(so + x.shape) if m else np.zeros(so + x.shape)


@pytest.mark.parametrize("name, sample", _cases("batched_jacobian"))
def test_ops_grad_batched_jacobian_matches_one_vjp_per_row(name, sample):
    """autodiff._jacobian builds one batched graph (dsl/batching.py) when every op
    on the way has a batching rule, and falls back to one derivative per
    direction otherwise; either way it must equal the Jacobian assembled from
    one VJP per output element, to rounding."""
    case = Case(name, sample)
    for k, x in enumerate(case.inputs):
        jac = autodiff._jacobian(case.out, x, None)
        assert jac.shape == case.out.shape + x.shape, (
            f"{name} d/dx{k}: Jacobian node has shape {jac.shape}, expected "
            f"{case.out.shape + x.shape}")
        got, = Plan(case.inputs, [jac]).run(case.values)
        ref = _reference_jacobian(case, x)
        assert got.shape == ref.shape, f"{name} d/dx{k}: shape {got.shape}, expected {ref.shape}"
        err = float(np.max(np.abs(got - ref), initial=0.0))
        scale = float(np.max(np.abs(ref), initial=0.0))
        assert err <= 1e-12 * scale or err == 0.0, (
            f"{name} d/dx{k}: batched Jacobian differs from per-row VJPs by {err:.3e} "
            f"(relative {err / max(scale, 1e-300):.2e})\nbatched:\n{got}\nper row:\n{ref}")


# Ops without a batching rule say why in their entry (OpDef.batch is a string there:
# constructors and host functions never depend on a seed; softmax, det, inv, … differentiate
# into ops that have rules, diag and outer take the per-row fallback); tests/test_ops_registry.py
# checks every op has one or the other, and the test above that the Jacobian is right either way.


# ── powers at 0: the values JAX gives, exact elsewhere ───────────────────

def test_ops_grad_pow_at_zero():
    """d/dy 0^y = 0^y·log 0 → 0 for y > 0 (0^y is 0 there); d/dx x^n at x = n = 0 is
    0 (x^0 is the constant 1), as jax.grad gives; the values around those points
    stay exact.  Expected values by hand: d/dx x^n = n x^(n-1), d/dn x^n = x^n ln x,
    d²/dx dn x^n = x^(n-1) (1 + n ln x), d²/dn² x^n = x^n ln² x."""
    import dsl
    bp = dsl.Interpreter()
    bp.exec("def p(x, n) = x^n\ngx = grad(p)\ngn = grad(p, wrt=1)")
    ev = lambda src: float(bp.eval(src))
    assert ev("grad(y -> 0^y)(0.5)") == 0.0
    assert ev("grad(grad(y -> 0^y))(0.5)") == 0.0
    np.testing.assert_array_equal(bp.eval("grad(y -> sum(0^y))([0.5, 2, 7])"), [0.0, 0.0, 0.0])
    assert ev("gx(0, 0)") == 0.0 and ev("gn(0, 0)") == 0.0
    assert ev("gx(0, 1)") == 1.0 and ev("gx(0, 2)") == 0.0 and ev("gx(0, 0.5)") == np.inf
    assert ev("gn(0, 0.5)") == 0.0 and ev("gn(0, 3)") == 0.0
    assert ev("gx(2, 0)") == 0.0 and ev("gn(2, 0)") == pytest.approx(np.log(2), rel=1e-15)
    # only x = n = 0 is masked: at n = 0, x = 2 the mixed derivative is 1/x, both ways round
    assert ev("grad(gx, wrt=1)(2, 0)") == pytest.approx(0.5, rel=1e-15)
    assert ev("grad(gn)(2, 0)") == pytest.approx(0.5, rel=1e-15)
    assert ev("grad(gn, wrt=1)(2, 0)") == pytest.approx(np.log(2) ** 2, rel=1e-14)
    assert ev("gx(2, 3)") == pytest.approx(12.0, rel=1e-15)
    assert ev("gn(2, 3)") == pytest.approx(8 * np.log(2), rel=1e-15)
    assert ev("grad(gx, wrt=1)(2, 3)") == pytest.approx(4 + 12 * np.log(2), rel=1e-14)
    assert ev("grad(gx)(2, 3)") == pytest.approx(12.0, rel=1e-15)
    assert ev("grad(gn, wrt=1)(2, 3)") == pytest.approx(8 * np.log(2) ** 2, rel=1e-14)
    # a constant exponent gets no derivative: x^2 and x^3 are smooth at 0 to every order
    assert [ev(f"diff(x -> x^2, {k})(0)") for k in (1, 2, 3)] == [0.0, 2.0, 0.0]
    assert [ev(f"diff(x -> x^3, {k})(0)") for k in (1, 2, 3, 4)] == [0.0, 0.0, 6.0, 0.0]
    assert bp.show("grad(x -> x^2)") == "x -> 2*x"
