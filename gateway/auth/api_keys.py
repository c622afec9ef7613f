"""API keys: configured as the SHA-256 of the key, matched in constant time.

The gateway never holds a client key in the clear. A presented key is hashed and compared with
``hmac.compare_digest`` against EVERY configured digest (no early exit), so neither which key
matched nor how many bytes matched shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from gateway.auth.principal import Principal
from gateway.config import ApiKey
from gateway.yamlfile import ConfigError

_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")
_ALPHA2_RE = re.compile(r"[A-Za-z]{2}")
MAX_KEY_CHARS = 512
"""Longer presented keys are rejected unhashed."""


def hash_key(key: str) -> str:
    """The SHA-256 hex digest to put in ``auth.api_keys[].sha256`` for a key."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The configured keys; ``match(key)`` gives the caller's Principal or None."""

    def __init__(self, keys: list[ApiKey]):
        self._entries: list[tuple[bytes, Principal]] = []
        seen_ids: set[str] = set()
        seen_digests: set[bytes] = set()
        for i, k in enumerate(keys):
            field = f"auth.api_keys[{i}]"
            if not _HEX64_RE.fullmatch(k.sha256):
                raise ConfigError("<config>", None, f"{field}.sha256", "must be 64 hex digits (SHA-256 of the key)")
            if not _ALPHA2_RE.fullmatch(k.jurisdiction):
                raise ConfigError("<config>", None, f"{field}.jurisdiction", "must be an ISO 3166-1 alpha-2 code")
            if not k.id or not k.agency:
                raise ConfigError("<config>", None, field, "id and agency must not be empty")
            digest = bytes.fromhex(k.sha256)
            if k.id in seen_ids:
                raise ConfigError("<config>", None, f"{field}.id", "duplicate key id")
            if digest in seen_digests:
                raise ConfigError("<config>", None, f"{field}.sha256", "the same key is configured twice")
            seen_ids.add(k.id)
            seen_digests.add(digest)
            self._entries.append((digest, Principal(sub=k.id, agency=k.agency,
                                                    jurisdiction=k.jurisdiction.upper(), key_id=k.id)))

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, key: str) -> Principal | None:
        """The Principal of the configured key equal to ``key``, or None."""
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found
