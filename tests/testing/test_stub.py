"""The stub model, spoken to by the official openai and anthropic SDKs, plain and streaming."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys

import anthropic
import openai
import orjson
import pytest

from gateway.forward.client import UpstreamError, UpstreamPool
from gateway.testing.stub import start_stub

TEXT = "Olá, meu nome é Ana e moro em Recife"
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "find a record",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


@pytest.fixture
async def stub(tmp_path):
    s = await start_stub("127.0.0.1", 0, "BR", record=str(tmp_path / "received.jsonl"))
    yield s
    await s.close()


def oai(stub, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stub.url + "/v1", api_key="sk-test-key", max_retries=0, **kw)


def ant(stub, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stub.url, api_key="sk-ant-test", max_retries=0, **kw)


def recorded(stub) -> list[dict]:
    with open(stub.record_path, "rb") as f:
        return [orjson.loads(line) for line in f]


# --- OpenAI ---------------------------------------------------------------------------------------------
async def test_chat_completion_quotes_the_last_user_message_with_the_residency(stub):
    r = await oai(stub).chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"}, {"role": "user", "content": [{"type": "text", "text": TEXT}]}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "gpt-4o-mini"
    assert r.choices[0].message.content == f"[stub BR] You said: {TEXT}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0


async def test_chat_streams_token_by_token_and_ends_with_done(stub):
    stream = await oai(stub).chat.completions.create(model="m", stream=True, stream_options={"include_usage": True},
                                                     messages=[{"role": "user", "content": TEXT}])
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    parts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(parts) == len(f"[stub BR] You said: {TEXT}".split()), "one token per event"
    assert "".join(parts) == f"[stub BR] You said: {TEXT}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


async def test_chat_tool_call_plain_and_streaming(stub):
    msg = "please call tool for CPF 123"
    r = await oai(stub).chat.completions.create(model="m", tools=TOOLS, messages=[{"role": "user", "content": msg}])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"query": msg}
    stream = await oai(stub).chat.completions.create(model="m", tools=TOOLS, stream=True,
                                                     messages=[{"role": "user", "content": msg}])
    pieces, names = [], []
    async for c in stream:
        for tc in c.choices[0].delta.tool_calls or []:
            names.append(tc.function.name)
            pieces.append(tc.function.arguments or "")
    assert names[0] == "lookup" and len(pieces) > 2
    assert json.loads("".join(pieces)) == {"query": msg}
    r = await oai(stub).chat.completions.create(model="m", tools=TOOLS, messages=[{"role": "user", "content": "hello"}])
    assert r.choices[0].message.tool_calls is None, "only when asked to call a tool"


async def test_a_tool_result_ends_the_tool_loop_in_chat_and_responses(stub):
    # the stub quoted the user's "call tool" again after the tool's result, so it called the tool
    # again (chat) or quoted nothing (Responses): an agent loop never ended
    client = oai(stub)
    msgs = [{"role": "user", "content": "please call tool for Ana"}]
    r = await client.chat.completions.create(model="m", tools=TOOLS, messages=msgs)
    call = r.choices[0].message.tool_calls[0]
    msgs += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "record 42"}]
    r = await client.chat.completions.create(model="m", tools=TOOLS, messages=msgs)
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content == "[stub BR] You said: record 42"

    tools = [{"type": "function", "name": "lookup", "parameters": TOOLS[0]["function"]["parameters"]}]
    inp = [{"role": "user", "content": "please call tool for Ana"}]
    r = await client.responses.create(model="m", tools=tools, input=inp)
    (fc,) = [i for i in r.output if i.type == "function_call"]
    inp += [fc.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": fc.call_id, "output": "record 42"}]
    r = await client.responses.create(model="m", tools=tools, input=inp)
    assert [i.type for i in r.output] == ["message"] and r.output_text == "[stub BR] You said: record 42"


async def test_completions_and_embeddings(stub):
    client = oai(stub)
    r = await client.completions.create(model="m", prompt="complete me")
    assert r.object == "text_completion" and r.choices[0].text == "[stub BR] You said: complete me"
    stream = await client.completions.create(model="m", prompt="complete me", stream=True)
    assert "".join([c.choices[0].text async for c in stream]) == "[stub BR] You said: complete me"
    e = await client.embeddings.create(model="emb", input=["uno", "dos"])  # the SDK asks for base64
    assert [d.index for d in e.data] == [0, 1] and len(e.data[0].embedding) == 16
    again = await client.embeddings.create(model="emb", input="uno", encoding_format="float")
    assert again.data[0].embedding == pytest.approx(e.data[0].embedding, abs=1e-6), "deterministic, both encodings"
    assert e.data[0].embedding != e.data[1].embedding


async def test_completions_stream_reports_usage_when_asked(stub):
    # stream_options.include_usage was honoured for chat only
    stream = await oai(stub).completions.create(model="m", prompt="complete me", stream=True,
                                                stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "[stub BR] You said: complete me"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == (
        chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens) > 0
    assert all(c.usage is None for c in chunks[:-1])


async def test_embeddings_of_token_ids_are_one_per_input(stub):
    # a list of token ids is one input; the stub answered one embedding per token
    client = oai(stub)
    e = await client.embeddings.create(model="emb", input=[15339, 1917, 0])
    assert len(e.data) == 1 and e.usage.prompt_tokens == 3 and len(e.data[0].embedding) == 16
    e = await client.embeddings.create(model="emb", input=[[15339, 1917], [0], [7, 8, 9]])
    assert [d.index for d in e.data] == [0, 1, 2] and e.usage.prompt_tokens == 6
    assert e.data[0].embedding != e.data[1].embedding


async def test_responses_api_plain_streaming_and_tool(stub):
    client = oai(stub)
    r = await client.responses.create(model="m", input=TEXT)
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == f"[stub BR] You said: {TEXT}"
    async with client.responses.stream(model="m", input=[{"role": "user", "content": TEXT}]) as s:
        deltas = [ev.delta async for ev in s if ev.type == "response.output_text.delta"]
        final = await s.get_final_response()
    assert len(deltas) > 3 and "".join(deltas) == final.output_text == f"[stub BR] You said: {TEXT}"
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    r = await client.responses.create(model="m", input="call tool now", tools=tools)
    assert r.output[0].type == "function_call" and json.loads(r.output[0].arguments) == {"q": "call tool now"}


async def test_json_mode_and_structured_outputs_answer_json_of_the_schema(stub):
    r = await oai(stub).chat.completions.create(model="m", response_format={"type": "json_object"},
                                                messages=[{"role": "user", "content": TEXT}])
    assert json.loads(r.choices[0].message.content) == {"answer": f"[stub BR] You said: {TEXT}"}
    schema = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}, "ok": {"type": "boolean"},
                                               "e": {"enum": ["b", "a"]}, "o": {"$ref": "#/$defs/O"}},
              "$defs": {"O": {"type": "object", "properties": {"t": {"type": "string"}}}}}
    r = await oai(stub).responses.create(model="m", input=TEXT, text={"format": {"type": "json_schema", "name": "x",
                                                                                 "schema": schema}})
    assert json.loads(r.output_text) == {"n": 0, "ok": False, "e": "b", "o": {"t": f"[stub BR] You said: {TEXT}"}}
    m = await ant(stub).messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": TEXT}],
                                        output_config={"format": {"type": "json_schema", "schema": schema}})
    assert json.loads(m.content[0].text)["o"] == {"t": f"[stub BR] You said: {TEXT}"}
    # a plain text format is the plain echo
    r = await oai(stub).responses.create(model="m", input=TEXT, text={"format": {"type": "text"}})
    assert r.output_text == f"[stub BR] You said: {TEXT}"


async def test_models_list_in_both_dialects(stub):
    assert "stub-model" in [m.id async for m in oai(stub).models.list()]
    assert "stub-model" in [m.id async for m in ant(stub).models.list()]


# --- Anthropic -------------------------------------------------------------------------------------------
async def test_anthropic_messages_plain_and_streaming(stub):
    m = await ant(stub).messages.create(model="claude-sonnet-4", max_tokens=64, system="be brief",
                                        messages=[{"role": "user", "content": [{"type": "text", "text": TEXT}]}])
    assert m.type == "message" and m.id.startswith("msg_") and m.stop_reason == "end_turn"
    assert m.content[0].text == f"[stub BR] You said: {TEXT}" and m.usage.output_tokens > 0
    async with ant(stub).messages.stream(model="claude-sonnet-4", max_tokens=64,
                                         messages=[{"role": "user", "content": TEXT}]) as s:
        parts = [t async for t in s.text_stream]
        final = await s.get_final_message()
    assert len(parts) > 3 and "".join(parts) == f"[stub BR] You said: {TEXT}"
    assert final.stop_reason == "end_turn"


async def test_anthropic_tool_use_plain_and_streaming(stub):
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"who": {"type": "string"}}}}]
    msgs = [{"role": "user", "content": "call tool about Ana"}]
    m = await ant(stub).messages.create(model="c", max_tokens=64, tools=tools, messages=msgs)
    assert m.stop_reason == "tool_use" and m.content[0].name == "lookup"
    assert m.content[0].input == {"who": "call tool about Ana"}
    async with ant(stub).messages.stream(model="c", max_tokens=64, tools=tools, messages=msgs) as s:
        final = await s.get_final_message()
    assert final.content[0].input == {"who": "call tool about Ana"} and final.stop_reason == "tool_use"


# --- recording, faults, HTTP ----------------------------------------------------------------------------------
async def test_record_holds_path_body_and_only_a_hash_of_the_key(stub):
    await oai(stub).chat.completions.create(model="m", messages=[{"role": "user", "content": "um"}])
    await ant(stub).messages.create(model="c", max_tokens=8, messages=[{"role": "user", "content": "dois"}])
    a, b = recorded(stub)
    assert a["path"] == "/v1/chat/completions" and a["body"]["messages"][0]["content"] == "um"
    assert a["auth"] == {"kind": "bearer", "sha256": hashlib.sha256(b"sk-test-key").hexdigest()}
    assert b["path"] == "/v1/messages"  # this SDK version sends its key as a bearer token
    assert b["auth"]["sha256"] == hashlib.sha256(b"sk-ant-test").hexdigest()
    # the other headers are recorded as received; the key's headers only as the hash above
    assert a["headers"]["content-type"] == "application/json" and "authorization" not in a["headers"]
    assert b["headers"]["anthropic-version"] and "sk-ant-test" not in str(b["headers"])
    pool = UpstreamPool(stub.url)
    for headers in ([(b"x-api-key", b"sk-ant-raw")], []):
        resp = await pool.request("POST", "/messages", headers, b'{"model": "c", "messages": []}')
        await resp.read()
        resp.release()
    await pool.close()
    c, d = recorded(stub)[2:]
    assert c["auth"] == {"kind": "x-api-key", "sha256": hashlib.sha256(b"sk-ant-raw").hexdigest()}
    assert d["auth"] is None
    raw = open(stub.record_path, "rb").read()
    assert b"sk-test-key" not in raw and b"sk-ant-test" not in raw and b"sk-ant-raw" not in raw


async def test_fail_500_in_each_dialect(stub):
    with pytest.raises(openai.InternalServerError):
        await oai(stub).chat.completions.create(model="stub-fail-500", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.InternalServerError) as e:
        await ant(stub).messages.create(model="stub-fail-500", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"


async def test_rate_limit_in_each_dialect_with_retry_after(stub):
    with pytest.raises(openai.RateLimitError) as e:
        await oai(stub).chat.completions.create(model="stub-rate-limit", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "rate_limit_exceeded" and e.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.RateLimitError) as e:
        await ant(stub).messages.create(model="stub-rate-limit", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "rate_limit_error" and e.value.response.headers["retry-after"] == "3"


async def test_hang_never_answers(stub):
    with pytest.raises(openai.APITimeoutError):
        await oai(stub, timeout=0.3).chat.completions.create(model="stub-hang", messages=[{"role": "user", "content": "x"}])


async def test_reset_streams_a_few_events_then_breaks_the_connection(stub):
    pool = UpstreamPool(stub.url + "/v1")
    body = orjson.dumps({"model": "stub-reset", "stream": True, "messages": [{"role": "user", "content": TEXT}]})
    resp = await pool.request("POST", "/chat/completions", [(b"content-type", b"application/json")], body)
    got = b""
    with pytest.raises(UpstreamError) as e:
        async for chunk in resp:
            got += chunk
    assert e.value.kind == "reset" and got.count(b"data: ") == 3 and b"[DONE]" not in got
    resp.release()
    body = orjson.dumps({"model": "stub-reset", "messages": [{"role": "user", "content": TEXT}]})
    resp = await pool.request("POST", "/chat/completions", [], body)
    with pytest.raises(UpstreamError) as e:
        await resp.read()
    assert e.value.kind == "reset", "a JSON answer cut in half"
    resp.release()
    await pool.close()


async def test_slow_streams_the_whole_answer(stub):
    stream = await oai(stub).chat.completions.create(model="stub-slow", stream=True,
                                                     messages=[{"role": "user", "content": "a b"}])
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == "[stub BR] You said: a b"


async def test_pipelined_keep_alive_requests_and_errors_on_one_connection(stub):
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    stream_body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    sreq = (b"POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(stream_body), stream_body))
    bad = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}"
    missing = b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"
    reader, writer = await asyncio.open_connection(stub.host, stub.port)
    writer.write(req + sreq + bad + missing + req)
    await writer.drain()
    pool_text = b""
    while pool_text.count(b"HTTP/1.1 ") < 5:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, "the stub kept the connection open"
        pool_text += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d+)", pool_text)
    assert statuses == [b"200", b"200", b"400", b"404", b"200"], "answered in order"
    assert pool_text.index(b"data: [DONE]") < pool_text.index(b"HTTP/1.1 400"), "the stream finished first"
    writer.close()
    assert stub.connections == 1 and stub.requests == 5


def test_stub_command_serves_until_sigterm(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    record = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "stub", "--port", str(port), "--residency", "mx",
                             "--record", str(record)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/v1" in line and "MX" in line

        async def ask():
            client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
            return await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hola"}])

        assert asyncio.run(ask()).choices[0].message.content == "[stub MX] You said: hola"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert orjson.loads(record.read_bytes().splitlines()[0])["body"]["model"] == "m"
    finally:
        proc.kill()


def test_stub_command_names_a_record_file_it_cannot_write(tmp_path):
    # it said "cannot listen on 127.0.0.1:PORT: Is a directory", blaming the port
    for record in (tmp_path, tmp_path / "missing" / "r.jsonl"):
        p = subprocess.run([sys.executable, "-m", "gateway", "stub", "--port", "0", "--record", str(record)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert f"cannot record to {record}" in p.stderr and "listen" not in p.stderr


@pytest.mark.parametrize("args, what", [(["stub", "--port", "70000"], "--port"), (["stub", "--port", "-1"], "--port"),
                                        (["stub", "--residency", "BRA"], "--residency"),
                                        (["serve", "-c", "missing.yaml", "--port", "65536"], "--port")])
def test_a_port_or_residency_out_of_range_is_a_usage_error(args, what):
    # --port 70000 listened on 70000 % 65536 = 4464, a port nobody asked for; --residency BRA
    # answered as "[stub BRA]", a residency no upstream can have
    p = subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and what in p.stderr and "Traceback" not in p.stderr
