"""OpenAI Chat Completions <-> Anthropic Messages: requests, answers and streams, on golden fixtures."""

import json
import re
from pathlib import Path

import pytest

from gateway.dialects import ENDPOINTS, DialectError, extract_segments
from gateway.dialects.sse import SSEParser
from gateway.dialects.translate import StreamTranslator, carries, translate_request, translate_response

FIX = Path(__file__).parents[1] / "fixtures"


def load(name):
    return json.loads((FIX / name).read_text())


def events(data: bytes):
    p = SSEParser()
    return p.feed(data) + p.finish()


def test_anthropic_request_to_openai():
    body = load("anthropic/messages_request.json")
    endpoint, out = translate_request("anthropic", "openai", "/v1/messages", body)
    assert endpoint == "/v1/chat/completions"
    m = out["messages"]
    assert m[0] == {"role": "system", "content": "You assist the tax office."}
    assert m[1] == {"role": "user", "content": "Check taxpayer CPF 123.456.789-09."}
    assert m[2]["role"] == "assistant" and m[2]["content"] == "Let me look that up."
    assert m[2]["tool_calls"] == [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                                   "function": {"name": "lookup_taxpayer", "arguments": '{"cpf":"123.456.789-09"}'}}]
    # the tool result comes right after the assistant's call, the rest of the user turn after it
    assert m[3] == {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "status: regular; email maria@example.com"}
    assert m[4]["role"] == "user" and [p["type"] for p in m[4]["content"]] == ["text", "image_url", "text"]
    assert m[4]["content"][1]["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo="
    assert out["tools"] == [{"type": "function", "function": {
        "name": "lookup_taxpayer", "description": "Look up a taxpayer by CPF",
        "parameters": body["tools"][0]["input_schema"]}}]
    assert out["tool_choice"] == "auto"
    assert (out["max_completion_tokens"], out["temperature"], out["top_p"], out["stop"]) == (1024, 0.5, 0.9, ["\n\nHuman:"])
    assert "stream" not in out
    # what the upstream receives still holds every inspected text
    texts = {s.text for s in extract_segments("/v1/chat/completions", out)}
    assert "Internal memo about agent 42." in texts and "Now email her the summary." in texts


def test_openai_request_to_anthropic():
    body = load("openai/chat_request.json")
    endpoint, out = translate_request("openai", "anthropic", "/v1/chat/completions", body)
    assert endpoint == "/v1/messages"
    assert out["system"] == [{"type": "text", "text": "You are a helpful assistant for the tax office."}]
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # strictly alternating
    assert out["messages"][0]["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "call_abc123", "name": "lookup_taxpayer",
                                              "input": {"cpf": "123.456.789-09"}}]
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert out["messages"][2]["content"][0]["tool_use_id"] == "call_abc123"
    assert out["tools"][0]["input_schema"] == body["tools"][0]["function"]["parameters"]
    assert out["tool_choice"] == {"type": "auto"}
    assert (out["max_tokens"], out["stop_sequences"]) == (256, ["\n\nUser:"])
    # Anthropic needs max_tokens; temperature above 1 is clamped
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions",
                               {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 1.7,
                                "tool_choice": "required", "stream": True, "stop": "END"})
    assert out["max_tokens"] > 0 and out["temperature"] == 1.0 and out["stream"] is True
    assert out["stop_sequences"] == ["END"] and "tool_choice" not in out  # no tools, no tool_choice


@pytest.mark.parametrize("choice,back", [
    ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "lookup_taxpayer"}, {"type": "function", "function": {"name": "lookup_taxpayer"}}),
])
def test_tool_choice_both_ways(choice, back):
    body = load("anthropic/messages_request.json")
    body["tool_choice"] = choice
    _, o = translate_request("anthropic", "openai", "/v1/messages", body)
    assert o["tool_choice"] == back
    _, a = translate_request("openai", "anthropic", "/v1/chat/completions", o)
    assert a["tool_choice"] == choice


def test_round_trips_keep_the_conversation():
    body = load("anthropic/messages_request.json")
    body["messages"][2]["content"] = body["messages"][2]["content"][:3]  # the text document becomes plain text
    _, o = translate_request("anthropic", "openai", "/v1/messages", body)
    _, a = translate_request("openai", "anthropic", "/v1/chat/completions", o)
    assert a["system"] == [{"type": "text", "text": body["system"][0]["text"]}]
    assert a["messages"][1] == body["messages"][1]
    assert a["messages"][2]["content"][0]["content"] == "status: regular; email maria@example.com"
    assert a["messages"][2]["content"][1:] == body["messages"][2]["content"][1:]
    assert (a["tools"], a["max_tokens"], a["stop_sequences"]) == (body["tools"], 1024, body["stop_sequences"])

    chat = load("openai/chat_request.json")
    _, a = translate_request("openai", "anthropic", "/v1/chat/completions", chat)
    _, o = translate_request("anthropic", "openai", "/v1/messages", a)
    assert o["messages"][0] == chat["messages"][0]
    assert [m["role"] for m in o["messages"]] == [m["role"] for m in chat["messages"]]
    assert json.loads(o["messages"][2]["tool_calls"][0]["function"]["arguments"]) == \
        json.loads(chat["messages"][2]["tool_calls"][0]["function"]["arguments"])
    assert o["tools"] == chat["tools"] and o["messages"][5] == chat["messages"][5]


def test_untranslatable_parts_fail_closed():
    with pytest.raises(DialectError):
        translate_request("openai", "anthropic", "/v1/chat/completions", {"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]})
    with pytest.raises(DialectError):
        translate_request("openai", "anthropic", "/v1/embeddings", {"input": "x"})
    with pytest.raises(DialectError) as e:
        translate_request("anthropic", "openai", "/v1/messages", {"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}]}]})
    assert str(e.value).startswith("messages[0].content[0].content[0] ")  # (an image without a source)
    with pytest.raises(DialectError):
        translate_request("anthropic", "openai", "/v1/messages", {"messages": [{"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]})
    with pytest.raises(DialectError):
        translate_request("openai", "anthropic", "/v1/chat/completions", {"messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}]}]})


def test_answers_both_ways():
    a = translate_response("anthropic", "openai", load("openai/chat_response.json"), "claude-sonnet-4")
    assert a["type"] == "message" and a["model"] == "claude-sonnet-4" and a["stop_reason"] == "end_turn"
    assert a["content"] == [{"type": "text", "text": "The taxpayer with CPF [CPF_1] is regular."}]
    assert a["usage"] == {"input_tokens": 42, "output_tokens": 11}
    a = translate_response("anthropic", "openai", load("openai/chat_response_tools.json"), "m")
    assert a["stop_reason"] == "tool_use"
    assert a["content"] == [{"type": "tool_use", "id": "call_Xy9", "name": "lookup_taxpayer", "input": {"cpf": "[CPF_1]"}}]

    o = translate_response("openai", "anthropic", load("anthropic/messages_response_tools.json"), "gpt-4o")
    msg = o["choices"][0]["message"]
    assert o["object"] == "chat.completion" and o["model"] == "gpt-4o"
    assert o["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["content"] == "I'll send the email now."
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"to": "[EMAIL_1]", "cc": ["[EMAIL_2]"]}
    assert o["usage"] == {"prompt_tokens": 472, "completion_tokens": 91, "total_tokens": 563}
    # and back again
    back = translate_response("anthropic", "openai", o, "claude")
    assert back["content"] == load("anthropic/messages_response_tools.json")["content"]


def translate_stream(src, dst, data: bytes, cuts=()):
    t = StreamTranslator(src, dst, "caller-model")
    out, prev = [], 0
    for c in list(cuts) + [len(data)]:
        out.append(t.feed(data[prev:c]))
        prev = c
    out.append(t.finish())
    return b"".join(out)


def anthropic_view(data: bytes):
    blocks, stop, types = {}, None, []
    for ev in events(data):
        obj = json.loads(ev.data)
        assert ev.event == obj["type"]
        types.append(obj["type"])
        if obj["type"] == "content_block_start":
            blocks[obj["index"]] = dict(obj["content_block"], text="" if obj["content_block"]["type"] == "text" else None, json="")
        elif obj["type"] == "content_block_delta":
            d = obj["delta"]
            if d["type"] == "text_delta":
                blocks[obj["index"]]["text"] += d["text"]
            else:
                blocks[obj["index"]]["json"] += d["partial_json"]
        elif obj["type"] == "message_delta":
            stop = obj["delta"]["stop_reason"]
    return blocks, stop, types


def test_openai_stream_to_anthropic_at_every_split():
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    whole = translate_stream("anthropic", "openai", data)
    blocks, stop, types = anthropic_view(whole)
    assert blocks[0]["text"] == "Olá, o CPF [CPF_1] está regular." and stop == "end_turn"
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert json.loads(events(whole)[-2].data)["usage"] == {"input_tokens": 19, "output_tokens": 9}
    for cut in range(len(data)):
        assert translate_stream("anthropic", "openai", data, [cut]) == whole


def test_openai_tool_stream_to_anthropic():
    blocks, stop, types = anthropic_view(translate_stream(
        "anthropic", "openai", (FIX / "openai/chat_stream_tools.sse").read_bytes(), [100, 500]))
    assert stop == "tool_use"
    assert [(b["type"], b["name"], json.loads(b["json"])) for b in blocks.values()] == [
        ("tool_use", "lookup_taxpayer", {"cpf": "[CPF_1]"}), ("tool_use", "send_email", {"to": "[EMAIL_1]"})]
    assert types.count("content_block_start") == types.count("content_block_stop") == 2


def openai_view(data: bytes):
    content, tools, finish, usage, done = "", {}, None, None, False
    for ev in events(data):
        if ev.data == "[DONE]":
            done = True
            continue
        obj = json.loads(ev.data)
        assert obj["object"] == "chat.completion.chunk" and obj["model"] == "caller-model"
        usage = obj.get("usage") or usage
        if not obj["choices"]:  # the usage chunk (stream_options.include_usage) has no choice
            continue
        ch = obj["choices"][0]
        content += ch["delta"].get("content") or ""
        for call in ch["delta"].get("tool_calls") or []:
            t = tools.setdefault(call["index"], {"name": None, "args": ""})
            t["name"] = call.get("function", {}).get("name") or t["name"]
            t["args"] += call["function"].get("arguments", "")
        finish = ch["finish_reason"] or finish
    return content, tools, finish, usage, done


@pytest.mark.parametrize("name", ["messages_stream.sse", "messages_stream_tools.sse"])
def test_anthropic_stream_to_openai_at_every_split(name):
    data = (FIX / "anthropic" / name).read_bytes()
    def unclocked(b: bytes) -> bytes:
        return re.sub(rb'"created":\d+', b'"created":0', b)

    whole = translate_stream("openai", "anthropic", data)
    for cut in range(0, len(data), 2):
        assert unclocked(translate_stream("openai", "anthropic", data, [cut])) == unclocked(whole)
    content, tools, finish, usage, done = openai_view(whole)
    assert done
    if name == "messages_stream.sse":
        assert (content, tools, finish) == ("Olá, o CPF [CPF_1] está regular.", {}, "stop")
        assert usage == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}
    else:
        assert content == "Sending the email." and finish == "tool_calls"
        assert {k: (v["name"], json.loads(v["args"])) for k, v in tools.items()} == {0: ("send_email", {"to": "[EMAIL_1]"})}


def test_truncated_upstream_stream_ends_with_an_error_event_not_a_normal_end():
    data = (FIX / "anthropic/messages_stream.sse").read_bytes()
    out = translate_stream("openai", "anthropic", data[:data.index(b"event: content_block_stop")])
    evs = events(out)
    assert evs[-1].event == "error" and "[DONE]" not in out.decode()
    assert json.loads(evs[-1].data)["error"]["code"] == "upstream_error"
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    out = translate_stream("anthropic", "openai", data[:data.index(b'"finish_reason":"stop"') - 200])
    evs = events(out)
    assert evs[-1].event == "error" and b"message_stop" not in out
    # an error the upstream reports mid-stream becomes the caller's error event
    out = translate_stream("anthropic", "openai", b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n')
    assert events(out)[-1].event == "error" and b"boom" not in out


def test_empty_text_parts_are_not_sent_to_anthropic():
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", {"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "oi"}]},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "f", "arguments": ""}}]}]})
    assert out["messages"][0]["content"] == [{"type": "text", "text": "oi"}]
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]


@pytest.mark.parametrize("typ", ["529.982.247-25", "ana.lima@fazenda.gov.br",
                                 "sk-proj-Tq4Zr8Wb1Nc5Vd3Hj6Kp0Ys9fQ2xLm7Tq4Zr8Wb1Nc5V"])
def test_an_untranslatable_part_type_is_not_quoted_in_the_error(typ):
    # the part's type is the caller's string: the message names known types only (it reaches the caller)
    cases = [
        ("openai", "anthropic", "/v1/chat/completions",
         {"messages": [{"role": "user", "content": [{"type": typ}]}]}),
        ("anthropic", "openai", "/v1/messages", {"messages": [{"role": "user", "content": [{"type": typ}]}]}),
        ("anthropic", "openai", "/v1/messages", {"messages": [{"role": "assistant", "content": [{"type": typ}]}]}),
    ]
    for src, dst, endpoint, body in cases:
        with pytest.raises(DialectError) as e:
            translate_request(src, dst, endpoint, body)
        assert typ not in str(e.value) and "529" not in str(e.value) and "lima" not in str(e.value)
        assert str(e.value).startswith("messages[0].content[0] (an unsupported type) has no equivalent")
    with pytest.raises(DialectError) as e:  # a known type is still named, to help the caller
        translate_request("openai", "anthropic", "/v1/chat/completions", {"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]})
    assert "(input_audio)" in str(e.value)


def test_prompt_tokens_from_claude_count_its_prompt_cache():
    # Anthropic's input_tokens leave out the cached prompt; OpenAI's prompt_tokens (what callers bill
    # and budget on) include it
    usage = {"input_tokens": 12, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 500, "output_tokens": 7}
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [
        {"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
    o = translate_response("openai", "anthropic", answer, "gpt-4o")
    assert o["usage"] == {"prompt_tokens": 3512, "completion_tokens": 7, "total_tokens": 3519,
                          "prompt_tokens_details": {"cached_tokens": 3000}}
    evs = [{"type": "message_start", "message": dict(answer, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
              {"type": "content_block_stop", "index": 0},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 7}},
              {"type": "message_stop"}]
    data = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in evs)
    chunks = [json.loads(e.data) for e in events(translate_stream("openai", "anthropic", data)) if e.data != "[DONE]"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 3512, "completion_tokens": 7, "total_tokens": 3519,
                          "prompt_tokens_details": {"cached_tokens": 3000}}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("dst", ["openai", "anthropic"])
def test_carries_says_what_translate_request_translates(endpoint, dst):
    """The routing skips an upstream ``carries`` refuses: it must refuse exactly the endpoints that
    ``translate_request`` cannot send to that upstream's dialect."""
    src = ENDPOINTS[endpoint]
    body = {"model": "m", "messages": [{"role": "user", "content": "oi"}], "max_tokens": 8}
    try:
        translate_request(src, dst, endpoint, body)
        translated = True
    except DialectError:
        translated = False
    assert carries(src, dst, endpoint) is translated
    # an Anthropic upstream serves chat and messages (and counts messages' tokens) only; an OpenAI one
    # every endpoint but that count, which it has no equivalent of
    if endpoint == "/v1/messages/count_tokens":
        assert translated is (dst == "anthropic")
    else:
        assert translated is (dst == "openai" or endpoint in ("/v1/chat/completions", "/v1/messages"))
