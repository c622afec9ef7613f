"""Principle 5 through the real gateway: a sensitive value a caller puts anywhere but a message (the
model name, the URL, a header, a JSON key, a part type, a malformed body, a wrong credential) or an
upstream puts in an error body or a header reaches no log line, metric, audit record, error message
or response header as it was sent."""

from __future__ import annotations

import re

import aiohttp
import orjson
import pytest

from gateway import metrics
from gateway.testing import stub
from gateway.testing.harness import Harness

CPF = "529.982.247-25"
EMAIL = "ana.lima@fazenda.gov.br"
KEY = "sk-proj-Tq4Zr8Wb1Nc5Vd3Hj6Kp0Ys9fQ2xLm7Tq4Zr8Wb1Nc5V"
KEY_LETTERS = "sk-proj-mPIhsgJDoEUiogCPAFchHQEbwFjXeJizZeldAMtw"  # no digit: no detector shortcut applies
# each value, and the slightly obfuscated spellings of it that must not appear either
VALUES = [CPF, "529 982 247 25", EMAIL, EMAIL.upper(), KEY, "gpt-" + KEY, KEY_LETTERS]
NEEDLES = [re.compile(r"529\W{0,2}982\W{0,2}247\W{0,2}25"), re.compile(r"ana\W{0,3}lima", re.I),
           re.compile(re.escape(KEY[8:24]), re.I), re.compile(re.escape(KEY_LETTERS[8:24]), re.I)]


def found(text: str) -> list[str]:
    """The needles that match ``text`` (any spelling of any value)."""
    return [rx.pattern for rx in NEEDLES if rx.search(text)]


def chat(model: str = "gpt-4o-mini", messages: list | None = None, **extra) -> bytes:
    return orjson.dumps({"model": model, "messages": messages or [{"role": "user", "content": "oi"}], **extra})


def anthropic(model: str, messages: list) -> bytes:
    return orjson.dumps({"model": model, "max_tokens": 16, "messages": messages})


def probes(v: str, key: str) -> list[tuple[str, str, str, bytes, dict]]:
    """(name, method, path, body, headers) of each surface, carrying the value ``v``."""
    auth = {"Authorization": f"Bearer {key}"}
    header_v = v.replace(" ", "")
    return [
        ("unknown model", "POST", "/v1/chat/completions", chat(v), auth),
        ("unknown model, anthropic", "POST", "/v1/messages", anthropic(v, [{"role": "user", "content": "oi"}]), auth),
        ("unknown path", "GET", f"/v1/chat/{header_v}?q={header_v}", b"", auth),
        ("path below an endpoint", "POST", f"/v1/chat/completions/{header_v}", chat(), auth),
        ("query string", "POST", f"/v1/chat/completions?user={header_v}", chat(), auth),
        ("models query string", "GET", f"/v1/models?after={header_v}", b"", auth),
        ("traceparent", "POST", "/v1/chat/completions", chat(), {**auth, "traceparent": v}),
        ("user-agent", "POST", "/v1/chat/completions", chat(), {**auth, "User-Agent": v}),
        ("anthropic-version", "POST", "/v1/chat/completions", chat(), {**auth, "anthropic-version": v}),
        ("classification", "POST", "/v1/chat/completions", chat(), {**auth, "X-Data-Classification": v}),
        ("header name", "POST", "/v1/chat/completions", chat(), {**auth, "x-" + re.sub(r"\W", "-", v): "1"}),
        ("wrong x-api-key", "POST", "/v1/messages", anthropic("claude-sonnet-4", [{"role": "user", "content": "oi"}]),
         {"x-api-key": v}),
        ("wrong bearer", "POST", "/v1/chat/completions", chat(), {"Authorization": f"Bearer {header_v}"}),
        ("malformed scheme", "POST", "/v1/chat/completions", chat(), {"Authorization": f"{header_v} x"}),
        ("bearer with two tokens", "POST", "/v1/chat/completions", chat(), {"Authorization": f"Bearer {v} {v}"}),
        ("JWT-shaped key", "POST", "/v1/chat/completions", chat(), {"Authorization": f"Bearer ey{header_v}.x"}),
        ("json key", "POST", "/v1/chat/completions", chat(**{v: 1}), auth),
        ("json key in a message", "POST", "/v1/chat/completions",
         chat(messages=[{"role": "user", "content": "oi", v: 1}]), auth),
        ("schema property name", "POST", "/v1/chat/completions", chat(tools=[{"type": "function", "function": {
            "name": "f", "parameters": {"type": "object", "properties": {v: {"type": "string"}}}}}]), auth),
        ("unknown role", "POST", "/v1/chat/completions", chat(messages=[{"role": v, "content": "oi"}]), auth),
        ("untranslatable role", "POST", "/v1/chat/completions",
         chat("claude-sonnet-4", [{"role": v, "content": "oi"}]), auth),
        ("anthropic role", "POST", "/v1/messages", anthropic("claude-sonnet-4", [{"role": v, "content": "oi"}]), auth),
        ("unknown part type", "POST", "/v1/chat/completions",
         chat(messages=[{"role": "user", "content": [{"type": v}]}]), auth),
        ("untranslatable block type", "POST", "/v1/messages",
         anthropic("gpt-4o-mini", [{"role": "user", "content": [{"type": v}]}]), auth),
        ("untranslatable assistant block", "POST", "/v1/messages", anthropic("gpt-4o-mini", [
            {"role": "user", "content": "oi"}, {"role": "assistant", "content": [{"type": v}]}]), auth),
        ("responses item type", "POST", "/v1/responses",
         orjson.dumps({"model": "gpt-4o-mini", "input": [{"type": v}]}), auth),
        ("tool arguments not JSON", "POST", "/v1/chat/completions", chat("claude-sonnet-4", [
            {"role": "user", "content": "oi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{" + v}}]}]), auth),
        ("malformed JSON", "POST", "/v1/chat/completions", b'{"model": "' + v.encode() + b'", "messages": ', auth),
    ]


async def test_no_value_a_caller_puts_outside_the_messages_is_repeated(tmp_path, logs):
    async with Harness(tmp_path) as h:
        async with aiohttp.ClientSession() as s:
            for v in VALUES:
                for name, method, path, body, headers in probes(v, h.keys["br"]):
                    async with s.request(method, h.url + path, data=body, headers=headers) as r:
                        text = await r.text()
                        head = "\n".join(f"{k}: {val}" for k, val in r.headers.items())
                    assert not found(text), (name, v, r.status, text)
                    assert not found(head), (name, v, head)
            async with s.get(h.url + "/-/metrics") as r:
                exposition = await r.text()
        files = h.audit_files()
    records = b"".join(f.read_bytes() for f in files).decode()
    assert records.count('"request_id"') >= len(VALUES) * 10  # the proxied requests were audited
    assert not found(records), [line for line in records.splitlines() if found(line)]
    assert not found(exposition)
    assert not found(logs.getvalue()), [line for line in logs.getvalue().splitlines() if found(line)]


OTHER_CPF = "111.444.777-35"  # a valid CPF the caller never sent


def _echoing_upstream(status: int, seen: list, as_json: bool):
    """The stub's answer replaced by a ``status`` error that quotes the request back (as real upstreams'
    validation errors do), names a value of someone else, and sets a header holding values; as a JSON
    error object or as plain text."""

    def answer(self, req):
        sent = orjson.loads(req.body)
        seen.append(sent)
        message = f"invalid request {orjson.dumps(sent['messages']).decode()}; see {OTHER_CPF}"
        body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                       "code": "invalid_value"}}) if as_json else message.encode()
        ctype = "application/json" if as_json else "text/plain; charset=utf-8"
        self.transport.write(f"HTTP/1.1 {status} Bad Request\r\ncontent-type: {ctype}\r\n"
                             f"content-length: {len(body)}\r\nx-echo: {CPF} {OTHER_CPF}\r\n\r\n".encode() + body)

    return answer


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
async def test_an_upstream_error_body_is_restored_and_leak_checked_like_an_answer(tmp_path, logs, monkeypatch, as_json):
    seen: list[dict] = []
    monkeypatch.setattr(stub._StubProtocol, "_answer", _echoing_upstream(400, seen, as_json))
    text = f"meu CPF {CPF}, e-mail {EMAIL}"
    leaks_before = metrics.leak("br.cpf")._value.get()  # (the metrics are the process's, shared by tests)
    async with Harness(tmp_path) as h:
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", data=chat(messages=[{"role": "user", "content": text}]),
                              headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                raw = await r.read()
                headers = r.headers.copy()
        files = h.audit_files()
    assert r.status == 400 and headers["X-Soberana-Route"] == "foreign-openai"
    assert seen[0]["messages"][0]["content"] == "meu CPF [CPF_1], e-mail [EMAIL_1]"  # pseudonymized abroad
    # the caller's own values come back restored, as in an answer; no placeholder is left
    message = orjson.loads(raw)["error"]["message"] if as_json else raw.decode()
    assert CPF in message and EMAIL in message and "[CPF_1]" not in message and "[EMAIL_1]" not in message
    # someone else's CPF in the upstream's error counts as a leak, like one in an answer
    assert metrics.leak("br.cpf")._value.get() == leaks_before + 1
    records = [orjson.loads(x) for f in files for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    assert records[-1]["leaks"] == 1 and records[-1]["upstream"]["status"] == 400
    # the upstream's own headers are not relayed, and nothing of it is logged or recorded
    assert "x-echo" not in {k.lower() for k in headers}
    assert not found(logs.getvalue()) and OTHER_CPF not in logs.getvalue()
    assert not found(orjson.dumps(records).decode()) and OTHER_CPF not in orjson.dumps(records).decode()


def _stream_then_error(seen: list):
    """The stub's answer replaced by a stream whose second event is the upstream's error, quoting the
    request back and naming someone else's CPF (as a provider's moderation error may)."""

    def answer(self, req):
        sent = orjson.loads(req.body)
        seen.append(sent)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "ok "}}]}
        error = {"error": {"message": f"rejected {orjson.dumps(sent['messages']).decode()}; see {OTHER_CPF}",
                           "type": "server_error"}}
        body = b"data: " + orjson.dumps(chunk) + b"\n\nevent: error\ndata: " + orjson.dumps(error) + b"\n\n"
        self.transport.write(f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             f"content-length: {len(body)}\r\n\r\n".encode() + body)

    return answer


async def test_an_upstream_error_event_in_a_stream_is_restored_and_leak_checked(tmp_path, logs, monkeypatch):
    seen: list[dict] = []
    monkeypatch.setattr(stub._StubProtocol, "_answer", _stream_then_error(seen))
    leaks_before = metrics.leak("br.cpf")._value.get()
    async with Harness(tmp_path) as h:
        async with aiohttp.ClientSession() as s:
            body = chat(messages=[{"role": "user", "content": f"meu CPF {CPF}"}], stream=True)
            async with s.post(h.url + "/v1/chat/completions", data=body,
                              headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                text = await r.text()
        files = h.audit_files()
    assert r.status == 200 and seen[0]["messages"][0]["content"] == "meu CPF [CPF_1]"
    error = [line for line in text.splitlines() if line.startswith("data: ") and '"error"' in line]
    assert len(error) == 1 and CPF in error[0] and "[CPF_1]" not in error[0]  # restored, as the answer
    assert metrics.leak("br.cpf")._value.get() == leaks_before + 1  # someone else's CPF is counted
    records = [orjson.loads(x) for f in files for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    assert records[-1]["leaks"] == 1
    assert not found(logs.getvalue()) and OTHER_CPF not in logs.getvalue()
