"""What the model sees in an Anthropic Messages request (``/v1/messages``)."""

from __future__ import annotations

import orjson

from gateway.dialects.errors import DialectError
from gateway.dialects.openai import (format_texts, key_text, stop_texts, tool_list, tool_texts, value_texts,
                                     where)
from gateway.dialects.segments import Segment


def _need(cond: bool, path: tuple, what: str) -> None:
    if not cond:
        raise DialectError(f"{where(path)} must be {what}")


def tool_input_text(value) -> str:
    """A ``tool_use`` input object as the JSON text that is inspected (UTF-8, not ``\\u``-escaped,
    so that detectors see the characters)."""
    return orjson.dumps(value).decode()


_CITATION_TEXTS = ("cited_text", "document_title", "title")


def _citations(citations: list, path: tuple, kind: str, out: list[Segment]) -> None:
    """The citations of a text block handed back to the model: each quotes its source (``cited_text``)
    and names it."""
    for k, c in enumerate(citations):
        if isinstance(c, dict):
            for field in _CITATION_TEXTS:
                if isinstance(c.get(field), str):
                    out.append(Segment(path + (k, field), c[field], kind))


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
            if isinstance(b.get("citations"), list):
                _citations(b["citations"], p + ("citations",), kind, out)
        elif typ == "tool_use" or typ == "server_tool_use":
            _need("input" in b, p + ("input",), "present")
            out.append(Segment(p + ("input",), tool_input_text(b["input"]), "tool_arguments"))
        elif typ == "tool_result":
            c = b.get("content")
            if c is not None:
                _blocks(c, p + ("content",), "tool_result", out)
        elif typ == "document":
            src = b.get("source")
            if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
                out.append(Segment(p + ("source", "data"), src["data"], kind))
            elif isinstance(src, dict) and src.get("type") == "content" and isinstance(src.get("content"), (list, str)):
                _blocks(src["content"], p + ("source", "content"), kind, out)
            else:
                out.append(Segment(p, "", "uninspectable"))
            for field in ("title", "context"):
                if isinstance(b.get(field), str):
                    out.append(Segment(p + (field,), b[field], kind))
        elif typ == "thinking":
            if isinstance(b.get("thinking"), str):
                out.append(Segment(p + ("thinking",), b["thinking"], "other"))
        elif typ == "redacted_thinking":
            pass  # the provider's own encrypted reasoning: opaque, and it came from the provider
        else:
            out.append(Segment(p, "", "uninspectable"))  # image, search results, anything unknown


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


EXTRACTORS = {"/v1/messages": messages}
