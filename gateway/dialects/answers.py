"""Answers: every text the model produced, in JSON answers and in SSE streams.

``map_answer_texts`` applies a function to each produced text of a JSON answer (restore pseudonyms,
scan for leaks). ``StreamRewriter`` does the same to a stream, incrementally: each channel (a choice's
content, one tool call's arguments, an Anthropic content block, a Responses output part) gets its own
``TextFilter``; a filter may hold text back (a placeholder split across events) and its remainder is
emitted as one more delta just before the channel ends. Events without produced text pass byte-exactly.
"""

from __future__ import annotations

from typing import Callable, Protocol

import orjson

from gateway.dialects.sse import SSEEvent, SSEParser, format_event


class TextFilter(Protocol):
    """A per-channel text transformer for streams."""

    def feed(self, text: str) -> str:
        """The next piece of the channel's text in; what may be sent now out."""

    def flush(self) -> str:
        """At the channel's end: whatever was held back."""


def map_leaves(obj, fn: Callable[[str], str]):
    """``obj`` with ``fn`` applied to every string leaf (dict keys untouched)."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_leaves(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_leaves(v, fn) for v in obj]
    return obj


def _map_key(d: dict, key: str, kind: str, fn) -> None:
    v = d.get(key)
    if isinstance(v, str) and v:
        d[key] = fn(v, kind)


def _map_response_item(item: dict, fn) -> None:
    typ = item.get("type")
    if typ == "message":
        for part in item.get("content") or ():
            if isinstance(part, dict):
                _map_key(part, "text", "text", fn)
                _map_key(part, "refusal", "text", fn)
    elif typ == "function_call":
        _map_key(item, "arguments", "tool_arguments", fn)
    elif typ == "custom_tool_call":
        _map_key(item, "input", "tool_arguments", fn)
    elif typ == "reasoning":
        for part in (item.get("summary") or []) + (item.get("content") or []):
            if isinstance(part, dict):
                _map_key(part, "text", "text", fn)


def map_answer_texts(dialect: str, endpoint: str, answer: dict, fn: Callable[[str, str], str]) -> None:
    """Apply ``fn(text, kind)`` in place to every text the model produced in a JSON answer.

    ``kind`` is ``text`` or ``tool_arguments``. OpenAI tool-call arguments are JSON text and are passed
    whole; an Anthropic ``tool_use`` input is an object, so ``fn`` is applied to each of its string
    values (the result stays a valid object whatever ``fn`` returns).
    """
    if not isinstance(answer, dict):
        return
    if dialect == "anthropic":
        for block in answer.get("content") or ():
            if not isinstance(block, dict):
                continue
            typ = block.get("type")
            if typ == "text":
                _map_key(block, "text", "text", fn)
            elif typ == "thinking":
                _map_key(block, "thinking", "text", fn)
            elif typ in ("tool_use", "server_tool_use") and "input" in block:
                block["input"] = map_leaves(block["input"], lambda s: fn(s, "tool_arguments"))
        return
    if endpoint == "/v1/responses":
        for item in answer.get("output") or ():
            if isinstance(item, dict):
                _map_response_item(item, fn)
        return
    for choice in answer.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if endpoint == "/v1/completions":
            _map_key(choice, "text", "text", fn)
            continue
        msg = choice.get("message")
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, list):  # some OpenAI-compatible servers answer with parts
            for part in content:
                if isinstance(part, dict):
                    _map_key(part, "text", "text", fn)
        elif isinstance(content, str) and content:  # _map_key(msg, "content", ...), inline: most answers' one text
            msg["content"] = fn(content, "text")
        refusal = msg.get("refusal")
        if isinstance(refusal, str) and refusal:  # (_map_key, inline)
            msg["refusal"] = fn(refusal, "text")
        if "reasoning_content" in msg or "reasoning" in msg:
            # OpenAI-compatible servers of reasoning models (vLLM, DeepSeek, OpenRouter) answer with the
            # model's reasoning beside its content: text the model produced like any other
            _map_key(msg, "reasoning_content", "text", fn)
            _map_key(msg, "reasoning", "text", fn)
        if isinstance(msg.get("audio"), dict):
            _map_key(msg["audio"], "transcript", "text", fn)
        for call in msg.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                _map_key(call["function"], "arguments", "tool_arguments", fn)
        if isinstance(msg.get("function_call"), dict):
            _map_key(msg["function_call"], "arguments", "tool_arguments", fn)


_CHAT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")
"""A chat delta's text fields: OpenAI's, and the reasoning of OpenAI-compatible servers (vLLM, DeepSeek)."""


def _emit(obj: dict, ev: SSEEvent | None = None, event: str | None = None) -> bytes:
    if ev is not None:
        return format_event(orjson.dumps(obj).decode(), ev.event, ev.id)
    return format_event(orjson.dumps(obj).decode(), event)


def _is_error(ev: SSEEvent, obj: dict) -> bool:
    """Whether an event is an upstream's error: ``event: error``, Anthropic's and the Responses API's
    ``type`` (``error``, ``response.failed``), or an OpenAI chunk that is ``{"error": ...}``."""
    return ev.event == "error" or obj.get("type") in ("error", "response.failed") or \
        (obj.get("error") is not None and "choices" not in obj)


class StreamRewriter:
    """Rewrites an SSE answer stream of one dialect/endpoint through per-channel text filters.

    ``make_filter(kind)`` is called once per channel, on its first text; ``kind`` is ``text`` or
    ``tool_arguments``. Feed upstream bytes, send what comes out; call ``finish`` at upstream EOF.
    ``ending`` then tells whether the stream ended the way its dialect ends one.
    """

    def __init__(self, dialect: str, endpoint: str, make_filter: Callable[[str], TextFilter],
                 on_error: Callable[[str], str] | None = None):
        self._parser = SSEParser()
        self.ending: str | None = None
        """``"normal"`` once the dialect's normal ending passed (``[DONE]``, a ``finish_reason``,
        ``message_stop``, ``response.completed``/``incomplete``), ``"error"`` once an error event
        (``response.failed`` included) passed, else None: a stream that stops with None was cut short, however cleanly the
        connection closed (the relay must then end it with an error event, SPEC section 5)."""
        self._make = make_filter
        # an upstream's error event carries no model text, but its message may quote the request:
        # ``on_error`` is applied to each of its strings (None: it goes on as it came)
        self._on_error = on_error
        self._chan: dict = {}     # channel key -> its open filter
        self._acc: dict = {}      # Responses: channel key -> filtered pieces sent so far
        self._final: dict = {}    # Responses: channel key -> filtered full text once closed
        self._tmpl: dict = {}     # channel key -> how to build an extra delta for it
        self._meta: dict = {}     # OpenAI: id/model/created of the last chunk, for extra chunks
        # only Responses repeats full texts in its *.done events; the other dialects keep no copy
        self._keep = dialect != "anthropic" and endpoint == "/v1/responses"
        if dialect == "anthropic":
            self._handle = self._anthropic
        elif endpoint == "/v1/responses":
            self._handle = self._responses
        else:
            self._completions = endpoint == "/v1/completions"
            self._handle = self._chat

    def feed(self, chunk: bytes) -> bytes:
        """Upstream SSE bytes in, client SSE bytes out (possibly empty while an event is incomplete)."""
        return b"".join([self._event(ev) for ev in self._parser.feed(chunk)])

    def finish(self) -> bytes:
        """At upstream EOF: an unterminated last event, then every channel's held-back text."""
        out = [self._event(ev) for ev in self._parser.finish()]
        out.append(self._close_all())
        return b"".join(out)

    # -- plumbing ---------------------------------------------------------------------------------

    def _event(self, ev: SSEEvent) -> bytes:
        if not ev.has_data:
            return ev.raw
        data = ev.data
        if data.strip() == "[DONE]":
            self.ending = self.ending or "normal"
            return self._close_all() + ev.raw
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""  # fail closed: data we cannot read could carry unfiltered text
        if not isinstance(obj, dict):
            return b""
        if _is_error(ev, obj):
            # the dialect's own error ending (an upstream's, or a translator's): the caller is told
            self.ending = "error"
            if self._on_error is not None:
                fixed = map_leaves(obj, self._on_error)
                return ev.raw if fixed == obj else _emit(fixed, ev)
        return self._handle(ev, obj)

    def _text(self, key, kind: str, text: str) -> str:
        f = self._chan.get(key)
        if f is None:
            f = self._chan[key] = self._make(kind)
            if self._keep:
                self._acc[key] = []
        out = f.feed(text)
        if self._keep:
            self._acc[key].append(out)
        return out

    def _close(self, key) -> str:
        """Close a channel: its held-back remainder; remember its full filtered text."""
        f = self._chan.pop(key, None)
        if f is None:
            return ""
        rest = f.flush()
        if self._keep:
            acc = self._acc.pop(key)
            acc.append(rest)
            self._final[key] = "".join(acc)
        return rest

    def _close_all(self) -> bytes:
        if self._handle == self._chat:
            return self._chat_flush(lambda key: True)
        out = []
        for key in list(self._chan):
            rest = self._close(key)
            if rest:
                out.append(self._extra(key, rest))
        return b"".join(out)

    def _extra(self, key, rest: str) -> bytes:
        build = self._tmpl.get(key)
        return build(rest) if build else b""

    # -- OpenAI chat completions and completions --------------------------------------------------

    def _chat(self, ev: SSEEvent, obj: dict) -> bytes:
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return ev.raw
        for k in ("id", "object", "created", "model", "system_fingerprint"):
            if k in obj:
                self._meta[k] = obj[k]
        changed, before = False, b""
        for pos, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            idx = choice.get("index", pos)
            box = choice if self._completions else choice.get("delta")
            in_chunk = set()
            if isinstance(box, dict):
                for field in (("text",) if self._completions else _CHAT_FIELDS):
                    t = box.get(field)
                    if isinstance(t, str) and t:
                        out = self._text((idx, field), "text", t)
                        in_chunk.add((idx, field))
                        if out != t:
                            box[field], changed = out, True
                for tpos, call in enumerate(box.get("tool_calls") or ()):
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
                        key = (idx, "tool", call.get("index", tpos))
                        t = fn["arguments"]
                        out = self._text(key, "tool_arguments", t)
                        in_chunk.add(key)
                        if out != t:
                            fn["arguments"], changed = out, True
            if choice.get("finish_reason") is not None:
                # a finish_reason with only [DONE] missing is a normal end (as StreamTranslator has it)
                self.ending = self.ending or "normal"
                # the remainder goes into this chunk when the channel has text here, else in a chunk before
                keys = [key for key in self._chan if key[0] == idx]
                here = [key for key in keys if key in in_chunk]
                for key in here:
                    rest = self._close(key)
                    if rest:
                        changed = True
                        if key[1] == "tool":
                            for tpos, call in enumerate(box["tool_calls"]):
                                if call.get("index", tpos) == key[2]:
                                    call["function"]["arguments"] += rest
                                    break
                        else:
                            box[key[1]] += rest
                before += self._chat_flush(lambda key, idx=idx: key[0] == idx)
        body = _emit(obj, ev) if changed else ev.raw
        return before + body

    def _chat_flush(self, which) -> bytes:
        """One extra chunk per choice carrying the held-back text of the selected open channels."""
        per: dict = {}
        for key in [k for k in self._chan if which(k)]:
            rest = self._close(key)
            if rest:
                per.setdefault(key[0], []).append((key, rest))
        out = []
        for idx, rests in per.items():
            if self._completions:
                choice = {"index": idx, "text": "".join(r for _, r in rests), "logprobs": None, "finish_reason": None}
            else:
                delta: dict = {}
                for key, rest in rests:
                    if key[1] == "tool":
                        delta.setdefault("tool_calls", []).append({"index": key[2], "function": {"arguments": rest}})
                    else:
                        delta[key[1]] = rest
                choice = {"index": idx, "delta": delta, "finish_reason": None}
            out.append(_emit(dict(self._meta, choices=[choice])))
        return b"".join(out)

    # -- OpenAI Responses -------------------------------------------------------------------------

    _R_DELTAS = {
        "response.output_text.delta": ("t", "text"),
        "response.refusal.delta": ("r", "text"),
        "response.function_call_arguments.delta": ("a", "tool_arguments"),
        "response.custom_tool_call_input.delta": ("a", "tool_arguments"),
        "response.reasoning_summary_text.delta": ("s", "text"),
        "response.reasoning_text.delta": ("rt", "text"),
    }
    _R_DONES = {
        "response.output_text.done": ("t", "text", "text"),
        "response.refusal.done": ("r", "refusal", "text"),
        "response.function_call_arguments.done": ("a", "arguments", "tool_arguments"),
        "response.custom_tool_call_input.done": ("a", "input", "tool_arguments"),
        "response.reasoning_summary_text.done": ("s", "text", "text"),
        "response.reasoning_text.done": ("rt", "text", "text"),
    }

    @staticmethod
    def _rkey(tag: str, obj: dict):
        oi = obj.get("output_index", 0)
        if tag == "a":
            return (tag, oi)
        return (tag, oi, obj.get("summary_index" if tag == "s" else "content_index", 0))

    def _responses(self, ev: SSEEvent, obj: dict) -> bytes:
        typ = obj.get("type") or ev.event
        if typ in ("response.completed", "response.incomplete", "response.failed"):
            self.ending = self.ending or "normal"  # a Responses stream has no [DONE]: these end it
        if typ in self._R_DELTAS:
            tag, kind = self._R_DELTAS[typ]
            key = self._rkey(tag, obj)
            t = obj.get("delta")
            if key not in self._tmpl:
                tmpl = {k: v for k, v in obj.items() if k not in ("delta", "obfuscation")}
                self._tmpl[key] = lambda rest, seq=None, tmpl=tmpl, e=ev.event: _emit(
                    dict(tmpl, delta=rest, **({"sequence_number": seq} if seq is not None else {})), event=e)
            if not isinstance(t, str) or not t:
                return ev.raw
            out = self._text(key, kind, t)
            if out == t:
                return ev.raw
            obj["delta"] = out
            return _emit(obj, ev)
        if typ in self._R_DONES:
            tag, field, kind = self._R_DONES[typ]
            key = self._rkey(tag, obj)
            before = b""
            if key in self._chan:
                rest = self._close(key)
                if rest and key in self._tmpl:
                    # the extra delta takes the done event's number: numbers stay non-decreasing
                    before = self._tmpl[key](rest, obj.get("sequence_number"))
            return before + self._fix_full(ev, obj, {field: (key, kind)})
        if typ in ("response.content_part.added", "response.content_part.done"):
            part = obj.get("part")
            if isinstance(part, dict):
                oi, ci = obj.get("output_index", 0), obj.get("content_index", 0)
                # a reasoning item's part is the reasoning_text channel (not a second copy of its text)
                tag = "rt" if part.get("type") == "reasoning_text" else "t"
                before = self._close_keys([(tag, oi, ci), ("r", oi, ci)], typ.endswith(".done"))
                fields = {"text": ((tag, oi, ci), "text"), "refusal": (("r", oi, ci), "text")}
                return before + self._fix_full(ev, obj, fields, part, final=typ.endswith(".done"))
            return ev.raw
        if typ in ("response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
            # (as content parts: the summary part's done event repeats its full text)
            part = obj.get("part")
            if isinstance(part, dict):
                key = ("s", obj.get("output_index", 0), obj.get("summary_index", 0))
                done = typ.endswith(".done")
                before = self._close_keys([key], done)
                return before + self._fix_full(ev, obj, {"text": (key, "text")}, part, final=done)
            return ev.raw
        if typ in ("response.output_item.added", "response.output_item.done"):
            item = obj.get("item")
            if isinstance(item, dict):
                done = typ.endswith(".done")
                oi = obj.get("output_index", 0)
                before, changed = self._fix_item(item, oi, done)
                return before + (_emit(obj, ev) if changed else ev.raw)
            return ev.raw
        resp = obj.get("response")
        if isinstance(resp, dict) and isinstance(resp.get("output"), list) and resp["output"]:
            done = typ in ("response.completed", "response.incomplete", "response.failed")
            before, changed = b"", False
            for oi, item in enumerate(resp["output"]):
                if isinstance(item, dict):
                    b, c = self._fix_item(item, oi, done)
                    before, changed = before + b, changed or c
            return before + (_emit(obj, ev) if changed else ev.raw)
        return ev.raw

    def _close_keys(self, keys, done: bool) -> bytes:
        if not done:
            return b""
        out = []
        for key in keys:
            if key in self._chan:
                rest = self._close(key)
                if rest:
                    out.append(self._extra(key, rest))
        return b"".join(out)

    def _full(self, key, kind: str, text: str, final: bool) -> str:
        """The filtered full text of a channel; a text that never streamed is filtered whole here."""
        if key in self._final:
            return self._final[key]
        f = self._make(kind)
        out = f.feed(text) + f.flush()
        if final:
            self._final[key] = out
        return out

    def _fix_full(self, ev, obj, fields: dict, box: dict | None = None, final: bool = True) -> bytes:
        box = obj if box is None else box
        changed = False
        for field, (key, kind) in fields.items():
            t = box.get(field)
            if isinstance(t, str) and (t or key in self._final):
                new = self._full(key, kind, t, final)
                if new != t:
                    box[field], changed = new, True
        return _emit(obj, ev) if changed else ev.raw

    def _fix_item(self, item: dict, oi: int, done: bool) -> tuple[bytes, bool]:
        """Full texts inside an output item (``output_item.*``, ``response.*``): the filtered ones."""
        fields: list = []  # (box, field, key, kind)
        typ = item.get("type")
        if typ == "message":
            for ci, part in enumerate(item.get("content") or ()):
                if isinstance(part, dict):
                    fields.append((part, "text", ("t", oi, ci), "text"))
                    fields.append((part, "refusal", ("r", oi, ci), "text"))
        elif typ == "function_call":
            fields.append((item, "arguments", ("a", oi), "tool_arguments"))
        elif typ == "custom_tool_call":
            fields.append((item, "input", ("a", oi), "tool_arguments"))
        elif typ == "reasoning":
            for si, part in enumerate(item.get("summary") or ()):
                if isinstance(part, dict):
                    fields.append((part, "text", ("s", oi, si), "text"))
            for ci, part in enumerate(item.get("content") or ()):
                if isinstance(part, dict):
                    fields.append((part, "text", ("rt", oi, ci), "text"))
        before = self._close_keys([k for _, _, k, _ in fields], done)
        changed = False
        for box, field, key, kind in fields:
            t = box.get(field)
            if isinstance(t, str) and (t or key in self._final):
                new = self._full(key, kind, t, done)
                if new != t:
                    box[field], changed = new, True
        return before, changed

    # -- Anthropic Messages -----------------------------------------------------------------------

    _A_DELTAS = {"text_delta": ("text", "text"), "input_json_delta": ("partial_json", "tool_arguments"),
                 "thinking_delta": ("thinking", "text")}
    _A_STARTS = {"text": ("text", "text_delta", "text"), "thinking": ("thinking", "thinking_delta", "text")}

    def _anthropic(self, ev: SSEEvent, obj: dict) -> bytes:
        typ = obj.get("type") or ev.event
        if typ == "content_block_delta":
            delta = obj.get("delta")
            idx = obj.get("index", 0)
            if not isinstance(delta, dict) or delta.get("type") not in self._A_DELTAS:
                return ev.raw
            dtype = delta["type"]
            field, kind = self._A_DELTAS[dtype]
            if ("a", idx) not in self._tmpl:
                self._tmpl[("a", idx)] = lambda rest, idx=idx, dtype=dtype, field=field: _emit(
                    {"type": "content_block_delta", "index": idx, "delta": {"type": dtype, field: rest}},
                    event="content_block_delta")
            t = delta.get(field)
            if not isinstance(t, str) or not t:
                return ev.raw
            out = self._text(("a", idx), kind, t)
            if out == t:
                return ev.raw
            delta[field] = out
            return _emit(obj, ev)
        if typ == "content_block_start":
            block = obj.get("content_block")
            idx = obj.get("index", 0)
            if not isinstance(block, dict):
                return ev.raw
            if block.get("type") in self._A_STARTS:
                field, dtype, kind = self._A_STARTS[block["type"]]
                self._tmpl[("a", idx)] = lambda rest, idx=idx, dtype=dtype, field=field: _emit(
                    {"type": "content_block_delta", "index": idx, "delta": {"type": dtype, field: rest}},
                    event="content_block_delta")
                t = block.get(field)
                if isinstance(t, str) and t:
                    out = self._text(("a", idx), kind, t)
                    if out != t:
                        block[field] = out
                        return _emit(obj, ev)
                return ev.raw
            if block.get("type") in ("tool_use", "server_tool_use"):
                self._tmpl[("a", idx)] = lambda rest, idx=idx: _emit(
                    {"type": "content_block_delta", "index": idx, "delta": {"type": "input_json_delta", "partial_json": rest}},
                    event="content_block_delta")
                inp = block.get("input")
                if inp:  # an input given whole at the start (server tools): filter its strings
                    new = map_leaves(inp, lambda s: self._full(None, "tool_arguments", s, False))
                    if new != inp:
                        block["input"] = new
                        return _emit(obj, ev)
            return ev.raw
        if typ == "content_block_stop":
            key = ("a", obj.get("index", 0))
            rest = self._close(key)
            return (self._extra(key, rest) if rest else b"") + ev.raw
        if typ == "message_start":
            msg = obj.get("message")
            if isinstance(msg, dict) and msg.get("content"):
                changed = []

                def whole(s: str, kind: str) -> str:
                    new = self._full(None, kind, s, False)
                    if new != s:
                        changed.append(True)
                    return new

                map_answer_texts("anthropic", "/v1/messages", msg, whole)
                if changed:
                    return _emit(obj, ev)
            return ev.raw
        if typ in ("message_stop", "message_delta"):
            if typ == "message_stop":
                self.ending = self.ending or "normal"
            return (self._close_all() if typ == "message_stop" else b"") + ev.raw
        return ev.raw
