"""Circuit breakers and failover through a real gateway: fail, hang, reset, recover, never non-compliant."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from gateway.routing.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from gateway.testing.harness import Harness


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_breaker_opens_after_consecutive_failures_and_recovers_half_open():
    clock = Clock()
    b = Breaker(failures=3, reset_s=10, clock=clock)
    b.failure(), b.failure()
    assert b.state == CLOSED and b.available()
    b.success()  # a success resets the count: failures must be consecutive
    b.failure(), b.failure()
    assert b.state == CLOSED
    b.failure()
    assert b.state == OPEN and not b.available() and b.half_open_in() == 10
    clock.now = 9.9
    assert not b.available() and abs(b.half_open_in() - 0.1) < 1e-9
    clock.now = 10.0
    assert b.state == HALF_OPEN and b.available() and b.half_open_in() is None
    b.failure()  # the trial failed: open again, for a full reset period
    assert b.state == OPEN
    clock.now = 20.0
    assert b.state == HALF_OPEN
    b.success()
    assert b.state == CLOSED


def test_half_open_admits_one_trial_at_a_time():
    """Half-open, one request goes as the trial; the rest are kept back until it reports (a success
    closes, a failure re-opens), or until ``reset_s`` passed without a report (a trial whose request
    ended before reaching the upstream). ``available`` (readiness, reports) admits nothing."""
    clock = Clock()
    b = Breaker(failures=1, reset_s=10, clock=clock)
    assert b.admit() and b.admit()  # closed: every request
    b.failure()
    assert not b.admit()  # open
    clock.now = 10.0
    assert b.available() and b.available()  # asking is not admitting
    assert b.admit() and not b.admit() and not b.admit()  # the trial, then the others wait
    assert b.state == HALF_OPEN and b.available()
    b.success()
    assert b.state == CLOSED and b.admit() and b.admit()
    b.failure()
    clock.now = 20.0
    assert b.admit() and not b.admit()
    b.failure()  # the trial failed: open again, a full period
    clock.now = 29.9
    assert not b.admit()
    clock.now = 30.0
    assert b.admit() and not b.admit()
    clock.now = 39.9
    assert not b.admit()
    clock.now = 40.0  # that trial never reported: the next request is the trial
    assert b.admit() and not b.admit()


async def test_a_half_open_upstream_gets_one_trial_request_and_the_others_a_503_meanwhile(tmp_path):
    content = "Paciente com diagnóstico de diabetes tipo 2."  # health data: the in-country model only
    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        target = h.holder.current.registry.targets["br-sovereign"]
        clock = Clock()
        target.breaker._clock = clock
        for _ in range(target.breaker.failures):
            target.breaker.failure()
        clock.now = target.breaker.reset_s  # half-open
        assert target.breaker.admit()  # a trial in flight (another request's)
        async with s.post(**post(h, "gpt-4o-mini", content)) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await r.json())["error"]["code"] == "no_compliant_upstream"
        assert h.received("BR") == [] and h.received("US") == []
        clock.now += target.breaker.reset_s  # that trial never reported: this request is the next
        async with s.post(**post(h, "gpt-4o-mini", content)) as r:
            assert r.status == 200 and r.headers["X-Soberana-Route"] == "br-sovereign"
        assert target.breaker.state == CLOSED and len(h.received("BR")) == 1
        async with s.post(**post(h, "gpt-4o-mini", content)) as r:
            assert r.status == 200


def post(h: Harness, model: str, content: str = "olá", stream: bool = False):
    return dict(url=h.url + "/v1/chat/completions",
                data=orjson.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]}),
                headers={"Authorization": f"Bearer {h.keys['br']}", "Content-Type": "application/json"})


async def test_failing_upstream_opens_its_circuit_and_traffic_goes_to_the_next_compliant(tmp_path):
    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.post(**post(h, "flaky-foreign")) as r:
                assert r.status == 200 and r.headers["X-Soberana-Route"] == "br-sovereign"
        assert len(h.received("US")) == 3
        async with s.post(**post(h, "flaky-foreign")) as r:
            assert r.status == 200
        assert len(h.received("US")) == 3, "an open circuit sends nothing to the failing upstream"
        async with s.get(h.url + "/-/metrics") as r:
            assert 'soberana_circuit_state{upstream="foreign-openai"} 2.0' in await r.text()


async def test_hanging_upstream_times_out_and_fails_over(tmp_path):
    async with Harness(tmp_path, limits={"upstream_timeout_s": 0.5}) as h, aiohttp.ClientSession() as s:
        async with s.post(**post(h, "hangs-foreign")) as r:
            assert r.status == 200 and r.headers["X-Soberana-Route"] == "br-sovereign"


async def test_no_failure_or_reload_ever_sends_health_data_abroad(tmp_path):
    """Health data may only go to the in-country model. While it flaps and the config reloads, every
    request is answered from BR or refused with 503 — the foreign upstream receives none of them."""
    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        content = "Paciente com diagnóstico de diabetes tipo 2."
        async with s.post(**post(h, "gpt-4o-mini", content)) as r:
            assert r.status == 200 and r.headers["X-Soberana-Residency"] == "BR"
        statuses: list[int] = []

        async def client():
            for _ in range(8):
                async with s.post(**post(h, "gpt-4o-mini", content)) as r:
                    statuses.append(r.status)
                    if r.status == 200:
                        assert r.headers["X-Soberana-Residency"] == "BR"

        async def chaos():
            from gateway.testing.stub import start_stub

            for i in range(4):
                await h.stub_br.close()
                await asyncio.sleep(0.05)
                assert (await h.holder.reload())[0]
                h.stub_br = await start_stub("127.0.0.1", h.stub_br.port, "BR", record=str(tmp_path / "received-br.jsonl"))
                await asyncio.sleep(0.05)

        await asyncio.gather(chaos(), *(client() for _ in range(4)))
        assert set(statuses) <= {200, 503} and 503 in statuses
        assert not any("diabetes" in orjson.dumps(b["body"]).decode() for b in h.received("US"))


async def test_a_reload_that_shortens_upstream_timeout_s_applies_to_the_upstreams_it_keeps(tmp_path):
    async with Harness(tmp_path, limits={"upstream_timeout_s": 30}) as h, aiohttp.ClientSession() as s:
        text = h.config_path.read_text()
        h.config_path.write_text(text.replace("upstream_timeout_s: 30", "upstream_timeout_s: 0.5"))
        assert (await h.holder.reload())[0]  # the upstreams themselves did not change
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with s.post(**post(h, "hangs-foreign"), timeout=aiohttp.ClientTimeout(total=20)) as r:
            assert r.status == 200 and r.headers["X-Soberana-Route"] == "br-sovereign"
        assert loop.time() - t0 < 10, "the hanging upstream was waited for with the old 30 s deadline"


async def test_reloads_do_not_pile_up_health_probe_loops(tmp_path):
    async with Harness(tmp_path) as h:
        text = h.config_path.read_text()
        probing = text.replace("dialect: openai, residency: BR}",
                               "dialect: openai, residency: BR, health_path: /models, probe_interval_s: 0.2}")
        assert probing != text
        h.config_path.write_text(probing)
        for _ in range(5):  # e.g. policy edits; the upstream and its pool are kept each time
            assert (await h.holder.reload())[0]
        before = h.stub_br.requests
        await asyncio.sleep(1.0)
        probes = h.stub_br.requests - before
        assert 2 <= probes <= 8, f"{probes} probes in 1 s at one every 0.2 s: the replaced registries still probe"


async def test_an_upstream_removed_by_a_reload_no_longer_reports_an_open_circuit(tmp_path):
    # The circuit gauge of an upstream removed from the config kept its last value: removed while
    # open, soberana_circuit_state{upstream=...} stayed 2 until a restart, and a "circuit open" alert
    # never cleared. A reload now sets a retired upstream's gauge to its replacement's state, or 0.
    from prometheus_client.parser import text_string_to_metric_families

    async def circuits(s) -> dict[str, float]:
        async with s.get(h.url + "/-/metrics") as r:
            text = await r.text()
        family = next(f for f in text_string_to_metric_families(text) if f.name == "soberana_circuit_state")
        return {smp.labels["upstream"]: smp.value for smp in family.samples}

    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.post(**post(h, "flaky-foreign")) as r:
                assert r.status == 200
        assert (await circuits(s))["foreign-openai"] == OPEN
        text = h.config_path.read_text()
        text = "\n".join(line for line in text.splitlines() if "foreign-openai" not in line and line != "  gpt-4o:")
        h.config_path.write_text(text + "\n")
        assert (await h.holder.reload())[0]
        assert "foreign-openai" not in h.holder.current.registry.targets
        assert (await circuits(s)).get("foreign-openai", CLOSED) == CLOSED, "a removed upstream still reports an open circuit"


async def test_the_circuit_gauge_turns_half_open_when_the_open_period_ends_without_traffic_or_scrape(tmp_path):
    # The gauge was set only when a request failed or succeeded and when a scrape reached the worker.
    # With --workers N a scrape reaches one worker and reads the worst of all of them: the others'
    # circuits still read 2 (open) long after their open period had ended, until traffic or a scrape
    # happened to reach each one, and a "circuit open" alert did not clear. The end of the open period
    # now sets the gauge itself.
    from gateway import metrics

    def gauge() -> float | None:
        return metrics.REGISTRY.get_sample_value("soberana_circuit_state", {"upstream": "foreign-openai"})

    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        text = h.config_path.read_text()
        short = text.replace("residency: US, api_key_env", "residency: US, breaker_reset_s: 0.3, api_key_env")
        assert short != text
        h.config_path.write_text(short)
        assert (await h.holder.reload())[0]
        for _ in range(3):
            async with s.post(**post(h, "flaky-foreign")) as r:
                assert r.status == 200
        assert gauge() == OPEN
        await asyncio.sleep(0.5)  # no request, no scrape
        assert h.holder.current.registry.targets["foreign-openai"].breaker.state == HALF_OPEN
        assert gauge() == HALF_OPEN, "the gauge still says open after the open period"


async def test_a_sighup_while_the_worker_starts_reloads_once_it_has_started(tmp_path, monkeypatch):
    # A SIGHUP that reached a worker while it was still starting (a worker restarted by the parent,
    # a reload during a rollout) ran the reload beside the start: the reload swapped in its state and
    # stopped the health probes of the one being started, which then started them anyway, for good:
    # from then on every upstream was probed twice as often, and each such reload added a loop.
    import os
    import signal

    import gateway.testing.harness as harness
    from gateway.audit.writer import AuditLog

    text = harness._config_text
    monkeypatch.setattr(harness, "_config_text", lambda h: text(h).replace(
        "dialect: openai, residency: BR}", "dialect: openai, residency: BR, health_path: /models, probe_interval_s: 0.2}"))
    start = AuditLog.start
    hup = {"sent": False}

    async def slow_start(self):
        if not hup["sent"]:  # the first start: the worker's own
            hup["sent"] = True
            cfg = self.directory.parent / "soberana.yaml"
            cfg.write_text(cfg.read_text().replace("max_body_bytes: 1048576", "max_body_bytes: 2048"))
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.3)  # (opening the audit file takes a while)
        await start(self)

    monkeypatch.setattr(AuditLog, "start", slow_start)
    async with Harness(tmp_path) as h:
        for _ in range(50):
            if h.holder.current.config.limits.max_body_bytes == 2048:
                break
            await asyncio.sleep(0.05)
        assert h.holder.current.config.limits.max_body_bytes == 2048, "the SIGHUP during the start was lost"
        await asyncio.sleep(0.3)
        before = h.stub_br.requests
        await asyncio.sleep(1.0)
        probes = h.stub_br.requests - before
        assert 2 <= probes <= 8, f"{probes} probes in 1 s at one every 0.2 s: two probe loops run"
