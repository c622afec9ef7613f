"""The stub's generation limits through the real gateway: several streamed choices each get their
pseudonyms restored, and an answer cut by max tokens ends as cut in the caller's own dialect."""

from __future__ import annotations

from sdk_clients import ant, oai

CPF = "123.456.789-09"
TEXT = f"Meu CPF é {CPF} e moro em Recife."


async def test_streamed_n_choices_each_get_the_cpf_restored(gw):
    stream = await oai(gw).chat.completions.create(model="gpt-4o-mini", n=2, stream=True,
                                                   messages=[{"role": "user", "content": TEXT}])
    texts, reasons = {}, {}
    async for c in stream:
        for ch in c.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            reasons[ch.index] = ch.finish_reason or reasons.get(ch.index)
    sent = gw.received("US")[-1]["body"]
    assert sent["n"] == 2 and CPF not in str(sent) and "[CPF_1]" in sent["messages"][0]["content"]
    assert texts == {0: f"(1/2) [stub US] You said: {TEXT}", 1: f"(2/2) [stub US] You said: {TEXT}"}
    assert reasons == {0: "stop", 1: "stop"}


async def test_a_stream_cut_by_max_tokens_ends_with_length_and_restored(gw):
    # "[stub US] You said: Meu CPF é [CPF_1]" is 8 of the stub's tokens: the cut keeps the placeholder
    stream = await oai(gw).chat.completions.create(model="gpt-4o-mini", max_completion_tokens=8, stream=True,
                                                   messages=[{"role": "user", "content": TEXT}])
    chunks = [c async for c in stream if c.choices]
    got = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert got == f"[stub US] You said: Meu CPF é {CPF}" and chunks[-1].choices[0].finish_reason == "length"
    assert gw.received("US")[-1]["body"]["max_completion_tokens"] == 8


async def test_an_anthropic_stream_cut_by_max_tokens_ends_with_max_tokens_in_both_upstream_dialects(gw):
    # foreign Anthropic upstream as it is; health data goes to the in-country OpenAI-dialect one, translated
    for content, residency, path in (("Bom dia, tudo bem?", "US", "/v1/messages"),
                                     ("Paciente com diagnóstico de diabetes tipo 2.", "BR", "/v1/chat/completions")):
        async with ant(gw).messages.stream(model="claude-sonnet-4", max_tokens=4,
                                           messages=[{"role": "user", "content": content}]) as s:
            got = "".join([t async for t in s.text_stream])
            final = await s.get_final_message()
        assert got == f"[stub {residency}] You said:" and final.stop_reason == "max_tokens"
        assert gw.received(residency)[-1]["path"] == path
        m = await ant(gw).messages.create(model="claude-sonnet-4", max_tokens=4,
                                          messages=[{"role": "user", "content": content}])
        assert m.content[0].text == f"[stub {residency}] You said:" and m.stop_reason == "max_tokens"
