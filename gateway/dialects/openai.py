"""What the model sees in OpenAI requests: chat completions, completions, embeddings, responses."""

from __future__ import annotations

from functools import partial

from gateway.dialects.errors import DialectError
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


def key_text(name, path: tuple, out: list[Segment]) -> None:
    """The name of a member of an object whose keys the caller chooses, at ``path`` (which ends with
    ``name``), as a segment of kind ``key``: it reaches the provider like a value does."""
    if type(name) is str and name:
        out.append(Segment(path, name, "key"))


def value_texts(value, path: tuple, out: list[Segment], kind: str) -> None:
    """Every string inside a literal JSON value (an ``enum`` of objects, a ``default`` or an
    ``examples`` entry that is itself an object or a list), however deep, and every key of its
    objects (kind ``key``, before the member's own texts: document order)."""
    if isinstance(value, str):
        out.append(Segment(path, value, kind))
    elif isinstance(value, dict):
        for k, v in value.items():
            p = path + (k,)
            if type(k) is str and k:  # (key_text inlined: once per member of every free-form object)
                out.append(Segment(p, k, "key"))
            value_texts(v, p, out, kind)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            value_texts(v, path + (i,), out, kind)


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
        if isinstance(payload.get(field), (dict, list)):
            tool_texts(payload[field], (field,), out)
    if payload.get("web_search_options") is not None:  # the search tool's settings: its user_location
        tool_texts(payload["web_search_options"], ("web_search_options",), out)
    rf = payload.get("response_format")
    if isinstance(rf, dict) and isinstance(rf.get("json_schema"), dict):
        js = rf["json_schema"]
        if isinstance(js.get("description"), str):
            out.append(Segment(("response_format", "json_schema", "description"), js["description"], "other"))
        schema_texts(js.get("schema"), ("response_format", "json_schema", "schema"), out, "other")
    pred = payload.get("prediction")
    if isinstance(pred, dict) and "content" in pred:
        _parts(pred["content"], ("prediction", "content"), "other", out)
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
    prompt = payload.get("prompt")
    if isinstance(prompt, dict) and prompt.get("variables") is not None:
        # a stored prompt template's variables: substituted into what the model reads
        variables = prompt["variables"]
        _need(isinstance(variables, dict), ("prompt", "variables"), "an object")
        for name, v in variables.items():
            vp = ("prompt", "variables", name)
            key_text(name, vp, out)  # a variable's name is the caller's choice
            if isinstance(v, str):
                out.append(Segment(vp, v, "input"))
            elif isinstance(v, dict) and v.get("type") == "input_text" and isinstance(v.get("text"), str):
                out.append(Segment(vp + ("text",), v["text"], "input"))
            else:
                out.append(Segment(vp, "", "uninspectable"))  # an image or a file
    if payload.get("tools") is not None:
        tool_list(payload["tools"], out)
    if isinstance(payload.get("tool_choice"), (dict, list)):
        tool_texts(payload["tool_choice"], ("tool_choice",), out)
    text = payload.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        fmt = text["format"]
        if isinstance(fmt.get("description"), str):
            out.append(Segment(("text", "format", "description"), fmt["description"], "other"))
        schema_texts(fmt.get("schema"), ("text", "format", "schema"), out, "other")
    return out


EXTRACTORS = {"/v1/chat/completions": chat, "/v1/completions": completions,
              "/v1/embeddings": embeddings, "/v1/responses": responses}
