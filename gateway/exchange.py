"""The per-request record: every stage of the data path fills in its own slot.

One ``Exchange`` lives for one request. It is the only place the request's sensitive values and its
placeholder map live, and it is what the audit record is built from (values never, fingerprints only).
"""

from __future__ import annotations

import time
from typing import Any


class Exchange:
    """What is known about one request, stage by stage."""

    __slots__ = (
        "request_id", "started", "endpoint", "dialect", "principal", "body", "payload", "model",
        "stream", "level", "segments", "findings", "decision", "pmap", "route", "upstream_status",
        "upstream_latency_ms", "outcome", "bytes_in", "bytes_out", "error", "leaks", "extra",
        "marks", "traceparent", "trace",
    )

    def __init__(self, request_id: str, endpoint: str, dialect: str):
        self.request_id = request_id
        """Echoed as X-Request-Id and in the audit record."""
        self.started = time.monotonic()
        self.endpoint = endpoint
        """The proxied path, e.g. ``/v1/chat/completions``."""
        self.dialect = dialect
        """The caller's dialect: ``openai`` or ``anthropic``; errors are shaped in it."""
        self.principal: Any = None
        """auth: the Principal."""
        self.body = b""
        """server: the raw request body."""
        self.payload: Any = None
        """dialect: the parsed JSON body."""
        self.model: str | None = None
        self.stream = False
        self.level = "internal"
        """Data classification: public|internal|confidential|restricted|secret (may only be raised)."""
        self.segments: list = []
        """dialect: the text segments to inspect, with their JSON paths."""
        self.findings: list = []
        """inspect: one list of Findings per segment."""
        self.decision: Any = None
        """policy: the Decision (route, actions, rules, revision, id)."""
        self.pmap: Any = None
        """transform: the per-request placeholder map (never leaves memory)."""
        self.route: Any = None
        """routing: the upstream actually used."""
        self.upstream_status: int | None = None
        self.upstream_latency_ms: float | None = None
        """routing: milliseconds to the upstream's response headers, unrounded (the audit record rounds
        it to the microsecond)."""
        self.outcome = "rejected"
        """forwarded | blocked | upstream_error | client_abort | rejected."""
        self.bytes_in = 0
        self.bytes_out = 0
        self.error: str | None = None
        """A stable error code when the request failed (never a value)."""
        self.leaks = 0
        """restore: sensitive values in the answer that the caller did not send."""
        self.extra: dict = {}
        self.marks: list[tuple[str, int]] = []
        """server: ``(stage, time.time_ns())`` appended as the request passes each stage: "start" (head
        parsed), "auth", "body", "inspect", "decide", "transform", "upstream_sent", "upstream_headers",
        "done" (the upstream pair repeats per try). Tracing turns them into spans after the request."""
        self.traceparent: str | None = None
        """server: the incoming W3C ``traceparent`` header, raw (None if absent); validated by tracing."""
        self.trace: Any = None
        """tracing: the ids chosen for this request's spans (set on first use, only when tracing is on)."""
