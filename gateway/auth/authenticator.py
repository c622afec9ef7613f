"""Headers → Principal: the one entry point the server calls.

Credentials come from ``Authorization: Bearer <JWT or API key>`` or Anthropic's ``x-api-key``.
Sending both, or the same header twice, is rejected as ambiguous. In ``jwt`` mode a bearer value
that has the shape of a JWT (starts with ``ey`` and has a dot) is verified as a JWT; anything else is looked
up among the configured API keys (``auth.api_keys`` is "a second way in" in ``jwt`` mode). In
``api_key`` mode JWTs are never considered. Mode ``none`` gives every request one fixed development
principal and exists only when the operator passed ``allow_none`` (``--insecure-no-auth``).

Every rejection is logged on ``soberana.auth`` at INFO with its reason, never the credential.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.auth.api_keys import ApiKeys
from gateway.auth.errors import AuthError
from gateway.auth.jwt import JwtVerifier
from gateway.auth.principal import Principal
from gateway.config import Auth
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana.auth")

DEV_SUB = "dev"
DEV_AGENCY = "development"
_MAX_HEADER_CHARS = 65536
_NO_SPACE_RE = re.compile(r"\S+")

__all__ = ["AuthError", "Authenticator"]


def _one_header(headers: Mapping[str, str], name: str) -> str | None:
    """The header's single value (case-insensitive), None if absent; AuthError if repeated."""
    getall = getattr(headers, "getall", None)
    if getall is not None:  # aiohttp's CIMultiDict: case-insensitive, may repeat
        values = getall(name, [])
    else:
        values = [v for k, v in headers.items() if k.lower() == name]
    if len(values) > 1:
        raise AuthError(f"repeated {name} header")
    return values[0] if values else None


def _bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _NO_SPACE_RE.fullmatch(token):
        raise AuthError("malformed authorization header")
    return token


def _as_sent(value: str) -> str:
    """A header value as the text the client meant, for hashing like ``hash_key`` does (UTF-8).

    The gateway's server decodes header bytes as latin-1 (one char per byte, RFC 9110 obs-text), so a
    UTF-8 key such as ``chave-ação`` arrived as ``chave-aÃ§Ã£o`` and its digest never matched the
    configured one. Bytes that are valid UTF-8 are read as UTF-8; anything else (pure ASCII, text that
    is already decoded, bytes that are not UTF-8) is left as it is.
    """
    if value.isascii():  # nearly every key: the same text either way, and no two conversions per request
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class Authenticator:
    """Authenticates requests per ``auth`` config. ``start()``/``close()`` manage the JWKS session."""

    def __init__(self, cfg: Auth, *, default_jurisdiction: str, base_dir: Path, allow_none: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        if cfg.mode == "none" and not allow_none:
            raise ConfigError("<config>", None, "auth.mode", "`none` needs --insecure-no-auth (development only)")
        if cfg.mode == "jwt" and cfg.jwt is None:
            raise ConfigError("<config>", None, "auth.jwt", "required when auth.mode is jwt")
        if cfg.mode == "api_key" and not cfg.api_keys:
            raise ConfigError("<config>", None, "auth.api_keys", "required when auth.mode is api_key")
        self.mode = cfg.mode
        self.api_keys = ApiKeys(cfg.api_keys)
        self.jwt = JwtVerifier(cfg.jwt, base_dir, clock=clock) if cfg.mode == "jwt" and cfg.jwt else None
        self.dev = Principal(sub=DEV_SUB, agency=DEV_AGENCY, jurisdiction=default_jurisdiction.upper())
        if cfg.mode == "none":
            log.warning("auth.mode none: every request is the development principal; never use in production")

    async def start(self, previous: Authenticator | None = None) -> None:
        """Open the JWKS session and fetch the keys once (an unreachable IdP is logged, not raised).

        On a reload, ``previous`` is the authenticator being replaced: its cached JWKS keeps serving
        if this fetch fails (see ``JwksCache.adopt``)."""
        if self.jwt is not None:
            await self.jwt.start(previous.jwt if previous is not None else None)

    async def close(self) -> None:
        """Stop a background JWKS refresh and close the session."""
        if self.jwt is not None:
            await self.jwt.close()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller's Principal; raises AuthError, whose reason (``str``, never the credential) the
        caller logs once, with its request id. (Logged here as well, every refusal was two lines.)"""
        if self.mode == "none":
            return self.dev
        credential, is_jwt = self._credential(headers)
        if is_jwt:
            return await self.jwt.verify(credential)
        principal = self.api_keys.match(_as_sent(credential))
        if principal is None:
            raise AuthError("unknown api key")
        return principal

    def _credential(self, headers: Mapping[str, str]) -> tuple[str, bool]:
        """The presented credential, and whether it goes to the JWT verifier (else to the key table)."""
        authz = _one_header(headers, "authorization")
        xkey = _one_header(headers, "x-api-key")
        if authz is not None and xkey is not None:
            raise AuthError("ambiguous credentials: both authorization and x-api-key")
        if authz is None and xkey is None:
            raise AuthError("missing credentials")
        raw = authz if authz is not None else xkey
        if len(raw) > _MAX_HEADER_CHARS:
            raise AuthError("credential too large")
        if authz is None:
            return xkey.strip(), False
        credential = _bearer(authz)
        # A JWT's header is JSON, so its base64url starts with "ey"; API keys go to the key table.
        return credential, self.jwt is not None and credential.startswith("ey") and "." in credential
