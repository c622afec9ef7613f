"""The proxied endpoints: the data path of DESIGN.md, one request at a time.

auth → body → dialect → inspect → policy → transform → forward → restore → audit. Each stage either
continues or ends the request with an error in the caller's dialect (``Reject``); whatever happens,
the ``finally`` writes one audit record and the metrics. Nothing is forwarded unless every stage
before it succeeded (fail closed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from typing import NoReturn
from urllib.parse import unquote

import orjson

from gateway import fastjson, metrics
from gateway.app import State
from gateway.audit.record import build_record, client_string
from gateway.audit.writer import AuditUnavailable
from gateway.auth.authenticator import AuthError
from gateway.dialects import COUNTS, ENDPOINTS, extract_segments, request_model, request_stream, write_segments
from gateway.dialects.answers import StreamRewriter, map_answer_texts, map_leaves
from gateway.dialects.errors import DialectError, error_body, stream_error_event
from gateway.dialects.translate import StreamTranslator, translate_request, translate_response
from gateway.exchange import Exchange
from gateway.forward.client import UpstreamError
from gateway.inspect import Finding, scan
from gateway.inspect.texts import scan_texts
from gateway.policy import Candidate, decide
from gateway.ratelimit import estimate_tokens, retry_after
from gateway.server.http import Request, Response
from gateway.transform.apply import apply
from gateway.transform.leaks import scan_answer, sent_values
from gateway.transform.pseudonymize import PlaceholderMap
from gateway.transform.restore import StreamRestorer, restore_text

log = logging.getLogger("soberana.proxy")

LEVELS = ("public", "internal", "confidential", "restricted", "secret")
PASS_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")
MAX_ATTEMPTS = 3
LEAK_WINDOW = 256 * 1024
"""How much of a streamed answer is kept to scan for leaks at the end (the stream is not held back)."""


def _fresh_ids() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = os.urandom(8).hex(), itertools.count(1)


_fresh_ids()
os.register_at_fork(after_in_child=_fresh_ids)  # pre-forked workers never share a sequence


def _new_id() -> str:
    """A request id: 32 hex digits, a random prefix per process then a counter — unique without a
    getrandom() system call per request (which costs microseconds in a virtual machine)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class Reject(Exception):
    """End the request with this error, in the caller's dialect."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers


_NO_RETRY = {"x-should-retry": "false"}
"""On an answer that the same request would get again (its inspection failed, it can never fit the
rate limit): the SDKs retry 429s and 5xx by default, and obey this header not to."""


def _id_headers(ex: Exchange) -> list[tuple[str, str]]:
    """The request id as the caller's SDK reads it: ``X-Request-Id`` (the OpenAI SDK's ``request_id``),
    and for Anthropic callers ``request-id`` too, the header the Anthropic SDK reads into the
    ``request_id`` of its answers and errors (without it, ``None``: the id to quote to the operator lost)."""
    if ex.dialect == "anthropic":
        return [("X-Request-Id", ex.request_id), ("request-id", ex.request_id)]
    return [("X-Request-Id", ex.request_id)]


def _error(dialect: str, status: int, code: str, message: str, headers: list | None = None) -> Response:
    return Response(status, error_body(dialect, status, code, message), headers)


def _dialect_of_request(request: Request) -> str:
    if request.path in ENDPOINTS:
        return ENDPOINTS[request.path]
    return "anthropic" if "x-api-key" in request.headers or "anthropic-version" in request.headers else "openai"


async def not_found(request: Request, state: State) -> Response:
    """Any path that is not a proxied or ops endpoint: nothing uninspected passes. The message says so:
    an SDK call to an endpoint the gateway does not carry (files, batches, moderations, a stored
    response) reads as a gateway without it, not as a wrong base URL."""
    return _error(_dialect_of_request(request), 404, "not_found", NOT_PROXIED)


NOT_PROXIED = ("no such endpoint: this gateway passes only the endpoints whose requests it inspects "
               "(" + ", ".join(["GET /v1/models", *(f"POST {p}" for p in ENDPOINTS)]) + ")")


def http_error(holder):
    """The server's error responder (malformed HTTP, a body too large or too slow, a handler crash), in
    the caller's dialect. A proxied request refused here still gets its audit record."""

    def respond(request: Request | None, status: int, code: str, message: str) -> Response:
        if request is None:
            return _error("openai", status, code, message)
        dialect = _dialect_of_request(request)
        if request.path in ENDPOINTS and status in (408, 413):
            ex = Exchange(_new_id(), request.path, dialect)
            ex.error = code
            _finish(holder.current, ex)
            return _error(dialect, status, code, message, _id_headers(ex))  # the id of its record
        return _error(dialect, status, code, message)

    return respond


def _level(request: Request) -> str:
    raw = request.headers.get("x-data-classification")
    if raw is None:
        return "internal"
    level = raw.strip().lower()
    if level not in LEVELS:
        raise Reject(400, "invalid_request", f"X-Data-Classification must be one of {', '.join(LEVELS)}")
    # the header may raise the level, never lower it below the default
    return level if LEVELS.index(level) > LEVELS.index("internal") else "internal"


def _check_passed_headers(request: Request) -> None:
    """The caller's headers the upstream receives (PASS_HEADERS) are text the provider reads, as the
    body is, but cannot be rewritten: one that holds a finding is refused, not carried past the policy.
    No API version or beta name holds personal data; the value is not quoted back."""
    get = request.headers.get
    for name in PASS_HEADERS:
        v = get(name)
        if v is not None and scan(v):
            raise Reject(400, "invalid_request", f"the {name} header holds data the gateway does not forward")


def _inspect(ex: Exchange) -> list[Finding]:
    """Findings per segment (in ex.findings) and the flat list the policy engine decides on. JSON
    escapes read as separators, values split across segments found in each (``scan_texts``; their
    whole values are kept in ``ex.extra["split"]`` for the answer's leak check)."""
    segments = ex.segments
    per, split = scan_texts([s.text if s.kind != "uninspectable" else "" for s in segments], scan)
    if split:
        ex.extra["split"] = split
    flat: list[Finding] = []
    for seg, found in zip(segments, per):
        if seg.kind == "uninspectable":
            found.append(Finding("intl.uninspectable", "uninspectable", None, 0, 0))
        flat.extend(found)
    ex.findings = per
    return flat


def _split(actions: list[str], per: list[list[Finding]]) -> list[list[str]]:
    out, i = [], 0
    for found in per:
        out.append(actions[i:i + len(found)])
        i += len(found)
    return out


def _upstream_body(state: State, ex: Exchange, decision, target, attempt: int) -> tuple[str, bytes]:
    """The body to send to the chosen upstream: transformed, model renamed, translated if needed."""
    route = decision.route
    # this try's placeholders only: a retry whose upstream gets the values as they are restores nothing
    ex.pmap = None
    if decision.actions:
        actions = _split(decision.actions, ex.findings)
        changed = any(a != "allow" for acts in actions for a in acts)
        if any(a == "block" for acts in actions for a in acts):
            raise Reject(403, "policy_blocked", "blocked by policy")  # decide() never routes a block; defence in depth
    else:  # nothing found: nothing to change
        changed = False
    if not changed and route.model == ex.model and target.cfg.dialect == ex.dialect:
        # nothing to change: the body as the gateway read and inspected it. Not the caller's bytes:
        # they can hold more than the parsed body (the first of two equal keys, which no parser here
        # keeps and so was never inspected) and an upstream may read it, or at least log it.
        return ex.endpoint, orjson.dumps(fastjson.loads(ex.body) if attempt else ex.payload)
    payload = fastjson.loads(ex.body) if attempt else ex.payload  # (the first try's was written into)
    if changed:
        ex.pmap = PlaceholderMap()
        texts = [s.text for s in ex.segments]
        for seg, acts in zip(ex.segments, actions):
            if seg.kind == "uninspectable" and any(a != "allow" for a in acts):
                raise Reject(403, "policy_blocked", "content the gateway cannot inspect may not go to this destination")
        new = apply(texts, ex.findings, actions, state.ring, ex.principal.jurisdiction, ex.pmap)
        write_segments(payload, ex.segments, new)
        for acts in actions:
            for a in acts:
                metrics.action(a).inc()
    payload["model"] = route.model
    endpoint = ex.endpoint
    if target.cfg.dialect != ex.dialect:
        endpoint, payload = translate_request(ex.dialect, target.cfg.dialect, endpoint, payload, target.cfg)
        # the stop sequences as sent: an answer that says it ended on one of them says so to the caller
        stops = payload.get("stop")
        ex.extra["stops"] = tuple(stops) if isinstance(stops, list) else ()
    return endpoint, orjson.dumps(payload)


def _headers(request: Request, target) -> list[tuple[bytes, bytes]]:
    h = [(b"content-type", b"application/json")]
    get = request.headers.get
    for name in PASS_HEADERS:
        v = get(name)
        if v is not None:
            h.append((name.encode(), v.encode("latin-1")))
    if target.cfg.dialect == "anthropic" and get("anthropic-version") is None:
        h.append((b"anthropic-version", b"2023-06-01"))
    h.extend(target.auth_headers)
    return h


def _leak_check(state: State, ex: Exchange, text: str) -> str:
    """Sensitive values in an answer the caller did not send: counted; the caller's policy for its own
    jurisdiction decides what to do (hash/redact/block are applied, the rest only counted)."""
    leaks = scan_answer(text, ex.extra.get("sent", set()))
    if not leaks:
        return text
    ex.leaks += len(leaks)
    for f in leaks:
        metrics.leak(f.detector).inc()
    home = Candidate("caller", ex.principal.jurisdiction, "")
    d = decide(state.policies, ex.principal, leaks, [home], ex.level)
    acts = [a if a in ("hash", "redact") else ("redact" if a == "block" else "allow") for a in
            (d.actions if d.outcome == "route" else ["redact"] * len(leaks))]
    if all(a == "allow" for a in acts):
        return text
    return apply([text], [leaks], [acts], state.ring, ex.principal.jurisdiction, PlaceholderMap())[0]


def _upstream_error_body(state: State, ex: Exchange, raw: bytes) -> bytes:
    """An upstream's 4xx body, relayed to a caller of its own dialect, treated as an answer: upstreams
    quote the request back in error messages (placeholders are restored) and may name values the
    caller never sent (the leak check counts them and applies the caller's policy). Its shape is the
    upstream's, so every string is treated, whatever the field; a body that is not JSON, as text."""
    def fix(text: str) -> str:
        return _error_text(state, ex, text)

    try:
        body = fastjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace")
        new = fix(text)
        return raw if new == text else new.encode()
    new = map_leaves(body, fix)  # every string value; keys are the upstream's field names
    return raw if new == body else orjson.dumps(new)  # unchanged: the upstream's own bytes


def _error_text(state: State, ex: Exchange, text: str) -> str:
    """A text of an upstream's error, as the caller may read it: placeholders restored, leak-checked."""
    pmap = ex.pmap
    new = restore_text(text, pmap, allow_urls=False) if pmap is not None else text
    return _leak_check(state, ex, new)


def _translated_error_message(state: State, ex: Exchange, raw: bytes, status: int) -> str:
    """The message of an other-dialect upstream's 4xx, for the caller's dialect's error body: what the
    upstream said (``error.message`` in both dialects; ``message`` or a string ``error`` in some
    OpenAI-compatible servers), treated as ``_upstream_error_body`` treats it, else the status alone."""
    try:
        body = fastjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    msg = None
    if isinstance(body, dict):
        err = body.get("error")
        msg = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else body.get("message")
    if not isinstance(msg, str) or not msg.strip():
        return f"upstream answered {status}"
    return _error_text(state, ex, msg)


_RETRY_HEADERS = (("Retry-After", b"retry-after"), ("Retry-After-Ms", b"retry-after-ms"),
                  ("X-Should-Retry", b"x-should-retry"))
"""An upstream's word on retrying the 4xx it answered (a 429 above all), relayed with it: the SDKs wait
as the provider asks (without, they retried on their own short schedule into the same limit)."""
_RETRY_VALUE = re.compile(rb"[0-9]{1,10}(?:\.[0-9]{1,6})?|true|false|[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} GMT")
"""What those headers hold (seconds, milliseconds, a yes or no, an HTTP date): nothing else an upstream
puts there reaches the caller unseen (headers are not leak-checked as bodies are)."""


async def _relay_json(state: State, ex: Exchange, resp, target, route_headers: list) -> Response:
    # read whole (it is inspected and restored): bounded, or a hostile upstream could fill the memory
    raw = await resp.read(state.config.limits.max_answer_bytes)
    status = resp.status
    if status >= 400:  # (read before the connection goes back to the pool, to its next response)
        route_headers = route_headers + [(n, v.decode("latin-1")) for n, b in _RETRY_HEADERS
                                         if (v := resp.header(b)) is not None and _RETRY_VALUE.fullmatch(v)]
    resp.release()
    key = target.key
    if key is not None and key in raw:
        # an upstream that quotes the key it was sent (some servers' 401s do; a compromised one may
        # anywhere): the provider key is the gateway's, never the caller's, whatever its shape
        raw = raw.replace(key, b"[REDACTED:API_KEY]")
    if status >= 400:
        if target.cfg.dialect != ex.dialect:
            # the upstream's own words (why the request was refused), in the caller's dialect's shape
            raw = error_body(ex.dialect, status, "upstream_error", _translated_error_message(state, ex, raw, status))
        else:
            raw = _upstream_error_body(state, ex, raw)
        ex.outcome = "forwarded"
        return Response(status, raw, route_headers)
    try:
        answer = fastjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Reject(502, "upstream_error", "upstream answered with a body that is not JSON") from None
    if not isinstance(answer, dict):  # every dialect answers with an object; anything else is no answer
        raise Reject(502, "upstream_error", "upstream answered with JSON that is not an object")
    translated = target.cfg.dialect != ex.dialect
    if translated:
        try:
            answer = translate_response(ex.dialect, target.cfg.dialect, answer, ex.model, ex.extra.get("stops", ()))
        except Exception as e:
            # a shape the upstream's dialect does not have: its failure, not a 500 of the gateway's own
            log.warning("answer from %s could not be translated: %s", target.cfg.name, type(e).__name__)
            raise Reject(502, "upstream_error", "upstream answered with a body of an unexpected shape") from None
    pmap = ex.pmap
    changed = False

    def fix(text: str, kind: str) -> str:
        nonlocal changed
        new = restore_text(text, pmap, allow_urls=False) if pmap is not None and kind == "text" else text
        new = _leak_check(state, ex, new)
        changed = changed or new != text
        return new

    map_answer_texts(ex.dialect, ex.endpoint, answer, fix)
    ex.outcome = "forwarded"
    # nothing restored or redacted: the upstream's own bytes go back as they are (no re-serialization)
    body = orjson.dumps(answer) if changed or translated else raw
    ex.bytes_out = len(body)
    return Response(status, body, route_headers)


class _LeakWindow:
    """The start of a streamed answer, kept for the leak scan: each channel's text (a choice's content,
    a tool call's arguments, a content block) apart, the channels on lines of their own in the order
    they began. Joined in the order released, the alternating deltas of ``n`` > 1 choices made
    "111Não.444 sei…" of a CPF in one of them: a leak not counted (or one made of two choices' pieces).

    Its size is counted as it grows: summing the pieces on every delta made a stream of many small
    deltas quadratic (20 000 two-character deltas cost 10 s of the event loop)."""

    __slots__ = ("channels", "size")

    def __init__(self) -> None:
        self.channels: list[list[str]] = []
        self.size = 0

    def channel(self) -> list[str]:
        """A new channel: the list its pieces go to (``add(..., channel=)``)."""
        if self.channels:
            self.size += 1  # (the line break before it)
        ch: list[str] = []
        self.channels.append(ch)
        return ch

    def add(self, text: str, always: bool = False, channel: list[str] | None = None) -> None:
        """Keep ``text`` of ``channel`` (None: a channel of its own) while the window is not full
        (``always``: whatever its fill)."""
        if always or self.size < LEAK_WINDOW:
            (self.channel() if channel is None else channel).append(text)
            self.size += len(text)

    def text(self) -> str:
        return "\n".join(["".join(ch) for ch in self.channels])


class _LeakTap:
    """A stream channel's text filter: restore placeholders, keep a window of the answer for the leak scan."""

    __slots__ = ("inner", "seen", "chan")

    def __init__(self, inner, seen: _LeakWindow):
        self.inner, self.seen = inner, seen
        self.chan: list[str] | None = None

    def feed(self, text: str) -> str:
        out = self.inner.feed(text) if self.inner else text
        if out:
            if self.chan is None:
                self.chan = self.seen.channel()
            self.seen.add(out, channel=self.chan)
        return out

    def flush(self) -> str:
        out = self.inner.flush() if self.inner else ""
        if out:
            if self.chan is None:
                self.chan = self.seen.channel()
            self.seen.add(out, always=True, channel=self.chan)
        return out


async def _relay_stream(request: Request, ex: Exchange, resp, target, route_headers: list) -> None:
    opts = ex.payload.get("stream_options")
    usage = isinstance(opts, dict) and opts.get("include_usage") is True  # the caller's own request's
    translator = (StreamTranslator(ex.dialect, target.cfg.dialect, ex.model, include_usage=usage,
                                   stops=ex.extra.get("stops", ())) if target.cfg.dialect != ex.dialect else None)
    seen = _LeakWindow()
    pmap = ex.pmap

    def make_filter(kind: str):
        inner = StreamRestorer(pmap) if pmap is not None and kind == "text" else None
        return _LeakTap(inner, seen)

    key = target.key.decode() if target.key is not None else None

    def on_error(text: str) -> str:
        # an error event is whole (no placeholder split across events), and is scanned with the rest,
        # each string a channel of its own (glued to its neighbours, a CPF followed by "server_error" is no CPF)
        out = restore_text(text, pmap, allow_urls=False) if pmap is not None else text
        if key is not None and key in out:  # quoted by the upstream, as in a JSON error (``_relay_json``)
            out = out.replace(key, "[REDACTED:API_KEY]")
        seen.add(out, always=True)
        return out

    rewriter = StreamRewriter(ex.dialect, ex.endpoint, make_filter, on_error)
    metrics.STREAMS.inc()
    ex.outcome = "forwarded"
    try:
        out = await request.stream(resp.status, route_headers + [("Content-Type", "text/event-stream"),
                                                                 ("Cache-Control", "no-cache")])
        try:
            async for chunk in resp:
                data = translator.feed(chunk) if translator else chunk
                data = rewriter.feed(data)
                if data:
                    ex.bytes_out += len(data)
                    await out.write(data)
            tail = translator.finish() if translator else b""
            data = rewriter.feed(tail) + rewriter.finish() if tail else rewriter.finish()
            if data:
                ex.bytes_out += len(data)
                await out.write(data)
            resp.release()
            if rewriter.ending is None:
                # the body ended cleanly (last chunk, or EOF of an unframed body) but the stream did not:
                # still a failure the caller must see, never a fake normal ending (SPEC section 5)
                await _stream_failed(out, ex, target, "ended before its end")
            elif rewriter.ending == "error":  # the upstream (or the translator) said so in the stream itself
                ex.outcome, ex.error = "upstream_error", "upstream_error"
        except UpstreamError as e:
            resp.release()
            if rewriter.ending is None:
                await _stream_failed(out, ex, target, e.kind)
            elif rewriter.ending == "error":
                ex.outcome, ex.error = "upstream_error", "upstream_error"
            else:
                # the caller already has the whole answer and its normal ending: an error event after it
                # would make the Anthropic SDK raise on a complete message
                log.info("stream from %s broke after its end: %s", target.cfg.name, e.kind)
        except ConnectionResetError:
            raise  # the caller's, below
        except Exception as e:
            # an event the translator or the rewriter could not take (a shape the dialect does not have):
            # the upstream's failure, told like any other, not a stream cut without its error event
            resp.release()
            await _stream_failed(out, ex, target, type(e).__name__)
        await out.end()
    except ConnectionResetError:
        resp.release()  # the caller went away: stop reading the upstream, keep nothing
        ex.outcome, ex.error = "client_abort", "client_abort"
    except asyncio.CancelledError:  # the drain deadline passed
        resp.release()
        ex.outcome, ex.error = "client_abort", "client_abort"
        raise
    finally:
        metrics.STREAMS.dec()
        if seen.channels:
            leaks = scan_answer(seen.text(), ex.extra.get("sent", set()))
            ex.leaks += len(leaks)
            for f in leaks:
                metrics.leak(f.detector).inc()


async def _stream_failed(out, ex: Exchange, target, why: str) -> None:
    """End a started stream with the caller's error event, and record the upstream's failure."""
    target.failure()
    ex.outcome, ex.error = "upstream_error", "upstream_error"
    log.warning("stream from %s broke: %s", target.cfg.name, why)
    await out.write(stream_error_event(ex.dialect, "upstream_error", "the upstream stream ended abnormally"))


async def handle(request: Request, state: State) -> Response | None:
    """A proxied endpoint (SPEC section 5)."""
    rid = request.headers.get("x-request-id")
    # a client's id is repeated in logs, records, traces and the answer: a value that looks personal
    # (a CPF, an e-mail) goes on as its fingerprint
    rid = client_string(rid, state.ring) if rid else _new_id()
    ex = Exchange(rid, request.path, ENDPOINTS[request.path])
    if state.tracing.enabled:
        ex.traceparent = request.headers.get("traceparent")
        ex.marks.append(("start", time.time_ns()))
    try:
        return await _handle(request, state, ex)
    except Reject as r:
        ex.error = r.code
        if r.code == "policy_blocked":
            ex.outcome = "blocked"
        elif r.code == "upstream_error":
            ex.outcome = "upstream_error"
        # otherwise the outcome stays as set: "rejected", or "upstream_error" when every try failed
        headers = _id_headers(ex)
        if r.headers:
            headers.extend(r.headers.items())
        if ex.decision is not None:
            headers.append(("X-Soberana-Decision", ex.decision.decision_id))
        return _error(ex.dialect, r.status, r.code, r.message, headers)
    except asyncio.CancelledError:  # the drain's deadline passed: the caller's connection is gone already
        ex.outcome, ex.error = "client_abort", "client_abort"
        raise
    finally:
        _finish(state, ex)


def _finish(state: State, ex: Exchange) -> None:
    traced = state.tracing.enabled and bool(ex.marks)  # a request the server refused has no stages to trace
    if traced:
        ex.marks.append(("done", time.time_ns()))
    route = ex.route
    metrics.request_inc(ex.endpoint, route.cfg.name if route is not None else "-",
                        route.cfg.residency if route is not None else "-", ex.outcome)(1)
    if ex.error is not None:  # "rejected" alone lumps 401s, 400s, 404s and 429s together
        metrics.error(ex.error).inc()
    record = None
    try:
        if traced:  # tracing reads the record's cleaned strings
            record = build_record(ex, state.ring)
            state.audit.append(record)
        else:  # built and chained with the other records of this turn of the event loop
            state.audit.record(ex, state.ring)
    except AuditUnavailable:
        log.critical("audit record for request %s could not be queued", ex.request_id)
    except Exception as e:
        log.error("building the audit record failed for request %s: %s", ex.request_id, type(e).__name__)
    if traced:
        state.tracing.emit(ex, record)  # spans from the stage marks, with the audit record's cleaned ids


async def _handle(request: Request, state: State, ex: Exchange) -> Response | None:
    cfg = state.config
    t0 = time.perf_counter()
    # stage marks for tracing, only when tracing is on: off, a mark would still cost a clock read, a
    # tuple and a call (six per request)
    traced = state.tracing.enabled
    marks = ex.marks
    try:
        ex.principal = await state.auth.authenticate(request.headers)
    except AuthError as e:
        log.info("request %s unauthorized: %s", ex.request_id, e)
        raise Reject(401, "unauthorized", "missing or invalid credentials") from None
    if traced:
        marks.append(("auth", time.time_ns()))
    ex.body = request.body  # read whole, under the body size and idle limits, by the server
    ex.bytes_in = len(ex.body)
    try:
        ex.payload = fastjson.loads(ex.body)  # orjson's verdict, msgspec's speed (see gateway.fastjson)
    except orjson.JSONDecodeError:
        raise Reject(400, "invalid_request", "the request body is not valid JSON") from None
    if not isinstance(ex.payload, dict):
        raise Reject(400, "invalid_request", "the request body must be a JSON object")
    try:
        ex.segments = extract_segments(ex.endpoint, ex.payload)
    except DialectError as e:
        raise Reject(e.status, e.code, str(e)) from None
    except Exception:  # any other shape surprise: a clear 400, never a crash
        raise Reject(400, "invalid_request", "unsupported request shape") from None
    # one charge per request, with its token estimate (requests and tokens per agency and per key)
    limiter = state.limiter
    if limiter.enabled:
        # a count generates nothing: one request of the caller's, as the providers charge it (agents
        # count before every turn; charged the tokens counted, they spent the quota twice)
        tokens = 0 if ex.endpoint in COUNTS else estimate_tokens(ex.body, ex.payload)
        retry = await limiter.check(ex.principal, tokens)
        if retry is not None:
            if limiter.never_fits(ex.principal, tokens):
                # waiting cannot help: `x-should-retry: false` keeps the SDKs from waiting out Retry-After
                # (a whole minute) for the same answer, twice with their default retries
                raise Reject(429, "rate_limited", "the request is larger than the token limit per minute and can "
                             "never be served within it", {"Retry-After": retry_after(retry), **_NO_RETRY})
            raise Reject(429, "rate_limited", "rate limit exceeded", {"Retry-After": retry_after(retry)})
    ex.model = request_model(ex.payload)
    ex.stream = request_stream(ex.payload)
    ex.level = _level(request)
    _check_passed_headers(request)
    # only the model's upstreams whose dialect can carry this endpoint (``Registry.by_endpoint``)
    candidates = state.registry.by_endpoint[ex.endpoint].get(ex.model) if ex.model else None
    if not candidates:
        if ex.model and state.registry.models.get(ex.model):
            # none of them can (an Anthropic-only model asked for embeddings): for this endpoint the
            # model does not exist here, as the provider's own 404 for a chat model on /v1/completions.
            # Not a 400 invalid_request: nothing is wrong with the body, the model serves other endpoints
            raise Reject(404, "not_found", f"the requested model is not available for {ex.endpoint} through this gateway")
        raise Reject(404, "not_found", "the requested model is not available through this gateway")
    try:
        flat = _inspect(ex)
    except Exception as e:
        metrics.INSPECTION_ERRORS.inc()
        log.error("inspection failed for request %s: %s", ex.request_id, type(e).__name__)
        if cfg.on_inspection_error != "allow":
            raise Reject(503, "inspection_failed", "the request could not be inspected", _NO_RETRY) from None
        log.critical("on_inspection_error=allow: forwarding request %s uninspected", ex.request_id)
        metrics.FAIL_OPEN.inc()
        ex.findings = [[] for _ in ex.segments]
        flat = []
    if traced:
        marks.append(("inspect", time.time_ns()))
    if flat:
        for f in flat:
            metrics.finding(f.detector).inc()
        ex.extra["sent"] = sent_values([s.text for s in ex.segments], ex.findings, ex.extra.get("split", ()))
    if not state.audit.accepting:  # failing, or so far behind that this request's record could be refused
        raise Reject(503, "audit_unavailable", "the audit log cannot be written; nothing is forwarded")

    tried: set[str] = set()
    reached = False  # some upstream may have received the request (it broke or timed out after it was sent)
    registry = state.registry
    for attempt in range(MAX_ATTEMPTS):
        # (the first try has tried none: the registry's own check, one call less per candidate)
        decision = decide(state.policies, ex.principal, flat, candidates, ex.level,
                          healthy=(lambda n: n not in tried and registry.admit(n)) if tried else registry.admit,
                          decision_id=ex.request_id)
        ex.decision = decision
        if traced:
            marks.append(("decide", time.time_ns()))
        if decision.outcome == "blocked":
            rules = ", ".join(decision.blocked_by) or "policy"
            raise Reject(403, "policy_blocked", f"blocked by policy rule {rules}")
        if decision.outcome != "route":
            if tried:  # the compliant upstreams left were all tried, and failed: that is the answer
                _exhausted(ex, reached)
            raise Reject(503, "no_compliant_upstream", "no compliant upstream is available for this request",
                         {"Retry-After": _reopens(registry, candidates)})
        target = registry.targets[decision.route.upstream]
        try:
            endpoint, body = _upstream_body(state, ex, decision, target, attempt)
        except Reject:
            raise
        except DialectError as e:  # e.g. a part the other dialect cannot carry
            raise Reject(e.status, e.code, str(e)) from None
        except orjson.JSONEncodeError:
            # the parsed body holds JSON types only, strings valid and numbers in range: what the
            # encoder refuses is nesting beyond its 254 levels, which the parser (1024) let in. The
            # caller's error, and the body is refused whole as any other invalid body
            raise Reject(400, "invalid_request", "the request body is nested too deeply (more than 254 levels)") from None
        except Exception as e:
            metrics.INSPECTION_ERRORS.inc()
            log.error("transformation failed for request %s: %s", ex.request_id, type(e).__name__)
            raise Reject(503, "inspection_failed", "the request could not be transformed", _NO_RETRY) from None
        ex.route = target
        if traced:
            marks.append(("transform", time.time_ns()))
        route_headers = _id_headers(ex)
        route_headers += (("X-Soberana-Route", target.cfg.name), ("X-Soberana-Residency", target.cfg.residency),
                          ("X-Soberana-Decision", decision.decision_id))
        if attempt == 0:
            metrics.OVERHEAD_OBSERVER.observe(time.perf_counter() - t0)
        headers = _headers(request, target)
        if traced:
            tp = state.tracing.upstream_traceparent(ex)
            if tp is not None:
                headers.append((b"traceparent", tp.encode()))
            marks.append(("upstream_sent", time.time_ns()))
        sent_at = time.perf_counter()
        try:
            resp = await target.pool.request("POST", endpoint[3:], headers, body)
            if traced:
                marks.append(("upstream_headers", time.time_ns()))
        except UpstreamError as e:
            if traced:
                marks.append(("upstream_headers", time.time_ns()))
            target.failure()
            tried.add(target.cfg.name)
            reached = reached or e.kind != "connect"
            log.warning("upstream %s unreachable (%s), trying the next compliant one", target.cfg.name, e.kind)
            continue
        ex.upstream_status = resp.status
        waited = time.perf_counter() - sent_at
        # the audit encoders write it rounded to the microsecond (round(x, 3), which is idempotent):
        # rounding here too cost a float-to-decimal conversion per request and changed nothing
        ex.upstream_latency_ms = waited * 1000
        target.latency.observe(waited)
        if resp.status >= 500:
            target.failure()
            tried.add(target.cfg.name)
            try:
                await resp.read(cfg.limits.max_answer_bytes)  # (read to keep the connection, not to keep)
            except UpstreamError:
                pass
            resp.release()
            continue
        target.success()
        ctype = resp.header(b"content-type") or b""
        # (a 204 or 304 has no body: relayed as a stream, it would go out with one, and the caller's
        # connection would read the chunked framing as the start of its next response)
        if ex.stream and 200 <= resp.status < 300 and resp.status != 204 and ctype.startswith(b"text/event-stream"):
            return await _relay_stream(request, ex, resp, target, route_headers)
        try:
            return await _relay_json(state, ex, resp, target, route_headers)
        except UpstreamError:
            target.failure()
            ex.outcome = "upstream_error"
            raise Reject(502, "upstream_error", "the upstream connection failed") from None
    _exhausted(ex, reached)


def _reopens(registry, candidates) -> str:
    """Retry-After for a request whose compliant upstreams are all out: when the first circuit among
    the model's upstreams turns half-open (the SDKs' own backoff, ~1.5 s over two retries, would
    spend its retries on open circuits), or 1 s when none is open (an upstream just removed)."""
    waits = [w for c in candidates
             if (t := registry.targets.get(c.upstream)) is not None and (w := t.breaker.half_open_in()) is not None]
    return retry_after(min(waits)) if waits else "1"


def _exhausted(ex: Exchange, reached: bool) -> NoReturn:
    """Every compliant upstream tried has failed: raise the caller's answer.

    A 502 ``upstream_error`` when one of them received the request (it answered 5xx, or broke or
    timed out after the request was sent), a 503 ``no_compliant_upstream`` when none could be reached;
    the audit says ``upstream_error`` either way. (Raised where the next decision found no candidate
    left, too: that used to answer 503 with the outcome ``rejected``, as if nothing had been tried.)
    """
    ex.outcome = "upstream_error"
    if ex.upstream_status is not None:
        raise Reject(502, "upstream_error", f"the upstream answered {ex.upstream_status}")
    if reached:
        raise Reject(502, "upstream_error", "the upstream failed before answering")
    raise Reject(503, "no_compliant_upstream", "no compliant upstream is reachable for this request")


def _usable_models(state: State, principal) -> list[str]:
    """The models ``principal`` may use: those a request without findings can reach (policy-wise)."""
    return [m for m, cands in state.registry.models.items()
            if decide(state.policies, principal, [], cands, "internal").outcome != "blocked"]


def _model_object(dialect: str, model: str) -> dict:
    """A model as the dialect's models endpoints describe it."""
    if dialect == "anthropic":
        return {"type": "model", "id": model, "display_name": model, "created_at": "2026-01-01T00:00:00Z"}
    return {"id": model, "object": "model", "created": 0, "owned_by": "soberana"}


async def list_models(request: Request, state: State) -> Response:
    """GET /v1/models: the models this caller may use (those a request without findings can reach).

    Whatever the endpoint: a model behind Anthropic upstreams only is listed (it serves chat and
    messages; its embeddings answer 404), as providers list chat and embedding models together."""
    dialect = _dialect_of_request(request)
    try:
        principal = await state.auth.authenticate(request.headers)
    except AuthError as e:
        log.info("%s unauthorized: %s", request.path, e)
        return _error(dialect, 401, "unauthorized", "missing or invalid credentials")
    usable = _usable_models(state, principal)
    if dialect == "anthropic":
        try:
            page, has_more = _page(request, usable)
        except ValueError:
            return _error(dialect, 400, "invalid_request", "limit must be an integer from 1 to 1000")
        body = {"data": [_model_object(dialect, m) for m in page], "has_more": has_more,
                "first_id": page[0] if page else None, "last_id": page[-1] if page else None}
    else:
        body = {"object": "list", "data": [_model_object(dialect, m) for m in usable]}
    return Response(200, orjson.dumps(body))


def _page(request: Request, models: list[str]) -> tuple[list[str], bool]:
    """The page of ``models`` an Anthropic list asks for, as the Anthropic API pages them: ``limit``
    (1 to 1000, 20 by default) after ``after_id`` or before ``before_id``; and whether more are beyond
    it (the SDK's auto-pagination follows ``has_more`` and ``last_id``). An id not in the list: no page."""
    raw = request.query_param("limit")
    limit = int(raw) if raw is not None else 20
    if not 1 <= limit <= 1000:
        raise ValueError(raw)
    before, after = request.query_param("before_id"), request.query_param("after_id")
    if before is not None:
        if before not in models:
            return [], False
        end = models.index(before)
        return models[max(0, end - limit):end], end > limit
    start = 0
    if after is not None:
        if after not in models:
            return [], False
        start = models.index(after) + 1
    return models[start:start + limit], start + limit < len(models)


MODEL_PREFIX = "/v1/models/"


async def retrieve_model(request: Request, state: State) -> Response:
    """GET /v1/models/{id} (the SDKs' ``models.retrieve``): the model as listed, when this caller may
    use it. Any other id, one that exists but this caller may not use included, is a 404: the
    answer says no more about the gateway's models than the list does."""
    dialect = _dialect_of_request(request)
    try:
        principal = await state.auth.authenticate(request.headers)
    except AuthError:
        return _error(dialect, 401, "unauthorized", "missing or invalid credentials")
    # (the SDKs percent-encode the id: "org/model" arrives as "org%2Fmodel")
    model = unquote(request.path[len(MODEL_PREFIX):])
    if model not in state.registry.models or model not in _usable_models(state, principal):
        # (the id is not quoted: error messages never repeat a request value)
        return _error(dialect, 404, "not_found", "the requested model is not available through this gateway")
    return Response(200, orjson.dumps(_model_object(dialect, model)))
