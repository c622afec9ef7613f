"""/-/metrics as a scraper reads it: through a real gateway, parsed with prometheus_client's parser."""

from __future__ import annotations

import math

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.testing.harness import Harness


async def test_upstream_latency_buckets_reach_the_durations_of_model_calls(tmp_path):
    # The upstream latency histogram had prometheus-client's default buckets, the last finite one at
    # 10 s. A non-streamed completion commonly takes 10-60 s (the upstream timeout is 300 s): all of
    # them fell in +Inf, and every p95/p99 of an upstream read as "10 s".
    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        async with s.post(h.url + "/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
            assert r.status == 200
        async with s.get(h.url + "/-/metrics") as r:
            text = await r.text()
    family = next(f for f in text_string_to_metric_families(text) if f.name == "soberana_upstream_latency_seconds")
    bounds = sorted({float(smp.labels["le"]) for smp in family.samples
                     if smp.name.endswith("_bucket") and smp.labels["upstream"] == "br-sovereign"})
    finite = [b for b in bounds if not math.isinf(b)]
    for seconds in (15, 45, 100, 250):  # each lands in a finite bucket, and not the one of 10 s
        assert any(seconds <= b for b in finite), f"a {seconds} s call falls in +Inf ({finite})"
    assert [b for b in finite if 10 < b <= 60], finite  # resolution where completions are
