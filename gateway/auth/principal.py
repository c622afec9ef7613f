"""The authenticated caller."""

from __future__ import annotations

import msgspec


class Principal(msgspec.Struct, frozen=True):
    """Who is calling, as established by auth. Drives policy (jurisdiction) and limits (agency, key)."""

    sub: str
    """Subject: the JWT `sub` or the API key id."""
    agency: str
    jurisdiction: str
    """ISO 3166-1 alpha-2; the caller's policy always applies."""
    key_id: str | None = None
    """API key id when the caller used one (rate limits are per agency and per key)."""
