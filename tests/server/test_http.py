"""gateway.server.http over real loopback sockets, on asyncio's loop and on uvloop.

Each scenario is an async function run by ``asyncio.Runner`` with the loop under test (the loops'
transports differ in how they report EOF, resets and flow control).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.authenticator import _one_header
from gateway.auth.errors import AuthError
from gateway.server.http import Headers, HttpServer, Request, Response, _Connection

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
SECRET = "4111111111111111"  # a value that must never reach a log line


def errors(req: Request | None, status: int, code: str, message: str) -> Response:
    """The caller's error dialect in these tests: it says whether the head had been parsed."""
    return Response(status, orjson.dumps({"error": {"code": code, "message": message, "parsed": req is not None}}))


async def echo(req: Request) -> Response:
    return Response(200, orjson.dumps({"method": req.method, "path": req.path, "query": req.query,
                                       "body": req.body.decode("latin-1"), "version": req.version,
                                       "x": req.headers.get("x-test")}))


@asynccontextmanager
async def serving(handler=echo, **limits):
    kw = dict(max_body_bytes=65536, header_timeout=0.5, body_timeout=0.5, keepalive_timeout=0.5)
    kw.update(limits)
    server = HttpServer(handler, error_response=errors, **kw)
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, port
    finally:
        await server.shutdown(1.0)


async def connect(port: int):
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response from a raw socket: (status, lower-case headers, de-chunked body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            assert k.lower() not in headers, f"repeated header {k}"
            headers[k.lower()] = v.strip()
    if status in (204, 304):
        body = b""
    elif "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).strip(), 16)
            data = await asyncio.wait_for(reader.readexactly(size + 2), 5)
            assert data.endswith(b"\r\n")
            if size == 0:
                break
            body += data[:-2]
    else:
        body = await asyncio.wait_for(reader.read(), 5)
    return status, headers, body


async def at_eof(reader: asyncio.StreamReader, timeout: float = 3.0) -> bool:
    """The server closed the connection (without sending anything more) within ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def error_code(body: bytes) -> str:
    return orjson.loads(body)["error"]["code"]


# --- scenarios ---------------------------------------------------------------------------------------
async def keep_alive_reuse():
    peers = []

    async def handler(req):
        peers.append(req.peer)
        return await echo(req)

    async with serving(handler) as (server, port):
        conn = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=conn) as s:
            for i in range(3):
                async with s.post(f"http://127.0.0.1:{port}/v1/x?i={i}", data=b"hi") as r:
                    assert r.status == 200
                    got = await r.json()
                    assert got["path"] == "/v1/x" and got["query"] == f"i={i}" and got["body"] == "hi"
                    assert r.headers["Server"] == "soberana"
            assert server.connections == 1
        assert len(peers) == 3 and len(set(peers)) == 1


async def connection_close_both_ways():
    async def handler(req):
        if req.path == "/bye":
            return Response(200, b"{}", close=True)
        return await echo(req)

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _ = await read_response(r)
        assert status == 200 and headers["connection"] == "close"
        assert await at_eof(r)
        w.close()
        r, w = await connect(port)  # the handler asks to close
        w.write(b"GET /bye HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await read_response(r)
        assert status == 200 and headers["connection"] == "close"
        assert await at_eof(r)  # the pipelined second request is never answered
        w.close()


async def http_1_0():
    async with serving() as (_, port):
        r, w = await connect(port)
        w.write(b"GET /a HTTP/1.0\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["version"] == "1.0" and headers["connection"] == "close"
        assert await at_eof(r)
        w.close()
        r, w = await connect(port)
        for i in range(2):
            w.write(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = await read_response(r)
            assert status == 200 and headers["connection"].lower() == "keep-alive", i
        w.close()


async def pipelining_in_order():
    running = 0
    most = 0

    async def handler(req):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.03 * (3 - int(req.path[1:])))  # the first takes longest
        running -= 1
        return await echo(req)

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"".join(b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i, i) for i in range(3)))
        for i in range(3):
            status, _, body = await read_response(r)
            assert status == 200 and orjson.loads(body)["path"] == f"/{i}" and orjson.loads(body)["body"] == str(i)
        assert most == 1
        w.close()


async def chunked_request_body():
    async with serving() as (_, port):
        r, w = await connect(port)
        w.write(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await asyncio.sleep(0.05)
        w.write(b"6\r\n world\r\n0\r\n\r\n")
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["body"] == "hello world"
        w.close()


async def expect_100_continue():
    async with serving(max_body_bytes=100) as (_, port):
        r, w = await connect(port)
        w.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        w.write(b"hello")
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["body"] == "hello"
        w.close()
        r, w = await connect(port)  # over the limit: refused, never invited
        w.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 413 and error_code(body) == "payload_too_large" and headers["connection"] == "close"
        w.close()


async def body_too_large_declared_and_streamed():
    calls = []

    async def handler(req):
        calls.append(req.path)
        return await echo(req)

    async with serving(handler, max_body_bytes=1000) as (_, port):
        r, w = await connect(port)  # declared: refused before any body byte is sent
        w.write(b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 413 and error_code(body) == "payload_too_large" and orjson.loads(body)["error"]["parsed"]
        assert await at_eof(r)
        w.close()
        r, w = await connect(port)  # chunked: counted as it arrives
        w.write(b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            w.write(b"190\r\n" + b"x" * 400 + b"\r\n")
        status, _, body = await read_response(r)
        assert status == 413 and error_code(body) == "payload_too_large"
        assert await at_eof(r)
        w.close()
        # an ordinary client that sends its whole (too large) body still reads the answer
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/a", data=b"y" * 300_000) as resp:
                assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    assert calls == []


async def stalled_body_is_408():
    async with serving(body_timeout=0.4) as (_, port):
        r, w = await connect(port)
        w.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
        status, headers, body = await read_response(r)
        assert status == 408 and error_code(body) == "request_timeout" and headers["connection"] == "close"
        assert await at_eof(r)
        w.close()
        r, w = await connect(port)  # a body that keeps flowing is not cut, however long in total
        w.write(b"POST /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        for c in b"abcdef":  # 0.6 s in all, never 0.4 s without a byte
            await asyncio.sleep(0.1)
            w.write(bytes([c]))
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["body"] == "abcdef"
        w.close()


async def slow_head_closed():
    async with serving(header_timeout=0.3) as (_, port):
        r, w = await connect(port)
        w.write(b"POST /x HTTP/1.1\r\nHost: x\r\n")  # never finishes; trickles more
        await asyncio.sleep(0.15)
        w.write(b"X-A: 1\r\n")
        assert await at_eof(r)  # closed without an answer
        w.close()
        r, w = await connect(port)  # a connection that never sends a byte
        assert await at_eof(r)
        w.close()


async def idle_keep_alive_closed():
    async with serving(keepalive_timeout=0.3, header_timeout=5) as (server, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await read_response(r)
        assert status == 200 and "connection" not in headers
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await at_eof(r)
        assert loop.time() - t0 < 4  # the keep-alive timeout, not the 5 s header timeout
        assert server.connections == 0
        w.close()


async def head_too_large_is_431_or_414():
    # a request target too long on its own is 414 (RFC 9112 section 3), any other head too large 431
    shapes = ((b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", b"\r\n\r\n", 431, "headers_too_large"),
              (b"GET /", b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"))
    async with serving(max_head_bytes=4096) as (_, port):
        for start, end, expected, code in shapes:
            for complete in (True, False):
                r, w = await connect(port)
                w.write(start + b"a" * 8000 + (end if complete else b""))
                status, _, body = await read_response(r)
                assert status == expected and error_code(body) == code, (start, complete)
                assert await at_eof(r)
                w.close()
        r, w = await connect(port)  # many small headers count too
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n"
                + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(200)) + b"\r\n")
        status, _, _ = await read_response(r)
        assert status == 431
        w.close()
    async with serving() as (_, port):  # and their number, however small they are
        for count, expected in ((255, 200), (256, 431)):  # with Host: 256 and 257 fields (MAX_HEADERS)
            r, w = await connect(port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * count + b"\r\n")
            assert (await read_response(r))[0] == expected, count
            w.close()


async def malformed_is_400():
    bad = [
        b"HELLO\r\n\r\n",
        b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    ]
    calls = []

    async def handler(req):
        calls.append(req.path)
        return await echo(req)

    async with serving(handler) as (_, port):
        for raw in bad:
            r, w = await connect(port)
            w.write(raw)
            status, headers, body = await read_response(r)
            assert status == 400 and error_code(body) == "invalid_request" and headers["connection"] == "close", raw
            assert await at_eof(r), raw
            w.close()
    assert calls == []


async def handler_exception_is_500(caplog):
    async def handler(req):
        raise ValueError(f"cannot handle {req.body.decode()}")

    caplog.set_level(logging.DEBUG, logger="soberana.http")
    async with serving(handler) as (_, port):
        r, w = await connect(port)
        body = orjson.dumps({"card": SECRET})
        w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        status, _, out = await read_response(r)
        assert status == 500 and error_code(out) == "internal_error" and SECRET.encode() not in out
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection still serves
        status, _, _ = await read_response(r)
        assert status == 500
        w.close()
    failed = [rec for rec in caplog.records if rec.name == "soberana.http"]
    assert failed and failed[0].getMessage() == "handler failed: ValueError" and failed[0].exc_info is None
    assert SECRET not in caplog.text
    caplog.clear()
    gone = asyncio.Event()

    async def streams(req):
        out = await req.stream(200, [])
        try:
            while True:
                await out.write(b"x")
                await asyncio.sleep(0.01)
        finally:
            gone.set()

    async with serving(streams) as (_, port):  # a client that leaves is not a handler failure
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await r.readuntil(b"x\r\n")
        w.close()
        await asyncio.wait_for(gone.wait(), 5)
        await asyncio.sleep(0.05)
    records = [rec for rec in caplog.records if rec.name == "soberana.http"]
    assert [rec.levelno for rec in records] == [logging.INFO]


async def streaming_chunked():
    async def handler(req):
        out = await req.stream(200, [("Content-Type", "text/event-stream"), ("X-Route", "br")])
        for word in (b"data: one\n\n", b"", b"data: two\n\n"):
            await out.write(word)
            await asyncio.sleep(0)
        await out.end()
        await out.end()  # idempotent
        return None

    async with serving(handler) as (_, port):
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/stream") as resp:
                assert resp.status == 200 and resp.headers["X-Route"] == "br"
                assert resp.headers["Transfer-Encoding"] == "chunked"
                assert await resp.read() == b"data: one\n\ndata: two\n\n"
        r, w = await connect(port)
        w.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await r.readuntil(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in head and b"Content-Length" not in head
        rest = await asyncio.wait_for(r.readuntil(b"0\r\n\r\n"), 5)
        assert rest == b"b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n"  # an empty write sent nothing
        w.write(b"GET /stream HTTP/1.0\r\n\r\n")  # 1.0: no chunking, the end is the close
        status, headers, body = await read_response(r)
        assert status == 200 and "transfer-encoding" not in headers and headers["connection"] == "close"
        assert body == b"data: one\n\ndata: two\n\n"
        w.close()


async def stream_handler_failing_midway_truncates():
    async def handler(req):
        out = await req.stream(200, [])
        await out.write(b"partial")
        raise RuntimeError("boom")

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await r.readuntil(b"\r\n\r\n")
        rest = await asyncio.wait_for(r.read(), 5)
        assert rest == b"7\r\npartial\r\n"  # closed without the terminating chunk: never a fake clean end
        w.close()


async def backpressure_bounds_the_buffer():
    written = 0
    done = asyncio.Event()
    outcome = []
    conn_transport = []

    async def handler(req):
        nonlocal written
        out = await req.stream(200, [])
        conn_transport.append(req.transport)
        chunk = b"z" * 65536
        try:
            while written < 1 << 30:
                await out.write(chunk)
                written += len(chunk)
        except ConnectionResetError:
            outcome.append("reset")
        finally:
            done.set()

    async with serving(handler, body_timeout=30) as (_, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        last = -1
        while written != last:  # the handler stops advancing once the client does not read
            last = written
            await asyncio.sleep(0.1)
        assert 0 < written < 64 << 20  # socket buffers at most, never the 1 GiB the handler wants to send
        assert conn_transport[0].get_write_buffer_size() <= 2 * 65536 + 64
        assert not done.is_set()
        w.transport.abort()  # the client leaves: the blocked write raises, the handler finishes
        await asyncio.wait_for(done.wait(), 5)
        assert outcome == ["reset"]


async def disconnect_mid_stream():
    finished = asyncio.Event()
    seen = {}

    async def handler(req):
        out = await req.stream(200, [])
        await out.write(b"first")
        try:
            for _ in range(200):
                await asyncio.sleep(0.01)
                await out.write(b"more")
        except ConnectionResetError:
            seen["reset"] = True
        seen["disconnected"] = req.disconnected
        await asyncio.sleep(0.05)  # e.g. the audit record: not cancelled
        finished.set()

    async def waits(req):  # a handler awaiting an upstream when the client leaves
        await asyncio.sleep(0.2)
        seen["plain"] = req.disconnected
        finished.set()
        return Response(200, b"{}")

    async with serving(handler) as (server, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await r.readuntil(b"first\r\n")
        w.close()
        await asyncio.wait_for(finished.wait(), 5)
        assert seen == {"reset": True, "disconnected": True}
        finished.clear()
        server.handler = waits  # swapped at runtime, as a config reload does
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)
        w.close()
        await asyncio.wait_for(finished.wait(), 5)
        assert seen["plain"] is True
        await asyncio.sleep(0.01)
        assert server.in_flight == 0


async def shutdown_drains():
    async def handler(req):
        out = await req.stream(200, [])
        n = int(req.query_param("n"))
        try:
            for i in range(n):
                await out.write(b"%d;" % i)
                await asyncio.sleep(0.03)
        except ConnectionResetError:
            return None
        await out.end()
        return None

    server = HttpServer(handler, error_response=errors, max_body_bytes=1000, header_timeout=5, body_timeout=5,
                        keepalive_timeout=60)
    port = await server.start("127.0.0.1", 0)
    idle_r, idle_w = await connect(port)
    idle_w.write(b"GET /?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_response(idle_r)  # now idle on keep-alive
    short_r, short_w = await connect(port)
    short_w.write(b"GET /?n=10 HTTP/1.1\r\nHost: x\r\n\r\n")
    long_r, long_w = await connect(port)
    long_w.write(b"GET /?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    upload_r, upload_w = await connect(port)
    upload_w.write(b"POST /?n=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    head_r, head_w = await connect(port)
    head_w.write(b"POST /?n=1 HTTP/1.1\r\nHost: x\r\nContent-")
    await short_r.readuntil(b"0;\r\n")
    await long_r.readuntil(b"0;\r\n")
    assert server.in_flight == 2 and server.connections == 5
    stopping = asyncio.create_task(server.shutdown(1.2))
    assert await at_eof(idle_r, 0.3)  # the idle connection is closed at once, and one still sending its head
    assert await at_eof(head_r, 0.3)
    upload_w.write(b"cd")  # a body being uploaded is let finish, and answered
    status, headers, body = await read_response(upload_r)
    assert status == 200 and body == b"0;" and headers["connection"] == "close"
    rest = await asyncio.wait_for(short_r.read(), 5)  # the short stream finishes cleanly, then closes
    assert rest.endswith(b"9;\r\n0\r\n\r\n")
    rest = await asyncio.wait_for(long_r.read(), 5)  # the long one is cut when the timeout ends
    assert rest and not rest.endswith(b"0\r\n\r\n")
    await stopping
    assert server.connections == 0
    with pytest.raises(OSError):
        await connect(port)
    for w in (idle_w, short_w, long_w, upload_w, head_w):
        w.close()


async def shutdown_waits_for_handlers_past_their_connections():
    """Handlers still running when the drain ends: shutdown returns once they have ended, those that
    finish within ``finish_timeout`` on their own, the others cancelled (their finally runs first)."""
    ended = {}

    async def handler(req):
        name = req.path[1:]
        try:
            await asyncio.sleep(0.5 if name == "slow" else 60)  # an upstream answering late, or never
            ended[name] = "done"
        except asyncio.CancelledError:
            ended[name] = "cancelled"  # e.g. the audit record, outcome client_abort
            raise
        return Response(200, b"{}")

    server = HttpServer(handler, error_response=errors, max_body_bytes=1000, header_timeout=5, body_timeout=5)
    port = await server.start("127.0.0.1", 0)
    writers = []
    for name in ("slow", "stuck"):
        r, w = await connect(port)
        w.write(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
        writers.append(w)
    while server.in_flight < 2:
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await server.shutdown(0.1, finish_timeout=1.0)
    assert ended == {"slow": "done", "stuck": "cancelled"}
    assert 0.9 < time.monotonic() - t0 < 3
    assert server.in_flight == 0 and server.connections == 0
    for w in writers:
        w.close()


async def header_injection_refused():
    async def handler(req):
        if req.path == "/value":
            return Response(200, b"{}", headers=[("X-Echo", "a\r\nSet-Cookie: stolen=1")])
        if req.path == "/name":
            return Response(200, b"{}", headers=[("X-A: b\r\nSet-Cookie", "x")])
        if req.path == "/nul":
            return Response(200, b"{}", headers=[("X-A", "b\x00c")])
        if req.path == "/framing":
            return Response(200, b"{}", headers=[("Content-Length", "0")])
        if req.path == "/stream":
            await req.stream(200, [("X-A", "b\nSet-Cookie: s=1")])
        return Response(200, b"{}", headers=[("X-Ok", "fine")])

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        for path in (b"/value", b"/name", b"/nul", b"/framing", b"/stream"):
            w.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            status, headers, body = await read_response(r)
            assert status == 500 and "set-cookie" not in headers and error_code(body) == "internal_error", path
        w.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await read_response(r)
        assert status == 200 and headers["x-ok"] == "fine"
        w.close()


async def date_and_server_headers():
    async with serving() as (_, port):
        r, w = await connect(port)
        w.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)  # HEAD: the length, no body
        assert b"Content-Length: " in head and b"Content-Length: 0" not in head
        status, headers, body = await read_response(r)
        assert status == 200 and headers["server"] == "soberana" and orjson.loads(body)["method"] == "GET"
        assert parsedate_to_datetime(headers["date"]).tzinfo is not None
        w.close()


async def limits_swapped_at_runtime():
    async with serving(max_body_bytes=10) as (server, port):
        r, w = await connect(port)
        w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"a" * 20)
        assert (await read_response(r))[0] == 413
        w.close()
        server.max_body_bytes = 100
        r, w = await connect(port)
        w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"a" * 20)
        assert (await read_response(r))[0] == 200
        w.close()


async def bad_handler_results_are_500():
    async def handler(req):
        if req.path == "/none":
            return None
        if req.path == "/type":
            return Response(200, b"{}", headers=[("X-N", 5)])
        if req.path == "/both":
            await req.stream(200, [])
            return Response(200, b"{}")
        return {"not": "a Response"}

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        for path in (b"/none", b"/type", b"/dict"):
            w.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            status, _, body = await read_response(r)
            assert status == 500 and error_code(body) == "internal_error", path
        w.write(b"GET /both HTTP/1.1\r\nHost: x\r\n\r\n")  # a stream had begun: cut, not completed
        await r.readuntil(b"\r\n\r\n")
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()


async def pipelined_continue_waits_for_the_answer_before_it():
    gate = asyncio.Event()

    async def handler(req):
        if req.path == "/first":
            out = await req.stream(200, [])
            await out.write(b"one")
            await gate.wait()
            await out.write(b"two")
            return None
        return await echo(req)

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        await asyncio.sleep(0.1)
        gate.set()
        status, _, body = await read_response(r)  # the stream is whole: no 100 Continue inside it
        assert status == 200 and body == b"onetwo"
        assert await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        w.write(b"hi")
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["body"] == "hi"
        w.close()


async def head_request_streams_no_body():
    async def handler(req):
        out = await req.stream(200, [("Content-Type", "text/plain")])
        await out.write(b"invisible")
        return None

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
        status, _, body = await read_response(r)  # the next response follows the head directly
        assert status == 200 and body == b"invisible"
        w.close()


async def pipelined_big_answers_wait_for_a_reader():
    answered = 0
    big = b"b" * (1 << 20)

    async def handler(req):
        nonlocal answered
        answered += 1
        return Response(200, big, content_type="application/octet-stream")

    async with serving(handler) as (server, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
        last = -1
        while answered != last:
            last = answered
            await asyncio.sleep(0.1)
        assert answered < 100  # not 200 MiB queued in the server for a client that does not read
        for _ in range(3):  # reading lets it continue
            assert (await read_response(r))[0] == 200
        w.close()


async def a_client_that_reads_nothing_is_let_go():
    outcome = []

    async def handler(req):
        if req.path == "/close":
            return Response(200, b"c" * (16 << 20), close=True)
        out = await req.stream(200, [])
        try:
            while True:
                await out.write(b"s" * 65536)
        except ConnectionResetError:
            outcome.append(req.disconnected)
        return None

    async with serving(handler, body_timeout=0.3) as (server, port):
        r, w = await connect(port)
        w.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        r2, w2 = await connect(port)
        w2.write(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while (server.connections or not outcome) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert outcome == [True] and server.connections == 0  # both let go, the stream's handler finished
        for writer in (w, w2):
            writer.close()


async def trailers_are_dropped_and_bounded():
    seen = []

    async def handler(req):
        seen.append((req.body, req.headers.get("authorization"), req.headers.items()))
        return await echo(req)

    async with serving(handler, max_body_bytes=1000, max_head_bytes=4096) as (_, port):
        r, w = await connect(port)
        w.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Test: t\r\n\r\n"
                b"3\r\nabc\r\n0\r\nAuthorization: Bearer smuggled\r\n\r\n")
        status, _, _ = await read_response(r)
        assert status == 200
        assert seen == [(b"abc", None, [("host", "x"), ("transfer-encoding", "chunked"), ("x-test", "t")])]
        w.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ")
        for _ in range(10):  # a trailer that never ends is not buffered without bound
            w.write(b"a" * 1000)
        status, _, body = await read_response(r)
        assert status == 413 and error_code(body) == "payload_too_large"
        w.close()


async def a_failing_error_responder_still_answers():
    for responder in (lambda req, status, code, message: 1 / 0,
                      lambda req, status, code, message: Response(status, b"{}", headers=[("X-Bad", "a\nb")]),
                      lambda req, status, code, message: "not a Response"):
        server = HttpServer(echo, error_response=responder, max_body_bytes=10, header_timeout=5, body_timeout=5)
        port = await server.start("127.0.0.1", 0)
        r, w = await connect(port)
        w.write(b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 400 and body == b"" and headers["connection"] == "close"
        w.close()
        await server.shutdown(1)


async def nothing_is_written_after_the_handler_is_done():
    late = []
    kept = []

    async def later(req):
        await asyncio.sleep(0.05)
        for attempt in (lambda: req.stream(200, []), lambda: kept[0].write(b"late")):
            try:
                await attempt()
            except RuntimeError:
                late.append("refused")

    async def handler(req):
        if req.path == "/first":
            kept.append(await req.stream(200, []))
            await kept[0].write(b"first")
            asyncio.get_running_loop().create_task(later(req))
            return None
        await asyncio.sleep(0.1)  # the late writes happen while this answer is pending
        return Response(200, b"second")

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(r))[2] == b"first"
        status, _, body = await read_response(r)
        assert status == 200 and body == b"second"
        w.close()
    assert late == ["refused", "refused"]


async def transfer_codings_other_than_chunked_are_refused():
    calls = []

    async def handler(req):
        calls.append(req.path)
        return await echo(req)

    refused = [
        # HTTP/1.0 has no chunked coding (RFC 9112 6.1): a 1.0 front end would take the body for the next request
        (b"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
         b"3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        # de-chunked, the body would still be gzip: not what the handler inspects and forwards
        (b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501,
         "not_implemented"),
        (b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nabc\r\n0\r\n\r\n",
         501, "not_implemented"),
    ]
    async with serving(handler) as (_, port):
        for raw, expected, code in refused:
            r, w = await connect(port)
            w.write(raw)
            status, headers, body = await read_response(r)
            assert (status, error_code(body), headers["connection"]) == (expected, code, "close"), raw
            assert await at_eof(r), raw
            w.close()
        r, w = await connect(port)  # chunked itself, in any case and with blanks around it, is fine
        w.write(b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["body"] == "abc"
        w.close()
    assert calls == ["/d"]


async def a_pipelined_head_is_bounded_too():
    big = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60000
    async with serving(max_head_bytes=4096) as (_, port):
        for rest in (None, b"\r\n\r\n"):  # the big head whole in the read that ends the first request, or not
            r, w = await connect(port)
            w.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + big + (b"\r\n\r\n" if rest is None else b""))
            if rest is not None:
                await asyncio.sleep(0.05)
                w.write(rest)
            assert (await read_response(r))[0] == 200
            status, _, body = await read_response(r)
            assert status == 431 and error_code(body) == "headers_too_large", rest
            assert await at_eof(r)
            w.close()


async def a_repeated_host_is_400():
    async with serving() as (_, port):
        r, w = await connect(port)
        w.write(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
        status, _, body = await read_response(r)
        assert status == 400 and error_code(body) == "invalid_request"
        assert await at_eof(r)
        w.close()


def _calls_recorder(calls: list[str]):
    """An echo handler that also notes each path it was called for."""
    async def handler(req):
        calls.append(req.path)
        return await echo(req)
    return handler


async def assert_refused_and_closed(r: asyncio.StreamReader) -> None:
    """The next answer is a 400 ``invalid_request`` given once the head was read, then the server closes."""
    status, headers, body = await read_response(r)
    assert (status, error_code(body), headers["connection"]) == (400, "invalid_request", "close")
    assert orjson.loads(body)["error"]["parsed"]  # refused for what the head says, not as unparsable
    assert await at_eof(r)


async def an_http_1_1_request_without_host_is_400():
    # RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request that lacks Host
    calls = []
    async with serving(_calls_recorder(calls)) as (_, port):
        r, w = await connect(port)
        w.write(b"GET /nohost HTTP/1.1\r\nX-Test: t\r\n\r\n")
        await assert_refused_and_closed(r)
        w.close()
    assert calls == []


async def host_is_required_of_http_1_1_only():
    # HTTP/1.0 made Host optional: such a request is answered, and the connection kept; the same
    # request as HTTP/1.1 on that connection is refused
    calls = []
    async with serving(_calls_recorder(calls)) as (_, port):
        r, w = await connect(port)
        w.write(b"GET /nohost HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["version"] == "1.0"
        assert headers["connection"] == "keep-alive"
        w.write(b"GET /nohost HTTP/1.1\r\n\r\n")
        await assert_refused_and_closed(r)
        w.close()
    assert calls == ["/nohost"]


async def a_pipelined_request_without_host_is_400_after_the_one_before():
    calls = []
    gate = asyncio.Event()

    async def handler(req):
        await gate.wait()  # still busy with /good when the Host-less head is parsed
        return await _calls_recorder(calls)(req)

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        w.write(b"GET /good HTTP/1.1\r\nHost: x\r\n\r\nGET /nohost HTTP/1.1\r\nX-Test: t\r\n\r\n")
        await asyncio.sleep(0.1)
        gate.set()
        status, _, body = await read_response(r)
        assert status == 200 and orjson.loads(body)["path"] == "/good"
        await assert_refused_and_closed(r)
        w.close()
    assert calls == ["/good"]


async def absolute_form_targets_route_on_their_path():
    async with serving() as (_, port):
        r, w = await connect(port)
        for target, path, query in ((b"http://gw.example:8080/v1/x?a=1", "/v1/x", "a=1"),
                                    (b"HTTPS://gw.example", "/", ""), (b"http://gw.example?b", "/", "b")):
            w.write(b"GET %s HTTP/1.1\r\nHost: gw.example\r\n\r\n" % target)
            status, _, body = await read_response(r)
            got = orjson.loads(body)
            assert status == 200 and (got["path"], got["query"]) == (path, query), target
        w.close()
        for target in (b"ftp://gw.example/v1/x", b"http://user:pw@gw.example/v1/x"):
            r, w = await connect(port)
            w.write(b"GET %s HTTP/1.1\r\nHost: gw.example\r\n\r\n" % target)
            assert (await read_response(r))[0] == 400, target
            w.close()


async def continue_is_sent_only_to_the_request_that_asked():
    gate = asyncio.Event()

    async def handler(req):
        if req.path == "/first":
            await gate.wait()
        return await echo(req)

    async with serving(handler) as (_, port):
        r, w = await connect(port)
        # /second asks for 100 Continue but sends its body at once; /third (HTTP/1.0) asks for nothing
        w.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"
                b"POST /third HTTP/1.0\r\nContent-Length: 2\r\n\r\nh")
        await asyncio.sleep(0.05)
        gate.set()
        for path in ("/first", "/second"):
            status, _, body = await read_response(r)
            assert status == 200 and orjson.loads(body)["path"] == path
        await asyncio.sleep(0.05)
        w.write(b"o")
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 "), head  # never a 1xx to an HTTP/1.0 client (RFC 9110 15.2)
        w.close()


SCENARIOS = [keep_alive_reuse, connection_close_both_ways, http_1_0, pipelining_in_order, chunked_request_body,
             expect_100_continue, body_too_large_declared_and_streamed, stalled_body_is_408, slow_head_closed,
             idle_keep_alive_closed, head_too_large_is_431_or_414, malformed_is_400, streaming_chunked,
             stream_handler_failing_midway_truncates, backpressure_bounds_the_buffer, disconnect_mid_stream,
             shutdown_drains, shutdown_waits_for_handlers_past_their_connections,
             header_injection_refused, date_and_server_headers, limits_swapped_at_runtime,
             bad_handler_results_are_500, pipelined_continue_waits_for_the_answer_before_it,
             head_request_streams_no_body, pipelined_big_answers_wait_for_a_reader,
             a_client_that_reads_nothing_is_let_go, trailers_are_dropped_and_bounded,
             a_failing_error_responder_still_answers, nothing_is_written_after_the_handler_is_done,
             transfer_codings_other_than_chunked_are_refused, a_pipelined_head_is_bounded_too, a_repeated_host_is_400,
             an_http_1_1_request_without_host_is_400, host_is_required_of_http_1_1_only,
             a_pipelined_request_without_host_is_400_after_the_one_before,
             absolute_form_targets_route_on_their_path, continue_is_sent_only_to_the_request_that_asked]


def run(loop: str, coro) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(asyncio.wait_for(coro, 15))


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_http(scenario, loop):
    run(loop, scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_handler_exception_is_500_and_logged_by_type_only(loop, caplog):
    run(loop, handler_exception_is_500(caplog))


# --- pure parts ------------------------------------------------------------------------------------------
def test_headers_lookup_and_the_authenticator_reading_them():
    h = Headers([(b"Authorization", b"Bearer abc"), (b"X-Caf\xe9", b"cr\xe8me"), (b"x-dup", b"1"), (b"X-Dup", b"2")])
    assert h.get("authorization") == "Bearer abc" and h.get("AUTHORIZATION") == "Bearer abc"
    assert h.get("x-café") == "crème" and h.get("nope") is None and h.get("nope", "d") == "d"
    assert h.get("x-dup") == "1" and h.getall("X-DUP") == ["1", "2"] and h.getall("none", []) == []
    assert "x-dup" in h and "X-Dup" in h and "x-du" not in h
    assert h.items() == [("authorization", "Bearer abc"), ("x-café", "crème"), ("x-dup", "1"), ("x-dup", "2")]
    assert "abc" not in repr(h)
    assert _one_header(h, "authorization") == "Bearer abc"
    with pytest.raises(AuthError):  # a repeated credential header is ambiguous
        _one_header(Headers([(b"authorization", b"a"), (b"Authorization", b"b")]), "authorization")


def test_query_param_decoding():
    async def parse():
        seen = {}

        async def handler(req):
            seen.update(path=req.path, a=req.query_param("a"), b=req.query_param("b"), c=req.query_param("c"),
                        raw=req.query)
            return Response(204)

        async with serving(handler) as (_, port):
            r, w = await connect(port)
            w.write(b"GET /p%20q?a=x%20y&b=1+2&a=second#frag HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = await read_response(r)
            assert status == 204 and body == b"" and "content-length" not in headers
            w.close()
        return seen

    seen = asyncio.run(parse())
    assert seen == {"path": "/p%20q", "a": "x y", "b": "1 2", "c": None, "raw": "a=x%20y&b=1+2&a=second"}


# --- any split of a pipelined byte stream gives the same answers ------------------------------------------
class _Transport(asyncio.Transport):
    """An in-memory transport: what the server writes, and whether it paused or closed."""

    def __init__(self):
        super().__init__()
        self.out = bytearray()
        self.paused = False
        self.closed = False

    def write(self, data):
        self.out += data

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def get_write_buffer_size(self):
        return 0

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    abort = close


def _pipelined() -> tuple[bytes, list[bytes]]:
    """Requests of every framing, and the bodies the handler must see, in order."""
    reqs = [b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: one\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET /e HTTP/1.1\r\nHost: x\r\nX-Test: two\r\n\r\n"]
    return b"".join(reqs), [b"", b"hello world", b"abcde", b"", b""]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(_pipelined()[0]) - 1), max_size=12, unique=True))
def test_any_split_of_a_pipelined_stream_gives_the_same_answers(cuts):
    data, bodies = _pipelined()
    pieces = [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])]
    seen = []

    async def handler(req):
        seen.append((req.path, req.body))
        await asyncio.sleep(0)
        return Response(200, req.body or b"-")

    async def feed() -> bytes:
        server = HttpServer(handler, error_response=errors, max_body_bytes=100, header_timeout=5, body_timeout=5)
        server._loop = asyncio.get_running_loop()
        conn = _Connection(server)
        t = _Transport()
        conn.connection_made(t)
        for piece in pieces:
            while t.paused:  # the server reads nothing more while it answers: as a socket would
                await asyncio.sleep(0)
            conn.data_received(piece)
            await asyncio.sleep(0)
        for _ in range(50):
            await asyncio.sleep(0)
        conn.connection_lost(None)
        return bytes(t.out)

    out = asyncio.run(feed())
    assert seen == list(zip(["/a", "/b", "/c", "/d", "/e"], bodies))
    answers = out.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == 5 and not out.startswith(b"HTTP/1.1 100")
    for answer, body in zip(answers, bodies):
        assert answer.endswith(b"\r\n\r\n" + (body or b"-"))
