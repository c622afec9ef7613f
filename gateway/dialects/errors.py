"""Error shapes of both dialects, so that the official SDKs raise their proper exception classes.

OpenAI:    ``{"error": {"message", "type", "param": null, "code"}}``
Anthropic: ``{"type": "error", "error": {"type", "message", "code"}}`` (``code`` is Soberana's
stable machine-readable reason, e.g. ``policy_blocked``; Anthropic clients ignore unknown fields).

Messages are written by the gateway itself and never contain request text.
"""

from __future__ import annotations

import orjson

from gateway.dialects.sse import format_event

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 408: "timeout_error", 409: "conflict_error", 413: "invalid_request_error",
                 422: "invalid_request_error", 429: "rate_limit_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 408: "timeout_error", 413: "request_too_large",
                    422: "invalid_request_error", 429: "rate_limit_error", 529: "overloaded_error"}


class DialectError(ValueError):
    """A request body that is not what its endpoint expects. The message names the JSON path, never a value."""

    def __init__(self, message: str, code: str = "invalid_request", status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


def error_type(dialect: str, status: int) -> str:
    """The provider's error ``type`` for an HTTP status."""
    table = _ANTHROPIC_TYPES if dialect == "anthropic" else _OPENAI_TYPES
    if status in table:
        return table[status]
    if status >= 500:
        return "api_error" if dialect == "anthropic" else "server_error"
    return "invalid_request_error"


def error_object(dialect: str, status: int, code: str, message: str) -> dict:
    """The error as a dict in the dialect's shape."""
    if dialect == "anthropic":
        return {"type": "error", "error": {"type": error_type(dialect, status), "message": message, "code": code}}
    return {"error": {"message": message, "type": error_type(dialect, status), "param": None, "code": code}}


def error_body(dialect: str, status: int, code: str, message: str) -> bytes:
    """The JSON body of an error response in the caller's dialect (``openai`` or ``anthropic``)."""
    return orjson.dumps(error_object(dialect, status, code, message))


def stream_error_event(dialect: str, code: str, message: str) -> bytes:
    """The SSE event that ends a stream with an error, in the caller's dialect.

    Anthropic: ``event: error`` with the error body (the SDK raises ``APIStatusError``). OpenAI:
    ``event: error`` with ``{"error": {...}}`` (the SDK raises ``APIError`` for chat and completions),
    plus ``type``/``code``/``message`` at the top level, the Responses API's ``error`` event shape.
    """
    if dialect == "anthropic":
        body = {"type": "error", "error": {"type": "api_error", "message": message, "code": code}}
    else:
        body = {"type": "error", "code": code, "message": message, "param": None,
                "error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return format_event(orjson.dumps(body).decode(), "error")
