"""POST /-/explain answers what the same request would get through the proxy (SPEC section 5)."""

from __future__ import annotations

import aiohttp

from gateway.testing.harness import Harness

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Resuma o relatório anual."}]}


def auth(h: Harness, **extra) -> dict:
    return {"Authorization": f"Bearer {h.keys['br']}", **extra}


async def test_explain_reads_the_classification_header_as_the_proxy_does(gw):
    # br.restricted keeps a restricted request in Brazil even when nothing was found: the foreign
    # upstream listed first for gpt-4o-mini is skipped. An explain must say so, not "foreign-openai".
    async with aiohttp.ClientSession() as s:
        for level, route in (("internal", "foreign-openai"), ("restricted", "br-sovereign")):
            headers = auth(gw, **{"X-Data-Classification": level})
            async with s.post(gw.url + "/v1/chat/completions", headers=headers, json=BODY) as r:
                assert r.status == 200
                assert r.headers["X-Soberana-Route"] == route
            async with s.post(gw.url + "/-/explain", headers=headers, json=BODY) as r:
                assert r.status == 200
                x = await r.json()
            assert x["level"] == level
            assert x["decision"]["route"] == route
            if level == "restricted":
                blocked = [c for c in x["candidates"] if not c["allowed"]]
                assert [c["upstream"] for c in blocked] == ["foreign-openai"]
                assert blocked[0]["blocked_by"] == ["br.restricted"]


async def test_explain_refuses_an_unknown_classification_as_the_proxy_does(gw):
    async with aiohttp.ClientSession() as s:
        for path in ("/v1/chat/completions", "/-/explain"):
            async with s.post(gw.url + path, headers=auth(gw, **{"X-Data-Classification": "top"}), json=BODY) as r:
                assert r.status == 400, path
                assert (await r.json())["error"]["code"] == "invalid_request"
