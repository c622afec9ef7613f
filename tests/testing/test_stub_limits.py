"""The stub honours the generation limits real providers do — max tokens, ``n`` choices, stop sequences —
in every endpoint's own fields and wire format, as the official SDKs parse them, plain and streaming."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from gateway.testing.stub import start_stub

TEXT = "um dois três quatro cinco"
ANSWER = f"[stub BR] You said: {TEXT}"
MSGS = [{"role": "user", "content": TEXT}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}}}}]


@pytest.fixture
async def stub():
    s = await start_stub("127.0.0.1", 0, "BR")
    yield s
    await s.close()


def oai(stub) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stub.url + "/v1", api_key="sk-test", max_retries=0)


def ant(stub) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stub.url, api_key="sk-ant-test", max_retries=0)


async def chat_stream(client, **kw) -> tuple[list, dict, dict]:
    """(chunks, text by choice index, finish_reason by choice index) of a streamed chat answer."""
    stream = await client.chat.completions.create(model="m", messages=MSGS, stream=True, **kw)
    chunks = [c async for c in stream]
    texts, reasons = {}, {}
    for c in chunks:
        for ch in c.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            if ch.finish_reason:
                reasons[ch.index] = ch.finish_reason
    return chunks, texts, reasons


# --- max tokens -------------------------------------------------------------------------------------------
async def test_chat_max_tokens_cut_the_answer_with_finish_reason_length(stub):
    client = oai(stub)
    for field in ("max_completion_tokens", "max_tokens"):  # the current name and the legacy one
        r = await client.chat.completions.create(model="m", messages=MSGS, **{field: 3})
        assert r.choices[0].message.content == "[stub BR] You" and r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 3
    chunks, texts, reasons = await chat_stream(client, max_completion_tokens=3, stream_options={"include_usage": True})
    assert texts == {0: "[stub BR] You"} and reasons == {0: "length"} and chunks[-1].usage.completion_tokens == 3
    # a limit the answer fits in changes nothing but the exact count
    r = await client.chat.completions.create(model="m", messages=MSGS, max_completion_tokens=100)
    assert r.choices[0].message.content == ANSWER and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == len(ANSWER.split())


async def test_chat_tool_call_arguments_cut_by_max_tokens(stub):
    msg = [{"role": "user", "content": "please call tool for Ana"}]
    r = await oai(stub).chat.completions.create(model="m", messages=msg, tools=TOOLS, max_completion_tokens=2)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.tool_calls[0].function.arguments == '{"query":"please call'
    stream = await oai(stub).chat.completions.create(model="m", messages=msg, tools=TOOLS, stream=True,
                                                     max_completion_tokens=2)
    args, reasons = "", []
    async for c in stream:
        for tc in c.choices[0].delta.tool_calls or []:
            args += tc.function.arguments or ""
        reasons.append(c.choices[0].finish_reason)
    assert args == '{"query":"please call' and reasons[-1] == "length"


async def test_completions_max_tokens(stub):
    r = await oai(stub).completions.create(model="m", prompt=TEXT, max_tokens=4)
    assert r.choices[0].text == "[stub BR] You said:" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 4
    stream = await oai(stub).completions.create(model="m", prompt=TEXT, max_tokens=4, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks) == "[stub BR] You said:"
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_responses_max_output_tokens_make_an_incomplete_response(stub):
    client = oai(stub)
    r = await client.responses.create(model="m", input=TEXT, max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.output_text == "[stub BR] You" and r.output[0].status == "incomplete" and r.usage.output_tokens == 3
    events = [e async for e in await client.responses.create(model="m", input=TEXT, max_output_tokens=3, stream=True)]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "[stub BR] You"
    assert events[-1].type == "response.incomplete" and "response.completed" not in [e.type for e in events]
    assert events[-1].response.status == "incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.output_text == "[stub BR] You"
    # enough room: completed as before
    r = await client.responses.create(model="m", input=TEXT, max_output_tokens=100)
    assert r.status == "completed" and r.incomplete_details is None and r.output_text == ANSWER


async def test_responses_function_call_cut_by_max_output_tokens(stub):
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    r = await oai(stub).responses.create(model="m", input="call tool now", tools=tools, max_output_tokens=2)
    assert r.status == "incomplete" and r.output[0].type == "function_call"
    assert r.output[0].arguments == '{"q":"call tool' and r.output[0].status == "incomplete"


async def test_anthropic_max_tokens_stop_reason(stub):
    m = await ant(stub).messages.create(model="c", max_tokens=3, messages=MSGS)
    assert m.content[0].text == "[stub BR] You" and m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
    async with ant(stub).messages.stream(model="c", max_tokens=3, messages=MSGS) as s:
        parts = [t async for t in s.text_stream]
        final = await s.get_final_message()
    assert "".join(parts) == "[stub BR] You" and final.stop_reason == "max_tokens" and final.usage.output_tokens == 3


async def test_anthropic_tool_use_cut_by_max_tokens(stub):
    # cut arguments are no JSON object: the input is what the SDK makes of the cut stream, {}
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"who": {"type": "string"}}}}]
    msgs = [{"role": "user", "content": "call tool about Ana"}]
    m = await ant(stub).messages.create(model="c", max_tokens=2, tools=tools, messages=msgs)
    assert m.stop_reason == "max_tokens" and m.content[0].type == "tool_use" and m.content[0].input == {}
    async with ant(stub).messages.stream(model="c", max_tokens=2, tools=tools, messages=msgs) as s:
        final = await s.get_final_message()
    assert final.stop_reason == "max_tokens" and final.content[0].input == {}


# --- n choices ----------------------------------------------------------------------------------------------
async def test_chat_n_choices_plain(stub):
    r = await oai(stub).chat.completions.create(model="m", messages=MSGS, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [c.message.content for c in r.choices] == [f"({i}/3) {ANSWER}" for i in (1, 2, 3)]
    assert all(c.finish_reason == "stop" for c in r.choices)
    one = await oai(stub).chat.completions.create(model="m", messages=MSGS, n=1)
    assert [c.message.content for c in one.choices] == [ANSWER], "n=1 is the plain answer"
    assert r.usage.completion_tokens > 2 * one.usage.completion_tokens, "usage sums the choices"
    r = await oai(stub).chat.completions.create(model="m", messages=MSGS, n=2, max_completion_tokens=3)
    assert r.usage.completion_tokens == 6 and [c.finish_reason for c in r.choices] == ["length", "length"]


async def test_chat_n_choices_streamed_round_robin(stub):
    chunks, texts, reasons = await chat_stream(oai(stub), n=2, stream_options={"include_usage": True})
    assert texts == {0: f"(1/2) {ANSWER}", 1: f"(2/2) {ANSWER}"} and reasons == {0: "stop", 1: "stop"}
    order = [c.choices[0].index for c in chunks if c.choices]
    assert all(len(c.choices) == 1 for c in chunks[:-1]) and order[:4] == [0, 1, 0, 1], "interleaved"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


async def test_chat_n_tool_calls(stub):
    msg = [{"role": "user", "content": "please call tool"}]
    r = await oai(stub).chat.completions.create(model="m", messages=msg, tools=TOOLS, n=2)
    calls = [c.message.tool_calls[0] for c in r.choices]
    assert [json.loads(c.function.arguments) for c in calls] == [{"query": "please call tool"}] * 2
    assert calls[0].id != calls[1].id and [c.finish_reason for c in r.choices] == ["tool_calls"] * 2


async def test_completions_n_choices_plain_and_streaming(stub):
    r = await oai(stub).completions.create(model="m", prompt=TEXT, n=2)
    assert [(c.index, c.text) for c in r.choices] == [(0, f"(1/2) {ANSWER}"), (1, f"(2/2) {ANSWER}")]
    stream = await oai(stub).completions.create(model="m", prompt=TEXT, n=2, stream=True, max_tokens=3)
    texts, reasons = {}, {}
    async for c in stream:
        ch = c.choices[0]
        texts[ch.index] = texts.get(ch.index, "") + ch.text
        reasons[ch.index] = ch.finish_reason
    assert texts == {0: "(1/2) [stub BR]", 1: "(2/2) [stub BR]"} and reasons == {0: "length", 1: "length"}


@pytest.mark.parametrize("n", [0, 129, -1, "2", 1.5, True])
async def test_n_out_of_bounds_is_a_400_naming_it(stub, n):
    with pytest.raises(openai.BadRequestError) as e:
        await oai(stub).chat.completions.create(model="m", messages=MSGS, n=n)
    assert e.value.body["param"] == "n" and e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        await oai(stub).completions.create(model="m", prompt=TEXT, n=n)


async def test_bad_limits_are_400s_in_each_dialect(stub):
    with pytest.raises(openai.BadRequestError) as e:
        await oai(stub).chat.completions.create(model="m", messages=MSGS, max_completion_tokens=0)
    assert e.value.body["param"] == "max_completion_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        await oai(stub).chat.completions.create(model="m", messages=MSGS, stop=["a", "b", "c", "d", "e"])
    assert e.value.body["param"] == "stop"
    with pytest.raises(openai.BadRequestError):
        await oai(stub).responses.create(model="m", input=TEXT, max_output_tokens=-5)
    with pytest.raises(anthropic.BadRequestError) as e:
        await ant(stub).messages.create(model="c", max_tokens=0, messages=MSGS)
    assert e.value.body["type"] == "error" and "max_tokens" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        await ant(stub).messages.create(model="c", max_tokens=9, messages=MSGS, stop_sequences="três")


# --- stop sequences -------------------------------------------------------------------------------------------
async def test_chat_stop_ends_before_the_first_match(stub):
    client = oai(stub)
    for stop, text in (("três", "[stub BR] You said: um dois "), (["cinco", "dois", "zzz"], "[stub BR] You said: um ")):
        r = await client.chat.completions.create(model="m", messages=MSGS, stop=stop)
        assert r.choices[0].message.content == text and r.choices[0].finish_reason == "stop"
    _, texts, reasons = await chat_stream(client, stop=["quatro", "dois"], n=2)
    assert texts == {0: "(1/2) [stub BR] You said: um ", 1: "(2/2) [stub BR] You said: um "}
    assert reasons == {0: "stop", 1: "stop"}
    # the limit reached first wins
    r = await client.chat.completions.create(model="m", messages=MSGS, stop="cinco", max_completion_tokens=2)
    assert r.choices[0].message.content == "[stub BR]" and r.choices[0].finish_reason == "length"


async def test_completions_stop(stub):
    r = await oai(stub).completions.create(model="m", prompt=TEXT, stop=["quatro"])
    assert r.choices[0].text == "[stub BR] You said: um dois três " and r.choices[0].finish_reason == "stop"
    stream = await oai(stub).completions.create(model="m", prompt=TEXT, stop="quatro", stream=True)
    assert "".join([c.choices[0].text async for c in stream]) == "[stub BR] You said: um dois três "


async def test_anthropic_stop_sequences_name_the_one_that_matched(stub):
    m = await ant(stub).messages.create(model="c", max_tokens=64, messages=MSGS, stop_sequences=["quatro", "três"])
    assert m.content[0].text == "[stub BR] You said: um dois "
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == "três"
    async with ant(stub).messages.stream(model="c", max_tokens=64, messages=MSGS, stop_sequences=["quatro"]) as s:
        text = "".join([t async for t in s.text_stream])
        final = await s.get_final_message()
    assert text == "[stub BR] You said: um dois três "
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "quatro"
    m = await ant(stub).messages.create(model="c", max_tokens=64, messages=MSGS, stop_sequences=["zzz"])
    assert m.stop_reason == "end_turn" and m.stop_sequence is None and m.content[0].text == ANSWER
