"""Builds the Cython inspection core and audit record encoder unless SOBERANA_NO_EXTENSIONS=1 (then the package is pure Python)."""
import os
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("SOBERANA_NO_EXTENSIONS") != "1":
    from Cython.Build import cythonize

    ext_modules = cythonize(
        ["gateway/inspect/_scan_c.pyx", "gateway/audit/_record_c.pyx"],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
        quiet=True,
    )

# The national policies (with their test files) install as <prefix>/share/soberana/policies, where
# gateway.testing.harness.bundled_policies (the demo's, `soberana stub`'s) looks outside a checkout.
data_files = [(str(Path("share/soberana") / folder), sorted(str(p) for p in Path(folder).glob("*") if p.is_file()))
              for folder in ("policies", "policies/regional")]

setup(ext_modules=ext_modules, data_files=data_files)
