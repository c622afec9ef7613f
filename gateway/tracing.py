"""Optional OpenTelemetry traces, emitted after the request from the stage marks on its Exchange.

The data path never opens a span: it appends ``(stage, time.time_ns())`` to ``Exchange.marks`` and,
when it forwards, asks ``upstream_traceparent(ex)`` for the header to send. After the audit record,
``emit(ex)`` turns the marks into finished spans with explicit ids and times and hands them to a
``BatchSpanProcessor``, whose thread encodes and exports them (OTLP over HTTP/protobuf) off the event
loop. So tracing costs nothing when off (``enabled`` is False, and the OpenTelemetry SDK is never
imported) and, when on, a few object constructions per sampled request.

The trace of one request::

    soberana.request   SERVER  child of the caller's traceparent when it is valid
      auth, body, inspect, decide, transform        one INTERNAL span per stage mark
      forward          CLIENT  one per upstream try; its id is the parent id sent upstream

Attributes name the request, the route, the policy revision, the decision and the COUNT of findings
per category: never a value, a detector match or a credential. Strings the client chose (request id,
model, subject) are taken from the audit record, which already replaced any that look like personal
data by a keyed fingerprint; without a record only plain identifiers are kept.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from typing import Any

log = logging.getLogger("soberana.tracing")

ERROR_OUTCOMES = frozenset(("blocked", "rejected", "upstream_error"))
ROOT = "soberana.request"
FORWARD = "forward"
_UPSTREAM = ("upstream_sent", "upstream_headers")

_HEX = frozenset("0123456789abcdef")
_CODE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}\Z")
# Without the audit record, a client's string is kept only when it is a short identifier with no '@'
# and no run of 6+ digits (e-mails, national ids, cards, phones), in which the detectors find nothing.
_LONG_NUMBER = re.compile(r"[0-9](?:[ .\-/]?[0-9]){5,}")
_CLIENT_KEYS = ("soberana.request_id", "gen_ai.request.model", "soberana.error", "soberana.principal.sub",
                "soberana.principal.agency", "soberana.principal.jurisdiction")


def parse_traceparent(header: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, parent_span_id, flags)`` of a valid W3C traceparent, else None.

    Version 00 must be exactly 55 characters; a later version may append fields after a '-'
    (W3C Trace Context, "versioning of traceparent"); version ff and all-zero ids are invalid."""
    if not header:
        return None
    h = header.strip()
    if len(h) < 55 or h[2] != "-" or h[35] != "-" or h[52] != "-" or not _HEX.issuperset(h[:2]):
        return None
    version = h[:2]
    if version == "ff" or (version == "00" and len(h) != 55) or (len(h) > 55 and h[55] != "-"):
        return None
    tid, sid, flags = h[3:35], h[36:52], h[53:55]
    if not (_HEX.issuperset(tid) and _HEX.issuperset(sid) and _HEX.issuperset(flags)):
        return None
    trace_id, span_id = int(tid, 16), int(sid, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags, 16)


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """A version-00 W3C traceparent."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def _id(bits: int) -> int:
    # the SDK's RandomIdGenerator does the same; `random` is re-seeded in each forked worker
    while True:
        n = random.getrandbits(bits)
        if n:
            return n


class TraceIds:
    """The ids of one request's spans, chosen before any of them is emitted."""

    __slots__ = ("trace_id", "root_id", "parent", "sampled", "forward_ids")

    def __init__(self, trace_id: int, root_id: int, parent: tuple[int, int] | None, sampled: bool):
        self.trace_id = trace_id
        self.root_id = root_id
        self.parent = parent
        """``(span_id, flags)`` of the caller's span when its traceparent was valid."""
        self.sampled = sampled
        self.forward_ids: list[int] = []
        """One span id per upstream try, in order."""


def trace_ids(ex: Any, sample_ratio: float) -> TraceIds:
    """The request's TraceIds, made on first use: the incoming trace continued (and its sampled flag
    followed) when ``ex.traceparent`` is valid, else a new trace kept with probability ``sample_ratio``
    (the SDK's ``ParentBased(TraceIdRatioBased(ratio))`` rule, on the low 64 bits of the trace id)."""
    ids = ex.trace
    if ids is None:
        incoming = parse_traceparent(ex.traceparent)
        if incoming is not None:
            trace_id, span_id, flags = incoming
            ids = TraceIds(trace_id, _id(64), (span_id, flags), bool(flags & 1))
        else:
            trace_id = _id(128)
            bound = round(sample_ratio * (1 << 64))
            ids = TraceIds(trace_id, _id(64), None, (trace_id & 0xFFFFFFFFFFFFFFFF) < bound)
        ex.trace = ids
    return ids


def _clean(value: Any) -> str | None:
    """A client-chosen string kept on a span only if the audit would keep it as it is (and without any
    6-digit run: spans leave the gateway's own records, so they are stricter)."""
    if not isinstance(value, str) or _LONG_NUMBER.search(value):
        return None
    from gateway.audit.record import judged_safe

    return value if judged_safe(value) else None


_CODES: dict[str, None] = {}  # strings that passed _code: endpoints, outcomes, rule ids repeat


def _code(value: Any) -> str | None:
    """A string the gateway made (or the audit record judged), checked for shape only."""
    if value.__class__ is not str:
        return None
    if value in _CODES:
        return value
    if not _CODE.match(value):
        return None
    if len(_CODES) >= 4096:
        _CODES.clear()
    _CODES[value] = None
    return value


def attributes(ex: Any, record: dict | None = None) -> dict[str, Any]:
    """The root span's attributes: identifiers, route, policy and finding counts, never a value.

    ``record`` is the request's audit record (``gateway.audit.record.build_record``): the strings the
    client chose are taken from it, as the audit record judged them. Without it they are kept only when
    plainly not personal data (see ``_clean``)."""
    a: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value is not None:
            a[key] = value

    if record is not None:  # the client's strings as the audit record judged them
        principal = record.get("principal") or {}
        client = (record.get("request_id"), record.get("model"), record.get("error"),
                  principal.get("sub"), principal.get("agency"), principal.get("jurisdiction"))
        keep = _code
    else:
        p = ex.principal
        client = (ex.request_id, ex.model, ex.error, getattr(p, "sub", None), getattr(p, "agency", None),
                  getattr(p, "jurisdiction", None))
        keep = _clean
    for key, value in zip(_CLIENT_KEYS, client):
        put(key, keep(value))
    put("soberana.endpoint", _code(ex.endpoint))
    put("soberana.dialect", _code(ex.dialect))
    put("soberana.outcome", _code(ex.outcome))
    put("soberana.level", _code(ex.level))
    d = ex.decision
    if d is not None:
        put("soberana.decision.id", _code(getattr(d, "decision_id", None)))
        put("soberana.policy.revision", _code(getattr(d, "policy_revision", None)))
        put("soberana.destination", _code(getattr(d, "destination", None)))
        rules = getattr(d, "rules", None)
        if rules:
            a["soberana.rules"] = [r for r in rules if _code(r)]
    if ex.route is not None:  # the upstream used
        up = getattr(ex.route, "cfg", ex.route)
        put("soberana.route", _code(getattr(up, "name", None)))
        put("soberana.residency", _code(getattr(up, "residency", None)))
    elif d is not None and getattr(d, "route", None) is not None:  # decided, never forwarded
        put("soberana.route", _code(getattr(d.route, "upstream", None)))
        put("soberana.residency", _code(getattr(d.route, "residency", None)))
    if ex.upstream_status is not None:
        a["soberana.upstream.status"] = int(ex.upstream_status)
    total = 0
    for found in ex.findings or ():
        for f in found or ():
            key = "soberana.findings." + (_code(getattr(f, "category", None)) or "other")
            a[key] = a.get(key, 0) + 1
            total += 1
    a["soberana.findings.total"] = total
    if ex.leaks:
        a["soberana.leaks"] = int(ex.leaks)
    a["soberana.bytes_in"] = int(ex.bytes_in or 0)
    a["soberana.bytes_out"] = int(ex.bytes_out or 0)
    return a


def plan(marks: list[tuple[str, int]]) -> tuple[list[tuple[str, int, int]], list[tuple[int, int, list[tuple[str, int]]]]]:
    """From the marks: ``stages`` as ``(name, start_ns, end_ns)`` (each stage runs from the previous
    mark to its own) and ``tries`` as ``(start_ns, end_ns, events)``, one per "upstream_sent".

    Tries are contiguous: the first starts at the mark before it (connect and send), a retry at its own
    "upstream_sent", and each ends where the next begins (so a hung try holds its time) or at the last
    mark ("done": the answer relayed). "upstream_headers" is an event of its try."""
    stages: list[tuple[str, int, int]] = []
    sent: list[int] = []
    headers: list[int] = []
    first_start = None
    prev = marks[0][1]
    for name, t in marks[1:]:
        if name == "upstream_sent":
            if first_start is None:
                first_start = prev
            sent.append(t)
        elif name == "upstream_headers":
            headers.append(t)
        elif name != "done":
            stages.append((name, prev, t))
        prev = t
    end = marks[-1][1]
    tries = []
    for i, t_sent in enumerate(sent):
        start = first_start if i == 0 else t_sent
        stop = sent[i + 1] if i + 1 < len(sent) else end
        events = [("upstream_sent", t_sent)] + [("upstream_headers", h) for h in headers if t_sent <= h <= stop]
        tries.append((start, max(stop, start), events[:2]))
    return stages, tries


class Tracing:
    """Per-request traces for one worker; a disabled instance does nothing and imports nothing."""

    enabled: bool = False
    """True when spans are exported; the data path may skip every tracing call when it is False."""

    def __init__(self, sample_ratio: float = 1.0, processor: Any = None, resource: Any = None):
        """Use ``from_config``; tests pass their own span processor (e.g. a SimpleSpanProcessor over an
        InMemorySpanExporter)."""
        self.enabled = processor is not None
        self.sample_ratio = sample_ratio
        self._processor = processor
        self._resource = resource
        self._sdk: Any = None
        if self.enabled:
            self._sdk = _Sdk()

    @classmethod
    def from_config(cls, cfg: Any, worker: int = 0) -> Tracing:
        """From the config's ``tracing`` section: a disabled instance when it is off, or when the `otel`
        extra is not installed (then one warning says so)."""
        if cfg is None or not cfg.enabled:
            return cls()
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            log.warning("tracing.enabled is set but the OpenTelemetry packages are missing "
                        "(pip install 'soberana[otel]'); traces are off")
            return cls()
        from gateway import __version__

        resource = Resource.create({
            "service.name": cfg.service_name,
            "service.version": __version__,
            "service.instance.id": f"{socket.gethostname()}-{worker}",
        })
        exporter = OTLPSpanExporter(endpoint=cfg.otlp_endpoint, headers=dict(cfg.headers) or None)
        return cls(cfg.sample_ratio, BatchSpanProcessor(exporter), resource)

    def upstream_traceparent(self, ex: Any) -> str | None:
        """The ``traceparent`` header for the next upstream try: the request's trace id and the span id
        of this try's "forward" span (chosen now, emitted later). None when tracing is off."""
        if not self.enabled:
            return None
        ids = trace_ids(ex, self.sample_ratio)
        span_id = _id(64)
        ids.forward_ids.append(span_id)
        return format_traceparent(ids.trace_id, span_id, ids.sampled)

    def emit(self, ex: Any, record: dict | None = None) -> None:
        """Export the request's spans (once, after its audit record; pass the record so client-chosen
        strings are taken as it judged them). Never raises: tracing must not fail a request."""
        if not self.enabled or not ex.marks:
            return
        try:
            ids = trace_ids(ex, self.sample_ratio)
            if ids.sampled:
                for span in self._spans(ex, ids, attributes(ex, record)):
                    self._processor.on_end(span)
        except Exception as e:  # noqa: BLE001 - by type only: a message could quote a value
            log.error("trace of request %s not emitted (%s)", _clean(ex.request_id), type(e).__name__)

    def _spans(self, ex: Any, ids: TraceIds, attrs: dict[str, Any]) -> list:
        sdk = self._sdk
        marks = ex.marks
        stages, tries = plan(marks)
        ctx = sdk.context(ids.trace_id, ids.root_id)
        parent = sdk.remote(ids.trace_id, *ids.parent) if ids.parent else None
        attrs["soberana.tries"] = len(tries)
        status = sdk.error(attrs.get("soberana.error")) if ex.outcome in ERROR_OUTCOMES else sdk.UNSET
        common = {"resource": self._resource, "instrumentation_scope": sdk.scope}
        spans = [sdk.span(ROOT, ctx, parent, sdk.SERVER, marks[0][1], marks[-1][1], attrs, (), status, common)]
        for name, start, end in stages:
            spans.append(sdk.span(name, sdk.context(ids.trace_id, _id(64)), ctx, sdk.INTERNAL, start, end,
                                  None, (), sdk.UNSET, common))
        forward_ids = ids.forward_ids
        while len(forward_ids) < len(tries):  # a try the data path did not ask a header for
            forward_ids.append(_id(64))
        last = len(tries) - 1
        for i, (start, end, events) in enumerate(tries):
            a: dict[str, Any] = {"soberana.try": i}
            if i == last:
                if "soberana.route" in attrs:
                    a["soberana.route"] = attrs["soberana.route"]
                if ex.upstream_status is not None:
                    a["http.response.status_code"] = int(ex.upstream_status)
            spans.append(sdk.span(FORWARD, sdk.context(ids.trace_id, forward_ids[i]), ctx, sdk.CLIENT, start, end,
                                  a, [sdk.event(n, t) for n, t in events], sdk.UNSET, common))
        return spans

    def shutdown(self) -> None:
        """Export what is queued and stop the exporter thread (blocking)."""
        if self._processor is not None:
            self._processor.shutdown()
            self._processor = None
            self.enabled = False

    async def close(self) -> None:
        """``shutdown`` off the event loop (the last export may wait on the collector)."""
        if self._processor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.shutdown)


class _Sdk:
    """The few SDK names ``emit`` uses, imported only when tracing is on."""

    def __init__(self):
        from opentelemetry import trace as api
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from gateway import __version__

        self.api = api
        self.Event = Event
        self.ReadableSpan = ReadableSpan
        self.scope = InstrumentationScope("soberana", __version__)
        self.SERVER, self.CLIENT, self.INTERNAL = api.SpanKind.SERVER, api.SpanKind.CLIENT, api.SpanKind.INTERNAL
        self.UNSET = api.Status(api.StatusCode.UNSET)
        self._sampled = api.TraceFlags(api.TraceFlags.SAMPLED)

    def context(self, trace_id: int, span_id: int):
        return self.api.SpanContext(trace_id, span_id, is_remote=False, trace_flags=self._sampled)

    def remote(self, trace_id: int, span_id: int, flags: int):
        return self.api.SpanContext(trace_id, span_id, is_remote=True, trace_flags=self.api.TraceFlags(flags & 0xFF))

    def error(self, code: str | None):
        return self.api.Status(self.api.StatusCode.ERROR, _code(code))

    def event(self, name: str, t: int):
        return self.Event(name, None, t)

    def span(self, name, ctx, parent, kind, start, end, attrs, events, status, common):
        return self.ReadableSpan(name, context=ctx, parent=parent, kind=kind, start_time=start, end_time=end,
                                 attributes=attrs, events=events, status=status, **common)
