"""Fixtures of the gateway's end-to-end tests. A module that needs other settings defines its own ``gw``."""

from __future__ import annotations

import pytest

from gateway.testing.harness import Harness


@pytest.fixture
async def gw(tmp_path):
    """The gateway with its default test config, in front of the BR and US stub upstreams."""
    async with Harness(tmp_path) as h:
        yield h
