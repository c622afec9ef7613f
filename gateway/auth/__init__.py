"""Who is calling: JWT or API key → Principal."""

from gateway.auth.principal import Principal

__all__ = ["Principal"]
