"""The contractions of dsl/ops/contract.py through the language (issue 14): einsum,
tensordot, inner, kron, cross — the checks of tests/test_arrange.py (values against
NumPy on several shapes; gradient, Hessian and Jacobian against finite differences;
printed derivatives read back; export in a fresh process), and what einsum's
derivatives are: einsums, printed as such."""
from __future__ import annotations

import numpy as np
import pytest

from dsl.errors import BpError
from test_arrange import (U, Case, _params, _session, assert_located_error, check_derivatives,
                          check_export, check_printed_hessian, check_printing, check_values)


def E(spec, n=2):
    params = ", ".join(f"x{i}" for i in range(n))
    return Case(f"einsum {spec}", f'def f({params}) = einsum("{spec}", {params})', [], None)


def einsum_case(spec, *shape_sets):
    n = len(shape_sets[0])
    c = E(spec, n)
    c.args = [tuple(U(*s) for s in shapes) for shapes in shape_sets]
    c.ref = lambda *xs, spec=spec: np.einsum(spec, *xs)
    return c


CASES = [
    einsum_case("ij,jk->ik", [(2, 3), (3, 4)], [(1, 2), (2, 1)]),
    einsum_case("ij,jk", [(2, 3), (3, 2)]),
    einsum_case("ij,j->i", [(2, 3), (3,)], [(3, 1), (1,)]),
    einsum_case("i,i", [(3,), (3,)]),
    einsum_case("ij->", [(2, 3)], [(1, 4)]),
    einsum_case("ij->j", [(2, 3)]),
    einsum_case("ji", [(2, 3)]),
    einsum_case("ij,kl->ikjl", [(2, 1), (2, 2)]),
    einsum_case("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 2)], [(3, 2), (2, 2)], [(2, 1, 2, 2), (3, 2, 1)]),
    einsum_case("...i,...i->...", [(2, 3), (3,)], [(4,), (4,)]),
    einsum_case("i...,i->...", [(3, 2), (3,)], [(2,), (2,)]),
    einsum_case("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    einsum_case("bi,ij,bj->b", [(3, 2), (2, 2), (3, 2)]),
    einsum_case("ij,ij->ij", [(2, 3), (1, 3)]),
    einsum_case("ii", [(3, 3)], [(1, 1)]),
    einsum_case("...ii->...i", [(2, 3, 3)], [(2,  2)]),
    einsum_case("iji->j", [(2, 3, 2)]),
    einsum_case("ii,i->i", [(3, 3), (3,)]),
    Case("tensordot", "def f(a, b) = tensordot(a, b)", [(U(2, 3, 2), U(3, 2, 2)), (U(2, 2), U(2, 2))],
         lambda a, b: np.tensordot(a, b)),
    Case("tensordot-1", "def f(a, b) = tensordot(a, b, axes=1)", [(U(2, 3), U(3, 2)), (U(3,), U(3, 2))],
         lambda a, b: np.tensordot(a, b, axes=1)),
    Case("tensordot-pairs", "def f(a, b) = tensordot(a, b, axes=((0, 2), (1, 0)))",
         [(U(2, 3, 4), U(4, 2, 2))], lambda a, b: np.tensordot(a, b, axes=((0, 2), (1, 0)))),
    Case("inner", "def f(a, b) = inner(a, b)", [(U(3), U(3)), (U(2, 3), U(4, 3)), (U(2, 2), U(2))],
         lambda a, b: np.inner(a, b)),
    Case("kron", "def f(a, b) = kron(a, b)", [(U(2, 2), U(2, 3)), (U(3), U(2)), (U(2), U(2, 2))],
         lambda a, b: np.kron(a, b)),
    Case("cross", "def f(a, b) = cross(a, b)", [(U(3), U(3)), (U(2, 3), U(3)), (U(2, 1, 3), U(4, 3))],
         lambda a, b: np.cross(a, b)),
]

for _c in CASES:
    _c.id = _c.name

# einsum prints with its subscripts first, as NumPy (einsum("ij,jk->ik", a, b));
# tensordot, inner and kron need the ranks, so an unannotated function of
# them does not print from its graph; cross prints as itself.
NEEDS_PRINT_FORM: set = set()
# A derivative printed for unknown shapes assumes a labelled axis is not broadcast
# (docs/language.md, Contractions): read back at x1 of shape [1, 3] in ij,ij->ij, x1's
# cotangent keeps the other operand's 2 rows.  (At known shapes it is exact: the GRAD
# samples size-1-label and size-1-grows.)
LABEL_BROADCAST = {"einsum ij,ij->ij"}
SHAPED = {"tensordot", "tensordot-1", "tensordot-pairs", "inner", "kron"}


@pytest.mark.parametrize("case", _params(CASES))
def test_contract_values_match_numpy(case):
    check_values(case)


@pytest.mark.parametrize("case", _params(CASES))
def test_contract_derivatives_match_finite_differences(case):
    check_derivatives(case)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason="label broadcast")]
                 if c.name in LABEL_BROADCAST else [])
    for c in CASES if c.name not in SHAPED])
def test_contract_printed_derivatives_read_back(case):
    check_printing(case)


@pytest.mark.parametrize("case", _params(CASES))
def test_contract_printed_hessians_of_annotated_functions_read_back(case):
    check_printed_hessian(case)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.name not in SHAPED]))
def test_contract_export_runs_in_a_fresh_process(case, tmp_path):
    check_export(case, tmp_path)


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_contract_shaped_builtins_export_with_annotations(name, tmp_path):
    """tensordot, inner and kron build their einsum from the ranks: annotated, they
    export (and an unannotated one is a located error that names the remedy)."""
    case = next(c for c in CASES if c.name == name)
    xs = case.args[0]
    bp = _session()
    head = f"(a: {list(xs[0].shape)}, b: {list(xs[1].shape)})"
    bp.exec(case.src.replace("def f(a, b)", "def f" + head))
    bp.exec(f"def L{head} = sum(sin(f(a, b)))")
    path = tmp_path / "m.py"
    bp.exec(f'export grad(L) to "{path}"')
    scope: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    np.testing.assert_allclose(scope["grad_L"](*xs), bp.function("grad(L)")(*xs), rtol=1e-12)
    bp.exec(case.src)
    with pytest.raises(BpError) as info:
        bp.exec('export f to "n.py"')
    assert "annotation" in info.value.message


# ── what einsum's derivatives are ───────────────────────────────────────

def test_contract_einsum_gradient_prints_as_an_einsum():
    """ḡ = c for sum(einsum("ij,j->i", A, x) * c): x gets Aᵀc, the einsum ij,i->j of A
    and c; A gets c xᵀ, i,j->ij of c and x."""
    bp = _session()
    bp["c"] = np.array([1.0, 2.0])
    bp.exec('def f(A: [2, 3], x: [3]) = sum(einsum("ij,j->i", A, x) * c)')
    bp.exec("print grad(f, wrt=1)")
    bp.exec("print grad(f, wrt=0)")
    assert bp.stdout.getvalue().splitlines() == ['(A, x) -> einsum("ij,i->j", A, c)',
                                                 '(A, x) -> einsum("i,j->ij", c, x)']


def test_contract_einsum_takes_its_subscripts_last_as_it_prints():
    bp = _session()
    a, b = U(2, 3), U(3, 4)
    np.testing.assert_allclose(bp.function('(a, b) -> einsum(a, b, "ij,jk->ik")')(a, b), a @ b)
    np.testing.assert_allclose(bp.function('(a, b) -> einsum(a, b, "ij,jk")')(a, b), a @ b)


def test_contract_einsum_vjp_is_an_einsum_node():
    """The cotangent of each operand is one einsum node whose subscripts swap the
    output's and that operand's (ij,j->i: A's is i,j->ij of ḡ and x; x's ij,i->j)."""
    from dsl import ops
    from dsl.autodiff import vjp_graph
    from dsl.graph import make_input
    A, x, g = make_input("A", (2, 3)), make_input("x", (3,)), make_input("g", (2,))
    y = ops.apply("einsum", [A, x], {"spec": "ij,j->i"})
    dA, dx = vjp_graph([y], [g], [A, x])
    assert dA.op == "einsum" and dA.attr("spec") == "i,j->ij" and dA.inputs == (g, x)
    assert dx.op == "einsum" and dx.attr("spec") == "ij,i->j" and dx.inputs == (A, g)


def test_contract_einsum_trace_and_diagonal_cotangents_are_identities():
    bp = _session()
    M = U(3, 3)
    np.testing.assert_allclose(bp.function('grad(X -> einsum("ii", X))')(M), np.eye(3))
    w = np.array([1.0, -2.0, 3.0])
    bp["w"] = w
    np.testing.assert_allclose(bp.function('grad(X -> sum(einsum("ii->i", X) * w))')(M), np.diag(w))


def test_contract_einsum_implicit_output_is_alphabetical_as_numpy():
    bp = _session()
    a = U(2, 3)
    np.testing.assert_allclose(bp.function('a -> einsum("bA", a)')(a), np.einsum("bA", a))
    np.testing.assert_allclose(bp.function('a -> einsum("ba", a)')(a), np.einsum("ba", a))


@pytest.mark.parametrize("src, words", [
    ('einsum("ij,jk->ik", [[1, 2]], [[1, 2], [3, 4], [5, 6]])', "sizes 2 and 3"),
    ('einsum("ij", [1, 2])', "name 2 axes"),
    ('einsum("i->j", [1, 2])', "in no operand"),
    ('einsum("i->ii", [1, 2])', "more than once"),
    ('einsum("i.j", [1, 2])', "'...'"),
    ('einsum("i1", [1, 2])', "letters"),
    ('einsum("i,i", [1, 2])', "for 2 operands, got 1"),
    ('einsum("i->i->i", [1, 2])', "'->'"),
    ('einsum("...i->i", [[1, 2]])', "no '...'"),
    ('einsum([1, 2], [1])', "subscripts, a string"),
    ('einsum("i")', "at least one operand"),
    ('einsum("i", "a")', "expects tensors"),
    ('einsum("i", [1], optimize=1)', "no argument 'optimize'"),
    ('tensordot([1, 2], [1, 2], axes=3)', "axes=3"),
    ('tensordot([1, 2], [1, 2, 3], axes=1)', "size"),
    ('inner([1, 2], [1, 2, 3])', "last axes"),
    ('cross([1, 2], [1, 2])', "3-vectors"),
])
def test_contract_mistakes_are_located_errors(src, words):
    assert_located_error(src, words)
