"""JWTs from the agency's identity provider, verified with a hardened profile.

What a token must pass, in order (each failure is an ``AuthError`` with a value-free reason):

1. size ≤ ``max_token_bytes``; three non-empty base64url segments (a stripped signature fails here);
2. header: ``alg`` exactly one of the configured allow-list (which can never hold ``none`` or an HMAC
   algorithm, in any spelling); no ``jku``/``x5u``/``jwk``/``x5c``/``crit``/``b64`` header (keys are
   never taken from the token); ``kid``, when present, a short plain name (no ``/``, ``\\`` or ``..``);
3. a key: by ``kid`` from the configured PEM files (a file's kid is its name without ``.pem``) or the
   JWKS; an unknown kid triggers at most one JWKS refresh per cooldown; the key's type must fit the
   algorithm (RSA ≥ 2048 bits for RS*/PS*, the matching curve for ES*, Ed25519/Ed448 for EdDSA);
4. signature (PyJWT's algorithm objects over ``cryptography``, the algorithm pinned by step 2), then
   ``exp`` (required), ``nbf`` and ``iat`` with the configured leeway (≤ 300 s), exact ``iss``, exact
   ``aud`` (a string, or a list of strings holding it) — see ``check_claims``;
5. claims → Principal: ``sub`` and agency are required non-empty strings; the jurisdiction claim must
   be an ISO 3166-1 alpha-2 code and is upper-cased. A token without a usable jurisdiction is
   REJECTED rather than given the gateway's default: jurisdiction selects which national policy
   applies, and guessing it could apply a laxer one than the caller's own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from gateway.auth.errors import AuthError
from gateway.auth.principal import Principal
from gateway.config import JwtAuth, JwtClaims
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana.auth")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
"""The only algorithms a config may allow. ``none`` and HS* are absent on purpose: an HMAC verifier
handed an RSA public key would accept tokens forged with that (public) key."""
MAX_LEEWAY_S = 300
MAX_KIDLESS_CANDIDATES = 4
"""A token without ``kid`` is tried against each fitting key, but only if there are at most this many."""
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64"})
"""Headers that would let the token choose its own key or change how it is verified."""
_KID_RE = re.compile(r"[A-Za-z0-9_.:=+-]{1,128}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_ALPHA2_RE = re.compile(r"[A-Za-z]{2}")
_MAX_CLAIM_CHARS = 256
_MAX_JWKS_BYTES = 1 << 20
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


class KeyEntry(NamedTuple):
    """One verification key: its kid (None when it has none), the key, and the JWK ``alg`` pin if any."""

    kid: str | None
    key: Any
    alg: str | None = None


def key_fits(alg: str, key: Any) -> bool:
    """Whether ``key`` is the right kind of public key for ``alg`` (never a private or symmetric key)."""
    if alg[:2] in ("RS", "PS"):
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    if alg in _CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[alg])
    if alg == "EdDSA":
        return isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
    return False


def select_keys(entries: Sequence[KeyEntry], kid: str | None, alg: str) -> list[Any]:
    """Keys that may verify a token with this kid and alg: the kid's key, or every fitting key if no kid."""
    return [e.key for e in entries
            if (kid is None or e.kid == kid) and (e.alg is None or e.alg == alg) and key_fits(alg, e.key)]


def load_pem_keys(paths: Sequence[str], base_dir: Path) -> list[KeyEntry]:
    """Public keys (or certificates) from PEM files; a file's kid is its name without the suffix."""
    out = []
    for p in paths:
        path = Path(p) if Path(p).is_absolute() else base_dir / p
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ConfigError(str(path), None, "auth.jwt.public_keys", f"cannot read: {e.strerror}") from None
        if b"PRIVATE KEY" in data:
            raise ConfigError(str(path), None, "auth.jwt.public_keys", "holds a private key; give the public key")
        try:
            if b"BEGIN CERTIFICATE" in data:
                key = x509.load_pem_x509_certificate(data).public_key()
            else:
                key = serialization.load_pem_public_key(data)
        except ValueError:
            raise ConfigError(str(path), None, "auth.jwt.public_keys", "not a PEM public key") from None
        if not any(key_fits(a, key) for a in ASYMMETRIC_ALGORITHMS):
            raise ConfigError(str(path), None, "auth.jwt.public_keys",
                              "unsupported key type (RSA ≥ 2048, EC P-256/384/521, Ed25519, Ed448)")
        out.append(KeyEntry(path.stem, key))
    return out


def parse_jwks(doc: Any) -> list[KeyEntry]:
    """Signing keys from a JWKS document. Symmetric, private, encryption-only and malformed keys are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS document")
    out = []
    for jwk in doc["keys"]:
        if not (isinstance(jwk, dict) and _for_verifying(jwk)):
            continue
        try:
            key = _JWK_PARSERS[jwk["kty"]].from_jwk(jwk)
        except Exception:  # a malformed entry must not hide the good ones
            continue
        if any(key_fits(a, key) for a in ASYMMETRIC_ALGORITHMS):
            out.append(KeyEntry(jwk.get("kid"), key, jwk.get("alg")))
    return out


_JWK_PARSERS = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
"""Asymmetric key types only: "oct" (HMAC) keys in particular are never usable."""


def _for_verifying(jwk: dict) -> bool:
    """Whether the JWK's own metadata (``use``, ``key_ops``, ``kid``, ``alg``, ``kty``) lets it verify
    a signature here. Private keys (``d``) are refused: a JWKS leaking one is broken, not trusted."""
    if jwk.get("use", "sig") != "sig" or "d" in jwk:
        return False
    ops = jwk.get("key_ops")
    # RFC 7517 §4.3: key_ops lists what the key is for; one without "verify" (an encryption key
    # published in the same set, say) must not verify signatures. It used to be ignored.
    if ops is not None and not (isinstance(ops, list) and "verify" in ops):
        return False
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if kid is not None and not (isinstance(kid, str) and _plain_kid(kid)):
        return False
    # Type first, then the set/dict lookup: a list or object `alg` or `kty` raised TypeError
    # (unhashable) out of parse_jwks, and one odd entry threw away the whole key set.
    if alg is not None and not (isinstance(alg, str) and alg in ASYMMETRIC_ALGORITHMS):
        return False
    return isinstance(kty, str) and kty in _JWK_PARSERS


def _plain_kid(kid: str) -> bool:
    return bool(_KID_RE.fullmatch(kid)) and ".." not in kid


def _b64json(segment: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise AuthError("malformed token") from None


def read_header(token: str, max_bytes: int, algorithms: frozenset[str]) -> tuple[str, str | None, list[str]]:
    """Structural and header checks before any key is touched. Returns (alg, kid, the three segments)."""
    if len(token) > max_bytes:
        raise AuthError("token too large")
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL_RE.fullmatch(p) for p in parts):
        raise AuthError("malformed token")  # includes an empty (stripped) signature
    header = _b64json(parts[0])
    if not isinstance(header, dict):
        raise AuthError("malformed token")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise AuthError("algorithm not allowed")
    if FORBIDDEN_HEADERS.intersection(header):
        raise AuthError("forbidden token header")
    kid = header.get("kid")
    if kid is not None and not (isinstance(kid, str) and _plain_kid(kid)):
        raise AuthError("invalid kid")
    return alg, kid, parts


def _claim_str(claims: dict, name: str, what: str) -> str:
    v = claims.get(name)
    if not isinstance(v, str) or not v.strip() or len(v) > _MAX_CLAIM_CHARS:
        raise AuthError(f"missing or invalid {what} claim")
    return v


def principal_from_claims(claims: dict, mapping: JwtClaims) -> Principal:
    """Map verified claims to a Principal; a missing sub, agency or jurisdiction is a rejection."""
    sub = _claim_str(claims, mapping.sub, "sub")
    agency = _claim_str(claims, mapping.agency, "agency")
    j = claims.get(mapping.jurisdiction)
    if not isinstance(j, str) or not _ALPHA2_RE.fullmatch(j):
        raise AuthError("missing or invalid jurisdiction claim")
    return Principal(sub=sub, agency=agency, jurisdiction=j.upper())


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_claims(claims: dict, *, issuer: str, audience: str, leeway: float, now: float) -> None:
    """RFC 7519 registered claims, the strict way: ``exp`` required, ``nbf``/``iat`` not in the future
    beyond ``leeway``, ``iss`` exactly equal, ``aud`` exactly equal or a list of strings holding it."""
    exp = claims.get("exp")
    if exp is None:
        raise AuthError("missing exp claim")
    if not _number(exp):
        raise AuthError("invalid exp claim")
    if now >= exp + leeway:
        raise AuthError("token expired")
    for name in ("nbf", "iat"):
        v = claims.get(name)
        if v is not None and not _number(v):
            raise AuthError(f"invalid {name} claim")
        if v is not None and v > now + leeway:
            raise AuthError("token not yet valid")
    iss = claims.get("iss")
    if iss is None:
        raise AuthError("missing iss claim")
    if not isinstance(iss, str) or iss != issuer:
        raise AuthError("wrong issuer")
    aud = claims.get("aud")
    if aud is None or aud == []:
        raise AuthError("missing aud claim")
    if isinstance(aud, str):
        aud = [aud]
    if not isinstance(aud, list) or not all(isinstance(a, str) for a in aud) or audience not in aud:
        raise AuthError("wrong audience")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class JwksCache:
    """The issuer's JWKS, fetched over HTTPS and cached.

    Refreshed when older than ``refresh_s`` or when a token names an unknown kid, but never more than
    once per ``cooldown_s`` (a flood of made-up kids cannot hammer the IdP). A failed refresh keeps the
    last good keys until they are ``max_stale_s`` old; after that every JWT is rejected (fail closed).
    """

    def __init__(self, url: str, *, cooldown_s: float, max_stale_s: float, refresh_s: float,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.url, self.cooldown_s, self.max_stale_s, self.refresh_s = url, cooldown_s, max_stale_s, refresh_s
        self.timeout_s, self.clock = timeout_s, clock
        self.entries: list[KeyEntry] = []
        self.fetched_at: float | None = None
        self.attempted_at: float | None = None
        self.fetches = 0
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Open the HTTP session and try a first fetch (a failure here is logged; auth then fails closed)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        await self._refresh()

    def adopt(self, previous: JwksCache) -> None:
        """Start from the keys of the cache this one replaces (a config reload), when it reads the same
        URL on the same clock: they keep serving, up to ``max_stale_s`` from when they were fetched,
        if this cache's own first fetch fails. A reload during an IdP outage used to start empty and
        reject every JWT until the IdP was back."""
        if previous.url == self.url and previous.clock is self.clock and previous.fetched_at is not None:
            self.entries, self.fetched_at = previous.entries, previous.fetched_at

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def settled(self) -> None:
        """Wait for a background refresh in flight, if any (tests and shutdown use this)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def keys(self, kid: str | None, alg: str) -> list[Any]:
        """Keys for this kid/alg; may refresh (within the cooldown). Raises AuthError when keys are too stale."""
        now = self.clock()
        if self.fetched_at is None or now - self.fetched_at > self.max_stale_s:
            await self._refresh()  # nothing usable: this request has to wait for the IdP
        elif now - self.fetched_at >= self.refresh_s and not self._cooling() and (
                self._task is None or self._task.done()):
            # Due for a routine refresh: revalidate in the background and keep serving the cached
            # keys, so a slow or down IdP does not stall requests once per cooldown.
            self._task = asyncio.get_running_loop().create_task(self._refresh())
        found = self._usable(kid, alg)
        if not found and kid is not None:
            await self._refresh()  # a rotated-in key; the cooldown bounds how often this can happen
            found = self._usable(kid, alg)
        return found

    def _usable(self, kid: str | None, alg: str) -> list[Any]:
        if self.fetched_at is None:
            raise AuthError("signing keys unavailable")
        if self.clock() - self.fetched_at > self.max_stale_s:
            raise AuthError("signing keys too stale")
        return select_keys(self.entries, kid, alg)

    async def _refresh(self) -> None:
        if self._cooling():
            return
        async with self._lock:
            if self._cooling():  # someone else fetched while we waited
                return
            self.attempted_at = self.clock()
            self.fetches += 1
            try:
                entries = await self._fetch()
            except Exception as e:
                age = "never fetched" if self.fetched_at is None else f"keys {self.clock() - self.fetched_at:.0f}s old"
                log.warning("JWKS refresh failed (%s): %s", age, type(e).__name__)
                return
            self.entries, self.fetched_at = entries, self.clock()

    def _cooling(self) -> bool:
        return self.attempted_at is not None and self.clock() - self.attempted_at < self.cooldown_s

    async def _fetch(self) -> list[KeyEntry]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        async with self._session.get(self.url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"status {resp.status}")
            body = await _read_bounded(resp.content, _MAX_JWKS_BYTES)
        return parse_jwks(orjson.loads(body))


async def _read_bounded(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or ValueError once it passes ``limit`` bytes.

    ``StreamReader.read(n)`` returns as soon as SOME bytes are buffered (one TCP segment or TLS
    record), not n bytes: a single call truncated any JWKS that arrived in more than one piece, and
    the truncated JSON failed every refresh, so auth failed closed for good. Read until EOF instead.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError("JWKS too large")
    return b"".join(chunks)


class JwtVerifier:
    """Verifies a JWT against the configured issuer and keys; ``verify(token) -> Principal``."""

    def __init__(self, cfg: JwtAuth, base_dir: Path, *, clock: Callable[[], float] = time.monotonic):
        bad = [a for a in cfg.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not cfg.algorithms:
            raise ConfigError("<config>", None, "auth.jwt.algorithms",
                              f"allowed: {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}; never none or HS*")
        if not 0 <= cfg.leeway_s <= MAX_LEEWAY_S:
            raise ConfigError("<config>", None, "auth.jwt.leeway_s", f"must be 0..{MAX_LEEWAY_S}")
        if not cfg.public_keys and not cfg.jwks_url:
            raise ConfigError("<config>", None, "auth.jwt", "needs public_keys or jwks_url")
        if not 512 <= cfg.max_token_bytes <= 65536:
            raise ConfigError("<config>", None, "auth.jwt.max_token_bytes", "must be 512..65536")
        _check_jwks_timings(cfg)
        self.cfg = cfg
        self.algorithms = frozenset(cfg.algorithms)
        self.static = load_pem_keys(cfg.public_keys, base_dir)
        self.jwks: JwksCache | None = None
        if cfg.jwks_url:
            u = urlsplit(cfg.jwks_url)
            if not (u.scheme == "https" or (u.scheme == "http" and _is_loopback(u.hostname))):
                raise ConfigError("<config>", None, "auth.jwt.jwks_url", "must be https (http only on loopback)")
            self.jwks = JwksCache(cfg.jwks_url, cooldown_s=cfg.jwks_cooldown_s, max_stale_s=cfg.jwks_max_stale_s,
                                  refresh_s=cfg.jwks_refresh_s, clock=clock)

    async def start(self, previous: JwtVerifier | None = None) -> None:
        """Fetch the JWKS; ``previous`` (the verifier a reload replaces) lends its keys meanwhile."""
        if self.jwks is not None:
            if previous is not None and previous.jwks is not None:
                self.jwks.adopt(previous.jwks)
            await self.jwks.start()

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()

    async def verify(self, token: str) -> Principal:
        """The Principal of a valid token; AuthError (with a value-free reason) otherwise."""
        alg, kid, parts = read_header(token, self.cfg.max_token_bytes, self.algorithms)
        keys = select_keys(self.static, kid, alg)
        if not keys and self.jwks is not None:
            keys = await self.jwks.keys(kid, alg)
        if not keys:
            raise AuthError("unknown signing key")
        if len(keys) > MAX_KIDLESS_CANDIDATES:  # each candidate is a signature check an attacker gets free
            raise AuthError("token without kid matches too many keys")
        # PyJWT's algorithm objects do the cryptography (incl. ECDSA raw→DER); the header is already
        # checked and the algorithm is pinned by it, so no key is ever used with a foreign algorithm.
        verifier = _ALGORITHMS[alg]
        try:
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except (binascii.Error, ValueError):
            raise AuthError("malformed token") from None
        signed = f"{parts[0]}.{parts[1]}".encode()
        if not any(_verifies(verifier, signed, key, signature) for key in keys):
            raise AuthError("bad signature")
        claims = _b64json(parts[1])
        if not isinstance(claims, dict):
            raise AuthError("malformed token")
        check_claims(claims, issuer=self.cfg.issuer, audience=self.cfg.audience, leeway=self.cfg.leeway_s,
                     now=time.time())
        return principal_from_claims(claims, self.cfg.claims)


def _check_jwks_timings(cfg: JwtAuth) -> None:
    """The JWKS cache's periods must be positive (the loader checks this too; a JwtAuth built in code
    skips msgspec's constraints). A cooldown of 0 let every made-up kid fetch the JWKS, hammering the
    IdP; a negative max-stale silently rejected every JWT."""
    for name in ("jwks_cooldown_s", "jwks_refresh_s", "jwks_max_stale_s"):
        if getattr(cfg, name) < 1:
            raise ConfigError("<config>", None, f"auth.jwt.{name}", "must be at least 1 (seconds)")


def _verifies(verifier: Any, signed: bytes, key: Any, signature: bytes) -> bool:
    try:
        return bool(verifier.verify(signed, key, signature))
    except Exception:  # a malformed signature (wrong length for the curve, ...) is just a bad one
        return False


_ALGORITHMS = {name: alg for name, alg in get_default_algorithms().items() if name in ASYMMETRIC_ALGORITHMS}
