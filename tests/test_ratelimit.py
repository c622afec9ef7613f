"""Rate limits with the memory backend on a hand-moved clock: buckets, sliding window, Retry-After."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.principal import Principal
from gateway.config import RateLimit, config_from_text
from gateway.ratelimit import Bucket, MemoryBackend, RateLimiter, buckets_for, wait_time
from gateway.yamlfile import ConfigError

ANA = Principal(sub="ana", agency="receita", jurisdiction="BR", key_id="tax-1")
BETO = Principal(sub="beto", agency="receita", jurisdiction="BR", key_id="tax-2")
CARLA = Principal(sub="carla", agency="imss", jurisdiction="MX", key_id="imss-1")
JWT_USER = Principal(sub="dora@receita.gov.br", agency="receita", jurisdiction="BR")


class Clock:
    def __init__(self, t: float = 6000.0):  # 6000 = the start of a minute
        self.t = t

    def __call__(self) -> float:
        return self.t


def limiter(clock: Clock, **cfg) -> RateLimiter:
    return RateLimiter(RateLimit(**cfg), MemoryBackend(clock))


async def test_no_limits_means_no_buckets():
    lim = RateLimiter.from_config(RateLimit())
    assert not lim.enabled and buckets_for(lim.cfg, ANA, 10) == []
    for _ in range(1000):
        assert await lim.check(ANA, 10_000) is None


async def test_requests_per_minute_and_exact_retry_after():
    clock = Clock(6010.0)  # 10 s into a minute
    lim = limiter(clock, requests_per_minute=3)
    assert [await lim.check(ANA) for _ in range(3)] == [None, None, None]
    retry = await lim.check(ANA)
    # Next minute: the 3 decay; one more fits once 3*(1 - t/60) <= 2, i.e. 20 s in: 50 + 20 = 70 s.
    assert retry == pytest.approx(70.0)
    clock.t += retry - 0.5
    assert await lim.check(ANA) is not None
    clock.t += 0.5 + 1e-6
    assert await lim.check(ANA) is None


async def test_no_double_burst_across_a_minute_boundary():
    clock = Clock(6059.0)
    lim = limiter(clock, requests_per_minute=10)
    for _ in range(10):
        assert await lim.check(ANA) is None
    clock.t = 6061.0  # a fixed window would now allow 10 more
    assert await lim.check(ANA) is not None
    clock.t = 6090.0  # half way through the next minute: half of the old weight gone, 5 fit
    assert [await lim.check(ANA) for _ in range(6)].count(None) == 5


async def test_agency_limit_is_shared_by_its_keys_and_key_limit_is_per_key():
    clock = Clock()
    lim = limiter(clock, requests_per_minute=3, key_requests_per_minute=2)
    assert await lim.check(ANA) is None and await lim.check(ANA) is None
    assert await lim.check(ANA) is not None  # ANA's key is at 2
    assert await lim.check(BETO) is None  # receita at 3 now
    assert await lim.check(BETO) is not None  # the agency is full, though BETO used one
    assert await lim.check(CARLA) is None  # another agency is untouched
    assert await lim.check(JWT_USER) is not None  # a JWT caller of receita shares the agency bucket


async def test_jwt_callers_are_limited_per_subject():
    clock = Clock()
    lim = limiter(clock, key_requests_per_minute=1)
    other = Principal(sub="eva@receita.gov.br", agency="receita", jurisdiction="BR")
    assert await lim.check(JWT_USER) is None and await lim.check(JWT_USER) is not None
    assert await lim.check(other) is None
    assert [b.name for b in buckets_for(lim.cfg, JWT_USER, 0)] == ["sub:dora@receita.gov.br:req"]


async def test_token_quota_and_all_or_nothing_charging():
    clock = Clock()
    lim = limiter(clock, requests_per_minute=5, tokens_per_minute=1000)
    assert await lim.check(ANA, 600) is None
    assert await lim.check(ANA, 600) is not None  # tokens refuse; the request bucket is NOT charged
    assert await lim.check(ANA, 400) is None
    assert await lim.check(ANA, 0) is not None  # no estimate, but the token bucket is full
    # 2 requests charged so far (the refused ones were not): 3 more fit by the request count.
    clock.t += 120
    assert [await lim.check(ANA) for _ in range(6)].count(None) == 5


async def test_a_request_bigger_than_the_whole_quota_never_fits():
    lim = limiter(Clock(), tokens_per_minute=1000)
    assert await lim.check(ANA, 1001) == 60.0
    assert await lim.check(ANA, 1000) is None


async def test_a_failing_backend_fails_closed(caplog):
    class Broken:
        async def hit(self, buckets, window):
            raise ConnectionError("redis down")

        async def close(self):
            pass

    caplog.set_level(logging.ERROR, logger="soberana.ratelimit")
    lim = RateLimiter(RateLimit(requests_per_minute=100), Broken())
    assert await lim.check(ANA) == 1.0
    assert "ConnectionError" in caplog.text


async def test_memory_forgets_idle_callers(monkeypatch):
    clock = Clock()
    backend = MemoryBackend(clock)
    monkeypatch.setattr(MemoryBackend, "_SWEEP_AT", 100)
    lim = RateLimiter(RateLimit(key_requests_per_minute=5), backend)
    for i in range(100):
        await lim.check(Principal(sub=f"s{i}", agency="a", jurisdiction="BR"))
    clock.t += 180
    for i in range(5):
        await lim.check(Principal(sub=f"new{i}", agency="a", jurisdiction="BR"))
    assert len(backend._counts) <= 5 + 1


async def test_many_active_callers_do_not_sweep_on_every_request(monkeypatch):
    # Above _SWEEP_AT buckets the sweep ran on every request as long as the callers stayed active
    # (none is old enough to drop): each check walked every bucket, ~0.2 ms at 12 000 callers and
    # growing, on the event loop. The next sweep now waits until the table has doubled.
    clock = Clock()
    backend = MemoryBackend(clock)
    monkeypatch.setattr(MemoryBackend, "_SWEEP_AT", 100)
    sweeps = []
    real = MemoryBackend._sweep
    monkeypatch.setattr(MemoryBackend, "_sweep", lambda self, idx: (sweeps.append(idx), real(self, idx)))
    lim = RateLimiter(RateLimit(key_requests_per_minute=5), backend)
    callers = [Principal(sub=f"s{i}", agency="a", jurisdiction="BR") for i in range(1000)]
    for _ in range(3):
        for p in callers:
            assert await lim.check(p) is None
    assert len(sweeps) <= 5, f"{len(sweeps)} sweeps for 3000 requests of 1000 active callers"
    clock.t += 180  # all idle: the next sweep (once the table has grown enough) drops them
    for i in range(2100):
        await lim.check(Principal(sub=f"new{i}", agency="a", jurisdiction="BR"))
    assert len(backend._counts) < 3000


def test_from_config_picks_backends_and_refuses_unknown_ones():
    assert isinstance(RateLimiter.from_config(RateLimit(requests_per_minute=1)).backend, MemoryBackend)
    with pytest.raises(ConfigError) as e:
        RateLimiter.from_config(RateLimit(requests_per_minute=1, backend="memcached"))
    assert e.value.field == "rate_limit.backend"
    with pytest.raises(ConfigError) as e:
        RateLimiter.from_config(RateLimit(requests_per_minute=1, backend="redis"))
    assert e.value.field == "rate_limit.redis_url"


def test_negative_limits_are_config_errors_with_a_line():
    with pytest.raises(ConfigError) as e:
        config_from_text("rate_limit:\n  backend: memory\n  requests_per_minute: -1\n", "gw.yaml")
    assert (e.value.line, e.value.field) == (3, "rate_limit.requests_per_minute")


@settings(max_examples=300, deadline=None)
@given(prev=st.integers(0, 50), cur=st.integers(0, 50), elapsed=st.floats(0, 59.999),
       limit=st.integers(1, 40), cost=st.integers(0, 45))
def test_retry_after_is_exact(prev, cur, elapsed, limit, cost):
    """Waiting the returned time makes room (no other traffic); waiting visibly less does not."""
    w = wait_time(prev, cur, elapsed, limit, cost, 60.0)
    if w is None:
        return
    assert w > 0
    if cost > limit:
        assert w == 60.0
        return

    def allowed_after(d: float) -> bool:
        t = elapsed + d
        p, c = (prev, cur) if t < 60 else ((cur, 0) if t < 120 else (0, 0))
        return wait_time(p, c, t % 60, limit, cost, 60.0) is None

    assert allowed_after(w + 1e-6)
    if w > 0.01:
        assert not allowed_after(w - 0.01)


def test_bucket_names_are_per_agency_and_per_caller():
    cfg = RateLimit(requests_per_minute=1, tokens_per_minute=2, key_requests_per_minute=3, key_tokens_per_minute=4)
    assert buckets_for(cfg, ANA, 7) == [Bucket("agency:receita:req", 1, 1), Bucket("agency:receita:tok", 2, 7),
                                        Bucket("key:tax-1:req", 3, 1), Bucket("key:tax-1:tok", 4, 7)]


async def test_http_429_with_retry_after(aiohttp_server):
    """A minimal app doing what the server does with check(): 429 and a whole-second Retry-After."""
    import math

    import aiohttp
    from aiohttp import web

    clock = Clock(6010.0)
    lim = limiter(clock, key_requests_per_minute=2)

    async def handler(request: web.Request) -> web.Response:
        retry = await lim.check(ANA)
        if retry is not None:
            return web.json_response({"error": {"code": "rate_limited"}}, status=429,
                                     headers={"Retry-After": str(max(1, math.ceil(retry)))})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(3):
            async with s.post(url, json={}) as r:
                statuses.append(r.status)
                retry_after = r.headers.get("Retry-After")
        assert statuses == [200, 200, 429]
        assert retry_after == "80"  # 50 s to the next minute + 30 s for 2 to decay to 1
        clock.t += 80
        async with s.post(url, json={}) as r:
            assert r.status == 200


def test_estimate_tokens_counts_body_and_requested_output():
    from gateway.ratelimit import estimate_tokens

    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 400 + b'"}]}'
    assert estimate_tokens(body, {"max_tokens": 256}) == len(body) // 4 + 256
    assert estimate_tokens(body, {"max_completion_tokens": 10, "max_tokens": 99}) == len(body) // 4 + 99
    assert estimate_tokens(body, {"max_output_tokens": True}) == len(body) // 4
    assert estimate_tokens(b"", {}) == 0


async def test_a_reload_does_not_give_callers_a_fresh_quota(tmp_path):
    import aiohttp

    from gateway.testing.harness import Harness

    async with Harness(tmp_path, extra_config="rate_limit: {requests_per_minute: 2}\n") as h:
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            for status in (200, 200, 429):
                async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                    assert r.status == status
            assert (await h.holder.reload())[0]  # e.g. a policy edit; the limits are the same
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 429, "the reload reset the agency's quota"


async def test_a_reload_that_changes_a_limit_keeps_the_counts(tmp_path):
    # An operator lowers a limit during abuse: the new limit applies at once to what was already spent.
    # The memory backend was rebuilt on any change of rate_limit, so the reload wiped every count and
    # the abusing caller got a whole fresh quota under the new limit.
    import aiohttp

    from gateway.testing.harness import Harness

    async with Harness(tmp_path, extra_config="rate_limit: {requests_per_minute: 5}\n") as h:
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                    assert r.status == 200
            h.config_path.write_text(h.config_path.read_text().replace("requests_per_minute: 5", "requests_per_minute: 3"))
            assert (await h.holder.reload())[0]
            assert h.holder.current.limiter.cfg.requests_per_minute == 3
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 429, "lowering the limit handed the agency a fresh quota"
            h.config_path.write_text(h.config_path.read_text().replace("requests_per_minute: 3", "requests_per_minute: 4"))
            assert (await h.holder.reload())[0]
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 200  # raised: the room the new limit leaves, no more
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 429


async def test_retry_after_is_never_under_the_wait(tmp_path):
    # Retry-After was int(wait + 0.999): a wait of 119.0005 s went out as 119, and a client that obeys
    # it to the second is refused again. Now rounded up (math.ceil), and never below 1.
    import aiohttp

    from gateway.testing.harness import Harness

    async with Harness(tmp_path, extra_config="rate_limit: {key_requests_per_minute: 1}\n") as h:
        clock = Clock(6000.9995)  # 0.9995 s into a minute
        h.holder.current.limiter.backend.clock = clock
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 200
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 429
                retry_after = int(r.headers["Retry-After"])
            assert retry_after == 120  # the wait is 119.0005 s: 59.0005 to the next minute, then 60 to decay
            clock.t += retry_after - 1
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 429
            clock.t += 1  # obeyed to the second: admitted
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                assert r.status == 200


async def test_a_token_quota_counts_every_choice_asked_for(tmp_path):
    # The estimate counted max_tokens once, whatever ``n`` (or ``best_of``): n=10 choices of up to
    # 1 000 tokens each were charged ~1 000 tokens, a tenth of what the upstream may generate, so a
    # tokens_per_minute quota was beaten by asking for many choices at once.
    import aiohttp

    from gateway.ratelimit import estimate_tokens
    from gateway.testing.harness import Harness

    assert estimate_tokens(b"", {"max_tokens": 100, "n": 3}) == 300
    assert estimate_tokens(b"", {"max_tokens": 100, "n": 2, "best_of": 5}) == 500  # generated server-side
    assert estimate_tokens(b"", {"max_tokens": 100, "n": True}) == 100
    async with Harness(tmp_path, extra_config="rate_limit: {key_tokens_per_minute: 5000}\n") as h:
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}], "max_tokens": 1000}
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", json={**body, "n": 10}, headers=hdr) as r:
                assert r.status == 429, "10 choices of 1 000 tokens passed a 5 000-token quota"
            for status in (200, 200, 200, 200, 429):  # one choice each: ~1 020 tokens
                async with s.post(h.url + "/v1/chat/completions", json=body, headers=hdr) as r:
                    assert r.status == status
