"""bp as a GradBench tool: `python -m benchmarks.gradbench` speaks the protocol.

The eval's messages arrive one JSON object a line on stdin; each gets one
response line on stdout (flushed).  Every module is a `.bp` file in this
directory that defines the eval's functions in bp, with derivatives taken by
bp's transforms; `tool.py` only converts JSON to arrays, times the calls and
answers.  See docs/gradbench.md.
"""
