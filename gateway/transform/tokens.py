"""The tokens that replace sensitive values on their way out (SPEC section 8).

- ``[ENC:<key id>:<base64url>]`` — deterministic AES-SIV under the caller's jurisdiction key. The key
  id is ``<jurisdiction>.<keyring kid>`` (``BR.k2``), so a token names the key that opens it and old
  tokens keep opening after ``soberana keys rotate``. The plaintext is ``<label>:<value>`` so a keys
  holder also learns what kind of value it was; the key id is authenticated as associated data.
- ``[HASH:<label>:<12 hex>]`` — HMAC-SHA256 under the ring's ``hash`` key (stable across rotations).
- ``[REDACTED:<label>]``.
- ``fingerprint`` — a keyed HMAC for audit records: joins the same value across records, reveals nothing.

Errors never carry the value or the token's ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from gateway.keys import KeyError_, KeyRing

ENC_PREFIX = "[ENC:"
_AD = b"soberana/enc/v1|"
_KEY_ID = re.compile(r"([A-Za-z0-9-]{1,16})\.([A-Za-z0-9_-]{1,32})\Z")
_TOKEN = re.compile(r"\[ENC:([^:\]]{1,64}):([A-Za-z0-9_-]{16,})\]\Z")

# Detector ids whose label is not simply their name part upper-cased.
_LABELS = {"health.term": "HEALTH", "gov.marking": "CLASSIFIED", "intl.uninspectable": "CONTENT"}


class TokenError(ValueError):
    """A token that is malformed, names an unknown key, or does not authenticate (tampered)."""


def label_for(detector_id: str) -> str:
    """The label a detector's values carry in tokens: ``br.cpf`` → ``CPF``, ``secret.api_key`` → ``API_KEY``.

    Labels are upper-case letters and single underscores only (no digits), so ``CPF_12`` always splits
    unambiguously into label and index.
    """
    label = _LABELS.get(detector_id)
    if label is None:
        name = detector_id.rpartition(".")[2]
        label = re.sub(r"[^A-Z]+", "_", name.upper()).strip("_") or "VALUE"
    return label


@lru_cache(maxsize=256)
def _siv(ring: KeyRing, jurisdiction: str, kid: str | None) -> tuple[str, AESSIV]:
    kid, key = ring.siv_key(jurisdiction, kid)
    return f"{jurisdiction}.{kid}", AESSIV(key)


def encrypt_token(ring: KeyRing, jurisdiction: str, label: str, value: str) -> str:
    """``[ENC:<jurisdiction>.<kid>:<base64url>]`` of ``value``: deterministic (same key, label and value →
    same token, across requests and processes), decryptable by ``decrypt_token`` with the keyring."""
    if not _KEY_ID.match(f"{jurisdiction}.x") or ":" in label:
        raise TokenError("invalid jurisdiction or label for an encryption token")
    key_id, siv = _siv(ring, jurisdiction, None)
    ct = siv.encrypt(f"{label}:{value}".encode(), [_AD + key_id.encode()])
    return f"{ENC_PREFIX}{key_id}:{base64.urlsafe_b64encode(ct).rstrip(b'=').decode()}]"


def open_token(ring: KeyRing, token: str) -> tuple[str, str]:
    """(label, value) inside an ENC token; raises ``TokenError`` on a malformed, unknown-key or tampered token."""
    m = _TOKEN.match(token.strip())
    if m is None:
        raise TokenError("not an ENC token")
    key_id, b64 = m.groups()
    k = _KEY_ID.match(key_id)
    if k is None:
        raise TokenError("malformed key id in ENC token")
    try:
        _, siv = _siv(ring, k.group(1), k.group(2))
    except KeyError_:
        raise TokenError(f"unknown key id {key_id!r}") from None
    try:
        ct = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        plain = siv.decrypt(ct, [_AD + key_id.encode()]).decode()
    except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError(f"ENC token under key {key_id!r} does not authenticate") from None
    label, sep, value = plain.partition(":")
    if not sep:
        raise TokenError("ENC token payload is malformed")
    return label, value


def decrypt_token(ring: KeyRing, token: str) -> str:
    """The value inside an ENC token; raises ``TokenError`` on a malformed, unknown-key or tampered token."""
    return open_token(ring, token)[1]


def _mac(ring: KeyRing, purpose: str, data: str) -> str:
    return hmac.new(ring.hmac_key(purpose), data.encode(), hashlib.sha256).hexdigest()


def hash_token(ring: KeyRing, label: str, value: str) -> str:
    """``[HASH:<label>:<12 hex>]``: stable for a label and value across requests and key rotations, not
    reversible. The label is part of the MAC, so the same digits as a CPF and as a PIS hash differently."""
    return f"[HASH:{label}:{_mac(ring, 'hash', label + chr(0) + value)[:12]}]"


def redact_token(label: str) -> str:
    """``[REDACTED:<label>]``."""
    return f"[REDACTED:{label}]"


def fingerprint(ring: KeyRing, value: str, detector: str | None = None) -> str:
    """32 hex of a keyed HMAC-SHA256 of ``value`` for audit records (never the value itself).

    With ``detector`` the value is normalized first (see ``normalize_value``), so ``123.456.789-09``
    and ``12345678909`` share one fingerprint.
    """
    if detector is not None:
        from gateway.transform.pseudonymize import normalize_value

        value = normalize_value(detector, value)
    return _mac(ring, "fingerprint", value)[:32]
