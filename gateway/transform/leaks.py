"""Leak scan of answers: sensitive values the model produced that the caller did not send.

A model can know (or invent) a real person's identifiers; an answer can also carry data a prompt
injection pulled in. The server counts these and applies the caller's own policy to them.
"""

from __future__ import annotations

from gateway.inspect import scan
from gateway.inspect.escapes import scan_text
from gateway.inspect.findings import Finding
from gateway.transform.pseudonymize import normalize_value

__all__ = ["normalize_value", "scan_answer", "sent_values"]


def sent_values(texts, findings, split=()) -> set[str]:
    """The normalized values of a request's findings (``texts[i]`` with ``findings[i]``), for
    ``scan_answer``; ``split`` adds the values found across texts (``(detector, value)``, from
    ``gateway.inspect.texts.scan_texts``), whose pieces alone are not what the answer may repeat."""
    sent = {normalize_value(f.detector, t[f.start:f.end]) for t, found in zip(texts, findings) for f in found
            if f.end > f.start}
    sent.update(normalize_value(detector, value) for detector, value in split)
    return sent


def scan_answer(text: str, sent: set[str] | frozenset[str]) -> list[Finding]:
    """Findings in an answer ``text`` whose normalized value is not among ``sent`` (see ``sent_values``)."""
    if not text:
        return []
    # (JSON escapes read as separators: tool-call arguments are JSON text, and a redaction must not
    # swallow the "n" of a "\n" and leave a broken escape behind)
    found = scan_text(scan, text)
    if not found:  # most answers: no comprehension (a function call of its own) to filter nothing
        return found
    return [f for f in found if normalize_value(f.detector, text[f.start:f.end]) not in sent]
