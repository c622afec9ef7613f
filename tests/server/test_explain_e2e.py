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


async def test_explain_skips_the_upstreams_that_cannot_carry_the_endpoint_as_the_proxy_does(gw):
    # claude-sonnet-4's first upstream speaks the Anthropic dialect: no embeddings there
    async with aiohttp.ClientSession() as s:
        for path, model, route in (("/v1/chat/completions", "claude-sonnet-4", "foreign-anthropic"),
                                   ("/v1/embeddings", "claude-sonnet-4", "br-sovereign"),
                                   ("/v1/embeddings", "claude-only", None)):
            body = {"model": model, "input": "Olá"} if path == "/v1/embeddings" else \
                {"model": model, "messages": [{"role": "user", "content": "Olá"}]}
            async with s.post(gw.url + path, headers=auth(gw), json=body) as r:
                assert r.status == (200 if route else 404), (path, model)
                assert r.headers.get("X-Soberana-Route") == route
            async with s.post(gw.url + f"/-/explain?endpoint={path}", headers=auth(gw), json=body) as r:
                assert r.status == 200
                x = await r.json()
            assert x["decision"]["route"] == route, (path, model)
            assert ("error" in x) is (route is None)


async def test_explain_is_charged_to_the_callers_request_limit(tmp_path):
    # /-/explain inspects a body of up to max_body_bytes and answers the policy's verdict on it, for
    # any authenticated caller: it was never rate limited, so a caller held at its limit could go on
    # running inspection (and probing what the policy lets through) without end. An explain now
    # counts as one request of its caller (no model tokens), and is refused with 429 and Retry-After.
    async with Harness(tmp_path, extra_config="rate_limit: {key_requests_per_minute: 3}\n") as h:
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", headers=auth(h), json=BODY) as r:
                assert r.status == 200
            for status in (200, 200, 429):
                async with s.post(h.url + "/-/explain", headers=auth(h), json=BODY) as r:
                    assert r.status == status
                    if status == 429:
                        assert int(r.headers["Retry-After"]) >= 1
                        assert (await r.json())["error"]["code"] == "rate_limited"
            async with s.post(h.url + "/v1/chat/completions", headers=auth(h), json=BODY) as r:
                assert r.status == 429  # one limit for both
