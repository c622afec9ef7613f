"""Run the forwarding tests on both event loops: asyncio's (the default) and uvloop (what `soberana
serve` installs), since their transports differ in how they report EOF, resets and flow control.
Conftest hooks are path-scoped, so this applies to tests/forward only."""

import asyncio

import uvloop


def pytest_asyncio_loop_factories(config, item):
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
