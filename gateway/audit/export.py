"""Convert audit records for a SIEM: OCSF and ECS, one JSON object a line (``soberana audit export``).

OCSF 1.1.0, class *API Activity* (``class_uid`` 6003, category 6 *Application Activity*):

| audit record                 | OCSF                                                      |
|------------------------------|-----------------------------------------------------------|
| ``ts``                       | ``time`` (ms since the epoch), ``metadata.original_time`` |
| ``request_id``               | ``metadata.uid``, ``api.request.uid``                     |
| ``decision_id``              | ``metadata.correlation_uid``                              |
| ``seq``, ``hash``            | ``metadata.sequence``, ``unmapped.soberana.hash``         |
| ``principal.sub``/``agency`` | ``actor.user.uid`` / ``actor.user.org.name``              |
| ``principal.jurisdiction``   | ``actor.user.org.uid``                                    |
| ``endpoint``                 | ``api.operation``, ``http_request.url.path``              |
| ``upstream.name``            | ``dst_endpoint.name``, ``cloud.provider``                 |
| ``decision.residency``       | ``dst_endpoint.location.country``, ``cloud.region``       |
| ``upstream.status``          | ``api.response.code``                                     |
| ``upstream.latency_ms``      | ``duration`` (ms)                                         |
| ``outcome``                  | ``status`` / ``status_id`` (1 Success = forwarded, 2 Failure otherwise), ``status_detail`` |
| —                            | ``activity_id`` 1 *Create* (every proxied call is a POST that creates a completion; ``GET /v1/models`` is 2 *Read*), ``type_uid`` = 600300 + ``activity_id`` |
| —                            | ``severity_id``: 1 Informational; 2 Low when something sensitive was found or the request failed; 3 Medium when policy blocked it |
| findings, decision, model, level, bytes | ``unmapped.soberana`` (as in the record)          |

ECS 8: ``@timestamp``, ``event.{kind, category [web, api], type [access|denied|error], action, outcome,
id, dataset, module, duration (ns), sequence}``, ``user.id``, ``organization.name``,
``url.path``, ``http.response.status_code``, ``destination.{service, geo.country_iso_code}``,
``rule.id`` (rule ids, an array), ``trace.id`` (request id), ``soberana.*`` for the rest.

Fingerprints travel unchanged: they are keyed HMACs, never values.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from gateway.audit.query import member, record_time

OCSF_VERSION = "1.1.0"
_PRODUCT = {"name": "Soberana", "vendor_name": "Soberana", "feature": {"name": "audit"}}


def _drop_none(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


def _soberana(rec: dict) -> dict:
    return {k: rec.get(k) for k in ("seq", "prev", "hash", "model", "level", "findings", "decision", "outcome",
                                    "error", "bytes_in", "bytes_out", "leaks")}


def to_ocsf(rec: dict) -> dict:
    """One audit record as an OCSF API Activity event."""
    p, d, u = member(rec, "principal"), member(rec, "decision"), member(rec, "upstream")
    outcome = rec.get("outcome")
    activity = 2 if rec.get("endpoint") == "/v1/models" else 1
    severity = 3 if outcome == "blocked" else 2 if (rec.get("findings") or outcome != "forwarded") else 1
    t = record_time(rec)
    route = d.get("route") or u.get("name")
    residency = d.get("residency") or u.get("residency")
    return _drop_none({
        "class_uid": 6003, "class_name": "API Activity", "category_uid": 6, "category_name": "Application Activity",
        "activity_id": activity, "activity_name": "Create" if activity == 1 else "Read",
        "type_uid": 600300 + activity, "severity_id": severity,
        "time": int(t * 1000) if t is not None else None,
        "status_id": 1 if outcome == "forwarded" else 2, "status": "Success" if outcome == "forwarded" else "Failure",
        "status_detail": outcome,
        "duration": u.get("latency_ms"),
        "metadata": {"version": OCSF_VERSION, "product": _PRODUCT, "uid": rec.get("request_id"),
                     "correlation_uid": rec.get("decision_id"), "sequence": rec.get("seq"),
                     "original_time": rec.get("ts"), "log_name": "audit"},
        "actor": {"user": {"uid": p.get("sub"), "org": {"name": p.get("agency"), "uid": p.get("jurisdiction")}}},
        "api": {"operation": rec.get("endpoint"), "service": {"name": "soberana"},
                "request": {"uid": rec.get("request_id")}, "response": {"code": u.get("status")}},
        "http_request": {"http_method": "GET" if activity == 2 else "POST", "url": {"path": rec.get("endpoint")}},
        "dst_endpoint": {"name": route, "location": {"country": residency}},
        "cloud": {"provider": route or "none", "region": residency},
        "unmapped": {"soberana": _soberana(rec)},
    })


def to_ecs(rec: dict) -> dict:
    """One audit record as an Elastic Common Schema document."""
    p, d, u = member(rec, "principal"), member(rec, "decision"), member(rec, "upstream")
    outcome = rec.get("outcome")
    latency = u.get("latency_ms")
    # round, not int: latency_ms holds whole microseconds, but as a binary float 1.001 * 1e6 is
    # 1000999.99…, which int() would cut to a nanosecond short
    duration = round(latency * 1_000_000) if isinstance(latency, (int, float)) else None
    etype = "access" if outcome == "forwarded" else "denied" if outcome in ("blocked", "rejected") else "error"
    return _drop_none({
        "@timestamp": rec.get("ts"),
        "ecs": {"version": "8.11.0"},
        "event": {"kind": "event", "category": ["web", "api"], "type": [etype], "action": outcome,
                  "outcome": "success" if outcome == "forwarded" else "failure", "id": rec.get("request_id"),
                  "dataset": "soberana.audit", "module": "soberana", "sequence": rec.get("seq"),
                  "duration": duration},
        "user": {"id": p.get("sub")},
        "organization": {"name": p.get("agency")},
        "url": {"path": rec.get("endpoint")},
        "http": {"response": {"status_code": u.get("status")}},
        "destination": {"service": {"name": d.get("route") or u.get("name")},
                        "geo": {"country_iso_code": d.get("residency") or u.get("residency")}},
        "rule": {"id": d.get("rules") or None, "ruleset": d.get("policy_revision")},
        "trace": {"id": rec.get("request_id")},
        "soberana": dict(_soberana(rec), jurisdiction=p.get("jurisdiction"), decision_id=rec.get("decision_id")),
    })


FORMATS = {"ocsf": to_ocsf, "ecs": to_ecs}


def export(records: Iterable[dict], fmt: str) -> Iterator[dict]:
    """``records`` converted to ``fmt`` (``ocsf`` or ``ecs``)."""
    conv = FORMATS[fmt]
    return (conv(r) for r in records)
