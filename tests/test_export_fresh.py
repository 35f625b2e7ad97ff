"""Every op's exported NumPy code, run in a fresh process (issue 14, acceptance 1).

tests/test_ops_forward.py checks each op's export template in this process, with
only NumPy in the module's scope.  Here all the registry's samples are written into
ONE module (one function per sample, so the names chosen last must also keep the
helpers of every op family apart) and run by a new `python -I` that can import only
NumPy and that module; its results come back in an .npz and are compared with the
op's kernel in this process.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from dsl import codegen, graph, ops
from dsl.evaluate import Plan
from tests.test_ops_forward import CASES, assert_close


def test_every_op_exports_and_runs_in_a_fresh_process(tmp_path):
    functions, inputs_of, want = {}, {}, {}
    for case in CASES:
        name, sample = case.values
        if not ops.REGISTRY[name].params:
            continue                               # constructors: no inputs to export over
        key = f"f{len(functions)}"
        names = [f"x{i}" for i in range(len(sample.inputs))]
        inputs = [graph.make_input(n, np.shape(x)) for n, x in zip(names, sample.inputs)]
        node = ops.apply(name, inputs, dict(sample.attrs))
        functions[key] = (names, inputs, node)
        arrays = [np.asarray(x, dtype=float) for x in sample.inputs]
        inputs_of[key] = arrays
        with np.errstate(all="ignore"):
            want[key] = (case.id, Plan(inputs, [node]).run(arrays)[0])
    (tmp_path / "every_op.py").write_text(codegen.module(functions, {}), encoding="utf-8")
    np.savez(tmp_path / "inputs.npz", **{f"{k}_{i}": a for k, xs in inputs_of.items()
                                          for i, a in enumerate(xs)})
    counts = {k: len(xs) for k, xs in inputs_of.items()}
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
              "import numpy as np, every_op\n"
              f"counts = {counts!r}\n"
              f"data = np.load({str(tmp_path / 'inputs.npz')!r})\n"
              "out = {}\n"
              "with np.errstate(all='ignore'):\n"
              "    for k, n in counts.items():\n"
              "        out[k] = np.asarray(getattr(every_op, k)(*[data[f'{k}_{i}'] for i in range(n)]))\n"
              f"np.savez({str(tmp_path / 'out.npz')!r}, **out)\n"
              "print(sorted(sys.modules.keys() & {'dsl', 'scipy', 'torch'}))\n")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"             # nothing but NumPy was imported
    got = np.load(tmp_path / "out.npz")
    assert len(got.files) == len(functions) > 200
    for key, (label, expected) in want.items():
        try:
            assert_close(got[key], expected)
        except AssertionError as err:
            raise AssertionError(f"{label}: {err}") from None
