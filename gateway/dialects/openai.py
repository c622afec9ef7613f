"""What the model sees in OpenAI requests: chat completions, completions, embeddings, responses."""

from __future__ import annotations

from functools import partial

from gateway.dialects.errors import DialectError
from gateway.dialects.fields import key_text, value_texts
from gateway.dialects.segments import Segment

# Content parts that carry no text the gateway can read (images, audio, files, and anything unknown:
# fail closed, an unknown part is reported as uninspectable rather than skipped).
_TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal",
               "summary_text": "text", "reasoning_text": "text"}
_SYSTEM_ROLES = ("system", "developer")
_MESSAGE_FIELDS = frozenset({"role", "content", "name", "refusal", "tool_calls", "function_call", "tool_call_id",
                             "audio"})
"""A chat message's fields: those read above or without free text. The strings of any other are inspected."""
_SCHEMA_TEXT_KEYS = ("description", "title")
_SCHEMA_VALUE_KEYS = ("enum", "examples", "example", "default", "const")  # "example": OpenAPI's
_SCHEMA_NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Schema keywords whose value maps names the caller chose (property names, definition names) to
subschemas: the names are the keys of the JSON the model is asked to write, and it reads them."""
_SCHEMA_NAME_LISTS = ("required",)
"""Schema keywords whose strings name properties: inspected (and transformed) like the property names
themselves, so that a consistent transformation (pseudonymize, hash) keeps the schema consistent."""


_segment = partial(tuple.__new__, Segment)
"""``Segment(*fields)`` from a ``(path, text, kind)`` tuple, without the named tuple's ``__new__``
(Python code: a frame per segment)."""


def where(path: tuple) -> str:
    """A JSON path as users read it (``messages[1].content``) for error messages."""
    return Segment(path, "", "").where


def _need(cond: bool, path: tuple, what: str) -> None:
    if not cond:
        raise DialectError(f"{where(path)} must be {what}")


def schema_texts(schema, path: tuple, out: list[Segment], kind: str = "tool_definition") -> None:
    """Descriptions, titles and literal values of a JSON Schema: the model reads them all."""
    if isinstance(schema, dict):
        for k, v in schema.items():
            p = path + (k,)
            if k in _SCHEMA_VALUE_KEYS:
                # a literal value is data, not schema: its strings at any depth are what the model reads
                value_texts(v, p, out, kind)
            elif k in _SCHEMA_NAME_MAPS and isinstance(v, dict):
                for name, sub in v.items():
                    key_text(name, p + (name,), out)
                    schema_texts(sub, p + (name,), out, kind)
            elif k in _SCHEMA_NAME_LISTS and isinstance(v, list):
                for i, name in enumerate(v):
                    if isinstance(name, str) and name:
                        out.append(Segment(p + (i,), name, kind))
            elif isinstance(v, str):
                if k in _SCHEMA_TEXT_KEYS or k == "$ref":  # a $ref names a definition: see _SCHEMA_NAME_MAPS
                    out.append(Segment(p, v, kind))
            elif isinstance(v, (dict, list)):
                schema_texts(v, p, out, kind)
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            schema_texts(v, path + (i,), out, kind)


def _parts(content, path: tuple, kind: str, out: list[Segment]) -> None:
    """A message's ``content``: a string, ``None``, or a list of content parts."""
    if content is None:
        return
    if isinstance(content, str):
        out.append(Segment(path, content, kind))
        return
    _need(isinstance(content, list), path, "a string or a list of content parts")
    for j, part in enumerate(content):
        p = path + (j,)
        if isinstance(part, str):  # some clients send bare strings in a content list
            out.append(Segment(p, part, kind))
            continue
        _need(isinstance(part, dict), p, "a content part object")
        field = _TEXT_PARTS.get(part.get("type"))
        if field is not None and isinstance(part.get(field), str):
            out.append(Segment(p + (field,), part[field], kind))
        else:
            out.append(Segment(p, "", "uninspectable"))


_TOOL_IDS = frozenset({"type", "name"})
"""Fields of a tool definition or a tool choice that say which tool it is, left as they are when they
are strings: the model names a tool in its calls and the caller's code dispatches on that name, so a
rewritten name would break the calls (tool names are inspected nowhere: not here, not in tool calls)."""
_TOOL_SCHEMAS = frozenset({"parameters", "input_schema", "output_schema"})
_TOOL_OBJECTS = frozenset({"function", "custom", "format", "grammar", "tools", "allowed_tools"})
"""Fields whose value is read like a tool itself (its type and name left as they are): chat's
``function`` and ``custom`` definitions, a custom tool's ``format`` and ``grammar``, the ``tools`` a
Responses namespace groups or an ``allowed_tools`` choice lists."""
_TOOL_FIELDS = _TOOL_IDS | _TOOL_SCHEMAS | _TOOL_OBJECTS | {
    "description", "strict", "input_examples", "definition", "syntax", "server_description", "server_label",
    "server_url", "mode", "disable_parallel_tool_use"}
"""Field names of tool objects that are the APIs' own, read above or common. Any other (a server
tool's ``user_location``, a newer API's field, the caller's own) is inspected as a name too, like an
unknown message field's: there is nothing to find in an API's names, a caller's may hold anything."""


def tool_texts(tool, path: tuple, out: list[Segment]) -> None:
    """Every text of a tool definition or a tool choice, whatever its type (a function, a custom tool's
    grammar whose literals the model is made to write, a web search's ``user_location``, an MCP server's URL and ``headers``, a field added by a
    newer API): the provider receives them all and the model reads most, so each string is a segment
    of kind ``tool_definition``, and each key of an object the caller fills (``headers``, a schema's
    properties, a field this gateway does not know) one of kind ``key``. Only the tool's ``type`` and
    ``name`` (see ``_TOOL_IDS``) and its ``cache_control`` (a cache breakpoint) are left out."""
    if isinstance(tool, dict):
        for k, v in tool.items():
            if (k in _TOOL_IDS and type(v) is str) or k == "cache_control":
                continue
            p = path + (k,)
            if k in _TOOL_SCHEMAS:
                schema_texts(v, p, out)
            elif k in _TOOL_OBJECTS:
                tool_texts(v, p, out)
            else:
                if k not in _TOOL_FIELDS:
                    key_text(k, p, out)
                value_texts(v, p, out, "tool_definition")
    elif isinstance(tool, list):
        for i, v in enumerate(tool):
            tool_texts(v, path + (i,), out)
    elif isinstance(tool, str):
        out.append(Segment(path, tool, "tool_definition"))


def tool_list(tools, out: list[Segment]) -> None:
    """A request's ``tools`` (any dialect), each read by ``tool_texts``."""
    _need(isinstance(tools, list), ("tools",), "a list of tools")
    for k, t in enumerate(tools):
        _need(isinstance(t, dict), ("tools", k), "a tool object")
        tool_texts(t, ("tools", k), out)


def stop_texts(value, path: tuple, out: list[Segment]) -> None:
    """Stop sequences (a string or a list of strings): sent to the provider, and the model's text is
    matched against them, so they are transformed like the prompt they must stay consistent with."""
    if isinstance(value, str):
        out.append(Segment(path, value, "other"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                out.append(Segment(path + (i,), v, "other"))
            else:  # not what the API takes, but the provider receives it all the same
                value_texts(v, path + (i,), out, "other")
    else:
        value_texts(value, path, out, "other")


_TOOL_MODES = frozenset({"none", "auto", "required"})
"""The modes a chat or Responses ``tool_choice`` (and chat's older ``function_call``) takes as a bare
string: the API's own words, left as they are."""


def choice_texts(value, path: tuple, out: list[Segment]) -> None:
    """A ``tool_choice`` (or chat's ``function_call``): an object or a list is read like a tool (see
    ``tool_texts``); a string is a mode, left as it is when it is one of ``_TOOL_MODES`` and inspected
    like a tool's text otherwise (the provider receives any string the caller puts there)."""
    if value is None or (type(value) is str and value in _TOOL_MODES):
        return
    tool_texts(value, path, out)


_FORMAT_FIELDS = frozenset({"type", "name", "description", "schema", "strict", "json_schema", "format",
                            "verbosity", "effort"})
_FORMAT_WORDS = {"type": frozenset({"text", "json_object", "json_schema"}),
                 "verbosity": frozenset({"low", "medium", "high"}),
                 "effort": frozenset({"low", "medium", "high", "xhigh", "max"})}
"""Members of a structured-output setting whose value is an enum: left as they are when they hold
one of the API's words for it, inspected like the rest otherwise."""


def format_texts(fmt, path: tuple, out: list[Segment]) -> None:
    """A structured-output setting, whole: chat's ``response_format`` (and its ``json_schema``),
    Responses' ``text`` (and its ``format``), Anthropic's ``output_config`` and older ``output_format``.
    A ``schema`` is read as a JSON Schema (``schema_texts``); every other string (a description, the
    schema's name, a field of a newer API) is a segment of kind ``other``, but the enums of
    ``_FORMAT_WORDS`` when they hold one of their words; the name of a member the APIs do not define
    is a ``key`` segment, as in a tool."""
    if not isinstance(fmt, dict):
        value_texts(fmt, path, out, "other")  # not what the APIs take, but the provider receives it
        return
    for k, v in fmt.items():
        p = path + (k,)
        if k == "schema":
            schema_texts(v, p, out, "other")
        elif k == "json_schema" or k == "format":
            format_texts(v, p, out)
        elif not (type(v) is str and v in _FORMAT_WORDS.get(k, ())):
            if k not in _FORMAT_FIELDS:
                key_text(k, p, out)
            value_texts(v, p, out, "other")


def chat(payload: dict) -> list[Segment]:
    """``/v1/chat/completions``."""
    out: list[Segment] = []
    msgs = payload.get("messages")
    _need(isinstance(msgs, list), ("messages",), "a list of messages")
    for i, m in enumerate(msgs):
        if type(m) is dict and len(m) == 2:
            # the usual message, {"role": str, "content": str}: what the general path below makes of
            # it (one segment), without its checks for the fields it does not have
            role, content = m.get("role"), m.get("content")
            if type(role) is str and type(content) is str:
                kind = "system" if role in _SYSTEM_ROLES else "tool_result" if role in ("tool", "function") else "message"
                out.append(_segment((("messages", i, "content"), content, kind)))
                continue
        p = ("messages", i)
        _need(isinstance(m, dict) and isinstance(m.get("role"), str), p, "a message object with a role")
        role = m["role"]
        kind = "system" if role in _SYSTEM_ROLES else "tool_result" if role in ("tool", "function") else "message"
        _parts(m.get("content"), p + ("content",), kind, out)
        if type(m.get("name")) is str and m["name"]:  # a participant's name: the model reads it too
            out.append(Segment(p + ("name",), m["name"], "other"))
        if isinstance(m.get("refusal"), str):
            out.append(Segment(p + ("refusal",), m["refusal"], kind))
        calls = m.get("tool_calls")
        if calls is not None:
            _need(isinstance(calls, list), p + ("tool_calls",), "a list of tool calls")
            for k, call in enumerate(calls):
                cp = p + ("tool_calls", k)
                _need(isinstance(call, dict), cp, "a tool call object")
                fn = call.get("function")
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    out.append(Segment(cp + ("function", "arguments"), fn["arguments"], "tool_arguments"))
                elif isinstance(call.get("custom"), dict) and isinstance(call["custom"].get("input"), str):
                    out.append(Segment(cp + ("custom", "input"), call["custom"]["input"], "tool_arguments"))
                else:
                    _need(False, cp + ("function", "arguments"), "a string")
        fc = m.get("function_call")
        if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
            out.append(Segment(p + ("function_call", "arguments"), fc["arguments"], "tool_arguments"))
        for key in m:
            if key not in _MESSAGE_FIELDS:  # e.g. the reasoning_content OpenAI-compatible servers take back
                key_text(key, p + (key,), out)  # its name is the caller's choice too
                value_texts(m[key], p + (key,), out, "other")
    if payload.get("tools") is not None:
        tool_list(payload["tools"], out)
    functions = payload.get("functions")
    if functions is not None:
        _need(isinstance(functions, list), ("functions",), "a list of functions")
        for k, fn in enumerate(functions):
            _need(isinstance(fn, dict), ("functions", k), "a function definition object")
            tool_texts(fn, ("functions", k), out)
    for field in ("tool_choice", "function_call"):
        # a tool chosen by name, or the tools allowed: an object's other strings are sent all the same
        # (a bare string is a mode, "auto", "none" or "required", like the other enums of a request)
        if field in payload:
            choice_texts(payload[field], (field,), out)
    if payload.get("web_search_options") is not None:  # the search tool's settings: its user_location
        tool_texts(payload["web_search_options"], ("web_search_options",), out)
    if payload.get("response_format") is not None:
        format_texts(payload["response_format"], ("response_format",), out)
    pred = payload.get("prediction")
    if pred is not None:  # the text the answer is expected to repeat: its content, and any other string
        if isinstance(pred, dict):
            for k, v in pred.items():
                if k == "content":
                    _parts(v, ("prediction", "content"), "other", out)
                elif not (k == "type" and v == "content"):
                    key_text(k, ("prediction", k), out)
                    value_texts(v, ("prediction", k), out, "other")
        else:
            value_texts(pred, ("prediction",), out, "other")
    if payload.get("stop") is not None:
        stop_texts(payload["stop"], ("stop",), out)
    return out


def _prompt_list(value, path: tuple, kind: str, out: list[Segment], what: str) -> None:
    """A completions prompt / embeddings input: str, list of str, token array, or list of token arrays."""
    if isinstance(value, str):
        out.append(Segment(path, value, kind))
        return
    _need(isinstance(value, list), path, what)
    if value and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        out.append(Segment(path, "", "uninspectable"))  # one token array: the gateway cannot read tokens
        return
    for i, x in enumerate(value):
        if isinstance(x, str):
            out.append(Segment(path + (i,), x, kind))
        elif isinstance(x, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in x):
            out.append(Segment(path + (i,), "", "uninspectable"))
        else:
            _need(False, path + (i,), "a string or a token array")


def completions(payload: dict) -> list[Segment]:
    """``/v1/completions``."""
    out: list[Segment] = []
    if "prompt" in payload and payload["prompt"] is not None:
        _prompt_list(payload["prompt"], ("prompt",), "input", out, "a string, a list of strings or token arrays")
    if isinstance(payload.get("suffix"), str):
        out.append(Segment(("suffix",), payload["suffix"], "input"))
    elif payload.get("suffix") is not None:  # not what the API takes, but the provider receives it
        value_texts(payload["suffix"], ("suffix",), out, "input")
    if payload.get("stop") is not None:
        stop_texts(payload["stop"], ("stop",), out)
    return out


def embeddings(payload: dict) -> list[Segment]:
    """``/v1/embeddings``."""
    out: list[Segment] = []
    _need("input" in payload, ("input",), "present")
    _prompt_list(payload["input"], ("input",), "input", out, "a string, a list of strings or token arrays")
    return out


def _response_item(item, p: tuple, out: list[Segment]) -> None:
    _need(isinstance(item, dict), p, "an input item object")
    typ = item.get("type", "message")
    if typ == "message" or (typ is None and "role" in item):
        _need(isinstance(item.get("role"), str), p + ("role",), "a string")
        kind = "system" if item["role"] in _SYSTEM_ROLES else "message"
        _need("content" in item, p + ("content",), "present")
        _parts(item["content"], p + ("content",), kind, out)
    elif typ == "function_call":
        _need(isinstance(item.get("arguments"), str), p + ("arguments",), "a string")
        out.append(Segment(p + ("arguments",), item["arguments"], "tool_arguments"))
    elif typ == "custom_tool_call":
        _need(isinstance(item.get("input"), str), p + ("input",), "a string")
        out.append(Segment(p + ("input",), item["input"], "tool_arguments"))
    elif typ in ("function_call_output", "custom_tool_call_output"):
        _need("output" in item, p + ("output",), "present")
        _parts(item["output"], p + ("output",), "tool_result", out)
    elif typ == "reasoning":
        for k, s in enumerate(item.get("summary") or []):
            if isinstance(s, dict) and isinstance(s.get("text"), str):
                out.append(Segment(p + ("summary", k, "text"), s["text"], "other"))
        if item.get("content") is not None:  # the reasoning text itself (reasoning_text parts)
            _parts(item["content"], p + ("content",), "other", out)
        # encrypted_content is the provider's own opaque state, sealed by it: nothing to read
    elif typ == "item_reference":
        pass  # points at an item the provider already holds; carries no new data
    else:
        out.append(Segment(p, "", "uninspectable"))


def responses(payload: dict) -> list[Segment]:
    """``/v1/responses``."""
    out: list[Segment] = []
    instr = payload.get("instructions")
    if instr is not None:
        _need(isinstance(instr, str), ("instructions",), "a string")
        out.append(Segment(("instructions",), instr, "system"))
    inp = payload.get("input")
    if isinstance(inp, str):
        out.append(Segment(("input",), inp, "input"))
    elif inp is not None:
        _need(isinstance(inp, list), ("input",), "a string or a list of input items")
        for i, item in enumerate(inp):
            _response_item(item, ("input", i), out)
    if payload.get("prompt") is not None:
        _prompt_template(payload["prompt"], out)
    if payload.get("tools") is not None:
        tool_list(payload["tools"], out)
    if "tool_choice" in payload:
        choice_texts(payload["tool_choice"], ("tool_choice",), out)
    if payload.get("text") is not None:
        format_texts(payload["text"], ("text",), out)
    return out


def _prompt_template(prompt, out: list[Segment]) -> None:
    """A Responses ``prompt``: a stored prompt template, its ``variables`` substituted into what the
    model reads (each a text, kind ``input``, its name a ``key``). Its ``id``, ``version`` and any
    other string reach the provider too, so they are segments of kind ``other``."""
    if not isinstance(prompt, dict):
        value_texts(prompt, ("prompt",), out, "other")  # not what the API takes; sent all the same
        return
    for field, value in prompt.items():
        if field != "variables":
            if field != "id" and field != "version":
                key_text(field, ("prompt", field), out)
            value_texts(value, ("prompt", field), out, "other")
        elif value is not None:
            _need(isinstance(value, dict), ("prompt", "variables"), "an object")
            for name, v in value.items():
                vp = ("prompt", "variables", name)
                key_text(name, vp, out)  # a variable's name is the caller's choice
                if isinstance(v, str):
                    out.append(Segment(vp, v, "input"))
                elif isinstance(v, dict) and v.get("type") == "input_text" and isinstance(v.get("text"), str):
                    out.append(Segment(vp + ("text",), v["text"], "input"))
                else:
                    out.append(Segment(vp, "", "uninspectable"))  # an image or a file


EXTRACTORS = {"/v1/chat/completions": chat, "/v1/completions": completions,
              "/v1/embeddings": embeddings, "/v1/responses": responses}
