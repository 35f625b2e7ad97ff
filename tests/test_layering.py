"""Import direction (STYLE.md B1, DESIGN.md "Layout and who may import whom").

Every dsl module is parsed with `ast`; each import of another dsl module,
at the top or inside a function (a local import is still a dependency,
and the usual way a cycle hides), must be one that `ALLOWED` grants its
layer.  Third-party libraries that belong to one layer (lark, rich,
prompt_toolkit) stay there, NumPy stays out of the syntax layers, and
nothing below the interpreter talks to the terminal.  A new module fails
`test_layering_every_module_has_a_rule` until it is given a row here.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

DSL = Path(__file__).resolve().parent.parent / "dsl"

# A layer is a top-level module of dsl (dsl/x.py → "x"), a subpackage
# (dsl/ops/*.py → "ops", dsl/repl/*.py → "repl"), or the package itself
# (dsl/__init__.py → "dsl").  A layer may always import itself.
PASSES = {"graph", "ops", "shapes", "errors", "values", "struct"}
ALLOWED: dict[str, set[str]] = {
    "struct": set(),
    "errors": {"struct"},
    "ast": {"errors", "struct"},
    "_grammar_tables": set(),                             # generated data
    "lalr": set(),                                        # generates _grammar_tables with lark
    "parser": {"ast", "errors", "_grammar_tables"},
    "graph": {"errors", "struct"},
    "shapes": {"errors"},
    "ops": {"graph", "shapes", "errors", "struct"},
    "values": {"ast", "errors", "struct"},
    "autodiff": PASSES | {"batching", "linear", "taylor", "reroll"},
    "reroll": PASSES | {"batching"},                      # long sums of like terms, in plans
    "taylor": PASSES,                                     # Taylor mode: series through a graph
    "batching": PASSES,
    "linear": PASSES,                                     # matrix-calculus forms of Jacobians
    "plot": {"errors"},
    "ipython": {"interpreter", "errors", "values", "render", "dsl"},
    "simplify": PASSES,
    "codegen": PASSES,
    "jax_engine": {"codegen", "evaluate", "graph", "errors", "ops", "autodiff"},  # plans as jitted JAX (issue 18)
    "evaluate": {"graph", "ops", "errors"},
    "loops": PASSES | {"autodiff", "evaluate", "batching", "loop_map"},               # structured loops: body graphs
    "loop_map": PASSES | {"autodiff", "evaluate", "batching"},            # loops run at once
    "render": {"ast", "values", "graph", "ops", "shapes", "errors"},
    "latex": {"ast", "values", "graph", "ops", "shapes", "errors", "render"},   # LaTeX math
    "lower": {"ast", "graph", "ops", "shapes", "values", "errors", "autodiff", "lower_loops"},
    "lower_loops": {"ast", "graph", "ops", "values", "errors", "loops"},     # loops in bodies
    "interpreter": {"errors", "ast", "parser", "graph", "shapes", "ops", "values", "autodiff",
                    "simplify", "codegen", "evaluate", "render", "latex", "lower", "plot",
                    "jax_engine"},
    "cli": {"interpreter", "errors", "dsl", "repl"},
    # The REPL drives an Interpreter; only repl/introspect.py reads the registry and values.
    "repl": {"interpreter", "errors", "dsl", "ast", "ops", "values", "autodiff", "lower", "parser"},
    "dsl": {"errors", "interpreter", "ipython"},          # the package re-exports the public API
    "__main__": {"cli"},
}

# Third-party packages that only some layers may import.
CONFINED = {"lark": {"lalr"}, "rich": {"cli", "repl"}, "prompt_toolkit": {"repl"},
            "IPython": {"ipython"},
            "pygments": {"repl"}}
NUMPY_FREE = {"struct", "errors", "ast", "parser", "_grammar_tables", "lalr", "graph"}
# Layers that may talk to the terminal (print, input, sys.exit, sys.stdout…).
TERMINAL = {"interpreter", "cli", "repl", "__main__", "ipython", "lalr"}

# Known violations, reported to the owner: each fails until it is fixed,
# and then its strict xfail turns into a failure that asks for this entry
# to be removed.
KNOWN_VIOLATIONS: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(p for p in DSL.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> list[str]:
    """dsl/ops/sym.py → ["dsl", "ops", "sym"]; dsl/ops/__init__.py → ["dsl", "ops"]."""
    parts = ["dsl", *path.relative_to(DSL).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def layer_of(dotted: list[str]) -> str:
    return dotted[1] if len(dotted) > 1 else "dsl"


def is_dsl_module(dotted: list[str]) -> bool:
    base = DSL.joinpath(*dotted[1:])
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports(path: Path, source: str | None = None) -> tuple[set[str], set[str]]:
    """The dsl layers and the third-party top-level packages that the module
    at `path` imports (`source` stands in for the file's text)."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me[:-1]
    layers: set[str] = set()
    external: set[str] = set()

    def add_dsl(dotted: list[str], names=()) -> None:
        targets = [dotted + [n] for n in names if is_dsl_module(dotted + [n])]
        if len(targets) < len(names) or not names:
            targets.append(dotted)          # a name defined in the package itself
        layers.update(layer_of(t) for t in targets)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                dotted = alias.name.split(".")
                if dotted[0] == "dsl":
                    add_dsl(dotted)
                else:
                    external.add(dotted[0])
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                dotted = base + (node.module.split(".") if node.module else [])
                add_dsl(dotted, names)
            elif node.module.split(".")[0] == "dsl":
                add_dsl(node.module.split("."), names)
            elif node.module != "__future__":
                external.add(node.module.split(".")[0])
    return layers, external


def _param(path: Path):
    rel = str(path.relative_to(DSL.parent))
    marks = ([pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[rel])]
             if rel in KNOWN_VIOLATIONS else [])
    return pytest.param(path, id=rel, marks=marks)


MODULES = [_param(p) for p in modules()]


def test_layering_finds_the_modules():
    names = {str(p.relative_to(DSL.parent)) for p in modules()}
    assert {"dsl/errors.py", "dsl/parser.py", "dsl/ops/__init__.py", "dsl/interpreter.py"} <= names


def test_layering_every_module_has_a_rule():
    unknown = sorted({layer_of(module_name(p)) for p in modules()} - set(ALLOWED))
    assert not unknown, f"dsl layers with no row in ALLOWED (tests/test_layering.py): {unknown}"


@pytest.mark.parametrize("path", MODULES)
def test_layering_module_imports_only_lower_layers(path):
    layer = layer_of(module_name(path))
    used, _ = imports(path)
    bad = sorted(used - ALLOWED.get(layer, set()) - {layer})
    assert not bad, f"{path.relative_to(DSL.parent)} ({layer}) imports {bad}; " \
                    f"allowed: {sorted(ALLOWED.get(layer, set()))}"


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(DSL.parent)))
                                  for p in modules()])
def test_layering_third_party_stays_in_its_layer(path):
    layer = layer_of(module_name(path))
    _, external = imports(path)
    for package, owners in CONFINED.items():
        assert package not in external or layer in owners, \
            f"{path.relative_to(DSL.parent)} imports {package}, which only {sorted(owners)} may"
    assert "numpy" not in external or layer not in NUMPY_FREE, \
        f"{path.relative_to(DSL.parent)} imports numpy; {sorted(NUMPY_FREE)} stay NumPy-free"


def _terminal_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("print", "input", "exit", "quit", "breakpoint"):
            found.append(f"{node.func.id}() at line {node.lineno}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "sys" and node.attr in ("exit", "stdout", "stderr", "stdin"):
            found.append(f"sys.{node.attr} at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(DSL.parent)))
                                  for p in modules() if layer_of(module_name(p)) not in TERMINAL])
def test_layering_no_terminal_io_below_the_interpreter(path):
    assert not _terminal_uses(path), f"{path.relative_to(DSL.parent)}: {_terminal_uses(path)}"


def test_layering_interpreter_never_exits():
    uses = [u for u in _terminal_uses(DSL / "interpreter.py") if "exit" in u or "input" in u]
    assert not uses, uses


# ── the checker itself, on small sources ─────────────────────────────────

def _imports_of(rel: str, source: str) -> set[str]:
    return imports(DSL / rel, source)[0]


def test_layering_checker_resolves_relative_imports():
    src = ("from . import ast, ops\nfrom .errors import Span\nfrom .graph import Node\n"
           "def f():\n    from .lower import leaves\n")
    assert _imports_of("render.py", src) == {"ast", "ops", "errors", "graph", "lower"}


def test_layering_checker_resolves_subpackage_imports():
    src = "from .. import shapes\nfrom ..errors import E\nfrom . import apply\nfrom .sym import mul\n"
    assert _imports_of("ops/nn.py", src) == {"shapes", "errors", "ops"}


def test_layering_checker_sees_the_package_and_absolute_imports():
    src = "from . import __version__\nimport dsl.interpreter\nfrom dsl.errors import BpError\n"
    assert _imports_of("cli.py", src) == {"dsl", "interpreter", "errors"}
