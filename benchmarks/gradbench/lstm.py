"""GradBench `lstm` (ADBench): the Python side.  The eval sends four arrays of rows
(main_params, extra_params, state, sequence); they become 2-D arrays here (untimed),
and lstm.bp computes the objective and its gradient, already laid out as the eval
wants it (main_params' gradient then extra_params', each flattened row by row)."""
from __future__ import annotations

import numpy as np

from .tool import Function

ARRAYS = ("main_params", "extra_params", "state", "sequence")


def _matrix(inp: dict, name: str) -> np.ndarray:
    a = np.asarray(inp[name], dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"lstm: {name} must be a list of rows of numbers (got {a.ndim} axes)")
    return a


def _prepare(bp, inp) -> tuple:
    return tuple(_matrix(inp, name) for name in ARRAYS)


FUNCTIONS = [Function("objective", _prepare), Function("jacobian", _prepare)]
