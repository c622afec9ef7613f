"""Run the forwarding tests on both event loops: asyncio's (the default) and uvloop (what `soberana
serve` installs), since their transports differ in how they report EOF, resets and flow control."""

import asyncio

import pytest
import uvloop


def pytest_asyncio_loop_factories(config, item):
    if "tests/forward/" not in str(item.path).replace("\\", "/"):
        return None
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
