"""The keys of objects whose keys the caller chooses (metadata, unknown fields, prompt variables, the
property names of a schema), through the official SDKs and the gateway to the stub upstreams: they
are inspected like values, and the policy's action applies to them in the body the foreign upstream
receives (pseudonymized, redacted, kept at home, or refused when a rewrite would merge two keys)."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from gateway.testing.harness import Harness
from sdk_clients import ant, oai

CPF = "529.982.247-25"
EMAIL = "joana.silva@exemplo.com.br"
API_KEY = "sk-proj-Tq4Zr8Wb1Nc5Vd3Hj6Kp0Ys9fQ2xLm7Tq4Zr8Wb1Nc5V"
OTHER_KEY = "sk-proj-mPIhsgJDoEUiogCPAFchHQEbwFjXeJizZeldAMtw"
HI = [{"role": "user", "content": "oi"}]




def sent_us(h: Harness) -> dict:
    """The body the foreign upstream received last; it holds none of the values as they were sent."""
    body = h.received("US")[-1]["body"]
    for v in (CPF, "52998224725", EMAIL, API_KEY, OTHER_KEY):
        assert v not in str(body)
    return body


async def test_metadata_and_unknown_field_keys_reach_the_foreign_model_only_as_placeholders(gw):
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=HI, metadata={"a": "1", EMAIL: "x"},
                                          extra_body={"extra": {CPF: 1}, f"ficha {CPF}": True})
    body = sent_us(gw)
    assert list(body["metadata"].items()) == [("a", "1"), ("[EMAIL_1]", "x")]  # in place, value untouched
    assert body["extra"] == {"[CPF_1]": 1}
    assert body["ficha [CPF_1]"] is True
    await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=16, messages=[
        {"role": "user", "content": "oi", "notas": {EMAIL: CPF}}], metadata={"user_id": "u-1", CPF: EMAIL})
    body = sent_us(gw)
    assert body["metadata"] == {"user_id": "u-1", "[CPF_1]": "[EMAIL_1]"}
    assert body["messages"][0]["notas"] == {"[EMAIL_1]": "[CPF_1]"}
    await oai(gw).responses.create(model="gpt-4o-mini", input="oi",
                                   prompt={"id": "pmpt_1", "variables": {EMAIL: "Joana"}})
    assert sent_us(gw)["prompt"]["variables"] == {"[EMAIL_1]": "Joana"}


async def test_schema_property_names_reach_the_foreign_model_only_as_placeholders(gw):
    # the property names of a tool's schema are the caller's; "required" names them too and is
    # rewritten the same way, so the schema the provider receives still holds together
    params = {"type": "object", "properties": {CPF: {"type": "string"}, "ano": {"type": "integer"}},
              "required": [CPF, "ano"]}
    await oai(gw).chat.completions.create(
        model="gpt-4o-mini", messages=HI, tools=[{"type": "function", "function": {"name": "f", "parameters": params}}])
    got = sent_us(gw)["tools"][0]["function"]["parameters"]
    assert got == {"type": "object", "properties": {"[CPF_1]": {"type": "string"}, "ano": {"type": "integer"}},
                   "required": ["[CPF_1]", "ano"]}
    await oai(gw).chat.completions.create(model="claude-sonnet-4", messages=HI,  # translated for Claude
                                          tools=[{"type": "function", "function": {"name": "f", "parameters": params}}])
    assert list(sent_us(gw)["tools"][0]["input_schema"]["properties"]) == ["[CPF_1]", "ano"]


async def test_a_credential_in_a_key_is_redacted_and_two_that_would_merge_are_refused(gw):
    await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=HI, metadata={API_KEY: "x", "b": "y"})
    assert sent_us(gw)["metadata"] == {"[REDACTED:API_KEY]": "x", "b": "y"}
    # both keys redact to the same name: one value would silently replace the other, so nothing is sent
    before = len(gw.received("US")) + len(gw.received("BR"))
    with pytest.raises(openai.BadRequestError) as e:
        await oai(gw).chat.completions.create(model="gpt-4o-mini", messages=HI,
                                              extra_body={"chaves": {API_KEY: 1, OTHER_KEY: 2}})
    assert e.value.status_code == 400
    assert API_KEY not in str(e.value.body) and OTHER_KEY not in str(e.value.body)
    assert len(gw.received("US")) + len(gw.received("BR")) == before


async def test_health_data_in_a_key_does_not_leave_the_country(gw):
    # br.sensitive blocks health data abroad: a key that carries it keeps the request at home
    content = "diagnóstico de diabetes tipo 2 (CID E11.9)"
    before = len(gw.received("US"))
    raw = await oai(gw).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HI, metadata={content: "1"})
    assert raw.headers["X-Soberana-Route"] == "br-sovereign"
    assert len(gw.received("US")) == before
    assert gw.received("BR")[-1]["body"]["metadata"] == {content: "1"}  # allowed at home, as sent


async def test_explain_places_a_finding_in_a_key_without_printing_it(gw):
    body = {"model": "gpt-4o-mini", "messages": HI, "metadata": {EMAIL: "x"}}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/-/explain", headers={"Authorization": f"Bearer {gw.keys['br']}"}, json=body) as r:
            assert r.status == 200
            text = await r.text()
    assert EMAIL not in text and "joana" not in text
    found = orjson.loads(text)["findings"]
    assert [(f["where"], f["in_key"], f["action"]) for f in found] == [("metadata.<key>", True, "pseudonymize")]
