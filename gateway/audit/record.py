"""The audit record of one request, built from its Exchange (SPEC section 9).

The record names who asked, what was found (as detector counts and keyed fingerprints), what was
decided and where the request went. It never holds a value: a finding is reduced to an HMAC of its
normalized form (``gateway.transform.tokens.fingerprint``), which joins the same value across records
and reveals nothing without the key. The writer adds ``seq``, ``ts``, ``prev`` and ``hash``.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.keys import KeyRing
from gateway.transform.tokens import fingerprint

OUTCOMES = ("forwarded", "blocked", "upstream_error", "client_abort", "rejected")

# Strings copied into the record come partly from the client (X-Request-Id, the model name, the JWT
# subject). One that is not a plain identifier, or that looks like personal data (an e-mail, a long
# number such as a CPF or a card, anything the detectors flag), is replaced by its fingerprint: the
# record still joins on it, and the value never reaches the log.
_CODE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}\Z")
_NEEDS_A_LOOK = re.compile(r"[0-9@]")
_OUR_ID = re.compile(r"[0-9a-f]{32}\Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_LONG_NUMBER = re.compile(r"[0-9](?:[ .\-/]?[0-9]){8,}")  # 9+ digits: CPF, SSN, SIN, cards, phones


def _clean(value: Any, ring: KeyRing) -> str | None:
    if value is None:
        return None
    s = str(value)
    if _CODE.match(s) and (not _NEEDS_A_LOOK.search(s) or _OUR_ID.match(s) or not _looks_sensitive(s)):
        return s
    return "fp:" + fingerprint(ring, s)


def _looks_sensitive(s: str) -> bool:
    if "@" in s or _LONG_NUMBER.search(s):
        return True
    try:
        from gateway.inspect import scan

        return bool(scan(s))
    except Exception:  # an inspector failure must not let a value through
        return True


def _findings(ex: Any, ring: KeyRing) -> list[dict]:
    """One entry per detector, in order of first appearance, with the distinct fingerprints."""
    out: dict[str, dict] = {}
    segments = ex.segments or []
    for i, found in enumerate(ex.findings or []):
        text = getattr(segments[i], "text", None) if i < len(segments) else None
        for f in found:
            entry = out.get(f.detector)
            if entry is None:
                entry = out[f.detector] = {"detector": f.detector, "count": 0, "fingerprints": []}
            entry["count"] += 1
            if isinstance(text, str) and 0 <= f.start < f.end <= len(text):
                fp = fingerprint(ring, text[f.start:f.end], f.detector)
                if fp not in entry["fingerprints"]:
                    entry["fingerprints"].append(fp)
    return list(out.values())


def _principal(p: Any, ring: KeyRing) -> dict | None:
    if p is None:
        return None
    return {"sub": _clean(getattr(p, "sub", None), ring), "agency": _clean(getattr(p, "agency", None), ring),
            "jurisdiction": _clean(getattr(p, "jurisdiction", None), ring)}


def _decision(ex: Any) -> dict | None:
    d = ex.decision
    if d is None:
        return None
    route = getattr(d, "route", None)
    return {
        "route": getattr(route, "upstream", None),
        "residency": getattr(route, "residency", None),
        "destination": getattr(d, "destination", None),
        "actions": dict(getattr(d, "by_detector", None) or {}),
        "rules": list(getattr(d, "rules", None) or []),
        "policy_revision": getattr(d, "policy_revision", None),
    }


def _upstream(ex: Any) -> dict | None:
    r = ex.route
    if r is None and ex.upstream_status is None:
        return None
    cfg = getattr(r, "cfg", r)
    latency = ex.upstream_latency_ms
    return {
        "name": getattr(cfg, "name", None),
        "residency": getattr(cfg, "residency", None),
        "status": ex.upstream_status,
        "latency_ms": round(float(latency), 3) if latency is not None else None,
    }


def build_record(ex: Any, ring: KeyRing) -> dict:
    """The audit record of ``ex`` (an ``gateway.exchange.Exchange``): every field of SPEC section 9
    except ``seq``, ``ts``, ``prev`` and ``hash``, which the writer adds. Never holds a raw value."""
    outcome = ex.outcome if ex.outcome in OUTCOMES else "rejected"
    rec = {
        "request_id": _clean(ex.request_id, ring),
        "decision_id": _clean(getattr(ex.decision, "decision_id", None), ring),
        "principal": _principal(ex.principal, ring),
        "endpoint": _clean(ex.endpoint, ring),
        "model": _clean(ex.model, ring),
        "level": _clean(ex.level, ring),
        "findings": _findings(ex, ring),
        "decision": _decision(ex),
        "upstream": _upstream(ex),
        "outcome": outcome,
        "bytes_in": int(ex.bytes_in or 0),
        "bytes_out": int(ex.bytes_out or 0),
    }
    if ex.error is not None:
        rec["error"] = _clean(ex.error, ring)
    leaks = getattr(ex, "leaks", 0)
    if leaks:
        rec["leaks"] = int(leaks)
    return rec
