"""A value split across text parts or turns, through the gateway with the official SDKs: each piece is
treated by policy like the whole value, the answer gets them back, and the answer repeating the whole
value is no leak (the caller sent it)."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import orjson

from gateway.testing.harness import Harness

HEAD, TAIL = "529.982.", "247-25"  # one CPF, cut between its groups


async def _records(h: Harness, n: int) -> list[dict]:
    for _ in range(100):  # records are chained at the end of the loop's turn, written by a thread
        recs = [orjson.loads(x) for f in h.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]
        if len(recs) >= n:
            return recs
        await asyncio.sleep(0.02)
    raise AssertionError("the audit records did not arrive")


async def test_a_cpf_split_across_openai_content_parts_reaches_the_foreign_model_as_placeholders(tmp_path):
    async with Harness(tmp_path) as h:
        client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["br"], max_retries=0)
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
            {"type": "text", "text": f"Resuma o cadastro do contribuinte CPF {HEAD}"},
            {"type": "text", "text": f"{TAIL}, por favor."}]}])
        sent = orjson.dumps(h.received("US")[-1]["body"]).decode()
        assert HEAD not in sent and TAIL not in sent
        assert "[CPF_1]" in sent and "[CPF_2]" in sent
        text = answer.choices[0].message.content
        assert HEAD in text and TAIL in text, "the pieces are restored in the answer"
        [rec] = await _records(h, 1)
        assert [(f["detector"], f["count"]) for f in rec["findings"]] == [("br.cpf", 2)]
        assert "leaks" not in rec, "the answer repeats the CPF the caller sent: no leak"
        assert HEAD not in orjson.dumps(rec).decode()


async def test_a_cpf_split_across_anthropic_turns_with_a_separator_part_between_is_found(tmp_path):
    async with Harness(tmp_path) as h:
        client = anthropic.AsyncAnthropic(base_url=h.url, api_key=h.keys["br"], max_retries=0)
        await client.messages.create(model="claude-sonnet-4", max_tokens=64, messages=[
            {"role": "user", "content": "Meu CPF é 529.982"},
            {"role": "user", "content": [{"type": "text", "text": "."}, {"type": "text", "text": "247-25"}]}])
        sent = orjson.dumps(h.received("US")[-1]["body"]).decode()
        assert "529.982" not in sent and TAIL not in sent
        [rec] = await _records(h, 1)
        assert [(f["detector"], f["count"]) for f in rec["findings"]] == [("br.cpf", 3)]
