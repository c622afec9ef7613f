"""Cross-dialect translation fidelity: what a caller gets only because its request crossed dialects."""

import json

import pytest

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
