"""`soberana stub`: an OpenAI- and Anthropic-compatible echo model for development, demos and tests.

It answers by quoting the last user message — ``[stub BR] You said: <text>`` — so the residency of
the model that answered is visible, and speaks the real wire formats (ids, object types, usage,
finish/stop reasons, SSE events) so the official SDKs parse it:

- ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/responses``,
  ``/v1/responses/input_tokens`` (OpenAI), ``POST /v1/messages``, ``/v1/messages/count_tokens``
  (Anthropic), ``GET /v1/models``; the ``/v1`` prefix is optional.
- ``"stream": true`` streams token by token (chat.completion.chunk SSE ending with ``data: [DONE]``;
  Anthropic message_start … message_stop; Responses API events).
- Generation limits, in each endpoint's own fields, as real providers honour them:

  - max tokens — chat ``max_completion_tokens`` (or the legacy ``max_tokens``), completions
    ``max_tokens``, Responses ``max_output_tokens``, Anthropic ``max_tokens`` (required by the real
    API; the stub lets a hand-written body omit it): the answer is cut to that many of the stub's
    tokens (a word with its leading space, as streamed) and says so: ``finish_reason: "length"``,
    ``stop_reason: "max_tokens"``, or Responses ``status: "incomplete"`` with ``incomplete_details:
    {"reason": "max_output_tokens"}`` (streamed: ``response.incomplete`` instead of
    ``response.completed``). A tool call's arguments are cut the same way (no longer valid JSON;
    Anthropic's ``input`` is then ``{}``, what its SDK makes of the cut stream). With a limit, usage
    counts exactly the tokens sent; without, it is the 4-characters-a-token rule of thumb.
  - ``n`` (chat and completions, 1 to 128): n choices, each saying which it is, ``(2/3) [stub BR]
    You said: …`` (a single one is the plain answer), streamed interleaved one event per choice in
    turn, usage summed; every choice calls the same tool when asked to.
  - stop sequences — chat/completions ``stop`` (a string or up to 4), Anthropic ``stop_sequences``:
    the answer ends before the first match (``finish_reason: "stop"``; ``stop_reason:
    "stop_sequence"`` with ``stop_sequence`` the one that matched). Tool calls ignore them. Max
    tokens win when reached first.

  A value the real API refuses (``n: 0``, ``max_tokens: "8"``, five stops, chat ``max_tokens`` for
  a reasoning model such as ``o4-mini``) is a 400 in the endpoint's error shape, naming the field.
- Tools: when the request declares tools and the last user message contains "call tool", the stub
  calls the first tool with ``{"<first parameter>": <the user message>}`` as its arguments. A tool
  result after it (chat ``role: tool``, Responses ``function_call_output``, Anthropic
  ``tool_result``) counts as the last user message, so the next answer quotes the result.
- Structured outputs: a request asking for JSON (chat ``response_format``, Responses ``text.format``,
  Anthropic ``output_config.format`` or ``output_format``; ``json_schema`` or ``json_object``) gets a
  JSON value of its schema whose every string is the echo, so the SDKs' ``parse`` helpers validate it.
- Fault modes, chosen by the requested ``model``: ``stub-fail-500`` (500 JSON error),
  ``stub-rate-limit`` (429 JSON error with ``Retry-After: 3``, as a provider's rate limit), ``stub-hang``
  (never answers), ``stub-reset`` (sends part of the answer, then resets the TCP connection),
  ``stub-slow`` (one token per 50 ms).
- ``record``: one JSON line per received request, ``{"path", "query", "body", "raw", "auth",
  "headers"}`` where ``query`` is the target's query string (``""`` when none), ``raw`` is the
  body's bytes as received (UTF-8 text: what the parsed ``body`` may not show, such as the first
  of two duplicate keys), ``auth`` is ``null`` or ``{"kind": "bearer" |
  "x-api-key", "sha256": <hex of the key>}`` (never the key), and ``headers`` every other request
  header, lower-cased name to value (what a gateway passed on besides the body).

It is the upstream in benchmarks, so it is a raw asyncio protocol with ``httptools`` parsing, not an
aiohttp app: a non-streaming answer is built and written inside ``data_received``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import re
import signal
import socket
import struct
import sys
import time
from collections import deque

import httptools
import orjson

__all__ = ["StubServer", "start_stub", "stub_command", "answer_text"]

SLOW_TOKEN_SECONDS = 0.05
RESET_AFTER_EVENTS = 3
MAX_BODY = 64 * 1024 * 1024
MAX_CHOICES = 128
"""The most choices (``n``) a request may ask for, as in the OpenAI API."""
MODELS = ("stub-model", "stub-fail-500", "stub-rate-limit", "stub-hang", "stub-reset", "stub-slow")
RATE_LIMIT_RETRY_AFTER = 3
"""The Retry-After (seconds) of ``stub-rate-limit``'s 429."""

_ids = itertools.count(1)
_TOKEN = re.compile(r"\s*\S+|\s+")
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed", 429: b"Too Many Requests",
            413: b"Payload Too Large", 500: b"Internal Server Error"}


def answer_text(residency: str, user_text: str) -> str:
    """What the stub answers to ``user_text``."""
    return f"[stub {residency}] You said: {user_text}"


def _choice_text(residency: str, user_text: str, choice: int, n: int) -> str:
    """Choice ``choice`` (from 0) of ``n``: with several, each says which it is (``(2/3) [stub BR] You
    said: …``) so they are told apart; a single one is the plain answer."""
    text = answer_text(residency, user_text)
    return text if n == 1 else f"({choice + 1}/{n}) {text}"


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text) or [""]


def _count(text: str) -> int:
    """Usage tokens, the usual rule of thumb (4 characters a token): cheap, and SDKs only need ints."""
    return len(text) // 4 + 1


# --- reading requests -----------------------------------------------------------------------------
def _text_of(content) -> str:
    """Text of an OpenAI/Anthropic/Responses message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif part.get("type") == "tool_result":
                    out.append(_text_of(part.get("content")))
        return " ".join(out)
    return ""


def _last_user(messages) -> str:
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    # A tool's result after the user's turn is what the model answers next, in every dialect (an
    # Anthropic tool_result sits in a user message already): quoting the user's "call tool" again
    # called the tool again, so an OpenAI agent loop never ended.
    for m in reversed(messages):
        if not isinstance(m, dict):
            continue
        kind = m.get("type", "message")
        if kind == "function_call_output":  # Responses API
            return _text_of(m.get("output"))
        if kind == "message" and m.get("role", "user") in ("user", "tool"):  # "tool": chat completions
            return _text_of(m.get("content"))
    return ""


def _user_text(endpoint: str, body: dict) -> str:
    if endpoint in ("chat/completions", "messages"):
        return _last_user(body.get("messages"))
    if endpoint == "responses":
        return _last_user(body.get("input"))
    if endpoint == "completions":
        prompt = body.get("prompt")
        return prompt[-1] if isinstance(prompt, list) and prompt and isinstance(prompt[-1], str) else (
            prompt if isinstance(prompt, str) else "")
    return ""


def _tool(endpoint: str, body: dict, text: str) -> tuple[str, str] | None:
    """(name, arguments JSON) of the tool to call, or None."""
    tools = body.get("tools")
    if not tools or not isinstance(tools, list) or "call tool" not in text.lower():
        return None
    t = tools[0] if isinstance(tools[0], dict) else {}
    if endpoint == "chat/completions":
        fn = t.get("function") or {}
        name, schema = fn.get("name"), fn.get("parameters")
    elif endpoint == "messages":
        name, schema = t.get("name"), t.get("input_schema")
    else:  # responses: flat function tools
        name, schema = t.get("name"), t.get("parameters")
    props = (schema or {}).get("properties") if isinstance(schema, dict) else None
    arg = next(iter(props), "text") if isinstance(props, dict) and props else "text"
    return str(name or "tool"), orjson.dumps({arg: text}).decode()


def _auth(headers: dict[bytes, bytes]) -> dict | None:
    v = headers.get(b"authorization")
    if v is not None:
        key = v[7:] if v[:7].lower() == b"bearer " else v
        return {"kind": "bearer", "sha256": hashlib.sha256(key.strip()).hexdigest()}
    v = headers.get(b"x-api-key")
    if v is not None:
        return {"kind": "x-api-key", "sha256": hashlib.sha256(v.strip()).hexdigest()}
    return None


# --- answers ----------------------------------------------------------------------------------------
def _sse(data: dict, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + orjson.dumps(data) + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _error_body(endpoint: str, status: int, message: str, param: str | None = None) -> bytes:
    if status == 429:
        kind = "rate_limit_error"
        if endpoint == "messages":
            return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
        return orjson.dumps({"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}})
    if endpoint == "messages":
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": kind}})


def _embedding(text: str, dims: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((b - 127.5) / 127.5, 6) for b in digest[:dims]]


class _Invalid(Exception):
    """A generation parameter the real API refuses: the stub answers 400 naming it, as the API does."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


def _int_param(body: dict, name: str, high: int | None = None) -> int | None:
    """``body[name]`` as a positive integer (at most ``high``), None when absent."""
    v = body.get(name)
    if v is None:
        return None
    if type(v) is not int or v < 1 or (high is not None and v > high):
        bounds = f"from 1 to {high}" if high is not None else "of at least 1"
        raise _Invalid(name, f"Invalid '{name}': expected an integer {bounds}, got {orjson.dumps(v).decode()}.")
    return v


def _stops(body: dict, name: str) -> tuple[str, ...]:
    """The stop sequences of ``body[name]`` (OpenAI ``stop``: a string or up to 4; Anthropic ``stop_sequences``: a list)."""
    v = body.get(name)
    if v is None:
        return ()
    if isinstance(v, str) and name == "stop":
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or (name == "stop" and len(v) > 4):
        many = "a string or a list of up to 4 strings" if name == "stop" else "a list of strings"
        raise _Invalid(name, f"Invalid '{name}': expected {many}.")
    return tuple(x for x in v if x)  # an empty one would match before the first character


_REASONING_MODEL = re.compile(r"o\d|gpt-5")
"""OpenAI's reasoning models (o1, o3, o4-mini, gpt-5…): their chat completions refuse the legacy
``max_tokens`` (400), as the real API does, and take ``max_completion_tokens`` only."""

_FORMAT_FIELDS = frozenset(("response_format", "text", "output_config", "output_format"))


def _output_schema(endpoint: str, body: dict) -> dict | None:
    """The JSON schema of the structured output a request asks for (``{}`` for plain JSON mode), or
    None: chat ``response_format``, Responses ``text.format``, Anthropic ``output_config.format`` (or
    the older ``output_format``)."""
    if endpoint == "chat/completions":
        fmt = body.get("response_format")
    elif endpoint == "responses":
        fmt = body.get("text").get("format") if isinstance(body.get("text"), dict) else None
    elif endpoint == "messages":
        oc = body.get("output_config")
        fmt = oc.get("format") if isinstance(oc, dict) else body.get("output_format")
    else:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return None
    # chat nests the schema in json_schema.schema; the Responses API and Anthropic have it in the format
    inner = fmt.get("json_schema") if endpoint == "chat/completions" else fmt
    schema = inner.get("schema") if isinstance(inner, dict) else None
    return schema if isinstance(schema, dict) else {}


def _instance(schema, text: str, root: dict, depth: int = 0):
    """A value of ``schema`` whose every string is ``text`` (the echo), the first of every choice
    (``enum``, ``anyOf``, a type list) taken: what an SDK's ``parse`` validates against the schema
    it sent. ``$ref`` is followed into ``root``'s ``$defs`` (pydantic's nested models)."""
    if not isinstance(schema, dict) or depth > 16:
        return text
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, dict) else None
        return _instance(target, text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _instance(schema[key][0], text, root, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ == "object" or "properties" in schema:
        props = schema.get("properties")
        return {k: _instance(v, text, root, depth + 1) for k, v in props.items()} if isinstance(props, dict) else {}
    if typ == "array":
        return [_instance(schema.get("items"), text, root, depth + 1)]
    if typ is None and schema is root:  # JSON mode, or a schema that says nothing: an object all the same
        return {"answer": text}
    return {"integer": 0, "number": 0, "boolean": False, "null": None}.get(typ, text)


_LIMIT_FIELDS = frozenset(("max_tokens", "max_completion_tokens", "max_output_tokens", "stop", "stop_sequences", "n"))


def _limits(endpoint: str, body: dict) -> tuple[int | None, tuple[str, ...], int]:
    """(max tokens or None, stop sequences, number of choices) the request asks for, in its dialect's fields."""
    if _LIMIT_FIELDS.isdisjoint(body):  # the common case, benchmarks' included: one check, not six
        return None, (), 1
    if endpoint == "messages":  # the API requires max_tokens; the stub lets hand-written bodies omit it
        return _int_param(body, "max_tokens"), _stops(body, "stop_sequences"), 1
    if endpoint == "responses":  # no stop sequences and no n in the Responses API
        return _int_param(body, "max_output_tokens"), (), 1
    if endpoint == "chat/completions" and "max_tokens" in body and _REASONING_MODEL.match(str(body.get("model"))):
        raise _Invalid("max_tokens", "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                     "Use 'max_completion_tokens' instead.")
    max_tokens = _int_param(body, "max_completion_tokens") if endpoint == "chat/completions" else None
    if max_tokens is None:  # chat's legacy name, completions' only one
        max_tokens = _int_param(body, "max_tokens")
    return max_tokens, _stops(body, "stop"), _int_param(body, "n", MAX_CHOICES) or 1


class _Choice:
    """One generated answer (text, or a tool call's arguments) as the request's limits cut it, and why it ended.

    ``end`` is ``"end"`` (the whole answer), ``"stop_sequence"`` (cut before ``stop_sequence``) or
    ``"length"`` (cut to max tokens). ``count`` is the usage it reports: exactly the tokens sent when
    the request set max tokens (so usage never exceeds it), the cheap 4-characters rule otherwise.
    """

    __slots__ = ("text", "end", "stop_sequence", "count", "_tokens")

    def __init__(self, text: str, max_tokens: int | None, stops: tuple[str, ...]):
        self.end, self.stop_sequence, self._tokens = "end", None, None
        if stops:
            hits = [(i, s) for s in stops if (i := text.find(s)) >= 0]
            if hits:
                at, self.stop_sequence = min(hits)
                text, self.end = text[:at], "stop_sequence"
        if max_tokens is None:
            self.count = _count(text)
        else:
            tokens = _tokens(text)
            if len(tokens) > max_tokens:  # the limit comes first: the stop sequence was never reached
                tokens = tokens[:max_tokens]
                text, self.end, self.stop_sequence = "".join(tokens), "length", None
            self._tokens, self.count = tokens, len(tokens)
        self.text = text

    @property
    def tokens(self) -> list[str]:
        """The pieces a stream sends, one per event (words with their leading space)."""
        if self._tokens is None:
            self._tokens = _tokens(self.text)
        return self._tokens


def _round_robin(per_choice: list[list[bytes]]) -> list[bytes]:
    """The choices' events interleaved one by one, as OpenAI streams ``n`` choices."""
    if len(per_choice) == 1:
        return per_choice[0]
    return [ev for group in itertools.zip_longest(*per_choice) for ev in group if ev is not None]


_ID_FORMATS = {"chat/completions": "chatcmpl-stub%d", "completions": "cmpl-stub%d", "responses": "resp_stub%d",
               "messages": "msg_stub%d"}


class _Answer:
    """The answer to one generation request, as a JSON body or a list of SSE events.

    ``choices`` holds ``n`` answers (chat and completions; one elsewhere). A tool call's arguments
    are cut by max tokens like text (invalid JSON then, as a real model's would be) but not by stop
    sequences, and every choice calls the same tool with the same arguments.
    """

    def __init__(self, endpoint: str, body: dict, residency: str):
        self.endpoint = endpoint
        self.model = str(body.get("model") or "stub-model")
        self.user = _user_text(endpoint, body)
        self.max_tokens, stops, n = _limits(endpoint, body)
        self.tool = _tool(endpoint, body, self.user) if endpoint != "completions" else None
        self.choices: list[_Choice] = []
        self.completion_tokens = 0
        schema = _output_schema(endpoint, body) if self.tool is None and not _FORMAT_FIELDS.isdisjoint(body) else None
        for i in range(n):
            if self.tool is None:
                text = _choice_text(residency, self.user, i, n)
                if schema is not None:  # structured outputs: the answer is JSON of the schema asked for
                    text = orjson.dumps(_instance(schema, text, schema)).decode()
                c = _Choice(text, self.max_tokens, stops)
            else:  # a tool call's arguments: cut by max tokens, not by stop sequences
                c = _Choice(self.tool[1], self.max_tokens, ())
            self.choices.append(c)
            self.completion_tokens += c.count
        self.prompt_tokens = _count(self.user)
        opts = body.get("stream_options")
        self.usage_in_stream = isinstance(opts, dict) and bool(opts.get("include_usage"))
        self.num = next(_ids)
        self.created = int(time.time())
        self.id = _ID_FORMATS[endpoint] % self.num

    @property
    def tokens(self) -> list[str]:
        """The first choice's stream pieces."""
        return self.choices[0].tokens

    # made when asked: most answers call no tool and have no output item
    @property
    def call_id(self) -> str:
        return ("toolu_stub%d" if self.endpoint == "messages" else "call_stub%d") % self.num

    @property
    def item_id(self) -> str:
        return "msg_stub%d" % self.num

    def _choice_call_id(self, i: int) -> str:
        """The tool call id of choice ``i``: each choice's call is its own."""
        return self.call_id if i == 0 else f"{self.call_id}_{i}"

    def _finish(self, c: _Choice) -> str:
        """OpenAI ``finish_reason``: a stop sequence is a plain "stop" there."""
        return "length" if c.end == "length" else "tool_calls" if self.tool else "stop"

    def _stop_reason(self, c: _Choice) -> str:
        """Anthropic ``stop_reason``."""
        if c.end == "length":
            return "max_tokens"
        return "stop_sequence" if c.end == "stop_sequence" else "tool_use" if self.tool else "end_turn"

    # JSON -----------------------------------------------------------------------------------------
    def json(self) -> dict:
        return self._JSON[self.endpoint](self)

    def _oai_usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def _json_chat_completions(self) -> dict:
        choices = []
        for i, c in enumerate(self.choices):
            if self.tool:
                call = {"id": self._choice_call_id(i), "type": "function",
                        "function": {"name": self.tool[0], "arguments": c.text}}
                message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
            else:
                message = {"role": "assistant", "content": c.text, "refusal": None}
            choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": self._finish(c)})
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": choices, "usage": self._oai_usage(), "system_fingerprint": "fp_stub"}

    def _json_completions(self) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"text": c.text, "index": i, "logprobs": None, "finish_reason": self._finish(c)}
                            for i, c in enumerate(self.choices)],
                "usage": self._oai_usage()}

    def _responses_usage(self) -> dict:
        return {"input_tokens": self.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def _responses_status(self, done: bool) -> str:
        if not done:
            return "in_progress"
        return "incomplete" if self.choices[0].end == "length" else "completed"

    def _responses_item(self, done: bool) -> dict:
        c, status = self.choices[0], self._responses_status(done)
        if self.tool:
            return {"type": "function_call", "id": "fc_" + self.call_id, "call_id": self.call_id,
                    "name": self.tool[0], "arguments": c.text if done else "", "status": status}
        content = [{"type": "output_text", "text": c.text, "annotations": []}] if done else []
        return {"type": "message", "id": self.item_id, "status": status, "role": "assistant", "content": content}

    def _responses_obj(self, done: bool) -> dict:
        status = self._responses_status(done)
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status,
                "model": self.model, "output": [self._responses_item(True)] if done else [], "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                "instructions": None, "max_output_tokens": self.max_tokens, "metadata": {},
                "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto", "tools": [],
                "text": {"format": {"type": "text"}}, "usage": self._responses_usage() if done else None}

    def _json_responses(self) -> dict:
        return self._responses_obj(True)

    def _json_messages(self) -> dict:
        c = self.choices[0]
        if self.tool:
            # cut arguments are not JSON: the input is what the SDK makes of them when streamed ({})
            args = orjson.loads(c.text) if c.end == "end" else {}
            content = [{"type": "tool_use", "id": self.call_id, "name": self.tool[0], "input": args}]
        else:
            content = [{"type": "text", "text": c.text}]
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": content,
                "stop_reason": self._stop_reason(c), "stop_sequence": c.stop_sequence,
                "usage": {"input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens}}

    # SSE ------------------------------------------------------------------------------------------
    def events(self) -> list[bytes]:
        """The streamed answer, one SSE event per list item (one token per delta event)."""
        return self._SSE[self.endpoint](self)

    def _sse_chat_completions(self) -> list[bytes]:
        base = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": "fp_stub"}

        def chunk(i: int, delta: dict, reason: str | None = None) -> bytes:
            return _sse(dict(base, choices=[{"index": i, "delta": delta, "logprobs": None, "finish_reason": reason}]))

        per_choice = []
        for i, c in enumerate(self.choices):
            if self.tool:
                call = {"index": 0, "id": self._choice_call_id(i), "type": "function",
                        "function": {"name": self.tool[0], "arguments": ""}}
                evs = [chunk(i, {"role": "assistant", "content": None, "tool_calls": [call]})]
                evs += [chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": t}}]}) for t in c.tokens]
            else:
                evs = [chunk(i, {"role": "assistant", "content": "", "refusal": None})]
                evs += [chunk(i, {"content": t}) for t in c.tokens]
            evs.append(chunk(i, {}, self._finish(c)))
            per_choice.append(evs)
        out = _round_robin(per_choice)
        if self.usage_in_stream:
            out.append(_sse(dict(base, choices=[], usage=self._oai_usage())))
        out.append(b"data: [DONE]\n\n")
        return out

    def _sse_completions(self) -> list[bytes]:
        base = {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model}

        def chunk(i: int, text: str, reason: str | None = None) -> bytes:
            return _sse(dict(base, choices=[{"text": text, "index": i, "logprobs": None, "finish_reason": reason}]))

        out = _round_robin([[chunk(i, t) for t in c.tokens] + [chunk(i, "", self._finish(c))]
                            for i, c in enumerate(self.choices)])
        if self.usage_in_stream:  # stream_options.include_usage holds for completions as for chat
            out.append(_sse(dict(base, choices=[], usage=self._oai_usage())))
        out.append(b"data: [DONE]\n\n")
        return out

    def _sse_responses(self) -> list[bytes]:
        seq = itertools.count()
        c = self.choices[0]

        def ev(kind: str, **data) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **data}, kind)

        out = [ev("response.created", response=self._responses_obj(False)),
               ev("response.in_progress", response=self._responses_obj(False)),
               ev("response.output_item.added", output_index=0, item=self._responses_item(False))]
        if self.tool:
            fid = "fc_" + self.call_id
            out += [ev("response.function_call_arguments.delta", item_id=fid, output_index=0, delta=t)
                    for t in c.tokens]
            out.append(ev("response.function_call_arguments.done", item_id=fid, output_index=0, arguments=c.text))
        else:
            loc = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
            out.append(ev("response.content_part.added", **loc, part={"type": "output_text", "text": "", "annotations": []}))
            out += [ev("response.output_text.delta", **loc, delta=t, logprobs=[]) for t in c.tokens]
            out.append(ev("response.output_text.done", **loc, text=c.text, logprobs=[]))
            out.append(ev("response.content_part.done", **loc, part={"type": "output_text", "text": c.text, "annotations": []}))
        out.append(ev("response.output_item.done", output_index=0, item=self._responses_item(True)))
        final = self._responses_obj(True)
        # a response cut by max_output_tokens ends with response.incomplete, not response.completed
        out.append(ev("response." + final["status"], response=final))
        return out

    def _sse_messages(self) -> list[bytes]:
        c = self.choices[0]
        start = self._json_messages()
        start.update(content=[], stop_reason=None, stop_sequence=None,
                     usage={"input_tokens": self.prompt_tokens, "output_tokens": 1})
        out = [_sse({"type": "message_start", "message": start}, "message_start")]
        if self.tool:
            block = {"type": "tool_use", "id": self.call_id, "name": self.tool[0], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": t} for t in c.tokens]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in c.tokens]
        out.append(_sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"))
        out.append(_sse({"type": "ping"}, "ping"))
        out += [_sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta") for d in deltas]
        out.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        out.append(_sse({"type": "message_delta", "delta": {"stop_reason": self._stop_reason(c),
                                                            "stop_sequence": c.stop_sequence},
                         "usage": {"output_tokens": self.completion_tokens}}, "message_delta"))
        out.append(_sse({"type": "message_stop"}, "message_stop"))
        return out

    # by endpoint (a table, not a getattr on a built name: this is the benchmarks' hot path)
    _JSON = {"chat/completions": _json_chat_completions, "completions": _json_completions,
             "responses": _json_responses, "messages": _json_messages}
    _SSE = {"chat/completions": _sse_chat_completions, "completions": _sse_completions,
            "responses": _sse_responses, "messages": _sse_messages}


def _embeddings(body: dict) -> dict:
    inp = body.get("input")
    # a list of token ids is one input (the API's "array of integers"), as are the token lists
    # of an "array of arrays" (LangChain sends those); a list of strings is one input each
    one = not isinstance(inp, list) or (bool(inp) and all(type(x) is int for x in inp))
    items = [inp] if one else inp
    as_b64 = body.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(items):
        vec = _embedding(item if isinstance(item, str) else orjson.dumps(item).decode())
        emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode() if as_b64 else vec
        data.append({"object": "embedding", "index": i, "embedding": emb})
    n = sum(_count(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 1 for x in items)
    return {"object": "list", "data": data, "model": str(body.get("model") or "stub-model"),
            "usage": {"prompt_tokens": n, "total_tokens": n}}


_COUNTS = frozenset(("messages/count_tokens", "responses/input_tokens"))


def _input_tokens(endpoint: str, body: dict) -> dict:
    """``messages/count_tokens`` and ``responses/input_tokens``: the usage rule of thumb over the
    system prompt (instructions) and every message (input item)."""
    if endpoint == "messages/count_tokens":
        items, system = body.get("messages"), body.get("system")
    else:
        items, system = body.get("input"), body.get("instructions")
    if isinstance(items, str):
        items = [{"content": items}]
    texts = [_text_of(m.get("content")) for m in items if isinstance(m, dict)] if isinstance(items, list) else []
    n = _count(" ".join([_text_of(system), *texts]))
    return {"input_tokens": n} if endpoint == "messages/count_tokens" else {"object": "response.input_tokens",
                                                                            "input_tokens": n}


def _models(anthropic: bool) -> dict:
    if anthropic:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in MODELS]
        return {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in MODELS]}


# --- the server -------------------------------------------------------------------------------------
_GENERATE = frozenset(("chat/completions", "completions", "responses", "messages"))


def _head(status: int, ctype: bytes, length: int | None, keep_alive: bool, extra: bytes = b"") -> bytes:
    """The status line and headers; ``extra``: more header lines, each ending with CRLF."""
    framing = b"Transfer-Encoding: chunked\r\nCache-Control: no-cache" if length is None else b"Content-Length: %d" % length
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s\r\n%s%s\r\n" % (
        status, _REASONS.get(status, b"Unknown"), ctype, framing, extra, b"" if keep_alive else b"Connection: close\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Request:
    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive")


class _StubProtocol(asyncio.Protocol):
    """One client connection: parse requests, answer them in order."""

    def __init__(self, server: "StubServer"):
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.req: _Request | None = None
        self.url = b""
        self.parts: list[bytes] = []
        self.size = 0
        self.queue: deque[_Request] = deque()
        self.busy: asyncio.Task | None = None
        self.hung = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections += 1
        self.server._transports.add(transport)

    def connection_lost(self, exc) -> None:
        self.server._transports.discard(self.transport)
        if self.busy is not None:
            self.busy.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_head(400, b"application/json", 0, False))
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.req = _Request()
        self.req.headers = {}
        self.url = b""
        self.parts = []
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.req.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self.req.headers.get(b"expect", b"").lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl asks before large bodies

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self.transport.abort()
            return
        self.parts.append(body)

    def on_message_complete(self) -> None:
        req = self.req
        req.method = self.parser.get_method()
        path, _, query = self.url.partition(b"?")
        req.path, req.query = path.decode("latin-1"), query.decode("latin-1")
        req.body = b"".join(self.parts)
        req.keep_alive = self.parser.should_keep_alive()
        if self.busy is not None or self.hung:
            self.queue.append(req)
        else:
            self._answer(req)

    # answering
    def _send(self, status: int, body: bytes, keep_alive: bool, ctype: bytes = b"application/json",
              extra: bytes = b"") -> None:
        self.transport.write(_head(status, ctype, len(body), keep_alive, extra) + body)
        if not keep_alive:
            self.transport.close()

    def _answer(self, req: _Request) -> None:
        server = self.server
        server.requests += 1
        path = req.path[3:] if req.path.startswith("/v1/") else req.path
        endpoint = path.strip("/")
        ka = req.keep_alive
        if req.method == b"GET" and endpoint == "models":
            self._send(200, orjson.dumps(_models(b"anthropic-version" in req.headers)), ka)
            return
        if endpoint not in _GENERATE and endpoint not in _COUNTS and endpoint != "embeddings":
            self._send(404, _error_body(endpoint, 404, f"no such endpoint: {req.path}"), ka)
            return
        if req.method != b"POST":
            self._send(405, _error_body(endpoint, 405, "use POST"), ka)
            return
        try:
            body = orjson.loads(req.body)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._send(400, _error_body(endpoint, 400, "the body is not a JSON object"), ka)
            return
        if server._record is not None:
            seen = {"path": req.path, "query": req.query, "body": body, "raw": req.body.decode("utf-8", "replace"),
                    "auth": _auth(req.headers),
                    "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers.items()
                                if k not in (b"authorization", b"x-api-key")}}
            if b"traceparent" in req.headers:  # what a traced gateway propagated
                seen["traceparent"] = req.headers[b"traceparent"].decode("latin-1")
            server._record.write(orjson.dumps(seen, option=orjson.OPT_APPEND_NEWLINE))
            server._record.flush()
        model = body.get("model")
        if model == "stub-fail-500":
            self._send(500, _error_body(endpoint, 500, "the stub was asked to fail (stub-fail-500)"), ka)
            return
        if model == "stub-rate-limit":
            self._send(429, _error_body(endpoint, 429, "the stub was asked to refuse (stub-rate-limit)"), ka,
                       extra=b"Retry-After: %d\r\n" % RATE_LIMIT_RETRY_AFTER)
            return
        if model == "stub-hang":
            self.hung = True  # this connection answers nothing more
            return
        if endpoint == "embeddings":
            self._send(200, orjson.dumps(_embeddings(body)), ka)
            return
        if endpoint in _COUNTS:
            self._send(200, orjson.dumps(_input_tokens(endpoint, body)), ka)
            return
        try:
            answer = _Answer(endpoint, body, server.residency)
        except _Invalid as e:
            self._send(400, _error_body(endpoint, 400, str(e), e.param), ka)
            return
        stream = body.get("stream") is True
        if model == "stub-reset" or model == "stub-slow" or stream:
            self.busy = asyncio.get_running_loop().create_task(self._stream(answer, stream, model, ka))
            return
        self._send(200, orjson.dumps(answer.json()), ka)

    async def _stream(self, answer: _Answer, stream: bool, model, keep_alive: bool) -> None:
        t = self.transport
        try:
            if not stream:  # a slow or resetting JSON answer
                body = orjson.dumps(answer.json())
                if model == "stub-reset":
                    t.write(_head(200, b"application/json", len(body), keep_alive) + body[:len(body) // 2])
                    await self._reset()
                    return
                await asyncio.sleep(SLOW_TOKEN_SECONDS * len(answer.tokens))
                self._send(200, body, keep_alive)
            else:
                t.write(_head(200, b"text/event-stream", None, keep_alive))
                for i, ev in enumerate(answer.events()):
                    if model == "stub-reset" and i == RESET_AFTER_EVENTS:
                        await self._reset()
                        return
                    t.write(_chunk(ev))
                    # yield between events so each leaves as its own segment, as a real model's would
                    await asyncio.sleep(SLOW_TOKEN_SECONDS if model == "stub-slow" else 0)
                t.write(b"0\r\n\r\n")
                if not keep_alive:
                    t.close()
        except asyncio.CancelledError:
            return
        finally:
            self.busy = None
        while self.queue and self.busy is None and not self.hung and not t.is_closing():
            self._answer(self.queue.popleft())

    async def _reset(self) -> None:
        """Let the client read what was sent, then reset the connection (RST, not FIN)."""
        await asyncio.sleep(0.1)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class StubServer:
    """A running stub model. ``url`` has no ``/v1`` suffix (``http://127.0.0.1:PORT``)."""

    def __init__(self, residency: str, record: str | None, tls: bool = False):
        self.residency = residency.upper()
        """The country shown in every answer, e.g. ``[stub BR]``."""
        self.scheme = "https" if tls else "http"
        self.record_path = record
        self._record = open(record, "ab") if record else None
        self.requests = 0
        """Requests answered (or refused) so far."""
        self.connections = 0
        """TCP connections accepted so far."""
        self._transports: set = set()
        self._server: asyncio.AbstractServer | None = None
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and drop every connection (hung ones included)."""
        if self._server is not None:
            self._server.close()
        for t in list(self._transports):
            t.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._record is not None:
            self._record.close()
            self._record = None

    async def __aenter__(self) -> "StubServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def start_stub(host: str = "127.0.0.1", port: int = 0, residency: str = "US",
                     record: str | None = None, ssl_context=None) -> StubServer:
    """Start a stub model on ``host:port`` in the running loop (port 0 picks a free one); with
    ``ssl_context`` (a server-side ``ssl.SSLContext``) it speaks HTTPS."""
    stub = StubServer(residency, record, tls=ssl_context is not None)
    loop = asyncio.get_running_loop()
    stub._server = await loop.create_server(lambda: _StubProtocol(stub), host, port, backlog=2048, ssl=ssl_context)
    sockname = stub._server.sockets[0].getsockname()
    stub.host, stub.port = sockname[0], sockname[1]
    return stub


def stub_command(args: argparse.Namespace) -> int:
    """`soberana stub [--host H] [--port P] [--residency CC] [--record FILE]`: serve until SIGINT/SIGTERM."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        try:
            stub = await start_stub(args.host, args.port, args.residency, args.record)
        except OSError as e:
            # the record file is opened first: its error carries the file name, a bind error none
            what = f"cannot record to {e.filename}" if e.filename else f"cannot listen on {args.host}:{args.port}"
            print(f"soberana stub: {what}: {e.strerror}", file=sys.stderr)
            raise SystemExit(1) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"stub model (residency {stub.residency}) listening on {stub.url}/v1", flush=True)
        await stop.wait()
        await stub.close()

    asyncio.run(main())
    return 0
