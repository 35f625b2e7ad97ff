"""What a plan's build is made of (issue 19, build speed): graph.topo_order's walk,
graph.intern's table, evaluate.Plan's steps and its step loop.

The walk and the table were rewritten for speed; here they are held to what they
promise: topo_order gives the order of a plain depth-first walk (checked against an
independent implementation, on random graphs with shared nodes and on chains far
deeper than Python's recursion limit), interning gives one node per key and keeps
none alive, and a plan's steps, frees and results are what the graph says (values
by hand).  No assertion here is about time.
"""
from __future__ import annotations

import gc
import random
import threading
import weakref

import numpy as np
import pytest

import dsl
from dsl import evaluate, graph
from dsl.errors import BpInterrupted, BpValueError, Span
from dsl.graph import Node, intern, make_input, topo_order
from dsl.ops import REGISTRY


# ── topo_order ─────────────────────────────────────────────────────────────

def reference_order(outputs) -> list:
    """Depth first from each output in turn, inputs left to right, a node placed once
    all its inputs are: written as the recursion it stands for, with the recursion's
    frames (node, next input) on a list, and nodes told apart by identity."""
    order, placed = [], set()
    for root in outputs:
        if id(root) in placed:
            continue
        placed.add(id(root))
        frames = [[root, 0]]
        while frames:
            frame = frames[-1]
            node, k = frame
            if k == len(node.inputs):
                frames.pop()
                order.append(node)
                continue
            frame[1] = k + 1
            child = node.inputs[k]
            if id(child) not in placed:
                placed.add(id(child))
                frames.append([child, 0])
    return order


def plain(op, *inputs, **attrs):
    """A node without the builder (no folding, no algebra): only the walk is tested."""
    return intern(op, tuple(inputs), tuple(sorted(attrs.items())), ())


def random_dag(rng: random.Random, n: int):
    """n nodes over a few inputs, each reading 0-4 earlier nodes (repeats allowed, as
    in x * x), biased to recent ones (long paths) and to a few popular ones (sharing)."""
    nodes = [make_input(f"x{i}", ()) for i in range(3)]
    for k in range(n):
        arity = rng.choice([0, 1, 1, 2, 2, 2, 3, 4])
        ins = []
        for _ in range(arity):
            r = rng.random()
            if r < 0.5:
                ins.append(nodes[-1 - min(len(nodes) - 1, int(rng.expovariate(0.5)))])
            elif r < 0.7:
                ins.append(nodes[rng.randrange(min(4, len(nodes)))])
            else:
                ins.append(rng.choice(nodes))
        nodes.append(plain("f", *ins, k=k))
    return nodes


@pytest.mark.parametrize("seed", range(40))
def test_topo_order_is_the_depth_first_order_on_random_graphs(seed):
    rng = random.Random(seed)
    nodes = random_dag(rng, rng.randrange(1, 300))
    # outputs: some nodes, repeated and overlapping, in any order (inputs among them)
    outputs = [rng.choice(nodes) for _ in range(rng.randrange(1, 6))]
    got = topo_order(outputs)
    assert [id(n) for n in got] == [id(n) for n in reference_order(outputs)]
    # and what that means: every node reachable, once, after all of its inputs
    where = {id(n): k for k, n in enumerate(got)}
    assert len(where) == len(got)
    for k, node in enumerate(got):
        assert all(where[id(i)] < k for i in node.inputs)
    reachable, todo = set(), list(outputs)
    while todo:
        node = todo.pop()
        if id(node) not in reachable:
            reachable.add(id(node))
            todo.extend(node.inputs)
    assert set(where) == reachable


def test_topo_order_of_small_graphs_by_hand():
    x, y = make_input("x", ()), make_input("y", ())
    a = plain("a", x, x)                 # an input read twice
    b = plain("b", y, a)
    c = plain("c", a, b, x)
    assert topo_order([c]) == [x, a, y, b, c]
    assert topo_order([b, c]) == [y, x, a, b, c]
    assert topo_order([x, c, x, y]) == [x, a, y, b, c]
    assert topo_order([]) == []
    assert topo_order([y]) == [y]
    assert topo_order(iter([a, a])) == [x, a]          # any iterable


@pytest.mark.parametrize("width", [1, 2])
def test_topo_order_walks_a_chain_far_deeper_than_the_recursion_limit(width):
    """10⁵ nodes deep: width 1 is a chain t_{k+1} = f(t_k); width 2 reads the input at
    each level too, t_{k+1} = f(t_k, x), which makes x shared by every node."""
    x = make_input("x", ())
    chain = [x]
    for k in range(100_000):
        chain.append(plain("f", *([chain[-1], x][:width]), k=k))
    got = topo_order([chain[-1]])
    assert len(got) == len(chain)
    assert all(a is b for a, b in zip(got, chain))
    del got, chain


# ── intern ─────────────────────────────────────────────────────────────────

def test_interning_gives_one_node_per_key():
    x, y = make_input("x", ()), make_input("y", ())
    a = intern("mul", (x, y), (), ())
    assert intern("mul", (x, y), (), ()) is a
    assert intern("mul", (y, x), (), ()) is not a                   # inputs in order
    assert intern("add", (x, y), (), ()) is not a                   # the op
    assert intern("mul", (x, y), (("k", 1),), ()) is not a          # the attributes
    assert intern("mul", (x, y), (("k", 1),), ()) is intern("mul", (x, y), (("k", 1),), ())
    assert intern("mul", (x, y), (), (), value_key=1) is not a      # the value key
    assert intern("mul", (x, y), (), (3,)) is a                     # not the shape: the first wins
    assert make_input("x", ()) is not x                             # an input is never shared


def test_an_interned_node_has_the_fields_it_was_made_with_and_is_frozen():
    x = make_input("x", (2,))
    span = Span("<test>", 1, 2, 1, 5)
    node = intern("thing", (x, x), (("a", 1), ("b", (2, 3))), (2,), span, 7.5, ("v", 1), "d")
    assert (node.op, node.inputs, node.attrs, node.shape, node.span, node.value, node.origin) == \
        ("thing", (x, x), (("a", 1), ("b", (2, 3))), (2,), span, 7.5, "d")
    assert node.attr("b") == (2, 3) and node.attr("c", 0) == 0
    other = intern("thing", (x, x), (("a", 1), ("b", (2, 3))), (2,), None, 0.0, ("v", 1))
    assert other is node and other.span == span and other.origin == "d"   # the first wins
    made = Node("thing", (x,), (), (2,))                  # made directly: the defaults
    assert (made.span, made.value, made.origin) == (None, None, "f")
    for name in ("op", "inputs", "value", "origin"):
        with pytest.raises(AttributeError):
            setattr(node, name, None)
        with pytest.raises(AttributeError):
            setattr(made, name, None)


def test_the_table_keeps_no_node_alive_and_a_dead_key_can_be_reused():
    x = make_input("x", ())
    before = len(graph._TABLE)
    a = intern("tanh", (x,), (("tag", "weak"),), ())
    b = intern("neg", (a,), (), ())
    assert len(graph._TABLE) == before + 2
    dead_a, dead_b = weakref.ref(a), weakref.ref(b)
    del a, b                             # b holds a: both die, with no collection
    assert dead_a() is None and dead_b() is None
    assert len(graph._TABLE) == before
    # the same key again: a new node, interned as the first was
    c = intern("tanh", (x,), (("tag", "weak"),), ())
    assert intern("tanh", (x,), (("tag", "weak"),), ()) is c
    assert len(graph._TABLE) == before + 1
    del c
    assert len(graph._TABLE) == before


def test_a_dead_nodes_callback_never_removes_its_successor():
    """A node dies, the same key is interned anew, and then the first node's callback
    runs late (as the collector may run it): the live successor stays in the table."""
    x = make_input("x", ())
    key_attrs = (("tag", "late"),)
    a = intern("tanh", (x,), key_attrs, ())
    ref = next(r for r in list(graph._TABLE.values()) if r() is a)
    del a
    b = intern("tanh", (x,), key_attrs, ())
    graph._TABLE._remove(ref)             # the late callback of the dead one
    assert intern("tanh", (x,), key_attrs, ()) is b


def test_the_tables_callback_can_be_replaced(monkeypatch):
    """The callback a dead node's entry runs is the table's `_remove`, looked up as a
    node is made (tests/test_robustness.py raises a SIGINT from inside it)."""
    table = graph._TABLE
    original = table._remove
    seen = []

    def remove(wr, *args):
        seen.append(wr)
        return original(wr, *args)
    monkeypatch.setattr(table, "_remove", remove)
    x = make_input("x", ())
    node = intern("tanh", (x,), (("tag", "callback"),), ())
    n = len(table)
    del node
    assert len(seen) == 1 and len(table) == n - 1


def test_a_dropped_graph_leaves_no_node_behind():
    gc.collect()
    before = sum(1 for o in gc.get_objects() if type(o) is Node)
    entries = len(graph._TABLE)
    nodes = random_dag(random.Random(7), 2000)
    assert sum(1 for o in gc.get_objects() if type(o) is Node) - before >= 2000
    del nodes
    gc.collect()
    assert sum(1 for o in gc.get_objects() if type(o) is Node) - before == 0
    assert len(graph._TABLE) == entries


# ── Plan ───────────────────────────────────────────────────────────────────

def plan_of(src: str, *args):
    bp = dsl.Interpreter()
    bp.exec(src)
    result = bp.function("f")(*args)
    (plan, *_), = bp._plans.values()
    return bp, plan, result


def independent_frees(plan) -> list[set]:
    """For each step, the slots it reads for the last time, outputs excepted."""
    last = {}
    for k, step in enumerate(plan.steps):
        for s in step[1]:
            last[s] = k
    frees = [set() for _ in plan.steps]
    for s, k in last.items():
        if s not in plan.out_slots:
            frees[k].add(s)
    return frees


def test_a_plans_steps_read_what_their_nodes_read_and_free_each_slot_once():
    src = "def f(x, y) { a = tanh(x) * y; b = a * a + sin(y); return (b, a - x) }"
    x, y = np.array([0.3, -1.2]), np.array([2.0, 0.5])
    bp, plan, (b, d) = plan_of(src, x, y)
    a = np.tanh(x) * y
    assert np.allclose(b, a * a + np.sin(y)) and np.allclose(d, a - x)
    slot_of = {0: "x", 1: "y"}
    made = {}
    for kernel, ins, out, free, node in plan.steps:
        assert out not in made and out >= plan.n_inputs
        made[out] = node
        for s, i in zip(ins, node.inputs):         # each operand is the slot of its node
            assert made.get(s, i) is i or (s < plan.n_inputs and i.op == "input")
    assert [set(step[3]) for step in plan.steps] == independent_frees(plan)
    assert all(len(set(step[3])) == len(step[3]) for step in plan.steps)
    assert not any(s in plan.out_slots for step in plan.steps for s in step[3])
    # the order given or found: the same plan
    outs = [made[s] for s in plan.out_slots]
    again = evaluate.Plan(bp_inputs(plan), outs, topo_order(outs))
    assert [s[1:4] for s in again.steps] == [s[1:4] for s in plan.steps]
    assert [s[4] for s in again.steps] == [s[4] for s in plan.steps]


def bp_inputs(plan) -> list[Node]:
    nodes = {id(i): i for step in plan.steps for i in step[4].inputs}
    ins = [n for n in nodes.values() if n.op == "input"]
    return sorted(ins, key=lambda n: n.attr("name"))


def test_steps_of_one_op_share_its_kernel_and_ops_with_attributes_keep_theirs():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    _, plan, (s0, s1, t) = plan_of("def f(x) = (sum(x, axis=0), sum(x * x, axis=1), tanh(tanh(x)))", x)
    assert s0.tolist() == [4.0, 6.0] and s1.tolist() == [5.0, 25.0]
    assert np.allclose(t, np.tanh(np.tanh(x)))
    tanhs = [step[0] for step in plan.steps if step[4].op == "tanh"]
    assert len(tanhs) == 2 and tanhs[0] is tanhs[1] is REGISTRY["tanh"].kernel
    sums = [step[0] for step in plan.steps if step[4].op == "sum"]
    assert len(sums) == 2 and sums[0] is not sums[1]


def test_outputs_that_are_inputs_or_views_are_copied():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    _, plan, (a, b, c) = plan_of("def f(x) = (x, reshape(x, [2, 2]), x * 2)", x)
    assert a.tolist() == [1.0, 2.0, 3.0, 4.0] and b.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert c.tolist() == [2.0, 4.0, 6.0, 8.0]
    assert plan.copy_out == [True, True, False]
    assert not np.shares_memory(a, x) and not np.shares_memory(b, x)


@pytest.mark.parametrize("engine", ["plain", "scalar"])
def test_the_step_loop_with_steps_of_one_two_and_three_operands(engine, monkeypatch):
    monkeypatch.setattr(evaluate, "ENGINE", engine)
    # where(c, a, b) reads three; stack of four scalars reads four
    src = "def f(x, y) = (where(x > y, x * y, x - y), stack([x, y, -x, 2 * y]), exp(x))"
    for _ in range(3):                   # the loop, then (scalar) generated code
        _, plan, (w, s, e) = plan_of(src, 3.0, 2.0)
        assert float(w) == 6.0 and s.tolist() == [3.0, 2.0, -3.0, 4.0]
        assert float(e) == pytest.approx(20.085536923187668, rel=1e-15)
    loop = plan.run_loop([np.asarray(1.0), np.asarray(5.0)])
    assert float(loop[0]) == -4.0 and loop[1].tolist() == [1.0, 5.0, -1.0, 10.0]
    assert {len(step[1]) for step in plan.steps} >= {1, 2, 3}


def test_the_step_loop_stops_at_an_interrupt_and_finds_nan_by_node():
    _, plan, _ = plan_of("def f(x) = log(x - 1) * 2", 3.0)
    flag = threading.Event()
    flag.set()
    with pytest.raises(BpInterrupted):
        plan.run_loop([np.asarray(3.0)], False, flag)
    assert not flag.is_set()             # the interrupt is taken
    assert float(plan.run_loop([np.asarray(3.0)], False, flag)[0]) == pytest.approx(2 * np.log(2.0))
    with pytest.raises(BpValueError, match="log gave"):
        plan.run_loop([np.asarray(0.5)], True, None)
    assert np.isnan(plan.run_loop([np.asarray(0.5)], False, None)[0])


def test_a_plan_reading_an_input_it_was_not_given_is_refused():
    x, y = make_input("x", ()), make_input("y", ())
    out = intern("add", (x, y), (), ())
    with pytest.raises(BpValueError, match="not given"):
        evaluate.Plan([x], [out])
    plan = evaluate.Plan([x, y], [out])
    assert float(plan.run_loop([np.asarray(1.5), np.asarray(2.0)])[0]) == 3.5


def test_a_long_chains_gradient_plan(monkeypatch):
    """d/dx of tanh applied 2,000 times, at 0.5: the product of 1 - t_k² along the
    chain, computed here in Python; by the step loop and by generated code."""
    import math
    n = 2000
    t, want = 0.5, 1.0
    for _ in range(n):
        t = math.tanh(t)
        want *= 1.0 - t * t
    body = "\n".join(["    t1 = tanh(x)"] + [f"    t{i + 1} = tanh(t{i})" for i in range(1, n)])
    bp = dsl.Interpreter()
    bp.exec("def f(x) {\n" + body + f"\n    return t{n}\n}}\n")
    g = bp.function("grad(f)")
    for _ in range(3):
        assert float(g(0.5)) == pytest.approx(want, rel=1e-10)
