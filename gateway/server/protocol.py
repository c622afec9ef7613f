"""The HTTP connection handler with a header deadline.

aiohttp bounds idle keep-alive connections but not a client that trickles its request headers one
byte at a time (slowloris). ``GuardedHandler`` starts a deadline when a connection opens or when the
first byte of a new request arrives, and closes the connection if the headers are not complete in
time. Body reads have their own idle deadline (gateway.server.body).
"""

from __future__ import annotations

import asyncio

from aiohttp.web_protocol import RequestHandler


class GuardedHandler(RequestHandler):
    """aiohttp's RequestHandler plus a deadline on reading the request line and headers."""

    __slots__ = ("_header_timeout", "_header_deadline")

    def __init__(self, *args, header_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self._loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._disarm()  # a whole request head arrived
        elif not self._request_in_progress and not self._messages:
            self._arm()  # no request is being served, so these bytes are part of a new head

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)
