"""GradBench `ht` (ADBench hand tracking) through the protocol, as the eval drives it.

The inputs are small synthetic hands in the eval's format (upstream's
evals/ht/README.md, ADBench's HandData): 22 bones with the hand's parents (the
θ-to-pose mapping of 26 parameters is fixed to that skeleton, as upstream's
`to_pose_params` is), rigid base transforms with the translation in the last
column, tens of vertices with one to four bone weights each, random triangles,
correspondences and points.  The residuals are checked against a NumPy
implementation written here from upstream's C++ reference (cpp/gradbench/evals/
ht.hpp) with plain loops, and the Jacobian against central finite differences of
that implementation, with the eval's rule |x − y| / max(1, |x| + |y|) ≤ 1e-4.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_gradbench import Eval, check

PARENTS = [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19, 0]


# ── the eval's input, made as upstream's reader lays it out ─────────────────

def _rigid(rng, shift=0.1):
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    m = np.eye(4)
    m[:3, :3] = q
    m[:3, 3] = shift * rng.standard_normal(3)
    return m


def hand_input(seed, n_verts=40, n_points=12, complicated=False, mirrored=False, theta=None):
    rng = np.random.default_rng(seed)
    bones = len(PARENTS)
    positions = np.ones((n_verts, 4))
    positions[:, :3] = 0.1 * rng.standard_normal((n_verts, 3))
    weights = np.zeros((n_verts, bones))
    for v in range(n_verts):
        which = rng.choice(bones, size=rng.integers(1, 5), replace=False)
        weights[v, which] = rng.random(len(which))
        weights[v] /= weights[v].sum()
    triangles = np.array([rng.choice(n_verts, 3, replace=False) for _ in range(2 * n_verts)])
    model = {"bone_count": bones, "bone_names": [f"bone{i}" for i in range(bones)],
             "parents": PARENTS,
             "base_relatives": [_rigid(rng).tolist() for _ in range(bones)],
             "inverse_base_absolutes": [_rigid(rng).tolist() for _ in range(bones)],
             "base_positions": positions.tolist(), "weights": weights.tolist(),
             "triangles": triangles.tolist(), "is_mirrored": mirrored}
    targets = len(triangles) if complicated else n_verts
    theta = rng.standard_normal(26) if theta is None else np.asarray(theta, float)
    return {"theta": theta.tolist(),
            "us": rng.random((n_points, 2)).tolist() if complicated else [],
            "data": {"model": model,
                     "correspondences": rng.integers(0, targets, n_points).tolist(),
                     "points": rng.standard_normal((n_points, 3)).tolist()}}


# ── the reference: upstream's C++ objective, in NumPy with loops ────────────

def _angle_axis(w):
    n = np.sqrt(w @ w)
    if n < 1e-4:
        return np.eye(3)
    k = w / n
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.cos(n) * np.eye(3) + np.sin(n) * cross + (1 - np.cos(n)) * np.outer(k, k)


def _euler_xzy(tx, tz, ty):
    cx, sx, cy, sy, cz, sz = np.cos(tx), np.sin(tx), np.cos(ty), np.sin(ty), np.cos(tz), np.sin(tz)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def hand_residuals(theta, us, inp):
    data, model = inp["data"], inp["data"]["model"]
    bones = len(model["parents"])
    pose = np.zeros((bones + 3, 3))          # rows: rotation, scale, translation, one per bone
    pose[0], pose[1], pose[2] = theta[0:3], 1, theta[3:6]
    i_theta, i_pose = 6, 5
    for _finger in range(5):
        for joint in (2, 3, 4):
            pose[i_pose, 0] = theta[i_theta]
            i_theta += 1
            if joint == 2:
                pose[i_pose, 1] = theta[i_theta]
                i_theta += 1
            i_pose += 1
        i_pose += 1
    relatives = np.array(model["base_relatives"])
    inverses = np.array(model["inverse_base_absolutes"])
    absolutes = []
    for b in range(bones):
        posed = np.eye(4)
        posed[:3, :3] = _euler_xzy(*pose[b + 3])
        relative = relatives[b] @ posed
        parent = model["parents"][b]
        absolutes.append(relative if parent == -1 else absolutes[parent] @ relative)
    base, weights = np.array(model["base_positions"]), np.array(model["weights"])
    verts = np.zeros((len(base), 3))
    for b in range(bones):
        transform = absolutes[b] @ inverses[b]
        for v in range(len(base)):
            verts[v] += weights[v, b] * (transform @ base[v])[:3]
    if model["is_mirrored"]:
        verts[:, 0] *= -1
    verts = verts @ (_angle_axis(pose[0]) * pose[1]).T + pose[2]
    points, corr = np.array(data["points"]), data["correspondences"]
    err = np.zeros_like(points)
    for i in range(len(points)):
        if len(us) == 0:
            err[i] = points[i] - verts[corr[i]]
        else:
            a, b, c = model["triangles"][corr[i]]
            u = us[i]
            err[i] = points[i] - (u[0] * verts[a] + u[1] * verts[b] + (1 - u[0] - u[1]) * verts[c])
    return err.reshape(-1)


def hand_jacobian_fd(inp, h=1e-6):
    """Central differences: the us columns (each point's own u, all points at
    once, since point i's residuals depend on us[i] alone), then θ's."""
    theta, us = np.array(inp["theta"]), np.array(inp["us"])
    columns = []
    for k in range(2 if len(us) else 0):
        du = np.zeros_like(us)
        du[:, k] = h
        columns.append((hand_residuals(theta, us + du, inp) -
                        hand_residuals(theta, us - du, inp)) / (2 * h))
    for j in range(len(theta)):
        dt = np.zeros_like(theta)
        dt[j] = h
        columns.append((hand_residuals(theta + dt, us, inp) -
                        hand_residuals(theta - dt, us, inp)) / (2 * h))
    return np.stack(columns, axis=1)


# ── the tests ───────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def tool():
    ev = Eval()
    assert ev.send({"kind": "start", "eval": "ht"}).get("tool") == "bp"
    assert ev.define("ht")["success"]
    yield ev
    assert ev.close() == 0


def _check_both(tool, inp, columns):
    theta, us = np.array(inp["theta"]), np.array(inp["us"])
    residuals = tool.output("ht", "objective", inp)
    assert len(residuals) == 3 * len(inp["data"]["points"])
    check(residuals, hand_residuals(theta, us, inp))
    jac = tool.output("ht", "jacobian", inp)
    assert len(jac) == len(residuals) and all(len(row) == columns for row in jac)
    expected = hand_jacobian_fd(inp)
    check(jac, expected)
    # the eval's absolute 1e-4 alone could pass a nearly-zero Jacobian: relatively too
    scale = np.abs(expected).max()
    assert scale > 0.1 and np.abs(np.array(jac) - expected).max() <= 1e-6 * scale


# few points: only the vertices the points use are skinned; many: all of them
@pytest.mark.parametrize("n_verts, n_points", [(40, 12), (20, 30)])
def test_ht_simple(tool, n_verts, n_points):
    _check_both(tool, hand_input(1, n_verts, n_points), columns=26)


@pytest.mark.parametrize("n_verts, n_points", [(40, 9), (20, 15)])
def test_ht_complicated(tool, n_verts, n_points):
    _check_both(tool, hand_input(2, n_verts, n_points, complicated=True), columns=28)


def test_ht_mirrored_hand(tool):
    _check_both(tool, hand_input(3, mirrored=True), columns=26)
    _check_both(tool, hand_input(4, complicated=True, mirrored=True), columns=28)


def test_ht_global_rotation_below_the_threshold_is_the_identity(tool):
    # ‖θ[0:3]‖ < 1e-4: upstream uses the identity (and a zero derivative) there
    theta = np.random.default_rng(5).standard_normal(26)
    theta[0:3] = [3e-5, -2e-5, 4e-5]
    inp = hand_input(5, theta=theta)
    _check_both(tool, inp, columns=26)
    jac = np.array(tool.output("ht", "jacobian", inp))
    assert np.all(jac[:, 0:3] == 0)
    # just above it the rotation is Rodrigues' and its columns are not zero
    theta[0:3] = [3e-4, -2e-4, 4e-4]
    jac = np.array(tool.output("ht", "jacobian", hand_input(5, theta=theta)))
    assert np.abs(jac[:, 0:3]).max() > 0.01


def test_ht_malformed_input_fails_and_the_tool_keeps_serving(tool):
    inp = hand_input(6)
    inp["data"]["model"]["parents"] = PARENTS[:10]         # fewer bones than the matrices
    response = tool.evaluate("ht", "objective", inp)
    assert response["success"] is False and response.get("error")
    check(tool.output("ht", "objective", hand_input(6)),
          hand_residuals(np.array(hand_input(6)["theta"]), np.array([]), hand_input(6)))
