"""Normalization for matching, with an offset map back to the original text.

The inspector never matches on what the caller sent but on a normalized copy, so that evasion forms
(full-width digits, invisible characters between digits, exotic spaces and dashes, O/l/I in place of
0/1) look like the plain value. Every normalized character remembers the index of the original
character it came from, so findings point into the original text and ``text[start:end]`` is exactly
what the caller sent, invisible characters and all.

Rules, applied to each original character ``c`` in order (first match wins):

1. ``c`` in :data:`INVISIBLE` (every Default_Ignorable_Code_Point of Unicode: zero-width space,
   non-joiner and joiner, word joiner, BOM, soft hyphen, bidi marks, embeddings and isolates,
   invisible operators, variation selectors, Hangul fillers, tag characters, ...; and every
   combining mark, general category Mn or Me) is dropped.
2. ``c`` in :data:`LINE_BREAKS` becomes ``"\\n"``; ``c`` in :data:`DASHES` becomes ``"-"``.
3. ``c`` non-ASCII whose NFKC form is one printable ASCII character or a space becomes that
   character (full-width digits and letters, mathematical digits, superscripts, no-break, thin and
   ideographic spaces, full-width punctuation). :data:`FOLD` holds this table. Arabic-Indic and
   other native digits are *not* folded: NFKC keeps them, and so do we.
4. Anything else is kept as it is.

Then homoglyphs, which keep the length: in every maximal run of characters from ``0-9 O l I`` that
holds at least one ASCII digit and whose neighbours (the characters just before and just after the
run, if any) are not letters (``str.isalpha``), ``O`` becomes ``0`` and ``l``/``I`` become ``1``.
So ``529.98O.247-25`` reads as a CPF, while ``CO2``, ``hello1`` and ``IOI`` stay as they are.
"""

from __future__ import annotations

import unicodedata

_DEFAULT_IGNORABLE = (
    # Unicode DerivedCoreProperties.txt, Default_Ignorable_Code_Point: what renders as nothing
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def _build_invisible() -> frozenset[str]:
    # Default-ignorable characters, and combining marks: an accent typed apart (NFD "Ce\u0301dula"),
    # or an underline, strike-through, keycap or circle drawn over a digit, is not part of the value
    out = {chr(cp) for lo, hi in _DEFAULT_IGNORABLE for cp in range(lo, hi + 1)}
    for cp in range(0x300, 0x20000):
        if unicodedata.category(chr(cp)) in ("Mn", "Me"):
            out.add(chr(cp))
    return frozenset(out)


INVISIBLE = _build_invisible()
"""Characters dropped before matching: they may sit inside a value and stay inside its span. All of
them are below U+20000 except the tag characters and variation selectors of U+E0000..U+E0FFF."""

LINE_BREAKS = frozenset("\u2028\u2029\u0085")
"""Unicode line separators read as ``\\n``."""

DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043")
"""Dash-like characters NFKC keeps but a reader takes for ``-``."""

HOMOGLYPHS = {"O": "0", "l": "1", "I": "1"}
"""Letters read as digits inside runs of digits."""


def _build_fold() -> dict[int, str]:
    fold: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        if 0xD800 <= cp < 0xE000:
            continue
        n = unicodedata.normalize("NFKC", chr(cp))
        if len(n) == 1 and (" " <= n <= "~"):
            fold[cp] = n
    for c in DASHES:
        fold[ord(c)] = "-"
    for c in LINE_BREAKS:
        fold[ord(c)] = "\n"
    return fold


FOLD: dict[int, str] = _build_fold()
"""Code point → the ASCII character it is read as (rules 2 and 3). No entry above U+1FFFF."""

_HOMO_RUN = frozenset("0123456789OlI")
_ASCII_DIGITS = frozenset("0123456789")


def normalize(text: str) -> tuple[str, list[int]]:
    """``(norm, offsets)``: the normalized text and, for each of its characters, the index of the
    original character; ``offsets`` has one more entry, ``len(text)``.

    A span ``[s, e)`` of ``norm`` covers ``text[offsets[s]:offsets[e - 1] + 1]``.
    """
    norm, _, offsets = normalize_both(text)
    return norm, offsets


def normalize_both(text: str) -> tuple[str, str, list[int]]:
    """``(norm, plain, offsets)``: as :func:`normalize`, plus ``plain``, the same text before the
    homoglyph step (same length, same offsets), for values that may hold the letters O, I and l."""
    out: list[str] = []
    offsets: list[int] = []
    fold = FOLD
    if text.isascii():
        out = list(text)
        offsets = list(range(len(text)))
    else:
        for i, c in enumerate(text):
            if c in INVISIBLE:
                continue
            cp = ord(c)
            if cp >= 0x80:
                c = fold.get(cp, c)
            out.append(c)
            offsets.append(i)
    offsets.append(len(text))
    plain = "".join(out)
    _homoglyphs(out)
    return "".join(out), plain, offsets


def _homoglyphs(chars: list[str]) -> None:
    n = len(chars)
    i = 0
    while i < n:
        if chars[i] not in _HOMO_RUN:
            i += 1
            continue
        j = i
        digit = homo = False
        while j < n and chars[j] in _HOMO_RUN:
            if chars[j] in _ASCII_DIGITS:
                digit = True
            else:
                homo = True
            j += 1
        if digit and homo and (i == 0 or not chars[i - 1].isalpha()) \
                and (j == n or not chars[j].isalpha()):
            for k in range(i, j):
                chars[k] = HOMOGLYPHS.get(chars[k], chars[k])
        i = j


def fold_word(word: str) -> str:
    """A word as keyword tables spell it: lower case, accents removed (``Cédula`` → ``cedula``)."""
    w = word.lower()
    if w.isascii():
        return w
    return "".join(c for c in unicodedata.normalize("NFD", w) if not unicodedata.combining(c))
