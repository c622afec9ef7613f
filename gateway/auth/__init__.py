"""Who is calling: JWT or API key → Principal (see ``authenticator.Authenticator``)."""

from gateway.auth.errors import AuthError
from gateway.auth.principal import Principal

__all__ = ["AuthError", "Principal"]
