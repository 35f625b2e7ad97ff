"""The `bp` command line (SPEC §9): run a file, `-c` source, or the REPL.

`main(argv)` returns the exit status (0, 1 after a bp error, 2 for a usage
mistake) and never calls sys.exit itself; tests call it in-process.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager

from . import __version__
from .errors import BpError, BpIOError
from .interpreter import Interpreter


LIMITS = {"max_elements": 10**8, "max_nodes": 5_000_000, "max_unroll": 1_000_000,
          "max_depth": 1000, "max_iterations": 1_000_000}      # the defaults of Interpreter(...) (dsl.ops.Limits)


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(message)


def _arguments() -> _Parser:
    p = _Parser(prog="bp", description="bp: a small language for models and their symbolic derivatives")
    p.add_argument("file", nargs="?", help="a .bp script to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.add_argument("-c", dest="source", metavar="SOURCE", help="run SOURCE and print its expressions")
    p.add_argument("--precision", type=int, default=8, metavar="N", help="significant digits printed")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the session's random numbers")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--check-nan", action="store_true",
                   help="stop at the first nan or inf made from finite inputs, and say where")
    p.add_argument("--engine", choices=("numpy", "jax"), default="numpy",
                   help="what runs compiled functions: numpy (default) or jax (jit, GPUs)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="with --engine jax: shard data-parallel over N devices")
    for name, default in LIMITS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=default, metavar="N",
                       help=f"limit (default {default:,})")
    p.add_argument("--version", action="version", version=f"bp {__version__}")
    return p


def main(argv: list[str] | None = None, stdout=None, stderr=None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        opts = _arguments().parse_args(argv)
    except _Usage as err:
        stderr.write(f"bp: {err}\nusage: bp [FILE.bp | -c SOURCE] [--precision N] [--seed N] [--quiet]\n")
        return 2
    except SystemExit as exit_:        # --help and --version print and stop
        return int(exit_.code or 0)
    if opts.precision < 1 or opts.precision > 17:
        stderr.write("bp: --precision takes a number from 1 to 17\n")
        return 2
    limits = {name: getattr(opts, name) for name in LIMITS}
    if opts.devices is not None and opts.engine != "jax":
        stderr.write("bp: --devices shards over JAX devices: it needs --engine jax\n")
        return 2
    try:
        interp = Interpreter(stdout=stdout, precision=opts.precision, seed=opts.seed,
                             check_nan=opts.check_nan, engine=opts.engine, devices=opts.devices,
                             **limits)
    except BpError as err:             # --engine jax without JAX installed, too few devices
        _report(err, stderr)
        return 1
    if not opts.quiet and getattr(stderr, "isatty", lambda: False)():
        interp.progress = lambda total, label: LoopProgress(total, label, stderr)
    pressed: list[int] = []
    try:
        if opts.source is not None:
            with _ctrl_c_interrupts(interp, pressed):
                interp.exec(opts.source, filename="<string>", echo=True)
        elif opts.file is not None and opts.file != "-":
            with _ctrl_c_interrupts(interp, pressed):
                interp.run_file(opts.file)
        elif opts.file == "-" or sys.stdin is not None and not sys.stdin.isatty():
            text = _read_stdin()                 # `bp -`, or a program piped in
            with _ctrl_c_interrupts(interp, pressed):
                interp.exec(text, filename="<stdin>", echo=True)
        else:
            return _repl(interp, quiet=opts.quiet)
    except BpError as err:
        stdout.flush()
        if err.kind == "interrupted":
            stderr.write("bp: interrupted\n")
            return 130
        _report(err, stderr)
        return 1
    except KeyboardInterrupt:
        pressed.append(1)
    if pressed:                       # seen by no check before the script ended: still a stop
        stdout.flush()
        stderr.write("bp: interrupted\n")
        return 130
    return 0


def _read_stdin() -> str:
    """The program on standard input, read as UTF-8 whatever the locale says (as a
    file is), a byte-order mark dropped."""
    if sys.stdin is None:
        raise BpIOError("cannot read the program: there is no standard input")
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is None:
            return sys.stdin.read().removeprefix("\ufeff")
        return stream.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BpIOError("cannot read the program from standard input: it is not UTF-8 text") from None


@contextmanager
def _ctrl_c_interrupts(interp: Interpreter, pressed: list):
    """While a script runs, Ctrl-C asks the interpreter to stop (the flag that
    every statement, loop step, graph node and plan step checks) rather than
    raising KeyboardInterrupt wherever Python happens to be: one raised inside
    a weakref callback (the intern table frees nodes all the time) would be
    printed and ignored.  A second Ctrl-C raises KeyboardInterrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ctrl_c(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)
        interp.interrupt()
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(err: BpError, stderr) -> None:
    """SPEC §8: `file:line:col: kind: message`, the line, a caret; coloured on a terminal."""
    if getattr(stderr, "isatty", lambda: False)():
        from rich.console import Console
        from rich.text import Text
        text = Text(str(err))
        header = err.header()
        text.stylize("bold red", 0, len(header))
        if err.source_line is not None:
            text.stylize("bold magenta", len(str(err)) - len(str(err).split("\n")[-1]), len(str(err)))
        Console(file=stderr, highlight=False, soft_wrap=True).print(text)
    else:
        stderr.write(str(err) + "\n")


def _repl(interp: Interpreter, quiet: bool) -> int:
    """The REPL (dsl/repl), imported only here: `bp -c` and `bp FILE` stay free of
    prompt_toolkit and rich."""
    from .repl.app import run_repl
    return run_repl(interp, progress=not quiet)


class LoopProgress:
    """A transient rich progress bar for a top-level loop, shown only once the
    loop has run for half a second (short loops never flicker)."""

    DELAY = 0.5

    def __init__(self, total: int, label: str, stream):
        import time
        self._clock = time.monotonic
        self._start = self._clock()
        self.total, self.label, self.stream = total, label, stream
        self.done = 0
        self._bar = None

    def advance(self) -> None:
        self.done += 1
        if self._bar is None and self._clock() - self._start > self.DELAY and self.done < self.total:
            from rich.console import Console
            from rich.progress import Progress
            self._bar = Progress(console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
        elif self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def main_entry() -> None:
    if not sys.stdout.isatty():
        # `bp train.bp | tee log`: each printed line shows as it is printed, as on a terminal
        sys.stdout.reconfigure(line_buffering=True)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:                 # `bp script.bp | head`: stop quietly
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except OSError as err:                  # what was printed could not be written (a full disk)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.stderr.write(f"io error: cannot write the output: {err.strerror or err}\n")
        code = 1
    sys.exit(code)
