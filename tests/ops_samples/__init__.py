"""The sample tables of the registry walks, one module per op family.

Each module here (tests/ops_samples/<family>.py, for dsl/ops/<family>.py) may
define
  FORWARD       name → Spec: kernel values and shape rules (tests/test_ops_forward.py)
  GRAD          name → [Sample]: first and second derivatives against finite
                differences, batched Jacobians (tests/test_ops_grad.py)
  NONDIFF       name → (inputs, attrs): ops no gradient flows through
  SHAPE_ERRORS  [(name, input shapes, attrs, words)]: shape errors the op raises
  MACROS        [(name, bp source, {global: array}, expected)]: builtins that are
                Macros (graph-building code, no OpDef), through Interpreter.eval
and the walks merge them.  A new family adds its own module; no table here or in
the test files is shared.  An op named in two modules is an error.
"""
from __future__ import annotations

import importlib
import pkgutil


def _families():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"{__name__}.{info.name}")


FAMILIES = dict(_families())


def _merged(table: str) -> dict:
    out: dict = {}
    where: dict = {}
    for family, module in FAMILIES.items():
        for name, row in getattr(module, table, {}).items():
            if name in out:
                raise AssertionError(f"tests/ops_samples: {name!r} has {table} rows in both "
                                     f"{where[name]}.py and {family}.py")
            out[name], where[name] = row, family
    return out


FORWARD = _merged("FORWARD")
GRAD = _merged("GRAD")
NONDIFF = _merged("NONDIFF")
SHAPE_ERRORS = [row for module in FAMILIES.values() for row in getattr(module, "SHAPE_ERRORS", [])]
MACROS = [row for module in FAMILIES.values() for row in getattr(module, "MACROS", [])]
