"""A model's upstreams that cannot carry an endpoint are skipped for it, through the real gateway with
the official OpenAI SDK: ``claude-sonnet-4`` is an Anthropic upstream (US) then an OpenAI-dialect one
(BR), ``claude-only`` the Anthropic one alone (``gateway.testing.harness``)."""

from __future__ import annotations

import asyncio

import openai
import orjson
import pytest

from sdk_clients import oai


async def records(gw) -> dict[str, dict]:
    """The audit records by request id."""
    await asyncio.sleep(0.1)  # records are chained at the end of the loop's turn
    lines = [orjson.loads(x) for f in gw.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    return {r["request_id"]: r for r in lines}


async def test_endpoints_an_anthropic_upstream_cannot_carry_go_to_the_next_candidate(gw):
    client = oai(gw)
    raws = client.with_raw_response
    calls = {
        "/v1/embeddings": lambda: raws.embeddings.create(model="claude-sonnet-4", input="Olá"),
        "/v1/responses": lambda: raws.responses.create(model="claude-sonnet-4", input="Olá"),
        "/v1/completions": lambda: raws.completions.create(model="claude-sonnet-4", prompt="Olá"),
    }
    ids = {}
    for endpoint, call in calls.items():
        raw = await call()  # (it was a 400: "cannot be translated from the openai to the anthropic dialect")
        raw.parse()
        assert (raw.headers["X-Soberana-Route"], raw.headers["X-Soberana-Residency"]) == ("br-sovereign", "BR")
        sent = gw.received("BR")[-1]
        assert (sent["path"], sent["body"]["model"]) == (endpoint, "llama-3.3-70b")
        ids[endpoint] = raw.headers["X-Request-Id"]
    assert not gw.received("US"), "the Anthropic upstream was never sent a request"

    # chat still goes to the first candidate, translated for it
    raw = await client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "Olá"}])
    assert "Olá" in raw.parse().choices[0].message.content
    assert raw.headers["X-Soberana-Route"] == "foreign-anthropic"
    assert gw.received("US")[-1]["path"] == "/v1/messages"
    ids["/v1/chat/completions"] = raw.headers["X-Request-Id"]

    # a part the Anthropic dialect cannot carry is still the caller's 400, not a reason to go elsewhere
    with pytest.raises(openai.BadRequestError) as e:
        await client.chat.completions.create(model="claude-sonnet-4", messages=[
            {"role": "user", "content": "Olá"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}])
    assert e.value.body["code"] == "invalid_request"
    assert len(gw.received("BR")) == 3 and len(gw.received("US")) == 1

    recs = await records(gw)
    for endpoint, rid in ids.items():
        rec = recs[rid]
        route = "foreign-anthropic" if endpoint == "/v1/chat/completions" else "br-sovereign"
        assert (rec["endpoint"], rec["outcome"], rec["decision"]["route"], rec["upstream"]["name"]) == (
            endpoint, "forwarded", route, route)


async def test_a_retry_never_goes_to_an_upstream_that_cannot_carry_the_endpoint(gw):
    # flaky-then-claude: a failing OpenAI upstream, the Anthropic one, then br-sovereign
    raw = await oai(gw).embeddings.with_raw_response.create(model="flaky-then-claude", input="Olá")
    raw.parse()
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"
    assert [r["body"]["model"] for r in gw.received("US")] == ["stub-fail-500"]
    assert gw.received("BR")[-1]["path"] == "/v1/embeddings"


async def test_a_model_no_upstream_of_which_can_carry_the_endpoint_is_not_found_for_it(gw):
    client = oai(gw)
    for call in (lambda: client.embeddings.create(model="claude-only", input="Olá"),
                 lambda: client.responses.create(model="claude-only", input="Olá")):
        with pytest.raises(openai.NotFoundError) as e:
            await call()
        assert e.value.body["code"] == "not_found"
        assert "not available for /v1/" in e.value.body["message"]
    assert not gw.received("US") and not gw.received("BR")
    rid = e.value.response.headers["X-Request-Id"]
    rec = (await records(gw))[rid]
    assert (rec["endpoint"], rec["outcome"], rec["error"]) == ("/v1/responses", "rejected", "not_found")

    # the model serves chat, so the caller sees it listed
    answer = await client.chat.completions.create(model="claude-only", messages=[{"role": "user", "content": "Olá"}])
    assert "Olá" in answer.choices[0].message.content
    assert "claude-only" in [m.id async for m in client.models.list()]
