"""The official OpenAI and Anthropic SDKs, unchanged, through the gateway in front of stub upstreams."""

from __future__ import annotations

import asyncio
from typing import Literal

import anthropic
import aiohttp
import openai
import orjson
import pytest
from pydantic import BaseModel

from gateway.testing.harness import Harness
from sdk_clients import ant, oai

CPF = "123.456.789-09"
CURP = "GODE561231HDFRRN00"
EMAIL = "joana.silva@exemplo.com.br"




async def test_openai_chat_plain_passes_and_reports_route(gw):
    raw = await oai(gw).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Olá, como vai?"}])
    answer = raw.parse()
    assert "Olá, como vai?" in answer.choices[0].message.content
    assert raw.headers["X-Soberana-Route"] == "foreign-openai"
    assert raw.headers["X-Soberana-Residency"] == "US"
    assert raw.headers["X-Request-Id"] and raw.headers["X-Soberana-Decision"]
    sent = gw.received("US")[-1]
    assert sent["body"]["messages"][0]["content"] == "Olá, como vai?"
    assert sent["auth"], "the gateway injects the provider key"


async def test_openai_streaming_plain(gw):
    stream = await oai(gw).chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "conte até cinco"}])
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(parts) > 2, "streamed in several events"
    assert "conte até cinco" in "".join(parts)


async def test_pii_reaches_foreign_model_only_as_placeholders_and_is_restored(gw):
    text = f"Contribuinte CPF {CPF}, CURP {CURP}, e-mail {EMAIL}."
    answer = await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    sent = gw.received("US")[-1]["body"]["messages"][0]["content"]
    for value in (CPF, CURP, EMAIL):
        assert value not in sent
    assert "[CPF_1]" in sent and "[EMAIL_1]" in sent
    restored = answer.choices[0].message.content
    for value in (CPF, CURP, EMAIL):
        assert value in restored


async def test_streaming_restore_openai_and_anthropic(gw):
    text = f"Meu CPF é {CPF} e meu e-mail {EMAIL}."
    stream = await oai(gw).chat.completions.create(model="gpt-4o-mini", stream=True,
                                                   messages=[{"role": "user", "content": text}])
    got = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert CPF in got and EMAIL in got and "[CPF_1]" not in got
    assert CPF not in str(gw.received("US")[-1]["body"])

    async with ant(gw).messages.stream(model="claude-sonnet-4", max_tokens=100,
                                       messages=[{"role": "user", "content": text}]) as s:
        got = "".join([t async for t in s.text_stream])
    assert CPF in got and EMAIL in got
    assert CPF not in str(gw.received("US")[-1]["body"])


async def test_anthropic_messages_plain_and_error_shape(gw):
    msg = await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=64,
                                        messages=[{"role": "user", "content": "Bonjour"}])
    assert "Bonjour" in msg.content[0].text
    with pytest.raises(anthropic.AuthenticationError):
        await anthropic.AsyncAnthropic(base_url=gw.url, api_key="wrong", max_retries=0).messages.create(
            model="claude-sonnet-4", max_tokens=5, messages=[{"role": "user", "content": "x"}])


async def test_openai_errors_in_openai_shape(gw):
    with pytest.raises(openai.AuthenticationError) as e:
        await openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "unauthorized"
    with pytest.raises(openai.NotFoundError):
        await oai(gw).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])


async def test_classified_marking_to_foreign_only_model_is_blocked(gw):
    before = len(gw.received("US"))
    with pytest.raises(openai.PermissionDeniedError) as e:
        await oai(gw).chat.completions.create(model="gpt-4o", messages=[
            {"role": "user", "content": "DOCUMENTO CLASSIFICADO — GRAU DE SIGILO: SECRETO. Resuma."}])
    assert e.value.body["code"] == "policy_blocked"
    assert len(gw.received("US")) == before, "nothing reached the foreign upstream"


async def test_health_data_stays_in_country_and_fails_closed_when_home_is_down(gw):
    content = "Paciente com diagnóstico de diabetes tipo 2 (CID E11.9)."
    raw = await oai(gw).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"
    assert gw.received("BR")[-1]["body"]["model"] == "llama-3.3-70b"
    # the in-country model goes away: 503, and the foreign one receives nothing
    await gw.stub_br.close()
    before = len(gw.received("US"))
    with pytest.raises(openai.InternalServerError) as e:
        await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert e.value.status_code == 503 and e.value.body["code"] == "no_compliant_upstream"
    assert len(gw.received("US")) == before


async def test_a_503_for_open_circuits_says_when_the_first_turns_half_open_and_the_pod_stays_ready(gw):
    """Once the in-country model's circuit is open, health data gets 503 no_compliant_upstream at
    once (nothing tried), with a Retry-After of the circuit's time left, not the SDKs' own ~1.5 s
    backoff spent on an open circuit."""
    content = "Paciente com diagnóstico de diabetes tipo 2 (CID E11.9)."
    await gw.stub_br.close()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    waits = []
    async with aiohttp.ClientSession() as s:
        for _ in range(6):  # breaker_failures (3) tries open the circuit; the next are refused untried
            async with s.post(gw.url + "/v1/chat/completions", json=body,
                              headers={"Authorization": f"Bearer {gw.keys['br']}"}) as r:
                assert r.status == 503 and (await r.json())["error"]["code"] == "no_compliant_upstream"
                waits.append(r.headers.get("Retry-After"))
    open_ = gw.holder.current.registry.targets["br-sovereign"].breaker
    assert open_.half_open_in() is not None  # (open)
    assert waits[-1] is not None and 8 <= int(waits[-1]) <= 10, waits  # breaker_reset_s 10, rounded up
    assert gw.received("US") == []

    # the pod stays ready: an upstream every pod shares being down is the callers' clear 503 above,
    # not a fleet turned not-ready at once (refused connections); readyz says how many are up
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/-/readyz") as r:
            ready = await r.json()
    assert r.status == 200 and ready["status"] == "ready", ready
    targets = gw.holder.current.registry.targets
    assert ready["upstreams"] == {"available": len(targets) - 1, "configured": len(targets)}
    for t in targets.values():  # every upstream out, as in a provider-wide outage
        while t.breaker.half_open_in() is None:
            t.breaker.failure()
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/-/readyz") as r:
            ready = await r.json()
    assert r.status == 200 and ready["upstreams"] == {"available": 0, "configured": len(targets)}, ready


async def test_anthropic_caller_translated_to_openai_in_country_model(gw):
    content = "Paciente com diagnóstico de diabetes tipo 2."
    msg = await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=64,
                                        messages=[{"role": "user", "content": content}])
    assert "diabetes" in msg.content[0].text
    sent = gw.received("BR")[-1]
    assert sent["path"].endswith("/chat/completions"), "translated to the OpenAI dialect"
    async with ant(gw).messages.stream(model="claude-sonnet-4", max_tokens=64,
                                       messages=[{"role": "user", "content": content}]) as s:
        assert "diabetes" in "".join([t async for t in s.text_stream])


async def test_models_lists_what_the_caller_may_use(gw):
    models = [m.id async for m in oai(gw).models.list()]
    assert {"gpt-4o-mini", "claude-sonnet-4", "llama-3.3-70b"} <= set(models)


async def test_anthropic_models_list_pages_as_the_sdk_asks(gw):
    # the Anthropic API pages its models (limit, after_id, before_id; 20 by default) and the SDK follows
    # has_more/last_id: a page of `limit` models, and every model once over all the pages
    everything = [m.id async for m in oai(gw).models.list()]
    page = await ant(gw).models.list(limit=2)
    assert [m.id for m in page.data] == everything[:2] and page.has_more and page.last_id == everything[1]
    assert [m.id async for m in await ant(gw).models.list(limit=2)] == everything  # auto-pagination
    page = await ant(gw).models.list(before_id=everything[-1], limit=3)
    assert [m.id for m in page.data] == everything[-4:-1] and page.first_id == everything[-4]
    with pytest.raises(anthropic.BadRequestError):
        await ant(gw).models.list(limit=0)


def _policies_keeping_mexico_home(tmp_path):
    """The bundled policies, but Mexico's sends nothing at all abroad: no model here is usable by a
    Mexican caller (every upstream is abroad for it)."""
    import shutil

    from gateway.testing.harness import bundled_policies

    dst = tmp_path / "policies"
    shutil.copytree(bundled_policies(), dst)
    mx = dst / "mx.yaml"
    mx.write_text(mx.read_text().replace("rules:\n", "rules:\n  - {id: mx.home_only, title: Nothing leaves, "
                                         "match: {min_level: public}, domestic: allow, adequate: block, foreign: block}\n", 1))
    return dst


async def test_models_retrieve_answers_for_the_models_the_caller_may_use_and_404_otherwise(tmp_path):
    # the SDKs' models.retrieve is GET /v1/models/{id}: only a model the caller may use, like the list
    async with Harness(tmp_path / "gw", policies=_policies_keeping_mexico_home(tmp_path)) as h:
        m = await oai(h).models.retrieve("claude-only")
        assert (m.id, m.object, m.owned_by) == ("claude-only", "model", "soberana")
        info = await ant(h).models.retrieve("gpt-4o-mini")
        assert (info.id, info.type) == ("gpt-4o-mini", "model")
        for missing in ("no-such-model", "meta-llama/Llama-3.3-70B"):  # (the SDK sends the / as %2F)
            with pytest.raises(openai.NotFoundError) as e:
                await oai(h).models.retrieve(missing)
            assert e.value.code == "not_found" and "model" in e.value.message
            assert missing not in e.value.message, "error messages never repeat a request value"
        with pytest.raises(anthropic.NotFoundError) as e:
            await ant(h).models.retrieve("no-such-model")
        assert e.value.body["error"]["code"] == "not_found"
        # a model that exists but that this caller may not use is as unknown to it as one that does not
        assert [m.id async for m in oai(h, "mx").models.list()] == []
        with pytest.raises(openai.NotFoundError):
            await oai(h, "mx").models.retrieve("gpt-4o-mini")
        with pytest.raises(anthropic.NotFoundError):
            await ant(h, "mx").models.retrieve("gpt-4o-mini")
        with pytest.raises(openai.AuthenticationError):
            await openai.AsyncOpenAI(base_url=h.url + "/v1", api_key="wrong", max_retries=0).models.retrieve("gpt-4o-mini")


async def test_retry_goes_only_to_the_next_compliant_upstream(gw):
    raw = await oai(gw).chat.completions.with_raw_response.create(
        model="flaky-foreign", messages=[{"role": "user", "content": "olá"}])
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"


async def test_stream_broken_midway_ends_with_error_event_not_a_normal_end(gw):
    stream = await oai(gw).chat.completions.create(model="resets-midstream", stream=True,
                                                   messages=[{"role": "user", "content": "um dois três quatro cinco seis"}])
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_rate_limit_through_the_gateway_in_each_callers_dialect(tmp_path):
    # the gateway skips the limiter when no limit is set: with one set, it must still charge and refuse
    async with Harness(tmp_path, extra_config="rate_limit: {key_requests_per_minute: 2}\n") as h:
        msgs = [{"role": "user", "content": "Olá"}]
        for _ in range(2):
            await oai(h).chat.completions.create(model="llama-3.3-70b", messages=msgs)
        with pytest.raises(openai.RateLimitError) as e:
            await oai(h).chat.completions.create(model="llama-3.3-70b", messages=msgs)
        assert e.value.code == "rate_limited" and int(e.value.response.headers["Retry-After"]) >= 1
        with pytest.raises(anthropic.RateLimitError):  # another key of the same caller table: its own budget
            for _ in range(3):
                await ant(h, "mx").messages.create(model="claude-sonnet-4", max_tokens=16, messages=msgs)
        # refused requests were never forwarded: two reached the in-country stub, two the foreign one
        assert (len(h.received("BR")), len(h.received("US"))) == (2, 2)


async def test_a_request_larger_than_the_token_limit_is_not_retried_by_the_sdks(tmp_path):
    # it can never fit: the SDKs' default retries would wait out Retry-After (a whole minute) twice
    # for the same 429; `x-should-retry: false` tells them not to, and the message says why
    async with Harness(tmp_path, extra_config="rate_limit: {key_tokens_per_minute: 100}\n") as h:
        big = [{"role": "user", "content": "palavra " * 200}]
        client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["br"])  # the SDK's default retries
        with pytest.raises(openai.RateLimitError) as e:
            await asyncio.wait_for(client.chat.completions.create(model="llama-3.3-70b", messages=big), 10)
        assert e.value.response.headers["x-should-retry"] == "false" and "never" in e.value.message
        with pytest.raises(anthropic.RateLimitError) as e:
            await asyncio.wait_for(anthropic.AsyncAnthropic(base_url=h.url, api_key=h.keys["br"]).messages.create(
                model="claude-sonnet-4", max_tokens=16, messages=big), 10)
        # a request that fits later is still retried as the SDKs do: no such header
        await client.chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "oi"}])
        with pytest.raises(openai.RateLimitError) as e:
            await oai(h).chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "oi " * 100}])
        assert "x-should-retry" not in e.value.response.headers and e.value.message.endswith("rate limit exceeded")
        assert len(h.received("BR")) == 1, "only the request that fitted was forwarded"


async def test_counting_tokens_costs_a_request_not_the_tokens_counted(tmp_path):
    # a count generates nothing (agents count before every turn): charged one request of the caller's,
    # as the providers do, not the tokens of the conversation counted
    async with Harness(tmp_path, extra_config="rate_limit: {key_tokens_per_minute: 100, key_requests_per_minute: 4}\n") as h:
        big = [{"role": "user", "content": "palavra " * 200}]
        for _ in range(2):
            assert (await ant(h).messages.count_tokens(model="claude-sonnet-4", messages=big)).input_tokens > 100
            assert (await oai(h).responses.input_tokens.count(model="gpt-4o-mini", input=big)).input_tokens > 100
        with pytest.raises(anthropic.RateLimitError):  # the request itself still is
            await ant(h).messages.create(model="claude-sonnet-4", max_tokens=8, messages=big)
        with pytest.raises(anthropic.RateLimitError):  # and the count is one request of the caller's
            await ant(h).messages.count_tokens(model="claude-sonnet-4", messages=big)


async def test_end_user_ids_reach_the_foreign_model_only_as_placeholders(gw):
    # applications often fill the end-user id with an e-mail or a national id
    await oai(gw).chat.completions.create(model="gpt-4o-mini", user=EMAIL, safety_identifier=CPF,
                                          messages=[{"role": "user", "name": "ana", "content": "oi"}])
    sent = gw.received("US")[-1]["body"]
    assert EMAIL not in str(sent) and CPF not in str(sent)
    assert sent["user"] == "[EMAIL_1]" and sent["safety_identifier"] == "[CPF_1]"
    assert sent["messages"][0]["name"] == "ana"
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=32, metadata={"user_id": EMAIL},
                                  messages=[{"role": "user", "content": "oi"}])
    sent = gw.received("US")[-1]["body"]
    assert EMAIL not in str(sent) and sent["metadata"]["user_id"] == "[EMAIL_1]"


async def test_anthropic_sdk_reads_the_request_id_of_answers_and_errors(gw):
    # the Anthropic SDK reads `request-id` (OpenAI's, `x-request-id`): the id a caller quotes to the operator
    raw = await ant(gw).messages.with_raw_response.create(model="claude-sonnet-4", max_tokens=16,
                                                           messages=[{"role": "user", "content": "oi"}])
    msg = await raw.parse()
    assert raw.request_id == raw.headers["X-Request-Id"] and msg._request_id == raw.request_id
    async with ant(gw).messages.stream(model="claude-sonnet-4", max_tokens=16,
                                       messages=[{"role": "user", "content": "oi"}]) as s:
        assert s.request_id and s.request_id == s.response.headers["X-Request-Id"]
    with pytest.raises(anthropic.NotFoundError) as e:
        await ant(gw).messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.request_id and e.value.request_id == e.value.response.headers["X-Request-Id"]
    assert "the requested model is not available" in e.value.message
    # a body the server refuses before the handler (too large) has its audit record: its id too
    with pytest.raises(anthropic.ContentTooLargeError) as e:
        await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=5,
                                      messages=[{"role": "user", "content": "x" * 2_000_000}])
    assert e.value.request_id and e.value.request_id == e.value.response.headers["X-Request-Id"]


async def test_anthropic_count_tokens_goes_through_inspection_to_claude_only(gw):
    # messages.count_tokens sends the whole conversation to the provider: the same inspection, policy,
    # transformation and audit as messages.create, and only to an upstream that speaks Anthropic
    msgs = [{"role": "user", "content": f"Contribuinte CPF {CPF}, e-mail {EMAIL}."}]
    raw = await ant(gw).messages.with_raw_response.count_tokens(
        model="claude-sonnet-4", system=[{"type": "text", "text": "Seja breve."}], messages=msgs)
    count = await raw.parse()
    assert count.input_tokens > 5 and raw.headers["X-Soberana-Route"] == "foreign-anthropic"
    sent = gw.received("US")[-1]
    assert sent["path"] == "/v1/messages/count_tokens" and sent["auth"]["kind"] == "x-api-key"
    assert CPF not in sent["raw"] and EMAIL not in sent["raw"] and "[CPF_1]" in sent["raw"]
    await asyncio.sleep(0.1)  # records are chained at the end of the loop's turn
    records = [orjson.loads(x) for f in gw.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    record = next(r for r in records if r["request_id"] == raw.request_id)
    assert record["endpoint"] == "/v1/messages/count_tokens" and record["outcome"] == "forwarded"
    # health data may not leave Brazil, and the in-country model cannot count Claude's tokens: refused,
    # nothing sent (messages.create would go to the in-country model instead)
    before = len(gw.received("US"))
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        await ant(gw).messages.count_tokens(model="claude-sonnet-4", messages=[
            {"role": "user", "content": "Paciente com diagnóstico de diabetes tipo 2 (CID E11.9)."}])
    assert e.value.body["error"]["code"] == "policy_blocked"
    # a model behind OpenAI-dialect upstreams only has nothing to count with: said so, nothing sent
    with pytest.raises(anthropic.NotFoundError) as e:
        await ant(gw).messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "oi"}])
    assert "/v1/messages/count_tokens" in e.value.message
    assert len(gw.received("US")) == before and not gw.received("BR")


class _Address(BaseModel):
    city: str


class _Taxpayer(BaseModel):
    summary: str
    kind: Literal["pf", "pj"]
    address: _Address
    tags: list[str]


async def test_structured_outputs_parse_with_the_values_restored_in_every_dialect(gw):
    # the SDKs' parse helpers send a JSON schema and validate the answer against it; the values the
    # foreign model saw as placeholders come back inside the JSON, restored
    text = f"Resuma o contribuinte CPF {CPF}."
    msgs = [{"role": "user", "content": text}]
    got = []
    for model in ("gpt-4o-mini", "claude-only"):  # the OpenAI upstream, and Claude (translated)
        answer = await oai(gw).chat.completions.parse(model=model, messages=msgs, response_format=_Taxpayer)
        got.append(answer.choices[0].message.parsed)
    async with oai(gw).chat.completions.stream(model="gpt-4o-mini", messages=msgs, response_format=_Taxpayer) as s:
        got.append([e async for e in s if e.type == "content.done"][0].parsed)
    got.append((await oai(gw).responses.parse(model="gpt-4o-mini", input=text, text_format=_Taxpayer)).output_parsed)
    for model in ("claude-sonnet-4", "gpt-4o-mini"):  # Claude, and the OpenAI upstream (translated)
        msg = await ant(gw).messages.parse(model=model, max_tokens=200, messages=msgs, output_format=_Taxpayer)
        got.append(msg.parsed_output)
    assert len(got) == 6
    for parsed in got:
        assert isinstance(parsed, _Taxpayer) and CPF in parsed.summary and parsed.kind == "pf"
        assert CPF in parsed.address.city and parsed.tags == [parsed.summary]
    assert all(CPF not in r["raw"] for r in gw.received("US")) and not gw.received("BR")


async def test_embeddings_as_the_sdk_asks_for_them_base64_of_the_pseudonymized_input(gw):
    # the OpenAI SDK asks for base64 by default and decodes the floats itself: the vectors pass untouched
    from gateway.testing.stub import _embedding

    answer = await oai(gw).embeddings.create(model="gpt-4o-mini", input=["oi", f"Contribuinte CPF {CPF}"])
    sent = gw.received("US")[-1]["body"]
    assert sent["encoding_format"] == "base64" and sent["input"] == ["oi", "Contribuinte CPF [CPF_1]"]
    for got, text in zip(answer.data, sent["input"]):
        assert got.embedding == pytest.approx(_embedding(text), abs=1e-6)


async def test_openai_responses_input_tokens_goes_through_inspection_to_openai_upstreams_only(gw):
    # responses.input_tokens.count, the OpenAI side of count_tokens: the same path as responses.create
    raw = await oai(gw).responses.input_tokens.with_raw_response.count(
        model="gpt-4o-mini", instructions="Seja breve.", input=f"Contribuinte CPF {CPF}.")
    count = raw.parse()
    assert count.object == "response.input_tokens" and count.input_tokens > 3
    assert raw.headers["X-Soberana-Route"] == "foreign-openai"
    sent = gw.received("US")[-1]
    assert sent["path"] == "/v1/responses/input_tokens" and CPF not in sent["raw"] and "[CPF_1]" in sent["raw"]
    # health data stays home: counted by the in-country model (an OpenAI-dialect upstream)
    raw = await oai(gw).responses.input_tokens.with_raw_response.count(
        model="gpt-4o-mini", input="Paciente com diagnóstico de diabetes tipo 2 (CID E11.9).")
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"
    # Claude has nothing to count a Responses input with
    before = len(gw.received("US"))
    with pytest.raises(openai.NotFoundError) as e:
        await oai(gw).responses.input_tokens.count(model="claude-only", input="oi")
    assert "/v1/responses/input_tokens" in e.value.message and len(gw.received("US")) == before


async def test_an_endpoint_the_gateway_does_not_carry_says_so_in_each_dialect(gw):
    # nothing uninspected passes: a 404 that tells the SDK user why, rather than a bare "no such endpoint"
    for call in (lambda: oai(gw).moderations.create(input="oi"), lambda: oai(gw).files.list(),
                 lambda: oai(gw).responses.retrieve("resp_123")):
        with pytest.raises(openai.NotFoundError) as e:
            await call()
        assert e.value.code == "not_found" and "passes only the endpoints whose requests it inspects" in e.value.message
        assert "POST /v1/chat/completions" in e.value.message
    with pytest.raises(anthropic.NotFoundError) as e:
        await ant(gw).messages.batches.list()
    assert "passes only the endpoints whose requests it inspects" in e.value.message
    assert "POST /v1/messages/count_tokens" in e.value.message
    assert not gw.received("US") and not gw.received("BR")


async def test_a_provider_s_retry_after_reaches_the_sdk_in_each_dialect(gw):
    # a provider's 429 is relayed (the request reached it): with its Retry-After, or the SDKs retry on
    # their own short schedule into the same limit instead of waiting as the provider asks
    from gateway.testing.stub import RATE_LIMIT_RETRY_AFTER

    for model in ("rate-limited-foreign", "rate-limited-claude"):  # the second translated from Claude's
        with pytest.raises(openai.RateLimitError) as e:
            await oai(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "oi"}])
        assert e.value.response.headers["retry-after"] == str(RATE_LIMIT_RETRY_AFTER)
        assert e.value.response.headers["X-Soberana-Route"].startswith("foreign-")
        with pytest.raises(anthropic.RateLimitError) as e:
            await ant(gw).messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "oi"}])
        assert e.value.response.headers["retry-after"] == str(RATE_LIMIT_RETRY_AFTER)


@pytest.mark.parametrize("value,relayed", [(b"3", True), (b"0.5", True), (b"false", True),
                                           (b"Wed, 21 Oct 2026 07:28:00 GMT", True),
                                           (CPF.encode(), False), (b"3; " + EMAIL.encode(), False)])
def test_only_retry_values_of_an_upstream_are_relayed(value, relayed):
    # headers are not leak-checked as bodies are: an upstream's Retry-After passes only as a number or a date
    from gateway.server.proxy import _RETRY_VALUE

    assert bool(_RETRY_VALUE.fullmatch(value)) is relayed


async def test_a_body_the_gateway_cannot_inspect_is_not_retried_by_the_sdks(gw, monkeypatch):
    # inspection is computation over the body: the same body fails the same way, and the SDKs' default
    # retries sent it twice more (each a failed inspection, an error logged, an audit record)
    from gateway.server import proxy

    real, calls = proxy.scan, []

    def scan(text):
        if "QUEBRA" in text:
            calls.append(text)
            raise RuntimeError("inspection broke")
        return real(text)

    monkeypatch.setattr(proxy, "scan", scan)
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.keys["br"])  # the SDK's default retries
    with pytest.raises(openai.InternalServerError) as e:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "QUEBRA"}])
    assert e.value.status_code == 503 and e.value.code == "inspection_failed"
    assert e.value.response.headers["x-should-retry"] == "false" and len(calls) == 1
    assert not gw.received("US") and not gw.received("BR")
