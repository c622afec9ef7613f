"""The official SDKs parse what the dialect layer produces: translated answers and streams, rewritten
streams, error bodies and stream error events. The bytes are served by an aiohttp app on 127.0.0.1."""

import json
from pathlib import Path

import anthropic
import openai
import pytest
from aiohttp import web

from gateway.dialects.answers import StreamRewriter
from gateway.dialects.errors import error_body, stream_error_event
from gateway.dialects.translate import StreamTranslator, translate_response

FIX = Path(__file__).parents[1] / "fixtures"
NEXT = web.AppKey("next", dict)


def load(name):
    return json.loads((FIX / name).read_text())


def translated_stream(src, dst, data: bytes) -> bytes:
    t = StreamTranslator(src, dst, "caller-model")
    # fed in awkward pieces, as an upstream would deliver them
    return b"".join(t.feed(data[i:i + 37]) for i in range(0, len(data), 37)) + t.finish()


@pytest.fixture
async def serve(aiohttp_server):
    """``await serve(status, body, sse=False)`` → base URL answering every POST with that body."""
    app = web.Application()
    app[NEXT] = {}

    async def answer(request: web.Request) -> web.StreamResponse:
        nxt = request.app[NEXT]
        nxt["request"] = await request.json()
        if nxt["sse"]:
            resp = web.StreamResponse(status=nxt["status"], headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            body = nxt["body"]
            for i in range(0, len(body), 50):
                await resp.write(body[i:i + 50])
            await resp.write_eof()
            return resp
        return web.Response(status=nxt["status"], body=nxt["body"], content_type="application/json")

    app.router.add_post("/{tail:.*}", answer)
    server = await aiohttp_server(app)

    async def set_next(status: int, body: bytes, sse: bool = False) -> str:
        app[NEXT].update(status=status, body=body, sse=sse)
        return str(server.make_url("/"))[:-1]

    return set_next


def oai(url):
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0)


def ant(url):
    return anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0)


MSG = [{"role": "user", "content": "hi"}]


async def test_anthropic_sdk_parses_translated_answers(serve):
    url = await serve(200, json.dumps(translate_response("anthropic", "openai", load("openai/chat_response.json"), "claude-x")).encode())
    msg = await ant(url).messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert isinstance(msg, anthropic.types.Message)
    assert msg.content[0].text == "The taxpayer with CPF [CPF_1] is regular."
    assert (msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens, msg.model) == ("end_turn", 42, 11, "claude-x")
    url = await serve(200, json.dumps(translate_response("anthropic", "openai", load("openai/chat_response_tools.json"), "c")).encode())
    msg = await ant(url).messages.create(model="c", max_tokens=10, messages=MSG)
    assert msg.stop_reason == "tool_use"
    assert (msg.content[0].type, msg.content[0].name, msg.content[0].input) == ("tool_use", "lookup_taxpayer", {"cpf": "[CPF_1]"})


async def test_anthropic_sdk_parses_translated_streams(serve):
    url = await serve(200, translated_stream("anthropic", "openai", (FIX / "openai/chat_stream.sse").read_bytes()), sse=True)
    async with ant(url).messages.stream(model="c", max_tokens=10, messages=MSG) as s:
        text = "".join([t async for t in s.text_stream])
        final = await s.get_final_message()
    assert text == "Olá, o CPF [CPF_1] está regular."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9
    url = await serve(200, translated_stream("anthropic", "openai", (FIX / "openai/chat_stream_tools.sse").read_bytes()), sse=True)
    async with ant(url).messages.stream(model="c", max_tokens=10, messages=MSG) as s:
        final = await s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in final.content] == [("lookup_taxpayer", {"cpf": "[CPF_1]"}), ("send_email", {"to": "[EMAIL_1]"})]


async def test_openai_sdk_parses_translated_answers(serve):
    url = await serve(200, json.dumps(translate_response("openai", "anthropic", load("anthropic/messages_response.json"), "gpt-x")).encode())
    c = await oai(url).chat.completions.create(model="gpt-x", messages=MSG)
    assert isinstance(c, openai.types.chat.ChatCompletion)
    assert c.choices[0].message.content == "O CPF [CPF_1] está regular." and c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.model) == (2095, 503, "gpt-x")
    url = await serve(200, json.dumps(translate_response("openai", "anthropic", load("anthropic/messages_response_tools.json"), "g")).encode())
    c = await oai(url).chat.completions.create(model="g", messages=MSG)
    call = c.choices[0].message.tool_calls[0]
    assert c.choices[0].finish_reason == "tool_calls" and call.function.name == "send_email"
    assert json.loads(call.function.arguments) == {"to": "[EMAIL_1]", "cc": ["[EMAIL_2]"]}


async def test_openai_sdk_parses_translated_streams(serve):
    url = await serve(200, translated_stream("openai", "anthropic", (FIX / "anthropic/messages_stream.sse").read_bytes()), sse=True)
    chunks = [c async for c in await oai(url).chat.completions.create(model="g", messages=MSG, stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Olá, o CPF [CPF_1] está regular."
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens == 40
    assert chunks[-1].choices == []  # usage comes in a chunk of its own, as OpenAI streams it
    url = await serve(200, translated_stream("openai", "anthropic", (FIX / "anthropic/messages_stream_tools.sse").read_bytes()), sse=True)
    async with oai(url).chat.completions.stream(model="g", messages=MSG) as s:
        final = await s.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Sending the email." and final.choices[0].finish_reason == "tool_calls"
    assert [(t.function.name, json.loads(t.function.arguments)) for t in msg.tool_calls] == [("send_email", {"to": "[EMAIL_1]"})]


class Delay3:
    def __init__(self, kind):
        self.held = ""

    def feed(self, text):
        self.held += text
        out, self.held = self.held[:-3], self.held[-3:]
        return out.replace("[CPF_1]", "123.456.789-09")

    def flush(self):
        out, self.held = self.held, ""
        return out


class Restore:
    """A split-safe test restorer: holds text back from an unclosed ``[`` until its ``]`` arrives."""

    def __init__(self, kind):
        self.held = ""

    def feed(self, text):
        self.held += text
        i = self.held.rfind("[")
        cut = i if i >= 0 and "]" not in self.held[i:] else len(self.held)
        out, self.held = self.held[:cut], self.held[cut:]
        return out.replace("[CPF_1]", "123.456.789-09")

    def flush(self):
        out, self.held = self.held, ""
        return out


def rewritten(dialect, endpoint, name) -> bytes:
    data = (FIX / name).read_bytes()
    rw = StreamRewriter(dialect, endpoint, Delay3)
    return b"".join(rw.feed(data[i:i + 5]) for i in range(0, len(data), 5)) + rw.finish()


async def test_sdks_parse_rewritten_streams_with_held_back_text(serve):
    url = await serve(200, rewritten("openai", "/v1/responses", "openai/responses_stream.sse"), sse=True)
    async with oai(url).responses.stream(model="g", input="hi") as s:
        deltas = [e.delta async for e in s if e.type == "response.output_text.delta"]
        final = await s.get_final_response()
    # the placeholder split across deltas was restored, and the final response carries the same text
    assert "".join(deltas) == final.output_text == "O CPF 123.456.789-09 está ok."
    assert final.output[1].arguments == '{"to":"[EMAIL_1]"}'
    url = await serve(200, rewritten("anthropic", "/v1/messages", "anthropic/messages_stream_tools.sse"), sse=True)
    async with ant(url).messages.stream(model="c", max_tokens=10, messages=MSG) as s:
        final = await s.get_final_message()
    assert final.content[0].text == "Sending the email." and final.content[1].input == {"to": "[EMAIL_1]"}
    url = await serve(200, rewritten("openai", "/v1/chat/completions", "openai/chat_stream_tools.sse"), sse=True)
    async with oai(url).chat.completions.stream(model="g", messages=MSG) as s:
        final = await s.get_final_completion()
    assert [json.loads(t.function.arguments) for t in final.choices[0].message.tool_calls] == [
        {"cpf": "[CPF_1]"}, {"to": "[EMAIL_1]"}]


OPENAI_CLASSES = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
                  404: openai.NotFoundError, 413: openai.APIStatusError, 429: openai.RateLimitError,
                  502: openai.InternalServerError, 503: openai.InternalServerError}
ANTHROPIC_CLASSES = {400: anthropic.BadRequestError, 401: anthropic.AuthenticationError,
                     403: anthropic.PermissionDeniedError, 404: anthropic.NotFoundError, 413: anthropic.APIStatusError,
                     429: anthropic.RateLimitError, 502: anthropic.InternalServerError, 503: anthropic.InternalServerError}
CODES = {400: "invalid_request", 401: "unauthorized", 403: "policy_blocked", 404: "not_found",
         413: "payload_too_large", 429: "rate_limited", 502: "upstream_error", 503: "no_compliant_upstream"}


@pytest.mark.parametrize("status", sorted(CODES))
async def test_error_body_makes_each_sdk_raise_its_class(serve, status):
    code = CODES[status]
    url = await serve(status, error_body("openai", status, code, "nope"))
    with pytest.raises(OPENAI_CLASSES[status]) as e:
        await oai(url).chat.completions.create(model="g", messages=MSG)
    assert e.value.status_code == status and e.value.body["code"] == code and e.value.body["message"] == "nope"
    url = await serve(status, error_body("anthropic", status, code, "nope"))
    with pytest.raises(ANTHROPIC_CLASSES[status]) as e:
        await ant(url).messages.create(model="c", max_tokens=5, messages=MSG)
    assert e.value.status_code == status and e.value.body["error"]["code"] == code
    assert e.value.body["type"] == "error"


async def test_stream_error_events_raise_in_each_sdk(serve):
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    broken = data[:data.index(b"data: ", 10)] + stream_error_event("openai", "upstream_error", "broke")
    url = await serve(200, broken, sse=True)
    got = []
    with pytest.raises(openai.APIError) as e:
        async for c in await oai(url).chat.completions.create(model="g", messages=MSG, stream=True):
            got.append(c)
    assert len(got) == 1 and e.value.body["code"] == "upstream_error"
    data = (FIX / "anthropic/messages_stream.sse").read_bytes()
    broken = data[:data.index(b"event: content_block_stop")] + stream_error_event("anthropic", "upstream_error", "broke")
    url = await serve(200, broken, sse=True)
    with pytest.raises(anthropic.APIStatusError) as e:
        async with ant(url).messages.stream(model="c", max_tokens=5, messages=MSG) as s:
            async for _ in s.text_stream:
                pass
    assert e.value.body["error"]["code"] == "upstream_error"


async def test_translated_then_rewritten_stream_as_the_proxy_chains_them(serve):
    """Anthropic caller, OpenAI upstream: translate first, then restore in the caller's dialect."""
    data = (FIX / "openai/chat_stream.sse").read_bytes()
    t = StreamTranslator("anthropic", "openai", "claude-x")
    rw = StreamRewriter("anthropic", "/v1/messages", Restore)
    out = b"".join(rw.feed(t.feed(data[i:i + 9])) for i in range(0, len(data), 9))
    out += rw.feed(t.finish()) + rw.finish()
    url = await serve(200, out, sse=True)
    async with ant(url).messages.stream(model="claude-x", max_tokens=10, messages=MSG) as s:
        text = "".join([x async for x in s.text_stream])
        final = await s.get_final_message()
    assert text == final.content[0].text == "Olá, o CPF 123.456.789-09 está regular."
    assert final.model == "claude-x" and final.stop_reason == "end_turn"


async def test_sdks_read_prompt_cache_hits_across_dialects(serve):
    # an in-country OpenAI-dialect model's cache hits, as the Anthropic SDK reads them, and Claude's as the OpenAI SDK does
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 3012, "completion_tokens": 7, "total_tokens": 3019,
                      "prompt_tokens_details": {"cached_tokens": 3000}}}
    url = await serve(200, json.dumps(translate_response("anthropic", "openai", chat, "claude-x")).encode())
    msg = await ant(url).messages.create(model="claude-x", max_tokens=8, messages=MSG)
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (12, 3000, 7)
    claude = {"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "content": [{"type": "text", "text": "ok"}],
              "stop_reason": "end_turn", "stop_sequence": None,
              "usage": {"input_tokens": 12, "cache_read_input_tokens": 3000, "output_tokens": 7}}
    url = await serve(200, json.dumps(translate_response("openai", "anthropic", claude, "gpt-x")).encode())
    c = await oai(url).chat.completions.create(model="gpt-x", messages=MSG)
    assert (c.usage.prompt_tokens, c.usage.prompt_tokens_details.cached_tokens) == (3012, 3000)
