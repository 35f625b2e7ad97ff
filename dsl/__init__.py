"""bp: a small language for models and their symbolic derivatives.

    import dsl
    bp = dsl.Interpreter()
    bp.exec("def f(x) = x^2 * sin(x)")
    bp.eval("f(2.0)")
"""
from .errors import (BpAssertionError, BpError, BpImportError, BpInterrupted, BpIOError,
                     BpNameError, BpShapeError, BpSyntaxError, BpTypeError, BpValueError)
from .interpreter import Interpreter, run_file

__version__ = "0.1.0"


def load_ipython_extension(shell) -> None:
    """`%load_ext dsl` in IPython: the %%bp cell magic (see dsl/ipython.py)."""
    from .ipython import load_ipython_extension as load
    load(shell)
__all__ = ["Interpreter", "run_file", "BpError", "BpSyntaxError", "BpNameError", "BpTypeError",
           "BpShapeError", "BpValueError", "BpImportError", "BpIOError", "BpAssertionError",
           "BpInterrupted",
           "__version__"]
