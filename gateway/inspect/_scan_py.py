"""Pure-Python reference inspector: the specification the compiled core reproduces exactly.

``scan(text)`` returns the findings of ``text``, sorted by start, never overlapping, with offsets
into the original text. The algorithm, step by step (tables live in ``detectors``, ``keywords``,
``validators`` and ``normalize``; a compiled twin builds C tables from them at import):

**0. Normalize.** ``normalize(text)`` gives ``norm`` and ``off`` (see ``normalize``: invisible
characters dropped, NFKC-to-ASCII folding, dashes, homoglyphs). Every step below works on ``norm``
and yields candidate spans ``[ns, ne)`` of it; a reported finding covers
``text[off[ns]:off[ne - 1] + 1]``. Letters below are ASCII unless said otherwise; ``isalnum``,
``isalpha`` and ``isupper`` are Python's ``str`` methods (Unicode).

**1. Words.** A *token* is a maximal run of characters that are ``isalnum()`` but not
``isdecimal()`` and not ``_`` (exactly the regex ``[^\\W\\d_]+``). Its folded form is
``fold_word`` (lower case, combining marks removed). Consecutive tokens form a *phrase* when the
gap between them is 1 to 3 characters, all from ``" \\t.-'’/"``; a phrase's text is the folded
tokens joined by one space; phrases are at most 6 tokens.
*Context*: a detector's context holds at a position ``p`` when some phrase whose first token
starts at or after ``p - 40`` and whose last token ends at or before ``p`` is in the detector's
``keywords.CONTEXT`` set, and, when the phrase is in ``keywords.CONTEXT_UPPER`` (acronyms that
are also ordinary words: "sin", "cc"), every one of its tokens ``isupper()``.

**2. Chunk windows** (every detector whose ``scanner`` is ``window``). A *chunk* is a maximal run of
``[0-9A-Za-zÑñ]``, except that a lower-case ``x`` between two ASCII digits starts a new chunk
(``0100x1736`` is ``0100`` and ``x1736``: phone extensions). Two consecutive chunks are *joined* when the gap between them is 1 to 3
characters, all from ``" \\t\\n\\r.-/()"``. For every chunk ``i`` that contains an ASCII digit, or
is 1 to 4 characters that are all upper-case letters, and for ``k = 1 .. MAX_CHUNKS``: the window
is chunks ``i .. i+k-1`` if each is joined to the next (stop at the first gap that is not joined, or
when the summed chunk length exceeds ``MAX_COMPACT``). Its *compact* value is the chunks
concatenated and upper-cased; its *layout* is the tuple of chunk lengths. A window whose compact
value is one character repeated is skipped (no candidate, no rule below). Its *plain* compact
value is the same built from the text before the homoglyph step; a validator passes when it
accepts the compact value or the plain one (so an alphanumeric CNPJ may hold the letters O and I).

- *E.164 rule, first:* if the character before chunk ``i`` is ``+``, the character before that
  ``+`` (if any) is not ``isalnum()`` and every chunk of the window is ASCII digits only, this
  rule alone decides the window (no other detector is tried): candidate ``intl.phone`` when the
  compact value has 8 to 15 digits and does not start with ``0``, spanning from the ``+`` (from
  the ``(`` when one is right before it: ``(+57) 320 715 60 67``) to the end of the window.
- *Otherwise*, the detectors of ``LAYOUTS[layout]`` whose validator accepts the compact value
  (``intl.phone``: digits only, 8-15 of them, not all the same) are considered in priority order.
  The window's candidate is the first of them whose context holds at the window start; if none has
  its context, the first that does not *need* it. A detector needs context by its ``context``
  field: ``none`` never; ``always``; ``compact`` only when ``k == 1``; and every detector when
  ``k == 2``, the second chunk is one character and the gap before it is whitespace only
  (``123871965 5``); ``intl.phone`` unless its first chunk is directly enclosed in ``(`` and
  ``)``. The span runs from the first chunk's start (for ``intl.phone`` in parentheses, from the
  ``(``) to the last chunk's end.

**3. E-mail** (``intl.email``). For each ``@`` at ``a``: the local part is the maximal run ending at
``a - 1`` of characters that are ``isalnum()`` or in ``._%+-``, minus its leading dots; the domain
is the maximal run starting at ``a + 1`` of ``isalnum()`` or ``.-`` characters, minus trailing
``.``/``-`` characters. No candidate when that local run is over 64 characters or that domain run
over 255 (before trimming). Candidate when the local part is non-empty and the domain splits on
``.`` into at least two non-empty labels, the last of 2+ characters all ``isalpha()``.

**4. IP addresses** (``intl.ip``). IPv4: ``(?<![0-9A-Za-z.])`` four groups of 1-3 ASCII digits
joined by single dots, each at most 255, ``(?![0-9A-Za-z]|\\.[0-9])``. IPv6 (only when the text has
a ``:``): each maximal run of ``[0-9A-Fa-f:.]``, with leading and trailing dots removed, that is not
adjacent to an ``isalnum()`` character, is at most 45 characters, has at least two colons and
one hex digit, and that ``ipaddress.IPv6Address`` accepts.

**5. Credentials** (tier 0). ``secret.api_key``: each ``detectors.SECRET_PATTERNS`` entry as
``(?<![A-Za-z0-9_-])PREFIX[BODY]{min,max}(?![BODY])``. ``secret.jwt``:
``(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{7,}\\.eyJ[A-Za-z0-9_-]{2,}\\.[A-Za-z0-9_-]*``.
``secret.private_key``: from ``-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----`` to the end of the next
``-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----``, or to the end of the text when there is none (fail
closed). ``secret.password`` (the span is the password only): the ``pass`` group of
``(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\\s/?#@:]+:(?P<pass>[^\\s/?#@]+)@``;
and after a key of ``PASSWORD_KEYS`` (case-insensitive, not preceded by ``[A-Za-z0-9_]``), an optional closing quote,
spaces/tabs, ``=`` or ``:``, spaces/tabs: a quoted value (the characters up to the matching quote,
at least 1) or the maximal run of characters other than whitespace and ``;&,'"<>``. A value needs 4
or more characters; after ``:`` it must also hold a character that is not a letter.

**6. Markings, health terms, ICD-10** (from the tokens of step 1). At every token, the longest
phrase in ``HEALTH_TERMS`` starting there is a ``health.term`` candidate (a one-word phrase of
``HEALTH_UPPER`` only when its token ``isupper()``); the longest phrase in
``MARKINGS`` starting there is a ``gov.marking`` candidate when every one of its tokens
``isupper()``, or when a phrase of ``MARKING_LABELS`` ends at the previous token with a gap of 1 to
4 characters from ``" \\t:=-\\"'"`` before the marking. Neither is a candidate when the character
before its first token or after its last one is ``_`` or ``isalnum()`` (``CLIENT_SECRET``,
``HIV2``). ICD-10 codes: ``(?<![0-9A-Za-z])[A-TV-Z][0-9]{2}(?:\\.[0-9A-Z]{1,4})?(?![0-9A-Za-z])`` (the extension is taken only if that maximal run after the
dot has 1-4 characters) with ``ICD10_CONTEXT`` holding at its start.

**7. Encoded values** (base64, hex, URL encoding; REFERENCE.md's evasion forms). *Sites* are: each
``%`` followed by two ASCII hex digits; and each maximal run of ``[0-9A-Za-z]`` of 12 or more
characters that has *hex shape* (even length, at least 14, all hex digits, and each character at an
even offset in ``2``-``7``, the first nibble of a printable ASCII byte; in ``2``-``3`` when the run
is all digits and shorter than 20, as card numbers are) or holds a lower-case letter and an upper-case letter after its first character, or
is followed by ``=`` and holds two of lower case, upper case and digits (a base64 look: words,
capitalized words, user names such as ``christopher03``, digit runs, IBANs and CURPs are no sites). At a ``%`` site, the *run* is the maximal run of
``[0-9A-Za-z%._~/-]`` around it, decoded as URL encoding (UTF-8, bad bytes replaced). At an
alphanumeric site, a hex-shaped run is decoded as hex when every byte is printable ASCII or
``\t\n\r``; otherwise (or if it is not hex-shaped), as base64: first the maximal
``[0-9A-Za-z+/]`` run around it with up to two ``=`` after it, then the site with the ``=`` right
after it; a base64 text needs a valid length and padding and must decode to UTF-8 that is all
printable or whitespace. Sites are taken in order of position; a site inside the last run looked at
is skipped; runs over ``_ENC_MAX_LEN`` characters are not decoded, and after ``_ENC_MAX_RUNS`` runs decoded the step stops (a hostile body cannot make inspection
slow). The decoded text, after the
``CONTEXT_WINDOW`` characters of ``norm`` before the run (so that a keyword before the run is
context), is scanned by steps 0-6 and 8 (decoded text is never decoded again); each of its findings
that ends inside the decoded part is a candidate of its detector spanning the whole run. Runs are
found in ``norm``; they are decoded from the text before the homoglyph step (same positions).

**8. Overlaps.** All candidates are sorted by ``(tier, -(ne - ns), ns, detector priority)`` and
accepted greedily unless they overlap one already accepted: credentials beat everything, then the
longer span, then the earlier one, then the detector listed first in ``DETECTORS``. Findings are
returned sorted by start.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import ipaddress
import re
from urllib.parse import unquote

from gateway.inspect.detectors import DETECTORS, INDEX, LAYOUTS, MAX_CHUNKS, MAX_COMPACT, SECRET_PATTERNS
from gateway.inspect.findings import Finding
from gateway.inspect.keywords import (
    CONTEXT, CONTEXT_UPPER, CONTEXT_WINDOW, HEALTH_TERMS, HEALTH_UPPER, ICD10_CONTEXT, MARKING_LABELS,
    MARKINGS, PASSWORD_KEYS)
from gateway.inspect.normalize import fold_word, normalize_both
from gateway.inspect.validators import VALIDATORS

_CHUNK = re.compile(r"[0-9A-Za-zÑñ]+")
_JOIN = frozenset(" \t\n\r.-/()")
_TOKEN = re.compile(r"[^\W\d_]+")
_PHRASE_GAP = frozenset(" \t.-'\u2019/")
_LABEL_GAP = frozenset(" \t:=-\"'")
_MAX_WORDS = 6
_MAX_LOCAL = 64
_MAX_DOMAIN = 255
_MAX_IPV6 = 45
_DIGITS = frozenset("0123456789")

_IPV4 = re.compile(r"(?<![0-9A-Za-z.])([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})"
                   r"(?![0-9A-Za-z]|\.[0-9])")
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]+")
_HEX = frozenset("0123456789abcdefABCDEF")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{7,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_PK_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PK_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_URL_PASS = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/?#@:]+:(?P<pass>[^\s/?#@]+)@")
_PASS_KEY = re.compile(
    r"(?<![A-Za-z0-9_])(?:" + "|".join(re.escape(k) for k in sorted(PASSWORD_KEYS, key=len, reverse=True))
    + r")[\"']?[ \t]*([=:])[ \t]*", re.IGNORECASE)
_PASS_VALUE = re.compile(r"[^\s;&,'\"<>]+")
_ICD10 = re.compile(r"(?<![0-9A-Za-z])[A-TV-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?(?![0-9A-Za-z])")
_SECRETS = tuple(
    (prefix, re.compile(r"(?<![A-Za-z0-9_-])" + re.escape(prefix) + "[" + body + "]{" + str(lo) + ","
                        + (str(hi) if hi else "") + "}(?![" + body + "])"))
    for prefix, body, lo, hi in SECRET_PATTERNS)

_ENC_SITE_MIN = 12     # an alphanumeric run this long may be base64 or hex
_HEX_MIN = 14          # 7 bytes: shorter hex holds no identifier worth the decoding
_HEX_DIGITS_MIN = 20   # hex of digits alone this long may hold letters too (longer than cards)
_ENC_MAX_LEN = 4096    # longer runs (images, attachments) are not decoded: bounded work per run
_ENC_MAX_RUNS = 32     # runs decoded per text: bounded work per scan
_ALNUM_RUN = re.compile(r"[0-9A-Za-z]{%d,}" % _ENC_SITE_MIN)
_PCT_SITE = re.compile(r"%[0-9A-Fa-f]{2}")
# runs of URL-encoded text and of base64: their ends found by regex (C speed: a long hostile run
# costs little), the start by the last character outside the run
_URL_RUN = (re.compile(r"(?s).*[^0-9A-Za-z%._~/-]"), re.compile(r"[0-9A-Za-z%._~/-]*"))
_B64_RUN = (re.compile(r"(?s).*[^0-9A-Za-z+/]"), re.compile(r"[0-9A-Za-z+/]*"))
_PRINTABLE_BYTES = frozenset(range(0x20, 0x7F)) | {9, 10, 13}

_CONTEXT_SETS = tuple(frozenset(CONTEXT.get(d.id, ())) for d in DETECTORS)
_CONTEXT_UPPER = frozenset(CONTEXT_UPPER)
_VALIDATE = tuple(VALIDATORS.get(d.validator) if d.validator else None for d in DETECTORS)
_HEALTH = frozenset(HEALTH_TERMS)
_HEALTH_UPPER = frozenset(HEALTH_UPPER)
_MARKINGS = frozenset(MARKINGS)
_LABELS = frozenset(MARKING_LABELS)
_HEALTH_FIRST = frozenset(p.split(" ")[0] for p in HEALTH_TERMS)
_MARKINGS_FIRST = frozenset(p.split(" ")[0] for p in MARKINGS)
_ICD_CONTEXT = frozenset(ICD10_CONTEXT)
_PHONE = INDEX["intl.phone"]
_EMAIL = INDEX["intl.email"]
_IP = INDEX["intl.ip"]
_API_KEY = INDEX["secret.api_key"]
_JWT_I = INDEX["secret.jwt"]
_PK = INDEX["secret.private_key"]
_PASSWORD = INDEX["secret.password"]
_MARKING = INDEX["gov.marking"]
_HEALTH_I = INDEX["health.term"]
_TIER = tuple(d.tier for d in DETECTORS)


def scan(text: str) -> list[Finding]:
    """Findings in ``text``, sorted by start, not overlapping; offsets index the original text."""
    return _scan(text, True)


def scan_decoded(text: str) -> list[Finding]:
    """``scan`` without step 7: what a decoded run is scanned with (decoded text is not decoded
    again, so nesting cannot multiply the work)."""
    return _scan(text, False)


def _scan(text: str, encoded: bool) -> list[Finding]:
    if not text:
        return []
    norm, plain, off = normalize_both(text)
    words = _Words(norm)
    cands: list[tuple[int, int, int]] = []  # (ns, ne, detector index)
    _windows(norm, plain if plain != norm else None, words, cands)
    if "@" in norm:
        _emails(norm, cands)
    _ips(norm, cands)
    _credentials(norm, cands)
    _terms(norm, words, cands)
    if encoded:
        sites = encoded_sites(norm)
        if sites:
            encoded_values(norm, plain if plain != norm else None, cands, sites, scan_decoded)
    return _resolve(cands, off)


class _Words:
    """Tokens of the normalized text, computed on first use, and phrase look-ups over them."""

    def __init__(self, norm: str) -> None:
        self.norm = norm
        self._tokens: list[tuple[int, int, str]] | None = None
        self._starts: list[int] = []
        self._joined: list[bool] = []

    @property
    def tokens(self) -> list[tuple[int, int, str]]:
        if self._tokens is None:
            norm = self.norm
            toks = self._tokens = [(m.start(), m.end(), fold_word(m.group()))
                                   for m in _TOKEN.finditer(norm)]
            self._starts = [t[0] for t in toks]
            self._joined = [1 <= b[0] - a[1] <= 3 and all(c in _PHRASE_GAP for c in norm[a[1]:b[0]])
                            for a, b in zip(toks, toks[1:])]
        return self._tokens

    def joined(self, t: int) -> bool:
        """Whether token ``t`` and token ``t + 1`` may be read as one phrase."""
        self.tokens  # noqa: B018 - computes the table
        return self._joined[t]

    def phrases(self, t: int, last: int):
        """``(u, phrase)`` for the phrases of tokens ``t..u``, ``u <= last``, shortest first."""
        toks = self.tokens
        phrase = toks[t][2]
        yield t, phrase
        u = t
        while u < last and u - t + 1 < _MAX_WORDS and self.joined(u):
            u += 1
            phrase += " " + toks[u][2]
            yield u, phrase

    def longest(self, t: int, table: frozenset[str], firsts: frozenset[str]) -> int:
        """Last token of the longest phrase of ``table`` starting at token ``t``, or -1
        (``firsts``: the first words of the table's phrases)."""
        if self.tokens[t][2] not in firsts:
            return -1
        best = -1
        for u, phrase in self.phrases(t, len(self.tokens) - 1):
            if phrase in table:
                best = u
        return best

    def context(self, table: frozenset[str], p: int) -> bool:
        """Whether a phrase of ``table`` lies within the ``CONTEXT_WINDOW`` characters before ``p``
        (one of ``CONTEXT_UPPER`` only when written in capitals)."""
        if not table:
            return False
        toks = self.tokens
        lo = bisect.bisect_left(self._starts, p - CONTEXT_WINDOW)
        hi = bisect.bisect_left(self._starts, p) - 1  # last token starting before p
        if hi >= 0 and toks[hi][1] > p:
            hi -= 1
        for t in range(lo, hi + 1):
            for u, phrase in self.phrases(t, hi):
                if phrase in table and (phrase not in _CONTEXT_UPPER or all(
                        self.norm[toks[k][0]:toks[k][1]].isupper() for k in range(t, u + 1))):
                    return True
        return False


def _chunks(norm: str) -> list[tuple[int, int]]:
    out = []
    for m in _CHUNK.finditer(norm):
        s, e = m.span()
        if "x" in m.group():
            # "555-0100x1736": a phone extension starts a chunk of its own
            for p in range(s + 1, e - 1):
                if norm[p] == "x" and norm[p - 1] in _DIGITS and norm[p + 1] in _DIGITS:
                    out.append((s, p))
                    s = p
        out.append((s, e))
    return out


def _windows(norm: str, plain: str | None, words: _Words, cands: list) -> None:
    chunks = _chunks(norm)
    n = len(norm)
    nchunks = len(chunks)
    for i in range(nchunks):
        cs, ce = chunks[i]
        first = norm[cs:ce]
        has_digit = any(c in _DIGITS for c in first)
        if not has_digit and not (len(first) <= 4 and first.isalpha() and first.isupper()):
            continue
        plus = cs > 0 and norm[cs - 1] == "+" and (cs == 1 or not norm[cs - 2].isalnum())
        paren = cs > 0 and norm[cs - 1] == "(" and ce < n and norm[ce] == ")"
        lengths: list[int] = []
        parts: list[str] = []
        total = 0
        all_digits = True
        for j in range(i, min(i + MAX_CHUNKS, nchunks)):
            s, e = chunks[j]
            if j > i:
                gap = norm[chunks[j - 1][1]:s]
                if len(gap) > 3 or not all(c in _JOIN for c in gap):
                    break
            part = norm[s:e]
            # "123871965 5": a lone last character after a plain space is more often the next
            # word than a check digit, so that reading of two chunks needs context
            loose_tail = j == i + 1 and e - s == 1 and gap.isspace()
            total += e - s
            if total > MAX_COMPACT:
                break
            lengths.append(e - s)
            parts.append(part)
            all_digits = all_digits and part.isdigit() and part.isascii()
            compact = "".join(parts).upper()
            raw = None
            if plain is not None:
                raw = "".join(plain[a:b] for a, b in chunks[i:j + 1]).upper()
                if raw == compact:
                    raw = None
            if compact.count(compact[0]) == len(compact):
                continue  # one character repeated ("111.111.111-11") is never a value
            if plus and all_digits:
                if 8 <= total <= 15 and compact[0] != "0":
                    cands.append((cs - 2 if cs > 1 and norm[cs - 2] == "(" else cs - 1, e, _PHONE))
                continue
            chosen = fallback = -1
            for d in LAYOUTS.get(tuple(lengths), ()):
                if d == _PHONE:
                    if not (compact.isdigit() and compact.isascii() and 8 <= total <= 15
                            and len(set(compact)) > 1):
                        continue
                    needs = not paren
                else:
                    if not _VALIDATE[d](compact) and not (raw is not None and _VALIDATE[d](raw)):
                        continue
                    mode = DETECTORS[d].context
                    needs = mode == "always" or (mode == "compact" and j == i) or loose_tail
                if words.context(_CONTEXT_SETS[d], cs):
                    chosen = d
                    break
                if fallback < 0 and not needs:
                    fallback = d
            if chosen < 0:
                chosen = fallback
            if chosen >= 0:
                cands.append((cs - 1 if chosen == _PHONE and paren else cs, e, chosen))


def _local_char(c: str) -> bool:
    return c.isalnum() or c in "._%+-"


def _domain_char(c: str) -> bool:
    return c.isalnum() or c in ".-"


def _emails(norm: str, cands: list) -> None:
    n = len(norm)
    a = norm.find("@")
    while a >= 0:
        # bounded scans: a local part over 64 or a domain over 255 characters is no address,
        # and a text of many '@' after one long run must not cost quadratic time
        s = a
        while s > 0 and a - s <= _MAX_LOCAL and _local_char(norm[s - 1]):
            s -= 1
        e = a + 1
        while e < n and e - a - 1 <= _MAX_DOMAIN and _domain_char(norm[e]):
            e += 1
        if a - s > _MAX_LOCAL or e - a - 1 > _MAX_DOMAIN:
            a = norm.find("@", a + 1)
            continue
        while s < a and norm[s] == ".":
            s += 1
        while e > a + 1 and norm[e - 1] in ".-":
            e -= 1
        if s < a:
            labels = norm[a + 1:e].split(".")
            if len(labels) >= 2 and all(labels) and len(labels[-1]) >= 2 and labels[-1].isalpha():
                cands.append((s, e, _EMAIL))
        a = norm.find("@", a + 1)


def _ips(norm: str, cands: list) -> None:
    for m in _IPV4.finditer(norm):
        if all(int(g) <= 255 for g in m.groups()):
            cands.append((m.start(), m.end(), _IP))
    if ":" not in norm:
        return
    n = len(norm)
    for m in _IPV6_RUN.finditer(norm):
        s, e = m.span()
        if (s > 0 and norm[s - 1].isalnum()) or (e < n and norm[e].isalnum()):
            continue
        while s < e and norm[s] == ".":
            s += 1
        while e > s and norm[e - 1] == ".":
            e -= 1
        value = norm[s:e]
        if len(value) > _MAX_IPV6 or value.count(":") < 2 or not any(c in _HEX for c in value):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        cands.append((s, e, _IP))


def _credentials(norm: str, cands: list) -> None:
    for prefix, rx in _SECRETS:
        if prefix in norm:
            for m in rx.finditer(norm):
                cands.append((m.start(), m.end(), _API_KEY))
    if "eyJ" in norm:
        for m in _JWT.finditer(norm):
            cands.append((m.start(), m.end(), _JWT_I))
    if "-----BEGIN " in norm:
        pos = 0
        while True:
            m = _PK_BEGIN.search(norm, pos)
            if not m:
                break
            end = _PK_END.search(norm, m.end())
            stop = end.end() if end else len(norm)
            cands.append((m.start(), stop, _PK))
            pos = stop
    if "://" in norm:
        for m in _URL_PASS.finditer(norm):
            cands.append((m.start("pass"), m.end("pass"), _PASSWORD))
    # Keys can follow each other inside one value ("password=password=password=..."): the run of a
    # value and its letters are each measured once, not again from every key in it (that was
    # quadratic: a 1 MB body of such keys took minutes)
    run_s = run_e = 0   # the last unquoted value run measured
    letters = 0         # norm[start:letters] are letters, from a start at or before the value's
    for m in _PASS_KEY.finditer(norm):
        v = m.end()
        if v < len(norm) and norm[v] in "\"'":
            close = norm.find(norm[v], v + 1)
            if close < 0:
                continue
            s, e = v + 1, close
        elif run_s <= v < run_e:
            s, e = v, run_e  # inside the run measured for an earlier key: the same end
        else:
            mv = _PASS_VALUE.match(norm, v)
            if not mv:
                continue
            s, e = run_s, run_e = mv.span()
        if e - s < 4:
            continue
        if m.group(1) == ":":  # a value after ":" must hold a character that is not a letter
            letters = max(letters, s)
            while letters < e and norm[letters].isalpha():
                letters += 1
            if letters >= e:
                continue
        cands.append((s, e, _PASSWORD))


def _terms(norm: str, words: _Words, cands: list) -> None:
    toks = words.tokens
    n = len(norm)
    for t in range(len(toks)):
        s = toks[t][0]
        if s > 0 and (norm[s - 1] == "_" or norm[s - 1].isalnum()):
            continue  # part of an identifier such as CLIENT_SECRET or HIV2
        u = words.longest(t, _HEALTH, _HEALTH_FIRST)
        if u >= 0 and _free_end(norm, toks[u][1], n) and (
                toks[t][2] not in _HEALTH_UPPER or u > t or norm[s:toks[t][1]].isupper()):
            cands.append((s, toks[u][1], _HEALTH_I))
        u = words.longest(t, _MARKINGS, _MARKINGS_FIRST)
        if u >= 0 and _free_end(norm, toks[u][1], n) and (
                all(norm[toks[k][0]:toks[k][1]].isupper() for k in range(t, u + 1))
                or _labelled(words, t)):
            cands.append((s, toks[u][1], _MARKING))
    if any(c in norm for c in "ABCDEFGHIJKLMNOPQRSTVWXYZ"):
        for m in _ICD10.finditer(norm):
            if words.context(_ICD_CONTEXT, m.start()):
                cands.append((m.start(), m.end(), _HEALTH_I))


def enc_site(run: str, padded: bool) -> bool:
    """Whether an alphanumeric run of ``_ENC_SITE_MIN`` or more characters (``padded``: an ``=``
    right after it) is a site of step 7: hex-shaped, or a base64 look (a lower-case letter and an
    upper-case one after the first character; or, padded, two of lower case, upper case and
    digits). The compiled core's lexer applies the same rule to hand the run over."""
    n = len(run)
    if n >= _HEX_MIN and n % 2 == 0 and all(c in _HEX for c in run):
        # printable ASCII has a first nibble of 2-7; a card number (up to 19 digits) would
        # often pass that, so digits alone under _HEX_DIGITS_MIN must read as digits and
        # punctuation (first nibbles 2-3)
        top = "23" if run.isdigit() and n < _HEX_DIGITS_MIN else "234567"
        if all(run[k] in top for k in range(0, n, 2)):
            return True
    lower = upper = digit = later_upper = False
    for k, c in enumerate(run):
        if "a" <= c <= "z":
            lower = True
        elif c <= "9":
            digit = True
        else:
            upper = True
            later_upper = later_upper or k > 0
    # words, capitalized words, user names ("christopher03"), IBANs and CURPs are no sites
    return (lower and later_upper) or (padded and lower + upper + digit >= 2)


def encoded_sites(norm: str) -> list[tuple[int, int]]:
    """The sites of step 7 in ``norm``, as ``(start, end)``, sorted."""
    sites = []
    if "%" in norm:
        sites = [m.span() for m in _PCT_SITE.finditer(norm)]
    sites += [m.span() for m in _ALNUM_RUN.finditer(norm)
              if enc_site(m.group(), m.end() < len(norm) and norm[m.end()] == "=")]
    sites.sort()
    return sites


def encoded_values(norm: str, plain: str | None, cands: list, sites, inner) -> None:
    """Step 7: candidates for the values hidden in the encoded runs at ``sites`` (sorted
    ``(start, end)`` pairs of ``norm``; the compiled core passes the ones its lexer found).
    ``inner`` scans a decoded text (steps 0-6 and 8)."""
    src = norm if plain is None else plain
    done = 0    # end of the last run decoded: its sites are inside it
    budget = _ENC_MAX_RUNS
    for s, e in sites:
        if budget == 0:
            break
        if s < done:
            continue
        if norm[s] == "%":
            a, b = _run_around(norm, s, e, _URL_RUN)
            decoded = unquote(src[a:b]) if b - a <= _ENC_MAX_LEN else None
            budget -= decoded is not None
        else:
            a, b, decoded, tries = _alnum_decode(norm, src, s, e)
            budget -= tries > 0
        done = max(done, b)
        if decoded:
            _decoded_findings(norm, a, b, decoded, cands, inner)


def _run_around(norm: str, s: int, e: int, run) -> tuple[int, int]:
    """The maximal run (``_URL_RUN`` or ``_B64_RUN``) holding ``norm[s:e]``; its start is looked
    for ``_ENC_MAX_LEN + 1`` characters back at most (a run that long is not decoded)."""
    lo = max(0, s - _ENC_MAX_LEN - 1)
    m = run[0].match(norm, lo, s)
    return (m.end() if m else lo), run[1].match(norm, e).end()


def _alnum_decode(norm: str, src: str, s: int, e: int) -> tuple[int, int, str | None, int]:
    """``(a, b, decoded, tries)`` for the alphanumeric site ``[s, e)``: the run decoded (None when no
    reading decodes) and how many readings were tried."""
    if e - s > _ENC_MAX_LEN:
        return s, e, None, 0
    run = src[s:e]
    if e - s >= _HEX_MIN and (e - s) % 2 == 0 and all(c in _HEX for c in run):
        raw = bytes.fromhex(run)
        if all(b in _PRINTABLE_BYTES for b in raw):
            return s, e, raw.decode("ascii"), 1
    a, b = _run_around(norm, s, e, _B64_RUN)
    tries = 0
    # the whole base64 run first; then the site alone, for a value at the end of a path
    # ("/users/NTI5OTgyMjQ3MjU=") or after a "+" or "/"
    for x, y in ((a, b), (s, e)) if (a, b) != (s, e) else ((s, e),):
        if y - x > _ENC_MAX_LEN:
            continue
        pad = 0
        while pad < 2 and y + pad < len(norm) and norm[y + pad] == "=":
            pad += 1
        tries += 1
        decoded = _b64(src[x:y], pad)
        if decoded is not None:
            return x, y + pad, decoded, tries
    return s, e, None, tries


def _b64(body: str, pad: int) -> str | None:
    """The base64 text ``body`` (followed by ``pad`` ``=``) decoded, when its length and padding
    are valid and it decodes to UTF-8 that is all printable or whitespace; else None."""
    if len(body) % 4 == 1 or (pad and (len(body) + pad) % 4):
        return None
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not all(c.isprintable() or c in "\t\n\r" for c in text):
        return None
    return text


def _decoded_findings(norm: str, a: int, b: int, decoded: str, cands: list, inner) -> None:
    """Candidates spanning the run ``[a, b)`` for the findings of its decoded text, scanned after
    the context before the run."""
    before = norm[max(0, a - CONTEXT_WINDOW):a]
    for f in inner(before + decoded):
        if f.end > len(before):
            cands.append((a, b, INDEX[f.detector]))


def _free_end(norm: str, e: int, n: int) -> bool:
    return e == n or not (norm[e] == "_" or norm[e].isalnum())


def _labelled(words: _Words, t: int) -> bool:
    """Whether a marking label ends at token ``t - 1``, right before token ``t``."""
    if t == 0:
        return False
    toks = words.tokens
    gap = words.norm[toks[t - 1][1]:toks[t][0]]
    if not (1 <= len(gap) <= 4 and all(c in _LABEL_GAP for c in gap)):
        return False
    for s in range(t - 1, max(-1, t - 1 - _MAX_WORDS), -1):
        for u, phrase in words.phrases(s, t - 1):
            if u == t - 1 and phrase in _LABELS:
                return True
    return False


def _resolve(cands: list[tuple[int, int, int]], off: list[int]) -> list[Finding]:
    cands.sort(key=lambda c: (_TIER[c[2]], c[0] - c[1], c[0], c[2]))
    starts: list[int] = []
    ends: list[int] = []
    picked: list[tuple[int, int, int]] = []
    for ns, ne, d in cands:
        k = bisect.bisect_right(starts, ns)
        if k > 0 and ends[k - 1] > ns:
            continue
        if k < len(starts) and starts[k] < ne:
            continue
        starts.insert(k, ns)
        ends.insert(k, ne)
        picked.insert(k, (ns, ne, d))
    out = []
    for ns, ne, d in picked:
        det = DETECTORS[d]
        out.append(Finding(det.id, det.category, det.country, off[ns], off[ne - 1] + 1))
    return out
