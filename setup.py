"""Builds the Cython inspection core and audit record encoder unless SOBERANA_NO_EXTENSIONS=1 (then the package is pure Python)."""
import os

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

setup(ext_modules=ext_modules)
