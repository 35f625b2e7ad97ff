"""GradBench `ba` (ADBench bundle adjustment): the Python side of ba.bp.

The eval sends one camera, one point, one weight and one feature with the
counts n, m, p; a tool repeats them into n cameras, m points and p
observations (observation i sees camera i mod n and point i mod m) and must
compute on all of them.  `prepare` builds those arrays (untimed); ba.bp's
`objective` and `jacobian` compute everything, the Jacobian's CSR arrays
included, so the timed call covers what upstream's `manual` times (the blocks
and the SparseMat).  The outputs are cut down as upstream's tools do: the
first observation's two residuals and weight error with the counts, and the
first 30 and the last entry of the CSR arrays `rows`, `cols` and `vals`.
"""
from __future__ import annotations

import numpy as np

from .tool import Function, _array


def _prepare(bp, inp):
    n, m, p = int(inp["n"]), int(inp["m"]), int(inp["p"])
    # One column per camera, point, observation (ba.bp's layout).
    cams = np.tile(_array(inp["cam"]).reshape(11, 1), (1, n))
    X = np.tile(_array(inp["x"]).reshape(3, 1), (1, m))
    w = np.full(p, float(inp["w"]))
    feats = np.tile(_array(inp["feat"]).reshape(2, 1), (1, p))
    i = np.arange(p)
    obs = np.stack([i % n, i % m]).astype(np.float64)
    return cams, X, w, feats, obs


def _objective_output(out):
    reproj, w_err = np.asarray(out["reproj_error"]), np.asarray(out["w_err"])
    return {"reproj_error": {"elements": reproj[:, 0].tolist(), "repeated": reproj.shape[1]},
            "w_err": {"element": float(w_err[0]), "repeated": len(w_err)}}


def _first_30_and_last(v, kind):
    v = np.asarray(v)
    return [kind(x) for x in (*v[:30], v[-1])]


def _jacobian_output(out):
    return {"rows": _first_30_and_last(out["rows"], int),
            "cols": _first_30_and_last(out["cols"], int),
            "vals": _first_30_and_last(out["vals"], float)}


FUNCTIONS = [Function("objective", _prepare, _objective_output),
             Function("jacobian", _prepare, _jacobian_output)]
