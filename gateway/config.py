"""The gateway's configuration: typed, strict, validated once at load (SPEC section 4).

Every Struct rejects unknown keys; ``load_config`` names file, line and field on any error. A started
gateway never re-validates: it holds one frozen ``Config`` and swaps a whole new one on reload.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from gateway.yamlfile import ConfigError, load_file, load_text, locate

Action = Literal["allow", "encrypt", "pseudonymize", "hash", "redact", "block"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class ListenTls(_Strict, kw_only=True):
    """HTTPS on the gateway's own port, with mutual TLS optional. Paths are relative to the config
    file; a reload (SIGHUP) serves renewed files to the next connections."""

    cert_file: str
    """PEM certificate (with its chain) the gateway presents to callers."""
    key_file: str | None = None
    """PEM private key of `cert_file`, when it is not in `cert_file` itself."""
    key_password_env: str | None = None
    """Environment variable holding the password of an encrypted `key_file`."""
    client_ca_file: str | None = None
    """PEM bundle of the CAs whose client certificates callers must present (mutual TLS, on top of the API key or JWT). Turning it on or off needs a restart."""


class Listen(_Strict, kw_only=True):
    """Where the gateway listens."""

    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    """Address to bind; 0.0.0.0 in a container, 127.0.0.1 for a sidecar."""
    # (an empty host would listen on every interface, IPv4 and IPv6: that must be written 0.0.0.0 / ::)
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    """TCP port (0 picks a free one)."""
    tls: ListenTls | None = None
    """HTTPS instead of plain HTTP (e.g. a fleet that must not leave caller traffic in clear behind its ingress)."""


JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
"""Asymmetric JWS algorithms only: `none` and HS* are not expressible in a config."""


class JwtClaims(_Strict, kw_only=True):
    """Which JWT claims carry the caller's jurisdiction and agency."""

    jurisdiction: str = "country"
    """Claim with the caller's ISO alpha-2 country; a token without it is rejected (no default)."""
    agency: str = "agency"
    """Claim with the caller's agency; required."""
    sub: str = "sub"
    """Claim naming the caller; required."""


class JwtAuth(_Strict, kw_only=True):
    """JWTs from the agency's identity provider."""

    issuer: str
    """Exact `iss` required (no prefix match)."""
    audience: str
    """Exact `aud` required."""
    jwks_url: str | None = None
    """JWKS endpoint; keys are cached and refreshed on an unknown `kid` at most once per cooldown."""
    public_keys: list[str] = []
    """PEM files with the issuer's public keys (paths relative to the config file)."""
    algorithms: list[JwtAlgorithm] = msgspec.field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    """Allow-list; `none` and HMAC algorithms are never accepted."""
    claims: JwtClaims = JwtClaims()
    """Which claims carry jurisdiction, agency and subject."""
    leeway_s: Annotated[int, msgspec.Meta(ge=0, le=300)] = 30
    """Clock skew tolerated on exp/nbf/iat."""
    max_token_bytes: Annotated[int, msgspec.Meta(ge=512, le=65536)] = 8192
    """Largest accepted token; bigger ones are rejected before any parsing."""
    jwks_cooldown_s: Annotated[int, msgspec.Meta(ge=1)] = 60
    """Least time between two JWKS fetches, whatever triggers them (unknown kids cannot hammer the IdP); at least 1."""
    jwks_refresh_s: Annotated[int, msgspec.Meta(ge=1)] = 300
    """Age after which the cached JWKS is refetched on the next JWT (so removed keys stop working); at least 1."""
    jwks_max_stale_s: Annotated[int, msgspec.Meta(ge=1)] = 86400
    """How long the last good JWKS keeps serving through an outage before auth fails closed; at least 1."""


class ApiKey(_Strict, kw_only=True):
    """An API key, stored only as the SHA-256 of the key."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    """Names the key in logs, audit records and per-key rate limits."""
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{64}$")]
    """Hex SHA-256 of the key (``soberana`` never stores the key itself)."""
    jurisdiction: Annotated[str, msgspec.Meta(pattern="^[A-Za-z]{2}$")]
    """ISO 3166-1 alpha-2 of the calling agency; its national policy applies."""
    agency: Annotated[str, msgspec.Meta(min_length=1)]
    """The agency the key belongs to (rate limits are per agency too)."""


class Auth(_Strict, kw_only=True):
    """How callers authenticate: `jwt`, `api_key`, or `none` (development only, needs --insecure-no-auth)."""

    mode: Literal["jwt", "api_key", "none"] = "jwt"
    """`jwt`, `api_key`, or `none` (development only: `serve` refuses it without --insecure-no-auth)."""
    jwt: JwtAuth | None = None
    """Required when mode is `jwt`."""
    api_keys: list[ApiKey] = []
    """Accepted in `jwt` mode too, as a second way in."""


class UpstreamTls(_Strict, kw_only=True):
    """TLS to an ``https`` upstream beyond the system's trust store: an agency's own CA, a client
    certificate (mutual TLS). Paths are relative to the config file; the files are read at load and
    again on reload (a renewed certificate takes effect on SIGHUP). Verification is always on."""

    ca_file: str | None = None
    """PEM bundle of the CAs that may sign the upstream's certificate, trusted instead of the system's."""
    cert_file: str | None = None
    """PEM client certificate (with its chain) the gateway presents: mutual TLS."""
    key_file: str | None = None
    """PEM private key of `cert_file`, when it is not in `cert_file` itself."""
    key_password_env: str | None = None
    """Environment variable holding the password of an encrypted `key_file`."""
    server_name: str | None = None
    """Name the upstream's certificate must carry, and the SNI sent, when it differs from the URL's host
    (e.g. a URL with an IP address)."""


class Upstream(_Strict, kw_only=True):
    """A model provider the gateway may forward to."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    """Unique name; shown in X-Soberana-Route, metrics and audit records."""
    url: str
    """Base URL including the version prefix, e.g. ``http://10.0.0.5:8000/v1``."""
    dialect: Literal["openai", "anthropic"] = "openai"
    """Wire format the upstream speaks; the gateway translates when it differs from the caller's."""
    residency: str
    """ISO 3166-1 alpha-2 country where the data is processed. Required: unknown residency never routes."""
    api_key_env: str | None = None
    """Environment variable that holds the provider key; clients never hold it."""
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 256
    """Bound of the keep-alive connection pool to this upstream."""
    health_path: Annotated[str, msgspec.Meta(pattern="^/")] | None = None
    """Optional active probe path (GET, relative to ``url``), e.g. ``/models``."""
    probe_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds between active probes (when `health_path` is set)."""
    breaker_failures: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Consecutive failures (connect error, timeout, 5xx) that open the circuit."""
    breaker_reset_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """How long an open circuit waits before letting a trial request through (half-open)."""
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Per-read upstream timeout; defaults to ``limits.upstream_timeout_s``."""
    tls: UpstreamTls | None = None
    """For an ``https`` url: the agency CA, a client certificate, the expected server name."""


class Route(_Strict, kw_only=True):
    """One entry in a model's preference list."""

    upstream: str
    """Name of an entry of `upstreams`."""
    model: str
    """Model name sent to that upstream (the caller's model name is replaced by it)."""


class Audit(_Strict, kw_only=True):
    """The tamper-evident audit log."""

    path: str = "var/audit"
    """Folder of per-worker chain files."""
    checkpoint_every: Annotated[int, msgspec.Meta(ge=0)] = 1000
    """Records between signed checkpoints (0: by time only)."""
    checkpoint_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    """Longest time between signed checkpoints."""
    fsync: Literal["always", "batch", "never"] = "batch"
    """`always` (every group commit), `batch` (at checkpoints and at least every second) or `never` (at close)."""
    stdout: bool = False
    """Also write each line of the chain to stdout (for sidecar log shippers): every record, and the
    epoch and checkpoint lines, so that what is shipped can serve as a witness (see `witness`)."""
    witness: str | None = None
    """A file where every epoch and checkpoint line is also appended (all workers share it): put it on
    other storage, or where a shipper takes it off the host. `soberana audit verify --witness FILE`
    then catches what the chain alone cannot: a file cut back to an earlier closing checkpoint
    (whole epochs removed), or an open file cut back to an earlier checkpoint."""


class Limits(_Strict, kw_only=True):
    """Limits a hostile client cannot get around."""

    # A deadline of 0 or less would fail every request at once (and a body limit of 0 refuse every
    # body): the bounds below make such a value a config error that names its line, not an outage.

    max_body_bytes: Annotated[int, msgspec.Meta(ge=1)] = 10 * 1024 * 1024
    """Largest request body; counted while it streams in (413)."""
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Deadline for a request's line and headers (slow clients are disconnected)."""
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Idle deadline between body reads."""
    upstream_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """Longest wait for each read from an upstream (a stream may last longer as long as bytes flow)."""
    upstream_connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Deadline to open a connection to an upstream."""
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 10000
    """Most client connections one worker keeps open (streams last minutes, so this is not a
    request rate); past it a new connection is answered 503 `overloaded` (Retry-After: 1) and closed
    before it is read, and `soberana_connections_refused_total` counts it. Keep it below the
    process's open-file limit (`ulimit -n`), with room for upstream connections and the audit files."""
    max_answer_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * 1024 * 1024
    """Largest JSON answer taken from an upstream (it is read whole, to be inspected and restored);
    past it the caller gets 502 `upstream_error`. Streamed answers are bounded per event instead."""


class RateLimit(_Strict, kw_only=True):
    """Per-caller limits over a sliding one-minute window (0 = unlimited); see gateway/ratelimit.py."""

    requests_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Requests per minute for each agency (all its keys and subjects together)."""
    tokens_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Estimated model tokens per minute for each agency."""
    key_requests_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Requests per minute for each single caller: an API key, or a JWT subject."""
    key_tokens_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Estimated model tokens per minute for each single caller."""
    backend: str = "memory"
    """`memory` (per process) or the name of a plugin backend, e.g. `redis` (shared by a fleet)."""
    redis_url: str | None = None
    """For `backend: redis`, e.g. ``redis://redis:6379/0``."""
    redis_prefix: str = "soberana:rl:"
    """Key prefix in Redis, so several gateway fleets can share one Redis."""


class Tracing(_Strict, kw_only=True):
    """Optional OpenTelemetry traces over OTLP/HTTP (needs the `otel` extra): stage timings, rule ids and finding counts, never a value."""

    enabled: bool = False
    """Export one trace per request: a `soberana.request` span with a child per stage and per upstream try."""
    otlp_endpoint: Annotated[str, msgspec.Meta(pattern="^https?://")] = "http://127.0.0.1:4318/v1/traces"
    """OTLP/HTTP (protobuf) traces endpoint of the collector."""
    service_name: Annotated[str, msgspec.Meta(min_length=1)] = "soberana"
    """The `service.name` resource attribute."""
    sample_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    """Share of new traces kept (0..1); a request with an incoming `traceparent` follows its sampled flag."""
    headers: dict[str, str] = {}
    """HTTP headers sent to the collector, e.g. an authorization token (never logged)."""


class Config(_Strict, kw_only=True):
    """The whole gateway configuration (SPEC section 4)."""

    listen: Listen = Listen()
    """Address and port."""
    jurisdiction: Annotated[str, msgspec.Meta(pattern="^[A-Za-z]{2}$")] = "BR"
    """Where this gateway runs (ISO alpha-2). Callers carry their own jurisdiction (JWT claim or API key); this one applies only to the development principal of `auth.mode: none`."""
    policies: str = "policies/"
    """Folder of national policies (`<cc>.yaml`) and `regional/` agreements, relative to this file."""
    keys: str = "var/keys"
    """Key folder made by `soberana keys init`, relative to this file."""
    auth: Auth = Auth()
    """How callers authenticate."""
    upstreams: list[Upstream] = []
    """Model providers, each with the country where it processes data."""
    models: dict[str, list[Route]] = {}
    """Model names callers may ask for, each with its upstreams in order of preference."""
    audit: Audit = Audit()
    """The tamper-evident audit log."""
    limits: Limits = Limits()
    """Body size and deadlines."""
    rate_limit: RateLimit = RateLimit()
    """Per-agency and per-key request and token quotas."""
    tracing: Tracing = Tracing()
    """Optional OpenTelemetry traces."""
    on_inspection_error: Literal["block", "allow"] = "block"
    """`block` (default): a request that cannot be inspected is refused; `allow` forwards it uninspected and logs CRITICAL every time."""
    source: str = "<default>"
    """Set by the loader: the file this config came from (paths are relative to its folder)."""

    def path(self, p: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        q = Path(p)
        if q.is_absolute() or self.source.startswith("<"):
            return q
        return Path(self.source).parent / q

    def upstream(self, name: str) -> Upstream:
        for u in self.upstreams:
            if u.name == name:
                return u
        raise KeyError(name)


def _host_port(url: str) -> bool:
    """The URL has a host, and a valid port if it names one (the upstream pool refuses it otherwise)."""
    try:
        u = urlsplit(url)
        return bool(u.hostname) and u.port != 0
    except ValueError:  # a port that is not a number or out of range
        return False


def _check(cfg: Config, file: str) -> None:
    """Checks across fields that the types alone cannot express."""
    if cfg.listen.tls is not None:
        _check_listen_tls(cfg, cfg.listen.tls, file)
    names = [u.name for u in cfg.upstreams]
    for i, u in enumerate(cfg.upstreams):
        if names.count(u.name) > 1:
            raise ConfigError(file, None, f"upstreams[{i}].name", f"duplicate upstream name {u.name!r}")
        if len(u.residency) != 2 or not u.residency.isalpha() or not u.residency.isupper():
            raise ConfigError(file, None, f"upstreams[{i}].residency", "must be an ISO 3166-1 alpha-2 code, e.g. BR")
        if not u.url.startswith(("http://", "https://")) or not _host_port(u.url):
            raise ConfigError(file, None, f"upstreams[{i}].url", "must be http:// or https:// and a host (port 1-65535)")
        if u.tls is not None:
            _check_tls(cfg, u.tls, u.url, f"upstreams[{i}].tls", file)
    for model, routes in cfg.models.items():
        if not routes:
            raise ConfigError(file, None, f"models.{model}", "needs at least one upstream")
        for j, r in enumerate(routes):
            if r.upstream not in names:
                raise ConfigError(file, None, f"models.{model}[{j}].upstream", f"unknown upstream {r.upstream!r}")
    ids, digests = set(), set()
    for i, k in enumerate(cfg.auth.api_keys):
        # one key under two entries would authenticate as whichever comes last (its jurisdiction too)
        if k.id in ids:
            raise ConfigError(file, None, f"auth.api_keys[{i}].id", f"duplicate key id {k.id!r}")
        if k.sha256.lower() in digests:
            raise ConfigError(file, None, f"auth.api_keys[{i}].sha256", "the same key is configured twice")
        ids.add(k.id)
        digests.add(k.sha256.lower())
    if cfg.auth.mode == "jwt" and cfg.auth.jwt is None:
        raise ConfigError(file, None, "auth.jwt", "required when auth.mode is jwt")
    if cfg.auth.mode == "api_key" and not cfg.auth.api_keys:
        raise ConfigError(file, None, "auth.api_keys", "required when auth.mode is api_key")


def _check_listen_tls(cfg: Config, tls: ListenTls, file: str) -> None:
    from gateway.tls import TlsConfigError, server_context  # (it needs this module's Structs)

    try:
        server_context(tls, cfg.path)
    except TlsConfigError as e:
        raise ConfigError(file, None, f"listen.tls.{e.field}", str(e)) from None


def _check_tls(cfg: Config, tls: UpstreamTls, url: str, field: str, file: str) -> None:
    """An upstream's TLS files, loaded once here so that a wrong path, key or password stops the start
    (or the reload) with its field, not the first request."""
    from gateway.tls import TlsConfigError, client_context  # (it needs this module's Structs)

    if not url.startswith("https://"):
        raise ConfigError(file, None, field, "needs an https:// url")
    if tls.key_file and not tls.cert_file:
        raise ConfigError(file, None, f"{field}.key_file", "needs cert_file")
    if tls.key_password_env and not tls.cert_file:
        raise ConfigError(file, None, f"{field}.key_password_env", "needs cert_file")
    try:
        client_context(tls, cfg.path)
    except TlsConfigError as e:
        raise ConfigError(file, None, f"{field}.{e.field}", str(e)) from None


def _checked(cfg: Config, text: str, file: str) -> Config:
    try:
        _check(cfg, file)
    except ConfigError as e:
        raise ConfigError(file, locate(text, e.field or ""), e.field, e.message) from None
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a config file; raise ConfigError naming file, line and field."""
    cfg = load_file(path, Config)
    cfg = msgspec.structs.replace(cfg, source=str(path))
    return _checked(cfg, Path(path).read_text(encoding="utf-8"), str(path))


def config_from_text(text: str, source: str = "<string>") -> Config:
    """Like ``load_config`` for YAML text (tests, the demo)."""
    cfg = msgspec.structs.replace(load_text(text, Config, source), source=source)
    return _checked(cfg, text, source)


def in_file(e: ConfigError, config: Config) -> ConfigError:
    """``e`` named with ``config``'s file and the field's line, when it was raised as ``<config>`` by a
    part that knows only its settings (the authenticator, the rate limiter, the upstream registry)."""
    if e.file != "<config>" or config.source.startswith("<"):
        return e
    try:
        text = Path(config.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ConfigError(config.source, None, e.field, e.message)
    return ConfigError(config.source, locate(text, e.field or ""), e.field, e.message)
