"""Cross-dialect translation fidelity: what a caller gets only because its request crossed dialects."""

import json

import pytest

from gateway.config import Upstream
from gateway.dialects import DialectError
from gateway.dialects.sse import SSEParser
from gateway.dialects.translate import StreamTranslator, translate_request, translate_response


def test_tool_call_cut_by_max_tokens_becomes_an_empty_input_not_an_error():
    # an OpenAI-dialect model cut mid-arguments: no JSON left; Claude's own answer has input {} then
    answer = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "ple'}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    msg = translate_response("anthropic", "openai", answer, "claude-sonnet-4")
    assert msg["stop_reason"] == "max_tokens"
    assert msg["content"] == [{"type": "tool_use", "id": "call_1", "name": "lookup", "input": {}}]


def test_no_tools_wanted_and_no_parallel_calls_is_a_plain_none_choice():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "none",
            "parallel_tool_calls": False, "tools": [{"type": "function", "function": {"name": "f"}}]}
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", body)
    assert out["tool_choice"] == {"type": "none"}  # Anthropic's none takes no other field
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", dict(body, tool_choice="required"))
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def _claude_stream() -> bytes:
    evs = [{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
                                                 "content": [], "stop_reason": None, "stop_sequence": None,
                                                 "usage": {"input_tokens": 4, "output_tokens": 1}}},
           {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
           {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
           {"type": "content_block_stop", "index": 0},
           {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 2}},
           {"type": "message_stop"}]
    return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in evs)


def _chunks(include_usage: bool) -> list:
    t = StreamTranslator("openai", "anthropic", "gpt-x", include_usage=include_usage)
    p = SSEParser()
    evs = p.feed(t.feed(_claude_stream()) + t.finish()) + p.finish()
    assert evs[-1].data == "[DONE]"
    return [json.loads(e.data) for e in evs[:-1]]


def test_streamed_usage_only_when_asked_and_in_a_chunk_of_its_own():
    chunks = _chunks(include_usage=True)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and "usage" not in chunks[-2]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    chunks = _chunks(include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)


def test_several_choices_cannot_be_asked_of_claude():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 3}
    with pytest.raises(DialectError, match="^n greater than 1"):
        translate_request("openai", "anthropic", "/v1/chat/completions", body)
    for n in (1, None):  # one choice is what Claude gives
        translate_request("openai", "anthropic", "/v1/chat/completions", dict(body, n=n))


def test_cached_prompt_tokens_of_an_openai_model_are_cache_reads_for_an_anthropic_caller():
    usage = {"prompt_tokens": 3012, "completion_tokens": 7, "total_tokens": 3019,
             "prompt_tokens_details": {"cached_tokens": 3000}}
    answer = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "ok"}}], "usage": usage}
    want = {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 3000}
    assert translate_response("anthropic", "openai", answer, "claude")["usage"] == want
    chunks = [{"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "ok"}}]},
              {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": usage}]
    t = StreamTranslator("anthropic", "openai", "claude")
    data = b"".join(b"data: %s\n\n" % json.dumps(c).encode() for c in chunks) + b"data: [DONE]\n\n"
    p = SSEParser()
    evs = [json.loads(e.data) for e in p.feed(t.feed(data) + t.finish()) + p.finish()]
    assert [e for e in evs if e["type"] == "message_delta"][0]["usage"] == want


def test_a_claude_stream_s_later_counts_replace_its_first():
    # message_delta's usage is cumulative and may give the input counts too (server tools, the cache)
    t = StreamTranslator("openai", "anthropic", "gpt-x")
    data = _claude_stream().replace(b'"usage": {"output_tokens": 2}',
                                    b'"usage": {"input_tokens": 9, "cache_read_input_tokens": 100, "output_tokens": 2}')
    p = SSEParser()
    chunks = [json.loads(e.data) for e in p.feed(t.feed(data) + t.finish()) + p.finish() if e.data != "[DONE]"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 109, "completion_tokens": 2, "total_tokens": 111,
                                   "prompt_tokens_details": {"cached_tokens": 100}}


def test_an_openai_model_s_refusal_reaches_an_anthropic_caller():
    answer = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6}}
    msg = translate_response("anthropic", "openai", answer, "claude")
    assert msg["content"] == [{"type": "text", "text": "I can't help with that."}] and msg["stop_reason"] == "refusal"
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "refusal": ""}}]},
              {"choices": [{"index": 0, "delta": {"refusal": "I can't"}}]},
              {"choices": [{"index": 0, "delta": {"refusal": " help."}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    t = StreamTranslator("anthropic", "openai", "claude")
    data = b"".join(b"data: %s\n\n" % json.dumps(dict(c, id="c")).encode() for c in chunks) + b"data: [DONE]\n\n"
    p = SSEParser()
    evs = [json.loads(e.data) for e in p.feed(t.feed(data) + t.finish()) + p.finish()]
    assert "".join(e["delta"]["text"] for e in evs if e["type"] == "content_block_delta") == "I can't help."
    assert [e for e in evs if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "refusal"


def test_a_claude_tool_call_without_arguments_streams_openai_arguments_that_parse():
    def ev(o):
        return b"event: %s\ndata: %s\n\n" % (o["type"].encode(), json.dumps(o).encode())
    data = b"".join(ev(o) for o in [
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "now", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"}])
    t = StreamTranslator("openai", "anthropic", "gpt-x", include_usage=False)
    p = SSEParser()
    args: dict = {}
    for e in p.feed(t.feed(data) + t.finish()) + p.finish():
        if e.data != "[DONE]":
            for call in json.loads(e.data)["choices"][0]["delta"].get("tool_calls") or []:
                args[call["index"]] = args.get(call["index"], "") + call["function"]["arguments"]
    assert {k: json.loads(v) for k, v in args.items()} == {0: {}, 1: {"a": 1}}


@pytest.mark.parametrize("chunks", [
    # the calls' arguments interleaved, one call a chunk (a server streaming its parallel calls at once)
    [[(0, "call_a", "f", ""), ], [(0, None, None, '{"a":')], [(1, "call_b", "g", '{"b":')], [(0, None, None, "1}")],
     [(1, None, None, "2}")]],
    # every call in each chunk, arguments split across chunks
    [[(0, "call_a", "f", '{"a":'), (1, "call_b", "g", '{"b":')], [(0, None, None, "1}"), (1, None, None, "2}")]],
    # one after the other, as OpenAI streams them
    [[(0, "call_a", "f", '{"a":')], [(0, None, None, "1}")], [(1, "call_b", "g", '{"b":2')], [(1, None, None, "}")]],
])
def test_parallel_tool_calls_of_an_openai_upstream_reach_an_anthropic_caller_one_whole_block_each(chunks):
    # Anthropic content blocks cannot interleave: a call whose arguments came back after another call
    # had begun was cut in two blocks, the second without a name (the SDK's message held broken calls)
    def delta(calls):
        return {"tool_calls": [{"index": i, **({"id": cid, "type": "function"} if cid else {}),
                                "function": {**({"name": name} if name else {}), "arguments": args}}
                               for i, cid, name, args in calls]}
    data = b"".join(b"data: %s\n\n" % json.dumps({"id": "c", "choices": [{"index": 0, "delta": delta(c)}]}).encode()
                    for c in chunks)
    data += b"data: %s\n\n" % json.dumps({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}).encode()
    t = StreamTranslator("anthropic", "openai", "claude")
    p = SSEParser()
    evs = [json.loads(e.data) for e in p.feed(t.feed(data + b"data: [DONE]\n\n") + t.finish()) + p.finish()]
    blocks, open_block = {}, None
    for e in evs:
        if e["type"] == "content_block_start":
            assert open_block is None, "blocks do not interleave"
            open_block = e["index"]
            blocks[e["index"]] = dict(e["content_block"], args="")
        elif e["type"] == "content_block_delta":
            assert e["index"] == open_block
            blocks[e["index"]]["args"] += e["delta"]["partial_json"]
        elif e["type"] == "content_block_stop":
            assert e["index"] == open_block
            open_block = None
    assert [(b["id"], b["name"], json.loads(b["args"])) for b in blocks.values()] == [
        ("call_a", "f", {"a": 1}), ("call_b", "g", {"b": 2})]
    assert evs[-2]["delta"]["stop_reason"] == "tool_use"


def test_the_stop_sequence_a_vllm_model_ended_on_reaches_an_anthropic_caller():
    # vLLM (an in-country model's usual server) says which stop string matched: choices[].stop_reason
    def answer(matched):
        return {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop", "stop_reason": matched,
                                                 "message": {"role": "assistant", "content": "<a>42"}}]}
    msg = translate_response("anthropic", "openai", answer("</a>"), "claude", stops=("</a>", "\n\n"))
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", "</a>")
    for matched, stops in ((None, ("</a>",)), (2, ("</a>",)), ("not sent", ("</a>",)), ("</a>", ())):
        msg = translate_response("anthropic", "openai", answer(matched), "claude", stops=stops)
        assert (msg["stop_reason"], msg["stop_sequence"]) == ("end_turn", None)  # EOS, a token id, made up
    chunks = [{"choices": [{"index": 0, "delta": {"content": "<a>42"}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "</a>"}]}]
    t = StreamTranslator("anthropic", "openai", "claude", stops=("</a>",))
    data = b"".join(b"data: %s\n\n" % json.dumps(dict(c, id="c")).encode() for c in chunks) + b"data: [DONE]\n\n"
    p = SSEParser()
    evs = [json.loads(e.data) for e in p.feed(t.feed(data) + t.finish()) + p.finish()]
    delta = [e for e in evs if e["type"] == "message_delta"][0]["delta"]
    assert (delta["stop_reason"], delta["stop_sequence"]) == ("stop_sequence", "</a>")


def test_openai_safety_identifier_is_claude_s_metadata_user_id():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "safety_identifier": "hash-1"}
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", body)
    assert out["metadata"] == {"user_id": "hash-1"}
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", dict(body, user="u-1"))
    assert out["metadata"] == {"user_id": "hash-1"}  # the field that replaces user comes first
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", {"model": "m", "messages": [], "user": "u-1"})
    assert out["metadata"] == {"user_id": "u-1"}


def test_a_tool_result_s_image_follows_the_tool_message_for_an_openai_model():
    shot = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    body = {"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": "take a screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "done"}, shot]},
            {"type": "text", "text": "what does it show?"}]}]}
    _, out = translate_request("anthropic", "openai", "/v1/messages", body)
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "done"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                                     {"type": "text", "text": "what does it show?"}]}]


def test_an_earlier_refusal_in_the_history_reaches_claude_as_what_the_model_said():
    def turns(assistant):
        body = {"model": "m", "messages": [{"role": "user", "content": "q1"}, assistant, {"role": "user", "content": "q2"}]}
        return translate_request("openai", "anthropic", "/v1/chat/completions", body)[1]["messages"]
    want = [{"role": "user", "content": [{"type": "text", "text": "q1"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "I can't."}]},
            {"role": "user", "content": [{"type": "text", "text": "q2"}]}]
    # as the SDK's ChatCompletionMessage has it (content null), and as a refusal content part
    assert turns({"role": "assistant", "content": None, "refusal": "I can't."}) == want
    assert turns({"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}) == want


def test_no_tool_choice_goes_to_an_openai_model_without_tools():
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
            "tools": [], "tool_choice": {"type": "auto"}}
    _, out = translate_request("anthropic", "openai", "/v1/messages", body)
    assert "tools" not in out and "tool_choice" not in out
    _, out = translate_request("anthropic", "openai", "/v1/messages", dict(body, tools=None, tool_choice={"type": "none"}))
    assert "tool_choice" not in out
    _, out = translate_request("anthropic", "openai", "/v1/messages", dict(body, tools=[
        {"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("required", False)


def test_a_tool_result_s_text_blocks_stay_apart_for_an_openai_model():
    body = {"model": "m", "max_tokens": 64, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                      "content": [{"type": "text", "text": "timeout"}, {"type": "text", "text": "retry later"}]}]}]}
    _, out = translate_request("anthropic", "openai", "/v1/messages", body)
    assert out["messages"][1] == {"role": "tool", "tool_call_id": "toolu_1", "content": [
        {"type": "text", "text": "Error: timeout"}, {"type": "text", "text": "retry later"}]}
    one = [{"type": "text", "text": "ok"}]
    body["messages"][1]["content"][0].update(content=one, is_error=False)
    _, out = translate_request("anthropic", "openai", "/v1/messages", body)
    assert out["messages"][1]["content"] == "ok"  # one block: a plain string, as before


def test_an_openai_tool_message_s_text_parts_stay_apart_for_claude():
    body = {"model": "m", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", body)
    assert out["messages"][1]["content"] == [{"type": "tool_result", "tool_use_id": "c1", "content": [
        {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]
    body["messages"][1]["content"] = [{"type": "text", "text": "one"}]
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", body)
    assert out["messages"][1]["content"][0]["content"] == "one"


def test_a_forced_tool_call_ending_on_stop_is_a_tool_use_for_an_anthropic_caller():
    # OpenAI (and vLLM) end a call made under a named tool_choice with finish_reason "stop"
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    answer = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "tool_calls": [call]}}]}
    assert translate_response("anthropic", "openai", answer, "claude")["stop_reason"] == "tool_use"
    answer["choices"][0]["message"] = {"role": "assistant", "content": "just text"}
    assert translate_response("anthropic", "openai", answer, "claude")["stop_reason"] == "end_turn"
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [dict(call, index=0)]}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    t = StreamTranslator("anthropic", "openai", "claude")
    data = b"".join(b"data: %s\n\n" % json.dumps(dict(c, id="c")).encode() for c in chunks) + b"data: [DONE]\n\n"
    p = SSEParser()
    evs = [json.loads(e.data) for e in p.feed(t.feed(data) + t.finish()) + p.finish()]
    assert [e for e in evs if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("model,stream,configured,sent", [
    ("claude-opus-4-1-20250805", True, None, 32000), ("claude-opus-4-5", True, None, 64000),
    ("claude-opus-4-6", True, None, 128000), ("claude-opus-4-6", False, None, 21333),
    ("claude-3-5-haiku-latest", False, None, 8192), ("claude-sonnet-4-5", False, None, 21333),
    ("a-model-the-gateway-does-not-know", True, None, 4096), ("claude-sonnet-4-5", False, 100000, 100000),
])
def test_claude_s_max_tokens_for_an_openai_caller_without_a_limit(model, stream, configured, sent):
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "oi"}]}
    claude = Upstream(name="claude", url="https://api.anthropic.com/v1", dialect="anthropic", residency="US",
                      default_max_tokens=configured)
    _, out = translate_request("openai", "anthropic", "/v1/chat/completions", body, claude)
    assert out["max_tokens"] == sent
    body["max_tokens"] = 9  # the caller's own limit always wins
    assert translate_request("openai", "anthropic", "/v1/chat/completions", body, claude)[1]["max_tokens"] == 9


def test_an_upstream_that_knows_only_max_tokens_gets_the_anthropic_caller_s_limit_as_max_tokens():
    body = {"model": "m", "max_tokens": 12, "messages": [{"role": "user", "content": "oi"}]}
    ollama = Upstream(name="ollama", url="http://10.0.0.7:11434/v1", residency="BR", legacy_max_tokens=True)
    _, out = translate_request("anthropic", "openai", "/v1/messages", body, ollama)
    assert out["max_tokens"] == 12 and "max_completion_tokens" not in out
    vllm = Upstream(name="vllm", url="http://10.0.0.5:8000/v1", residency="BR")
    _, out = translate_request("anthropic", "openai", "/v1/messages", body, vllm)
    assert out["max_completion_tokens"] == 12 and "max_tokens" not in out
