"""The data path's HTTP/1.1 server: one asyncio protocol per connection, llhttp (httptools) parsing.

aiohttp's web server costs 80–115 µs of CPU per request before a handler runs; this one keeps the
per-request Python work to one parser pass, one ``Request`` and one task, and writes each response
with a single ``transport.write``. It reads the whole request (head and body, within limits) before
calling the handler, because the gateway inspects the whole body anyway.

    async def handler(request: Request) -> Response | None:
        if request.path == "/stream":
            out = await request.stream(200, [("Content-Type", "text/event-stream")])
            await out.write(b"data: 1\\n\\n")
            await out.end()
            return None
        return Response(200, b'{"ok": true}')

    server = HttpServer(handler, error_response=errors, max_body_bytes=1 << 20,
                        header_timeout=10, body_timeout=30)
    port = await server.start("127.0.0.1", 8080)
    ...
    await server.shutdown(timeout=30)

Limits a hostile client cannot get around (each answered through ``error_response`` in the caller's
dialect, then the connection closes): a body over ``max_body_bytes`` (413, at once when declared), a
head over ``max_head_bytes`` (431; 414 when the request target alone is), a head not complete within
``header_timeout`` of its first byte (the connection is closed: slowloris), no body byte for
``body_timeout`` (408), malformed or ambiguous HTTP, an HTTP/1.1 request without a Host header or an
upgrade request (400), a transfer coding other than chunked (501). Idle keep-alive connections close
after ``keepalive_timeout``. A client that reads nothing of an answer for ``body_timeout`` is
disconnected (a blocked ``StreamWriter.write`` then raises ConnectionResetError), so a stalled reader
holds neither memory nor an upstream forever.

Client disconnects never cancel a handler: ``request.disconnected`` turns True and stream writes
raise, so the gateway still finishes its audit record. Handler failures are logged by exception type
only (logger ``soberana.http``): a message or traceback could quote request values.

Timers: each connection has at most one timer. Moving from state to state only stores a deadline; the
timer is re-armed only when the new deadline is earlier than the one it is set for, and when it fires
early it re-arms for the current deadline. A steady keep-alive connection costs one timer event per
keep-alive period, not one per request or per read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs

import httptools

__all__ = ["ErrorResponder", "Handler", "Headers", "HttpServer", "Request", "Response", "StreamWriter"]

log = logging.getLogger("soberana.http")

LINGER_SECONDS = 2.0
"""After an error response the connection half-closes and discards what the client still sends for
this long, so the client reads the error instead of a reset (a close with unread input sends RST)."""
LINGER_BYTES = 1 << 20
"""…or until this many bytes were discarded, whichever comes first."""
MAX_HEADERS = 256
"""Most header fields in one request (431 beyond); SDK clients send about 20."""
WRITE_HIGH_WATER = 64 * 1024
"""Unsent response bytes at which ``StreamWriter.write`` waits for the client to read."""

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                      "trailer"))
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ok_names: set[str] = set()  # header names already validated (they repeat: a small, bounded set)
_NO_BODY_STATUS = frozenset((204, 304))
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}

# parser states of a connection
_IDLE, _HEAD, _BODY = 0, 1, 2


_NAMES: dict[bytes, str] = {}
"""Raw header name -> its decoded, lower-case form: clients send the same few names on every request,
and a dict look-up costs a fraction of a decode and a lower (whose codec-name handling dominates)."""
_NAMES_MAX = 512
"""Names beyond this many distinct ones are decoded each time (a client inventing names cannot grow it)."""


class Headers:
    """Request headers as they arrived: raw (name, value) bytes, decoded (latin-1) only when asked.

    The first lookup indexes them by lower-case name (a handful of headers, one pass); every later
    lookup is a dict access. The data path asks for six to eight headers per request."""

    __slots__ = ("_raw", "_index")

    def __init__(self, raw: list[tuple[bytes, bytes]]):
        self._raw = raw
        self._index: dict[str, list[str]] | None = None

    def _build(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        names = _NAMES
        for k, v in self._raw:
            name = names.get(k)
            if name is None:
                name = k.decode("latin-1").lower()
                if len(names) < _NAMES_MAX:
                    names[k] = name
            values = index.get(name)
            if values is None:
                index[name] = [v.decode("latin-1")]
            else:
                values.append(v.decode("latin-1"))
        self._index = index
        return index

    def get(self, name: str, default=None) -> str | None:
        """The first value of ``name`` (case-insensitive), or ``default``."""
        values = (self._index or self._build()).get(name.lower())
        return values[0] if values else default

    def getall(self, name: str, default=None) -> list[str]:
        """Every value of ``name`` (case-insensitive) in arrival order; ``default`` if none (as aiohttp's)."""
        values = (self._index or self._build()).get(name.lower())
        if values:
            return list(values)
        if default is None:
            raise KeyError(name)
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower() in (self._index or self._build())

    def items(self) -> list[tuple[str, str]]:
        """(lower-case name, value) pairs in arrival order."""
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self._raw]

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:  # names only: values can be credentials
        return f"Headers({[k.decode('latin-1').lower() for k, _ in self._raw]})"


class Request:
    """One parsed request, head and whole body."""

    __slots__ = ("method", "path", "query", "headers", "body", "version", "keep_alive", "peer",
                 "disconnected", "transport", "_proto", "_stream")

    def __init__(self, proto: "_Connection", method: str, path: str, query: str, headers: Headers,
                 version: str, keep_alive: bool):
        self.method = method
        self.path = path
        """The request target without its query; percent-decoding is not applied."""
        self.query = query
        """The raw query string ("" if none)."""
        self.headers = headers
        self.body = b""
        self.version = version
        """"1.1" or "1.0"."""
        self.keep_alive = keep_alive
        """The client allows the connection to stay open after this request."""
        self.peer = proto.peer
        self.disconnected = False
        """True once the client has gone away (the handler keeps running: it must finish its audit)."""
        self.transport = proto.transport
        self._proto = proto
        self._stream: StreamWriter | None = None

    def query_param(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (percent- and plus-decoded), or None."""
        if not self.query:
            return None
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None

    async def stream(self, status: int, headers: list[tuple[str, str]]) -> "StreamWriter":
        """Begin a streamed response; the handler then writes, ends and returns None.

        HTTP/1.1: ``Transfer-Encoding: chunked``. HTTP/1.0: no framing, the connection closes at the end.
        """
        if self._stream is not None:
            raise RuntimeError("the response has already started")
        proto = self._proto
        chunked = self.version == "1.1"
        keep = chunked and self.keep_alive and not proto.server.closing
        head = _head(status, headers, None, None, keep, self.version, b"Transfer-Encoding: chunked\r\n" if chunked else b"")
        self._stream = out = StreamWriter(proto, self, chunked, keep, self.method != "HEAD")
        if self.disconnected:
            raise ConnectionResetError("the client has gone away")
        proto.transport.write(head)
        return out

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


class StreamWriter:
    """The body of a streamed response."""

    __slots__ = ("_proto", "_req", "_chunked", "_body", "keep_alive", "ended")

    def __init__(self, proto: "_Connection", req: Request, chunked: bool, keep_alive: bool, body: bool):
        self._proto = proto
        self._req = req
        self._chunked = chunked
        self._body = body  # False for HEAD: the head only
        self.keep_alive = keep_alive
        self.ended = False

    async def write(self, data: bytes) -> None:
        """Send one chunk (empty data is a no-op); waits while the client is not reading.

        Raises ConnectionResetError once the client has gone away.
        """
        if self._req.disconnected:
            raise ConnectionResetError("the client has gone away")
        if self.ended:
            raise RuntimeError("the stream has ended")
        if not data or not self._body:
            return
        proto = self._proto
        if self._chunked:
            proto.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            proto.transport.write(data)
        if proto.write_paused:
            await proto.drain()

    async def end(self) -> None:
        """Finish the stream (the terminating chunk); idempotent."""
        if self.ended:
            return
        self.ended = True
        if self._req.disconnected:
            return
        if self._chunked and self._body:
            self._proto.transport.write(b"0\r\n\r\n")


class Response:
    """A whole response. ``close`` closes the connection after it."""

    __slots__ = ("status", "body", "headers", "content_type", "close")

    def __init__(self, status: int = 200, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                 content_type: str | None = "application/json", close: bool = False):
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type
        self.close = close


_ANSWERED = StreamWriter(None, None, False, False, False)  # Request._stream once the handler is done
_ANSWERED.ended = True

Handler = Callable[[Request], Awaitable[Response | None]]
ErrorResponder = Callable[[Request | None, int, str, str], Response]


# --- response heads ---------------------------------------------------------------------------------
_date_second = 0
_preamble_text = ""
_status_lines: dict[int, str] = {}  # "HTTP/1.1 200 OK\r\n", built once per status
_type_lines: dict[str, str] = {}  # "Content-Type: …\r\n", validated once per content type (bounded)


def _preamble() -> str:
    """The Server and Date lines; the date is formatted once per second."""
    global _date_second, _preamble_text
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _preamble_text = f"Server: soberana\r\nDate: {formatdate(now, usegmt=True)}\r\n"
    return _preamble_text


def _status_line(status: int) -> str:
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError("invalid status code")
    line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
    _status_lines[status] = line
    return line


def _type_line(content_type: str) -> str:
    if "\r" in content_type or "\n" in content_type or "\0" in content_type:
        raise ValueError("content type holds a line break or NUL")
    line = f"Content-Type: {content_type}\r\n"
    if len(_type_lines) < 256:
        _type_lines[content_type] = line
    return line


def _add_headers(parts: list[str], headers: list[tuple[str, str]]) -> None:
    """Append 'name: value\\r\\n' lines; ValueError on anything that could split or smuggle."""
    for name, value in headers:
        if name not in _ok_names:
            if type(name) is not str or not name or not _TCHAR.issuperset(name) or name.lower() in _FRAMING:
                raise ValueError("invalid or reserved response header name")
            if len(_ok_names) < 1024:
                _ok_names.add(name)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError("response header value holds a line break or NUL")
        parts.append(f"{name}: {value}\r\n")


def _head(status: int, headers: list[tuple[str, str]] | None, content_type: str | None, length: int | None,
          keep_alive: bool, version: str, framing: bytes = b"") -> bytes:
    """Status line and headers, ending with the blank line."""
    parts = [_status_lines.get(status) or _status_line(status), _preamble()]
    if content_type is not None:
        parts.append(_type_lines.get(content_type) or _type_line(content_type))
    if length is not None:
        parts.append(f"Content-Length: {length}\r\n")
    if headers:
        _add_headers(parts, headers)
    if not keep_alive:
        parts.append("Connection: close\r\n")
    elif version == "1.0":
        parts.append("Connection: keep-alive\r\n")
    return "".join(parts).encode("latin-1") + framing + b"\r\n"


class _Refuse(Exception):
    """Internal: raised inside a parser callback to stop parsing and answer with an error."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


_MALFORMED = (400, "invalid_request", "malformed HTTP request")


def _origin_form(url: bytes) -> bytes:
    """The path and query of an absolute-form request target (``http://host/v1/x?y`` -> ``/v1/x?y``).

    RFC 9112 3.2.2: a server must accept the absolute form (clients send it through a proxy
    setting), and the handler routes on the path. Only http and https name a resource here, and a
    user name or password in the target is refused (RFC 9110 4.2.4): it belongs in no request line."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise _Refuse(*_MALFORMED)
    end = len(rest)
    for c in b"/?":
        i = rest.find(c)
        if 0 <= i < end:
            end = i
    authority, target = rest[:end], rest[end:]
    if not authority or authority.find(b"@") >= 0:
        raise _Refuse(*_MALFORMED)
    return target if target[:1] == b"/" else b"/" + target


def _check_transfer_coding(value: bytes, version: str) -> None:
    """Refuse a request Transfer-Encoding other than one plain ``chunked`` (llhttp has already refused
    one where chunked is missing, repeated or not last).

    HTTP/1.0 has no transfer codings: RFC 9112 6.1 says such a message's framing is faulty, and a
    front end that reads it as 1.0 frames it differently (400). Another coding before chunked
    (``gzip, chunked``) would leave the body still encoded once de-chunked: the handler would inspect
    and forward bytes it cannot read, so it is refused as RFC 9112 6.1 advises (501)."""
    if version != "1.1":
        raise _Refuse(*_MALFORMED)
    if value.strip().lower() != b"chunked":
        raise _Refuse(501, "not_implemented", "transfer coding not supported")


# --- the connection -----------------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One client connection: parse requests, run the handler for one at a time, answer in order."""

    __slots__ = ("server", "loop", "transport", "parser", "peer", "state", "busy", "queue", "req", "incoming", "url",
                 "raw_headers", "parts", "size", "wire", "head_start", "last_body", "idle_since", "fresh",
                 "timer", "timer_at", "reading_paused", "write_paused", "waiter", "closed", "lingering",
                 "linger_until", "discarded", "continue_pending", "paused_since", "task", "carried")

    def __init__(self, server: "HttpServer"):
        self.server = server
        self.loop = server._loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = None
        self.state = _IDLE
        self.busy = False  # a handler is running for this connection
        self.queue: deque = deque()  # pipelined requests (or a refusal) waiting for the handler
        self.req: Request | None = None  # the request whose handler is running
        self.incoming: Request | None = None  # the request being read (head complete, body arriving)
        self.url = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []
        self.size = 0
        self.wire = 0
        self.carried = False  # the request being read began in the read that ended the one before it
        self.head_start = 0.0
        self.last_body = 0.0
        self.idle_since = 0.0
        self.fresh = True  # no request has begun yet
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.reading_paused = False
        self.write_paused = False
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.lingering = False  # an error was answered; discard input until closed
        self.linger_until = 0.0
        self.discarded = 0
        self.continue_pending = False
        self.paused_since = 0.0
        self.task: asyncio.Task | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        server = self.server
        server._conns.add(self)
        if server.closing:
            transport.close()
            return
        if 0 < server.max_connections < len(server._conns):
            self._refuse_busy()
            return
        self.idle_since = now = self.loop.time()
        self._arm(now + server.header_timeout)

    def _refuse_busy(self) -> None:
        """Past ``max_connections``: a 503 at once, before anything is read, and close. A flood of
        connections then costs one descriptor each for a moment, not the memory and the deadlines of
        connections being served (and a client gets an answer it retries, not a hang)."""
        server = self.server
        self.parser = None
        if server.on_refused is not None:
            server.on_refused()
        resp = server.error_response(None, 503, "overloaded", "this gateway has too many open connections; retry")
        try:
            data = _head(503, [("Retry-After", "1")], resp.content_type, len(resp.body), False, "1.1") + resp.body
        except (ValueError, TypeError):
            data = _head(503, [("Retry-After", "1")], None, 0, False, "1.1")
        self.transport.write(data)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # an error was (or is about to be) answered: discard
            self.discarded += len(data)
            if self.discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self.state == _IDLE:
            self.carried = False  # the next request begins in this read: ``wire`` counts all of it
            if not self.busy:
                self.head_start = self.loop.time()
        self.wire += len(data)  # bytes of the current request, framing included (roughly, when pipelined)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            r = e.__context__
            if isinstance(r, _Refuse):
                self._refuse(r.status, r.code, r.message)
            else:  # a bug of ours while reading the request: refuse it, and say so by type
                log.error("request parsing failed: %s", type(r).__name__)
                self._refuse(*_MALFORMED)
            return
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._refuse(*_MALFORMED)
            return
        state = self.state
        if state == _IDLE:
            if self.busy and self.queue and not self.reading_paused:
                self._pause_reading()
            return
        server = self.server
        if state == _HEAD:
            if self.wire > server.max_head_bytes:
                self._refuse(*self._head_too_large())
                return
            if not self.busy:
                self._arm(self.head_start + server.header_timeout)
        else:
            if self.wire > server.max_body_bytes + server.max_head_bytes:
                # chunk framing and trailers are not body bytes, but they are bounded too
                self._refuse(413, "payload_too_large", "request body too large")
                return
            if not self.busy:
                self.last_body = now = self.loop.time()
                self._arm(now + server.body_timeout)
        if self.busy and not self.reading_paused:
            self._pause_reading()  # one request at a time: let the client wait in its own buffers

    def eof_received(self) -> bool:
        return False  # the client closed its side: close ours (a handler sees request.disconnected)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server._conns.discard(self)
        self.server._wake()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for req in (self.req, self.incoming):
            if req is not None:
                req.disconnected = True
        for item in self.queue:
            if isinstance(item, Request):
                item.disconnected = True
        self.queue.clear()
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_exception(ConnectionResetError("the client has gone away"))
        self.transport = _ClosedTransport
        if self.busy:  # the handler runs on: keep its task referenced until it is done
            task = self.task
            self.server._orphans.add(task)
            task.add_done_callback(self.server._orphans.discard)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.busy:  # a client that reads nothing for body_timeout is let go (_deadline)
            self.paused_since = now = self.loop.time()
            self._arm(now + self.server.body_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below the low-water mark (or the client left)."""
        if self.closed:
            raise ConnectionResetError("the client has gone away")
        if self.waiter is None:
            self.waiter = self.loop.create_future()
        await self.waiter

    # --- httptools callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.state = _HEAD
        self.fresh = False
        self.url = b""
        self.raw_headers = []

    def on_url(self, url: bytes) -> None:
        u = self.url
        if not u:
            self.url = url
        elif type(u) is bytes:  # the request line spans reads: grow in place, not quadratically
            self.url = bytearray(u) + url
        else:
            u += url

    def on_header(self, name: bytes, value: bytes) -> None:
        raw = self.raw_headers
        raw.append((name, value))
        if len(raw) > MAX_HEADERS:  # each one is a Python call: bound the work a 64 KB head can cause
            raise _Refuse(431, "headers_too_large", "too many request headers")

    def on_headers_complete(self) -> None:
        parser = self.parser
        server = self.server
        raw = self.raw_headers
        self.raw_headers = []  # trailers, if any, land here and are dropped: never request headers
        url = self.url
        if type(url) is not bytes:
            url = bytes(url)
        # (find, not ``in``: ``bytes in bytes`` first tries the needle as an int and formats a
        # TypeError it then discards, ~1.8k instructions a test)
        if url.find(b"#") >= 0:  # a fragment is never sent by a browser; drop it if a client does
            url = url.partition(b"#")[0]
        if url[0] != 47 and url != b"*":  # not "/…": the absolute form (llhttp has refused anything else)
            url = _origin_form(url)
        path, _, query = url.partition(b"?")
        version = parser.get_http_version()
        method = parser.get_method()
        self.incoming = req = Request(self, _METHODS.get(method) or method.decode("ascii"), path.decode("latin-1"),
                                      query.decode("latin-1") if query else "", Headers(raw), version,
                                      parser.should_keep_alive())
        self.state = _BODY
        self.parts = []
        self.size = 0
        # a pipelined request whose head began in the read that ended the one before it is not all in
        # ``wire`` (reset at that request's end, not at this one's first byte): measure it
        if (self.wire > server.max_head_bytes or self.carried) and self._head_size(raw) > server.max_head_bytes:
            raise _Refuse(*self._head_too_large())
        if parser.should_upgrade() or (version != "1.1" and version != "1.0"):  # llhttp lets 0.9 and 2.0 by
            raise _Refuse(*_MALFORMED)
        declared = None
        expect = None
        hosts = 0
        for k, v in raw:
            n = len(k)
            if n == 14 and k.lower() == b"content-length":
                declared = int(v)  # llhttp accepts digits only, and one value
            elif n == 6 and k.lower() == b"expect":
                expect = v
            elif n == 17 and k.lower() == b"transfer-encoding":
                _check_transfer_coding(v, version)
            elif n == 4 and k.lower() == b"host":
                hosts += 1
        if hosts > 1:  # RFC 9112 3.2: which one names the target is ambiguous, so the request is refused
            raise _Refuse(*_MALFORMED)
        # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
        # request message that lacks a Host header field". HTTP/1.0 made Host optional, so a 1.0
        # request without one is still answered.
        if not hosts and version == "1.1":
            raise _Refuse(*_MALFORMED)
        if declared is not None and declared > server.max_body_bytes:
            raise _Refuse(413, "payload_too_large", "request body too large")
        if expect is not None and expect.lower() == b"100-continue" and version == "1.1":
            if self.busy:
                self.continue_pending = True  # never in the middle of the response being written
            else:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _head_size(self, raw: list[tuple[bytes, bytes]]) -> int:
        return len(self.url) + 16 + sum(len(k) + len(v) + 4 for k, v in raw)

    def _head_too_large(self) -> tuple[int, str, str]:
        """The refusal of a head over ``max_head_bytes``: 414 when the request target alone is (RFC 9112
        section 3 requires 414 for a target longer than the server parses), 431 otherwise."""
        if len(self.url) > self.server.max_head_bytes:
            return 414, "uri_too_long", "request target too long"
        return 431, "headers_too_large", "request head too large"

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.server.max_body_bytes:
            raise _Refuse(413, "payload_too_large", "request body too large")
        self.parts.append(body)

    def on_message_complete(self) -> None:
        req = self.incoming
        self.incoming = None
        parts = self.parts
        if parts:
            req.body = parts[0] if len(parts) == 1 else b"".join(parts)
            self.parts = []
        self.state = _IDLE
        self.wire = 0
        self.carried = True  # until the next read shows the next request began there
        self.continue_pending = False  # its body has all arrived: there is nothing left to invite
        if self.busy:
            self.queue.append(req)
        else:
            self._dispatch(req)

    # --- answering --------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> None:
        self.busy = True
        self.req = req
        self.server._in_flight += 1
        self.task = self.loop.create_task(self._run(req))  # the loop holds tasks weakly

    async def _run(self, req: Request) -> None:
        server = self.server
        keep = False
        try:
            try:
                resp = await server.handler(req)
                if req._stream is not None:
                    if resp is not None:
                        raise TypeError("a handler that streamed returned a response too")
                elif type(resp) is not Response:
                    raise TypeError("the handler returned no Response")
            except Exception as e:  # the handler's own failure: log the type only (a message can quote values)
                if req.disconnected and isinstance(e, ConnectionError):
                    log.info("client left during the answer")  # not a failure of the handler
                else:
                    log.error("handler failed: %s", type(e).__name__)
                if req._stream is not None:
                    return  # a stream had started: close it truncated (keep stays False), never a fake clean end
                resp = self._error_response(req, 500, "internal_error", "internal error")
            out = req._stream
            if out is not None:
                if not out.ended:
                    await out.end()
                keep = out.keep_alive and not server.closing
            else:
                keep = self._write(req, resp)
            if self.write_paused and keep:
                # the client is not reading: answer nothing more (and read nothing more) until it does
                await self.drain()
        except ConnectionResetError:
            keep = False
        finally:
            out = req._stream
            if out is not None:
                out.ended = True  # a writer kept past the handler's end can write nothing more
            req._stream = _ANSWERED  # nor can a late stream() write into the next answer
            self._finished(keep)

    def _write(self, req: Request, resp: Response, fallback: bool = True) -> bool:
        """Write a whole response; whether the connection stays open."""
        try:
            keep = req.keep_alive and not resp.close and not self.server.closing
            status = resp.status
            body = resp.body
            if status in _NO_BODY_STATUS or status < 200:
                data = _head(status, resp.headers, None, None, keep, req.version)
            else:
                head = _head(status, resp.headers, resp.content_type, len(body), keep, req.version)
                data = head + body if body and req.method != "HEAD" else head
        except (ValueError, TypeError) as e:
            log.error("handler failed: %s", type(e).__name__)
            if fallback:
                return self._write(req, self._error_response(req, 500, "internal_error", "internal error"), False)
            return self._write(req, Response(500, b"", None, None, True), False)
        if not self.closed:
            self.transport.write(data)
        return keep

    def _error_response(self, req: Request | None, status: int, code: str, message: str) -> Response:
        try:
            resp = self.server.error_response(req, status, code, message)
            if isinstance(resp, Response):
                return resp
            log.error("error responder failed: %s", type(resp).__name__)
        except Exception as e:
            log.error("error responder failed: %s", type(e).__name__)
        return Response(status, b"", None, None, True)

    def _finished(self, keep: bool) -> None:
        """The handler is done: next pipelined request, idle, or close."""
        server = self.server
        server._in_flight -= 1
        self.busy = False
        self.req = None
        self.task = None
        if server._drained is not None:
            server._wake()
        if self.closed:
            return
        if not keep:
            self._close()
            return
        queue = self.queue
        if queue:
            item = queue.popleft()
            if isinstance(item, Request):
                self._dispatch(item)
            else:
                self._answer_refusal(*item)
            return
        if self.continue_pending:
            self.continue_pending = False
            if self.state == _BODY:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        if self.state == _IDLE:
            if server.closing:
                self.transport.close()
                return
            self.idle_since = now = self.loop.time()
            self._arm(now + server.keepalive_timeout)
        else:  # a pipelined request was arriving while the handler ran: its clocks start now
            now = self.loop.time()
            self.head_start = self.last_body = now
            self._arm(now + min(server.header_timeout, server.body_timeout))

    def _close(self) -> None:
        """Close after the answer is flushed, but wait no longer than body_timeout for a client that
        does not read it."""
        transport = self.transport
        transport.close()
        if transport.get_write_buffer_size():
            self.lingering = True
            self.linger_until = self.loop.time() + self.server.body_timeout
            self._arm(self.linger_until)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer an error (after the request being handled, if any), then close."""
        self.parser = None  # in an error state now; nothing more is parsed on this connection
        if self.busy:
            self.queue.append((status, code, message, self.incoming))
            if not self.reading_paused:
                self._pause_reading()
            return
        self._answer_refusal(status, code, message, self.incoming)

    def _answer_refusal(self, status: int, code: str, message: str, req: Request | None) -> None:
        self.queue.clear()
        self.state = _IDLE
        resp = self._error_response(req, status, code, message)
        version = req.version if req is not None else "1.1"
        try:
            data = _head(resp.status, resp.headers, resp.content_type, len(resp.body), False, version) + resp.body
        except (ValueError, TypeError) as e:
            log.error("error responder failed: %s", type(e).__name__)
            data = _head(status, None, None, 0, False, version)
        transport = self.transport
        transport.write(data)
        # half-close and keep reading (discarding) for a while, so the client sees the answer
        self.lingering = True
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except (OSError, RuntimeError):
                transport.close()
                return
        else:
            transport.close()
            return
        self.linger_until = self.loop.time() + LINGER_SECONDS
        self._arm(self.linger_until)

    def _pause_reading(self) -> None:
        self.reading_paused = True
        self.transport.pause_reading()

    # --- the one timer ----------------------------------------------------------------------------
    def _arm(self, deadline: float) -> None:
        timer = self.timer
        if timer is not None:
            if self.timer_at <= deadline:
                return  # it fires first and re-arms for the current deadline
            timer.cancel()
        self.timer_at = deadline
        self.timer = self.loop.call_at(deadline, self._on_timer)

    def _deadline(self) -> float | None:
        server = self.server
        if self.busy:  # the handler decides how long a request takes, the client how fast it reads
            return self.paused_since + server.body_timeout if self.write_paused else None
        if self.lingering:
            return self.linger_until
        state = self.state
        if state == _IDLE:
            return self.idle_since + (server.header_timeout if self.fresh else server.keepalive_timeout)
        if state == _HEAD:
            return self.head_start + server.header_timeout
        return self.last_body + server.body_timeout

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        deadline = self._deadline()
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._on_timer)
            return
        if self.busy or self.lingering:
            self.transport.abort()  # a client that stopped reading our answer, or the end of lingering
        elif self.state != _BODY:
            self._close()  # a slow or absent head, or an idle keep-alive
        else:
            self._refuse(408, "request_timeout", "the request body stalled")


class _ClosedTransportType:
    """Stands in for a closed transport: writes and closes are no-ops (a handler may still hold it)."""

    def write(self, data) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name, default=None):
        return default

    def get_write_buffer_size(self) -> int:
        return 0


_ClosedTransport = _ClosedTransportType()


# --- the server ----------------------------------------------------------------------------------------
class HttpServer:
    """The listening socket and its connections.

    ``handler``, ``error_response`` and the limits are plain attributes, read per request or per
    connection, so a configuration reload can swap them.
    """

    def __init__(self, handler: Handler, *, error_response: ErrorResponder, max_body_bytes: int,
                 header_timeout: float, body_timeout: float, keepalive_timeout: float = 75.0,
                 max_head_bytes: int = 65536, max_connections: int = 0,
                 on_refused: Callable[[], None] | None = None):
        self.handler = handler
        """Called once per request, one at a time per connection."""
        self.error_response = error_response
        """Builds the error responses the server itself sends (400, 408, 413, 414, 431, 500, 501)."""
        self.max_body_bytes = max_body_bytes
        """Largest request body, counted as it arrives (413)."""
        self.header_timeout = header_timeout
        """Seconds from a request's first byte (or from connecting) to the end of its head."""
        self.body_timeout = body_timeout
        """Longest silence while a request body is arriving (408); also the longest a client may leave
        an answer unread before it is disconnected."""
        self.keepalive_timeout = keepalive_timeout
        """Seconds an idle keep-alive connection stays open."""
        self.max_head_bytes = max_head_bytes
        """Largest request line plus headers (431; 414 for a request target over it on its own)."""
        self.max_connections = max_connections
        """Most open client connections (0: no cap); past it a new one is answered 503 and closed."""
        self.on_refused = on_refused
        """Called for each connection refused past ``max_connections`` (a metric)."""
        self.closing = False
        """True once shutdown began: responses say Connection: close, new connections are refused."""
        self._in_flight = 0
        self._conns: set[_Connection] = set()
        self._orphans: set[asyncio.Task] = set()  # handlers still running for connections already closed
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained: asyncio.Future | None = None

    def _wake(self) -> None:
        """A handler finished or a connection closed: a shutdown in progress looks again."""
        d = self._drained
        if d is not None and not d.done():
            d.set_result(None)

    @property
    def in_flight(self) -> int:
        """Requests whose handler is running (streams included)."""
        return self._in_flight

    @property
    def connections(self) -> int:
        """Open client connections."""
        return len(self._conns)

    async def start(self, host: str, port: int, *, reuse_port: bool = False, backlog: int = 2048,
                    ssl: ssl_module.SSLContext | None = None) -> int:
        """Listen on ``host:port`` in the running loop; the bound port (``port`` 0 picks a free one).
        With ``ssl``, HTTPS: a TLS handshake gets ``header_timeout`` too (a slow handshake is the
        same slowloris as a slow head)."""
        self._loop = loop = asyncio.get_running_loop()
        tls = {"ssl": ssl, "ssl_handshake_timeout": self.header_timeout} if ssl is not None else {}
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=backlog,
                                                reuse_port=reuse_port or None, **tls)
        return self._server.sockets[0].getsockname()[1]

    async def shutdown(self, timeout: float, finish_timeout: float = 5.0) -> None:
        """Stop listening; close idle connections now and busy ones as they become idle; let running
        requests and streams (and bodies being uploaded) finish for up to ``timeout`` seconds; then
        close every connection.

        Handlers still running after that get up to ``finish_timeout`` more seconds (their writes raise
        ConnectionResetError, a stream ends at once), then they are cancelled; either way this returns
        only once they have ended, so what they record at their end (the audit record) is written
        before the caller closes the audit log. A handler that ignores its cancellation is waited for
        one more second, then left (logged).
        """
        self.closing = True
        if self._server is not None:
            self._server.close()
        loop = self._loop
        deadline = loop.time() + timeout
        while True:
            waiting = False
            for c in list(self._conns):
                if c.busy or (c.state == _BODY and c.parser is not None):
                    waiting = True  # a handler runs, or a request body is arriving: let it finish
                elif not c.lingering:
                    c.transport.close()  # idle, or a head still arriving
            left = deadline - loop.time()
            if not waiting or left <= 0:
                break
            self._drained = loop.create_future()  # set when a handler finishes or a connection closes
            try:
                await asyncio.wait_for(self._drained, left)
            except TimeoutError:
                break
        running = {c.task for c in self._conns if c.busy and c.task is not None} | self._orphans
        for c in list(self._conns):
            c.transport.abort()
        await asyncio.sleep(0)  # let connection_lost run
        running = {t for t in running if not t.done()}
        if running:
            # A handler past its connection may still be waiting on an upstream that already has the
            # request: the audit log closes after this returns, so wait for its record, bounded (the
            # upstream's read timeout can be minutes, longer than any termination grace period).
            _, running = await asyncio.wait(running, timeout=finish_timeout)
        if running:
            log.warning("drain: cancelling %d handler(s) still running", len(running))
            for t in running:
                t.cancel()  # the handler's finally still writes its record (outcome client_abort)
            _, running = await asyncio.wait(running, timeout=1.0)
            if running:
                log.error("drain: %d handler(s) did not end after cancellation", len(running))
