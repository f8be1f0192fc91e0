"""Runtime stage (``edgekit.runtime``): run variants in their runtimes, check them, report.

Backends (LiteRT, Core ML on macOS, and edgekit's own ML Program reference
interpreter in ``mil/``) execute a variant on a batch; the checker compares
every variant with the original model and writes ``<run>/check/``; the
report stage turns that into ``<run>/report/``.
"""
