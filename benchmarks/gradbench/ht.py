"""GradBench `ht` (ADBench hand tracking): the Python side of ht.bp.

The eval's input is `{theta: [26], us: [N][2] or [], data: {model: {bone_count,
bone_names, parents, base_relatives: [B][4][4], inverse_base_absolutes:
[B][4][4], base_positions: [V][4], weights: [V][B], triangles: [T][3],
is_mirrored}, correspondences: [N], points: [N][3]}}` (upstream's
evals/ht/README.md and ADBench's HandData); the matrices are row-major, as
upstream's `manual` reads them.  The variant is the length of `us`: empty is
"simple" (each point corresponds to a vertex), else "complicated" (to a point
of a triangle, with barycentric `us`).  `prepare` only turns the JSON into
arrays (untimed); ht.bp computes the residuals `objective` → [3N] and
`jacobian` → [3N][26] (simple) or [3N][2 + 26] (complicated: the two `us`
columns first, each row's derivative with respect to its own point's `us`).
"""
from __future__ import annotations

import numpy as np

from .tool import Function, _array, to_json


def _prepare(bp, inp):
    data, model = inp["data"], inp["data"]["model"]
    n_bones = len(model["parents"])
    record = {
        "base_relatives": _array(model["base_relatives"]).reshape(n_bones, 4, 4),
        "inverse_base_absolutes": _array(model["inverse_base_absolutes"]).reshape(n_bones, 4, 4),
        "base_positions": _array(model["base_positions"]).reshape(-1, 4),
        "weights": _array(model["weights"]).reshape(-1, n_bones),
        "parents": _array(model["parents"]).reshape(n_bones),
        "triangles": _array(model["triangles"]).reshape(-1, 3),
        "mirrored": float(bool(model["is_mirrored"])),
    }
    points = _array(data["points"]).reshape(-1, 3)
    us = _array(inp.get("us", []))
    us = us.reshape(0) if us.size == 0 else us.reshape(len(points), 2)
    return (_array(inp["theta"]).reshape(-1), us, record,
            _array(data["correspondences"]).reshape(len(points)), points)


FUNCTIONS = [Function("objective", _prepare, to_json),
             Function("jacobian", _prepare, to_json)]
