"""The official SDKs, their requests crossing dialects (OpenAI caller → Anthropic upstream and back),
through the gateway in front of the stub: what a client sees only because of the translation."""

from __future__ import annotations

import openai
import pytest

from sdk_clients import ant, oai

TOOLS_A = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
TOOLS_O = [{"type": "function", "function": {"name": "lookup", "parameters": TOOLS_A[0]["input_schema"]}}]


async def test_anthropic_caller_gets_a_tool_call_cut_by_max_tokens_not_a_502(gw):
    # gpt-4o-mini goes to the OpenAI-dialect foreign upstream: the stub cuts the arguments at 2 tokens
    msg = await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=2, tools=TOOLS_A,
                                        messages=[{"role": "user", "content": "please call tool now"}])
    assert gw.received("US")[-1]["path"].endswith("/chat/completions")
    assert msg.stop_reason == "max_tokens"
    assert [(b.type, b.name, b.input) for b in msg.content] == [("tool_use", "lookup", {})]


async def test_openai_caller_tool_choice_none_without_parallel_calls_reaches_claude_valid(gw):
    answer = await oai(gw).chat.completions.create(
        model="claude-only", tools=TOOLS_O, tool_choice="none", parallel_tool_calls=False,
        messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages") and sent["body"]["tool_choice"] == {"type": "none"}


async def test_openai_caller_streaming_from_claude_gets_usage_as_openai_streams_it(gw):
    msgs = [{"role": "user", "content": "conte até cinco"}]
    chunks = [c async for c in await oai(gw).chat.completions.create(
        model="claude-only", stream=True, stream_options={"include_usage": True}, messages=msgs)]
    assert gw.received("US")[-1]["path"].endswith("/messages")
    # the usage chunk: last, no choices (where `if not chunk.choices: usage = chunk.usage` finds it)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    chunks = [c async for c in await oai(gw).chat.completions.create(model="claude-only", stream=True, messages=msgs)]
    assert all(c.usage is None for c in chunks)  # not asked for: none, as from OpenAI itself
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_caller_asking_claude_for_several_choices_gets_a_400_not_one_choice(gw):
    before = len(gw.received("US"))
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="claude-only", n=2, messages=[{"role": "user", "content": "oi"}])
    assert "n greater than 1" in e.value.message
    assert len(gw.received("US")) == before
    answer = await oai(gw).chat.completions.create(model="claude-only", n=1, messages=[{"role": "user", "content": "oi"}])
    assert len(answer.choices) == 1
