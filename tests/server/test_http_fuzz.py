"""gateway.server.http against generated request streams, over real loopback sockets.

Each example is a keep-alive connection carrying well-formed requests of every framing (Content-Length
with leading zeros, chunked with upper- or lower-case hex, zero-padded sizes, chunk extensions and
trailers, Expect: 100-continue, HEAD, HTTP/1.0 keep-alive with or without Host (only 1.1 requires it),
origin-, absolute- and asterisk-form targets), optionally ended by one request the server must refuse
and by a request smuggled after it.
The stream is cut at random points into separate writes. The answers must be exactly framed, one per
request and in order, a refusal must carry the expected status and end the connection, and nothing
after it may be answered; the server must close every connection by itself (no hang).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import orjson
import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.server.http import HttpServer, Request, Response

MAX_BODY = 1000
MAX_HEAD = 4096
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


def _errors(req: Request | None, status: int, code: str, message: str) -> Response:
    return Response(status, orjson.dumps({"error": {"code": code}}))


async def _echo(req: Request) -> Response:
    return Response(200, orjson.dumps({"m": req.method, "p": req.path, "q": req.query,
                                       "b": req.body.decode("latin-1")}),
                    headers=[("X-N", req.headers.get("x-n") or "-")])


@pytest.fixture(scope="module")
def ports():
    """One server per event loop, each on its own thread, for the whole module."""
    started = {}
    threads = []
    for name, factory in (("asyncio", asyncio.new_event_loop), ("uvloop", uvloop.new_event_loop)):
        loop = factory()
        server = HttpServer(_echo, error_response=_errors, max_body_bytes=MAX_BODY, header_timeout=5,
                            body_timeout=5, keepalive_timeout=5, max_head_bytes=MAX_HEAD)
        ready = threading.Event()

        def serve(loop=loop, server=server, name=name, ready=ready):
            asyncio.set_event_loop(loop)
            started[name] = loop.run_until_complete(server.start("127.0.0.1", 0))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.shutdown(1))
            loop.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        ready.wait(10)
        threads.append((t, loop))
    yield started
    for t, loop in threads:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


# --- what the client sends -----------------------------------------------------------------------------
_SEGMENT = st.text("abcxyz0123456789-._~%", min_size=0, max_size=8)
_VALUE = st.binary(min_size=1, max_size=40).map(
    lambda b: bytes(c if c >= 0x20 and c != 0x7f or c == 0x09 else 0x61 for c in b).strip(b" \t") or b"v")


@st.composite
def _target(draw, method: str) -> tuple[bytes, str, str]:
    """(request target, the path and the query the handler must see)."""
    path = "/" + "/".join(draw(st.lists(_SEGMENT, max_size=3)))
    query = draw(st.one_of(st.none(), _SEGMENT))
    form = draw(st.sampled_from(["origin", "absolute", "asterisk"] if method == "OPTIONS" else ["origin", "absolute"]))
    if form == "asterisk":
        return b"*", "*", ""
    target = path + ("" if query is None else "?" + query)
    if form == "absolute":
        target = draw(st.sampled_from(["http://h.example", "HTTPS://h.example:8443"])) + target
    return target.encode(), path, query or ""


def _chunked(draw, body: bytes) -> bytes:
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=4, unique=True))) if body else []
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(body)]):
        if a >= b:
            continue
        size = draw(st.sampled_from(["%x", "%X", "000%x"])) % (b - a)
        ext = draw(st.sampled_from([b"", b";a=b", b';name="q v";x']))
        out.append(size.encode() + ext + b"\r\n" + body[a:b] + b"\r\n")
    trailers = draw(st.sampled_from([b"", b"X-Trailer: t\r\n", b"A: 1\r\nB: 2\r\n"]))
    return b"".join(out) + b"0\r\n" + trailers + b"\r\n"


@st.composite
def _request(draw, n: int, last: bool) -> tuple[bytes, dict]:
    """One well-formed request and what its answer must say."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    target, path, query = draw(_target(method))
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked"] if version == "1.1" else ["length"]))
    if not body and draw(st.booleans()):
        framing = "none"
    expect = version == "1.1" and draw(st.booleans())
    headers = [(b"X-N", b"%d" % n)]
    if version == "1.1" or draw(st.booleans()):  # exactly one Host: HTTP/1.1 requires it, 1.0 does not
        headers.append((draw(st.sampled_from([b"Host", b"host", b"HOST"])), b"h.example"))
    headers += draw(st.lists(st.tuples(st.sampled_from([b"X-A", b"x-b", b"Accept", b"User-Agent"]), _VALUE),
                             max_size=5))
    if expect:
        headers.append((b"Expect", b"100-continue"))
    if last:
        headers.append((b"Connection", b"close"))
    elif version == "1.0":
        headers.append((b"Connection", b"keep-alive"))
    if framing == "length":
        headers.append((b"Content-Length", draw(st.sampled_from([b"%d", b"0%d", b"00%d"])) % len(body)))
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
    headers = draw(st.permutations(headers))
    head = b"%s %s HTTP/%s\r\n" % (method.encode(), target, version.encode())
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
    payload = _chunked(draw, body) if framing == "chunked" else body
    return head + payload, {"n": str(n), "m": method, "p": path, "q": query, "b": body.decode("latin-1"),
                            "expect": expect}


_BAD = [  # (request, status): each one must be refused, and nothing after it read as a request
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b c\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: a\r\n folded\r\n\r\n",
     400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400),
    (b"GET / HTTP/0.9\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 400),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),  # no Host, which HTTP/1.1 requires (RFC 9112 3.2)
    (b"GET ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400),
    (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400),
    (b"GET /" + b"a" * (MAX_HEAD + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 256 + b"\r\n", 431),  # 257 fields, one over MAX_HEADERS
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1) + b"x" * (MAX_BODY + 1), 413),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"100\r\n" + b"x" * 256 + b"\r\n") * 5,
     413),
]


@st.composite
def _stream(draw, bad: tuple[bytes, int] | None = None) -> tuple[bytes, list[dict], int | None]:
    """(bytes, the well-formed requests' expected answers, the status of the refused one at the end);
    the refused one is ``bad`` if given, else drawn (or none)."""
    if bad is None:
        bad = draw(st.one_of(st.none(), st.sampled_from(_BAD)))
    count = draw(st.integers(0 if bad else 1, 4 if bad is None else 2))
    parts, expected = [], []
    for i in range(count):
        raw, answer = draw(_request(i, last=bad is None and i == count - 1))
        parts.append(raw)
        expected.append(answer)
    if bad is not None:
        parts.append(bad[0] + (SMUGGLED if draw(st.booleans()) else b""))
    return b"".join(parts), expected, bad and bad[1]


# --- what the client reads -----------------------------------------------------------------------------
def _exchange(port: int, data: bytes, cuts: list[int]) -> bytes:
    """Send ``data`` in pieces split at ``cuts``; everything the server sends until it closes."""
    cuts = sorted({c % len(data) for c in cuts} - {0})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for a, b in zip([0, *cuts], [*cuts, len(data)]):
            try:
                sock.sendall(data[a:b])
            except (BrokenPipeError, ConnectionResetError):
                break  # refused and closed before the rest was sent
            time.sleep(0.001)
        out = bytearray()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(f"no answer and no close within the server's deadlines: {bytes(out)!r}")
            if not got:
                return bytes(out)
            out += got
        return bytes(out)


def _responses(out: bytes, heads: list[bool]) -> list[tuple[int, dict[str, str], bytes, int]]:
    """Split the output into framed answers: (status, headers, body, 1xx lines before it). ``heads``
    says which answers are to HEAD requests (no body). Fails on anything not exactly framed."""
    answers, pos, interim = [], 0, 0
    while pos < len(out):
        end = out.find(b"\r\n\r\n", pos)
        assert end >= 0, f"an incomplete head: {out[pos:]!r}"
        lines = out[pos:end].decode("latin-1").split("\r\n")
        version, status, _ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        pos = end + 4
        if status.startswith("1"):
            assert lines == ["HTTP/1.1 100 Continue"], lines
            interim += 1
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(": ")
            assert sep and name.lower() not in headers, line
            headers[name.lower()] = value
        assert "transfer-encoding" not in headers and "content-length" in headers, headers
        length = int(headers["content-length"])
        if len(answers) < len(heads) and heads[len(answers)]:
            length = 0
        body = out[pos:pos + length]
        assert len(body) == length, "a body shorter than its Content-Length"
        pos += length
        answers.append((int(status), headers, body, interim))
        interim = 0
    return answers


def _check(port: int, stream: tuple[bytes, list[dict], int | None], cuts: list[int]) -> None:
    data, expected, refused = stream
    answers = _responses(_exchange(port, data, cuts), [e["m"] == "HEAD" for e in expected])
    assert len(answers) == len(expected) + (refused is not None), answers  # nothing smuggled answered
    for (status, headers, body, interim), want in zip(answers, expected):
        assert status == 200 and headers["x-n"] == want["n"], (status, body)
        assert interim <= (1 if want["expect"] else 0)  # a 100 only to the request that asked for it
        if want["m"] != "HEAD":
            got = orjson.loads(body)
            assert [got["m"], got["p"], got["q"], got["b"]] == [want["m"], want["p"], want["q"], want["b"]]
    last = answers[-1]
    assert last[1].get("connection") == "close"
    if refused is not None:
        assert last[0] == refused, (last[0], last[2])


_CUTS = st.lists(st.integers(1, 1 << 16), max_size=10)
_LOOPS = st.sampled_from(["asyncio", "uvloop"])
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


@settings(max_examples=150, deadline=None, suppress_health_check=_SLOW)
@given(stream=_stream(), cuts=_CUTS, loop=_LOOPS)
def test_generated_streams_are_answered_once_in_order_and_refusals_end_them(ports, stream, cuts, loop):
    _check(ports[loop], stream, cuts)


@pytest.mark.parametrize("bad", _BAD, ids=lambda b: repr(b[0][:40]) if isinstance(b, tuple) else None)
@settings(max_examples=4, deadline=None, suppress_health_check=_SLOW)
@given(data=st.data(), cuts=_CUTS, loop=_LOOPS)
def test_each_refused_shape_after_well_formed_requests(ports, bad, data, cuts, loop):
    _check(ports[loop], data.draw(_stream(bad)), cuts)
