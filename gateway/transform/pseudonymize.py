"""The per-request placeholder map: ``[CPF_1]`` ↔ the value it stands for (SPEC section 8).

One ``PlaceholderMap`` lives for one request (in ``Exchange.pmap``) and never leaves memory. It
hands out placeholders — the same value (compared in normalized form) gets the same placeholder — and
remembers the ENC tokens produced for this request, so the answer can show the caller its own values.
Only what this request produced is restorable: a token the upstream invents, or one that came from
elsewhere, stays as it is (the gateway is no decryption oracle).

Lookup is tolerant of what models do to placeholders: ``[cpf_1]``, ``[ CPF_1 ]``, ``[CPF 1]``,
``[CPF-1]`` and ``[CPF1]`` all find ``[CPF_1]`` (the key is the upper-cased letters and digits).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left

from gateway.transform.tokens import label_for

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_SPACES = re.compile(r"\s+")
PLACEHOLDER_INNER = r"[A-Za-z0-9_:.=\- \t\u00a0\u202f]"
"""A character the restorer accepts between a placeholder's brackets (the drift it tolerates:
``[cpf.1]``, ``[CPF\u00a01]``, ``[ENC:BR.k1:…]``)."""
# ``reserve`` takes from the caller's text exactly what the restorer would restore, of any length: a
# narrower pattern left ``[CPF.1]`` or ``[CPF\u00a01]`` in a prompt unreserved, so its echo in the
# answer turned into the value behind this request's ``[CPF_1]``.
_EXISTING = re.compile(r"\[(" + PLACEHOLDER_INNER + r"+)\]")
_KID_SO_FAR = re.compile(r"\s*[A-Za-z0-9._-]{0,50}\s*\Z")
_ENC_KEY = re.compile(r"\s*[Ee][Nn][Cc]\s*:[^:]*:\s*([A-Za-z0-9_-]+)\s*\Z")

# Detectors whose value is free text (compared case-folded, spaces collapsed) or a secret (compared
# exactly); every other detector is an identifier compared by its letters and digits only.
_TEXTUAL = {"health.term", "gov.marking", "intl.uninspectable"}


def normalize_value(detector: str, value: str) -> str:
    """The form in which two values of ``detector`` are "the same value".

    Identifiers (national IDs, cards, phones, IBANs): letters and digits only, upper-cased, after NFKC
    (so full-width digits and separators do not matter). E-mails and IPs: NFKC, stripped, case-folded.
    Free text (health terms, classification markings): case-folded with spaces collapsed. Secrets:
    exactly as written.
    """
    if detector.startswith("secret."):
        return value
    value = unicodedata.normalize("NFKC", value)
    if detector in ("intl.email", "intl.ip"):
        return value.strip().casefold()
    if detector in _TEXTUAL or detector.startswith("health."):
        return _SPACES.sub(" ", value).strip().casefold()
    return _NOT_ALNUM.sub("", value).upper()


def lookup_key(inner: str) -> str:
    """The key a placeholder's inner text (between the brackets) is found under: upper-cased letters
    and digits, so case, spaces, underscores and hyphens the model changed do not matter. ENC tokens
    are keyed by their ciphertext (case-sensitive) alone."""
    m = _ENC_KEY.match(inner)
    if m is not None:
        return "ENC:" + m.group(1)
    return _NOT_ALNUM.sub("", inner).upper()


class PlaceholderMap:
    """Placeholders and ENC tokens of one request, and the original values they stand for."""

    __slots__ = ("_by_value", "_values", "_counters", "_taken", "_phs", "_enc", "_ph_max", "_enc_max",
                 "max_len")

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._taken: set[str] = set()
        self._phs: list[str] = []
        """Sorted placeholder keys (``CPF1``), to judge a partial placeholder."""
        self._enc: list[str] = []
        """Sorted ciphertexts of this request's ENC tokens, to judge a partial token."""
        self._ph_max = self._enc_max = 0
        self.max_len = 0
        """Length of the longest placeholder or token handed out, brackets included."""

    def __len__(self) -> int:
        return len(self._values)

    def reserve(self, text: str) -> None:
        """Never hand out a placeholder that already appears in the caller's own text: an echo of it
        in the answer must stay as the caller wrote it, not turn into someone's value."""
        if "[" in text:
            for m in _EXISTING.finditer(text):
                self._taken.add(lookup_key(m.group(1)))

    def placeholder(self, detector: str, value: str) -> str:
        """``[LABEL_N]`` for ``value`` found by ``detector``; the same (normalized) value gets the same one."""
        label = label_for(detector)
        k = (label, normalize_value(detector, value))
        ph = self._by_value.get(k)
        if ph is None:
            n = self._counters.get(label, 0)
            while True:
                n += 1
                key = f"{label}{n}".replace("_", "")
                if key not in self._taken and key not in self._values:
                    break
            self._counters[label] = n
            ph = f"[{label}_{n}]"
            self._by_value[k] = ph
            self._add(key, ph, value)
        return ph

    def record(self, token: str, value: str) -> None:
        """Remember an ENC token produced in this request so the answer can show ``value`` again."""
        key = lookup_key(token[1:-1])
        if key not in self._values:
            self._add(key, token, value)

    def _add(self, key: str, token: str, value: str) -> None:
        self._values[key] = value
        if key.startswith("ENC:"):
            keys, k = self._enc, key[4:]
            self._enc_max = max(self._enc_max, len(token))
        else:
            keys, k = self._phs, key
            self._ph_max = max(self._ph_max, len(token))
        i = bisect_left(keys, k)
        if i == len(keys) or keys[i] != k:
            keys.insert(i, k)
        self.max_len = max(self._ph_max, self._enc_max)

    def original(self, inner: str) -> str | None:
        """The value behind a placeholder or ENC token, given the text between its brackets (tolerant
        of case and spacing drift); None when this request did not produce it."""
        return self._values.get(lookup_key(inner))

    def could_start(self, inner: str, slack: int = 8) -> bool:
        """True when ``inner`` (the text after a ``[``, possibly incomplete) could still grow into a
        placeholder or ENC token of this request, allowing ``slack`` extra characters of spacing drift."""
        n = len(inner) + 1
        return (n < self._ph_max + slack and _has_prefix(self._phs, _NOT_ALNUM.sub("", inner).upper())) or (
            n < self._enc_max + slack and self._could_start_enc(inner.lstrip()))

    def _could_start_enc(self, s: str) -> bool:
        if len(s) <= 3:
            return "ENC".startswith(s.upper())
        if s[:3].upper() != "ENC":
            return False
        rest = s[3:].lstrip()
        if not rest:
            return True
        if rest[0] != ":":
            return False
        kid, sep, b64 = rest[1:].partition(":")
        if not _KID_SO_FAR.match(kid):
            return False
        if not sep:
            return True
        b64 = b64.lstrip()
        if b64 != b64.rstrip():  # trailing spaces: only the closing bracket may follow
            return b64.rstrip() in self._enc
        return _has_prefix(self._enc, b64)


def _has_prefix(keys: list[str], p: str) -> bool:
    i = bisect_left(keys, p)
    return i < len(keys) and keys[i].startswith(p)
