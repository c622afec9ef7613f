"""Dialects: what is inside OpenAI and Anthropic requests, answers and streams.

``extract_segments`` lists every text of a request body the model will see, with its JSON path and
kind; ``write_segments`` puts transformed texts back. Answers and streams are in ``answers``, SSE
framing in ``sse``, error shapes in ``errors``, OpenAI ↔ Anthropic translation in ``translate``.
"""

from __future__ import annotations

import re

import orjson

from gateway.dialects import anthropic, openai
from gateway.dialects.errors import DialectError
from gateway.dialects.segments import Segment

ENDPOINTS: dict[str, str] = {
    "/v1/chat/completions": "openai",
    "/v1/completions": "openai",
    "/v1/embeddings": "openai",
    "/v1/responses": "openai",
    "/v1/messages": "anthropic",
}
"""Every proxied endpoint and the dialect its callers speak."""

_EXTRACTORS = {**openai.EXTRACTORS, **anthropic.EXTRACTORS}

__all__ = ["ENDPOINTS", "DialectError", "Segment", "extract_segments", "write_segments",
           "request_model", "request_stream"]


def extract_segments(endpoint: str, payload: dict) -> list[Segment]:
    """Every text of ``payload`` the model will see, in document order.

    Images, audio, files, token arrays and unknown part types come back as segments of kind
    ``uninspectable`` with empty text (fail closed: policy decides what may happen to them).
    Raises :class:`DialectError` (code ``invalid_request``, status 400) on a body of the wrong shape.
    """
    fn = _EXTRACTORS.get(endpoint)
    if fn is None:
        raise DialectError(f"unknown endpoint {endpoint}", "not_found", 404)
    if not isinstance(payload, dict):
        raise DialectError("the request body must be a JSON object")
    out = fn(payload)
    _caller_fields(payload, out)
    known = _KNOWN_FIELDS[endpoint]
    for key, value in payload.items():
        if key not in known:
            # a field this gateway does not know (a provider's newer parameter, a vendor extension, or
            # anything a caller adds): the provider receives it all the same, so its strings are
            # inspected, its name and the keys of its objects too
            openai.key_text(key, (key,), out)
            openai.value_texts(value, (key,), out, "other")
    return out


_COMMON_FIELDS = frozenset({"model", "stream", "metadata", "temperature", "top_p", *("user", "safety_identifier",
                                                                                    "prompt_cache_key")})
_KNOWN_FIELDS = {
    "/v1/chat/completions": _COMMON_FIELDS | {
        "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "modalities", "moderation", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
        "response_format", "seed", "service_tier", "stop", "store", "stream_options", "tool_choice", "tools",
        "top_logprobs", "verbosity", "web_search_options"},
    "/v1/completions": _COMMON_FIELDS | {
        "prompt", "suffix", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
        "presence_penalty", "seed", "stop", "stream_options"},
    "/v1/embeddings": _COMMON_FIELDS | {"input", "dimensions", "encoding_format"},
    "/v1/responses": _COMMON_FIELDS | {
        "input", "instructions", "tools", "tool_choice", "text", "prompt", "reasoning", "prompt_cache_options",
        "prompt_cache_retention", "previous_response_id", "conversation", "include", "max_output_tokens",
        "max_tool_calls", "parallel_tool_calls", "service_tier", "store", "stream_options", "top_logprobs",
        "truncation", "background", "background_options", "context_management", "image", "moderation",
        "access_programs"},
    "/v1/messages": _COMMON_FIELDS | {
        "messages", "max_tokens", "system", "stop_sequences", "top_k", "tools", "tool_choice", "thinking",
        "service_tier", "container", "mcp_servers", "context_management", "output_config", "output_format",
        "cache_control", "diagnostics", "inference_geo", "speed"},
}
"""The top-level fields of each endpoint that its extractor reads, or that carry no free text."""


_CALLER_FIELDS = ("user", "safety_identifier", "prompt_cache_key")
"""Top-level strings of either dialect that name the caller's end user or session."""


def _caller_fields(payload: dict, out: list[Segment]) -> None:
    """Strings sent beside the prompt that reach the provider all the same: OpenAI's ``user``,
    ``safety_identifier`` and ``prompt_cache_key``, and ``metadata`` (Anthropic's ``metadata.user_id``),
    its keys as well as its values. Applications fill them with an e-mail or a national id as often
    as with an opaque id, so they are inspected and transformed like any text (kind ``other``; the
    keys, kind ``key``). So is ``logit_bias``: its keys are token ids by contract and its values
    numbers, but any string the caller puts there reaches the provider."""
    for key in _CALLER_FIELDS:
        v = payload.get(key)
        if type(v) is str:
            if v:
                out.append(Segment((key,), v, "other"))
        elif v is not None:  # not what the APIs take, but the provider receives it all the same
            openai.value_texts(v, (key,), out, "other")
    md = payload.get("metadata")
    if type(md) is dict:
        for k, v in md.items():
            openai.key_text(k, ("metadata", k), out)
            if type(v) is str:
                if v:
                    out.append(Segment(("metadata", k), v, "other"))
            else:  # not what the API takes, but the provider receives it all the same
                openai.value_texts(v, ("metadata", k), out, "other")
    elif md is not None:
        openai.value_texts(md, ("metadata",), out, "other")
    lb = payload.get("logit_bias")
    if type(lb) is dict:
        for k, v in lb.items():
            openai.key_text(k, ("logit_bias", k), out)
            if not isinstance(v, (int, float)):
                openai.value_texts(v, ("logit_bias", k), out, "other")


_JSON_STRING_OR_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(\[[A-Z][A-Za-z0-9_:.=-]*\])')
"""A JSON string (skipped whole), or a gateway token (``[CPF_1]``, ``[ENC:…]``, ``[HASH:…]``,
``[REDACTED:…]``) outside any string: no JSON value starts with ``[`` and a capital letter."""


def _quote_tokens(text: str) -> str:
    """A JSON text whose numbers a transformation replaced (a CPF or a phone number sent as a JSON
    number: ``{"cpf": [CPF_1]}``) made valid again: each token outside a string becomes a string."""
    return _JSON_STRING_OR_TOKEN.sub(lambda m: f'"{m.group(1)}"' if m.group(1) else m.group(0), text)


def _json_args(old: str, new: str) -> str:
    """Tool-call arguments after transformation: JSON still, when they were JSON before."""
    try:
        orjson.loads(new)
        return new
    except orjson.JSONDecodeError:
        pass
    try:
        orjson.loads(old)
    except orjson.JSONDecodeError:
        return new  # not JSON to begin with (a custom tool's free-text input)
    return _quote_tokens(new)


def write_segments(payload: dict, segments: list[Segment], new_texts: list[str]) -> None:
    """Write the texts that changed back into ``payload`` at their segments' paths, in place.

    Where the value at a path is not a string (an Anthropic ``tool_use`` input object) the new text
    is parsed as JSON; a text that is no longer valid JSON raises ``DialectError`` rather than
    sending something half-transformed. A segment of kind ``key`` renames its member instead (see
    ``_rename_keys``: a rename that would merge two members raises ``DialectError``, 400).
    """
    if len(segments) != len(new_texts):
        raise ValueError("one new text per segment is needed")
    renames = None
    for seg, new in zip(segments, new_texts):
        if new == seg.text or seg.kind == "uninspectable":
            continue
        if seg.kind == "key":
            # after every value: a value's path names its keys as they were sent
            if renames is None:
                renames = []
            renames.append((seg, new))
            continue
        parent = payload
        for key in seg.path[:-1]:
            parent = parent[key]
        last = seg.path[-1]
        if isinstance(parent[last], str):
            parent[last] = _json_args(seg.text, new) if seg.kind == "tool_arguments" else new
        else:
            try:
                parent[last] = orjson.loads(_json_args(seg.text, new))
            except orjson.JSONDecodeError:
                raise DialectError(f"{seg.where} is no longer valid JSON after transformation") from None
    if renames:
        _rename_keys(payload, renames)


def _rename_keys(payload: dict, renames: list[tuple[Segment, str]]) -> None:
    """Rename the keys of ``renames`` (segments of kind ``key`` and their new names), each object's
    members keeping their order. Two keys of one object that would be the same afterwards (two
    e-mails both redacted to ``[REDACTED:EMAIL]``, or a new name that the object already has) raise
    ``DialectError`` (400) rather than let one member silently replace the other."""
    # every object is found first, by the paths as sent: renaming an object's key does not move the
    # objects inside it, so the renames can then be applied in any order
    per: dict[int, tuple[dict, dict[str, str]]] = {}
    for seg, new in renames:
        parent = payload
        for key in seg.path[:-1]:
            parent = parent[key]
        per.setdefault(id(parent), (parent, {}))[1][seg.path[-1]] = new
    for parent, names in per.values():
        items = [(names.get(k, k), v) for k, v in parent.items()]
        if len({k for k, _ in items}) != len(items):
            # (not quoted: error messages never repeat a request value)
            raise DialectError("two keys of one object would be the same after the policy's transformation; "
                               "the request cannot be sent without losing one of them")
        parent.clear()
        parent.update(items)


def request_model(payload: dict) -> str | None:
    """The model the caller asked for, or ``None``."""
    m = payload.get("model") if isinstance(payload, dict) else None
    return m if isinstance(m, str) and m else None


def request_stream(payload: dict) -> bool:
    """Whether the caller asked for a streamed answer."""
    return isinstance(payload, dict) and payload.get("stream") is True
