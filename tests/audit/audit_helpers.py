"""Helpers for the audit tests: real Exchanges with real sensitive values, and real audit files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from gateway.audit.record import build_record
from gateway.audit.writer import AuditLog
from gateway.auth.principal import Principal
from gateway.config import Audit, Upstream
from gateway.dialects.segments import Segment
from gateway.exchange import Exchange
from gateway.inspect.findings import Finding

# Real-looking values with valid check digits where they have one. None may reach an audit file.
CPF = "123.456.789-09"
CPF_DIGITS = "12345678909"
EMAIL = "maria.souza@correio.gov.br"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-live-9fQ2xLm7Tq4Zr8Wb1Nc5Vd3Hj6Kp0Ys"
HEALTH = "diabetes tipo 2"
RAW_VALUES = [CPF, CPF_DIGITS, EMAIL, CARD, CARD.replace(" ", ""), API_KEY, HEALTH]


def finding(text: str, value: str, detector: str, category: str, country: str | None) -> Finding:
    start = text.index(value)
    return Finding(detector, category, country, start, start + len(value))


def exchange(i: int = 0, *, outcome: str = "forwarded", sub: str = "analyst-7", agency: str = "receita-federal",
             jurisdiction: str = "BR", route: str = "br-sovereign", residency: str = "BR",
             detectors: tuple[str, ...] = ("br.cpf", "intl.email"), level: str = "internal") -> Exchange:
    """An Exchange as the server leaves it after a request that carried real sensitive values."""
    ex = Exchange(f"req-{i:05d}", "/v1/chat/completions", "openai")
    ex.principal = Principal(sub=sub, agency=agency, jurisdiction=jurisdiction)
    ex.model = "gpt-4o-mini"
    ex.level = level
    t1 = f"Meu CPF é {CPF} e o e-mail {EMAIL}; repito o CPF {CPF_DIGITS}."
    t2 = f"Cartão {CARD}, chave {API_KEY}, diagnóstico: {HEALTH}."
    ex.segments = [Segment(("messages", 0, "content"), t1, "message"), Segment(("messages", 1, "content"), t2, "message")]
    catalog = {
        "br.cpf": [(0, CPF, "national_id", "BR"), (0, CPF_DIGITS, "national_id", "BR")],
        "intl.email": [(0, EMAIL, "contact", None)],
        "intl.card": [(1, CARD, "financial", None)],
        "secret.api_key": [(1, API_KEY, "credentials", None)],
        "health.term": [(1, HEALTH, "health", None)],
    }
    found: list[list[Finding]] = [[], []]
    for d in detectors:
        for seg, value, cat, cc in catalog[d]:
            found[seg].append(finding(ex.segments[seg].text, value, d, cat, cc))
    ex.findings = [sorted(f, key=lambda x: x.start) for f in found]
    ex.decision = SimpleNamespace(
        decision_id=f"dec-{i:05d}", route=SimpleNamespace(upstream=route, residency=residency, model="llama"),
        destination="domestic" if residency == jurisdiction else "foreign",
        by_detector={d: ("allow" if residency == jurisdiction else "pseudonymize") for d in detectors},
        rules=["br.identifiers"], policy_revision="rev-2026-11-26")
    if outcome == "forwarded":
        ex.route = SimpleNamespace(cfg=Upstream(name=route, url="http://127.0.0.1:9/v1", residency=residency))
        ex.upstream_status, ex.upstream_latency_ms = 200, 12.3456
    elif outcome == "upstream_error":
        ex.route = SimpleNamespace(cfg=Upstream(name=route, url="http://127.0.0.1:9/v1", residency=residency))
        ex.upstream_status, ex.upstream_latency_ms, ex.error = 502, 3.0, "upstream_error"
    elif outcome == "blocked":
        ex.error = "policy_blocked"
    ex.outcome = outcome
    ex.bytes_in, ex.bytes_out = 1000 + i, 500 + i
    return ex


async def write_log(directory: Path, ring, n: int, *, checkpoint_every: int = 5, close: bool = True,
                    worker: int = 0, **cfg) -> Path:
    """Write ``n`` records through a real AuditLog and return the file."""
    log = AuditLog(Audit(checkpoint_every=checkpoint_every, **cfg), ring, directory=directory, worker=worker)
    await log.start()
    for i in range(n):
        log.append(build_record(exchange(i, outcome=("forwarded", "blocked", "upstream_error")[i % 3]), ring))
    if close:
        await log.close()
    else:
        while log.lag:
            import asyncio
            await asyncio.sleep(0.005)
    return log.path
