"""Operations endpoints: liveness, readiness, Prometheus metrics, and policy explain."""

from __future__ import annotations

import logging

import orjson
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import metrics
from gateway.app import State
from gateway.auth.authenticator import AuthError
from gateway.dialects import ENDPOINTS
from gateway.dialects.errors import DialectError, error_body
from gateway.policy.explain import explain_request
from gateway.ratelimit import retry_after
from gateway.server.http import Request, Response
from gateway.server.proxy import Reject, _level

log = logging.getLogger("soberana")


def _json(body, status: int = 200) -> Response:
    return Response(status, orjson.dumps(body))


def _error(dialect: str, status: int, code: str, message: str) -> Response:
    return Response(status, error_body(dialect, status, code, message))


async def healthz(request: Request, state: State) -> Response:
    """The process is alive and serving its event loop."""
    return _json({"status": "ok"})


async def readyz(request: Request, state: State) -> Response:
    """Ready to take traffic: policies loaded and the audit sink writing. ``upstreams`` (how many
    have a closed or half-open circuit) is reported, not required.

    The audit check covers every worker of a pre-forked fleet: the kernel hands a probe to any one of
    them, and a worker that cannot write its audit log refuses every request it gets; answered for
    itself, a healthy worker kept the pod ready while 1/N of its requests failed.

    Upstreams are shared by every pod: when one is down, all pods would turn not ready at once, and
    callers would get refused connections (or the load balancer's page) instead of the gateway's 503
    ``no_compliant_upstream`` in their SDK's dialect, with its Retry-After; and a half-open circuit
    would flip the whole fleet's readiness back and forth."""
    checks = {
        "policies": bool(state.policies.revision),
        "audit": state.audit.accepting and metrics.fleet_audit_healthy(),
    }
    ok = all(checks.values())
    registry = state.registry
    up = sum(1 for n in registry.targets if registry.healthy(n))
    return _json({"status": "ready" if ok else "not_ready", "checks": checks,
                  "upstreams": {"available": up, "configured": len(registry.targets)},
                  "policy_revision": state.policies.revision}, 200 if ok else 503)


async def metrics_endpoint(request: Request, state: State) -> Response:
    """Prometheus text exposition (every worker's sum when pre-forked)."""
    state.audit.publish_lag()
    metrics.set_audit_healthy(state.audit.healthy)
    for t in state.registry.targets.values():
        t.gauge.set(t.breaker.state)
    return Response(200, metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


async def explain(request: Request, state: State) -> Response:
    """POST /-/explain[?endpoint=/v1/messages]: the decision for this body, for the caller's own identity
    and the level of its ``X-Data-Classification`` header, as the proxy would take it. Nothing is
    forwarded and no audit record is written for an explain."""
    endpoint = request.query_param("endpoint") or "/v1/chat/completions"
    dialect = ENDPOINTS.get(endpoint, "openai")
    try:
        principal = await state.auth.authenticate(request.headers)
    except AuthError as e:
        log.info("%s unauthorized: %s", request.path, e)
        return _error(dialect, 401, "unauthorized", "missing or invalid credentials")
    if endpoint not in ENDPOINTS:
        return _error(dialect, 404, "not_found", "unknown endpoint")
    try:
        payload = orjson.loads(request.body)
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        return _error(dialect, 400, "invalid_request", "the body must be a JSON object")
    if state.limiter.enabled:
        # one request of the caller's (no model tokens): unlimited, an explain let a caller held at
        # its limit go on running inspection, and probing what the policy lets through, without end
        retry = await state.limiter.check(principal, 0)
        if retry is not None:
            return Response(429, error_body(dialect, 429, "rate_limited", "rate limit exceeded"),
                            [("Retry-After", retry_after(retry))])
    try:  # the level the proxy would read from X-Data-Classification: it changes the decision
        level = _level(request)
    except Reject as e:
        return _error(dialect, e.status, e.code, e.message)
    try:
        result = explain_request(state.config, state.policies, principal, endpoint, payload, level)
    except DialectError as e:
        return _error(dialect, 400, "invalid_request", str(e))
    return _json(result)


ROUTES = {
    ("GET", "/-/healthz"): healthz,
    ("GET", "/-/readyz"): readyz,
    ("GET", "/-/metrics"): metrics_endpoint,
    ("POST", "/-/explain"): explain,
}
"""(method, path) → handler(request, state), merged into the server's routes by gateway.app."""
