"""Decompositions (dsl/ops/decomp.py) through bp sessions: what the registry walks
(tests/ops_samples/decomp.py) do not reach.

- forward values satisfy their defining identities (A = V diag(w) V', Q R = A,
  U diag(s) Vh = A, the Penrose conditions, …) on stacks;
- gradients and Hessians of functions that do not depend on the sign (or order)
  conventions of eigenvectors, singular vectors and Q, against central finite
  differences of the same function written in NumPy, so no bp code is in the
  reference;
- jacobian and hessian (the batched path) against one-derivative-per-direction;
- printed derivatives read back (`g = <printed text>`) and exports run in a fresh
  process;
- mistakes are located BpErrors.
"""
from __future__ import annotations

import numpy as np
import pytest

import dsl
from test_export import run_fresh

RNG = np.random.default_rng(7)


def spd(*shape):
    b = RNG.uniform(-1, 1, shape)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def sym(n):
    b = RNG.uniform(-0.5, 0.5, (n, n))
    return (b + b.T) / 2 + np.diag(np.arange(n) * 1.5)


def spread(m, n):
    q1 = np.linalg.qr(RNG.normal(size=(m, m)))[0]
    q2 = np.linalg.qr(RNG.normal(size=(n, n)))[0]
    d = np.zeros((m, n))
    k = min(m, n)
    d[np.arange(k), np.arange(k)] = 1.0 + 0.7 * np.arange(k)[::-1]
    return q1 @ d @ q2


def session(**values):
    bp = dsl.Interpreter()
    for k, v in values.items():
        bp[k] = np.asarray(v, dtype=float)
    return bp


def fd_grad(f, x, h=1e-5):
    """Central differences of a NumPy function, one entry at a time."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ── forward: the defining identities, on stacks ─────────────────────────

def test_decomp_identities_on_a_stack():
    a = np.stack([spd(3, 3), spd(3, 3)])
    w = RNG.uniform(-1, 1, (2, 4, 3))
    bp = session(A=a, W=w)
    low = bp.eval("cholesky(A)")
    np.testing.assert_allclose(low @ np.swapaxes(low, -1, -2), a, rtol=1e-13, atol=1e-13)
    assert np.all(np.triu(low, 1) == 0)
    up = bp.eval("cholesky(A, upper=1)")
    np.testing.assert_allclose(np.swapaxes(up, -1, -2) @ up, a, rtol=1e-13, atol=1e-13)
    ev, v = bp.eval("eigh(A)")
    np.testing.assert_allclose(v @ (ev[..., None] * np.swapaxes(v, -1, -2)), a, atol=1e-12)
    assert np.all(np.diff(ev, axis=-1) > 0)                       # ascending
    u, s, vh = bp.eval("svd(W, full_matrices=0)")
    assert u.shape == (2, 4, 3) and s.shape == (2, 3) and vh.shape == (2, 3, 3)
    np.testing.assert_allclose(u @ (s[..., None] * vh), w, atol=1e-13)
    uf = bp.eval("svd(W)[0]")
    assert uf.shape == (2, 4, 4)
    np.testing.assert_allclose(np.swapaxes(uf, -1, -2) @ uf, np.broadcast_to(np.eye(4), (2, 4, 4)),
                               atol=1e-13)
    q, r = bp.eval("qr(W)")
    np.testing.assert_allclose(q @ r, w, atol=1e-13)
    assert np.all(np.tril(r, -1) == 0)
    p = bp.eval("pinv(W)")
    for k in range(2):                                             # the Penrose conditions
        wk, pk = w[k], p[k]
        np.testing.assert_allclose(wk @ pk @ wk, wk, atol=1e-13)
        np.testing.assert_allclose(pk @ wk @ pk, pk, atol=1e-13)
        np.testing.assert_allclose((wk @ pk).T, wk @ pk, atol=1e-13)
        np.testing.assert_allclose((pk @ wk).T, pk @ wk, atol=1e-13)
    sign, logabs = bp.eval("slogdet(A)")
    np.testing.assert_allclose(sign * np.exp(logabs), np.linalg.det(a), rtol=1e-13)
    np.testing.assert_allclose(bp.eval("logdet(A)"), logabs, rtol=1e-15)
    np.testing.assert_allclose(bp.eval("matrix_power(A, -3) @ matrix_power(A, 3)"),
                               np.broadcast_to(np.eye(3), a.shape), atol=1e-12)


def test_decomp_svd_compute_uv_and_lstsq_tuple():
    a = RNG.normal(size=(5, 3))
    y = RNG.normal(size=5)
    bp = session(A=a, y=y)
    np.testing.assert_allclose(bp.eval("svd(A, compute_uv=0)"), np.linalg.svd(a, compute_uv=False),
                               rtol=1e-14)
    x, res, rank, s = bp.eval("lstsq(A, y)")
    nx, nres, nrank, ns = np.linalg.lstsq(a, y, rcond=None)
    np.testing.assert_allclose(x, nx, rtol=1e-12)
    np.testing.assert_allclose(res, nres, rtol=1e-11)
    assert res.shape == (1,) and float(rank) == nrank and rank.shape == ()
    np.testing.assert_allclose(s, ns, rtol=1e-14)
    # rank deficient: the minimum-norm solution, and the rank NumPy counts
    d = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    bp["D"] = d
    x, res, rank, s = bp.eval("lstsq(D, y[:3])")
    nx, _, nrank, _ = np.linalg.lstsq(d, y[:3], rcond=None)
    np.testing.assert_allclose(x, nx, rtol=1e-12)
    assert float(rank) == nrank == 1


def test_decomp_solve_triangular_reads_only_its_triangle():
    a = np.triu(RNG.uniform(-1, 1, (4, 4))) + 3 * np.eye(4)
    noisy = a + np.tril(RNG.uniform(-5, 5, (4, 4)), -1)
    b = RNG.normal(size=(4, 2))
    bp = session(A=noisy, b=b)
    np.testing.assert_allclose(bp.eval("solve_triangular(A, b)"), np.linalg.solve(a, b), rtol=1e-13)
    np.testing.assert_allclose(bp.eval("solve_triangular(A', b, lower=1)"), np.linalg.solve(a.T, b),
                               rtol=1e-13)
    np.testing.assert_allclose(bp.eval("solve_triangular(A, b, 1)"), np.linalg.solve(a.T, b),
                               rtol=1e-13)
    unit = np.triu(a, 1) + np.eye(4)
    np.testing.assert_allclose(bp.eval("solve_triangular(A, b, unit_diagonal=1)"),
                               np.linalg.solve(unit, b), rtol=1e-13)


# ── derivatives of sign-invariant functions against NumPy differences ────

C3 = RNG.uniform(-1, 1, (3, 3))
C42 = RNG.uniform(-1, 1, (4, 2))

CASES = [
    # (bp function of A, the same in NumPy, a point)
    ("A -> sum(eigh(A)[0] * [1, -2, 3])", lambda A: np.linalg.eigh(A)[0] @ [1, -2, 3], sym(3)),
    ("A -> sum(eigh(A)[1]^2 * C3)", lambda A: np.sum(np.linalg.eigh(A)[1] ** 2 * C3), sym(3)),
    ("A -> sum(svd(A)[1]^3)", lambda A: np.sum(np.linalg.svd(A)[1] ** 3), spread(4, 2)),
    ("A -> sum(abs(svd(A, full_matrices=0)[0]) * C42)",
     lambda A: np.sum(np.abs(np.linalg.svd(A, full_matrices=False)[0]) * C42), spread(4, 2)),
    ("A -> sum(svd(A, full_matrices=0)[2]^2 * C3[:2, :])",
     lambda A: np.sum(np.linalg.svd(A, full_matrices=False)[2] ** 2 * C3[:2, :]), spread(2, 3)),
    ("A -> { u, s, vh = svd(A, full_matrices=0); return sum((u * s) @ vh * C42) }",
     lambda A: np.sum(A * C42), spread(4, 2)),
    ("A -> sum(qr(A)[0]^2 * C42) + sum(qr(A)[1]^2)",
     lambda A: np.sum(np.linalg.qr(A)[0] ** 2 * C42) + np.sum(np.linalg.qr(A)[1] ** 2), spread(4, 2)),
    ("A -> sum(qr(A)[1]^2 * C3[:2, :])", lambda A: np.sum(np.linalg.qr(A)[1] ** 2 * C3[:2, :]),
     spread(2, 3)),
    ("A -> sum(cholesky(A) * C3)", lambda A: np.sum(np.linalg.cholesky(A) * C3), spd(3, 3)),
    ("A -> slogdet(A)[1] + logdet(A @ A')", lambda A: np.linalg.slogdet(A)[1]
     + np.log(np.linalg.det(A @ A.T)), spread(3, 3)),
    ("A -> sum(pinv(A) * C42')", lambda A: np.sum(np.linalg.pinv(A) * C42.T), spread(4, 2)),
    ("A -> sum(lstsq(A, [1, 2, 3, 4])[0])",
     lambda A: np.sum(np.linalg.lstsq(A, [1, 2, 3, 4], rcond=None)[0]), spread(4, 2)),
    ("A -> sum(solve_triangular(A, C3, lower=1))",
     lambda A: np.sum(np.linalg.solve(np.tril(A), C3)), np.tril(RNG.uniform(-1, 1, (3, 3))) + 2 * np.eye(3)),
    ("A -> sum(matrix_power(A, -2) * C3) + sum(matrix_power(A, 5))",
     lambda A: np.sum(np.linalg.matrix_power(A, -2) * C3) + np.sum(np.linalg.matrix_power(A, 5)),
     spd(3, 3) / 3),
]


@pytest.mark.parametrize("src, fn, x", CASES, ids=[c[0] for c in CASES])
def test_decomp_gradient_against_numpy_differences(src, fn, x):
    bp = session(C3=C3, C42=C42, X=x)
    got = bp.eval(f"grad({src})(X)")
    np.testing.assert_allclose(got, fd_grad(fn, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("src, fn, x", CASES[:10:3] + CASES[10:], ids=lambda c: str(c)[:40])
def test_decomp_hessian_against_numpy_differences(src, fn, x):
    """hessian builds the batched graph (dsl/batching.py) where every op has a rule;
    the reference is second central differences of the NumPy function."""
    bp = session(C3=C3, C42=C42, X=x)
    h = bp.eval(f"hessian({src})(X)")
    n = x.size
    flat = h.reshape(n, n)
    np.testing.assert_allclose(flat, flat.T, atol=1e-8)
    ref = np.zeros((n, n))
    step = 1e-4
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        ref[i] = (fd_grad(fn, x + e.reshape(x.shape), 1e-4)
                  - fd_grad(fn, x - e.reshape(x.shape), 1e-4)).ravel() / (2 * step)
    np.testing.assert_allclose(flat, ref, rtol=1e-4, atol=1e-5)


def test_decomp_jacobian_of_each_decomposition_matches_one_vjp_per_row():
    a = spd(3, 3)
    bp = session(A=a, B=spread(4, 2))
    for src, x in (("cholesky(A)", "A"), ("eigh(A)[1]^2", "A"), ("svd(B, full_matrices=0)[1]", "B"),
                   ("qr(B)[1]", "B"), ("pinv(B)", "B"), ("solve_triangular(A, [1, 2, 3])", "A")):
        jac = bp.eval(f"jacobian({x} -> {src})({x})")
        rows = bp.eval(f"({x} -> {src})({x})").size
        out_shape = jac.shape[:jac.ndim - bp.eval(x).ndim]
        for r in range(rows):
            unit = np.zeros(rows)
            unit[r] = 1
            bp["U_"] = unit.reshape(out_shape)
            row = bp.eval(f"grad({x} -> sum(({src}) * U_))({x})")
            np.testing.assert_allclose(jac.reshape(rows, -1)[r], row.ravel(), atol=1e-12,
                                       err_msg=f"{src} row {r}")


# ── printing reads back, export runs in a fresh process ──────────────────

PRINTED = [
    "def f(A: [3, 3]) = sum(cholesky(A) * C3)",
    "def f(A: [3, 3]) = sum(eigh(A)[0] * [1, 2, 3]) + sum(eigh(A)[1]^2 * C3)",
    "def f(A: [4, 2]) = sum(svd(A, full_matrices=0)[0]^2 * C42) + sum(svd(A)[1])",
    "def f(A: [4, 2]) = sum(qr(A)[0] * C42) + sum(qr(A)[1]^2)",
    "def f(A: [3, 3]) = slogdet(A)[1] + logdet(A @ A') + sum(matrix_power(A, -2))",
    "def f(A) = slogdet(A)[1] + logdet(A @ A')",
    "def f(A) = sum(pinv(A) * pinv(A))",
    "def f(A: [3, 3]) = sum(solve_triangular(A, C3, trans=1, lower=1)^2)",
]


@pytest.mark.parametrize("src", PRINTED)
def test_decomp_printed_derivative_reads_back(src):
    """grad(f) and a derivative of it (second derivatives of the decompositions)
    print as bp text that, read back, gives the same numbers."""
    ann = src[src.find("(A") + 2:src.find(")")]
    x = spread(4, 2) if "[4, 2]" in ann else spd(3, 3)
    bp = session(C3=C3, C42=C42, X=x, W=RNG.uniform(-1, 1, x.shape))
    bp.exec(src)
    bp.exec(f"def f2(A{ann}) = sum(grad(f)(A) * W)")
    for name in ("grad(f)", "grad(f2)"):
        text = bp.show(name)
        assert "part=" not in text, text
        bp.exec(f"g = {text}")
        np.testing.assert_allclose(bp.eval("g(X)"), bp.eval(f"{name}(X)"), rtol=1e-12, atol=1e-13,
                                   err_msg=text)


def test_decomp_export_runs_in_a_fresh_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = spd(3, 3)
    bp = session(C3=C3, X=a)
    bp.exec("def f(A: [3, 3]) = sum(cholesky(A) * C3) + sum(eigh(A)[1]^2 * C3) + sum(svd(A)[1]) "
            "+ slogdet(A)[1] + logdet(A) + sum(qr(A)[0] * qr(A)[1]) + sum(pinv(A)) "
            "+ sum(solve_triangular(A, C3, lower=1)) + sum(matrix_power(A, 3)) "
            "+ sum(lstsq(A, C3[0])[0])")
    bp.exec('export f to "m.py"\nexport grad(f) to "g.py"', filename=str(tmp_path / "x.bp"))
    arg = f"np.array({a.tolist()!r})"
    value, grad = run_fresh(tmp_path, f"import numpy as np, json, m, g; "
                            f"print(json.dumps([float(m.f({arg})), g.grad_f({arg}).tolist()]))")
    np.testing.assert_allclose(value, bp.eval("f(X)"), rtol=1e-13)
    np.testing.assert_allclose(np.array(grad), bp.eval("grad(f)(X)"), rtol=1e-12, atol=1e-13)


# ── mistakes ─────────────────────────────────────────────────────────────

@pytest.mark.parametrize("src, kind, words", [
    ("cholesky([[1, 2], [2, 1]])", dsl.BpValueError, "positive definite"),
    ("cholesky(ones(2, 3))", dsl.BpShapeError, "square"),
    ("eigh(ones(3))", dsl.BpShapeError, "square"),
    ("solve_triangular([[1, 0], [1, 0]], [1, 2], lower=1)", dsl.BpValueError, "singular"),
    ("solve_triangular(eye(2), [1, 2], trans=3)", dsl.BpValueError, "trans="),
    ("matrix_power(eye(2), 1.5)", dsl.BpValueError, "whole number"),
    ("matrix_power(ones(2, 3), 2)", dsl.BpShapeError, "square"),
    ("svd(ones(3), 1)", dsl.BpShapeError, "matrix"),
    ("qr(eye(2), mode=1)", dsl.BpTypeError, "no argument"),
    ("grad(A -> sum(svd(A)[0]))(ones(3, 2) + [[1, 0], [0, 2], [0, 0]])", dsl.BpValueError,
     "full_matrices=0"),
])
def test_decomp_mistakes_are_located_errors(src, kind, words):
    bp = dsl.Interpreter()
    with pytest.raises(kind) as info:
        bp.exec(f"x = {src}", filename="m.bp")
    assert words in info.value.message
    assert info.value.span is not None and info.value.span.line == 1


UNANNOTATED = [
    # (f of A without annotation, A as a matrix, A as a stack)
    ("A -> sum(eigh(A)[0] * [1, 2, 3]) + sum(eigh(A)[1]^2 * C3)", sym(3),
     np.stack([sym(3), sym(3)])),
    ("A -> sum(cholesky(A) * C3) + sum(cholesky(A, upper=1)^2)", spd(3, 3), spd(2, 3, 3)),
    ("A -> sum(svd(A, full_matrices=0)[0]^2 * C42) + sum(svd(A, compute_uv=0)^3)", spread(4, 2),
     np.stack([spread(4, 2), spread(4, 2)])),
    ("A -> sum(svd(A, full_matrices=0)[2]^2 * C42') + sum(svd(A, 0)[1])", spread(2, 4),
     np.stack([spread(2, 4)] * 3)),
    ("A -> sum(slogdet(A)[1] * 2) + sum(logdet(A @ swapaxes(A, -1, -2)))", spread(3, 3),
     np.stack([spread(3, 3)] * 2)),
    ("A -> sum(pinv(A) * 2) + sum(trace(A, offset=-1))", spread(4, 2),
     np.stack([spread(4, 2)] * 2)),
    ("A -> sum(matrix_power(A, 0) * A) + sum(matrix_power(A, 3)) + sum(matrix_power(A, -1))",
     spd(3, 3), spd(2, 3, 3)),
    ("A -> sum(solve_triangular(A, C3, lower=1)^2) + sum(solve_triangular(A, C3[0], trans=1)^2)",
     spd(3, 3), spd(2, 3, 3)),
]


@pytest.mark.parametrize("src, matrix, stack", UNANNOTATED, ids=[c[0][:50] for c in UNANNOTATED])
def test_decomp_rank_generic_derivative_prints_and_reads_back(src, matrix, stack):
    """Without an annotation the rules build rank-generic graphs (tril, the diagonal of
    ones_like, matmul_vjp): the printed gradient, read back, is right for a matrix and
    for a stack, and so is the printed derivative of that gradient."""
    bp = session(C3=C3, C42=C42, M=matrix, S=stack)
    bp.exec(f"f = {src}")
    for name in ("grad(f)", "grad(A -> sum(grad(f)(A)^2))"):
        text = bp.show(name)
        assert "grad(A ->" not in text, f"{name} fell back: {text}"
        bp.exec(f"g = {text}")
        for x in ("M", "S"):
            np.testing.assert_allclose(bp.eval(f"g({x})"), bp.eval(f"{name}({x})"), rtol=1e-10,
                                       atol=1e-11, err_msg=f"{name} at {x}: {text}")


def test_decomp_qr_needs_the_shape_and_says_so():
    """qr's rule differs for tall and wide matrices: without an annotation its
    derivative is a clean error, and printing falls back to the transform."""
    bp = session(X=spread(3, 2))
    bp.exec("def f(A) = sum(qr(A)[1]^2)")
    text = bp.show("grad(f)")
    assert text.startswith("grad(")
    bp.exec(f"g = {text}")
    np.testing.assert_allclose(bp.eval("g(X)"), bp.eval("grad(f)(X)"), rtol=1e-14)
    with pytest.raises(dsl.BpValueError) as info:
        bp.exec('export grad(f) to "never.py"')
    assert "shape" in info.value.message


def test_decomp_parts_share_one_factorisation(monkeypatch):
    """A plan that needs w and v of eigh(A) factorises A once, and a new A is
    factorised again."""
    calls = []
    real = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda a: calls.append(1) or real(a))
    bp = session(X=sym(3), C3=C3)
    bp.exec("def f(A) = sum(eigh(A)[0] * [1, 2, 3]) + sum(eigh(A)[1]^2 * C3)\ng = grad(f)")
    bp.eval("g(X)")                    # builds and runs the plan
    calls.clear()
    bp["X"] = sym(3)
    got = bp.eval("g(X)")
    assert len(calls) == 1, f"{len(calls)} factorisations for one gradient"
    np.testing.assert_allclose(got, fd_grad(lambda A: real(A)[0] @ [1, 2, 3]
                                        + np.sum(real(A)[1] ** 2 * C3), bp["X"]), atol=1e-7)
