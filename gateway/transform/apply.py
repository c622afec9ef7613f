"""Apply the policy's actions to the segment texts (SPEC section 8). Pure: texts in, texts out.

Per finding: ``allow`` leaves the value, ``encrypt`` puts an ENC token (identifiers are encrypted in
normalized form, so ``123.456.789-09`` and ``12345678909`` get one token; this request's answer
still shows the caller's own spelling), ``pseudonymize`` a ``[LABEL_N]`` placeholder, ``hash`` a
HASH token of the normalized value, ``redact`` a REDACTED token. ``block`` never reaches this stage:
the request is refused before, and meeting it here is an error (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.inspect.findings import Finding
from gateway.keys import KeyRing
from gateway.transform.pseudonymize import PlaceholderMap, normalize_value
from gateway.transform.tokens import encrypt_token, hash_token, label_for, redact_token

ACTIONS = ("allow", "encrypt", "pseudonymize", "hash", "redact")


class TransformError(ValueError):
    """The actions cannot be applied as given (a block, an unknown action, findings that do not fit
    the text). The message names positions and actions, never a value."""


def apply(texts: Sequence[str], findings: Sequence[Sequence[Finding]], actions: Sequence[Sequence[str]],
          ring: KeyRing, jurisdiction: str, pmap: PlaceholderMap) -> list[str]:
    """The texts with each finding's value replaced as its action says.

    ``findings[i]`` and ``actions[i]`` belong to ``texts[i]`` (one action per finding, in the same
    order). Placeholders and ENC tokens produced are recorded in ``pmap`` for the answer's restore.
    """
    if not len(texts) == len(findings) == len(actions):
        raise TransformError("texts, findings and actions differ in length")
    for text in texts:
        pmap.reserve(text)
    out: list[str] = []
    for i, (text, found, acts) in enumerate(zip(texts, findings, actions)):
        if len(found) != len(acts):
            raise TransformError(f"segment {i}: {len(found)} findings but {len(acts)} actions")
        out.append(_apply_one(i, text, found, acts, ring, jurisdiction, pmap) if found else text)
    return out


def _apply_one(i: int, text: str, found: Sequence[Finding], acts: Sequence[str], ring: KeyRing,
               jurisdiction: str, pmap: PlaceholderMap) -> str:
    todo = sorted(((f, a) for f, a in zip(found, acts) if a != "allow"), key=lambda fa: fa[0].start)
    for f, a in todo:
        if a not in ACTIONS:
            raise TransformError(f"segment {i}: action {a!r} cannot be applied ({f.detector})")
    if not todo:
        return text
    parts: list[str] = []
    pos = 0
    for f, a in todo:
        if not (pos <= f.start < f.end <= len(text)):
            raise TransformError(f"segment {i}: finding {f.detector} at {f.start}:{f.end} overlaps or lies outside the text")
        value = text[f.start:f.end]
        parts.append(text[pos:f.start])
        parts.append(_token(a, f.detector, value, ring, jurisdiction, pmap))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def _token(action: str, detector: str, value: str, ring: KeyRing, jurisdiction: str, pmap: PlaceholderMap) -> str:
    if action == "pseudonymize":
        return pmap.placeholder(detector, value)
    label = label_for(detector)
    if action == "redact":
        return redact_token(label)
    if action == "hash":
        return hash_token(ring, label, normalize_value(detector, value))
    token = encrypt_token(ring, jurisdiction, label, normalize_value(detector, value))
    pmap.record(token, value)
    return token
