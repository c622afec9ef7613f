"""Explain a request's decision without forwarding it (``soberana policy explain``, ``POST /-/explain``).

``explain_request`` runs the data path's pure stages (dialect -> inspect -> decide) on one request body
and returns a JSON-able dict: who is asking, which policies applied and why, every finding (where it
is, a masked form — never the raw value), its action and the rules that decided it, every candidate
upstream, whether its dialect can carry the endpoint and whether policy allows it, and the route.
``render_text`` prints that dict for people. Health is not probed: an explain assumes every upstream
is up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.dialects import ENDPOINTS, extract_segments
from gateway.dialects.translate import carries
from gateway.inspect.findings import Finding
from gateway.inspect.texts import scan_texts
from gateway.policy.engine import Candidate, decide, destination_class
from gateway.policy.load import PolicySet

_NO_MASK = frozenset({"credentials", "health", "gov_classified", "uninspectable"})
"""Categories whose matched text is not shown even masked: the shape itself says too much."""


def mask(value: str, category: str) -> str | None:
    """A form that shows the shape but not the value: letters and digits become ``*`` except the last
    two (``***.***.***-25``); None for short values and for categories where even that says too much."""
    if category in _NO_MASK:
        return None
    alnum = sum(c.isalnum() for c in value)
    if alnum < 6:
        return None
    keep, out = 2, []
    for c in reversed(value):
        if c.isalnum():
            out.append(c if keep > 0 else "*")
            keep -= 1
        else:
            out.append(c)
    return "".join(reversed(out))


def _where(path: tuple, key: bool = False) -> str:
    """``Segment.where`` with every key a client chose that looks personal (``metadata`` keys, schema
    property names: ``metadata.ana@gov.br``) shown as ``<key>``: a finding's location is printed
    whole, so a key that holds a value (its own finding, or one in a value beside it) must not be.
    ``key``: the path ends with the key a finding is in (a segment of kind ``key``), always ``<key>``."""
    from gateway.audit.record import judged_safe

    out = ""
    last = len(path) - 1
    for i, p in enumerate(path):
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            p = p if isinstance(p, str) and not (key and i == last) and judged_safe(p) else "<key>"
            out += f".{p}" if out else p
    return out


def _candidates(config, model: str, endpoint: str) -> list[tuple[Candidate, str | None, bool]]:
    """The model's candidates as the registry builds them, each with its upstream's dialect and whether
    that dialect can carry ``endpoint`` (``carries``: the proxy decides among those only, see
    ``Registry.by_endpoint``)."""
    src = ENDPOINTS.get(endpoint, "openai")
    out = []
    for r in config.models.get(model, []):
        try:
            u = config.upstream(r.upstream)
            residency, dialect, ok = u.residency or None, u.dialect, carries(src, u.dialect, endpoint)
        except KeyError:  # (never routed: an unknown residency blocks it)
            residency, dialect, ok = None, None, True
        out.append((Candidate(r.upstream, residency, r.model), dialect, ok))
    return out


def explain_request(config, policies: PolicySet, principal, endpoint: str, payload: dict,
                    level: str = "internal", scan: Callable[[str], list[Finding]] | None = None) -> dict:
    """The decision for ``payload`` sent by ``principal`` to ``endpoint``, explained. JSON-able; no raw values.

    ``scan`` defaults to ``gateway.inspect.scan``. Raises what ``extract_segments`` raises for a body
    the dialect cannot read.
    """
    if scan is None:
        from gateway.inspect import scan
    model = payload.get("model") if isinstance(payload.get("model"), str) else None
    found: list[tuple[Any, Finding]] = []
    segments = extract_segments(endpoint, payload)
    per, _ = scan_texts([s.text if s.kind != "uninspectable" else "" for s in segments], scan)  # as the proxy does
    for seg, fs in zip(segments, per):
        if seg.kind == "uninspectable":
            found.append((seg, Finding("intl.uninspectable", "uninspectable", None, 0, 0)))
            continue
        found.extend((seg, f) for f in fs)
    flat = [f for _, f in found]
    listed = _candidates(config, model, endpoint) if model else []
    candidates = [c for c, _, ok in listed if ok]
    d = decide(policies, principal, flat, candidates, level)

    caller = principal.jurisdiction
    why: dict[str, list[str]] = {caller: ["caller's jurisdiction"]}
    for f in flat:
        if f.country and f.country != caller:
            reason = f"subject country of {f.detector}"
            why.setdefault(f.country, [])
            if reason not in why[f.country]:
                why[f.country].append(reason)
    applied = []
    for j in d.applied:
        p = policies.policy(j)
        applied.append({"jurisdiction": j, "name": p.name, "version": p.version,
                        "builtin": j not in policies.jurisdictions, "why": why.get(j, [])})

    findings = []
    for i, (seg, f) in enumerate(found):
        findings.append({
            "detector": f.detector, "category": f.category, "country": f.country,
            "where": _where(seg.path, seg.kind == "key"), "in_key": seg.kind == "key",
            "start": f.start, "end": f.end,
            "masked": mask(seg.text[f.start:f.end], f.category),
            "action": d.actions[i] if i < len(d.actions) else None,
            "rules": d.finding_rules[i] if i < len(d.finding_rules) else [],
        })

    cands = []
    for c, dialect, ok in listed:
        one = decide(policies, principal, flat, [c], level, decision_id="-")
        entry = {"upstream": c.upstream, "residency": c.residency, "model": c.model,
                 "dialect": dialect, "carries_endpoint": ok,
                 "destination": destination_class(policies, policies.policy(caller), c.residency) if c.residency else None,
                 "allowed": one.outcome == "route", "blocked_by": one.blocked_by,
                 "chosen": d.route is not None and d.route.upstream == c.upstream}
        cands.append(entry)

    out = {
        "principal": {"sub": principal.sub, "agency": principal.agency, "jurisdiction": caller},
        "endpoint": endpoint, "model": model, "level": level,
        "policy_revision": policies.revision,
        "policies": applied,
        "findings": findings,
        "candidates": cands,
        "decision": {
            "decision_id": d.decision_id, "outcome": d.outcome,
            "route": d.route.upstream if d.route else None,
            "upstream_model": d.route.model if d.route else None,
            "residency": d.route.residency if d.route else None,
            "destination": d.destination,
            "actions": d.by_detector, "rules": d.rules, "blocked_by": d.blocked_by,
        },
    }
    if model is None:
        out["error"] = "the request names no model"
    elif model not in config.models:
        # (not quoted: error messages never repeat a request value; the "model" field above shows it
        # to the caller who sent it)
        out["error"] = "unknown model: no upstream is configured for it"
    elif listed and not candidates:
        out["error"] = f"the model is not available for {endpoint}: no upstream of it can carry that endpoint"
    return out


def render_text(x: dict) -> str:
    """``explain_request``'s dict as text for a terminal."""
    p, d = x["principal"], x["decision"]
    lines = [f"principal   {p['sub']} (agency {p['agency']}, jurisdiction {p['jurisdiction']})",
             f"request     {x['endpoint']} model {x['model']} level {x['level']}"]
    if x.get("error"):
        lines.append(f"error       {x['error']}")
    lines.append(f"policies    revision {x['policy_revision']}")
    for a in x["policies"]:
        note = " [built-in protective default: no policy file]" if a["builtin"] else ""
        lines.append(f"  {a['jurisdiction']}  {a['name']}{note} — applies as {'; '.join(a['why']) or '-'}")
    if x["findings"]:
        lines.append("findings")
        for f in x["findings"]:
            country = f", {f['country']}" if f["country"] else ""
            shown = f" {f['masked']}" if f["masked"] else ""
            at = "the key " if f.get("in_key") else ""  # (the key's name, not its value)
            lines.append(f"  {f['detector']} ({f['category']}{country}) at {at}{f['where']}[{f['start']}:{f['end']}]{shown}"
                         f" → {f['action']} by {', '.join(f['rules']) or '-'}")
    else:
        lines.append("findings    none")
    if x["candidates"]:
        lines.append("candidates")
        for i, c in enumerate(x["candidates"], 1):
            if not c.get("carries_endpoint", True):
                state = f"skipped: its {c['dialect']} dialect cannot carry {x['endpoint']}"
            elif c["allowed"]:
                state = "allowed" + (" → chosen" if c["chosen"] else "")
            else:
                state = f"blocked by {', '.join(c['blocked_by']) or 'policy'}"
            lines.append(f"  {i}. {c['upstream']} ({c['residency'] or 'unknown residency'}"
                         f"{', ' + c['destination'] if c['destination'] else ''}) model {c['model']}: {state}")
    if x.get("error"):
        lines.append("decision    none (404 not_found): the proxy routes no such request")
    elif d["outcome"] == "route":
        lines.append(f"decision    route to {d['route']} (residency {d['residency']}, {d['destination']} for the caller), "
                     f"model {d['upstream_model']}")
    elif d["outcome"] == "blocked":
        lines.append(f"decision    blocked (403 policy_blocked) by {', '.join(d['blocked_by']) or 'policy'}")
    else:
        lines.append("decision    unavailable (503 no_compliant_upstream): the compliant upstreams are down")
    lines.append(f"rules       {', '.join(d['rules']) or '-'}")
    lines.append(f"blocked by  {', '.join(d['blocked_by']) or '-'}")
    lines.append(f"decision id {d['decision_id']}")
    return "\n".join(lines) + "\n"
