"""The texts of one request, inspected together: values split across JSON fields or turns.

A caller can cut an identifier in two, ``"meu CPF: 529.982."`` in one text part and ``"247-25"`` in
the next message; the model reads them as one (REFERENCE: detectors must see through "values split
across JSON fields, turns or stream events"). Each text is scanned on its own, as always, and then
the text around each joint between two neighbouring texts once more, the two texts side by side the
way a model reads consecutive text parts: an e-mail or a key cut mid-token is whole again, a number
cut between its groups too, and so is a value cut in three with a separator as a part of its own. A
finding that crosses a joint comes back as one finding per text it touches, with the same detector,
so the policy's action applies to every piece. Every scan reads JSON escapes as separators
(``gateway.inspect.escapes``): this is the one way a request's texts are inspected, by the proxy,
``policy explain``, ``soberana scan`` and the demo alike.

Streams are covered elsewhere: the answer's leak scan joins the stream's text before scanning it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from gateway.inspect.escapes import scan_text
from gateway.inspect.findings import Finding

JOINT_CONTEXT = 96
"""Characters on each side of a joint scanned again: the longest identifier with its separators,
plus the context words the detectors look for before it."""

Scan = Callable[[str], list[Finding]]


def scan_texts(texts: Sequence[str], scan: Scan) -> tuple[list[list[Finding]], list[tuple[str, str]]]:
    """Findings per text of ``texts`` (empty strings for texts not to inspect, which do not separate
    their neighbours), each list in text order; and the values found across texts, as ``(detector,
    its pieces joined)``: what the answer's leak check must count as sent.
    ``scan`` is the inspector (``gateway.inspect.scan``, or the one a test chose)."""
    per = [scan_text(scan, t) if t else [] for t in texts]
    idx = [i for i, t in enumerate(texts) if t]
    split: list[tuple[str, str]] = []
    touched: set[int] = set()
    last = len(idx) - 1
    for k in range(1, len(idx)):
        a, b = texts[idx[k - 1]], texts[idx[k]]
        if (k == 1 or len(a) >= JOINT_CONTEXT) and (k == last or len(b) >= JOINT_CONTEXT):
            window = a[-JOINT_CONTEXT:] + b[:JOINT_CONTEXT]  # the usual case: what _sides gives, directly
            left = right = None
        else:
            left, right = _sides(texts, idx, k)
            window = "\n".join([t for _, _, t in left]) + "\n".join([t for _, _, t in right])
        found = scan_text(scan, window)
        if not found:
            continue  # (nearly always)
        if left is None:
            left, right = _sides(texts, idx, k)
        slices = _slices(left, right)
        for f in found:
            pieces = _pieces(slices, f.start, f.end)
            if not pieces or not pieces[0][0] < idx[k] <= pieces[-1][0]:
                continue  # does not cross this joint: found in its text, or at another joint
            if any(_overlaps(per[i], a, b) for i, a, b in pieces):
                continue  # (part of) a value found already, alone or at another joint: that one stands
            for i, a, b in pieces:
                per[i].append(f._replace(start=a, end=b))
                touched.add(i)
            split.append((f.detector, "".join([texts[i][a:b] for i, a, b in pieces])))
    for i in touched:
        per[i].sort(key=_start)
    return per, split


def _sides(texts, idx: list[int], k: int) -> tuple[list, list]:
    """The text read around the joint before ``texts[idx[k]]``: up to ``JOINT_CONTEXT`` characters on
    each side, as ``(text index, offset in that text, the characters)``. The window joins each side's
    pieces with a line break and glues the two sides: only this joint is under study, and a value
    is not stretched into the words of the texts beyond it."""
    t = texts[idx[k - 1]]
    if len(t) >= JOINT_CONTEXT:  # the usual case: one piece a side
        left = [(idx[k - 1], len(t) - JOINT_CONTEXT, t[-JOINT_CONTEXT:])]
    else:
        left, need = [], JOINT_CONTEXT
        for m in range(k - 1, -1, -1):
            t = texts[idx[m]]
            take = t[-need:] if need < len(t) else t
            left.append((idx[m], len(t) - len(take), take))
            need -= len(take)
            if need <= 0:
                break
        left.reverse()
    t = texts[idx[k]]
    if len(t) >= JOINT_CONTEXT or k == len(idx) - 1:
        return left, [(idx[k], 0, t[:JOINT_CONTEXT])]
    right, need = [], JOINT_CONTEXT
    for m in range(k, len(idx)):
        take = texts[idx[m]][:need]
        right.append((idx[m], 0, take))
        need -= len(take)
        if need <= 0:
            break
    return left, right


def _slices(left: list, right: list) -> list[tuple[int, int, int, int]]:
    """Where each piece lies in the window: ``(position, text index, offset in that text, length)``."""
    out, pos = [], 0
    for n, (i, off, take) in enumerate(left + right):
        if n and n != len(left):
            pos += 1  # the line break between two pieces of one side
        out.append((pos, i, off, len(take)))
        pos += len(take)
    return out


def _pieces(slices, s: int, e: int) -> list[tuple[int, int, int]]:
    """``(text index, start, end)`` of each part of the window's span ``s:e`` in the text it lies in."""
    out = []
    for at, i, off, n in slices:
        a, b = max(s, at), min(e, at + n)
        if a < b:
            out.append((i, off + a - at, off + b - at))
    return out


def _overlaps(found: list[Finding], a: int, b: int) -> bool:
    return any(f.start < b and a < f.end for f in found)


def _start(f: Finding) -> int:
    return f.start
