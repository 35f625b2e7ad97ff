"""Expression swell: node counts of repeated derivatives (issue: differentiation, point 4).

    python benchmarks/swell.py

Counts the operation nodes (inputs and constants excluded) of the graphs of
diff(tanh, n) and diff(x -> sin(x)*exp(-x^2/2), n) for n = 1…12, and of the
20th derivative of sin; beside them, when SymPy is installed, SymPy's
count_ops of the same derivatives, unsimplified and after cse.  Checks the
bar: the 8th derivative of tanh in at most 60 nodes, growth at most
quadratic in n.  Deterministic: no timing.
"""
from __future__ import annotations

import sys

import dsl

FUNCTIONS = {"tanh": ("tanh", "tanh(x)"),
             "sin(x)*exp(-x^2/2)": ("x -> sin(x)*exp(-x^2/2)", "sin(x)*exp(-x**2/2)")}


def nodes(bp: dsl.Interpreter, src: str) -> int:
    return sum(1 for n in bp.graph(src).nodes if n.op not in ("input", "const"))


def sympy_counts(expr: str, n: int):
    try:
        import sympy
    except ImportError:
        return None
    x = sympy.Symbol("x")
    d = sympy.diff(sympy.sympify(expr, locals={"x": x}), x, n)
    replacements, reduced = sympy.cse(d)
    after = sum(sympy.count_ops(e) for _, e in replacements) + sympy.count_ops(reduced[0])
    return sympy.count_ops(d), after


def main() -> int:
    bp = dsl.Interpreter()
    ok = True
    for label, (bp_fn, sympy_expr) in FUNCTIONS.items():
        print(f"\ndiff({label}, n): bp nodes" + ("   sympy ops (raw, cse)" if sympy_counts("x", 1) else
                                                  "   (SymPy not installed: pip install sympy)"))
        counts = []
        for n in range(1, 13):
            c = nodes(bp, f"diff({bp_fn}, {n})")
            counts.append(c)
            sym = sympy_counts(sympy_expr, n)
            print(f"  n={n:2d}  {c:5d}" + (f"   {sym[0]:6d} {sym[1]:6d}" if sym else ""))
        # At most quadratic: c(n) / n^2 must not grow (allow slack for small n).
        ratios = [c / n**2 for n, c in enumerate(counts, 1)]
        quadratic = max(ratios[6:]) <= max(ratios[:6]) * 1.5
        print(f"  growth at most quadratic: {'yes' if quadratic else 'NO'}")
        ok &= quadratic
        if label == "tanh":
            print(f"  8th derivative: {counts[7]} nodes (bar: 60) {'ok' if counts[7] <= 60 else 'OVER'}")
            ok &= counts[7] <= 60
    print(f"\ndiff(sin, 20): {nodes(bp, 'diff(sin, 20)')} nodes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
