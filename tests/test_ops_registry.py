"""The registry walk: every op is one complete entry (docs/design.md, "Adding an op").

An `OpDef` holds everything about its op, and this walk fails for any op that
lacks a part: a doc line, an export (the NumPy code `export` writes), a
batching rule or a string saying why it has none, VJP and JVP rules when it is
differentiable, and samples in its family's module under tests/ops_samples/
(FORWARD always; GRAD when differentiable, else NONDIFF).  The samples are
run by tests/test_ops_forward.py (values, shapes, export) and
tests/test_ops_grad.py (derivatives against finite differences, batching).
"""
from __future__ import annotations

import inspect

import pytest

from dsl import batching, codegen, ops
from ops_samples import FORWARD, GRAD, NONDIFF

# Ops that run the user's Python (Interpreter.define): tests/test_host.py covers them.
HOST_OPS = {"host", "host_vjp"}
# Structured loops (dsl/loops.py): a body graph is no sample row; tests/test_loops.py checks them.
HOST_OPS |= {"loop", "loop_read", "loop_write"}


def missing_parts(opdef: ops.OpDef) -> list[str]:
    """What the entry lacks, in words."""
    name, lacks = opdef.name, []
    if not opdef.doc.strip():
        lacks.append("a doc line (doc=)")
    if opdef.export is None:
        lacks.append("an export template (export=)")
    if opdef.batch is None or (isinstance(opdef.batch, str) and not opdef.batch.strip()):
        lacks.append("a batching rule, or a string saying why it has none (batch=)")
    if opdef.differentiable and (opdef.vjp is None or opdef.jvp is None):
        lacks.append("a VJP and a JVP rule (it is differentiable)")
    for item in opdef.helpers:
        if not (isinstance(item, str) or inspect.isfunction(item)):
            lacks.append(f"helpers= of source strings or functions, not {item!r}")
    if name not in HOST_OPS:
        if name not in FORWARD:
            lacks.append("FORWARD samples in tests/ops_samples/<family>.py")
        if opdef.differentiable and name not in GRAD:
            lacks.append("GRAD samples in tests/ops_samples/<family>.py")
        if not opdef.differentiable and name not in NONDIFF:
            lacks.append("a NONDIFF row in tests/ops_samples/<family>.py")
    return lacks


@pytest.mark.parametrize("name", sorted(ops.REGISTRY))
def test_ops_registry_every_op_is_complete(name):
    lacks = missing_parts(ops.REGISTRY[name])
    assert not lacks, f"op {name!r} lacks: " + "; ".join(lacks)


def test_ops_registry_walk_finds_a_missing_part():
    """The walk itself: an entry with nothing but a kernel and a shape lacks every part."""
    bare = ops.OpDef(name="bare_test_op", kernel=lambda x: x, shape=lambda shs, a, span: shs[0])
    lacks = " ".join(missing_parts(bare))
    for part in ("doc=", "export=", "batch=", "VJP", "FORWARD", "GRAD"):
        assert part in lacks, part
    assert "NONDIFF" in " ".join(missing_parts(ops.OpDef(
        name="bare_test_op", kernel=abs, shape=lambda shs, a, span: shs[0], differentiable=False)))


def test_ops_registry_no_stale_sample_rows():
    for table, rows in (("FORWARD", FORWARD), ("GRAD", GRAD), ("NONDIFF", NONDIFF)):
        stale = sorted(set(rows) - set(ops.REGISTRY))
        assert not stale, f"tests/ops_samples {table} rows for ops that are not registered: {stale}"


def test_ops_registry_codegen_and_batching_read_the_entries():
    """codegen and batching keep no per-op tables: what they can do is what the entries say."""
    for name, opdef in ops.REGISTRY.items():
        assert codegen.has_code(name) == (opdef.export is not None), name
        assert batching.has_rule(name) == callable(opdef.batch), name
