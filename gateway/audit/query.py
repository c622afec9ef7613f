"""Read and filter audit records for security teams (``soberana audit query``).

Records are the request lines of audit files; epoch and checkpoint lines are chain bookkeeping and are
skipped. Filtering does not verify the chain — run ``soberana audit verify`` for that.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Iterator

import orjson

_RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*(?:ago)?\s*\Z", re.I)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: float | None = None) -> float:
    """A point in time as Unix seconds from ISO-8601 (``2026-11-26``, ``2026-11-26T10:00``,
    ``…Z``/``…+02:00``; UTC when no zone is given) or relative to now (``90s``, ``15m``, ``1h``,
    ``2d``, ``1w``, optionally followed by ``ago``). Raises ``ValueError``."""
    m = _RELATIVE.match(text)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNITS[m.group(2).lower()]
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def record_time(rec: dict) -> float | None:
    """The record's ``ts`` as Unix seconds."""
    ts = rec.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        return parse_time(ts)
    except ValueError:
        return None


def iter_records(paths: Iterable[str | os.PathLike[str]], skipped: dict[str, int] | None = None) -> Iterator[dict]:
    """Every request record in ``paths``, in file order (unparsable and bookkeeping lines skipped).

    ``skipped``, when given, counts per path the lines that are no JSON object at all (a compressed
    archive, another file, a damaged line), so a caller can say why a file yielded nothing."""
    for p in paths:
        with open(p, "rb") as f:
            for raw in f:
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    rec = None
                if not isinstance(rec, dict):
                    if skipped is not None and raw.strip():
                        skipped[os.fspath(p)] = skipped.get(os.fspath(p), 0) + 1
                    continue
                if "checkpoint" not in rec and "epoch" not in rec:
                    yield rec


def member(rec: dict, key: str) -> dict:
    """``rec[key]`` when it is an object, else ``{}``. Query and export do not verify: a damaged or
    hand-made line may hold any JSON there, and one such line must not end a query or an export."""
    v = rec.get(key)
    return v if isinstance(v, dict) else {}


def findings_of(rec: dict) -> list[dict]:
    """The record's findings that are objects (see ``member`` for why not trust the shape)."""
    v = rec.get("findings")
    return [f for f in v if isinstance(f, dict)] if isinstance(v, list) else []


Match = str | frozenset[str] | None
"""A value a field must equal, or a set of forms of one (as written, and its ``fp:`` form)."""


def _is(have: object, want: str | frozenset[str]) -> bool:
    return have in want if isinstance(want, frozenset) else have == want


@dataclass(frozen=True)
class Filter:
    """Conditions a record must all meet; ``None`` means any. ``detector`` ending in ``.`` or ``*``
    matches a prefix (``br.`` = every Brazilian detector)."""

    since: float | None = None
    until: float | None = None
    principal: Match = None
    """The subject (``principal.sub``)."""
    agency: Match = None
    detector: str | None = None
    route: str | None = None
    """The upstream name the decision routed to (or the upstream used)."""
    residency: str | None = None
    outcome: str | None = None
    request_id: Match = None
    endpoint: str | None = None
    model: str | None = None
    """The model the caller asked for."""
    fingerprints: frozenset[str] | None = None
    """Records with a finding (of ``detector``, when given) holding one of these fingerprints
    (``gateway.audit.record.value_fingerprints``): where a given value went."""

    def matches(self, rec: dict) -> bool:
        if self.since is not None or self.until is not None:
            t = record_time(rec)
            if t is None or (self.since is not None and t < self.since) or (self.until is not None and t > self.until):
                return False
        principal = member(rec, "principal")
        if self.principal is not None and not _is(principal.get("sub"), self.principal):
            return False
        if self.agency is not None and not _is(principal.get("agency"), self.agency):
            return False
        if self.request_id is not None and not _is(rec.get("request_id"), self.request_id):
            return False
        if self.endpoint is not None and rec.get("endpoint") != self.endpoint:
            return False
        if self.model is not None and rec.get("model") != self.model:
            return False
        if self.outcome is not None and rec.get("outcome") != self.outcome:
            return False
        decision = member(rec, "decision")
        upstream = member(rec, "upstream")
        if self.route is not None and self.route not in (decision.get("route"), upstream.get("name")):
            return False
        if self.residency is not None and self.residency.upper() not in (decision.get("residency"), upstream.get("residency")):
            return False
        if self.detector is not None or self.fingerprints is not None:
            found = findings_of(rec)
            if self.detector is not None:
                want = self.detector.rstrip("*")
                prefix = want != self.detector or want.endswith(".")
                found = [f for f in found if isinstance(n := f.get("detector"), str)
                         and (n.startswith(want) if prefix else n == want)]
            if self.fingerprints is not None:
                fps = self.fingerprints
                found = [f for f in found if isinstance(v := f.get("fingerprints"), list)
                         and any(isinstance(x, str) and x in fps for x in v)]
            if not found:
                return False
        return True


def query(paths: Iterable[str | os.PathLike[str]], flt: Filter, skipped: dict[str, int] | None = None) -> Iterator[dict]:
    """The records of ``paths`` that ``flt`` matches (``skipped`` as for ``iter_records``)."""
    return (r for r in iter_records(paths, skipped) if flt.matches(r))


_COLUMNS = ("ts", "seq", "principal", "agency", "endpoint", "model", "findings", "route", "residency",
            "outcome", "status")


def _row(rec: dict) -> list[str]:
    p, d, u = member(rec, "principal"), member(rec, "decision"), member(rec, "upstream")
    findings = ",".join(f"{f.get('detector')}:{f.get('count')}" for f in findings_of(rec)) or "-"
    vals = [rec.get("ts"), rec.get("seq"), p.get("sub"), p.get("agency"), rec.get("endpoint"), rec.get("model"),
            findings, d.get("route") or u.get("name"), d.get("residency") or u.get("residency"), rec.get("outcome"),
            u.get("status")]
    return ["-" if v is None else str(v) for v in vals]


def format_table(records: Iterable[dict]) -> str:
    """A plain-text table, one row per record, columns sized to their content."""
    rows = [list(_COLUMNS)] + [_row(r) for r in records]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
