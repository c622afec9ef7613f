"""Per-caller rate limits and token quotas.

Buckets: each agency, and each single caller (API key id, or JWT subject), has a requests bucket
and a tokens bucket per minute; the config sets each limit (0 = no such bucket). A request is
charged to all its buckets or to none: if any bucket would overflow, nothing is counted and the
caller gets the longest wait.

Window: a sliding-window counter. Each bucket keeps the count of the current fixed minute and of
the previous one; the estimate at time ``t`` is ``prev * (1 - elapsed/60) + cur``. Unlike a plain
fixed window, a caller cannot burst twice the limit around a minute boundary, and it needs two
integers per bucket (easy to keep atomic in Redis). Retry-After is the exact time until the
estimate leaves room for the request, assuming no other traffic. A request that is bigger than the
whole limit (a token estimate above ``tokens_per_minute``) can never fit; it is refused with a full
window as Retry-After.

Backends: ``memory`` (this process) by default; any other ``rate_limit.backend`` name is looked up
among plugins (``gateway.plugins``), e.g. ``redis`` from ``plugins/redis_ratelimit.py`` so that a
fleet of gateways shares one limit. A backend that cannot answer fails closed: the request is
refused (Retry-After 1 s), never waved through.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from gateway.auth.principal import Principal
from gateway.config import RateLimit
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana.ratelimit")

WINDOW_S = 60.0
BACKEND_DOWN_RETRY_S = 1.0
FAILURE_LOG_EVERY_S = 10.0
"""While the backend keeps failing, one summary line per this many seconds (not one per request)."""


class Bucket(NamedTuple):
    """One counter to charge: its name, its limit per window, and this request's cost."""

    name: str
    limit: int
    cost: int


class Backend(Protocol):
    """Where bucket counts live. ``hit`` checks and charges all buckets atomically."""

    async def hit(self, buckets: Sequence[Bucket], window: float) -> float | None:
        """None if every bucket had room (and all were charged), else seconds to wait (none charged)."""

    async def close(self) -> None: ...


def wait_time(prev: float, cur: float, elapsed: float, limit: float, cost: float, window: float) -> float | None:
    """Sliding-window decision for one bucket: None if ``cost`` fits now, else seconds until it would.

    ``prev``/``cur`` are the previous and current fixed-window counts, ``elapsed`` the time into the
    current window. A zero cost (a token bucket when the caller has no estimate) is refused only once
    the bucket is already full.
    """
    est = prev * (window - elapsed) / window + cur
    if est + cost <= limit and (cost > 0 or est < limit):
        return None
    if cost > limit:
        return window
    # What the decayed estimate must fall to; a zero cost needs the estimate strictly under the limit.
    room = limit - cost if cost > 0 else limit - 1e-6
    if cur <= room and prev > 0:
        # Still this window: wait for the previous window's weight to decay enough.
        return max(0.0, (window - elapsed) - window * (room - cur) / prev) or 1e-3
    # Only the next window helps; then this window's count becomes the decaying one.
    return (window - elapsed) + (max(0.0, window * (1 - room / cur)) if cur > 0 else 0.0) or 1e-3


def retry_after(wait: float) -> str:
    """The Retry-After header for a wait: whole seconds, rounded up (a client that obeys it to the
    second must find room; int(wait + 0.999) sent 119 for 119.0005 s), and at least 1."""
    return str(max(1, math.ceil(wait)))


_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def estimate_tokens(body: bytes, payload: dict) -> int:
    """A cheap upper-ish estimate of a request's model tokens, for ``check(principal, tokens)``.

    Input: about one token per 4 bytes of the JSON body (overcounts the JSON syntax, on purpose: a
    quota should not be beaten by the estimate). Output: the first of ``max_tokens`` /
    ``max_completion_tokens`` / ``max_output_tokens`` the request sets, else nothing, times the
    choices the upstream generates (OpenAI's ``n``, or ``best_of`` of completions when larger):
    counted once, ``n: 10`` got ten choices for the price of one.
    """
    out = 0
    for f in _OUTPUT_FIELDS:
        v = payload.get(f)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out = v
            break
    if out:
        choices = 1
        for f in ("n", "best_of"):
            v = payload.get(f)
            if isinstance(v, int) and not isinstance(v, bool) and v > choices:
                choices = v
        out *= choices
    return len(body) // 4 + out


def buckets_for(cfg: RateLimit, principal: Principal, tokens: int) -> list[Bucket]:
    """The buckets a request from ``principal`` with ``tokens`` estimated tokens is charged to."""
    caller = f"key:{principal.key_id}" if principal.key_id else f"sub:{principal.sub}"
    agency = f"agency:{principal.agency}"
    spec = [(agency, "req", cfg.requests_per_minute, 1), (agency, "tok", cfg.tokens_per_minute, tokens),
            (caller, "req", cfg.key_requests_per_minute, 1), (caller, "tok", cfg.key_tokens_per_minute, tokens)]
    return [Bucket(f"{who}:{kind}", limit, cost) for who, kind, limit, cost in spec if limit > 0]


class MemoryBackend:
    """Counts in this process (one gateway worker). Pure arithmetic with no await: atomic on the loop."""

    _SWEEP_AT = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._counts: dict[str, list[float]] = {}  # name → [window index, cur, prev]
        self._swept_size = 0  # buckets left by the last sweep

    async def hit(self, buckets: Sequence[Bucket], window: float) -> float | None:
        now = self.clock()
        idx = math.floor(now / window)
        elapsed = now - idx * window
        states = [self._state(b.name, idx) for b in buckets]
        worst = None
        for b, (cur, prev) in zip(buckets, states):
            w = wait_time(prev, cur, elapsed, b.limit, b.cost, window)
            if w is not None and (worst is None or w > worst):
                worst = w
        if worst is not None:
            return worst
        for b, (cur, prev) in zip(buckets, states):
            self._counts[b.name] = [idx, cur + b.cost, prev]
        # The next sweep waits until the table has doubled since the last one: with more active
        # callers than _SWEEP_AT (none old enough to drop) a fixed threshold swept, walking every
        # bucket, on every request.
        if len(self._counts) > max(self._SWEEP_AT, 2 * self._swept_size):
            self._sweep(idx)
            self._swept_size = len(self._counts)
        return None

    def _state(self, name: str, idx: int) -> tuple[float, float]:
        s = self._counts.get(name)
        if s is None or s[0] < idx - 1:
            return 0.0, 0.0
        if s[0] == idx - 1:
            return 0.0, s[1]
        return s[1], s[2]

    def _sweep(self, idx: int) -> None:
        # Buckets two windows old count for nothing; drop them so memory follows active callers only.
        for name in [n for n, s in self._counts.items() if s[0] < idx - 1]:
            del self._counts[name]

    async def close(self) -> None:
        self._counts.clear()


class RateLimiter:
    """Per-agency and per-caller limits over a backend. ``check`` → None (go) or Retry-After seconds."""

    def __init__(self, cfg: RateLimit, backend: Backend, *, window: float = WINDOW_S):
        self.cfg, self.backend, self.window = cfg, backend, window
        self.enabled = bool(cfg.requests_per_minute or cfg.tokens_per_minute
                            or cfg.key_requests_per_minute or cfg.key_tokens_per_minute)
        """Any limit set; without one the data path skips ``check`` (and its estimate) altogether."""
        self._refused = 0  # requests refused since the backend began failing (0: it answers)
        self._logged_at = 0.0

    @classmethod
    def from_config(cls, cfg: RateLimit, backend: Backend | None = None) -> RateLimiter:
        """The memory backend, or the plugin backend named by ``cfg.backend`` (ConfigError if none has it).

        ``backend``: keep this one (and its counts) instead, for a reload that changed only the limits."""
        for name, value in (("requests_per_minute", cfg.requests_per_minute),
                            ("tokens_per_minute", cfg.tokens_per_minute),
                            ("key_requests_per_minute", cfg.key_requests_per_minute),
                            ("key_tokens_per_minute", cfg.key_tokens_per_minute)):
            if value < 0:
                raise ConfigError("<config>", None, f"rate_limit.{name}", "must be ≥ 0 (0 = unlimited)")
        if backend is not None:
            return cls(cfg, backend)
        if cfg.backend == "memory":
            return cls(cfg, MemoryBackend())
        from gateway.plugins import rate_limit_backend

        return cls(cfg, rate_limit_backend(cfg.backend)(cfg))

    def never_fits(self, principal: Principal, tokens: int = 0) -> bool:
        """Whether a request of ``tokens`` estimated tokens is larger than one of its token limits:
        no wait lets it through (``check`` refuses it with a whole window to wait)."""
        return any(b.cost > b.limit for b in buckets_for(self.cfg, principal, max(0, int(tokens))))

    async def check(self, principal: Principal, tokens: int = 0) -> float | None:
        """Charge one request with ``tokens`` estimated tokens. None = go on; else the Retry-After seconds."""
        buckets = buckets_for(self.cfg, principal, max(0, int(tokens)))
        if not buckets:
            return None
        try:
            wait = await self.backend.hit(buckets, self.window)
        except Exception as e:  # fail closed: a limiter that cannot count refuses
            # counted apart: to the caller (and in soberana_errors_total) it is rate_limited, and an
            # outage of the backend read as every caller suddenly over its limit
            from gateway import metrics  # (not at import: the pre-forking parent loads this module)

            metrics.RATE_LIMIT_BACKEND_FAILURES.inc()
            # The first failure at once, then a summary every FAILURE_LOG_EVERY_S: one line per
            # refused request wrote thousands of identical lines a second through an outage.
            self._refused += 1
            now = time.monotonic()
            if self._refused == 1 or now - self._logged_at >= FAILURE_LOG_EVERY_S:
                self._logged_at = now
                log.error("rate-limit backend %s failed, refusing (%d request(s) refused so far): %s",
                          self.cfg.backend, self._refused, type(e).__name__)
            return BACKEND_DOWN_RETRY_S
        if self._refused:
            log.warning("rate-limit backend %s answers again, after refusing %d request(s)",
                        self.cfg.backend, self._refused)
            self._refused = 0
        return wait

    async def close(self) -> None:
        await self.backend.close()
