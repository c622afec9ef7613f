"""The official SDKs, their requests crossing dialects (OpenAI caller → Anthropic upstream and back),
through the gateway in front of the stub: what a client sees only because of the translation."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from gateway import metrics
from gateway.testing import stub
from gateway.testing.harness import Harness

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


async def test_an_other_dialect_upstream_s_refusal_reaches_the_caller_in_its_own_words(gw):
    # the OpenAI-dialect upstream refuses max_tokens 0: the Anthropic caller reads why, in its error shape
    with pytest.raises(anthropic.BadRequestError) as e:
        await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=0, messages=[{"role": "user", "content": "oi"}])
    assert gw.received("US")[-1]["path"].endswith("/chat/completions")
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "Invalid 'max_completion_tokens'" in e.value.message and e.value.body["error"]["code"] == "upstream_error"
    # and Claude's refusal, an OpenAI caller
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="claude-only", stop=[7], messages=[{"role": "user", "content": "oi"}])
    assert gw.received("US")[-1]["path"].endswith("/messages")
    assert "Invalid 'stop_sequences'" in e.value.message and e.value.code == "upstream_error"


CPF, OTHER_CPF = "529.982.247-25", "111.444.777-35"


async def test_a_translated_upstream_error_is_restored_and_leak_checked(tmp_path, monkeypatch):
    # the OpenAI-dialect upstream's 400 quotes the (pseudonymized) request and names someone else's CPF
    def answer(self, req):
        sent = orjson.loads(req.body)
        body = orjson.dumps({"error": {"message": f"invalid {sent['messages'][0]['content']}; see {OTHER_CPF}",
                                       "type": "invalid_request_error", "param": None, "code": None}})
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n" % len(body) + body)

    monkeypatch.setattr(stub._StubProtocol, "_answer", answer)
    leaks_before = metrics.leak("br.cpf")._value.get()
    async with Harness(tmp_path) as h:
        with pytest.raises(anthropic.BadRequestError) as e:
            await ant(h).messages.create(model="gpt-4o-mini", max_tokens=16,
                                         messages=[{"role": "user", "content": f"meu CPF {CPF}"}])
    assert f"invalid meu CPF {CPF}" in e.value.message and "[CPF_1]" not in e.value.message
    assert metrics.leak("br.cpf")._value.get() == leaks_before + 1  # someone else's CPF: a leak, counted


def _answering(body: bytes, ctype: str = "application/json"):
    """The stub's answer replaced by ``body``, whatever the request."""
    def answer(self, req):
        self.transport.write(f"HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                             + body)
    return answer


async def test_anthropic_caller_sees_an_openai_model_s_refusal(tmp_path, monkeypatch):
    said = "I'm sorry, I can't help with that."
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": None, "refusal": said}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}}
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": None, "refusal": ""}, "finish_reason": None},
              {"index": 0, "delta": {"refusal": said}, "finish_reason": None},
              {"index": 0, "delta": {}, "finish_reason": "stop"}]
    stream = b"".join(b"data: " + orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                                                "model": "gpt-4o-mini", "choices": [c]}) + b"\n\n" for c in chunks)
    msgs = [{"role": "user", "content": "oi"}]
    async with Harness(tmp_path) as h:
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(orjson.dumps(chat)))
        msg = await ant(h).messages.create(model="gpt-4o-mini", max_tokens=64, messages=msgs)
        assert (msg.stop_reason, [b.text for b in msg.content]) == ("refusal", [said])
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(stream + b"data: [DONE]\n\n", "text/event-stream"))
        async with ant(h).messages.stream(model="gpt-4o-mini", max_tokens=64, messages=msgs) as s:
            final = await s.get_final_message()
        assert (final.stop_reason, [b.text for b in final.content]) == ("refusal", [said])


async def test_openai_caller_streaming_claude_s_call_of_a_tool_without_parameters_gets_json_arguments(tmp_path, monkeypatch):
    def ev(o: dict) -> bytes:
        return b"event: " + o["type"].encode() + b"\ndata: " + orjson.dumps(o) + b"\n\n"
    stream = b"".join(ev(o) for o in [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
                                              "content": [], "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"}])
    tools = [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]
    async with Harness(tmp_path) as h:
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(stream, "text/event-stream"))
        async with oai(h).chat.completions.stream(model="claude-only", tools=tools,
                                                  messages=[{"role": "user", "content": "que horas são?"}]) as s:
            final = await s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "now"
    assert orjson.loads(call.function.arguments) == {}


async def test_anthropic_caller_learns_which_stop_sequence_an_in_country_vllm_model_ended_on(tmp_path, monkeypatch):
    # a vLLM-served model (OpenAI dialect) names the stop string it matched in choices[].stop_reason
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "llama",
            "choices": [{"index": 0, "finish_reason": "stop", "stop_reason": "</answer>", "logprobs": None,
                         "message": {"role": "assistant", "content": "<answer>42"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": "<answer>42"}, "finish_reason": None},
              {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "</answer>"}]
    stream = b"".join(b"data: " + orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                                                "model": "llama", "choices": [c]}) + b"\n\n" for c in chunks)
    kw = dict(model="gpt-4o-mini", max_tokens=64, stop_sequences=["</answer>", "END"],
              messages=[{"role": "user", "content": "oi"}])
    async with Harness(tmp_path) as h:
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(orjson.dumps(chat)))
        msg = await ant(h).messages.create(**kw)
        assert (msg.stop_reason, msg.stop_sequence, msg.content[0].text) == ("stop_sequence", "</answer>", "<answer>42")
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(stream + b"data: [DONE]\n\n", "text/event-stream"))
        async with ant(h).messages.stream(**kw) as s:
            final = await s.get_final_message()
        assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "</answer>")


async def test_openai_caller_s_safety_identifier_reaches_claude(gw):
    await oai(gw).chat.completions.create(model="claude-only", safety_identifier="user-hash-7",
                                          messages=[{"role": "user", "content": "oi"}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages") and sent["body"]["metadata"] == {"user_id": "user-hash-7"}


async def test_anthropic_caller_s_tool_result_image_reaches_an_openai_model(gw):
    shot = {"type": "image", "source": {"type": "url", "url": "https://example.org/shot.png"}}
    msg = await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=64, tools=TOOLS_A, messages=[
        {"role": "user", "content": "take a screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "screen"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [shot]}]}])
    assert msg.content[0].text.startswith("[stub BR]")  # (an image it cannot inspect stays in the country)
    sent = gw.received("BR")[-1]
    assert sent["path"].endswith("/chat/completions")
    assert sent["body"]["messages"][-2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": ""},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.org/shot.png"}}]}]


async def test_openai_caller_replaying_a_refusal_to_claude(gw):
    for refused in ({"role": "assistant", "content": None, "refusal": "Não posso."},
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": "Não posso."}]}):
        answer = await oai(gw).chat.completions.create(model="claude-only", messages=[
            {"role": "user", "content": "pergunta um"}, refused, {"role": "user", "content": "pergunta dois"}])
        assert answer.choices[0].message.content
        sent = gw.received("US")[-1]["body"]["messages"]
        assert [(m["role"], [b["text"] for b in m["content"]]) for m in sent] == [
            ("user", ["pergunta um"]), ("assistant", ["Não posso."]), ("user", ["pergunta dois"])]


async def test_anthropic_caller_s_tool_choice_without_function_tools_is_not_sent_to_an_openai_model(gw):
    await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=32, tool_choice={"type": "none"},
                                  messages=[{"role": "user", "content": "oi"}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/chat/completions") and "tool_choice" not in sent["body"]


async def test_anthropic_caller_s_tool_result_text_blocks_reach_an_openai_model_apart(gw):
    msg = await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=64, tools=TOOLS_A, messages=[
        {"role": "user", "content": "consulte"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "text", "text": "primeiro item"}, {"type": "text", "text": "segundo item"}]}]}])
    assert msg.content[0].type == "text"
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/chat/completions")
    assert sent["body"]["messages"][-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": [
        {"type": "text", "text": "primeiro item"}, {"type": "text", "text": "segundo item"}]}


async def test_openai_caller_s_tool_message_text_parts_reach_claude_apart(gw):
    await oai(gw).chat.completions.create(model="claude-only", tools=TOOLS_O, messages=[
        {"role": "user", "content": "consulte"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "primeiro item"},
                                                               {"type": "text", "text": "segundo item"}]}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages")
    assert sent["body"]["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": [
        {"type": "text", "text": "primeiro item"}, {"type": "text", "text": "segundo item"}]}]


async def test_anthropic_caller_forcing_a_tool_on_an_openai_model_gets_stop_reason_tool_use(tmp_path, monkeypatch):
    # OpenAI ends a call made under a named tool_choice with finish_reason "stop" (not "tool_calls")
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    chunks = [{"index": 0, "delta": {"role": "assistant", "tool_calls": [dict(call, index=0)]}, "finish_reason": None},
              {"index": 0, "delta": {}, "finish_reason": "stop"}]
    stream = b"".join(b"data: " + orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                                                "model": "gpt-4o-mini", "choices": [c]}) + b"\n\n" for c in chunks)
    kw = dict(model="gpt-4o-mini", max_tokens=64, tools=TOOLS_A, tool_choice={"type": "tool", "name": "lookup"},
              messages=[{"role": "user", "content": "oi"}])
    async with Harness(tmp_path) as h:
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(orjson.dumps(chat)))
        msg = await ant(h).messages.create(**kw)
        assert msg.stop_reason == "tool_use" and msg.content[0].input == {"q": "x"}
        monkeypatch.setattr(stub._StubProtocol, "_answer", _answering(stream + b"data: [DONE]\n\n", "text/event-stream"))
        async with ant(h).messages.stream(**kw) as s:
            final = await s.get_final_message()
        assert final.stop_reason == "tool_use" and final.content[0].input == {"q": "x"}


async def test_anthropic_caller_s_max_tokens_reaches_an_openai_reasoning_model_as_it_takes_it(gw):
    # o-series models refuse chat's legacy max_tokens; every current OpenAI chat model (and vLLM,
    # SGLang) takes max_completion_tokens
    kw = dict(max_tokens=3, messages=[{"role": "user", "content": "um dois três quatro cinco"}])
    for model in ("o4-mini", "gpt-4o-mini"):
        msg = await ant(gw).messages.create(model=model, **kw)
        assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 3
        sent = gw.received("US")[-1]
        assert sent["path"].endswith("/chat/completions") and sent["body"]["model"] == model
        assert sent["body"]["max_completion_tokens"] == 3 and "max_tokens" not in sent["body"]
    async with ant(gw).messages.stream(model="o4-mini", **kw) as s:
        assert (await s.get_final_message()).stop_reason == "max_tokens"


async def test_openai_caller_without_a_limit_gets_claude_s_whole_answer_not_4096_tokens(gw):
    # an OpenAI model writes until its own maximum when no limit is set; Claude needs max_tokens,
    # and 4096 of them cut this answer (5 000 of the stub's tokens) short with finish_reason "length"
    words = " ".join(f"w{i}" for i in range(5000))
    answer = await oai(gw).chat.completions.create(model="claude-only", messages=[{"role": "user", "content": words}])
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content.endswith(" w4999")
    sent = gw.received("US")[-1]
    # claude-sonnet-4 writes up to 64 000 tokens; an answer not streamed, at most what Anthropic's
    # SDKs send without streaming
    assert sent["path"].endswith("/messages") and sent["body"]["max_tokens"] == 21333
    await oai(gw).chat.completions.create(model="claude-only", stream=True, messages=[{"role": "user", "content": "oi"}])
    assert gw.received("US")[-1]["body"]["max_tokens"] == 64000
    await oai(gw).chat.completions.create(model="claude-only", max_completion_tokens=7,
                                          messages=[{"role": "user", "content": "oi"}])
    assert gw.received("US")[-1]["body"]["max_tokens"] == 7


@pytest.mark.parametrize("asked,named", [
    (dict(logprobs=True, top_logprobs=2), "logprobs"),
    (dict(response_format={"type": "json_object"}), "response_format json_object"),
    (dict(functions=[{"name": "lookup", "parameters": TOOLS_A[0]["input_schema"]}]), "functions"),
    (dict(tools=[{"type": "custom", "custom": {"name": "sql"}}]), "tools of a type other than function"),
    (dict(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}), "audio"),
    (dict(logit_bias={"1734": -100}), "logit_bias"),
    (dict(web_search_options={}), "web_search_options"),
    (dict(tools=TOOLS_O, tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "lookup"}}]}}), "tool_choice of a type other than function"),
])
async def test_openai_caller_asking_claude_for_what_it_cannot_do_gets_a_400_naming_it(gw, asked, named):
    # dropped, the caller would read logprobs None, parse prose as JSON, or never have the model see
    # its functions, without knowing why
    before = len(gw.received("US"))
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="claude-only", messages=[{"role": "user", "content": "oi"}], **asked)
    assert named in e.value.message and "Anthropic" in e.value.message
    assert len(gw.received("US")) == before
    # asking for nothing passes: logprobs false, JSON mode's plain text
    answer = await oai(gw).chat.completions.create(model="claude-only", logprobs=False, response_format={"type": "text"},
                                                   messages=[{"role": "user", "content": "oi"}])
    assert answer.choices[0].message.content


async def test_system_texts_cross_dialects_apart_and_in_order(gw):
    # joined into one string, where one instruction ended and the next began was lost
    await oai(gw).chat.completions.create(model="claude-only", messages=[
        {"role": "system", "content": "Você é o assistente da Receita."},
        {"role": "developer", "content": [{"type": "text", "text": "Responda em português."},
                                          {"type": "text", "text": "Seja breve."}]},
        {"role": "user", "content": "oi"}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages") and sent["body"]["system"] == [
        {"type": "text", "text": "Você é o assistente da Receita."}, {"type": "text", "text": "Responda em português."},
        {"type": "text", "text": "Seja breve."}]
    await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=32, messages=[{"role": "user", "content": "oi"}],
                                  system=[{"type": "text", "text": "Você é o assistente da Receita."},
                                          {"type": "text", "text": "Seja breve.", "cache_control": {"type": "ephemeral"}}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/chat/completions") and sent["body"]["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "Você é o assistente da Receita."}, {"type": "text", "text": "Seja breve."}]}
    # an image in a system message, which Claude's system prompt cannot hold: a 400, not dropped
    # (a US caller: the BR policy keeps content it cannot inspect in the country)
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw, "us").chat.completions.create(model="claude-only", messages=[
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://example.org/logo.png"}}]},
            {"role": "user", "content": "oi"}])
    assert "messages[0].content (image) has no equivalent in an Anthropic system prompt" in e.value.message


async def test_anthropic_caller_asking_an_openai_model_for_anthropic_s_own_tools_gets_a_400_naming_them(gw):
    # dropped, the model answered without the web search (or the MCP server's tools) the caller gave it
    for asked, named in ((dict(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]),
                          "tools[0] (a tool Anthropic defines or runs)"),
                         (dict(extra_body={"mcp_servers": [{"type": "url", "url": "https://mcp.example.org/sse",
                                                            "name": "docs"}]}), "mcp_servers")):
        before = len(gw.received("US"))
        with pytest.raises(anthropic.BadRequestError) as e:
            await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=32,
                                          messages=[{"role": "user", "content": "oi"}], **asked)
        assert named in e.value.message and "OpenAI" in e.value.message
        assert len(gw.received("US")) == before


async def test_strict_tools_and_structured_output_s_older_form_cross_dialects(gw):
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"], "additionalProperties": False}
    await ant(gw).messages.create(model="gpt-4o-mini", max_tokens=32, messages=[{"role": "user", "content": "oi"}],
                                  tools=[{"name": "lookup", "input_schema": schema, "strict": True}],
                                  extra_body={"output_format": {"type": "json_schema", "schema": schema}})
    sent = gw.received("US")[-1]["body"]
    assert sent["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": schema, "strict": True}}]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    await oai(gw).chat.completions.create(model="claude-only", messages=[{"role": "user", "content": "oi"}], tools=[
        {"type": "function", "function": {"name": "lookup", "parameters": schema, "strict": True}}])
    sent = gw.received("US")[-1]["body"]
    assert sent["tools"] == [{"name": "lookup", "input_schema": schema, "strict": True}]


EMAIL = "maria.silva@example.com"


@pytest.mark.parametrize("stream", [False, True])
async def test_translated_requests_are_inspected_whole_and_their_answers_restored(gw, stream):
    # every text the translation moves (system texts now blocks or parts) was inspected where the
    # caller put it: no value reaches the foreign model, and its placeholders come back restored
    text = f"Meu CPF é {CPF} e meu e-mail {EMAIL}."
    msgs = [{"role": "system", "content": f"Atenda {EMAIL}."},
            {"role": "developer", "content": [{"type": "text", "text": f"CPF do titular: {CPF}"},
                                              {"type": "text", "text": "Seja breve."}]},
            {"role": "user", "content": text}]
    if stream:
        got = "".join([c.choices[0].delta.content or "" async for c in await oai(gw).chat.completions.create(
            model="claude-only", stream=True, messages=msgs) if c.choices])
    else:
        got = (await oai(gw).chat.completions.create(model="claude-only", messages=msgs)).choices[0].message.content
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages") and CPF not in str(sent["body"]) and EMAIL not in str(sent["body"])
    assert [b["text"] for b in sent["body"]["system"]] == ["Atenda [EMAIL_1].", "CPF do titular: [CPF_1]", "Seja breve."]
    assert got.endswith(text)

    kw = dict(model="gpt-4o-mini", max_tokens=200, messages=[{"role": "user", "content": text}],
              system=[{"type": "text", "text": f"Atenda {EMAIL}."}, {"type": "text", "text": f"CPF: {CPF}"}])
    if stream:
        async with ant(gw).messages.stream(**kw) as s:
            got = (await s.get_final_message()).content[0].text
    else:
        got = (await ant(gw).messages.create(**kw)).content[0].text
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/chat/completions") and CPF not in str(sent["body"]) and EMAIL not in str(sent["body"])
    assert sent["body"]["messages"][0]["content"] == [{"type": "text", "text": "Atenda [EMAIL_1]."},
                                                      {"type": "text", "text": "CPF: [CPF_1]"}]
    assert got.endswith(text)


async def test_an_upstream_s_max_tokens_options_reach_the_translation(gw):
    # an in-country server that knows only max_tokens (Ollama); a Claude upstream with its own default
    text = gw.config_path.read_text()
    text = text.replace("dialect: openai, residency: BR}", "dialect: openai, residency: BR, legacy_max_tokens: true}")
    text = text.replace("dialect: anthropic, residency: US,", "dialect: anthropic, residency: US, default_max_tokens: 1000,")
    gw.config_path.write_text(text)
    assert (await gw.holder.reload())[0]
    await ant(gw).messages.create(model="llama-3.3-70b", max_tokens=5, messages=[{"role": "user", "content": "oi"}])
    sent = gw.received("BR")[-1]["body"]
    assert sent["max_tokens"] == 5 and "max_completion_tokens" not in sent
    await oai(gw).chat.completions.create(model="claude-only", messages=[{"role": "user", "content": "oi"}])
    assert gw.received("US")[-1]["body"]["max_tokens"] == 1000


async def test_openai_caller_s_tool_history_reaches_claude_whole_or_is_refused(gw):
    # OpenAI-compatible agents hand a screenshot tool's image back in the tool message; Claude's tool
    # results take images (a US caller: the BR policy keeps content it cannot inspect in the country)
    shot = {"type": "image_url", "image_url": {"url": "https://example.org/shot.png"}}
    await oai(gw, "us").chat.completions.create(model="claude-only", tools=TOOLS_O, messages=[
        {"role": "user", "content": "take a screenshot"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "screen"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": [shot]}])
    sent = gw.received("US")[-1]
    assert sent["path"].endswith("/messages")
    assert sent["body"]["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.org/shot.png"}}]}]
    # a custom tool's call in the history: a 400 naming it, not a tool_use of no name
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="claude-only", messages=[
            {"role": "user", "content": "rode a consulta"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "custom", "custom": {"name": "sql", "input": "select 1"}}]},
            {"role": "user", "content": "e agora?"}])
    assert "messages[1].tool_calls[0] (a custom tool call) has no equivalent" in e.value.message
    # and a legacy function call: a 400 too, not an assistant turn without the call
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="claude-only", messages=[
            {"role": "user", "content": "consulte"},
            {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": '{"q": "x"}'}},
            {"role": "user", "content": "e agora?"}])
    assert "messages[1].function_call has no equivalent in the Anthropic dialect" in e.value.message
