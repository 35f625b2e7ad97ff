"""Graph → flat plan → NumPy.

A plan is compiled once per graph: a list of steps in topological order,
each a kernel, its operand slots and its result slot, and the slots to
free after it (each intermediate is dropped after its last use).  It is
cached by the caller per (function, argument shapes) and run many times.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from .errors import BpError, BpValueError
from .graph import Node, topo_order
from .ops import ACTIVE, REGISTRY, check_interrupt


def _check_finite(value, args, node) -> None:
    """--check-nan: the first node that makes a nan or inf out of finite inputs."""
    if np.all(np.isfinite(value)):
        return
    if all(np.all(np.isfinite(a)) for a in args):
        bad = "nan" if np.any(np.isnan(value)) else "inf"
        what = "a derivative of this expression" if node.origin == "d" else "this expression"
        raise BpValueError(f"{node.op} gave {bad} from finite inputs in {what} (--check-nan)",
                           node.span)


class Plan:
    def __init__(self, inputs: list[Node], outputs: list[Node]):
        order = topo_order(outputs)
        slot: dict[int, int] = {}
        self.n_inputs = len(inputs)
        for i, node in enumerate(inputs):
            slot[id(node)] = i
        self.consts: list[tuple[int, np.ndarray]] = []
        steps = []
        nslots = len(inputs)
        for node in order:
            if id(node) in slot:
                continue
            if node.op == "input":
                raise BpValueError("the graph reads an input that was not given", node.span)
            slot[id(node)] = nslots
            if node.op == "const":
                self.consts.append((nslots, node.value))
            else:
                opdef = REGISTRY[node.op]
                kernel = functools.partial(opdef.kernel, **dict(node.attrs)) if node.attrs \
                    else opdef.kernel
                steps.append([kernel, tuple(slot[id(i)] for i in node.inputs), nslots, (), node])
            nslots += 1
        self.nslots = nslots
        self.out_slots = [slot[id(o)] for o in outputs]
        # Free each slot after the step that reads it last (never an output's).
        keep = set(self.out_slots)
        last: dict[int, int] = {}
        for k, step in enumerate(steps):
            for s in step[1]:
                last[s] = k
        frees: dict[int, list[int]] = {}
        for s, k in last.items():
            if s not in keep:
                frees.setdefault(k, []).append(s)
        for k, step in enumerate(steps):
            step[3] = tuple(frees.get(k, ()))
        self.steps = [tuple(s) for s in steps]

    def __len__(self) -> int:
        return len(self.steps)

    def run(self, arrays) -> list[np.ndarray]:
        env: list = [None] * self.nslots
        env[: self.n_inputs] = arrays
        for s, value in self.consts:
            env[s] = value
        step = None
        active = ACTIVE
        flag = active.interrupt
        check_nan = active.limits.check_nan
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for step in self.steps:
                    kernel, ins, out, free, node = step
                    args = [env[i] for i in ins]
                    env[out] = kernel(*args)
                    if check_nan:
                        _check_finite(env[out], args, node)
                    for s in free:
                        env[s] = None
                    if flag is not None and flag.is_set():
                        check_interrupt(node.span)
        except BpError as err:
            raise err.located(step[4].span if step else None)
        except np.linalg.LinAlgError as err:
            raise BpValueError(f"{step[4].op}: {str(err).lower()}", step[4].span) from None
        except (ValueError, IndexError, TypeError, MemoryError, OverflowError) as err:
            raise BpValueError(f"{step[4].op}: {err}", step[4].span) from None
        return [np.asarray(env[s], dtype=np.float64) for s in self.out_slots]
