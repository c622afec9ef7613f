"""Find sensitive data in text (SPEC sections 3 and 6).

Imports the compiled core when it is built and the pure-Python twin otherwise;
``SOBERANA_NO_EXTENSIONS=1`` forces the twin. Both are the same function: the twin is the reference.
"""

from __future__ import annotations

import os

from gateway.inspect.findings import Finding

IMPLEMENTATION: str
if os.environ.get("SOBERANA_NO_EXTENSIONS") == "1":
    from gateway.inspect._scan_py import scan, scan_decoded
    IMPLEMENTATION = "python"
else:
    try:
        from gateway.inspect._scan_c import scan, scan_decoded  # type: ignore[no-redef]
        IMPLEMENTATION = "cython"
    except ImportError:
        from gateway.inspect._scan_py import scan, scan_decoded
        IMPLEMENTATION = "python"

__all__ = ["Finding", "IMPLEMENTATION", "scan", "scan_decoded"]
