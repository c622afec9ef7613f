"""The one error auth raises."""

from __future__ import annotations


class AuthError(Exception):
    """The caller is not authenticated. ``str(e)`` is a stable, value-free reason for logs.

    The reason never contains the token, the key, or a claim value: only what kind of check failed.
    """

    code = "unauthorized"
