"""The one rule for the fields of a request's objects, at the top level and below it.

A provider receives every member of every object of a request body, whatever the gateway makes of
it. So each object the extractors walk (the body itself, a chat message, a content part, a tool
call, a Responses input item, an Anthropic content block, a citation, an image's source) has a table
of the fields the gateway knows, each with what it is (its *spec*):

``READ``
    the extractor reads it itself and makes each of its strings a segment (the tests in
    tests/dialects put a CPF in every such field: a field listed as read without a case fails there);
``URL``
    a link the provider fetches (and logs, query string and all): a segment of kind ``other``, but a
    base64 ``data:`` URL, which is the content itself and meaningless as text: the object it belongs
    to is reported ``uninspectable`` and policy decides;
``BINARY``
    base64 content (an image's or an audio clip's bytes): not text, and the object it belongs to is
    reported ``uninspectable`` by its extractor;
``NAME``
    a tool's name, left as it is: both APIs restrict tool names to ``[a-zA-Z0-9_-]`` (at most 64
    characters; Anthropic's tool_use names too), the caller's code dispatches on it, and the model
    writes it back in its calls, so a rewritten name would break them. Tool names are inspected
    nowhere, as in the tool definitions (``openai._TOOL_IDS``). A name that is not a string is, and
    so is a string no API takes for a name (``is_tool_name``: ``CPF 529.982.247-25``): no call can
    name that tool, and the provider receives it all the same (and logs it, refusing the request);
a frozenset of words
    a setting: it passes as it is when it holds nothing but nulls, booleans, numbers and those words
    (the API's enum values and member names, at any depth; see ``plain``), and is inspected whole
    otherwise. An empty set (``ID``) is a field holding an id or a number: any string in it is a
    segment of kind ``other`` (an id too: the provider receives it, and detectors do not fire on the
    providers' ids);
a dict
    an object the API defines (an ``image_url``, a tool call's ``function``): its own table, applied
    to it, or to each object of a list of them.

Any other field is one the gateway does not know (a newer API's, a vendor's, the caller's own): its
name is a segment of kind ``key`` and every string of its value one of kind ``other``. A field nobody
reads therefore cannot go upstream unseen because somebody listed it as known.
"""

from __future__ import annotations

import re

from gateway.dialects.segments import Segment

READ = object()
URL = object()
BINARY = object()
NAME = object()
UNKNOWN = object()
ID = frozenset()
"""The words of a field that holds an id, a number or a boolean: none (see the module's docstring)."""
SCALARS = frozenset({bool, int, float, type(None)})


_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")


def is_tool_name(v: str) -> bool:
    """Whether ``v`` is a tool name as the APIs take them (``[a-zA-Z0-9_-]``, 64 characters for
    OpenAI, 128 for Anthropic): such a string is left as it is where a tool's name belongs."""
    return _TOOL_NAME.match(v) is not None


def words(text: str) -> frozenset:
    """A setting's words, space-separated."""
    return frozenset(text.split())


def key_text(name, path: tuple, out: list[Segment]) -> None:
    """The name of a member of an object whose keys the caller chooses, at ``path`` (which ends with
    ``name``), as a segment of kind ``key``: it reaches the provider like a value does."""
    if type(name) is str and name:
        out.append(Segment(path, name, "key"))


def is_data_url(s: str) -> bool:
    """Whether ``s`` is a base64 ``data:`` URL: content (an image, a PDF), not text to scan."""
    return s[:5] == "data:" and ";base64," in s[:256]


def value_texts(value, path: tuple, out: list[Segment], kind: str) -> None:
    """Every string inside a literal JSON value (an ``enum`` of objects, a ``default`` or an
    ``examples`` entry that is itself an object or a list), however deep, and every key of its
    objects (kind ``key``, before the member's own texts: document order). A base64 ``data:`` URL
    is content, not text: an ``uninspectable`` segment (policy decides)."""
    if isinstance(value, str):
        if value[:5] == "data:" and is_data_url(value):
            out.append(Segment(path, "", "uninspectable"))
        else:
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


def plain(value, words: frozenset) -> bool:
    """Whether a setting's value holds nothing but nulls, booleans, numbers and ``words`` (the API's
    own words for that field: its enum values and the member names of its objects), at any depth.
    Such a value carries no text of the caller's and passes as it is; any other is inspected."""
    t = type(value)
    if t is str:
        return value in words
    if t is dict:
        for k, v in value.items():  # (loops, not all(): a generator costs more than these small objects)
            if k not in words or (type(v) not in SCALARS and not plain(v, words)):
                return False
        return True
    if t is list:
        for v in value:
            if type(v) not in SCALARS and not plain(v, words):
                return False
        return True
    return t in SCALARS


def rest_texts(obj: dict, path: tuple, fields: dict, out: list[Segment]) -> None:
    """The members of ``obj`` (at ``path``) its extractor did not read, by ``fields`` (see the
    module's docstring): what the provider receives beside the texts the extractor took."""
    for k, v in obj.items():
        spec = fields.get(k, UNKNOWN)
        if spec is READ:
            continue
        t = type(v)
        if spec is UNKNOWN:
            key_text(k, path + (k,), out)
            value_texts(v, path + (k,), out, "other")
        elif t in SCALARS:
            continue  # a number, a boolean or null: no text whatever the field
        elif type(spec) is frozenset:
            if not plain(v, spec):
                value_texts(v, path + (k,), out, "other")
        elif type(spec) is dict:
            if t is dict:
                rest_texts(v, path + (k,), spec, out)
            elif t is list:
                for i, x in enumerate(v):
                    if type(x) is dict:
                        rest_texts(x, path + (k, i), spec, out)
                    else:
                        value_texts(x, path + (k, i), out, "other")
            else:
                value_texts(v, path + (k,), out, "other")
        elif t is str and (spec is NAME and is_tool_name(v) or spec is BINARY or (spec is URL and is_data_url(v))):
            continue  # see the module's docstring: covered by the object's uninspectable segment, or a name
        else:  # a URL, or anything but a string where a name, content or a link belongs
            value_texts(v, path + (k,), out, "other")
