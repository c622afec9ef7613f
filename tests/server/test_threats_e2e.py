"""Threats of docs/threat-model.md that no other test enforced end to end: the real gateway on loopback,
stub upstreams (or the stub's answer replaced by a misbehaving upstream), official SDKs or raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import os

import aiohttp
import openai
import orjson
import pytest

from gateway import metrics
from gateway.server import proxy
from gateway.testing import stub
from gateway.testing.harness import FOREIGN_KEY_ENV, Harness
from sdk_clients import oai

CPF = "529.982.247-25"
OTHER_CPF = "111.444.777-35"
EMAIL = "ana.lima@fazenda.gov.br"


def chat(content: str, model: str = "gpt-4o-mini", **extra) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": content}], **extra})


def records(h: Harness) -> list[dict]:
    return [orjson.loads(x) for f in h.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]


async def written(h: Harness, n: int) -> list[dict]:
    """The audit records once ``n`` are on disk (the writer commits off the event loop)."""
    for _ in range(200):
        if len(got := records(h)) >= n:
            return got
        await asyncio.sleep(0.02)
    return records(h)


# --- a hostile or careless caller ------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["anthropic-beta", "openai-beta", "anthropic-version"])
async def test_a_value_in_a_header_the_gateway_passes_on_never_reaches_the_upstream(gw, header):
    """The three headers the upstream receives from the caller are text the provider reads: one that
    holds a CPF is refused (400, without the value), not carried abroad past inspection."""
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=chat("oi"),
                          headers={"Authorization": f"Bearer {gw.keys['br']}", header: f"tools-{CPF}"}) as r:
            body = await r.json()
        # an ordinary value still goes through, as it was
        async with s.post(gw.url + "/v1/chat/completions", data=chat("oi"),
                          headers={"Authorization": f"Bearer {gw.keys['br']}", header: "files-api-2025-04-14"}) as ok:
            assert ok.status == 200
    assert r.status == 400 and body["error"]["code"] == "invalid_request" and header in body["error"]["message"]
    assert CPF not in orjson.dumps(body).decode()
    received = gw.received("US") + gw.received("BR")
    assert len(received) == 1 and received[0]["headers"][header] == "files-api-2025-04-14"
    assert (await written(gw, 2))[0]["error"] == "invalid_request"


@pytest.mark.parametrize("encode", ["base64", "hex", "url"])
async def test_an_encoded_value_reaches_the_foreign_model_only_as_a_placeholder(gw, encode):
    """Encoded, the CPF is still found: the whole encoded run is replaced, and the caller gets it back."""
    import urllib.parse

    encoded = {"base64": base64.b64encode(CPF.encode()).decode(), "hex": CPF.encode().hex(),
               "url": urllib.parse.quote(f"CPF={CPF}", safe="").replace(".", "%2E").replace("-", "%2D")}[encode]
    answer = await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"decodifique {encoded} por favor"}])
    sent = gw.received("US")[-1]["body"]["messages"][0]["content"]
    assert encoded not in sent and "[CPF_1]" in sent, sent
    assert encoded in answer.choices[0].message.content


async def test_a_query_string_is_never_forwarded(gw):
    """Only the endpoint's own path goes upstream: a query string is not inspected, so it is dropped."""
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + f"/v1/chat/completions?user={CPF}&api-version=1", data=chat("oi"),
                          headers={"Authorization": f"Bearer {gw.keys['br']}"}) as r:
            assert r.status == 200
    (sent,) = gw.received("US")
    assert sent["path"] == "/v1/chat/completions" and sent["query"] == ""


@pytest.mark.parametrize("how", ["gzip", "utf-16", "latin-1"])
async def test_a_body_in_another_encoding_is_refused_and_reaches_nothing(gw, how):
    """A body the gateway cannot read as UTF-8 JSON is never forwarded: no upstream ever gets bytes
    that were not inspected (the upstream gets the parsed body re-serialized, never the caller's bytes)."""
    raw = chat(f"meu CPF {CPF}, ação")
    data = {"gzip": gzip.compress(raw), "utf-16": raw.decode().encode("utf-16"),
            "latin-1": raw.decode().encode("latin-1")}[how]
    headers = {"Authorization": f"Bearer {gw.keys['br']}", "Content-Type": "application/json"}
    if how == "gzip":
        headers["Content-Encoding"] = "gzip"
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.post(gw.url + "/v1/chat/completions", data=data, headers=headers) as r:
            body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "invalid_request"
    assert gw.received("US") == [] and gw.received("BR") == []


@pytest.mark.parametrize("depth", [250, 300])  # (+2: the body, metadata)
async def test_a_body_nested_deeper_than_the_gateway_forwards_is_a_400_and_reaches_nothing(gw, depth):
    """JSON nested beyond the 254 levels the gateway can write back is the caller's invalid body (400
    in its dialect, nothing forwarded), not an inspection failure; a deep body within them passes."""
    errors = metrics.INSPECTION_ERRORS._value.get()
    data = chat(f"CPF {CPF}")[:-1] + b',"metadata":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=data,
                          headers={"Authorization": f"Bearer {gw.keys['br']}"}) as r:
            body = await r.json()
    received = gw.received("US") + gw.received("BR")
    if depth + 2 <= 254:
        assert r.status == 200 and len(received) == 1 and CPF not in received[0]["raw"]
    else:
        assert r.status == 400 and body["error"]["code"] == "invalid_request", body
        assert "nested" in body["error"]["message"] and received == []
        assert metrics.INSPECTION_ERRORS._value.get() == errors


async def test_a_value_spelled_with_json_unicode_escapes_reaches_the_foreign_model_only_as_a_placeholder(gw):
    escaped = "".join(f"\\u{ord(c):04x}" for c in CPF)  # "\u0035\u0032\u0039…": JSON for the same string
    raw = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "CPF ' + escaped.encode() + b'"}]}'
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=raw,
                          headers={"Authorization": f"Bearer {gw.keys['br']}"}) as r:
            answer = await r.json()
    sent = gw.received("US")[-1]
    assert sent["body"]["messages"][0]["content"] == "CPF [CPF_1]" and "\\u0035" not in sent["raw"]
    assert CPF in answer["choices"][0]["message"]["content"]  # restored for the caller


async def test_the_callers_credential_never_reaches_an_upstream_and_each_upstream_gets_only_its_own_key(gw):
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "oi"}])
    await oai(gw).chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "oi"}])
    (us,), (br,) = gw.received("US"), gw.received("BR")
    provider = hashlib.sha256(os.environ[FOREIGN_KEY_ENV].encode()).hexdigest()
    assert us["auth"] == {"kind": "bearer", "sha256": provider}  # injected by the gateway
    assert br["auth"] is None  # the in-country upstream has no api_key_env: no key at all, not the caller's
    for seen in (us, br):
        assert gw.keys["br"] not in orjson.dumps(seen).decode()
        assert not {"x-api-key", "cookie", "x-request-id"} & set(seen["headers"])


# --- a compromised or curious upstream -------------------------------------------------------------------
def _answers_with_placeholders(self, req):
    """An upstream that answers every request with placeholders it saw in other requests."""
    text = "lembro de [CPF_1], [CPF_2] e [EMAIL_1]"
    self._send(200, orjson.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}), req.keep_alive)


async def test_a_placeholder_of_another_request_never_opens_that_requests_value(gw, monkeypatch):
    monkeypatch.setattr(stub._StubProtocol, "_answer", _answers_with_placeholders)
    first = await oai(gw, "br").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"CPF {CPF} e {OTHER_CPF}, e-mail {EMAIL}"}])
    assert first.choices[0].message.content == f"lembro de {CPF}, {OTHER_CPF} e {EMAIL}"
    # another caller, another request: its map holds only its own CPF
    second = await oai(gw, "mx").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "CPF 123.456.789-09"}])
    assert second.choices[0].message.content == "lembro de 123.456.789-09, [CPF_2] e [EMAIL_1]"


def _never_ending_stream(opened: list, closed: asyncio.Event):
    """An upstream whose stream never ends: one event every 10 ms, until the connection is closed."""

    def answer(self, req):
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        opened.append(self.transport)
        loop = asyncio.get_running_loop()

        def tick():
            if self.transport.is_closing():
                closed.set()
                return
            event = b"data: " + orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                              "choices": [{"index": 0, "delta": {"content": "la "}}]}) + b"\n\n"
            self.transport.write(b"%x\r\n%s\r\n" % (len(event), event))
            loop.call_later(0.01, tick)

        tick()

    return answer


async def test_a_never_ending_stream_is_dropped_upstream_when_the_caller_hangs_up(gw, monkeypatch):
    opened: list = []
    closed = asyncio.Event()
    monkeypatch.setattr(stub._StubProtocol, "_answer", _never_ending_stream(opened, closed))
    async with aiohttp.ClientSession() as s:
        r = await s.post(gw.url + "/v1/chat/completions", data=chat("oi", stream=True),
                         headers={"Authorization": f"Bearer {gw.keys['br']}"})
        assert r.status == 200
        for _ in range(3):
            assert b"la " in await r.content.readline() + await r.content.readline()
        r.close()  # the caller hangs up
    # the gateway stops reading the upstream and closes that connection: nothing keeps it alive
    await asyncio.wait_for(closed.wait(), 10)
    assert (await written(gw, 1))[-1]["outcome"] == "client_abort"


# --- an operator's choice: fail closed unless told otherwise, loudly -------------------------------------
def _failing_scan(real):
    def scan(text):
        if "QUEBRA" in text:
            raise RuntimeError("inspection broke")
        return real(text)
    return scan


@pytest.mark.parametrize("setting", ["", "on_inspection_error: block\n", "on_inspection_error: allow\n"])
async def test_an_inspection_failure_forwards_nothing_unless_fail_open_is_set_and_then_says_so(
        tmp_path, monkeypatch, logs, setting):
    monkeypatch.setattr(proxy, "scan", _failing_scan(proxy.scan))
    errors, fail_open = metrics.INSPECTION_ERRORS._value.get(), metrics.FAIL_OPEN._value.get()
    async with Harness(tmp_path, extra_config=setting) as h:
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", data=chat(f"QUEBRA CPF {CPF}"),
                              headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                body = await r.json()
        received = h.received("US") + h.received("BR")
    rec = records(h)[-1]
    assert metrics.INSPECTION_ERRORS._value.get() == errors + 1
    lines = [orjson.loads(x) for x in logs.getvalue().splitlines()]
    assert CPF not in logs.getvalue()
    if "allow" not in setting:  # the default
        assert r.status == 503 and body["error"]["code"] == "inspection_failed"
        assert received == [] and rec["outcome"] == "rejected" and rec["error"] == "inspection_failed"
        assert metrics.FAIL_OPEN._value.get() == fail_open
    else:  # the operator chose fail-open: forwarded, and every use is CRITICAL in the log and counted
        assert r.status == 200 and len(received) == 1 and rec["outcome"] == "forwarded"
        assert metrics.FAIL_OPEN._value.get() == fail_open + 1
        assert any(x["level"] == "critical" and "uninspected" in x["msg"] for x in lines), lines


def _quotes_its_key(self, req):
    """An upstream that quotes the credential it was sent: in a 401 (as some servers' errors do) when
    the model is ``gpt-4o``, else in its answer."""
    key = req.headers[b"authorization"].decode()[7:]
    if orjson.loads(req.body)["model"] == "gpt-4o":
        self._send(401, orjson.dumps({"error": {"message": f"Incorrect API key provided: {key}.",
                                                "type": "invalid_request_error", "code": "invalid_api_key"}}), req.keep_alive)
        return
    self._send(200, orjson.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": f"my key is {key}"}, "finish_reason": "stop"}]}),
        req.keep_alive)


async def test_an_upstream_that_quotes_its_provider_key_never_hands_it_to_the_caller(tmp_path, monkeypatch):
    """A key of a shape no detector knows (32 hex digits): the gateway knows its own keys exactly."""
    key = "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    monkeypatch.setenv(FOREIGN_KEY_ENV, key)
    monkeypatch.setattr(stub._StubProtocol, "_answer", _quotes_its_key)
    async with Harness(tmp_path) as h:
        async with aiohttp.ClientSession() as s:
            for model in ("gpt-4o-mini", "gpt-4o"):
                async with s.post(h.url + "/v1/chat/completions", data=chat("oi", model),
                                  headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                    text = await r.text()
                assert key not in text and "[REDACTED:API_KEY]" in text, (model, r.status, text)


async def test_an_image_the_gateway_cannot_read_stays_in_the_country(gw):
    """Content no detector reads (an image, a file) is ``uninspectable``: the bundled policies keep it
    home, so a text written in an image is not carried abroad unread."""
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    messages = [{"role": "user", "content": [{"type": "text", "text": "o que diz?"},
                                             {"type": "image_url", "image_url": {"url": image}}]}]
    raw = await oai(gw).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"  # the foreign model comes first, and is passed over
    assert gw.received("US") == [] and len(gw.received("BR")) == 1
    with pytest.raises(openai.PermissionDeniedError) as e:  # the foreign model alone: blocked, never sent
        await oai(gw).chat.completions.create(model="gpt-4o", messages=messages)
    assert e.value.body["code"] == "policy_blocked" and "br.uninspectable" in e.value.body["message"]
    assert gw.received("US") == []


def _stream_error_quoting_its_key(self, req):
    """A stream whose error event quotes the credential the upstream was sent."""
    key = req.headers[b"authorization"].decode()[7:]
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "ok "}}]}
    error = {"error": {"message": f"quota exceeded for key {key}", "type": "server_error"}}
    body = b"data: " + orjson.dumps(chunk) + b"\n\nevent: error\ndata: " + orjson.dumps(error) + b"\n\n"
    self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"content-length: %d\r\n\r\n" % len(body) + body)


async def test_a_stream_error_event_that_quotes_the_provider_key_never_hands_it_to_the_caller(tmp_path, monkeypatch):
    key = "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    monkeypatch.setenv(FOREIGN_KEY_ENV, key)
    monkeypatch.setattr(stub._StubProtocol, "_answer", _stream_error_quoting_its_key)
    async with Harness(tmp_path) as h:
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", data=chat("oi", stream=True),
                              headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                text = await r.text()
    assert key not in text and "quota exceeded for key [REDACTED:API_KEY]" in text, text
