"""Reading a request body under the configured limits."""

from __future__ import annotations

import asyncio

from aiohttp import web


class BodyTooLarge(Exception):
    """The body exceeds ``limits.max_body_bytes`` (413)."""


class BodyTimeout(Exception):
    """The client stopped sending the body for longer than ``limits.body_timeout_s`` (408)."""


async def read_body(request: web.Request, max_bytes: int, idle_timeout: float) -> bytes:
    """The whole body, counted while it streams in; no single read may wait longer than ``idle_timeout``."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge
    content = request.content
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = content.read_nowait(-1)  # what is already buffered: the common case, no timer needed
        if not chunk:
            if content.is_eof():
                break
            try:
                async with asyncio.timeout(idle_timeout):
                    chunk = await content.readany()
            except TimeoutError:
                raise BodyTimeout from None
            if not chunk:
                break
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
