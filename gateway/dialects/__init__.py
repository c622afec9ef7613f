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
from gateway.dialects.fields import READ, SCALARS, rest_texts
from gateway.dialects.segments import Segment

ENDPOINTS: dict[str, str] = {
    "/v1/chat/completions": "openai",
    "/v1/completions": "openai",
    "/v1/embeddings": "openai",
    "/v1/responses": "openai",
    "/v1/messages": "anthropic",
    # the input of a request, sent to be counted: the provider receives every text of it all the same,
    # so it goes the same way (inspected, decided, transformed, audited). Neither has an equivalent in
    # the other dialect: only upstreams of the caller's dialect carry them (``translate.carries``)
    "/v1/responses/input_tokens": "openai",
    "/v1/messages/count_tokens": "anthropic",
}
"""Every proxied endpoint and the dialect its callers speak."""

COUNTS = frozenset(("/v1/responses/input_tokens", "/v1/messages/count_tokens"))
"""The endpoints that count a request's input tokens and generate nothing."""

_EXTRACTORS = {**openai.EXTRACTORS, **anthropic.EXTRACTORS}

__all__ = ["ENDPOINTS", "COUNTS", "DialectError", "Segment", "extract_segments", "write_segments",
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
    fields = _FIELDS[endpoint]
    _caller_fields(payload, out, fields)
    # the body's own fields, by the rule every object of a request follows (see ``fields``): a field
    # this gateway does not know (a provider's newer parameter, a vendor extension, anything a caller
    # adds) is inspected, its name too; a setting holding anything besides numbers, booleans and the
    # API's words for it (a custom voice, an id, a string where an enum belongs) is inspected whole
    rest_texts(payload, (), fields, out)
    return out


_READ = READ
"""Marks a field whose every string the extractor itself makes a segment (its tests put a CPF in
each): generic inspection passes it over. ``model`` too: the gateway routes on it and sends the
route's model name instead, so the caller's string never reaches a provider."""
_SCALARS = SCALARS


def _fields(read: str, settings: dict[str, str]) -> dict[str, object]:
    """One endpoint's top-level fields: ``read``, the fields its extractor reads itself (``_READ``),
    and ``settings``, the fields that hold no free text, each with its words (space-separated)."""
    out: dict[str, object] = {f: _READ for f in read.split()}
    for f, words in settings.items():
        assert f not in out, f
        out[f] = frozenset(words.split())
    return out


_NO_WORDS = ""
"""The words of a setting that takes a number, a boolean or an id: none (``fields.ID``)."""
_EFFORTS = "none minimal low medium high xhigh max"
_COMMON_SETTINGS = {"stream": _NO_WORDS, "temperature": _NO_WORDS, "top_p": _NO_WORDS}
_COMMON_READ = "model metadata user safety_identifier prompt_cache_key"
"""Read by ``_caller_fields`` (``model``: see ``_READ``)."""
_MODERATION = "model policy input output mode score block omni-moderation-latest"
_CACHE_OPTIONS = "mode implicit explicit ttl 30m 12h prewarm"
_CACHE_RETENTION = "in_memory in-memory 24h"
_SERVICE_TIERS = "auto default flex scale priority fast ultrafast"

_FIELDS = {
    "/v1/chat/completions": _fields(
        _COMMON_READ + " messages tools functions tool_choice function_call web_search_options response_format"
        " prediction stop logit_bias", {
            **_COMMON_SETTINGS, **dict.fromkeys((
                "frequency_penalty", "presence_penalty", "seed", "n", "max_tokens", "max_completion_tokens",
                "logprobs", "top_logprobs", "parallel_tool_calls", "store"), _NO_WORDS),
            "audio": "voice format alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar"
                     " wav aac mp3 flac opus pcm16",
            "modalities": "text audio", "moderation": _MODERATION, "prompt_cache_options": _CACHE_OPTIONS,
            "prompt_cache_retention": _CACHE_RETENTION, "reasoning_effort": _EFFORTS,
            "service_tier": _SERVICE_TIERS, "stream_options": "include_usage include_obfuscation",
            "verbosity": "low medium high"}),
    "/v1/completions": _fields(_COMMON_READ + " prompt suffix stop logit_bias", {
        **_COMMON_SETTINGS, **dict.fromkeys((
            "best_of", "echo", "frequency_penalty", "logprobs", "max_tokens", "n", "presence_penalty", "seed"), _NO_WORDS),
        "stream_options": "include_usage include_obfuscation"}),
    "/v1/embeddings": _fields(_COMMON_READ + " input", {
        **_COMMON_SETTINGS, "dimensions": _NO_WORDS, "encoding_format": "float base64"}),
    "/v1/responses": _fields(_COMMON_READ + " input instructions tools tool_choice text prompt", {
        **_COMMON_SETTINGS, **dict.fromkeys((
            "max_output_tokens", "max_tool_calls", "parallel_tool_calls", "store", "top_logprobs", "background",
            "previous_response_id", "conversation"), _NO_WORDS),
        "reasoning": "effort summary generate_summary context mode auto concise detailed current_turn all_turns"
                     " standard pro " + _EFFORTS,
        "include": "file_search_call.results web_search_call.results web_search_call.action.sources"
                   " message.input_image.image_url computer_call_output.output.image_url"
                   " code_interpreter_call.outputs reasoning.encrypted_content message.output_text.logprobs",
        "prompt_cache_options": _CACHE_OPTIONS, "prompt_cache_retention": _CACHE_RETENTION,
        "service_tier": _SERVICE_TIERS, "stream_options": "include_obfuscation", "truncation": "auto disabled",
        "background_options": "completion_window soonest 2h 8h",
        "context_management": "type compaction compact_threshold",
        "image": "context_compression auto enabled disabled", "moderation": _MODERATION,
        "access_programs": "cyber standard daybreak_blue daybreak_red"}),
    "/v1/messages": _fields(
        _COMMON_READ + " messages system tools tool_choice mcp_servers stop_sequences output_config output_format", {
            **_COMMON_SETTINGS, "max_tokens": _NO_WORDS, "top_k": _NO_WORDS,
            "thinking": "type enabled disabled adaptive budget_tokens display summarized omitted",
            "service_tier": "auto standard_only", "speed": "standard fast", "inference_geo": "global us",
            "cache_control": "type ephemeral ttl 5m 1h",
            "context_management": "edits type trigger keep clear_at_least clear_tool_inputs value input_tokens"
                                  " tool_uses clear_tool_uses_20250919 clear_thinking_20251015 thinking_turns all",
            "container": _NO_WORDS, "diagnostics": _NO_WORDS}),
}
"""Every top-level field of each endpoint the gateway knows: those its extractor reads (``_READ``)
and settings, each with the words it may hold uninspected (``fields.plain``). Every other field, and a
setting holding anything else, is inspected generically: a field nobody reads cannot go upstream
unseen because somebody listed it here."""
# the counts take the body of the request they count (a setting they do not take, the provider refuses)
_FIELDS["/v1/responses/input_tokens"] = _FIELDS["/v1/responses"]
_FIELDS["/v1/messages/count_tokens"] = _FIELDS["/v1/messages"]



_CALLER_FIELDS = ("user", "safety_identifier", "prompt_cache_key")
"""Top-level strings of either dialect that name the caller's end user or session."""


def _caller_fields(payload: dict, out: list[Segment], fields: dict) -> None:
    """Strings sent beside the prompt that reach the provider all the same: OpenAI's ``user``,
    ``safety_identifier`` and ``prompt_cache_key``, and ``metadata`` (Anthropic's ``metadata.user_id``),
    its keys as well as its values. Applications fill them with an e-mail or a national id as often
    as with an opaque id, so they are inspected and transformed like any text (kind ``other``; the
    keys, kind ``key``). So is ``logit_bias`` where the endpoint takes it: its keys are token ids by
    contract and its values numbers, but any string the caller puts there reaches the provider."""
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
    if lb is not None and fields.get("logit_bias") is _READ:
        if type(lb) is dict:
            for k, v in lb.items():
                openai.key_text(k, ("logit_bias", k), out)
                if type(v) not in _SCALARS:
                    openai.value_texts(v, ("logit_bias", k), out, "other")
        else:
            openai.value_texts(lb, ("logit_bias",), out, "other")


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
