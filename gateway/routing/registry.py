"""The upstreams a gateway may forward to: pools, provider keys, health, and the candidate list."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from urllib.parse import urlsplit

from gateway.config import Config, Upstream
from gateway.dialects import ENDPOINTS
from gateway.dialects.translate import carries
from gateway.forward.client import UpstreamError, UpstreamPool
from gateway.tls import TlsConfigError, client_context, files_digest
from gateway.metrics import CIRCUIT, UPSTREAM_LATENCY, Observer
from gateway.policy import Candidate
from gateway.routing.breaker import Breaker
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana.routing")


class Target:
    """One configured upstream at run time."""

    __slots__ = ("cfg", "pool", "breaker", "auth_headers", "key", "gauge", "latency", "tls_digest", "_timer")

    def __init__(self, cfg: Upstream, pool: UpstreamPool, source: str, tls_digest: str = ""):
        self.cfg = cfg
        self.pool = pool
        self.tls_digest = tls_digest
        """What the TLS files held when the pool was built (see ``files_digest``)."""
        self.breaker = Breaker(cfg.breaker_failures, cfg.breaker_reset_s)
        self.gauge = CIRCUIT.labels(cfg.name)
        self.latency = Observer(UPSTREAM_LATENCY.labels(cfg.name))  # observe(), cheaper (the data path's)
        self._timer: asyncio.TimerHandle | None = None  # sets the gauge when an open circuit turns half-open
        self.auth_headers: list[tuple[bytes, bytes]] = []
        self.key: bytes | None = None
        """The provider key sent to this upstream, to take out of what it answers (``proxy._relay_json``)."""
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ConfigError(source, None, f"upstreams.{cfg.name}.api_key_env",
                                  f"environment variable {cfg.api_key_env} is not set")
            self.key = key.encode()
            if cfg.dialect == "anthropic":
                self.auth_headers = [(b"x-api-key", key.encode())]
            else:
                self.auth_headers = [(b"authorization", b"Bearer " + key.encode())]

    def success(self) -> None:
        if self.breaker.success():  # the gauge changes only when the circuit closes (once, not per request)
            self.cancel_timer()
            self.gauge.set(self.breaker.state)

    def failure(self) -> None:
        self.breaker.failure()
        self._set_gauge()
        log.warning("upstream %s failed (circuit state %d)", self.cfg.name, self.breaker.state)

    def _set_gauge(self) -> None:
        """Set the gauge to the state now and, while the circuit is open, again when it turns half-open.
        Open turns half-open by time alone: set only on a request's end or a scrape, a pre-forked
        worker's gauge said open long after (the fleet reads the worst worker) until something reached it."""
        self.cancel_timer()
        self.gauge.set(self.breaker.state)
        wait = self.breaker.half_open_in()
        if wait is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # (no loop: nothing is served either)
                return
            # a loop timer may fire a clock tick early: _set_gauge then waits for the rest
            self._timer = loop.call_later(wait, self._set_gauge)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _cleartext(url: str) -> bool:
    """Whether ``url`` is plain HTTP to anything but the loopback (a sidecar's or a test's upstream)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return True


class Registry:
    """Upstream targets by name and each model's candidate list, built from one Config.

    A reload builds a new Registry that keeps the pools (and breaker state) of upstreams whose
    definition did not change, so warm connections survive it (the contents of its TLS files
    included: a renewed certificate gets a new pool).
    """

    def __init__(self, config: Config, previous: "Registry | None" = None):
        self.targets: dict[str, Target] = {}
        old = previous.targets if previous else {}
        for u in config.upstreams:
            prev = old.get(u.name)
            digest = files_digest(u.tls, config.path)
            connect_timeout = config.limits.upstream_connect_timeout_s
            read_timeout = u.timeout_s or config.limits.upstream_timeout_s
            # the pool holds the deadlines too: one kept across a reload that changed `limits` would
            # go on with the old ones
            if prev is not None and prev.cfg == u and prev.tls_digest == digest \
                    and (prev.pool.connect_timeout, prev.pool.read_timeout) == (connect_timeout, read_timeout):
                self.targets[u.name] = prev
                continue
            try:
                ctx = client_context(u.tls, config.path) if u.url.startswith("https://") else None
            except TlsConfigError as e:  # (checked at load; a file changed since)
                raise ConfigError(config.source, None, f"upstreams.{u.name}.tls.{e.field}", str(e)) from None
            pool = UpstreamPool(u.url, max_connections=u.max_connections,
                                connect_timeout=connect_timeout, read_timeout=read_timeout, ssl_context=ctx,
                                server_name=u.tls.server_name if u.tls else None)
            self.targets[u.name] = Target(u, pool, config.source, digest)
            if _cleartext(u.url):
                # allowed (an in-country model on a private network), but the operator should know
                log.warning("upstream %s is plain http:// to a host that is not this machine: prompts%s travel "
                            "unencrypted on that network; use https:// (upstreams.%s.tls)", u.name,
                            " and its provider key" if u.api_key_env else "", u.name)
        self.models: dict[str, list[Candidate]] = {
            model: [Candidate(r.upstream, self.targets[r.upstream].cfg.residency, r.model) for r in routes]
            for model, routes in config.models.items()
        }
        # per endpoint, each model's candidates whose dialect can carry it: the others are no
        # candidates for that endpoint's requests (an Anthropic upstream cannot serve embeddings), so
        # the decision goes on to the next one as past an unhealthy one, and retries never reach them
        self.by_endpoint: dict[str, dict[str, list[Candidate]]] = {
            endpoint: {model: [c for c in cands if carries(src, self.targets[c.upstream].cfg.dialect, endpoint)]
                       for model, cands in self.models.items()}
            for endpoint, src in ENDPOINTS.items()
        }
        self._retired = [t for n, t in old.items() if self.targets.get(n) is not t]
        self._probe: asyncio.Task | None = None

    def healthy(self, name: str) -> bool:
        t = self.targets.get(name)
        return t is not None and t.breaker.available()

    def admit(self, name: str) -> bool:
        """``healthy``, for a request about to be sent there: half-open, only the first is admitted
        (``Breaker.admit``). The proxy's decisions route with this; reports (readiness, explain) ask
        ``healthy``, which admits nothing."""
        t = self.targets.get(name)
        return t is not None and t.breaker.admit()

    def start(self) -> None:
        if any(t.cfg.health_path for t in self.targets.values()):
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    async def _probe_once(self, t: Target) -> None:
        try:
            resp = await asyncio.wait_for(t.pool.request("GET", t.cfg.health_path or "", list(t.auth_headers), b""), 5)
            await resp.read()
            resp.release()
            t.success() if resp.status < 500 else t.failure()
        except (UpstreamError, asyncio.TimeoutError, OSError):
            t.failure()

    async def _probe_loop(self) -> None:
        probed = [t for t in self.targets.values() if t.cfg.health_path]
        interval = min(t.cfg.probe_interval_s for t in probed)
        while True:
            await asyncio.gather(*(self._probe_once(t) for t in probed))
            await asyncio.sleep(interval)

    def stop_probes(self) -> None:
        """Stop the active probes: the Registry that a reload swapped in runs its own."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    async def close_retired(self) -> None:
        """Close the pools a reload replaced."""
        for t in self._retired:
            t.cancel_timer()  # (it would set the shared gauge to the retired breaker's state)
            await t.pool.close()
            # its circuit gauge (one series per name): the replacement's state, or 0 when the upstream
            # is gone. Left as it was, an upstream removed while open reported 2 until a restart.
            now = self.targets.get(t.cfg.name)
            t.gauge.set(now.breaker.state if now is not None else 0)
        self._retired = []

    async def close(self) -> None:
        self.stop_probes()
        for t in self.targets.values():
            t.cancel_timer()
            await t.pool.close()
