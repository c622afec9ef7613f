"""The audit record of one request, built from its Exchange (SPEC section 9).

The record names who asked, what was found (as detector counts and keyed fingerprints), what was
decided and where the request went. It never holds a value: a finding is reduced to an HMAC of its
normalized form (``fingerprint``), which joins the same value across records
and reveals nothing without the key. The writer adds ``seq``, ``ts``, ``prev`` and ``hash``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from gateway.auth.principal import Principal
from gateway.keys import KeyRing
from gateway.transform.pseudonymize import _SPACES, _TEXTUAL, normalize_value

log = logging.getLogger("soberana.audit")

OUTCOMES = ("forwarded", "blocked", "upstream_error", "client_abort", "rejected")

# Strings copied into the record come partly from the client (X-Request-Id, the model name, the JWT
# subject). One that is not a plain identifier, or that looks like personal data or a credential (an
# e-mail, a long number such as a CPF or a card, a key-like run of mixed-case letters and digits,
# anything the detectors flag), is replaced by its fingerprint: the record still joins on it, and the
# value never reaches the log.
_CODE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}\Z")
_OUR_ID = re.compile(r"[0-9a-f]{32}\Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_LONG_NUMBER = re.compile(r"[0-9](?:[ .\-/]?[0-9]){8,}")  # 9+ digits: CPF, SSN, SIN, cards, phones
# A run of 24+ letters and digits in both cases: the body of an API key or token (sk-proj-…, ghp_…,
# AIza…), which the detectors may miss once it is glued to other text ("gpt-sk-proj-…"). Model names,
# our hex ids, UUIDs and ULIDs have no such run.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9]{24,}")
# Strings already judged safe (model names, subjects, agencies repeat on every request). Only safe
# strings are remembered: a sensitive one never outlives its request.
_SAFE: dict[str, None] = {}
_SAFE_MAX = 4096


try:  # CPython's own small SHA-256: for one-block HMACs its short code path beats OpenSSL's EVP layer
    from _sha256 import sha256 as _hmac_sha256  # type: ignore[import-not-found]  # 3.11
except ImportError:  # pragma: no cover
    try:
        from _sha2 import sha256 as _hmac_sha256  # type: ignore[import-not-found,no-redef]  # 3.12+
    except ImportError:
        _hmac_sha256 = hashlib.sha256


def _pads(key: bytes) -> tuple:
    """SHA-256 states after HMAC's inner and outer key blocks (RFC 2104), kept per key: copying them
    is half the cost of a fresh HMAC, and the audit record computes one per finding."""
    pads = _PADS.get(key)
    if pads is None:
        block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
        pads = _PADS[key] = (_hmac_sha256(bytes(b ^ 0x36 for b in block)),
                             _hmac_sha256(bytes(b ^ 0x5C for b in block)))
    return pads


_PADS: dict[bytes, tuple] = {}
_RING_PADS: tuple = (None, None, None)  # (the last ring, its fingerprint pads): one identity check per call


def fingerprint(ring: KeyRing, value: str, detector: str | None = None) -> str:
    """32 hex of HMAC-SHA256 under ``ring.hmac_key("fingerprint")`` of the value's normalized form;
    the same as ``gateway.transform.tokens.fingerprint``, computed faster."""
    if detector is not None:
        value = normalize_value(detector, value)
    return _fingerprint(ring, value.encode())


_ONE_OF_EACH_KIND = ("br.cpf", "secret.api_key", "intl.email", "health.term")
"""A detector of each way values are normalized before they are fingerprinted (see normalize_value)."""


def value_fingerprints(ring: KeyRing, value: str, detector: str | None = None) -> frozenset[str]:
    """The fingerprints under which an audit record holds ``value``: found by ``detector`` (an exact
    id), or by any detector when None (or a prefix): one per way of normalizing it, since a CPF is
    kept as its digits and an e-mail case-folded, so that any spelling of it finds it."""
    kinds = (detector,) if detector and not detector.endswith((".", "*")) else _ONE_OF_EACH_KIND
    return frozenset(fingerprint(ring, value, d) for d in kinds)


def client_forms(ring: KeyRing, value: str) -> frozenset[str]:
    """The forms in which a client-chosen string (a subject, an agency, a request id) can be in a
    record: as written, or as ``fp:<fingerprint>`` when it looked personal (see ``_clean``)."""
    return frozenset({value, "fp:" + fingerprint(ring, value)})


def _fingerprint(ring: KeyRing, data: bytes) -> str:
    global _RING_PADS
    r, inner, outer = _RING_PADS
    if r is not ring:
        inner, outer = _pads(ring.hmac_key("fingerprint"))
        _RING_PADS = (ring, inner, outer)
    i = inner.copy()
    i.update(data)
    o = outer.copy()
    o.update(i.digest())
    return o.hexdigest()[:32]


_ID, _EXACT, _FOLDED, _TEXT = range(4)
_KINDS: dict[str, int] = {}  # detector id -> how its values are normalized (detector ids are few)
_NOT_ALNUM_BYTES = bytes(c for c in range(256) if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122))


def _kind(detector: str) -> int:
    if detector.startswith("secret."):
        return _EXACT
    if detector in ("intl.email", "intl.ip"):
        return _FOLDED
    if detector in _TEXTUAL or detector.startswith("health."):
        return _TEXT
    return _ID


def _normalized(detector: str, value: str) -> bytes:
    """``normalize_value(detector, value)`` as UTF-8, without its NFKC pass for ASCII text (which NFKC
    never changes): most values are ASCII, and NFKC and a regex are most of the cost."""
    if not value.isascii():
        return normalize_value(detector, value).encode()
    kind = _KINDS.get(detector)
    if kind is None:
        kind = _kind(detector)
        if len(_KINDS) < 1024:
            _KINDS[detector] = kind
    if kind == _ID:
        return value.encode().translate(None, _NOT_ALNUM_BYTES).upper()
    if kind == _FOLDED:
        return value.strip().lower().encode()
    if kind == _TEXT:
        return _SPACES.sub(" ", value).strip().lower().encode()
    return value.encode()


def _clean(value: Any, ring: KeyRing) -> str | None:
    """A client-influenced string as it may appear in the record."""
    if value is None:
        return None
    s = value if type(value) is str else str(value)
    if s in _SAFE:
        return s
    if _CODE.match(s):
        if _OUR_ID.match(s) or _judged_safe(s):
            # remembered by _judged_safe, so that the compiled encoder finds it in _SAFE next time (a
            # model name: on every record). A string without digit or @ is judged too: a health term
            # ("portador-de-hiv") or a key of letters only is personal data or a credential all the same
            return s
    return "fp:" + fingerprint(ring, s)


def judged_safe(value: str) -> bool:
    """Whether a client-chosen string may be repeated as it is: an id-like shape, no e-mail, no long
    number, nothing the detectors find (judgements are cached)."""
    return value in _SAFE or (bool(_CODE.match(value)) and _judged_safe(value))


def client_string(value: Any, ring: KeyRing) -> str | None:
    """A string the client chose (an ``X-Request-Id``, a JWT subject) as the gateway may repeat it in
    logs, records, traces and headers: itself when it is judged safe, else ``fp:<fingerprint>``."""
    return _clean(value, ring)


def _code(value: Any) -> str | None:
    """A string the gateway itself produced (endpoint, level, decision id): checked for shape only."""
    if value is None:
        return None
    if type(value) is str and value in _CODES:  # endpoints, levels, jurisdictions: a handful, on every request
        return value
    s = str(value)
    if not _CODE.match(s):
        return "invalid"
    if len(_CODES) < 256 and type(value) is str and len(s) < 32:  # not the per-request ids
        _CODES[s] = None
    return s


_CODES: dict[str, None] = {}


def _request_id(value: Any, ring: KeyRing) -> str | None:
    """``_clean`` of a request id, with the gateway's own ids (32 hex, new on every request) first."""
    if type(value) is str and len(value) == 32 and _OUR_ID.match(value):
        return value
    return _clean(value, ring)


def _mixed_case_run(s: str) -> bool:
    """Whether ``s`` holds a token-like run (``_TOKEN_RUN``) with both upper- and lowercase letters."""
    for m in _TOKEN_RUN.finditer(s):
        run = m.group()
        if not run.isupper() and not run.islower() and not run.isdigit():
            return True
    return False


def _judged_safe(s: str) -> bool:
    if "@" in s or _LONG_NUMBER.search(s) or _mixed_case_run(s):
        return False
    try:
        from gateway.inspect import scan

        if scan(s):
            return False
    except Exception:  # an inspector failure must not let a value through
        return False
    if len(_SAFE) >= _SAFE_MAX:
        _SAFE.clear()
    _SAFE[s] = None
    return True


def _findings(ex: Any, ring: KeyRing) -> list[dict]:
    """One entry per detector, in order of first appearance, with the distinct fingerprints (each
    distinct normalized value is fingerprinted once)."""
    counts: dict[str, int] = {}
    values: dict[str, dict[bytes, None]] = {}  # detector -> its normalized values, in order
    segments = ex.segments or ()
    n = len(segments)
    for i, found in enumerate(ex.findings or ()):
        if not found:
            continue
        text = getattr(segments[i], "text", None) if i < n else None
        if type(text) is not str:
            text = None
        for det, _category, _country, start, end in found:
            if det in counts:
                counts[det] += 1
            else:
                counts[det] = 1
                values[det] = {}
            if text is not None and 0 <= start < end <= len(text):
                values[det][_normalized(det, text[start:end])] = None
    out = []
    for det, count in counts.items():
        fps = []
        for v in values[det]:
            fps.append(_fingerprint(ring, v))
        out.append({"detector": det, "count": count, "fingerprints": fps})
    return out


def _principal(p: Any, ring: KeyRing) -> dict | None:
    if p is None:
        return None
    try:
        cached = _PRINCIPALS.get(p)
    except TypeError:  # not hashable: not a Principal
        cached = None
    if cached is not None:
        return dict(cached)
    out = {"sub": _clean(getattr(p, "sub", None), ring), "agency": _clean(getattr(p, "agency", None), ring),
           "jurisdiction": _code(getattr(p, "jurisdiction", None))}
    # Remember callers whose strings were all judged safe (never one with a fingerprinted string: its
    # value would outlive the request); they repeat on every request.
    if type(p) is Principal and out["sub"] == p.sub and out["agency"] == p.agency \
            and out["jurisdiction"] == p.jurisdiction:
        if len(_PRINCIPALS) >= _SAFE_MAX:
            _PRINCIPALS.clear()
        _PRINCIPALS[p] = out
        return dict(out)
    return out


_PRINCIPALS: dict[Principal, dict] = {}


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
    except ``seq``, ``ts``, ``prev`` and ``hash``, which the writer adds. Never holds a raw value.

    Never raises: should a stage have left something unexpected in the Exchange, the record still
    says that the request happened, with ``error: audit_record_incomplete`` (and nothing copied
    from the exception, which could quote a value)."""
    try:
        return _build(ex, ring)
    except Exception as e:  # noqa: BLE001
        log.error("audit record of request %s incomplete (%s)", _safe_id(ex), type(e).__name__)
        return {"request_id": _safe_id(ex), "outcome": _safe_outcome(ex), "error": "audit_record_incomplete",
                "findings": [], "principal": None, "decision": None, "upstream": None}


def _safe_id(ex: Any) -> str | None:
    rid = getattr(ex, "request_id", None)
    return rid if isinstance(rid, str) and _OUR_ID.match(rid) else None


def _safe_outcome(ex: Any) -> str:
    o = getattr(ex, "outcome", None)
    return o if o in OUTCOMES else "rejected"


def _build(ex: Any, ring: KeyRing) -> dict:
    outcome = ex.outcome if ex.outcome in OUTCOMES else "rejected"
    rec = {
        "request_id": _request_id(ex.request_id, ring),
        "decision_id": _code(getattr(ex.decision, "decision_id", None)),
        "principal": _principal(ex.principal, ring),
        "endpoint": _code(ex.endpoint),
        "model": _clean(ex.model, ring),
        "level": _code(ex.level),
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
