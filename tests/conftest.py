"""Shared fixtures. Every test that runs inspection runs against both implementations."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(params=["py", "c"])
def scan_impl(request):
    """`scan` of the pure-Python twin (id `py`) and of the compiled core (id `c`)."""
    if request.param == "py":
        return importlib.import_module("gateway.inspect._scan_py").scan
    return importlib.import_module("gateway.inspect._scan_c").scan
