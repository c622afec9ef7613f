"""`soberana scan [PATH|-] [--format text|json] [--country CC]` (SPEC section 2).

Reads plain text or a JSON API request body (from a file or standard input) and prints what the
inspector finds. A body that parses as a JSON object is inspected the way the gateway inspects it:
the segments of its dialect (``gateway.dialects.extract_segments``, the endpoint guessed from the
body's shape); a JSON value that no dialect takes is walked and every string in it is inspected. The
texts are inspected together, as the gateway does: a value split across two of them is found in
both (``gateway.inspect.texts``).
Anything else is inspected as one text.

Output, one line per finding: ``text`` prints ``[path:]start-end  detector  category  country
value``; ``json`` prints one object per line, ``{"detector", "category", "country", "start", "end",
"text"}`` and ``"path"`` for a JSON body. Offsets are Python string indices into the inspected text.
Exit status 0, or 2 when the input cannot be read or ``--country`` is not a two-letter code.
"""

from __future__ import annotations

import json
import sys
from typing import Iterator

from gateway.inspect import scan
from gateway.inspect.texts import scan_texts


def scan_command(args) -> int:
    """Entry point of ``soberana scan``."""
    country = args.country.upper() if getattr(args, "country", None) is not None else None
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        # a country no finding can have ("BRA") filtered everything out: the file looked clean
        print(f"soberana scan: --country takes a two-letter country code (ISO 3166-1 alpha-2), not {args.country!r}",
              file=sys.stderr)
        return 2
    try:
        if args.path in (None, "-"):
            raw = sys.stdin.buffer.read()
        else:
            with open(args.path, "rb") as f:
                raw = f.read()
        data = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"soberana scan: cannot read {args.path}: {type(e).__name__}", file=sys.stderr)
        return 2
    out = sys.stdout
    pairs = list(texts_of(data))
    per, _ = scan_texts([text for _, text in pairs], scan)  # as the proxy inspects them
    for (path, text), found in zip(pairs, per):
        for f in found:
            if country and f.country != country:
                continue
            if args.format == "json":
                obj = {"detector": f.detector, "category": f.category, "country": f.country,
                       "start": f.start, "end": f.end, "text": text[f.start:f.end]}
                if path is not None:
                    obj["path"] = path
                out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            else:
                where = f"{path}:" if path is not None else ""
                out.write(f"{where}{f.start}-{f.end}\t{f.detector}\t{f.category}\t"
                          f"{f.country or '-'}\t{text[f.start:f.end]!r}\n")
    return 0


def texts_of(data: str) -> Iterator[tuple[str | None, str]]:
    """``(path, text)`` pairs to inspect: ``(None, data)`` for plain text, the segments of a JSON
    request body otherwise."""
    stripped = data.lstrip()
    if not stripped[:1] in ("{", "["):
        yield None, data
        return
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # nested deeper than the parser goes: still text to inspect
        yield None, data
        return
    segments = _dialect_segments(body)
    if segments is not None:
        for seg in segments:
            if seg.text:
                yield seg.where, seg.text
        return
    yield from walk_strings(body)


def guess_endpoint(body: dict) -> str | None:
    """The API endpoint a request body was most likely meant for, from its fields."""
    if "messages" in body:
        # messages of another type than a list (null, a number) say nothing about the dialect
        messages = body["messages"] if isinstance(body["messages"], list) else []
        anthropic = (isinstance(body.get("system"), (str, list)) or "anthropic_version" in body
                     or str(body.get("model", "")).startswith("claude")
                     or any(isinstance(m, dict) and isinstance(m.get("content"), list)
                            and any(isinstance(p, dict) and p.get("type") in ("tool_use", "tool_result")
                                    for p in m["content"])
                            for m in messages))
        return "/v1/messages" if anthropic else "/v1/chat/completions"
    if "prompt" in body:
        return "/v1/completions"
    if "input" in body:
        return "/v1/responses" if ("instructions" in body or isinstance(body["input"], list)
                                   and any(isinstance(x, dict) for x in body["input"])) \
            else "/v1/embeddings"
    return None


def _dialect_segments(body):
    if not isinstance(body, dict):
        return None
    try:
        from gateway.dialects import extract_segments
    except ImportError:
        return None
    endpoint = guess_endpoint(body)
    if endpoint is None:
        return None
    try:
        return extract_segments(endpoint, body)
    except Exception:  # a body of the wrong shape: fall back to inspecting every string
        return None


def walk_strings(value, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its path, e.g. ``messages[1].content``."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_strings(v, f"{path}[{i}]")
