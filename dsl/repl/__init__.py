"""The interactive REPL of `bp` (SPEC §10): a prompt_toolkit shell over one
Interpreter, with output through rich.  One concern per module: app (the
loop), commands (the `:` commands), completer, keys, lexer (the Pygments
plugin), style, display (rich output), help, history, script (`:save`),
introspect (what the REPL reads off the engine).

Importing this package imports none of them: `bp -c` and `bp FILE` never
load prompt_toolkit or rich.
"""
