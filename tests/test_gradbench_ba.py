"""GradBench `ba` (benchmarks/gradbench/ba.bp, ba.py): bundle adjustment's residuals
and sparse Jacobian, against a NumPy reference written from ADBench's formulas
(one observation at a time), Jacobians by central differences of it.

Through the protocol the eval can only send duplicated inputs (one camera, point,
weight and feature repeated), where every observation's block is the same; so the
layout is also checked in a bp session on distinct cameras, points, weights and a
shuffled observation list, the whole CSR matrix against the finite-difference
Jacobian of the NumPy objective.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dsl
from tests.test_gradbench import Eval, check, mismatches

BA = Path(__file__).resolve().parent.parent / "benchmarks" / "gradbench" / "ba.bp"


# ── the reference: ADBench's objective, one observation at a time ───────────

def _rotate(rot, x):
    sq = float(rot @ rot)
    if sq == 0:
        return x + np.cross(rot, x)
    theta = np.sqrt(sq)
    u = rot / theta
    return x * np.cos(theta) + np.cross(u, x) * np.sin(theta) + u * (u @ x) * (1 - np.cos(theta))


def _reproj(cam, x, w, feat):
    xc = _rotate(cam[0:3], x - cam[3:6])
    proj = xc[0:2] / xc[2]
    rsq = proj @ proj
    proj = proj * (1 + cam[9] * rsq + cam[10] * rsq * rsq)
    return w * (proj * cam[6] + cam[7:9] - feat)


def _residuals(cams, X, w, feats, obs):
    """The objective's two outputs, stacked: 2p reprojection errors, then p weight errors."""
    reproj = [_reproj(cams[c], X[j], w[i], feats[i]) for i, (c, j) in enumerate(obs)]
    return np.concatenate([np.ravel(reproj), 1 - w ** 2])


def _fd_jacobian(cams, X, w, feats, obs, h=1e-6):
    """Central differences of _residuals in every parameter: [3p, 11n + 3m + p]."""
    theta = np.concatenate([cams.ravel(), X.ravel(), w])
    n, m = len(cams), len(X)

    def f(t):
        return _residuals(t[:11 * n].reshape(n, 11), t[11 * n:11 * n + 3 * m].reshape(m, 3),
                          t[11 * n + 3 * m:], feats, obs)

    cols = []
    for k in range(len(theta)):
        step = h * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        cols.append((f(up) - f(down)) / (2 * step))
    return np.stack(cols, axis=1)


def _camera(rng):
    # Rotations up to ~0.5 rad and points about 10 in front (z): depths stay well away
    # from 0, where the residuals (and their differences) would blow up.
    return np.concatenate([rng.normal(0, 0.2, 3), rng.normal(0, 1, 3), [rng.uniform(200, 500)],
                           rng.normal(0, 5, 2), rng.normal(0, 0.05, 2)])


def _point(rng):
    return rng.normal(0, 1, 3) + [0, 0, 10]


def _csr_dense(out, nrows, ncols):
    rows, cols, vals = (np.asarray(out[k]) for k in ("rows", "cols", "vals"))
    assert rows.shape == (nrows + 1,) and rows[0] == 0 and np.all(np.diff(rows) >= 0)
    assert cols.shape == vals.shape == (rows[-1],)
    dense = np.zeros((nrows, ncols))
    for r in range(nrows):
        for k in range(int(rows[r]), int(rows[r + 1])):
            assert cols[k] == int(cols[k]) and 0 <= cols[k] < ncols
            dense[r, int(cols[k])] += vals[k]
    return dense


# ── in a session: distinct cameras and points, every entry of the matrix ──────

@pytest.fixture(scope="module")
def session():
    return dsl.Interpreter().run_file(BA)


@pytest.mark.parametrize("n, m, p, seed", [(3, 5, 12, 0), (2, 7, 9, 1)])
def test_ba_jacobian_is_the_fd_jacobian_of_distinct_observations(session, n, m, p, seed):
    rng = np.random.default_rng(seed)
    cams = np.stack([_camera(rng) for _ in range(n)])
    cams[0, 0:3] = 0                        # ADBench's other branch: no rotation
    X = np.stack([_point(rng) for _ in range(m)])
    w = rng.uniform(0.3, 1.5, p)
    feats = rng.normal(0, 50, (p, 2))
    obs = np.stack([rng.integers(0, n, p), rng.integers(0, m, p)], axis=1)
    obs[:n, 0] = np.arange(n)               # every camera and point is seen
    obs[:m, 1] = np.arange(m) if m <= p else obs[:m, 1]

    # ba.bp's layout: one column per camera, point, observation.
    args = cams.T, X.T, w, feats.T, obs.T.astype(float)
    out = session.function("objective")(*args)
    expected = _residuals(cams, X, w, feats, obs)
    assert np.asarray(out["reproj_error"]).shape == (2, p)
    got = np.concatenate([np.ravel(out["reproj_error"], order="F"), out["w_err"]])
    assert not mismatches(got.tolist(), expected.tolist())
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-9)

    J = session.function("jacobian")(*args)
    dense = _csr_dense(J, 3 * p, 11 * n + 3 * m + p)
    fd = _fd_jacobian(cams, X, w, feats, obs)
    bad = mismatches(dense.tolist(), fd.tolist())
    assert not bad, "; ".join(bad[:10])
    assert np.allclose(dense, fd, rtol=1e-5, atol=1e-5)
    # ADBench's layout: 15 entries per reprojection row (camera, point, weight), one
    # per weight row, the columns in that order within a row.
    assert np.array_equal(np.diff(J["rows"]), [15] * (2 * p) + [1] * p)
    first = np.asarray(J["cols"][:15])
    c, j = obs[0]
    assert first.tolist() == [*range(11 * c, 11 * c + 11),
                              *range(11 * n + 3 * j, 11 * n + 3 * j + 3), 11 * n + 3 * m]


# ── through the protocol, as the eval sends it ─────────────────────────────

def _expected_outputs(inp):
    """What upstream's manual tool answers, from the reference and ADBench's SparseMat."""
    n, m, p = inp["n"], inp["m"], inp["p"]
    cams = np.tile(inp["cam"], (n, 1))
    X = np.tile(inp["x"], (m, 1))
    w = np.full(p, inp["w"])
    feats = np.tile(inp["feat"], (p, 1))
    obs = np.stack([np.arange(p) % n, np.arange(p) % m], axis=1)
    res = _residuals(cams, X, w, feats, obs)
    objective = {"reproj_error": {"elements": res[0:2], "repeated": p},
                 "w_err": {"element": res[2 * p], "repeated": p}}
    # One observation's 2 × 15 block by differences of its own function (all are equal).
    theta = np.concatenate([inp["cam"], inp["x"], [inp["w"]]])
    block = np.zeros((2, 15))
    for k in range(15):
        step = 1e-6 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        block[:, k] = (_reproj(up[:11], up[11:14], up[14], inp["feat"]) -
                       _reproj(down[:11], down[11:14], down[14], inp["feat"])) / (2 * step)
    rows, cols, vals = [0], [], []
    for i, (c, j) in enumerate(obs):
        for r in range(2):
            rows.append(rows[-1] + 15)
            cols += [*range(11 * c, 11 * c + 11), *range(11 * n + 3 * j, 11 * n + 3 * j + 3),
                     11 * n + 3 * m + i]
            vals += block[r].tolist()
    for i in range(p):
        rows.append(rows[-1] + 1)
        cols.append(11 * n + 3 * m + i)
        vals.append(-2 * w[i])
    jacobian = {k: v[:30] + [v[-1]] for k, v in (("rows", rows), ("cols", cols), ("vals", vals))}
    return objective, jacobian


@pytest.mark.parametrize("n, m, p, seed", [(3, 4, 10, 2), (5, 11, 40, 3)])
def test_ba_through_the_protocol(n, m, p, seed):
    rng = np.random.default_rng(seed)
    inp = {"n": n, "m": m, "p": p, "cam": _camera(rng).tolist(), "x": _point(rng).tolist(),
           "w": float(rng.uniform(0.3, 1.5)), "feat": rng.normal(0, 50, 2).tolist()}
    objective, jacobian = _expected_outputs(inp)
    ev = Eval()
    try:
        ev.send({"kind": "start"})
        assert ev.define("ba")["success"]
        got = ev.output("ba", "objective", inp)
        check(got, objective)
        assert isinstance(got["reproj_error"]["repeated"], int)
        got = ev.output("ba", "jacobian", inp)
        check(got, jacobian)
        assert got["rows"] == jacobian["rows"] and got["cols"] == jacobian["cols"]
        assert all(isinstance(v, int) for v in got["rows"] + got["cols"])
        response = ev.evaluate("ba", "jacobian", inp, min_runs=3)
        assert sum(t["name"] == "evaluate" for t in response["timings"]) >= 3
    finally:
        assert ev.close() == 0
