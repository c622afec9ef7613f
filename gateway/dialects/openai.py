"""What the model sees in OpenAI requests: chat completions, completions, embeddings, responses."""

from __future__ import annotations

import re
from functools import partial

from gateway.dialects.errors import DialectError
from gateway.dialects.fields import (BINARY, ID, NAME, READ, URL, is_tool_name, key_text, plain,  # noqa: F401
                                     rest_texts, value_texts, words)
from gateway.dialects.segments import Segment

_SYSTEM_ROLES = ("system", "developer")

# The fields of every object inside a message or an input item (see ``fields``: each is read, or a
# setting with the API's words, or an id whose strings are segments; any other is inspected too).
_PART_TYPES = words("text input_text output_text refusal summary_text reasoning_text image_url input_image"
                    " input_audio file input_file")
_ANNOTATION = {"type": words("url_citation file_citation container_file_citation file_path"), "url": URL,
               "title": ID, "file_id": ID, "filename": ID, "container_id": ID, "index": ID, "start_index": ID,
               "end_index": ID}
"""An annotation of an earlier answer's ``output_text`` handed back: the page it cites (its URL and
title) and the files it names reach the provider as text too."""
_TEXT_PART = {"type": _PART_TYPES, "text": READ, "annotations": _ANNOTATION}
_TEXT_PARTS = {"text": _TEXT_PART, "input_text": _TEXT_PART, "output_text": _TEXT_PART,
               "summary_text": _TEXT_PART, "reasoning_text": _TEXT_PART,
               "refusal": {"type": _PART_TYPES, "refusal": READ}}
"""Content parts holding text, by type: its ``text`` (a refusal's ``refusal``) is a segment of the
message's kind."""
_DETAIL = words("auto low high original")
_MEDIA_PARTS = {
    "image_url": {"type": _PART_TYPES, "image_url": {"url": URL, "detail": _DETAIL}},  # chat
    "input_image": {"type": _PART_TYPES, "image_url": URL, "file_id": ID, "detail": _DETAIL},  # Responses
    "input_audio": {"type": _PART_TYPES, "input_audio": {"data": BINARY, "format": words("wav mp3")}},
    "file": {"type": _PART_TYPES, "file": {"file_data": BINARY, "file_id": ID, "filename": ID}},  # chat
    "input_file": {"type": _PART_TYPES, "file_data": BINARY, "file_id": ID, "file_url": URL, "filename": ID},
}
"""Content parts whose content the gateway cannot read (an image, an audio clip, a file): the part is
a segment of kind ``uninspectable`` (policy decides whether it may go), and what names the content is
text beside it: an https URL the provider fetches and logs (its query string can carry a CPF) and a
file's name are segments of kind ``other``, a file id too; the bytes themselves (base64, or a
``data:`` URL) are never scanned as text. A rewritten URL or file name is written back like any
text: the provider then fetches another address (or none) and fails, which is the policy's choice."""
_OTHER_PART = {"type": ID}
"""A part of a type this gateway does not know: uninspectable, and every string of it inspected."""
_ROLE_KINDS = {"system": "system", "developer": "system", "user": "message", "assistant": "message",
               "tool": "tool_result", "function": "tool_result"}
"""A chat message's segment kind by its role, for the roles the API defines."""
_CHAT_ROLES = frozenset(_ROLE_KINDS)
_FUNCTION_CALL = {"name": NAME, "arguments": READ}
_CUSTOM_CALL = {"name": NAME, "input": READ}
_TOOL_CALL = {"id": ID, "type": words("function custom"), "function": _FUNCTION_CALL, "custom": _CUSTOM_CALL}
"""A tool call of an earlier assistant message. Its ``id`` is inspected like any id: the tool message
answering it names it again in ``tool_call_id``, and pseudonymization is deterministic within a
request (the same value, the same placeholder), so a CPF in both becomes the same placeholder in both
and the pair still matches upstream. Nothing restores it on the way back: an answer carries the
provider's own ids for its new calls, never the caller's old ones, and the next request sends the
caller's original again, to be transformed the same way."""
_CHAT_MESSAGE = {"role": _CHAT_ROLES, "content": READ, "name": ID, "refusal": READ, "tool_calls": READ,
                 "function_call": _FUNCTION_CALL, "tool_call_id": ID, "audio": {"id": ID}}
"""A chat message's fields. ``name`` (a participant's, which the model reads) and ``tool_call_id``
(see ``_TOOL_CALL``) are texts of kind ``other``, and so is an earlier audio answer's ``audio.id``."""

_SCHEMA_VALUE_KEYS = ("enum", "examples", "example", "default", "const")  # "example": OpenAPI's
_SCHEMA_NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Schema keywords whose value maps names the caller chose (property names, definition names) to
subschemas: the names are the keys of the JSON the model is asked to write, and it reads them."""
_SCHEMA_KEYWORDS = words(
    "type properties patternProperties additionalProperties propertyNames required dependentRequired"
    " dependentSchemas dependencies items prefixItems additionalItems contains minContains maxContains"
    " unevaluatedItems unevaluatedProperties anyOf oneOf allOf not if then else enum const default examples"
    " example description title $ref $defs definitions $id $schema $comment $anchor $dynamicRef $dynamicAnchor"
    " $vocabulary minimum maximum exclusiveMinimum exclusiveMaximum multipleOf minLength maxLength pattern"
    " format minItems maxItems uniqueItems minProperties maxProperties contentEncoding contentMediaType"
    " contentSchema deprecated readOnly writeOnly nullable discriminator strict")
"""JSON Schema's keywords (and OpenAPI's): member names of a schema that are not the caller's. Any
other name (``x-nota``, a misplaced property) is the caller's text, inspected as a ``key``."""
_SCHEMA_TYPES = words("string number integer boolean object array null")
"""The one kind of string of a schema that is no text of the caller's: a type's name."""


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
    """Every text of a JSON Schema: the model reads them all (descriptions, titles, literal values,
    property names, patterns, formats, comments, a vendor's ``x-`` fields), and the provider receives
    them whatever the gateway knows of them. Only keywords and type names are passed over."""
    if isinstance(schema, str):
        if schema and schema not in _SCHEMA_TYPES:
            out.append(Segment(path, schema, kind))
    elif isinstance(schema, dict):
        for k, v in schema.items():
            p = path + (k,)
            if k in _SCHEMA_VALUE_KEYS:
                # a literal value is data, not schema: its strings at any depth are what the model reads
                value_texts(v, p, out, kind)
            elif k in _SCHEMA_NAME_MAPS and isinstance(v, dict):
                for name, sub in v.items():
                    key_text(name, p + (name,), out)
                    schema_texts(sub, p + (name,), out, kind)
            else:
                if k not in _SCHEMA_KEYWORDS:
                    key_text(k, p, out)
                # (a $ref names a definition, required's strings name properties: inspected, and so
                # transformed, like the names themselves, which keeps the schema consistent)
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
        _part(part, p, kind, out)


def _part(part: dict, p: tuple, kind: str, out: list[Segment]) -> None:
    """One content part: its text (``_TEXT_PARTS``), or an ``uninspectable`` segment for content the
    gateway cannot read (``_MEDIA_PARTS``, and any part of an unknown type); then its other fields."""
    typ = part.get("type")
    if type(typ) is not str:
        typ = None
    shape = _TEXT_PARTS.get(typ)
    if shape is not None:
        field = "refusal" if typ == "refusal" else "text"
        if type(part.get(field)) is str:
            out.append(Segment(p + (field,), part[field], kind))
            if len(part) > 2:
                rest_texts(part, p, shape, out)
            return
    out.append(Segment(p, "", "uninspectable"))
    rest_texts(part, p, _MEDIA_PARTS.get(typ, _OTHER_PART), out)


def _call_args(obj, field: str, path: tuple, out: list[Segment]) -> bool:
    """A tool call's ``arguments`` (or a custom tool call's ``input``), whether ``obj`` has it: a string,
    a segment of kind ``tool_arguments`` (anything else is refused: the APIs take a string)."""
    if not isinstance(obj, dict) or field not in obj:
        return False
    _need(type(obj[field]) is str, path + (field,), "a string")
    out.append(Segment(path + (field,), obj[field], "tool_arguments"))
    return True


_TOOL_IDS = frozenset({"type", "name"})
"""Fields of a tool definition or a tool choice that say which tool it is: its ``name``, left as it is
when it is a tool name (the model names a tool in its calls and the caller's code dispatches on that
name, so a rewritten name would break the calls; tool names are inspected nowhere: not here, not in
tool calls; see ``fields.is_tool_name``), and its ``type``, left as it is when it is one of the APIs' words for a kind of tool
(``_tool_type``) and inspected otherwise: the provider receives whatever string the caller puts there."""
_TOOL_TYPES = words(
    "function custom web_search web_search_preview web_search_preview_2025_03_11 file_search code_interpreter"
    " computer computer_use computer_use_preview mcp mcp_toolset image_generation local_shell shell apply_patch"
    " namespace tool_search allowed_tools auto any tool none required")
_DATED_TOOL_TYPE = re.compile(r"(?:bash|text_editor|computer|web_search|web_fetch|code_execution|memory"
                              r"|tool_search_tool_regex|tool_search_tool_bm25)_20[0-9]{6}\Z")
"""Anthropic's versioned tool types (``web_search_20250305``, ``text_editor_20250728``)."""
_TOOL_CACHE = words("type ephemeral ttl 5m 1h")
"""A tool's ``cache_control`` breakpoint: the API's words only, else inspected (Anthropic's ``_CACHE``)."""


def _tool_type(v: str) -> bool:
    """Whether a tool's (or a tool choice's) ``type`` is one of the APIs' words for it."""
    return v in _TOOL_TYPES or _DATED_TOOL_TYPE.match(v) is not None


_TOOL_SCHEMAS = frozenset({"parameters", "input_schema", "output_schema"})
_TOOL_OBJECTS = frozenset({"function", "custom", "format", "grammar", "tools", "allowed_tools"})
"""Fields whose value is read like a tool itself (its type and name left as they are): chat's
``function`` and ``custom`` definitions, a custom tool's ``format`` and ``grammar``, the ``tools`` a
Responses namespace groups or an ``allowed_tools`` choice lists."""
_TOOL_FIELDS = _TOOL_IDS | _TOOL_SCHEMAS | _TOOL_OBJECTS | {
    "cache_control", "description", "strict", "input_examples", "definition", "syntax", "server_description",
    "server_label", "server_url", "mode", "disable_parallel_tool_use"}
"""Field names of tool objects that are the APIs' own, read above or common. Any other (a server
tool's ``user_location``, a newer API's field, the caller's own) is inspected as a name too, like an
unknown message field's: there is nothing to find in an API's names, a caller's may hold anything."""


def tool_texts(tool, path: tuple, out: list[Segment]) -> None:
    """Every text of a tool definition or a tool choice, whatever its type (a function, a custom tool's
    grammar whose literals the model is made to write, a web search's ``user_location``, an MCP server's URL and ``headers``, a field added by a
    newer API): the provider receives them all and the model reads most, so each string is a segment
    of kind ``tool_definition``, and each key of an object the caller fills (``headers``, a schema's
    properties, a field this gateway does not know) one of kind ``key``. Only the tool's ``type`` and
    ``name`` (see ``_TOOL_IDS``) and its ``cache_control`` (a cache breakpoint) are left out, when they
    hold the APIs' words."""
    if isinstance(tool, dict):
        for k, v in tool.items():
            if type(v) is str and (k == "name" and is_tool_name(v) or k == "type" and _tool_type(v)) \
                    or k == "cache_control" and plain(v, _TOOL_CACHE):
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
            # it (one segment), without its checks for the fields it does not have (a role that is
            # not one of the API's is a text the provider receives: the general path inspects it)
            role, content = m.get("role"), m.get("content")
            if type(content) is str and type(role) is str:
                kind = _ROLE_KINDS.get(role)
                if kind is not None:
                    out.append(_segment((("messages", i, "content"), content, kind)))
                    continue
        p = ("messages", i)
        _need(isinstance(m, dict) and isinstance(m.get("role"), str), p, "a message object with a role")
        role = m["role"]
        kind = _ROLE_KINDS.get(role, "message")
        _parts(m.get("content"), p + ("content",), kind, out)
        refusal = m.get("refusal")
        if type(refusal) is str:
            out.append(Segment(p + ("refusal",), refusal, kind))
        elif refusal is not None:
            value_texts(refusal, p + ("refusal",), out, "other")
        calls = m.get("tool_calls")
        if calls is not None:
            _need(isinstance(calls, list), p + ("tool_calls",), "a list of tool calls")
            for k, call in enumerate(calls):
                cp = p + ("tool_calls", k)
                _need(isinstance(call, dict), cp, "a tool call object")
                read = _call_args(call.get("function"), "arguments", cp + ("function",), out)
                if _call_args(call.get("custom"), "input", cp + ("custom",), out):
                    read = True
                _need(read, cp + ("function", "arguments"), "a string")
                rest_texts(call, cp, _TOOL_CALL, out)
        _call_args(m.get("function_call"), "arguments", p + ("function_call",), out)
        # every other field: the id of the call a tool message answers, a participant's name, the
        # reasoning_content OpenAI-compatible servers take back, a field of a newer API
        rest_texts(m, p, _CHAT_MESSAGE, out)
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


_STATUS = words("in_progress completed incomplete")
_ITEM_TYPES = words("message function_call function_call_output custom_tool_call custom_tool_call_output"
                    " reasoning item_reference")
_CALL_OUTPUT = {"type": _ITEM_TYPES, "id": ID, "call_id": ID, "output": READ, "status": _STATUS}
_ITEMS = {
    "message": {"type": _ITEM_TYPES, "role": words("user assistant system developer"), "content": READ, "id": ID,
                "status": _STATUS, "phase": words("commentary final_answer")},
    "function_call": {"type": _ITEM_TYPES, "id": ID, "call_id": ID, "name": NAME, "arguments": READ,
                      "status": _STATUS},
    "custom_tool_call": {"type": _ITEM_TYPES, "id": ID, "call_id": ID, "name": NAME, "input": READ,
                         "status": _STATUS},
    "function_call_output": _CALL_OUTPUT, "custom_tool_call_output": _CALL_OUTPUT,
    "reasoning": {"type": _ITEM_TYPES, "id": ID, "summary": READ, "content": READ, "encrypted_content": ID,
                  "status": _STATUS},
    "item_reference": {"type": _ITEM_TYPES, "id": ID},
}
"""The fields of the Responses input items this gateway reads. Item ids and ``call_id`` are ids (see
``fields``): a call and its output name the same ``call_id``, and the same value gets the same
placeholder within a request, so the pair still matches upstream (as chat's ``_TOOL_CALL``). A
reasoning item's ``encrypted_content`` is the provider's own sealed state, but it is a string the
provider receives from the caller: inspected like an id (detectors find nothing in real ciphertext;
a rewritten one fails the provider's check, it does not leak)."""
_OTHER_ITEMS = {"image_generation_call": {"type": ID, "id": ID, "status": _STATUS, "result": BINARY}}
"""Items of other types (a computer call's screenshot, a search, a shell call, an MCP call, anything
newer) are ``uninspectable`` (policy decides), and every string of them is inspected besides, but
a generated image (base64, like a ``data:`` URL's: never scanned as text)."""


def _response_item(item, p: tuple, out: list[Segment]) -> None:
    _need(isinstance(item, dict), p, "an input item object")
    typ = item.get("type", "message")
    if typ == "message" or (typ is None and "role" in item):
        _need(isinstance(item.get("role"), str), p + ("role",), "a string")
        kind = "system" if item["role"] in _SYSTEM_ROLES else "message"
        _need("content" in item, p + ("content",), "present")
        _parts(item["content"], p + ("content",), kind, out)
        typ = "message"
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
        if item.get("summary") is not None:  # summary_text parts
            _parts(item["summary"], p + ("summary",), "other", out)
        if item.get("content") is not None:  # the reasoning text itself (reasoning_text parts)
            _parts(item["content"], p + ("content",), "other", out)
    elif typ != "item_reference":  # (a reference points at an item the provider holds: its id only)
        out.append(Segment(p, "", "uninspectable"))
        rest_texts(item, p, _OTHER_ITEMS.get(typ, _OTHER_PART) if type(typ) is str else _OTHER_PART, out)
        return
    rest_texts(item, p, _ITEMS[typ], out)


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
                elif isinstance(v, dict):  # an input_text, input_image or input_file part
                    _part(v, vp, "input", out)
                else:
                    out.append(Segment(vp, "", "uninspectable"))
                    value_texts(v, vp, out, "other")


EXTRACTORS = {"/v1/chat/completions": chat, "/v1/completions": completions,
              "/v1/embeddings": embeddings, "/v1/responses": responses, "/v1/responses/input_tokens": responses}


SHAPES = {
    "chat message": _CHAT_MESSAGE, "chat tool call": _TOOL_CALL, "chat function call": _FUNCTION_CALL,
    "chat custom call": _CUSTOM_CALL, "text part": _TEXT_PART, "refusal part": _TEXT_PARTS["refusal"],
    "annotation": _ANNOTATION, **{f"{t} part": shape for t, shape in _MEDIA_PARTS.items()}, "other part": _OTHER_PART,
    **{f"{t} item": shape for t, shape in _ITEMS.items()}, **{f"{t} item": s for t, s in _OTHER_ITEMS.items()},
}
"""Every object table of this dialect's requests below the top level, by a name the tests use: each
field listed as read or as a link needs a case there (tests/dialects/test_nested_fields.py)."""
