"""Utilities every layer may use (the lowest layer): one-line user errors, project paths, the parameter schema, atomic
writes, file locks, provenance stamps, memory-bounded chunking, the Jupyter kernel manager. Imports nothing else
from advmri.
"""

__all__ = ["atomic", "errors", "kernels", "locks", "paths", "perf", "provenance", "schema"]
