"""The pooled upstream client against real servers on 127.0.0.1: aiohttp apps and raw asyncio servers
that misbehave on purpose (close idle connections, reset mid-body, hang, speak garbage)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.forward.client import HIGH_WATER, UpstreamError, UpstreamPool

SECRET_BODY = b'{"messages": [{"role": "user", "content": "CPF 123.456.789-09"}]}'


# --- servers -------------------------------------------------------------------------------------------
async def aiohttp_server(routes, ssl_context=None):
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 request with a Content-Length body: (request line, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return lines[0], headers, body


class RawServer:
    """asyncio.start_server with a per-connection handler; counts connections and requests."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader, writer):
        self.connections += 1
        self.writers.append(writer)
        try:
            await self.handler(self, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        await self.server.wait_closed()


def rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- keep-alive and framing -----------------------------------------------------------------------------
async def test_keep_alive_reuses_one_connection_and_sends_the_right_head():
    peers, seen = set(), []

    async def echo(request: web.Request):
        peers.add(request.transport.get_extra_info("peername"))
        seen.append((request.path, dict(request.headers), await request.read()))
        return web.Response(body=b"echo:" + await request.read(), headers={"X-Upstream": "yes"})

    runner, port = await aiohttp_server([web.post("/v1/chat/completions", echo)])
    pool = UpstreamPool(f"http://127.0.0.1:{port}/v1")
    try:
        for i in range(5):
            resp = await pool.request("POST", "/chat/completions",
                                      [(b"authorization", b"Bearer sk-test"), (b"content-type", b"application/json"),
                                       (b"Host", b"evil.example"), (b"Connection", b"close")], b"body%d" % i)
            assert resp.status == 200
            assert resp.header(b"x-upstream") == b"yes", "header names are lower-case"
            assert await resp.read() == b"echo:body%d" % i
            resp.release()
        assert len(peers) == 1, "five requests, one connection"
        assert pool.stats == {"open": 1, "idle": 1, "in_use": 0}
        path, headers, body = seen[-1]
        assert path == "/v1/chat/completions"
        assert headers["Host"] == f"127.0.0.1:{port}", "the caller's Host header is replaced"
        assert headers["Content-Length"] == "5"
        assert headers["Authorization"] == "Bearer sk-test"
        assert "close" not in headers.get("Connection", "").lower(), "connection handling is the client's"
    finally:
        await pool.close()
        await runner.cleanup()


async def test_content_length_and_chunked_bodies():
    big = bytes(range(256)) * 1000

    async def fixed(request):
        return web.Response(body=big)

    async def chunked(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(big), 7000):
            await resp.write(big[i:i + 7000])
        await resp.write_eof()
        return resp

    runner, port = await aiohttp_server([web.get("/fixed", fixed), web.get("/chunked", chunked)])
    pool = UpstreamPool(f"http://127.0.0.1:{port}")
    try:
        for path in ("/fixed", "/chunked", "/fixed"):
            resp = await pool.request("GET", path, [], b"")
            if path == "/chunked":
                assert resp.header(b"transfer-encoding") == b"chunked"
                assert b"".join([c async for c in resp]) == big, "chunk framing removed"
            else:
                assert await resp.read() == big
            resp.release()
        assert pool.stats["open"] == 1, "both framings leave the connection reusable"
    finally:
        await pool.close()
        await runner.cleanup()


async def test_streaming_delivers_the_first_chunk_before_the_second_is_sent():
    may_send_second = asyncio.Event()

    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"9\r\ndata: one\r\n")
        await writer.drain()
        await may_send_second.wait()
        writer.write(b"9\r\ndata: two\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=5)
        resp = await pool.request("POST", "/stream", [], b"{}")
        it = aiter(resp)
        first = await anext(it)
        assert first == b"data: one" and not may_send_second.is_set()
        may_send_second.set()
        assert [c async for c in it] == [b"data: two"]
        resp.release()
        assert pool.stats["idle"] == 1
        await pool.close()


async def test_body_until_eof_when_the_response_has_no_length():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("GET", "/", [], b"")
        assert await resp.read() == b"all of it"
        resp.release()
        await asyncio.sleep(0)
        assert pool.stats["open"] == 0, "a connection: close answer is not kept"
        await pool.close()


@pytest.mark.parametrize("extra", [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",  # a head whose body is to come
                                   b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nbad",  # a whole answer
                                   b"GARBAGE"])
async def test_bytes_after_the_announced_length_neither_change_the_answer_nor_poison_the_pool(extra):
    async def handler(srv, reader, writer):
        while True:
            await read_request(reader)
            srv.requests += 1
            # more than Content-Length says, in the same segment as the answer
            writer.write(b"HTTP/1.1 201 Created\r\nX-First: 1\r\nContent-Length: 2\r\n\r\nok" + (extra if srv.requests == 1 else b""))
            await writer.drain()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=0.5)
        resp = await pool.request("POST", "/", [], b"{}")
        assert await resp.read() == b"ok"
        assert (resp.status, [k for k, _ in resp.headers]) == (201, [b"x-first", b"content-length"])
        resp.release()
        await asyncio.sleep(0)
        assert pool.stats["open"] == 0, "a connection that said more than it was asked is not reused"
        resp = await pool.request("POST", "/", [], b"{}")  # on a fresh connection, not the poisoned one
        assert resp.status == 201 and await resp.read() == b"ok"
        resp.release()
        assert (srv.connections, srv.requests) == (2, 2)
        await pool.close()


async def test_releasing_an_unread_body_closes_the_connection():
    async def handler(srv, reader, writer):
        while True:
            await read_request(reader)
            srv.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
            await writer.drain()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("GET", "/", [], b"")
        resp.release()
        resp.release()  # twice is harmless
        await asyncio.sleep(0.05)
        assert pool.stats == {"open": 0, "idle": 0, "in_use": 0}
        resp = await pool.request("GET", "/", [], b"")
        resp.release()
        assert srv.connections == 2, "the half-read connection was not reused"
        await pool.close()


# --- dead connections and the one retry ----------------------------------------------------------------------
async def test_idle_connection_closed_by_the_server_is_dropped_from_the_pool():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)  # then close the idle keep-alive connection, as servers do

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("GET", "/", [], b"")
        assert await resp.read() == b"ok"
        resp.release()
        assert pool.stats["idle"] == 1
        for _ in range(100):
            if pool.stats["open"] == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.stats == {"open": 0, "idle": 0, "in_use": 0}, "the peer's FIN removed it from the pool"
        resp = await pool.request("GET", "/", [], b"")
        assert await resp.read() == b"ok"
        resp.release()
        assert srv.connections == 2
        await pool.close()


async def test_reused_connection_closed_before_any_response_byte_is_retried_once_on_a_fresh_one():
    async def handler(srv, reader, writer):
        await read_request(reader)
        srv.requests += 1
        writer.write(OK)
        await writer.drain()
        await read_request(reader)  # the second request on this connection: close without a byte
        srv.requests += 1

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        for _ in range(2):
            resp = await pool.request("POST", "/", [], b"{}")
            assert await resp.read() == b"ok"
            resp.release()
        assert (srv.connections, srv.requests) == (2, 3), "second request: stale connection, then a retry"
        await pool.close()


async def test_fresh_connection_closed_before_answering_is_not_retried():
    async def handler(srv, reader, writer):
        await read_request(reader)
        srv.requests += 1  # and close without answering

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        with pytest.raises(UpstreamError) as e:
            await pool.request("POST", "/", [], SECRET_BODY)
        assert e.value.kind == "reset"
        assert srv.requests == 1, "a request on a fresh connection may have been processed: not re-sent"
        assert b"123.456" not in str(e.value).encode()
        await pool.close()


async def test_reused_connection_that_answered_partly_is_not_retried():
    async def handler(srv, reader, writer):
        await read_request(reader)
        srv.requests += 1
        writer.write(OK)
        await read_request(reader)
        srv.requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await writer.drain()
        rst(writer)

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("POST", "/", [], b"{}")
        await resp.read()
        resp.release()
        with pytest.raises(UpstreamError) as e:
            await pool.request("POST", "/", [], b"{}")
        assert e.value.kind == "reset"
        assert (srv.connections, srv.requests) == (1, 2)
        await pool.close()


# --- failures ---------------------------------------------------------------------------------------------------
async def test_reset_mid_body_raises_reset_after_the_bytes_that_arrived():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + SECRET_BODY)
        await writer.drain()
        await asyncio.sleep(0.1)
        rst(writer)

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("GET", "/", [], b"")
        got = []
        with pytest.raises(UpstreamError) as e:
            async for chunk in resp:
                got.append(chunk)
        assert e.value.kind == "reset"
        assert b"".join(got) == SECRET_BODY
        assert b"123.456" not in str(e.value).encode() and "123.456" not in repr(e.value), "no body in errors"
        resp.release()
        await asyncio.sleep(0)
        assert pool.stats["open"] == 0
        resp = await pool.request("GET", "/", [], b"")
        with pytest.raises(UpstreamError) as e:
            await resp.read()
        assert e.value.kind == "reset"
        resp.release()
        await pool.close()


async def test_a_server_that_never_answers_times_out_and_the_connection_is_closed():
    async def handler(srv, reader, writer):
        await read_request(reader)
        await reader.read()  # never answer

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=0.2)
        with pytest.raises(UpstreamError) as e:
            await pool.request("POST", "/", [], b"{}")
        assert e.value.kind == "timeout"
        await asyncio.sleep(0)
        assert pool.stats["open"] == 0
        await pool.close()


async def test_a_stream_that_stalls_times_out_per_read():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):  # keeps talking for longer than the read timeout in total, then stalls
            writer.write(b"2\r\nhi\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=0.25)
        resp = await pool.request("GET", "/", [], b"")
        got = b""
        with pytest.raises(UpstreamError) as e:
            async for chunk in resp:
                got += chunk
        assert e.value.kind == "timeout" and got == b"hihihi"
        resp.release()
        await pool.close()


async def test_connection_refused_is_a_connect_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    pool = UpstreamPool(f"http://127.0.0.1:{port}/v1", connect_timeout=2)
    with pytest.raises(UpstreamError) as e:
        await pool.request("POST", "/chat/completions", [], b"{}")
    assert e.value.kind == "connect"
    assert pool.stats["open"] == 0, "the slot is given back"
    await pool.close()


async def test_garbage_is_a_protocol_error():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"SMTP READY\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        with pytest.raises(UpstreamError) as e:
            await pool.request("GET", "/", [], b"")
        assert e.value.kind == "protocol"
        await pool.close()


async def test_cancelling_a_request_closes_its_connection():
    async def handler(srv, reader, writer):
        await read_request(reader)
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.request("GET", "/", [], b""), 0.1)
        await asyncio.sleep(0)
        assert pool.stats["open"] == 0
        await pool.close()


async def test_header_values_with_line_breaks_are_refused_without_echoing_them():
    pool = UpstreamPool("http://127.0.0.1:9/v1")
    with pytest.raises(ValueError) as e:
        await pool.request("POST", "/x", [(b"x-evil", b"a\r\nInjected: sk-secret")], b"")
    assert "sk-secret" not in str(e.value)
    for bad in ([(b"x-a", b"ok"), (b"x-b", b"nul\0")], [(b"x-name\n", b"v")], [(b"x", b"lf\nonly")]):
        with pytest.raises(ValueError):
            await pool.request("POST", "/x", bad, b"")
    with pytest.raises(ValueError):
        await pool.request("POST", "/x y", [], b"")
    await pool.close()


async def test_a_closed_pool_refuses_requests():
    pool = UpstreamPool("http://127.0.0.1:9")
    await pool.close()
    with pytest.raises(UpstreamError) as e:
        await pool.request("GET", "/", [], b"")
    assert e.value.kind == "connect"


# --- the bound and backpressure -------------------------------------------------------------------------------
async def test_pool_bound_is_respected_under_concurrency():
    inflight = peak = 0
    peers = set()

    async def slow(request):
        nonlocal inflight, peak
        peers.add(request.transport.get_extra_info("peername"))
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.02)
        inflight -= 1
        return web.Response(body=await request.read())

    runner, port = await aiohttp_server([web.post("/echo", slow)])
    pool = UpstreamPool(f"http://127.0.0.1:{port}", max_connections=3)
    max_open = 0

    async def one(i):
        nonlocal max_open
        resp = await pool.request("POST", "/echo", [], b"%d" % i)
        max_open = max(max_open, pool.stats["open"])
        body = await resp.read()
        resp.release()
        return body

    try:
        results = await asyncio.gather(*(one(i) for i in range(30)))
        assert results == [b"%d" % i for i in range(30)]
        assert peak <= 3 and len(peers) <= 3 and max_open <= 3
        assert peak == 3, "the pool did use all three connections"
        assert pool.stats == {"open": 3, "idle": 3, "in_use": 0}
    finally:
        await pool.close()
        await runner.cleanup()


async def test_waiting_for_a_free_connection_is_bounded():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")  # and the rest never comes
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, max_connections=1, read_timeout=0.2)
        held = await pool.request("GET", "/", [], b"")  # its connection stays in use
        with pytest.raises(UpstreamError) as e:
            await pool.request("GET", "/", [], b"")
        assert e.value.kind == "connect", "never sent, so another upstream may be tried"
        assert srv.connections == 1
        held.release()
        await pool.close()


async def test_a_slow_reader_pauses_the_socket_instead_of_buffering_everything():
    size = 16 * 1024 * 1024

    async def handler(srv, reader, writer):
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            block = b"z" * 65536
            for _ in range(size // len(block)):
                writer.write(block)
                await writer.drain()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=5)
        resp = await pool.request("GET", "/", [], b"")
        await asyncio.sleep(0.3)  # the server could send everything by now; the client must not take it
        conn = resp._conn
        assert conn.paused and conn.buffered < HIGH_WATER + 1024 * 1024
        total = 0
        async for chunk in resp:
            total += len(chunk)
        assert total == size
        resp.release()
        assert pool.stats["idle"] == 1
        resp = await pool.request("GET", "/", [], b"")
        await asyncio.sleep(0.3)  # paused again, then read() wants everything at once
        assert len(await resp.read()) == size
        resp.release()
        await pool.close()


# --- TLS ---------------------------------------------------------------------------------------------------------
def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_with_sni_and_verification(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    sni = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)

    async def hello(request):
        return web.Response(body=b"secure " + await request.read())

    runner, port = await aiohttp_server([web.post("/v1/x", hello)], ssl_context=server_ctx)
    trusted = ssl.create_default_context(cafile=str(cert))
    pool = UpstreamPool(f"https://localhost:{port}/v1", ssl_context=trusted)
    untrusted = UpstreamPool(f"https://localhost:{port}/v1")  # the system's CAs: must refuse
    try:
        for _ in range(2):
            resp = await pool.request("POST", "/x", [], b"hi")
            assert (resp.status, await resp.read()) == (200, b"secure hi")
            resp.release()
        assert pool.stats["open"] == 1, "TLS connections are kept alive too"
        assert sni == ["localhost"], "SNI names the host"
        with pytest.raises(UpstreamError) as e:
            await untrusted.request("POST", "/x", [], b"hi")
        assert e.value.kind == "connect" and "certificate" in str(e.value)
    finally:
        await pool.close()
        await untrusted.close()
        await runner.cleanup()


# --- smaller corners ------------------------------------------------------------------------------------------
async def test_interim_1xx_responses_are_skipped():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK)
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        resp = await pool.request("POST", "/", [], b"{}")
        assert resp.status == 200 and resp.header(b"link") is None
        assert await resp.read() == b"ok"
        resp.release()
        assert pool.stats["idle"] == 1
        await pool.close()


async def test_connections_idle_too_long_are_not_reused(monkeypatch):
    from gateway.forward import client

    async def handler(srv, reader, writer):
        while True:
            await read_request(reader)
            writer.write(OK)
            await writer.drain()

    monkeypatch.setattr(client, "IDLE_TTL", 0.05)
    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url)
        for _ in range(2):
            resp = await pool.request("GET", "", [], b"")  # the base path itself, as health probes ask
            assert await resp.read() == b"ok"
            resp.release()
            await asyncio.sleep(0.1)
        assert srv.connections == 2
        await pool.close()


async def test_head_requests_end_at_the_headers():
    async def handler(srv, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        pool = UpstreamPool(srv.url, read_timeout=1)
        resp = await pool.request("HEAD", "/", [], b"")
        assert resp.status == 200 and await resp.read() == b""
        resp.release()
        await pool.close()


async def test_read_with_a_limit_refuses_an_oversized_body():
    async def big(request):
        return web.Response(body=b"x" * 300_000)

    runner, port = await aiohttp_server([web.get("/big", big)])
    pool = UpstreamPool(f"http://127.0.0.1:{port}")
    try:
        resp = await pool.request("GET", "/big", [], b"")
        with pytest.raises(UpstreamError) as e:
            await resp.read(limit=100_000)
        assert e.value.kind == "protocol"
        resp.release()
        resp = await pool.request("GET", "/big", [], b"")
        assert len(await resp.read(limit=300_000)) == 300_000
        resp.release()
    finally:
        await pool.close()
        await runner.cleanup()


async def test_a_connect_that_hangs_times_out_as_a_connect_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once the tiny backlog is full, further SYNs go unanswered
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    pool = UpstreamPool(f"http://127.0.0.1:{port}", connect_timeout=0.3)
    try:
        with pytest.raises(UpstreamError) as e:
            await pool.request("GET", "/", [], b"")
        assert e.value.kind == "connect" and "timed out" in str(e.value)
        assert pool.stats["open"] == 0
    finally:
        await pool.close()
        for s in fillers:
            s.close()
        listener.close()
