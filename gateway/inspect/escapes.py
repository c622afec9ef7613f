"""JSON escape sequences in inspected text: read as the separators they stand for.

Much of what the gateway inspects is JSON text: tool-call arguments (OpenAI ``arguments``, an
Anthropic ``tool_use`` input), tool results that return JSON, JSON pasted into a message. There a
line break is the two characters ``\\n``, so ``{"nota": "linha\\n529.982.247-25"}`` puts the letter
``n`` right before the CPF. Detectors rightly refuse a value glued to a letter (``n529…`` is no CPF),
so the CPF went upstream raw; an e-mail took the ``n`` into its local part, and replacing it left a
broken escape (``\\[EMAIL_1]``) in the JSON.

``scan_text`` therefore lets the detectors read a view of the text in which every JSON escape is
blanked to spaces of the same length (offsets stay those of the real text), and trims each finding
so that none starts or ends inside an escape: a transformation then never cuts one in half. Blanking
only adds separators, so it finds at least what the raw text gave (an escaped character inside a
value, ``\\u0035``, is found by neither).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

from gateway.inspect.findings import Finding

_ESCAPE = re.compile(r'\\(?:u[0-9A-Fa-f]{4}|["\\/bfnrt])')


def scan_text(scan: Callable[[str], list[Finding]], text: str) -> list[Finding]:
    """``scan(text)``, with JSON escape sequences read as separators (see the module docstring).

    ``scan`` is passed in so that callers keep the inspector they were given (tests replace it).
    """
    if "\\" not in text:
        return scan(text)
    spans = [m.span() for m in _ESCAPE.finditer(text)]
    if not spans:
        return scan(text)
    view = _ESCAPE.sub(lambda m: " " * len(m.group()), text)
    return _fit(scan(view), spans)


def _fit(found: list[Finding], spans: list[tuple[int, int]]) -> list[Finding]:
    """The findings, each trimmed so that it neither starts nor ends in or with an escape (whose view is
    blank: a value never begins or ends with a separator)."""
    starts = [a for a, _ in spans]
    by_end = {b: a for a, b in spans}
    out: list[Finding] = []
    for f in found:
        s, e = f.start, f.end
        i = bisect_right(starts, s) - 1
        while i >= 0 and i < len(spans) and spans[i][0] <= s < spans[i][1] and s < e:
            s, i = spans[i][1], i + 1  # off the escape it starts in (and any escape right after)
        j = bisect_right(starts, e - 1) - 1
        if j >= 0 and spans[j][0] < e < spans[j][1]:
            e = spans[j][0]  # back out of the escape it ends in
        while e in by_end and s < e:
            e = by_end[e]  # and off any escape it ends with
        if s < e or f.start == f.end:
            out.append(f if (s, e) == (f.start, f.end) else f._replace(start=s, end=e))
    return out
