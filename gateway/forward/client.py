"""The pooled upstream HTTP/1.1 client: keep-alive connections on asyncio protocols, llhttp parsing.

``aiohttp.ClientSession`` costs about 0.6 ms per request on its own — more than the gateway's whole
budget — so the forwarding path uses this small client instead: one ``asyncio.Protocol`` per TCP (or
TLS) connection, ``httptools`` to parse the response, a bounded LIFO pool of idle connections per
upstream, and no per-request objects beyond the request bytes and one ``UpstreamResponse``.

    pool = UpstreamPool("http://10.0.0.5:8000/v1")
    resp = await pool.request("POST", "/chat/completions", [(b"content-type", b"application/json")], body)
    try:
        async for chunk in resp:          # or: data = await resp.read()
            ...
    finally:
        resp.release()                    # reuse the connection when the body was read to the end

Retries: a request is re-sent (once, on a fresh connection) only when it went out on a *reused*
connection that the peer closed before sending a single response byte — the usual race with a server
that closes idle keep-alive connections. Nothing else is retried here: whether to try another
upstream is the router's decision.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
from collections import deque
from urllib.parse import urlsplit

import httptools

__all__ = ["UpstreamError", "UpstreamPool", "UpstreamResponse"]

HIGH_WATER = 256 * 1024
"""Unread response bytes at which the connection stops reading from the socket (backpressure)."""
IDLE_TTL = 30.0
"""An idle connection older than this is not reused: many servers drop keep-alive connections after
5–60 s, and a fresh connection is cheaper than a retried request."""

_HOP = frozenset((b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive", b"te",
                  b"upgrade", b"proxy-connection", b"trailer"))
_BODYLESS_METHODS = frozenset(("GET", "HEAD", "DELETE", "OPTIONS"))

# connection states
_IDLE, _HEAD, _BODY = 0, 1, 2


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer properly.

    ``kind`` is ``"connect"`` (nothing was sent: refused, DNS, TLS, connect timeout, pool exhausted),
    ``"timeout"`` (no byte within the read timeout), ``"protocol"`` (not valid HTTP/1.1) or
    ``"reset"`` (the connection closed or broke before the response was complete). The message names
    the upstream and what happened; it never holds request or response bodies.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind!r}, {str(self)!r})"


class _Retry(Exception):
    """Internal: the reused connection died before any response byte; send again on a fresh one."""


class _Surplus(Exception):
    """Internal: raised in a parser callback to stop parsing bytes that follow a complete response."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection and the response currently arriving on it."""

    __slots__ = ("pool", "loop", "transport", "parser", "state", "closed", "counted", "reused", "got_bytes",
                 "status", "headers", "keep_alive", "complete", "until_eof", "interim", "chunks", "buffered",
                 "paused", "read_all", "write_paused", "waiter", "timer", "last_read", "idle_since", "error", "head_only")

    def __init__(self, pool: "UpstreamPool"):
        self.pool = pool
        self.loop = pool._loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.state = _IDLE
        self.closed = False
        self.counted = False
        self.reused = False
        self.waiter: asyncio.Future | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.write_paused = False
        self.idle_since = 0.0
        self.chunks: deque[bytes] = deque()
        self._reset()

    def _reset(self) -> None:
        self.got_bytes = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.complete = False
        self.until_eof = False
        self.interim = False
        self.head_only = False
        self.chunks.clear()
        self.buffered = 0
        self.paused = False
        self.read_all = False
        self.error: UpstreamError | None = None
        self.last_read = 0.0

    # --- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                # asyncio and uvloop set it already for TCP; say it here because latency depends on it
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass

    def data_received(self, data: bytes) -> None:
        if self.state == _IDLE or self.complete:
            # bytes nobody asked for (or after the response ended): this connection cannot be trusted
            self.keep_alive = False
            self.transport.abort()
            return
        self.got_bytes = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("protocol", f"{self.pool.origin} switched protocols unexpectedly"))
        except httptools.HttpParserCallbackError:  # (only on_message_begin raises: _Surplus)
            # the response is whole and stays readable; the connection that said more is not reused
            self.keep_alive = False
            self.transport.abort()
        except httptools.HttpParserError:
            self._fail(UpstreamError("protocol", f"{self.pool.origin} sent a response that is not valid HTTP/1.1"))

    def eof_received(self) -> bool:
        return False  # close; connection_lost decides what the EOF means

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._disarm()
        if self.state != _IDLE and not self.complete and self.error is None:
            if self.state == _BODY and self.until_eof and exc is None:
                self.complete = True  # a response without length framing ends at EOF
                self.keep_alive = False
            elif self.reused and not self.got_bytes:
                self.error = _Retry()
            else:
                what = "mid-response" if self.got_bytes else "before answering"
                self.error = UpstreamError("reset", f"{self.pool.origin} closed the connection {what}")
        self._wake()
        self.pool._lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    # --- httptools callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            # bytes past the end of the response, in the same read: llhttp would parse them as the next
            # response and overwrite this one's status, headers and body (and, left half-parsed in a
            # pooled connection, fail the next request): stop here
            raise _Surplus()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.interim = True  # 100 Continue / 103 Early Hints: the real response follows
            self.headers = []
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        self.state = _BODY
        self._wake()
        if self.head_only or status == 204 or status == 304:
            return
        for k, v in self.headers:
            if k == b"content-length" or (k == b"transfer-encoding" and b"chunked" in v.lower()):
                return
        self.until_eof = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and not self.read_all:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self._wake()

    # --- used by the pool and the response --------------------------------------------------------
    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def _fail(self, err: UpstreamError) -> None:
        if self.error is None:
            self.error = err
        self.keep_alive = False
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    def _expire(self) -> None:
        """The read-timeout timer, armed once per request: it fails the request only when someone is
        waiting for bytes and none came for ``read_timeout`` (a consumer busy elsewhere is not the
        upstream's fault)."""
        self.timer = None
        if self.state == _IDLE or self.closed:
            return
        timeout = self.pool.read_timeout
        waited = self.loop.time() - self.last_read
        if self.waiter is None or waited < timeout:
            self.timer = self.loop.call_later(timeout - waited if self.waiter is not None else timeout, self._expire)
            return
        self._fail(UpstreamError("timeout", f"{self.pool.origin} sent nothing for {timeout:g} s"))

    def _disarm(self) -> None:
        t = self.timer
        if t is not None:
            self.timer = None
            t.cancel()

    async def wait(self) -> None:
        """Until something happens on this connection (bytes, EOF, drain), at most the read timeout."""
        fut = self.loop.create_future()
        self.waiter = fut
        self.last_read = self.loop.time()  # nothing is buffered when we get here: the per-read clock starts
        try:
            await fut
        except BaseException:
            # cancelled (the caller went away): the response is abandoned, the connection unusable
            self._fail(UpstreamError("reset", "request cancelled"))
            raise
        finally:
            self.waiter = None

    async def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        self._reset()
        self.head_only = head_only
        self.state = _HEAD
        self.last_read = self.loop.time()
        if self.timer is None:
            self.timer = self.loop.call_later(self.pool.read_timeout, self._expire)
        t = self.transport
        if len(body) <= 65536:
            t.write(head + body if body else head)  # one segment for the common small request
        else:
            t.write(head)
            t.write(body)
        while self.write_paused and self.error is None and not self.closed:
            await self.wait()

    async def read_head(self) -> None:
        while self.state == _HEAD:
            if self.error is not None:
                raise self.error
            if self.closed:  # e.g. a connection handed over by the pool that died before we wrote
                if self.reused and not self.got_bytes:
                    raise _Retry()
                raise UpstreamError("reset", f"{self.pool.origin} closed the connection before answering")
            await self.wait()
        if self.head_only:
            # llhttp cannot be told the answer to HEAD has no body: end here and do not reuse
            self.complete = True
            self.keep_alive = False

    def take(self) -> bytes:
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            if not self.closed:
                self.transport.resume_reading()
        return data

    def done(self) -> None:
        """The response is finished with: back to the pool if reusable, else closed."""
        self._disarm()
        if self.complete and self.keep_alive and self.error is None and not self.closed:
            self.state = _IDLE
            self.chunks.clear()
            if self.paused:
                self.paused = False
                self.transport.resume_reading()
            self.pool._release(self)
        else:
            self.keep_alive = False
            self.state = _IDLE  # connection_lost must not report an error nobody will read
            if self.transport is not None and not self.closed:
                self.transport.abort()


class UpstreamResponse:
    """The status and headers of an upstream answer; the body is read with ``read()`` or by async
    iteration (chunks as they arrive, chunked framing removed). Call ``release()`` when done."""

    __slots__ = ("status", "headers", "_conn")

    def __init__(self, conn: _Conn):
        self.status: int = conn.status
        self.headers: list[tuple[bytes, bytes]] = conn.headers
        """Response headers in arrival order, names lower-case."""
        self._conn: _Conn | None = conn

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    async def read(self, limit: int | None = None) -> bytes:
        """The whole (remaining) body. Raises UpstreamError on reset, timeout or bad framing, and
        (kind ``protocol``) when ``limit`` is given and the body grows past it."""
        c = self._conn
        if c is None:
            raise RuntimeError("response already released")
        c.read_all = True  # the caller wants it all in memory: pausing the socket would only stall it
        if c.paused:
            c.paused = False
            c.transport.resume_reading()
        while not c.complete:
            if c.error is not None:
                raise _public(c.error)
            if limit is not None and c.buffered > limit:
                break
            await c.wait()
        if limit is not None and c.buffered > limit:
            c._fail(UpstreamError("protocol", f"{c.pool.origin} answered with more than {limit} bytes"))
            raise c.error
        return c.take() if c.chunks else b""

    def __aiter__(self) -> "UpstreamResponse":
        return self

    async def __anext__(self) -> bytes:
        c = self._conn
        if c is None:
            raise StopAsyncIteration
        while True:
            if c.chunks:
                return c.take()
            if c.complete:
                raise StopAsyncIteration
            if c.error is not None:
                raise _public(c.error)
            await c.wait()

    def release(self) -> None:
        """Give the connection back: to the pool if the body was read to its end, else closed.
        Safe to call more than once."""
        c = self._conn
        if c is not None:
            self._conn = None
            c.done()


def _public(err: Exception) -> UpstreamError:
    if isinstance(err, UpstreamError):
        return err
    return UpstreamError("reset", "the upstream closed the connection before answering")


def _describe(e: BaseException) -> str:
    if isinstance(e, _ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({e.verify_message})"
    if isinstance(e, _ssl.SSLError):
        return f"TLS error ({e.reason or type(e).__name__})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to one upstream origin.

    ``base_url`` is the upstream's base (scheme, host, port and path prefix, e.g.
    ``https://api.openai.com/v1``); request paths are appended to its path. At most
    ``max_connections`` are open at once; a request beyond that waits (up to ``read_timeout``) for one
    to come back. ``connect_timeout`` bounds TCP connect plus TLS handshake; ``read_timeout`` bounds
    each wait for bytes (not the whole response: a long stream is fine while tokens keep coming).
    ``https`` uses ``ssl_context`` or ``ssl.create_default_context()`` (verification and SNI on);
    ``server_name``, when given, is the name the certificate is checked against and the SNI sent,
    instead of the URL's host (the ``Host`` header stays the URL's).
    """

    def __init__(self, base_url: str, *, max_connections: int = 256, connect_timeout: float = 10.0,
                 read_timeout: float = 300.0, ssl_context: _ssl.SSLContext | None = None,
                 server_name: str | None = None):
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"upstream URL must be http:// or https:// with a host: {base_url!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.host = u.hostname
        tls = u.scheme == "https"
        self.port = u.port or (443 if tls else 80)
        self.origin = f"{u.scheme}://{u.netloc}"
        """Scheme, host and port: what error messages and logs name."""
        self.ssl = (ssl_context or _ssl.create_default_context()) if tls else None
        self._server_name = (server_name or self.host) if tls else None
        default_port = self.port == (443 if tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self._prefix = u.path.rstrip("/").encode()
        self._starts: dict[tuple[str, str], bytes] = {}
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()
        self._open = 0  # connected plus connecting (slots taken)
        self._waiters: deque[asyncio.Future] = deque()
        self._closed = False

    @property
    def stats(self) -> dict:
        """Connection counts: ``open`` (including connecting), ``idle``, ``in_use``."""
        idle = len(self._idle)
        return {"open": self._open, "idle": idle, "in_use": self._open - idle}

    # --- request ------------------------------------------------------------------------------------
    def _start(self, method: str, path: str) -> bytes:
        """Request line and Host header, cached per (method, path): the gateway uses a handful."""
        start = self._starts.get((method, path))
        if start is None:
            if not (path.isascii() and path.isprintable()) or " " in path:
                raise ValueError("request path holds a space, a control or a non-ASCII character")
            start = b"%s %s%s HTTP/1.1\r\nHost: %s\r\n" % (method.encode("ascii"), self._prefix, path.encode(),
                                                           self._host_header)
            if len(self._starts) < 256:
                self._starts[(method, path)] = start
        return start

    def _head(self, method: str, path: str, headers: list[tuple[bytes, bytes]], n: int) -> bytes:
        parts = [self._start(method, path)]
        for k, v in headers:
            if k.lower() not in _HOP:  # framing and connection headers are this client's business
                parts += (k, b": ", v, b"\r\n")
        lines = 3 + len(parts) // 4  # request line, Host, one per header, the blank line
        if n or method not in _BODYLESS_METHODS:
            parts.append(b"Content-Length: %d\r\n\r\n" % n)
            lines += 1
        else:
            parts.append(b"\r\n")
        head = b"".join(parts)
        # one C-speed pass instead of three per header: any extra CR/LF/NUL came from a name or value
        # (find, not ``in``: ``bytes in bytes`` formats and discards a TypeError first, ~1.8k instructions)
        if head.count(b"\n") != lines or head.count(b"\r") != lines or head.find(b"\0") >= 0:
            bad = next((k for k, v in headers if any(c in k + v for c in b"\r\n\0")), b"?")
            raise ValueError(f"header {bad[:40].decode('latin-1')!r} holds a line break")  # never echo the value
        return head

    async def request(self, method: str, path: str, headers: list[tuple[bytes, bytes]],
                      body: bytes) -> UpstreamResponse:
        """Send one request; return once the status line and headers arrived.

        ``path`` is appended to the base URL's path. Host, Content-Length and Connection are set here;
        ``headers`` carries the rest (e.g. authorization, content-type). The caller must ``release()``
        the response.
        """
        if self._closed:
            raise UpstreamError("connect", f"the pool for {self.origin} is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        head = self._head(method, path, headers, len(body))
        head_only = method == "HEAD"
        fresh = False
        while True:
            conn = await self._acquire(fresh)
            try:
                await conn.send(head, body, head_only)
                await conn.read_head()
            except _Retry:
                conn.done()
                if fresh:
                    raise UpstreamError("reset", f"{self.origin} closed the connection before answering") from None
                fresh = True  # the reused connection was stale; once more on a new one
                continue
            except BaseException:
                conn.done()
                raise
            return UpstreamResponse(conn)

    # --- the pool -------------------------------------------------------------------------------------
    async def _acquire(self, fresh: bool) -> _Conn:
        idle = self._idle
        if not fresh and idle:
            now = self._loop.time()
            while idle:
                conn = idle.pop()  # LIFO: the warmest connection, and cold ones age out
                if conn.closed or conn.transport.is_closing():
                    continue
                if now - conn.idle_since > IDLE_TTL:
                    conn.transport.abort()
                    continue
                conn.reused = True
                return conn
        if self._open >= self.max_connections:
            conn = await self._wait_slot()
            if conn is not None:
                return conn
        else:
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._hand_slot()
            raise

    async def _wait_slot(self) -> _Conn | None:
        """Wait for a connection handed back (returned) or a freed slot (None: connect a new one)."""
        fut = self._loop.create_future()
        self._waiters.append(fut)

        def expire() -> None:
            if not fut.done():
                fut.set_exception(UpstreamError(
                    "connect", f"no free connection to {self.origin} within {self.read_timeout:g} s "
                               f"(max_connections={self.max_connections})"))

        timer = self._loop.call_later(self.read_timeout, expire)
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                got = fut.result()  # handed to us just as we gave up: pass it on
                if got is None:
                    self._open -= 1
                    self._hand_slot()
                else:
                    self._release(got)
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise
        finally:
            timer.cancel()

    def _next_waiter(self) -> asyncio.Future | None:
        w = self._waiters
        while w:
            fut = w.popleft()
            if not fut.done():
                return fut
        return None

    def _hand_slot(self) -> None:
        fut = self._next_waiter()
        if fut is not None:
            self._open += 1
            fut.set_result(None)

    def _release(self, conn: _Conn) -> None:
        fut = self._next_waiter()
        if fut is not None:
            conn.reused = True
            conn.state = _HEAD  # taken, not idle: stray bytes now must not abort it
            fut.set_result(conn)
            return
        if self._closed:
            conn.transport.abort()
            return
        conn.reused = True
        conn.idle_since = self._loop.time()
        self._idle.append(conn)

    def _lost(self, conn: _Conn) -> None:
        if not conn.counted:
            return
        conn.counted = False
        self._all.discard(conn)
        self._open -= 1
        try:
            self._idle.remove(conn)  # an idle connection the peer closed: detected here, not at use
        except ValueError:
            pass
        self._hand_slot()

    async def _connect(self) -> _Conn:
        conn = _Conn(self)
        loop = self._loop
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, self.host, self.port, ssl=self.ssl,
                                       server_hostname=self._server_name),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamError("connect", f"connecting to {self.origin} timed out after {self.connect_timeout:g} s") from None
        except (OSError, _ssl.SSLError) as e:
            raise UpstreamError("connect", f"cannot connect to {self.origin}: {_describe(e)}") from None
        if conn.closed:
            raise UpstreamError("connect", f"{self.origin} closed the connection at once")
        conn.counted = True
        self._all.add(conn)
        if self._closed:
            conn.transport.abort()
            raise UpstreamError("connect", f"the pool for {self.origin} is closed")
        return conn

    async def close(self) -> None:
        """Close every connection (in-flight responses fail with ``reset``) and refuse new requests."""
        self._closed = True
        for fut in self._waiters:
            if not fut.done():
                fut.set_exception(UpstreamError("connect", f"the pool for {self.origin} is closed"))
        self._waiters.clear()
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let connection_lost callbacks run
