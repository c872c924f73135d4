"""Child processes that run llama.cpp (chat, bench, quantize): both sides of their pipe.

`process` is the parent side (start, read events, stop), `channel` the child side (protocol
fd, log redirection, parent-death handling), `wire` the line framing both share and `logs` the
log file they write and the lines worth showing from it.
"""
