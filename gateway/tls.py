"""TLS contexts: the listener's (``listen.tls``) and each ``https`` upstream's (``upstreams[].tls``).

In-country models often sit behind an agency's own certificate authority and accept only callers
with a client certificate (mutual TLS); a fleet may have to take its callers' traffic over TLS end
to end rather than behind a terminating ingress. Verification and the host name check are always
on: there is no setting that turns them off. Files are read when the config is loaded, so a wrong
path, key or password stops the start (or the reload) with its field, and again on every reload,
so a renewed certificate takes effect on SIGHUP.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from gateway.config import ListenTls, UpstreamTls

Resolve = Callable[[str], Path]
"""Turns a configured path into a real one (``Config.path``: relative to the config file)."""


class TlsConfigError(ValueError):
    """A TLS file that cannot be used; ``field`` is the key of the ``tls`` block at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def client_context(tls: UpstreamTls | None, resolve: Resolve) -> ssl.SSLContext:
    """The context for one ``https`` upstream: TLS 1.2 or later, the peer's certificate verified
    against ``tls.ca_file`` (or the system's CAs), and ``tls.cert_file`` presented when set.
    Raises ``TlsConfigError`` naming the field; messages never quote a file's content."""
    ca = str(resolve(tls.ca_file)) if tls is not None and tls.ca_file else None
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise TlsConfigError("ca_file", f"cannot load CA certificates from {ca}: {_why(e)}") from None
    if tls is not None and tls.cert_file:
        _load_chain(ctx, tls, resolve)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_context(tls: ListenTls, resolve: Resolve) -> ssl.SSLContext:
    """The listener's context: its certificate, TLS 1.2 or later, and, with ``client_ca_file``, a
    client certificate from that CA required of every caller (mutual TLS, on top of the API key or
    JWT). Raises ``TlsConfigError`` naming the field."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, tls, resolve)
    if tls.client_ca_file:
        ca = str(resolve(tls.client_ca_file))
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise TlsConfigError("client_ca_file", f"cannot load CA certificates from {ca}: {_why(e)}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Listener:
    """The listener's TLS across reloads. asyncio binds a server to one SSLContext for its life, so
    that context only picks, at each handshake, the current one (``swap``): a renewed certificate or
    client CA serves the next connections without closing the port."""

    def __init__(self, ctx: ssl.SSLContext):
        self.context = ctx
        """The context the server listens with."""
        self.current = ctx
        ctx.sni_callback = self._pick  # (called for every handshake, with or without SNI)

    def _pick(self, conn, server_name, ctx) -> None:
        if self.current is not ctx:
            conn.context = self.current
        return None

    def swap(self, ctx: ssl.SSLContext) -> None:
        """Serve new handshakes with ``ctx`` (the client certificate requirement is the one the
        listener started with: turning mutual TLS on or off needs a restart)."""
        self.current = ctx


def _load_chain(ctx: ssl.SSLContext, tls: ListenTls | UpstreamTls, resolve: Resolve) -> None:
    cert = str(resolve(tls.cert_file))
    key = str(resolve(tls.key_file)) if tls.key_file else None
    secret = None
    if tls.key_password_env:
        secret = os.environ.get(tls.key_password_env)
        if not secret:
            raise TlsConfigError("key_password_env", f"environment variable {tls.key_password_env} is not set")
    asked = []

    def password() -> bytes:
        # never OpenSSL's own prompt, which would wait on a terminal a server does not have
        asked.append(True)
        return secret.encode() if secret else b""

    for path, field in ((cert, "cert_file"), (key, "key_file")):
        if path is not None and not os.access(path, os.R_OK):
            raise TlsConfigError(field, f"cannot read {path}")
    try:
        ctx.load_cert_chain(cert, key, password=password)
    except ssl.SSLError as e:
        if asked and not secret:
            raise TlsConfigError("key_file", "the private key is encrypted: set key_password_env") from None
        if asked:
            raise TlsConfigError("key_password_env", "the private key does not open with this password") from None
        raise TlsConfigError("cert_file" if key is None else "key_file",
                             f"the certificate and its private key cannot be loaded together: {_why(e)}") from None
    except OSError as e:
        raise TlsConfigError("cert_file", f"cannot load {cert}: {_why(e)}") from None


def files_digest(tls: ListenTls | UpstreamTls | None, resolve: Resolve) -> str:
    """A digest of the TLS files' contents: a reload keeps what it built from them (an upstream's warm
    connections, the listener's context) only while they are unchanged."""
    if tls is None:
        return ""
    h = hashlib.sha256()
    for p in (getattr(tls, "ca_file", None), getattr(tls, "client_ca_file", None), tls.cert_file, tls.key_file):
        if p:
            try:
                h.update(resolve(p).read_bytes())
            except OSError:
                h.update(b"\0unreadable")
        h.update(b"\0")
    return h.hexdigest()


def _why(e: Exception) -> str:
    if isinstance(e, ssl.SSLError):
        return e.reason or type(e).__name__
    return getattr(e, "strerror", None) or type(e).__name__
