"""Fixtures of the gateway's end-to-end tests. A module that needs other settings defines its own ``gw``."""

from __future__ import annotations

import io
import logging

import pytest

from gateway.logs import JsonFormatter
from gateway.testing.harness import Harness


@pytest.fixture
async def gw(tmp_path):
    """The gateway with its default test config, in front of the BR and US stub upstreams."""
    async with Harness(tmp_path) as h:
        yield h


@pytest.fixture
def logs():
    """Every log line, as the gateway writes it in production (gateway.logs.JsonFormatter)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buf
    root.removeHandler(handler)
    root.setLevel(old)
