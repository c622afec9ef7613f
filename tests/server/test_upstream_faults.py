"""The gateway in front of an upstream that misbehaves byte by byte: a raw asyncio server on loopback
stands in for both stub upstreams of the harness. Whatever the upstream does, the caller gets an error
in its own dialect (a 502, or the stream's error event — never a fake normal ending), the audit record
says ``upstream_error``, and the next request through the same pool works."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiohttp
import orjson
import pytest

import gateway.testing.stub as stub_module
from gateway.testing.harness import Harness


# --- the upstream ----------------------------------------------------------------------------------------
def chat_events(finish: bool = True) -> list[bytes]:
    """An OpenAI chat stream; without ``finish``, cut before the finish_reason chunk and [DONE]."""
    def chunk(delta: dict, reason=None) -> bytes:
        return b"data: " + orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                         "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}) + b"\n\n"
    out = [chunk({"role": "assistant", "content": ""}), chunk({"content": "um"}), chunk({"content": " dois"})]
    return out + [chunk({}, "stop"), b"data: [DONE]\n\n"] if finish else out


def message_events(finish: bool = True) -> list[bytes]:
    """An Anthropic Messages stream; without ``finish``, cut before message_delta and message_stop."""
    def ev(obj: dict) -> bytes:
        return b"event: " + obj["type"].encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"
    out = [ev({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                                     "content": [], "stop_reason": None, "stop_sequence": None,
                                                     "usage": {"input_tokens": 1, "output_tokens": 0}}}),
           ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
           ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "um dois"}}),
           ev({"type": "content_block_stop", "index": 0})]
    return out + [ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                      "usage": {"output_tokens": 2}}), ev({"type": "message_stop"})] if finish else out


def answer(path: bytes, stream: bool, finish: bool = True) -> bytes:
    """A whole answer body in the dialect of the request ``path``."""
    anthropic = path.endswith(b"/messages")
    if stream:
        return b"".join(message_events(finish) if anthropic else chat_events(finish))
    if anthropic:
        return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                             "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                             "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}})
    return orjson.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                      "finish_reason": "stop"}]})


def head(stream: bool, framing: bytes) -> bytes:
    ctype = b"text/event-stream" if stream else b"application/json"
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\n" + framing + b"\r\n"


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of a FIN."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultUpstream:
    """Answers every request properly (keep-alive, chunked SSE or Content-Length JSON) except the next
    one after ``fault`` is set: ``fault(writer, path, stream)`` writes what it likes and returns
    whether the connection stays open."""

    def __init__(self):
        self.fault = None
        self.connections = 0
        self.requests = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
                length = next(int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k.lower() == b"content-length")
                stream = bool(orjson.loads(await reader.readexactly(length)).get("stream"))
                path = lines[0].split(b" ")[1]
                self.requests += 1
                fault, self.fault = self.fault, None
                if fault is not None:
                    if not await fault(writer, path, stream):
                        return
                    continue
                body = answer(path, stream)
                if stream:
                    writer.write(head(True, b"Transfer-Encoding: chunked\r\n") + chunked(body) + b"0\r\n\r\n")
                else:
                    writer.write(head(False, b"Content-Length: %d\r\n" % len(body)) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> "FaultUpstream":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self._server.close()
        for w in self._writers:
            w.transport.abort()


@pytest.fixture
async def gw(tmp_path, monkeypatch):
    """The harness's gateway with ``gw.upstream`` (a FaultUpstream) in place of both stubs."""
    upstream = await FaultUpstream().start()

    async def start_stub(host, port, residency, record=None):
        return upstream

    monkeypatch.setattr(stub_module, "start_stub", start_stub)
    async with Harness(tmp_path, limits={"upstream_timeout_s": 0.5}) as h:
        h.upstream = upstream
        yield h
    await upstream.close()


# --- the caller --------------------------------------------------------------------------------------------
# (caller dialect, model): gpt-4o goes to an OpenAI-dialect upstream, claude-sonnet-4 first to an
# Anthropic-dialect one; crossed, the gateway translates
SAME = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4")]
CROSSED = [("openai", "claude-sonnet-4"), ("anthropic", "gpt-4o")]


async def call(h: Harness, dialect: str, model: str, stream: bool) -> tuple[int, "CIMultiDict", bytes]:
    """One request in ``dialect``: status, headers and the whole body as received (a cut body too)."""
    if dialect == "anthropic":
        url, headers = h.url + "/v1/messages", {"x-api-key": h.keys["br"], "anthropic-version": "2023-06-01"}
    else:
        url, headers = h.url + "/v1/chat/completions", {"Authorization": f"Bearer {h.keys['br']}"}
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "olá"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as r:
            data = b""
            try:
                async for piece in r.content.iter_any():
                    data += piece
            except aiohttp.ClientPayloadError:
                pass
            return r.status, r.headers.copy(), data


async def outcome(h: Harness, request_id: str) -> str:
    """The audit record's outcome for ``request_id`` (records are written at the end of a loop turn)."""
    for _ in range(50):
        for f in h.audit_files():
            for line in f.read_bytes().splitlines():
                if request_id.encode() in line:
                    return orjson.loads(line)["outcome"]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no audit record for {request_id}")


async def still_works(h: Harness, dialect: str, model: str, stream: bool) -> None:
    """A normal request right after the fault: the pool was not poisoned."""
    status, headers, data = await call(h, dialect, model, stream)
    assert status == 200, data
    # the model's first upstream, not a fallback to the next candidate
    assert headers["X-Soberana-Route"] == ("foreign-anthropic" if model.startswith("claude") else "foreign-openai")
    if stream:
        assert data.endswith(b"data: [DONE]\n\n" if dialect == "openai" else b'data: {"type":"message_stop"}\n\n')
    else:
        assert orjson.loads(data)
    assert await outcome(h, headers["X-Request-Id"]) == "forwarded"


def ends_with_error_event(dialect: str, data: bytes) -> bool:
    last = data.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    if not last.startswith(b"event: error\ndata: "):
        return False
    err = orjson.loads(last.split(b"data: ", 1)[1])
    return (err["error"]["code"] == "upstream_error") and (err["type"] == "error")


# --- streams that stop before their end ----------------------------------------------------------------------
@pytest.mark.parametrize("dialect,model", SAME + CROSSED)
@pytest.mark.parametrize("framing", ["chunked", "until-eof"])
async def test_a_stream_cut_cleanly_before_its_end_ends_with_the_error_event(gw, dialect, model, framing):
    async def cut(writer, path, stream):
        body = answer(path, stream, finish=False)  # no finish_reason/[DONE], no message_stop
        if framing == "chunked":  # the HTTP body is complete (last chunk and all): only the stream is cut
            writer.write(head(True, b"Transfer-Encoding: chunked\r\n") + chunked(body) + b"0\r\n\r\n")
            await writer.drain()
            return True
        writer.write(head(True, b"Connection: close\r\n") + body)  # a body framed by EOF, then a clean FIN
        await writer.drain()
        return False

    gw.upstream.fault = cut
    status, headers, data = await call(gw, dialect, model, True)
    assert status == 200 and ends_with_error_event(dialect, data), data[-300:]
    assert b"[DONE]" not in data and b"message_stop" not in data, "no made-up normal ending"
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"
    await still_works(gw, dialect, model, True)


@pytest.mark.parametrize("dialect,model", SAME)
async def test_a_connection_that_breaks_after_the_streams_end_adds_no_error_event(gw, dialect, model):
    async def complete_then_reset(writer, path, stream):
        # the whole stream, its normal ending included, but never the last chunk of the HTTP body
        writer.write(head(True, b"Transfer-Encoding: chunked\r\n") + chunked(answer(path, stream)))
        await writer.drain()
        await asyncio.sleep(0.05)
        rst(writer)
        return False

    gw.upstream.fault = complete_then_reset
    status, headers, data = await call(gw, dialect, model, True)
    assert status == 200 and b"event: error" not in data, "the Anthropic SDK would raise on a whole answer"
    assert data.endswith(b"data: [DONE]\n\n" if dialect == "openai" else b'data: {"type":"message_stop"}\n\n')
    assert await outcome(gw, headers["X-Request-Id"]) == "forwarded"
    await still_works(gw, dialect, model, True)


# --- framing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect,model", SAME)
@pytest.mark.parametrize("stream", [False, True])
async def test_bytes_past_the_content_length_do_not_reach_the_caller_or_the_next_request(gw, dialect, model, stream):
    async def too_long(writer, path, s):
        body = answer(path, s)
        # a well-framed answer, then the start of another one in the same segment
        writer.write(head(s, b"Content-Length: %d\r\n" % len(body)) + body + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
        await writer.drain()
        return True

    gw.upstream.fault = too_long
    status, headers, data = await call(gw, dialect, model, stream)
    assert status == 200
    assert data.endswith(b"[DONE]\n\n" if dialect == "openai" else b'{"type":"message_stop"}\n\n') if stream else orjson.loads(data)
    assert await outcome(gw, headers["X-Request-Id"]) == "forwarded"
    await still_works(gw, dialect, model, stream)  # was a 503: the pooled connection's parser sat mid-answer


# --- no answer -------------------------------------------------------------------------------------------------
async def hang(writer, path, stream):
    await asyncio.sleep(2)  # past upstream_timeout_s (0.5 s here)
    return False


async def reset_before_answering(writer, path, stream):
    rst(writer)
    return False


async def answer_500(writer, path, stream):
    body = b'{"error": {"message": "overloaded", "type": "server_error"}}'
    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                 % (len(body), body))
    await writer.drain()
    return True


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fault", [hang, reset_before_answering, answer_500])
async def test_the_only_compliant_upstream_failing_after_the_request_went_out_is_a_502(gw, dialect, stream, fault):
    # gpt-4o has one upstream: no fallback hides the failure (a crossed dialect for Anthropic callers)
    gw.upstream.fault = fault
    status, headers, data = await call(gw, dialect, "gpt-4o", stream)
    assert status == 502, data  # was a 503 no_compliant_upstream, as if no upstream had been tried
    err = orjson.loads(data)
    assert err["error"]["code"] == "upstream_error" and (err.get("type") == "error") == (dialect == "anthropic")
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"  # was "rejected"
    await still_works(gw, dialect, "gpt-4o", stream)


# --- answers of a shape no dialect has ----------------------------------------------------------------------
def answering(body: bytes, status: bytes = b"200 OK"):
    """A fault that answers ``body`` (SSE or JSON as asked) with ``status``, keeping the connection."""
    async def fault(writer, path, stream):
        ctype = b"text/event-stream" if stream else b"application/json"
        writer.write(b"HTTP/1.1 %b\r\nContent-Type: %b\r\nContent-Length: %d\r\n\r\n%b" % (status, ctype, len(body), body))
        await writer.drain()
        return True
    return fault


@pytest.mark.parametrize("dialect,model", SAME + CROSSED)
@pytest.mark.parametrize("body", [b"[1, 2]", b'{"choices": "none", "content": 5}'])
async def test_a_json_answer_of_an_unexpected_shape_is_a_502_not_a_crash(gw, dialect, model, body):
    if body.startswith(b"{") and (dialect, model) in SAME:
        pytest.skip("an object relayed in the caller's own dialect goes on as it came")
    gw.upstream.fault = answering(body)
    status, headers, data = await call(gw, dialect, model, False)
    assert status == 502 and orjson.loads(data)["error"]["code"] == "upstream_error", data  # was 200 or a 500
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"
    await still_works(gw, dialect, model, False)


@pytest.mark.parametrize("dialect,model", CROSSED)
async def test_a_streamed_event_the_translator_cannot_read_ends_the_stream_with_the_error_event(gw, dialect, model):
    odd = (b'event: message_start\ndata: {"type": "message_start", "message": "not an object"}\n\n' if model.startswith("claude")
           else b'data: {"choices": [{"index": 0, "delta": "not an object"}]}\n\n')
    gw.upstream.fault = answering(odd)
    status, headers, data = await call(gw, dialect, model, True)
    assert status == 200 and ends_with_error_event(dialect, data), data  # was a cut stream, audited as forwarded
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"
    await still_works(gw, dialect, model, True)


@pytest.mark.parametrize("dialect,model", SAME)
async def test_a_204_labelled_as_a_stream_is_not_relayed_with_a_body(gw, dialect, model):
    gw.upstream.fault = answering(b"", b"204 No Content")
    status, headers, data = await call(gw, dialect, model, True)  # (aiohttp refuses a 204 that has a body)
    assert status == 502 and orjson.loads(data)["error"]["code"] == "upstream_error"
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"
    await still_works(gw, dialect, model, True)


# --- an event without end ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect,model", SAME + CROSSED)
async def test_an_event_that_never_ends_is_cut_at_the_bound_with_the_error_event(gw, dialect, model, monkeypatch):
    monkeypatch.setattr("gateway.dialects.sse.MAX_EVENT_BYTES", 65536)  # (8 MiB in production)

    let_go = []

    async def endless_line(writer, path, stream):
        writer.write(head(True, b"Transfer-Encoding: chunked\r\n") + chunked(answer(path, True, finish=False)[:200]))
        try:
            for _ in range(256):  # 4 MiB of one line, never a line break (more than loopback buffers hold)
                writer.write(chunked(b"data: " + b"x" * 16384))
                await writer.drain()
        except ConnectionError:
            let_go.append(True)  # the gateway let go at the bound, before the upstream was done
        return False

    gw.upstream.fault = endless_line
    status, headers, data = await call(gw, dialect, model, True)
    assert status == 200 and ends_with_error_event(dialect, data), data[-300:]
    assert len(data) < 65536 and b"xxxx" not in data, "an unfinished event never reaches the caller"
    assert let_go, "the gateway kept reading (and holding) the event past the bound"
    assert await outcome(gw, headers["X-Request-Id"]) == "upstream_error"
    await still_works(gw, dialect, model, True)
