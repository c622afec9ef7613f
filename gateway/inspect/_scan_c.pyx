# cython: language_level=3
"""Compiled inspection core (placeholder: delegates until the Cython core lands)."""

from gateway.inspect._scan_py import scan as _ref


def scan(str text):
    return _ref(text)
