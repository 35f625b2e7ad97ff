"""`:help [topic]`: the language, differentiation, the commands, the keys,
and one page per builtin and transform.

A builtin's page is made from its registry entry (signature, doc), with
its derivative and an example computed by a scratch Interpreter, so
they cannot drift from what the engine does.  The prose of the
transforms (which have no registry entry) is kept here; a test checks
that it names exactly the engine's transforms.
"""
from __future__ import annotations

from rich.console import Group
from rich.text import Text

from . import display, introspect

LANGUAGE = """\
x = [1, 2.5]                  bind a name (tensors are float64 arrays; 2.5 is a scalar)
def f(x) = x^2 * sin(x)       a function; block form: def f(x) { h = tanh(x); return h }
g = x -> tanh(x)              a lambda; (x, y) -> x*y takes two
θ = {W: eye(2), b: [0, 0]}    a record; θ.W reads a field, θ - 0.1*g updates every field
a, b = (1, [2, 3])            destructure a tuple
print f(2), grad(f)           print values; a function prints as its simplified formula
for i in range(10) { … }      a top-level loop (break leaves it)
if x > 0 { … } else { … }     a top-level conditional on a scalar
import "lib.bp"               run a file into the session, once
graph grad(f)                 the computation graph; `export f to "f.py"` writes NumPy
latex grad(f)                 the formula as LaTeX math (:latex grad(f) in the REPL)
Operators, loosest first: ->  if-then-else  or  and  not  < <= > >= == !=  + -  * / @
unary -  ^ (right-assoc)  f(x) x[i] x' r.name.  An expression alone prints its value."""

DIFFERENTIATION = """\
A derivative is built symbol-to-symbol: new graph nodes made of the same operations,
so it prints as a formula, shows as a graph, and can be differentiated again.
Every transform takes a function and returns one: grad(grad(f)), jacobian(grad(f)).
Kinks: relu'(0) = abs'(0) = 0; ties share the gradient; comparisons have derivative 0."""

# name → (signature, meaning, example evaluated live)
TRANSFORMS = {
    "grad": ("grad(f, wrt=…)", "gradient of a scalar f (first parameter unless wrt=)",
             "grad(x -> x^2 * sin(x))"),
    "value_and_grad": ("value_and_grad(f, wrt=…)", "(f(…), grad(f)(…)) from one graph",
                       "value_and_grad(x -> sum(x^2))([1, 2])"),
    "diff": ("diff(f, n=1)", "n-th derivative of an elementwise f", "diff(tanh, 2)"),
    "jacobian": ("jacobian(f, wrt=…)", "output shape is shape(f(x)) + shape(x)",
                 "jacobian(x -> x^2)([1, 2])"),
    "hessian": ("hessian(f, wrt=…)", "jacobian(grad(f)) of a scalar f",
                "hessian(x -> sum(x^3))([1, 2])"),
    "jvp": ("jvp(f)(x, v)", "forward mode: (f(x), J·v)", "jvp(sin)(0, 1)"),
    "vjp": ("vjp(f)(x, u)", "reverse mode: (f(x), uᵀ·J)", "vjp(x -> 2*x)([1, 2], [1, 0])"),
    "hvp": ("hvp(f)(x, v)", "Hessian-vector product of a scalar f, without forming H",
            "hvp(x -> sum(x^3))([1, 2], [1, 0])"),
    "taylor": ("taylor(f, n)(x, v)", "Taylor coefficients 0…n of t -> f(x + t*v) at 0 (k-th "
               "directional derivative / k!)", "taylor(sin, 3)(0, 1)"),
    "gradcheck": ("gradcheck(f, x…)", "largest relative error of grad(f) against "
                  "central differences", "gradcheck(x -> sum(sin(x)), [1, 2])"),
}
# Arguments tried, one family after another, until the builtin accepts them.
_SAMPLES = (("[0.5, 2]", "[1, 1]", "[1, 3]"), ("[[2, 1], [1, 3]]", "[1, 2]", "[1, 2]"),
            ("2", "3", "1"))


def topics() -> list[str]:
    return ["language", "differentiation", "commands", "keys",
            *introspect.transforms(), *introspect.builtins()]


def page(topic: str, interp_factory, commands: dict, keys: list):
    """The rich renderable for `:help topic` ("" for the overview), or None."""
    if not topic:
        return _overview(commands)
    if topic == "language":
        return Group(_title("the language (SPEC §2-§4)"), display.source(LANGUAGE))
    if topic == "differentiation":
        rows = [[s, m] for s, m, _ in TRANSFORMS.values()]
        return Group(_title("differentiation (SPEC §5)"), Text(DIFFERENTIATION),
                     display.table("", ["transform", "meaning"], rows))
    if topic == "commands":
        return display.table("commands", ["command", "what it does"],
                             [[f":{c.name} {c.usage}".rstrip(), c.help] for c in commands.values()])
    if topic == "keys":
        return display.table("keys", ["key", "what it does"], [list(k) for k in keys])
    if topic in TRANSFORMS:
        sig, meaning, example = TRANSFORMS[topic]
        return Group(_title(sig), Text(meaning), _example(interp_factory(), example))
    info = introspect.builtins().get(topic)
    if info is None:
        return None
    parts = [_title(info.signature), Text(info.doc)]
    scratch = interp_factory()
    parts.append(_derivative(scratch, info))
    for family in _SAMPLES:
        args = ", ".join(family[: max(1, len(_tensor_params(info)))])
        shown = _example(scratch, f"{info.name}({args})", quiet=True)
        if shown is not None:
            parts.append(shown)
            break
    return Group(*parts)


def _overview(commands: dict):
    lines = [Text("bp: type a statement and press Enter; an expression prints its value.")]
    lines += [Text.assemble((f":{c.name} {c.usage}".ljust(16), "bold cyan"), c.help)
              for c in commands.values()]
    lines.append(Text("topics: language, differentiation, commands, keys, "
                      "and any builtin or transform (:help grad, :help tanh, :ops)"))
    return Group(*lines)


def _title(text: str) -> Text:
    return Text(text, style="bold")


def _tensor_params(info) -> list[str]:
    inner = info.signature[info.signature.index("(") + 1:-1]
    return [p.strip() for p in inner.split(",") if p.strip() and "=" not in p and "…" not in p]


def _derivative(scratch, info) -> Text:
    if not info.differentiable:
        return Text("derivative: none (no gradient flows through it)")
    params = _tensor_params(info)
    if not params:
        return Text("derivative: built by its graph rules")
    lam = f"({', '.join(params)}) -> sum({info.name}({', '.join(params)}))"
    out = Text("derivative (as grad of its sum):")
    for i, p in enumerate(params):
        try:
            formula = scratch.show(f"grad({lam}, wrt={i})")
        except Exception:
            formula = "grad("
        if formula.startswith("grad("):    # the rule needs concrete shapes to be printed
            return Text("derivative: exact, from its registry rule (printable once shapes are known)")
        out.append(f"\n  ∂/∂{p}  ")
        out.append_text(display.source(formula))
    return out


def _example(scratch, src: str, quiet: bool = False):
    try:
        result = scratch.show(src)
    except Exception:
        return None if quiet else Text(f"example: {src}")
    out = Text("example: ")
    out.append_text(display.source(src))
    out.append("  →  ")
    out.append_text(display.source(result))
    return out
