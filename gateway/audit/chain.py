"""The hash chain of an audit file: line kinds, hashing and checkpoint signatures.

An audit file is JSON lines, each a link of one chain. Every line carries ``seq`` (1, 2, 3, … over
the whole file, so a removed line of any kind leaves a hole), ``ts``, ``prev`` (the ``hash`` of the
line before; 64 zeros for the first) and ``hash`` = SHA-256 of the canonical JSON (orjson,
``OPT_SORT_KEYS``) of the line without ``hash``. A line is stored as exactly those canonical bytes with
``"hash"`` appended as the last member (one serialization per line), so a changed byte either breaks
the JSON, the stored form, or the hash. There are three kinds:

- a *record* (SPEC section 9): one request;
- an *epoch* ``{"epoch": {"id", "n", "worker", "reason", ...}}``: opens the file or re-opens it after a
  restart. ``reason`` is ``new``, ``reopened`` (the previous epoch ended with its closing checkpoint)
  or ``recovered`` (it did not: the process died, records in flight were lost — a *gap*);
- a *checkpoint* ``{"checkpoint": {"head", "kid", "closed", "epoch", "sig"}}``: an Ed25519 signature
  over its own ``seq`` and ``prev`` (the chain head it vouches for) and the rest of the line. Written
  every ``checkpoint_every`` records or ``checkpoint_seconds``, and at close with ``closed: true``.

A forger who rewrites a line and recomputes its hash breaks the next line's ``prev``; one who
recomputes the rest of the chain cannot re-sign the checkpoints.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime, timezone
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
"""``prev`` of a file's first line."""
_SIGN_DOMAIN = b"soberana/audit/checkpoint/v1\n"
_OPTS = orjson.OPT_SORT_KEYS
_sha256 = hashlib.sha256


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes of ``obj`` (sorted keys, no spaces, UTF-8)."""
    return orjson.dumps(obj, option=_OPTS)


def digest(line_without_hash: dict) -> str:
    """The ``hash`` of a line: hex SHA-256 of its canonical JSON without ``hash``."""
    return hashlib.sha256(canonical(line_without_hash)).hexdigest()


def seal(line: dict) -> bytes:
    """Set ``line["hash"]`` and return the stored form: the canonical JSON of the line without its
    hash, then ``"hash"`` as the last member, then a newline."""
    line.pop("hash", None)
    body = orjson.dumps(line, option=_OPTS)
    h = _sha256(body).hexdigest()
    line["hash"] = h
    if len(body) > 2:
        return body[:-1] + b',"hash":"' + h.encode() + b'"}\n'
    return _stored(body, h)


def _stored(body: bytes, h: str) -> bytes:
    return (body[:-1] + b',"hash":"' if len(body) > 2 else b'{"hash":"') + h.encode() + b'"}\n'


def check_line(raw: bytes, obj: dict) -> str | None:
    """None when ``raw`` (one stored line, newline included) is exactly the stored form of ``obj``
    (its parse) and its hash matches its content; otherwise what is wrong."""
    body = dict(obj)
    h = body.pop("hash")
    b = canonical(body)
    if _stored(b, h) != raw:
        return "is not in its stored form (it was edited)"
    if hashlib.sha256(b).hexdigest() != h:
        return "its hash does not match its content"
    return None


_second: tuple[int, str] = (-1, "")  # (a whole second, its text): records of one second share it
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso_ts(t: float) -> str:
    """UTC ISO-8601 with milliseconds, e.g. ``2026-11-26T23:50:01.123Z``."""
    global _second
    sec = int(t)
    us = round((t - sec) * 1e6)  # as datetime rounds, so the text is what datetime would print
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    cached = _second  # one read of one tuple: safe across writer threads
    if cached[0] != sec:
        cached = _second = (sec, datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    return cached[1] + _MILLIS[us // 1000]


def kind(line: dict) -> str:
    """``checkpoint``, ``epoch`` or ``record``."""
    if "checkpoint" in line:
        return "checkpoint"
    if "epoch" in line:
        return "epoch"
    return "record"


def _signed_bytes(line: dict) -> bytes:
    body = dict(line)
    body.pop("hash", None)
    cp = dict(body["checkpoint"])
    cp.pop("sig", None)
    body["checkpoint"] = cp
    return _SIGN_DOMAIN + canonical(body)


def checkpoint(seq: int, prev: str, *, kid: str, key: Ed25519PrivateKey, epoch: str, closed: bool,
               records: int, ts: float | None = None) -> bytes:
    """A sealed checkpoint line vouching for the chain up to ``prev`` (the hash of line ``seq - 1``).

    ``records`` counts the records of the epoch so far (informational; the chain is what binds)."""
    line = {"seq": seq, "ts": iso_ts(time.time() if ts is None else ts), "prev": prev,
            "checkpoint": {"head": prev, "kid": kid, "closed": closed, "epoch": epoch, "records": records}}
    sig = key.sign(_signed_bytes(line))
    line["checkpoint"]["sig"] = base64.b64encode(sig).decode()
    return seal(line)


def check_signature(line: dict, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """None when the checkpoint's signature verifies under the key its ``kid`` names (a key filed
    under ``*`` stands for any kid); otherwise why not, in a few words."""
    cp = line.get("checkpoint") or {}
    kid = cp.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        key = keys.get("*")
    if key is None:
        return f"signed by key id {kid!r}, which is not among the verification keys"
    try:
        sig = base64.b64decode(cp.get("sig", ""), validate=True)
        key.verify(sig, _signed_bytes(line))
    except (InvalidSignature, ValueError, TypeError):
        return f"signature does not verify under key id {kid!r}"
    return None
