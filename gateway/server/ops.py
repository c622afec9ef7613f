"""Operations endpoints: liveness, readiness, Prometheus metrics, and policy explain."""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import metrics
from gateway.app import STATE
from gateway.auth.authenticator import AuthError
from gateway.dialects import ENDPOINTS
from gateway.dialects.errors import error_body
from gateway.policy.explain import explain_request


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving its event loop."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: policies loaded, audit sink writing, at least one upstream available."""
    state = request.app[STATE].current
    checks = {
        "policies": bool(state.policies.revision),
        "audit": state.audit.healthy,
        "upstreams": any(state.registry.healthy(n) for n in state.registry.targets),
    }
    ok = all(checks.values())
    return web.json_response({"status": "ready" if ok else "not_ready", "checks": checks,
                              "policy_revision": state.policies.revision}, status=200 if ok else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    state = request.app[STATE].current
    metrics.AUDIT_LAG.set(state.audit.lag)
    metrics.AUDIT_HEALTHY.set(1 if state.audit.healthy else 0)
    for name, t in state.registry.targets.items():
        t.gauge.set(t.breaker.state)
    resp = web.Response(body=metrics.exposition())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def explain(request: web.Request) -> web.Response:
    """POST /-/explain[?endpoint=/v1/messages]: the decision for this body, for the caller's own identity.
    Nothing is forwarded and no audit record is written for an explain."""
    state = request.app[STATE].current
    endpoint = request.query.get("endpoint", "/v1/chat/completions")
    dialect = ENDPOINTS.get(endpoint, "openai")
    try:
        principal = await state.auth.authenticate(request.headers)
    except AuthError:
        return web.Response(status=401, body=error_body(dialect, 401, "unauthorized", "missing or invalid credentials"),
                            content_type="application/json")
    if endpoint not in ENDPOINTS:
        return web.Response(status=404, body=error_body(dialect, 404, "not_found", "unknown endpoint"),
                            content_type="application/json")
    try:
        payload = orjson.loads(await request.read())
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        return web.Response(status=400, body=error_body(dialect, 400, "invalid_request", "the body must be a JSON object"),
                            content_type="application/json")
    try:
        result = explain_request(state.config, state.policies, principal, endpoint, payload)
    except Exception as e:
        if e.__class__.__name__ == "DialectError":
            return web.Response(status=400, body=error_body(dialect, 400, "invalid_request", str(e)),
                                content_type="application/json")
        raise
    return web.Response(body=orjson.dumps(result), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/-/healthz", healthz)
    app.router.add_get("/-/readyz", readyz)
    app.router.add_get("/-/metrics", metrics_endpoint)
    app.router.add_post("/-/explain", explain)
