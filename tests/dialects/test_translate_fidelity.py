"""Cross-dialect translation fidelity: what a caller gets only because its request crossed dialects."""

from gateway.dialects.translate import translate_request, translate_response


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
