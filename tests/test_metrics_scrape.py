"""/-/metrics as a scraper reads it: through a real gateway, parsed with prometheus_client's parser."""

from __future__ import annotations

import math

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.testing.harness import Harness


async def _scrape_after_one_request(tmp_path) -> str:
    """The exposition of a gateway that has served one chat request."""
    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        async with s.post(h.url + "/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
            assert r.status == 200
        async with s.get(h.url + "/-/metrics") as r:
            return await r.text()


async def test_upstream_latency_buckets_reach_the_durations_of_model_calls(tmp_path):
    # The upstream latency histogram had prometheus-client's default buckets, the last finite one at
    # 10 s. A non-streamed completion commonly takes 10-60 s (the upstream timeout is 300 s): all of
    # them fell in +Inf, and every p95/p99 of an upstream read as "10 s".
    text = await _scrape_after_one_request(tmp_path)
    family = next(f for f in text_string_to_metric_families(text) if f.name == "soberana_upstream_latency_seconds")
    bounds = sorted({float(smp.labels["le"]) for smp in family.samples
                     if smp.name.endswith("_bucket") and smp.labels["upstream"] == "br-sovereign"})
    finite = [b for b in bounds if not math.isinf(b)]
    for seconds in (15, 45, 100, 250):  # each lands in a finite bucket, and not the one of 10 s
        assert any(seconds <= b for b in finite), f"a {seconds} s call falls in +Inf ({finite})"
    assert [b for b in finite if 10 < b <= 60], finite  # resolution where completions are


async def test_no_client_chosen_string_makes_a_series_and_the_scrape_is_valid(tmp_path):
    # A hostile caller sends many distinct model names, request ids, paths, classifications and
    # bodies: none of them may become a label (unbounded series) or appear in the scrape at all.
    hostile = [f"zz-hostile-{i}-123.456.789-09" for i in range(25)]

    async def scrape(s) -> tuple[str, int]:
        async with s.get(h.url + "/-/metrics") as r:
            assert r.status == 200
            text = await r.text()
        families = list(text_string_to_metric_families(text))  # raises on an invalid exposition
        return text, sum(len(f.samples) for f in families if f.name.startswith("soberana_"))

    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        ok = {"Authorization": f"Bearer {h.keys['br']}"}
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "cpf 123.456.789-09"}]}
        async with s.post(h.url + "/v1/chat/completions", json=body, headers=ok) as r:
            assert r.status == 200
        async with s.post(h.url + "/v1/chat/completions", json={**body, "model": "unknown-0"}, headers=ok) as r:
            assert r.status == 404
        async with s.post(h.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 401
        async with s.post(h.url + "/v1/chat/completions", json=body, headers={**ok, "X-Data-Classification": "x"}) as r:
            assert r.status == 400  # (each error code is one series, made by the first of its kind)
        _, before = await scrape(s)
        for i, word in enumerate(hostile):
            async with s.post(h.url + "/v1/chat/completions", json={**body, "model": word},
                              headers={**ok, "X-Request-Id": word}) as r:
                assert r.status == 404
            async with s.post(h.url + "/v1/" + word, json=body, headers=ok) as r:
                assert r.status == 404
            async with s.post(h.url + "/v1/chat/completions", json=body,
                              headers={"Authorization": f"Bearer {word}"}) as r:
                assert r.status == 401
            async with s.post(h.url + "/v1/chat/completions", json=body,
                              headers={**ok, "X-Data-Classification": word}) as r:
                assert r.status == 400
        text, after = await scrape(s)
    assert after == before, "client-chosen strings created new series"
    assert "zz-hostile" not in text and "123.456.789-09" not in text


async def test_errors_are_counted_by_code_so_rate_limiting_can_be_alerted_on(tmp_path):
    # soberana_requests_total says "rejected" for a 401, a 400, a 404 and a 429 alike
    async with Harness(tmp_path, extra_config="rate_limit: {key_requests_per_minute: 1}\n") as h, \
            aiohttp.ClientSession() as s:
        async def errors(s) -> dict[str, float]:  # (the registry is the process's: other tests count too)
            async with s.get(h.url + "/-/metrics") as r:
                text = await r.text()
            return {smp.labels["code"]: smp.value for f in text_string_to_metric_families(text)
                    for smp in f.samples if smp.name == "soberana_errors_total"}

        before = await errors(s)
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        statuses = []
        for key in ("sk-sob-not-a-key", h.keys["br"], h.keys["br"]):
            async with s.post(h.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
                statuses.append(r.status)
        async with s.post(h.url + "/v1/chat/completions", data=b"x" * 2_000_000,
                          headers={"Authorization": f"Bearer {h.keys['mx']}"}) as r:
            statuses.append(r.status)  # refused by the server itself, before authentication
            after = await errors(s)
    assert statuses == [401, 200, 429, 413]
    counts = {code: n - before.get(code, 0) for code, n in after.items() if n != before.get(code, 0)}
    assert counts == {"unauthorized": 1, "rate_limited": 1, "payload_too_large": 1}


async def test_one_worker_exposes_the_same_series_as_a_pre_forked_fleet(tmp_path):
    # With one worker, every counter and histogram also exposed a `<name>_created` series (its
    # creation time, one per label set: twice the series to store), which a pre-forked fleet's
    # exposition never has: dashboards and recording rules saw different metrics by worker count.
    text = await _scrape_after_one_request(tmp_path)
    names = {smp.name for f in text_string_to_metric_families(text) for smp in f.samples}
    assert "soberana_requests_total" in names
    assert not [n for n in names if n.endswith("_created")]
