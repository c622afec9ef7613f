"""What the model sees in an Anthropic Messages request (``/v1/messages``)."""

from __future__ import annotations

import orjson

from gateway.dialects.errors import DialectError
from gateway.dialects.fields import BINARY, ID, NAME, READ, URL, key_text, rest_texts, value_texts, words
from gateway.dialects.openai import format_texts, stop_texts, tool_list, tool_texts, where
from gateway.dialects.segments import Segment


def _need(cond: bool, path: tuple, what: str) -> None:
    if not cond:
        raise DialectError(f"{where(path)} must be {what}")


def tool_input_text(value) -> str:
    """A ``tool_use`` input object as the JSON text that is inspected (UTF-8, not ``\\u``-escaped,
    so that detectors see the characters)."""
    return orjson.dumps(value).decode()


_CACHE = words("type ephemeral ttl 5m 1h")
"""A ``cache_control`` breakpoint: the API's words only, else inspected."""
_CITATION = {"type": words("char_location page_location content_block_location search_result_location"
                           " web_search_result_location"),
             "cited_text": READ, "document_title": READ, "title": READ, "url": URL, "source": URL,
             "document_index": ID, "start_char_index": ID, "end_char_index": ID, "start_page_number": ID,
             "end_page_number": ID, "start_block_index": ID, "end_block_index": ID, "search_result_index": ID,
             "encrypted_index": ID, "file_id": ID}
"""A citation of an earlier answer's text block: it quotes its source (``cited_text``) and names it
(texts of the block's kind); the page or search result it points at (``url``, ``source``) is a link."""
_BLOCK_TYPES = words("text image document tool_use server_tool_use mcp_tool_use tool_result mcp_tool_result"
                     " thinking redacted_thinking")
_MEDIA = words("image/jpeg image/png image/gif image/webp application/pdf text/plain")
_SOURCE_TYPES = words("base64 url file text content")
_SOURCE = {"type": _SOURCE_TYPES, "media_type": _MEDIA, "data": BINARY, "url": URL, "file_id": ID}
"""An image's or a document's ``source`` when the gateway cannot read it: the block is ``uninspectable``
(policy decides), its base64 ``data`` is never scanned, and the URL Claude fetches (query string and
all) is a segment of kind ``other``, as a file id is. A rewritten URL is written back like any text:
Claude then fetches another address and fails, which is the policy's choice."""
_TOOL_USE = {"type": _BLOCK_TYPES, "id": ID, "name": NAME, "input": READ, "server_name": ID, "cache_control": _CACHE}
"""A tool call of an earlier answer. Its ``id`` is inspected like any id: the ``tool_result`` answering
it names it in ``tool_use_id``, and pseudonymization is deterministic within a request (the same value,
the same placeholder), so a CPF in both becomes the same placeholder and the pair still matches.
Nothing restores it on the way back: an answer carries Claude's own ids for its new calls, never the
caller's old ones. (Claude requires ids of ``[a-zA-Z0-9_-]``: one holding a placeholder's brackets
is refused by Claude, a 400 to the caller; the value never leaves unseen.)"""
_BLOCKS = {
    "text": {"type": _BLOCK_TYPES, "text": READ, "citations": READ, "cache_control": _CACHE},
    "tool_use": _TOOL_USE, "server_tool_use": _TOOL_USE, "mcp_tool_use": _TOOL_USE,
    "tool_result": {"type": _BLOCK_TYPES, "tool_use_id": ID, "content": READ, "is_error": ID, "cache_control": _CACHE},
    "thinking": {"type": _BLOCK_TYPES, "thinking": READ, "signature": ID},
    "redacted_thinking": {"type": _BLOCK_TYPES, "data": ID},
    "document": {"type": _BLOCK_TYPES, "source": READ, "title": READ, "context": READ,
                 "citations": words("enabled"), "cache_control": _CACHE},
}
"""The fields of each content block type this gateway reads (see ``fields``). A thinking block's
``signature`` and a redacted one's ``data`` are Claude's own sealed reasoning, but strings the caller
sends: inspected like ids (detectors find nothing in real ones; a rewritten one fails Claude's check,
it does not leak). ``mcp_tool_result`` is read like ``tool_result``."""
_BLOCKS["mcp_tool_result"] = _BLOCKS["tool_result"]
_IMAGE = {"type": _BLOCK_TYPES, "source": _SOURCE, "cache_control": _CACHE}
"""An image block: ``uninspectable``, its source read as ``_SOURCE`` says."""
_OTHER_BLOCK = {"type": ID}
"""A block of another type (a search result, a web search's results, a code execution's, anything
newer): the block is ``uninspectable`` (policy decides) and every string of it is inspected besides."""


def _citations(citations, path: tuple, kind: str, out: list[Segment]) -> None:
    """The citations of a text block handed back to the model: each quotes its source (``cited_text``)
    and names it; every other string of them is inspected too (``_CITATION``)."""
    if not isinstance(citations, list):
        value_texts(citations, path, out, "other")  # not what the API takes; sent all the same
        return
    for k, c in enumerate(citations):
        if isinstance(c, dict):
            for field in ("cited_text", "document_title", "title"):
                v = c.get(field)
                if type(v) is str:
                    out.append(Segment(path + (k, field), v, kind))
                elif v is not None:
                    value_texts(v, path + (k, field), out, "other")
            rest_texts(c, path + (k,), _CITATION, out)
        else:
            value_texts(c, path + (k,), out, "other")


def _blocks(content, path: tuple, kind: str, out: list[Segment]) -> None:
    if isinstance(content, str):
        out.append(Segment(path, content, kind))
        return
    _need(isinstance(content, list), path, "a string or a list of content blocks")
    for j, b in enumerate(content):
        p = path + (j,)
        _need(isinstance(b, dict) and isinstance(b.get("type"), str), p, "a content block with a type")
        typ = b["type"]
        if typ == "text":
            _need(isinstance(b.get("text"), str), p + ("text",), "a string")
            out.append(Segment(p + ("text",), b["text"], kind))
            if b.get("citations") is not None:
                _citations(b["citations"], p + ("citations",), kind, out)
        elif typ in ("tool_use", "server_tool_use", "mcp_tool_use"):
            _need("input" in b, p + ("input",), "present")
            out.append(Segment(p + ("input",), tool_input_text(b["input"]), "tool_arguments"))
        elif typ in ("tool_result", "mcp_tool_result"):
            c = b.get("content")
            if c is not None:
                _blocks(c, p + ("content",), "tool_result", out)
        elif typ == "document":
            src = b.get("source")
            if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
                out.append(Segment(p + ("source", "data"), src["data"], kind))
                rest_texts(src, p + ("source",), _TEXT_SOURCE, out)
            elif isinstance(src, dict) and src.get("type") == "content" and isinstance(src.get("content"), (list, str)):
                _blocks(src["content"], p + ("source", "content"), kind, out)
                rest_texts(src, p + ("source",), _CONTENT_SOURCE, out)
            else:
                out.append(Segment(p, "", "uninspectable"))
                if isinstance(src, dict):
                    rest_texts(src, p + ("source",), _SOURCE, out)
                elif src is not None:
                    value_texts(src, p + ("source",), out, "other")
            for field in ("title", "context"):
                if isinstance(b.get(field), str):
                    out.append(Segment(p + (field,), b[field], kind))
                elif b.get(field) is not None:
                    value_texts(b[field], p + (field,), out, "other")
        elif typ == "thinking":
            if isinstance(b.get("thinking"), str):
                out.append(Segment(p + ("thinking",), b["thinking"], "other"))
            elif b.get("thinking") is not None:
                value_texts(b["thinking"], p + ("thinking",), out, "other")
        elif typ != "redacted_thinking":  # (Claude's own encrypted reasoning: its data, below, only)
            out.append(Segment(p, "", "uninspectable"))  # an image, a server tool's results, anything unknown
            rest_texts(b, p, _IMAGE if typ == "image" else _OTHER_BLOCK, out)
            continue
        rest_texts(b, p, _BLOCKS[typ], out)


_TEXT_SOURCE = {"type": _SOURCE_TYPES, "media_type": _MEDIA, "data": READ}
_CONTENT_SOURCE = {"type": _SOURCE_TYPES, "content": READ}


def messages(payload: dict) -> list[Segment]:
    """``/v1/messages``."""
    out: list[Segment] = []
    system = payload.get("system")
    if system is not None:
        _blocks(system, ("system",), "system", out)
    msgs = payload.get("messages")
    _need(isinstance(msgs, list), ("messages",), "a list of messages")
    for i, m in enumerate(msgs):
        p = ("messages", i)
        _need(isinstance(m, dict) and m.get("role") in ("user", "assistant"), p,
              "a message object with role user or assistant")
        _need("content" in m, p + ("content",), "present")
        _blocks(m["content"], p + ("content",), "message", out)
        if len(m) > 2:  # a field besides role and content: the provider receives it all the same
            for key in m:
                if key != "role" and key != "content":
                    key_text(key, p + (key,), out)  # its name is the caller's choice too
                    value_texts(m[key], p + (key,), out, "other")
    if payload.get("tools") is not None:  # server tools too: a web search's user_location, its domains
        tool_list(payload["tools"], out)
    if payload.get("tool_choice") is not None:  # always an object here: any string is inspected too
        tool_texts(payload["tool_choice"], ("tool_choice",), out)
    if payload.get("mcp_servers") is not None:  # MCP servers Claude calls: read like tools (URL, token)
        tool_texts(payload["mcp_servers"], ("mcp_servers",), out)
    for field in ("output_config", "output_format"):  # structured outputs, and their older beta form
        if payload.get(field) is not None:
            format_texts(payload[field], (field,), out)
    if payload.get("stop_sequences") is not None:
        stop_texts(payload["stop_sequences"], ("stop_sequences",), out)
    return out


EXTRACTORS = {"/v1/messages": messages, "/v1/messages/count_tokens": messages}


SHAPES = {
    **{f"{t} block": shape for t, shape in _BLOCKS.items()}, "image block": _IMAGE, "other block": _OTHER_BLOCK,
    "citation": _CITATION, "media source": _SOURCE, "text source": _TEXT_SOURCE, "content source": _CONTENT_SOURCE,
}
"""Every object table of Anthropic requests below the top level (see ``openai.SHAPES``)."""
