"""Leak scan of answers: sensitive values the model produced that the caller did not send.

A model can know (or invent) a real person's identifiers; an answer can also carry data a prompt
injection pulled in. The server counts these and applies the caller's own policy to them.
"""

from __future__ import annotations

from gateway.inspect import scan, scan_decoded
from gateway.inspect._scan_py import encoded_sites, encoded_values
from gateway.inspect.escapes import scan_text
from gateway.inspect.findings import Finding
from gateway.inspect.keywords import CONTEXT_WINDOW
from gateway.inspect.normalize import normalize_both
from gateway.transform.pseudonymize import normalize_value

__all__ = ["normalize_value", "scan_answer", "sent_values"]


def sent_values(texts, findings, split=()) -> set[str]:
    """The normalized values of a request's findings (``texts[i]`` with ``findings[i]``), for
    ``scan_answer``; ``split`` adds the values found across texts (``(detector, value)``, from
    ``gateway.inspect.texts.scan_texts``), whose pieces alone are not what the answer may repeat."""
    sent = {normalize_value(f.detector, t[f.start:f.end]) for t, found in zip(texts, findings) for f in found
            if f.end > f.start}
    sent.update(normalize_value(detector, value) for detector, value in split)
    # a value the caller sent encoded (base64, hex, URL encoding) is found as its encoded run, but a
    # model that decodes it answers with the value itself: that was sent too, not leaked
    for t, found in zip(texts, findings):
        for f in found:
            if f.end > f.start:
                sent.update(_decoded(t[f.start:f.end], t[max(0, f.start - CONTEXT_WINDOW):f.start]))
    for _, value in split:
        sent.update(_decoded(value, ""))
    return sent


def _decoded(value: str, before: str) -> list[str]:
    """The normalized values found in the encoded runs of a finding's ``value`` once decoded (the
    inspector's step 7, with ``before``, the text before the value, as the detectors' context)."""
    norm, plain, _ = normalize_both(value)
    sites = encoded_sites(norm)
    if not sites:  # (a value sent as it is: nearly always)
        return []
    before = normalize_both(before)[0] if before else ""
    out: list[str] = []

    def inner(decoded: str) -> list[Finding]:
        s = before + decoded
        out.extend(normalize_value(g.detector, s[g.start:g.end]) for g in scan_decoded(s)
                   if g.end > len(before))
        return []  # (collected above: no candidates for the encoded run itself)

    encoded_values(norm, plain if plain != norm else None, [], sites, inner)
    return out


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
