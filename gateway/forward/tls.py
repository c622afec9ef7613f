"""TLS to an upstream: the SSLContext an ``https`` upstream is reached with.

In-country models often sit behind an agency's own certificate authority and accept only callers
with a client certificate (mutual TLS). ``upstreams[].tls`` names those files; without it the
system's trust store is used. Verification and the host name check are always on: there is no
setting that turns them off.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from gateway.config import UpstreamTls


class TlsConfigError(ValueError):
    """A TLS file that cannot be used; ``field`` is the key of ``upstreams[].tls`` at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def client_context(tls: UpstreamTls | None, resolve: Callable[[str], Path]) -> ssl.SSLContext:
    """The context for one ``https`` upstream: TLS 1.2 or later, the peer's certificate verified
    against ``tls.ca_file`` (or the system's CAs), and ``tls.cert_file`` presented when set.
    ``resolve`` turns a configured path into a real one (relative to the config file).
    Raises ``TlsConfigError`` naming the field; messages never quote a file's content."""
    if tls is None:
        ctx = ssl.create_default_context()
    else:
        ca = str(resolve(tls.ca_file)) if tls.ca_file else None
        try:
            ctx = ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise TlsConfigError("ca_file", f"cannot load CA certificates from {ca}: {_why(e)}") from None
        if tls.cert_file:
            _load_client_cert(ctx, tls, resolve)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, tls: UpstreamTls, resolve: Callable[[str], Path]) -> None:
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


def files_digest(tls: UpstreamTls | None, resolve: Callable[[str], Path]) -> str:
    """A digest of the TLS files' contents: a reload keeps an upstream's warm connections only while
    its files are unchanged, so a renewed certificate or CA takes effect on SIGHUP."""
    if tls is None:
        return ""
    h = hashlib.sha256()
    for p in (tls.ca_file, tls.cert_file, tls.key_file):
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
