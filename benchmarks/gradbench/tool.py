"""The GradBench protocol over bp's public embedding API.

One session (`dsl.Interpreter`) per defined module runs the module's `.bp`
file; each eval function is a bp function called through
`Interpreter.function`.  This layer only turns the JSON input into arrays
(once, untimed), binds the sizes a graph needs when it is built (`n` of
llsq, `steps` of ode), runs the call `min_runs`/`min_seconds` times timing
the call alone, and turns the result back into strict JSON.  No derivative
is written here: every one is a bp transform in a `.bp` file.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import dsl

HERE = Path(__file__).resolve().parent


def _array(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _bind_size(bp: dsl.Interpreter, name: str, value) -> None:
    """Bind a size the graph needs when it is built; rebinding changes the plan, so
    only rebind when the value changes (the next call rebuilds its plan, timed)."""
    value = int(value)
    if name not in bp.names() or float(bp[name]) != value:
        bp[name] = value


def _x(bp, inp):
    return (_array(inp["x"]),)


def _llsq(bp, inp):
    _bind_size(bp, "n", inp["n"])
    return (_array(inp["x"]),)


def _det(bp, inp):
    ell = int(inp["ell"])
    return (_array(inp["A"]).reshape(ell, ell),)


def _gmm(bp, inp):
    d, k, n = int(inp["d"]), int(inp["k"]), int(inp["n"])
    theta = {"alpha": _array(inp["alpha"]).reshape(k), "mu": _array(inp["mu"]).reshape(k, d),
             "q": _array(inp["q"]).reshape(k, d),
             "l": _array(inp["l"]).reshape(k, d * (d - 1) // 2)}
    return theta, _array(inp["x"]).reshape(n, d), float(inp["m"]), float(inp["gamma"])


def _kmeans(bp, inp):
    return _array(inp["centroids"]), _array(inp["points"])


def _ode(bp, inp):
    _bind_size(bp, "steps", inp["s"])
    return (_array(inp["x"]),)


def _saddle(bp, inp):
    return (_array(inp["start"]).reshape(2),)


def _particle(bp, inp):
    return (float(inp["w"]),)


def _hello(bp, inp):
    return (float(inp),)


def to_json(v):
    """bp's results (arrays, tuples, dicts) as JSON values."""
    if isinstance(v, np.ndarray):
        return float(v) if v.ndim == 0 else v.tolist()
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [to_json(x) for x in v]
    return v


def _flat(v):
    return np.asarray(v).reshape(-1).tolist()


@dataclass(frozen=True)
class Function:
    name: str                                  # the bp function, defined in the module's file
    prepare: Callable[[dsl.Interpreter, Any], tuple]  # JSON input → arguments (untimed)
    output: Callable[[Any], Any] = to_json


MODULES: dict[str, list[Function]] = {
    "hello": [Function("square", _hello), Function("double", _hello)],
    "lse": [Function("primal", _x), Function("gradient", _x)],
    "llsq": [Function("primal", _llsq), Function("gradient", _llsq)],
    "det": [Function("primal", _det), Function("gradient", _det, _flat)],
    "gmm": [Function("objective", _gmm), Function("jacobian", _gmm)],
    "kmeans": [Function("cost", _kmeans), Function("dir", _kmeans)],
    "ode": [Function("primal", _ode), Function("gradient", _ode)],
    "saddle": [Function(mode, _saddle) for mode in ("ff", "fr", "rf", "rr")],
    "particle": [Function(mode, _particle) for mode in ("ff", "fr", "rf", "rr")],
}

# Evals whose Python side is longer (reading a model, laying out a sparse Jacobian)
# keep it beside their .bp file: benchmarks/gradbench/<name>.py defines FUNCTIONS,
# a list of Function, and is imported when the eval defines the module.
PLUGGED = ("lstm", "ba", "ht")


def functions_of(name: str) -> list[Function] | None:
    """The eval functions bp serves for module `name`, or None if it has none."""
    if name in MODULES:
        return MODULES[name]
    if name in PLUGGED and (HERE / f"{name}.py").exists():
        import importlib
        return importlib.import_module(f"{__package__}.{name}").FUNCTIONS
    return None


@dataclass
class Module:
    bp: dsl.Interpreter
    functions: dict[str, tuple[Function, Callable]]


class Tool:
    """The tool's state between messages: the modules defined so far."""

    def __init__(self):
        self.modules: dict[str, Module] = {}

    def respond(self, line: bytes | str) -> str:
        """The response line (without its newline) to one message line."""
        try:
            msg = json.loads(line)
        except ValueError as err:
            return json.dumps({"id": None, "error": f"the message is not JSON: {err}"})
        if not isinstance(msg, dict):
            return json.dumps({"id": None, "error": "a message is a JSON object"})
        response = self.handle(msg)
        try:
            return json.dumps(response, allow_nan=False)
        except ValueError:                 # nan or inf in the output: not JSON
            return json.dumps({"id": msg.get("id"), "success": False,
                               "error": "the output holds nan or inf, which JSON cannot carry",
                               "timings": response.get("timings", [])})

    def handle(self, msg: dict) -> dict:
        kind, id_ = msg.get("kind"), msg.get("id")
        if kind == "start":
            return {"id": id_, "tool": "bp", "config": {"bp": dsl.__version__}}
        if kind == "define":
            return self.define(id_, msg.get("module"))
        if kind == "evaluate":
            return self.evaluate(id_, msg)
        if kind == "analysis" and msg.get("valid") is False:
            print(f"bp-gradbench: evaluate {msg.get('of')} was invalid: {msg.get('error')}",
                  file=sys.stderr)
        return {"id": id_}

    def define(self, id_, name) -> dict:
        start = time.perf_counter_ns()
        try:
            served = functions_of(name) if isinstance(name, str) else None
        except Exception as err:           # a broken plug-in: say so, keep serving
            return {"id": id_, "success": False, "error": _describe(err)}
        if served is None:
            have = [m for m in (*MODULES, *PLUGGED) if functions_of(m) is not None]
            return {"id": id_, "success": False,
                    "error": f"bp has no GradBench module {name!r} (it has {', '.join(have)})"}
        try:
            bp = dsl.Interpreter()
            bp.run_file(HERE / f"{name}.bp")
            functions = {f.name: (f, bp.function(f.name)) for f in served}
        except Exception as err:           # a broken .bp file: say so, keep serving
            return {"id": id_, "success": False, "error": _describe(err)}
        self.modules[name] = Module(bp, functions)
        return {"id": id_, "success": True,
                "timings": [{"name": "define", "nanoseconds": time.perf_counter_ns() - start}]}

    def evaluate(self, id_, msg: dict) -> dict:
        timings: list[dict] = []
        try:
            module = self.modules.get(msg.get("module"))
            if module is None:
                raise LookupError(f"module {msg.get('module')!r} is not defined")
            name = msg.get("function")
            if name not in module.functions:
                raise LookupError(f"module {msg.get('module')!r} has no function {name!r} "
                                  f"(it has {', '.join(module.functions)})")
            spec, call = module.functions[name]
            inp = msg.get("input")
            start = time.perf_counter_ns()
            args = spec.prepare(module.bp, inp)
            timings.append({"name": "prepare", "nanoseconds": time.perf_counter_ns() - start})
            result = run_timed(call, args, inp, timings)
            return {"id": id_, "success": True, "output": spec.output(result), "timings": timings}
        except Exception as err:           # any failure is an answer, never a crash
            return {"id": id_, "success": False, "error": _describe(err), "timings": timings}


def run_timed(call: Callable, args: tuple, inp, timings: list) -> Any:
    """Protocol §3: run until min_runs runs and min_seconds seconds; time the call only."""
    runs = inp if isinstance(inp, dict) else {}
    min_runs, min_seconds = int(runs.get("min_runs", 1)), float(runs.get("min_seconds", 0))
    elapsed, count, result = 0, 0, None
    while count < max(min_runs, 1) or elapsed < min_seconds * 1e9:     # at least one run
        t0 = time.perf_counter_ns()
        result = call(*args)
        t1 = time.perf_counter_ns()
        timings.append({"name": "evaluate", "nanoseconds": t1 - t0})
        elapsed += t1 - t0
        count += 1
    return result


def _describe(err: Exception) -> str:
    if isinstance(err, dsl.BpError):
        return str(err)
    traceback.print_exc(file=sys.stderr)
    return f"{type(err).__name__}: {err}"


def main(stdin=None, stdout=None) -> int:
    """Serve messages until end of input.  Lines are read whole, however long."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    tool = Tool()
    while True:
        line = stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        stdout.write(tool.respond(line) + "\n")
        stdout.flush()
