"""Build the request handler from a Config, and swap its state on reload.

Everything a request needs lives in one immutable-by-convention ``State``: the config, the loaded
policies, the authenticator, the rate limiter, the upstream registry, the keyring and the audit log.
A request takes ``holder.current`` once and uses that snapshot to the end, so a reload (which builds
and validates a whole new State first) never changes the rules under a request in flight.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from gateway import metrics
from gateway.audit.writer import AuditLog
from gateway.auth.authenticator import Authenticator
from gateway.config import Config, in_file, load_config
from gateway.keys import KeyRing
from gateway.plugins import load_plugins
from gateway.policy import PolicySet, load_policies
from gateway.ratelimit import RateLimiter
from gateway.routing.registry import Registry
from gateway.tracing import Tracing
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana")


class State:
    """One validated generation of the gateway's configuration and the objects built from it."""

    def __init__(self, config: Config, policies: PolicySet, auth: Authenticator, limiter: RateLimiter,
                 registry: Registry, ring: KeyRing, audit: AuditLog, tracing: Tracing):
        self.config = config
        self.policies = policies
        self.auth = auth
        self.limiter = limiter
        self.registry = registry
        self.ring = ring
        self.audit = audit
        self.tracing = tracing


class StateHolder:
    """The current State; ``reload()`` swaps in a fully validated new one or keeps the old."""

    def __init__(self, config_path: str | None, worker: int, allow_no_auth: bool):
        self.config_path = config_path
        self.worker = worker
        self.allow_no_auth = allow_no_auth
        self.current: State = None  # type: ignore[assignment]  # set by start()
        self.on_swap: list = []
        """Callbacks ``fn(new_state)`` run after a reload swapped the State (e.g. the server's limits)."""
        self._reloading = asyncio.Lock()

    def _build(self, config: Config, previous: State | None, policies: PolicySet | None = None) -> State:
        if policies is None:
            policies = load_policies(config.path(config.policies))
        auth = Authenticator(config.auth, default_jurisdiction=config.jurisdiction,
                             base_dir=config.path("."), allow_none=self.allow_no_auth)
        old_rl = previous.config.rate_limit if previous is not None else None
        if old_rl == config.rate_limit:
            limiter = previous.limiter  # a reload must not hand every caller a fresh quota
        elif old_rl is not None and (old_rl.backend, old_rl.redis_url, old_rl.redis_prefix) == \
                (config.rate_limit.backend, config.rate_limit.redis_url, config.rate_limit.redis_prefix):
            # only the limits changed: new limits over the same counts (a fresh backend would wipe what
            # every caller spent this minute, so lowering a limit during abuse handed out a full quota)
            limiter = RateLimiter.from_config(config.rate_limit, previous.limiter.backend)
        else:
            limiter = RateLimiter.from_config(config.rate_limit)
        registry = Registry(config, previous.registry if previous else None)
        keys_dir = config.path(config.keys)
        ring = KeyRing.load(keys_dir)
        if previous is not None and previous.config.audit == config.audit:
            audit = previous.audit
        else:
            witness = config.path(config.audit.witness) if config.audit.witness else None
            audit = AuditLog(config.audit, ring, directory=config.path(config.audit.path), worker=self.worker,
                             witness=witness)
        if previous is not None and previous.config.tracing == config.tracing:
            tracing = previous.tracing
        else:
            tracing = Tracing.from_config(config.tracing, worker=self.worker)
        return State(config, policies, auth, limiter, registry, ring, audit, tracing)

    async def start(self, config: Config, policies: PolicySet | None = None) -> None:
        """Build and start the first State (``policies``: already loaded, as validated by the parent)."""
        # Under the reload lock: a SIGHUP during the start (a restarted worker's, a rollout's) reloads
        # once the start is done. Run beside it, the reload swapped in a state while this one was still
        # starting, whose health probes then started after the reload had stopped them, for good.
        async with self._reloading:
            load_plugins()  # an installed plugin that fails to load stops startup (fail closed)
            self.current = self._build(config, None, policies)
            await self._start_parts(self.current, None)

    async def _start_parts(self, s: State, old: State | None) -> None:
        await s.auth.start(old.auth if old is not None else None)
        if old is None or s.audit is not old.audit:
            await s.audit.start()
        s.registry.start()

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file and policies. Returns (swapped, message)."""
        # One at a time: two SIGHUPs in a row would both build on the same old State (two audit logs
        # taking over one chain, the earlier file swapped in last).
        async with self._reloading:
            return await self._reload()

    async def _reload(self) -> tuple[bool, str]:
        old = self.current
        config = old.config
        new = None
        try:
            config = load_config(self.config_path) if self.config_path else old.config
            new = self._build(config, old)
            await self._start_parts(new, old)
        except Exception as e:  # any failure keeps the old, working state
            if new is not None:
                await self._discard(new, old)
            if isinstance(e, ConfigError):
                e = in_file(e, config)  # the log names the file and line to fix
            log.error("reload rejected, keeping policy revision %s: %s", old.policies.revision, e)
            metrics.RELOADS.labels("rejected").inc()
            metrics.RELOAD_OK.set(0)  # until a reload is applied: the edit on disk is not what runs
            return False, f"reload rejected, keeping the running configuration: {e}"
        self.current = new
        if new.audit is old.audit:
            new.audit.ring = new.ring  # after `soberana keys rotate`, checkpoints are signed with the new key
        for fn in self.on_swap:
            fn(new)
        old.registry.stop_probes()  # or every reload would leave one more probe loop running
        await new.registry.close_retired()
        await old.auth.close()
        if new.limiter.backend is not old.limiter.backend:  # (a new limiter may keep the counts)
            await old.limiter.close()
        if new.audit is not old.audit:
            await old.audit.close()
        if new.tracing is not old.tracing:
            await old.tracing.close()
        metrics.RELOADS.labels("applied").inc()
        metrics.RELOAD_OK.set(1)
        log.info("reloaded: policy revision %s", new.policies.revision)
        return True, f"reloaded: policy revision {new.policies.revision}"

    @staticmethod
    async def _discard(new: State, old: State) -> None:
        """Close what a rejected reload built and started and the running State does not share: the
        new authenticator's JWKS session, a new tracing exporter (a thread), a new rate-limit backend,
        the pools of new upstreams. Dropped unclosed, every rejected SIGHUP left them running.

        Not the audit log: it is the last part started, so when it failed nothing of it runs, and
        once started it may hold the running log's chain (a hand-over)."""
        try:
            if new.auth is not old.auth:
                await new.auth.close()
            if new.tracing is not old.tracing:
                await new.tracing.close()
            if new.limiter.backend is not old.limiter.backend:
                await new.limiter.close()
            new.registry.stop_probes()
            for name, t in new.registry.targets.items():
                if old.registry.targets.get(name) is not t:
                    await t.pool.close()
        except Exception as e:  # noqa: BLE001 — the running State is unaffected; say what was left
            log.warning("a rejected reload's parts were not all closed (%s)", type(e).__name__)

    async def close(self) -> None:
        s = self.current
        await s.registry.close()
        await s.auth.close()
        await s.limiter.close()
        await s.audit.close()
        await s.tracing.close()


def build_handler(holder: StateHolder):
    """The server's handler: proxied endpoints, the models list and ``/v1/models/{id}``, ops endpoints,
    and 404 for everything else.

    A request takes ``holder.current`` once, here, and keeps that State to its end.
    """
    from gateway.dialects import ENDPOINTS
    from gateway.server import ops, proxy

    routes = {("POST", path): proxy.handle for path in ENDPOINTS}
    routes[("GET", "/v1/models")] = proxy.list_models
    routes.update(ops.ROUTES)

    def dispatch(request):
        # returns the handler's coroutine rather than awaiting it: one frame less on every resume
        route = routes.get((request.method, request.path))
        if route is None:  # the one route with a parameter, looked at only when no fixed one matched
            get_model = request.method == "GET" and request.path.startswith(proxy.MODEL_PREFIX)
            route = proxy.retrieve_model if get_model else proxy.not_found
        return route(request, holder.current)

    return dispatch
