"""A request that outlives the drain still ends in the audit chain (SPEC section 9, DESIGN "Fail closed,
lose nothing"): the gateway stops while an upstream it already forwarded to has not answered; the
record is written before the final signed checkpoint closes the file, and the file verifies."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

import gateway.server.main as main_module
import gateway.testing.stub as stub_module
from gateway.audit.verify import verify_file
from gateway.keys import load_public_keys
from gateway.testing.harness import Harness

CHAT = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "um"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
MESSAGE = orjson.dumps({"id": "m1", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
                        "content": [{"type": "text", "text": "um"}], "stop_reason": "end_turn",
                        "usage": {"input_tokens": 1, "output_tokens": 1}})


class SlowUpstream:
    """Answers each request after ``delay`` seconds (never, with ``None``); ``got`` is set once a
    request has arrived."""

    def __init__(self, delay: float | None):
        self.delay = delay
        self.got = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            length = next(int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k.lower() == b"content-length")
            await reader.readexactly(length)
            self.got.set()
            if self.delay is None:
                await asyncio.Event().wait()
            await asyncio.sleep(self.delay)
            answer = MESSAGE if b"/messages" in lines[0] else CHAT
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(answer) + answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> "SlowUpstream":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self._server.close()
        for w in self._writers:
            w.transport.abort()


async def stop_during(tmp_path, monkeypatch, delay: float | None, model: str) -> dict:
    """One request to an upstream answering after ``delay``; the gateway stops once the upstream has it.
    The request's audit record, after checking that the audit file verifies and is closed."""
    upstream = await SlowUpstream(delay).start()

    async def start_stub(host, port, residency, record=None):
        return upstream

    monkeypatch.setattr(stub_module, "start_stub", start_stub)
    monkeypatch.setattr(main_module, "DRAIN_SECONDS", 0.3)  # the slow answer comes after the drain
    rid = "drain-test-1"
    try:
        async with Harness(tmp_path, limits={"upstream_timeout_s": 20}) as h:
            async def call():
                async with aiohttp.ClientSession() as s:
                    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "olá"}]}
                    headers = {"Authorization": f"Bearer {h.keys['br']}", "X-Request-Id": rid}
                    try:
                        async with s.post(h.url + "/v1/chat/completions", json=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=20)) as r:
                            await r.read()
                    except aiohttp.ClientError:
                        pass  # the drain closed the connection: expected

            caller = asyncio.create_task(call())
            await asyncio.wait_for(upstream.got.wait(), 10)
        await caller
    finally:
        await upstream.close()
    files = h.audit_files()
    assert len(files) == 1
    rep = verify_file(files[0], load_public_keys(tmp_path / "keys"))
    assert rep.ok and rep.closed
    recs = [orjson.loads(x) for x in files[0].read_bytes().splitlines() if rid.encode() in x]
    assert len(recs) == 1, "the request that reached the upstream has no audit record"
    return recs[0]


# gpt-4o has one compliant upstream; claude-sonnet-4 has a second one to fall back to
MODELS = pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4"])


@MODELS
async def test_an_answer_arriving_after_the_drain_deadline_is_still_recorded(tmp_path, monkeypatch, model):
    rec = await stop_during(tmp_path, monkeypatch, 1.0, model)
    assert rec["outcome"] == "forwarded" and rec["upstream"]["status"] == 200


@MODELS
async def test_a_handler_stuck_on_a_silent_upstream_is_cancelled_and_recorded_as_client_abort(tmp_path, monkeypatch, model):
    monkeypatch.setattr(main_module, "FINISH_SECONDS", 0.3, raising=False)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    rec = await stop_during(tmp_path, monkeypatch, None, model)
    assert rec["outcome"] == "client_abort"
    assert loop.time() - t0 < 10  # bounded by the drain and the finish time, not the upstream's 20 s timeout
