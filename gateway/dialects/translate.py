"""Translation between the Anthropic Messages and OpenAI Chat Completions dialects.

Used when a caller's dialect differs from the chosen upstream's: an Anthropic SDK routed to an
OpenAI-compatible in-country model, or an OpenAI SDK routed to Anthropic. Only
``/v1/messages`` ↔ ``/v1/chat/completions``: ``carries`` says which upstreams can serve an endpoint at
all. ``src`` is always the caller's dialect and ``dst`` the upstream's: requests go src → dst, answers
and streams come back dst → src.
"""

from __future__ import annotations

import time

import orjson

from gateway.dialects.errors import DialectError, stream_error_event
from gateway.dialects.sse import SSEParser, format_event

ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``: sent when an OpenAI caller gave none and the model is none of
``CLAUDE_MAX_OUTPUT``'s (every Claude model can write that many)."""

CLAUDE_MAX_OUTPUT = (
    ("claude-opus-4-6", 128000), ("claude-opus-4-5", 64000), ("claude-opus-4-1", 32000), ("claude-opus-4", 32000),
    ("claude-sonnet-4", 64000), ("claude-haiku-4-5", 64000), ("claude-3-7-sonnet", 64000),
    ("claude-3-5-sonnet", 8192), ("claude-3-5-haiku", 8192), ("claude-3-opus", 4096), ("claude-3-haiku", 4096),
)
"""The documented maximum output of Claude models, by model name prefix (the longer prefix first):
what an OpenAI caller that sets no limit gets, as OpenAI's own models write until their maximum.
(A newer model of a family, such as a later Opus 4.x, gets its family's smallest: never too many.)
A sent ``max_tokens`` above a model's maximum is a 400, so a model not listed gets the
conservative ``ANTHROPIC_DEFAULT_MAX_TOKENS`` (an upstream's ``default_max_tokens`` overrides)."""

ANTHROPIC_UNSTREAMED_MAX_TOKENS = 21333
"""The most ``max_tokens`` a request that is not streamed gets by default: above it Anthropic's own
SDKs refuse to send one without streaming (it may take more than 10 minutes, and idle connections
that long are cut on the way)."""

_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "function_call": "tool_use", "content_filter": "refusal"}
_STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                   "refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length"}


def _json(obj) -> str:
    return orjson.dumps(obj).decode()


# Part and block types of either dialect, by name. The ``type`` of a part is the caller's string: an
# error message names it only when it is one of these, never a string the caller made up (it could
# be a CPF or a key, and error messages never quote request values).
_KNOWN_TYPES = frozenset({
    "text", "input_text", "output_text", "refusal", "image", "image_url", "input_image", "input_audio",
    "audio", "file", "input_file", "document", "tool_use", "tool_result", "server_tool_use",
    "web_search_tool_result", "search_result", "thinking", "redacted_thinking", "container_upload",
})


def _type_name(typ) -> str:
    """A part's ``type`` as an error message may show it: a known type's name, else a placeholder."""
    return typ if isinstance(typ, str) and typ in _KNOWN_TYPES else "an unsupported type"


def _loads_object(text: str, where: str) -> dict:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise DialectError(f"{where} is not valid JSON") from None
    return value if isinstance(value, dict) else {"value": value}


# -- requests ------------------------------------------------------------------------------------

def _text_of(content) -> str:
    """Plain text of an Anthropic content (string or blocks) or an OpenAI content (string or parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") in ("text", "input_text"))


def _a_block_to_part(b: dict, where: str) -> dict:
    typ = b.get("type")
    if typ == "text":
        return {"type": "text", "text": b["text"]}
    src = b.get("source") if isinstance(b.get("source"), dict) else {}
    if typ == "image":
        if src.get("type") == "base64":
            return {"type": "image_url", "image_url": {"url": f"data:{src.get('media_type')};base64,{src.get('data')}"}}
        if src.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": src.get("url")}}
    if typ == "document":
        if src.get("type") == "text":
            return {"type": "text", "text": src.get("data", "")}
        if src.get("type") == "base64":
            return {"type": "file", "file": {"filename": b.get("title") or "document.pdf",
                                             "file_data": f"data:{src.get('media_type')};base64,{src.get('data')}"}}
    raise DialectError(f"{where} ({_type_name(typ)}) has no equivalent in the OpenAI dialect")


def _refuse_what_openai_cannot_do(payload: dict) -> None:
    """A 400 naming the parameter, for what an Anthropic caller asked that an OpenAI-dialect model
    cannot do and that would otherwise be dropped: the tools Anthropic runs or defines itself (web
    search, code execution, bash, a text editor, a computer: no schema an OpenAI-dialect model could
    call them by) and MCP servers. Dropped on purpose, since the answer keeps its shape and meaning:
    ``top_k`` (a sampling hint OpenAI refuses outright), ``thinking`` and ``output_config.effort``
    (the model reasons as it does; thinking blocks are optional in an answer), ``cache_control``,
    ``service_tier``, ``speed``, ``inference_geo``, ``context_management``, ``container`` and
    ``diagnostics`` (Anthropic's own serving), an earlier answer's thinking blocks and citations, and
    a text document's title and context."""
    for j, t in enumerate(payload.get("tools") or ()):
        if isinstance(t, dict) and "input_schema" not in t:
            raise DialectError(f"tools[{j}] (a tool Anthropic defines or runs) has no equivalent in the OpenAI dialect")
    if payload.get("mcp_servers"):
        raise DialectError("mcp_servers has no equivalent in the OpenAI dialect")


def _anthropic_to_openai(payload: dict, upstream=None) -> dict:
    _refuse_what_openai_cannot_do(payload)
    out: dict = {"model": payload.get("model")}
    msgs: list = []
    system = payload.get("system")
    if isinstance(system, list):
        # several blocks stay apart, as text parts of the system message (joined into one string,
        # where one ended and the next began was lost); one block is the plain string every server takes
        for j, b in enumerate(system):
            if b.get("type") != "text":
                raise DialectError(f"system[{j}] ({_type_name(b.get('type'))}) has no equivalent in the OpenAI dialect")
        parts = [{"type": "text", "text": b["text"]} for b in system if b.get("text")]
        system = parts[0]["text"] if len(parts) == 1 else parts
    if system:
        msgs.append({"role": "system", "content": system})
    for i, m in enumerate(payload.get("messages") or []):
        role, content = m.get("role"), m.get("content")
        if isinstance(content, str):
            msgs.append({"role": role, "content": content})
            continue
        if role == "assistant":
            for j, b in enumerate(content):
                if b.get("type") not in ("text", "tool_use", "thinking", "redacted_thinking"):
                    raise DialectError(f"messages[{i}].content[{j}] ({_type_name(b.get('type'))}) has no equivalent "
                                      "in the OpenAI dialect")
            text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            calls = [{"id": b.get("id"), "type": "function",
                      "function": {"name": b.get("name"), "arguments": _json(b.get("input", {}))}}
                     for b in content if b.get("type") == "tool_use"]
            msg: dict = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = calls
            msgs.append(msg)
            continue
        # user: tool results first (OpenAI wants them right after the assistant's tool_calls), then the rest
        parts = []
        for j, b in enumerate(content):
            if b.get("type") == "tool_result":
                inner = b.get("content")
                if isinstance(inner, list):
                    # OpenAI tool messages carry text only: a result's images (a screenshot tool's) go
                    # in the user message that follows the tool messages, in their order, not dropped
                    parts.extend(_a_block_to_part(x, f"messages[{i}].content[{j}].content[{k}]")
                                 for k, x in enumerate(inner) if x.get("type") != "text")
                texts = [x.get("text", "") for x in inner if x.get("type") == "text"] if isinstance(inner, list) else []
                if len(texts) > 1:
                    # several text blocks (an MCP tool's items): text parts, which OpenAI tool messages
                    # take too; joined into one string, their words ran together
                    if b.get("is_error"):
                        texts[0] = f"Error: {texts[0]}"
                    result: str | list = [{"type": "text", "text": t} for t in texts]
                else:
                    result = _text_of(inner)
                    if b.get("is_error"):
                        result = f"Error: {result}"
                msgs.append({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": result})
            elif b.get("type") in ("thinking", "redacted_thinking"):
                continue
            else:
                parts.append(_a_block_to_part(b, f"messages[{i}].content[{j}]"))
        if parts:
            if all(p["type"] == "text" for p in parts):
                msgs.append({"role": role, "content": "".join(p["text"] for p in parts) if len(parts) == 1 else parts})
            else:
                msgs.append({"role": role, "content": parts})
    out["messages"] = msgs
    if "max_tokens" in payload:
        # OpenAI's name for it since the o-series (which refuse the older max_tokens, deprecated for
        # every chat model); vLLM and SGLang take it too. An upstream that knows only max_tokens says so
        # (``legacy_max_tokens``): Ollama ignores a field it does not know, and the limit would be lost
        legacy = getattr(upstream, "legacy_max_tokens", False)
        out["max_tokens" if legacy else "max_completion_tokens"] = payload["max_tokens"]
    for k in ("temperature", "top_p"):
        if k in payload:
            out[k] = payload[k]
    if payload.get("stop_sequences"):
        out["stop"] = list(payload["stop_sequences"])
    tools = payload.get("tools") or []  # (custom tools only: see above)
    if tools:
        out["tools"] = []
        for t in tools:
            fn = {"name": t["name"], "parameters": t["input_schema"]}
            if t.get("description") is not None:
                fn["description"] = t["description"]
            if isinstance(t.get("strict"), bool):  # strict tool use: calls that match the schema, in both APIs
                fn["strict"] = t["strict"]
            out["tools"].append({"type": "function", "function": fn})
    tc = payload.get("tool_choice")
    if isinstance(tc, dict) and tools:  # OpenAI refuses a tool_choice without tools (400)
        typ = tc.get("type")
        if typ == "auto":
            out["tool_choice"] = "auto"
        elif typ == "any":
            out["tool_choice"] = "required"
        elif typ == "none":
            out["tool_choice"] = "none"
        elif typ == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": tc.get("name")}}
        if tc.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    oc = payload.get("output_config")
    fmt = oc.get("format") if isinstance(oc, dict) else payload.get("output_format")  # (its older beta form)
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":  # structured output, as OpenAI asks for it
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt.get("schema") or {}}}
    if payload.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    meta = payload.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        out["user"] = meta["user_id"]
    return out


def _o_part_to_block(p, where: str) -> dict:
    if isinstance(p, str):
        return {"type": "text", "text": p}
    typ = p.get("type")
    if typ in ("text", "input_text"):
        return {"type": "text", "text": p.get("text", "")}
    if typ == "image_url":
        url = (p.get("image_url") or {}).get("url", "") if isinstance(p.get("image_url"), dict) else p.get("image_url", "")
        if url.startswith("data:") and ";base64," in url:
            media, data = url[5:].split(";base64,", 1)
            return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}
    if typ == "file":
        f = p.get("file") or {}
        data = f.get("file_data", "")
        if data.startswith("data:") and ";base64," in data:
            media, b64 = data[5:].split(";base64,", 1)
            return {"type": "document", "source": {"type": "base64", "media_type": media, "data": b64}}
    raise DialectError(f"{where} ({_type_name(typ)}) has no equivalent in the Anthropic dialect")


def _blocks_of(content, where: str) -> list:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = [_o_part_to_block(p, f"{where}[{j}]") for j, p in enumerate(content)]
    return [b for b in blocks if b["type"] != "text" or b["text"]]  # Anthropic rejects empty text blocks


def _default_max_tokens(model, stream: bool, configured: int | None) -> int:
    """The ``max_tokens`` Claude gets when an OpenAI caller set none: the upstream's configured
    ``default_max_tokens``, else the model's documented maximum output (``CLAUDE_MAX_OUTPUT``), at
    most ``ANTHROPIC_UNSTREAMED_MAX_TOKENS`` when not streamed. (4096 for every model cut answers
    OpenAI's models would have finished: finish_reason "length" where the caller expected none.)"""
    if configured is not None:
        return configured
    name = model if isinstance(model, str) else ""
    most = next((n for prefix, n in CLAUDE_MAX_OUTPUT if name.startswith(prefix)), ANTHROPIC_DEFAULT_MAX_TOKENS)
    return most if stream else min(most, ANTHROPIC_UNSTREAMED_MAX_TOKENS)


def _refuse_what_claude_cannot_do(payload: dict) -> None:
    """A 400 naming the parameter, for what an OpenAI caller asked that Claude cannot do and that would
    otherwise be dropped: the caller relies on it (reads logprobs, parses JSON, sends the model
    functions) and must not get another contract without knowing. Sent with a value that asks for
    nothing (``logprobs: false``, an empty list), a parameter passes. Dropped on purpose, since the
    answer keeps its shape and meaning: ``seed``, ``frequency_penalty``, ``presence_penalty`` (sampling
    hints, best effort at OpenAI too), ``reasoning_effort`` and ``verbosity``, ``service_tier``,
    ``store`` and OpenAI's ``metadata`` (its stored completions' tags), ``prediction``, ``moderation``,
    ``prompt_cache_key``, ``prompt_cache_options`` and ``prompt_cache_retention`` (caching is
    Anthropic's own), ``response_format`` text (the default), a message's ``name`` and an image's
    ``detail``."""
    n = payload.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        # Claude gives one answer a request: a caller that asked for n choices must not silently get one
        raise DialectError("n greater than 1 has no equivalent in the Anthropic dialect")
    if payload.get("logprobs") is True or payload.get("top_logprobs"):
        raise DialectError("logprobs has no equivalent in the Anthropic dialect: Claude gives no token probabilities")
    rf = payload.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        # Claude's structured output takes a schema (json_schema), and JSON mode's "any object" is none
        raise DialectError("response_format json_object has no equivalent in the Anthropic dialect: "
                           "use json_schema with the object's schema")
    for name in ("functions", "function_call", "audio", "logit_bias"):
        if payload.get(name):
            raise DialectError(f"{name} has no equivalent in the Anthropic dialect")
    if payload.get("web_search_options") is not None:  # (an empty one asks for web search too)
        raise DialectError("web_search_options has no equivalent in the Anthropic dialect")
    if "audio" in (payload.get("modalities") or ()):
        raise DialectError("modalities audio has no equivalent in the Anthropic dialect")
    if any(isinstance(t, dict) and t.get("type") != "function" for t in payload.get("tools") or ()):
        raise DialectError("tools of a type other than function have no equivalent in the Anthropic dialect")
    tc = payload.get("tool_choice")
    if isinstance(tc, dict) and not isinstance(tc.get("function"), dict):  # allowed_tools, custom
        raise DialectError("tool_choice of a type other than function has no equivalent in the Anthropic dialect")


def _openai_to_anthropic(payload: dict, upstream=None) -> dict:
    _refuse_what_claude_cannot_do(payload)
    out: dict = {"model": payload.get("model")}
    system: list[dict] = []  # Anthropic system text blocks, one per text of a system or developer message
    msgs: list = []

    def add(role: str, blocks: list) -> None:
        if not blocks:
            return
        if msgs and msgs[-1]["role"] == role:  # Anthropic wants user/assistant turns to alternate
            msgs[-1]["content"].extend(blocks)
        else:
            msgs.append({"role": role, "content": blocks})

    for i, m in enumerate(payload.get("messages") or []):
        role, content, where = m.get("role"), m.get("content"), f"messages[{i}].content"
        if role in ("system", "developer"):
            # each text its own block, in order: glued into one string, their boundaries were lost
            for b in _blocks_of(content, where):
                if b["type"] != "text":
                    raise DialectError(f"{where} ({b['type']}) has no equivalent in an Anthropic system prompt")
                system.append(b)
        elif role == "user":
            add("user", _blocks_of(content, where))
        elif role == "assistant":
            # an earlier refusal, replayed in the history (a refusal part, or the message's refusal
            # field with no content): what the model said, as text; Claude has no refusal block
            if isinstance(content, list):
                content = [{"type": "text", "text": p.get("refusal") or ""}
                           if isinstance(p, dict) and p.get("type") == "refusal" else p for p in content]
            blocks = [b for b in _blocks_of(content, where) if b["type"] == "text"]
            if not blocks and isinstance(m.get("refusal"), str) and m["refusal"]:
                blocks.append({"type": "text", "text": m["refusal"]})
            if m.get("function_call"):  # a legacy function call (its result, role function, is refused too)
                raise DialectError(f"messages[{i}].function_call has no equivalent in the Anthropic dialect: use tool_calls")
            for k, call in enumerate(m.get("tool_calls") or []):
                if call.get("type") == "custom":  # (a custom tool's free-text input: see _refuse_what_claude_cannot_do)
                    raise DialectError(f"messages[{i}].tool_calls[{k}] (a custom tool call) has no equivalent "
                                       "in the Anthropic dialect")
                fn = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                               "input": _loads_object(fn.get("arguments", ""), f"messages[{i}].tool_calls[{k}].function.arguments")})
            add("assistant", blocks)
        elif role == "tool":
            # several text parts stay apart as text blocks (joined into one string, their words ran together)
            # and an image (a screenshot tool's, which Claude's tool results take) is sent, not dropped
            blocks = _blocks_of(content, where) if isinstance(content, list) else []
            result = blocks if len(blocks) > 1 or any(b["type"] != "text" for b in blocks) else _text_of(content)
            add("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": result}])
        else:
            raise DialectError(f"messages[{i}].role has no equivalent in the Anthropic dialect")
    if system:
        out["system"] = system
    out["messages"] = msgs
    mt = payload.get("max_completion_tokens") or payload.get("max_tokens")
    out["max_tokens"] = mt if isinstance(mt, int) and mt > 0 else _default_max_tokens(
        payload.get("model"), payload.get("stream") is True, getattr(upstream, "default_max_tokens", None))
    if isinstance(payload.get("temperature"), (int, float)):
        out["temperature"] = min(float(payload["temperature"]), 1.0)  # OpenAI allows up to 2, Anthropic 1
    if "top_p" in payload:
        out["top_p"] = payload["top_p"]
    stop = payload.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [t.get("function") for t in payload.get("tools") or []]  # (functions only: see above)
    if tools:
        out["tools"] = []
        for fn in tools:
            t = {"name": fn.get("name"), "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
            if fn.get("description") is not None:
                t["description"] = fn["description"]
            if isinstance(fn.get("strict"), bool):  # (see _anthropic_to_openai)
                t["strict"] = fn["strict"]
            out["tools"].append(t)
    tc = payload.get("tool_choice")
    choice = None
    if tc == "auto":
        choice = {"type": "auto"}
    elif tc == "required":
        choice = {"type": "any"}
    elif tc == "none":
        choice = {"type": "none"}
    elif isinstance(tc, dict) and isinstance(tc.get("function"), dict):
        choice = {"type": "tool", "name": tc["function"].get("name")}
    # Anthropic's {"type": "none"} has no disable_parallel_tool_use (an extra field is a 400 there)
    if payload.get("parallel_tool_calls") is False and tools and (choice or {}).get("type") != "none":
        choice = dict(choice or {"type": "auto"}, disable_parallel_tool_use=True)
    if choice is not None and (tools or choice["type"] == "none"):
        out["tool_choice"] = choice
    rf = payload.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema" and isinstance(rf.get("json_schema"), dict):
        # structured output: dropped, the caller (``client.chat.completions.parse``) gets prose it cannot parse
        out["output_config"] = {"format": {"type": "json_schema", "schema": rf["json_schema"].get("schema") or {}}}
    if payload.get("stream") is True:
        out["stream"] = True
    # the end user, for the provider's abuse detection: OpenAI's safety_identifier (which replaces the
    # deprecated user), else user
    end_user = next((v for v in (payload.get("safety_identifier"), payload.get("user")) if isinstance(v, str)), None)
    if end_user is not None:
        out["metadata"] = {"user_id": end_user}
    return out


_TRANSLATIONS = {
    ("anthropic", "openai", "/v1/messages"): ("/v1/chat/completions", _anthropic_to_openai),
    ("openai", "anthropic", "/v1/chat/completions"): ("/v1/messages", _openai_to_anthropic),
}
"""(caller's dialect, upstream's dialect, caller's endpoint) -> (upstream's endpoint, body translation):
every endpoint pair that can cross dialects."""


def carries(src: str, dst: str, endpoint: str) -> bool:
    """Whether a ``dst``-dialect upstream can serve a ``src``-dialect request to ``endpoint``: every
    endpoint of its own dialect, and of the other only what ``translate_request`` translates. The
    routing asks this before it decides (an upstream that cannot carry the endpoint is no candidate
    for the request), so it must say exactly what ``translate_request`` does."""
    return src == dst or (src, dst, endpoint) in _TRANSLATIONS


def translate_request(src: str, dst: str, endpoint: str, payload: dict, upstream=None) -> tuple[str, dict]:
    """The endpoint and body to send to a ``dst``-dialect upstream for a ``src``-dialect request;
    ``upstream``: its config (``config.Upstream``: ``default_max_tokens``, ``legacy_max_tokens``), if any."""
    if src == dst:
        return endpoint, payload
    pair = _TRANSLATIONS.get((src, dst, endpoint))
    if pair is None:  # (the routing takes no such upstream: see ``carries``)
        raise DialectError(f"{endpoint} cannot be translated from the {src} to the {dst} dialect")
    to, translate = pair
    return to, translate(payload, upstream)


# -- answers -------------------------------------------------------------------------------------

def _call_finish(finish, ends_on_call: bool):
    """An OpenAI ``finish_reason`` as Claude would have ended: OpenAI answers a call it was made to
    make (a named tool_choice, often "required" too) with "stop", not "tool_calls", and vLLM does the
    same by design; Claude says stop_reason "tool_use" whenever it calls a tool, and Anthropic agent
    loops run the tools only then. So a "stop" that ends on a tool call is a "tool_calls"."""
    return "tool_calls" if finish == "stop" and ends_on_call else finish


def _matched_stop(choice: dict, stops) -> str | None:
    """The stop sequence an OpenAI-dialect choice ended on, when the server says (vLLM's and SGLang's
    ``stop_reason``: the matched string; OpenAI's ``finish_reason`` is a plain "stop" either way) and
    it is one the request sent: never any string of the upstream's making."""
    matched = choice.get("stop_reason")
    if choice.get("finish_reason") == "stop" and isinstance(matched, str) and matched in stops:
        return matched
    return None


def _chat_to_message(answer: dict, model: str, stops=()) -> dict:
    choice = (answer.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content: list = []
    text = _text_of(msg.get("content"))
    refusal = msg.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if refused:  # a refusal comes in its own field, the content null: Claude says why in a text block
        text += refusal
    if text:
        content.append({"type": "text", "text": text})
    cut = choice.get("finish_reason") == "length"
    for k, call in enumerate(msg.get("tool_calls") or []):
        fn = call.get("function") or {}
        try:
            args = _loads_object(fn.get("arguments", ""), f"choices[0].message.tool_calls[{k}].function.arguments")
        except DialectError:
            if not cut:
                raise
            # arguments cut by max tokens are no JSON: Claude's own answer then has ``input: {}`` and
            # ``stop_reason: "max_tokens"``; a 502 would take from the caller what the model did say
            args = {}
        content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{k}", "name": fn.get("name"),
                        "input": args})
    usage = answer.get("usage") or {}
    rid = str(answer.get("id") or "")
    finish = _call_finish(choice.get("finish_reason"), bool(content) and content[-1]["type"] == "tool_use")
    stop_sequence = _matched_stop(choice, stops) if finish == "stop" else None
    return {"id": rid if rid.startswith("msg_") else f"msg_{rid}", "type": "message", "role": "assistant",
            "model": model, "content": content,
            "stop_reason": ("refusal" if refused else "stop_sequence" if stop_sequence is not None
                            else _FINISH_TO_STOP.get(finish, "end_turn")),
            "stop_sequence": stop_sequence, "usage": _anthropic_usage(usage)}


def _anthropic_usage(usage: dict) -> dict:
    """An OpenAI usage as Anthropic counts it: OpenAI's ``prompt_tokens`` include the tokens read from
    the prompt cache (``prompt_tokens_details.cached_tokens``), Anthropic's ``input_tokens`` leave them
    out and count them as ``cache_read_input_tokens``."""
    details = usage.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") if isinstance(details, dict) else 0) or 0
    out = {"input_tokens": max((usage.get("prompt_tokens") or 0) - cached, 0),
           "output_tokens": usage.get("completion_tokens") or 0}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def _prompt_tokens(usage: dict) -> int:
    """An Anthropic usage's prompt tokens as OpenAI counts them: Anthropic's ``input_tokens`` leave out
    the tokens read from and written to the prompt cache, OpenAI's ``prompt_tokens`` include them."""
    return sum(usage.get(k) or 0 for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))


def _openai_usage(usage: dict) -> dict:
    """An Anthropic usage as OpenAI counts it, with the tokens read from the prompt cache as
    ``prompt_tokens_details.cached_tokens`` (what OpenAI callers read their cache hits from)."""
    pin, pout = _prompt_tokens(usage), usage.get("output_tokens") or 0
    out = {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout}
    if usage.get("cache_read_input_tokens"):
        out["prompt_tokens_details"] = {"cached_tokens": usage["cache_read_input_tokens"]}
    return out


def _message_to_chat(answer: dict, model: str) -> dict:
    texts, calls = [], []
    for block in answer.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": _json(block.get("input", {}))}})
    msg: dict = {"role": "assistant", "content": "".join(texts) if texts or not calls else None, "refusal": None}
    if calls:
        msg["tool_calls"] = calls
    return {"id": f"chatcmpl-{answer.get('id', '')}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": _STOP_TO_FINISH.get(answer.get("stop_reason"), "stop")}],
            "usage": _openai_usage(answer.get("usage") or {})}


def translate_response(src: str, dst: str, answer: dict, model: str, stops=()) -> dict:
    """A ``dst``-dialect upstream answer as the ``src``-dialect caller expects it; ``model`` is the name
    the caller asked for, ``stops`` the stop sequences the upstream was sent."""
    if src == dst:
        return answer
    if src == "anthropic" and dst == "openai":
        return _chat_to_message(answer, model, stops)
    if src == "openai" and dst == "anthropic":
        return _message_to_chat(answer, model)
    raise DialectError(f"answers cannot be translated from the {dst} to the {src} dialect")


# -- streams -------------------------------------------------------------------------------------

class StreamTranslator:
    """An upstream stream in the ``dst`` dialect, re-told incrementally in the caller's ``src`` dialect.

    A stream that ends without its dialect's normal ending becomes the caller's error event, never a
    made-up normal ending.
    """

    def __init__(self, src: str, dst: str, model: str, include_usage: bool = True, stops=()):
        """``include_usage``: an OpenAI caller's ``stream_options.include_usage`` (its usage chunk);
        ``stops``: the stop sequences the upstream was sent."""
        if {src, dst} != {"openai", "anthropic"}:
            raise DialectError(f"streams cannot be translated from the {dst} to the {src} dialect")
        self.src, self.dst, self.model = src, dst, model
        self.include_usage = include_usage
        self.stops = stops
        self._parser = SSEParser()
        self._ended = False
        self._started = False
        # OpenAI upstream → Anthropic caller
        self._block = -1           # index of the open Anthropic content block, -1 when none
        self._block_kind = None    # "text" or ("tool", openai tool index)
        self._held: dict[int, dict] = {}  # calls that began while another streamed: sent whole after it
        self._stop_reason = None
        self._refused = False      # a refusal delta was seen
        self._stop_sequence = None  # the stop sequence the answer ended on, when the upstream says
        self._usage = {"input_tokens": 0, "output_tokens": 0}
        # Anthropic upstream → OpenAI caller
        self._id = ""
        self._created = int(time.time())
        self._tools: dict[int, int] = {}   # Anthropic block index → OpenAI tool call index
        self._with_args: set[int] = set()  # Anthropic tool_use blocks whose input JSON has begun
        self._a_usage: dict = {}           # the Anthropic usage: message_start's, updated by message_delta's

    def feed(self, chunk: bytes) -> bytes:
        """Upstream bytes in, caller bytes out."""
        handle = self._from_openai if self.dst == "openai" else self._from_anthropic
        out = []
        for ev in self._parser.feed(chunk):
            if ev.has_data and not self._ended:
                out.append(handle(ev))
        return b"".join(out)

    def finish(self) -> bytes:
        """At upstream EOF: the caller's normal ending if the upstream ended normally, else its error event."""
        out = [self.feed(b"")]
        handle = self._from_openai if self.dst == "openai" else self._from_anthropic
        for ev in self._parser.finish():
            if ev.has_data and not self._ended:
                out.append(handle(ev))
        if not self._ended:
            if self.dst == "openai" and self._stop_reason is not None:
                out.append(self._a_end())  # finish_reason seen, only [DONE] missing: a normal end
            else:
                self._ended = True
                out.append(stream_error_event(self.src, "upstream_error", "the upstream stream ended before its end"))
        return b"".join(out)

    # OpenAI chat chunks → Anthropic events

    @staticmethod
    def _a(obj: dict) -> bytes:
        return format_event(_json(obj), obj["type"])

    def _a_start(self, obj: dict) -> bytes:
        if self._started:
            return b""
        self._started = True
        rid = str(obj.get("id") or "")
        return self._a({"type": "message_start", "message": {
            "id": rid if rid.startswith("msg_") else f"msg_{rid}", "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})

    def _a_close_block(self) -> bytes:
        if self._block_kind is None:
            return b""
        self._block_kind = None
        out = self._a({"type": "content_block_stop", "index": self._block})
        if self._held:  # the calls held while this one streamed: each a whole block, in the order they began
            held, self._held = self._held, {}
            for tidx, call in held.items():
                self._block += 1
                out += self._a({"type": "content_block_start", "index": self._block, "content_block": {
                    "type": "tool_use", "id": call["id"] or f"toolu_{tidx}", "name": call["name"], "input": {}}})
                if call["args"]:
                    out += self._a({"type": "content_block_delta", "index": self._block,
                                    "delta": {"type": "input_json_delta", "partial_json": "".join(call["args"])}})
                out += self._a({"type": "content_block_stop", "index": self._block})
        return out

    def _a_open(self, kind, block: dict) -> bytes:
        out = self._a_close_block()
        self._block += 1
        self._block_kind = kind
        return out + self._a({"type": "content_block_start", "index": self._block, "content_block": block})

    def _a_end(self) -> bytes:
        self._ended = True
        out = self._a_start({}) + self._a_close_block()
        out += self._a({"type": "message_delta", "delta": {"stop_reason": self._stop_reason or "end_turn",
                                                          "stop_sequence": self._stop_sequence},
                        "usage": self._usage})
        return out + self._a({"type": "message_stop"})

    def _from_openai(self, ev) -> bytes:
        if ev.data.strip() == "[DONE]":
            if self._stop_reason is None:  # [DONE] without a finish_reason: treat as a normal stop
                self._stop_reason = "end_turn"
            return self._a_end()
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(obj, dict):
            return b""
        if obj.get("error") is not None:
            self._ended = True
            return stream_error_event("anthropic", "upstream_error", "the upstream reported an error mid-stream")
        out = [self._a_start(obj)]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = _anthropic_usage(usage)
        for choice in obj.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # Anthropic has one answer per request
            delta = choice.get("delta") or {}
            text = delta.get("content")
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:  # (see _chat_to_message)
                self._refused = True
                text = (text if isinstance(text, str) else "") + refusal
            if isinstance(text, str) and text:
                if self._block_kind != "text":
                    out.append(self._a_open("text", {"type": "text", "text": ""}))
                out.append(self._a({"type": "content_block_delta", "index": self._block,
                                    "delta": {"type": "text_delta", "text": text}}))
            for tpos, call in enumerate(delta.get("tool_calls") or []):
                tidx = call.get("index", tpos)
                fn = call.get("function") or {}
                args = fn.get("arguments")
                if self._block_kind != ("tool", tidx) and isinstance(self._block_kind, tuple):
                    # another call streams: Anthropic blocks cannot interleave, and a server may send its
                    # parallel calls' arguments interleaved (a call cut in two blocks, the second nameless)
                    held = self._held.setdefault(tidx, {"id": None, "name": None, "args": []})
                    held["id"] = held["id"] or call.get("id")
                    held["name"] = held["name"] or fn.get("name")
                    if isinstance(args, str) and args:
                        held["args"].append(args)
                    continue
                if self._block_kind != ("tool", tidx):
                    out.append(self._a_open(("tool", tidx), {"type": "tool_use", "id": call.get("id") or f"toolu_{tidx}",
                                                             "name": fn.get("name"), "input": {}}))
                if isinstance(args, str) and args:
                    out.append(self._a({"type": "content_block_delta", "index": self._block,
                                        "delta": {"type": "input_json_delta", "partial_json": args}}))
            if choice.get("finish_reason") is not None:
                finish = _call_finish(choice["finish_reason"], isinstance(self._block_kind, tuple))  # (a tool block open)
                out.append(self._a_close_block())
                self._stop_sequence = _matched_stop(choice, self.stops) if finish == "stop" else None
                self._stop_reason = ("refusal" if self._refused else "stop_sequence" if self._stop_sequence is not None
                                     else _FINISH_TO_STOP.get(finish, "end_turn"))
        return b"".join(out)

    # Anthropic events → OpenAI chat chunks

    def _o(self, delta: dict | None, finish=None, usage=None) -> bytes:
        """A chunk with ``delta`` for choice 0, or (``delta`` None) with no choice at all."""
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self.model,
                 "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return format_event(_json(chunk))

    def _from_anthropic(self, ev) -> bytes:
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(obj, dict):
            return b""
        typ = obj.get("type") or ev.event
        if typ == "message_start":
            msg = obj.get("message") or {}
            self._id = f"chatcmpl-{msg.get('id', '')}"
            self._a_usage = dict(msg.get("usage") or {})
            return self._o({"role": "assistant", "content": ""})
        if typ == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                tidx = self._tools[obj.get("index", 0)] = len(self._tools)
                return self._o({"tool_calls": [{"index": tidx, "id": block.get("id"), "type": "function",
                                                "function": {"name": block.get("name"), "arguments": ""}}]})
            if block.get("type") == "text" and block.get("text"):
                return self._o({"content": block["text"]})
            return b""
        if typ == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._o({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta" and obj.get("index", 0) in self._tools:
                if delta.get("partial_json"):
                    self._with_args.add(obj.get("index", 0))
                return self._o({"tool_calls": [{"index": self._tools[obj.get("index", 0)],
                                                "function": {"arguments": delta.get("partial_json", "")}}]})
            return b""
        if typ == "content_block_stop":
            idx = obj.get("index", 0)
            if idx in self._tools and idx not in self._with_args:
                # a call without arguments streams no JSON at all (one empty delta); OpenAI's
                # arguments are then "{}", and "" is what json.loads(arguments) fails on
                self._with_args.add(idx)
                return self._o({"tool_calls": [{"index": self._tools[idx], "function": {"arguments": "{}"}}]})
            return b""
        if typ == "message_delta":
            self._stop_reason = (obj.get("delta") or {}).get("stop_reason")
            usage = obj.get("usage")
            if isinstance(usage, dict):  # its counts are cumulative: each one given replaces message_start's
                self._a_usage.update((k, v) for k, v in usage.items() if v is not None)
            return b""
        if typ == "message_stop":
            self._ended = True
            usage = _openai_usage(self._a_usage)
            # as OpenAI streams it: the finish_reason chunk, then (only when the caller asked for it
            # with stream_options.include_usage) a chunk of its own with the usage and no choices
            out = self._o({}, _STOP_TO_FINISH.get(self._stop_reason, "stop"))
            if self.include_usage:
                out += self._o(None, usage=usage)
            return out + format_event("[DONE]")
        if typ == "error":
            self._ended = True
            return stream_error_event("openai", "upstream_error", "the upstream reported an error mid-stream")
        return b""  # ping, signature and thinking deltas: nothing to say
