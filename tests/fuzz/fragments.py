"""Texts assembled from the pieces inspection reacts to, for differential fuzzing of the compiled core.

``text(rng)`` builds one text from a ``random.Random``: valid identifiers of every window detector
(``tests/inspect/generators.py``) and of the dedicated rules (e-mails, phones, IPs, API keys, JWTs,
private-key blocks, passwords, markings, health terms, ICD-10 codes), nearly valid ones, context words
of all four languages (as written: accents, capitals), then disguised with REFERENCE.md's evasion forms
and more (separators, full-width, mathematical, circled and native digits, zero-width, bidi and tag
characters, combining marks, homoglyphs, line breaks, base64/hex/URL encoding, lone surrogates, long
runs), joined by separators or glued, cut at either end. ``check(scan_ref, scan_core, text)`` compares
the two implementations field by field and checks the invariants of a finding list.

Used by ``test_fragments.py`` (bounded, on every test run) and ``fuzz_fragments.py`` (long runs).
"""

from __future__ import annotations

import base64
import random
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
import generators as G  # noqa: E402

from gateway.inspect import keywords as K  # noqa: E402
from gateway.inspect.detectors import SECRET_PATTERNS  # noqa: E402
from gateway.inspect.normalize import INVISIBLE  # noqa: E402

_B64ISH = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# ----------------------------------------------------------------------------- pieces


def _unfold(rng: random.Random, phrase: str) -> str:
    """A folded keyword phrase as someone writes it: accents back (composed or apart), capitals,
    other gaps between its words."""
    accents = {"a": "áãâà", "e": "éê", "i": "í", "o": "óõô", "u": "úü", "c": "ç", "n": "ñ"}
    out = []
    for c in phrase:
        if c == " ":
            out.append(rng.choice((" ", " ", "  ", ".", "-", ". ", "\t", "’", "/", "\u00a0", "\n", "_")))
            continue
        if c in accents and rng.random() < .15:
            a = rng.choice(accents[c])
            c = unicodedata.normalize("NFD", a) if rng.random() < .3 else a
        out.append(c)
    s = "".join(out)
    r = rng.random()
    return s.upper() if r < .3 else s.title() if r < .5 else s


def _words() -> list[str]:
    out = [p for ps in K.CONTEXT.values() for p in ps]
    out += list(K.MARKINGS) + list(K.MARKING_LABELS) + list(K.HEALTH_TERMS) + list(K.ICD10_CONTEXT)
    return sorted(set(out))


WORDS = _words()
PASSWORD_KEYS = list(K.PASSWORD_KEYS)


def _secret(rng: random.Random) -> str:
    prefix, body, lo, hi = rng.choice(SECRET_PATTERNS)
    chars = []
    for part in body.replace("A-Z", "\x01").replace("a-z", "\x02").replace("0-9", "\x03"):
        chars += {"\x01": G.UPPER, "\x02": G.UPPER.lower(), "\x03": G.DIG}.get(part, part)
    n = rng.choice((lo - 1, lo, lo, (hi or lo + 30), (hi or lo + 30) + 1, lo + rng.randrange(5)))
    return prefix + "".join(rng.choice(chars) for _ in range(max(0, n)))


def _jwt(rng: random.Random) -> str:
    def seg(n):
        return "".join(rng.choice(_B64ISH + "_-") for _ in range(n))
    return ("eyJ" + seg(rng.choice((6, 7, 20))) + "." + "eyJ" + seg(rng.choice((1, 2, 12))) + "."
            + seg(rng.randrange(0, 30)))


def _private_key(rng: random.Random) -> str:
    kind = rng.choice(("", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "X" * 41 + " "))
    body = "\n".join(base64.b64encode(rng.randbytes(rng.randrange(1, 60))).decode() for _ in range(rng.randrange(0, 4)))
    begin = f"-----BEGIN {kind}PRIVATE KEY-----"
    end = f"-----END {kind}PRIVATE KEY-----"
    r = rng.random()
    if r < .2:
        return begin + "\n" + body  # no END: the rest of the text is the key
    if r < .3:
        return begin[:-rng.randrange(1, 6)]
    return begin + "\n" + body + "\n" + end


def _password(rng: random.Random) -> str:
    if rng.random() < .3:
        user = rng.choice(("user", "a", "u.s-er", "x@y"))
        pw = rng.choice(("p4ss", "pw", "s3cr#t", "a:b", "hunter2", "x" * 10))
        scheme, host = rng.choice(("postgres", "https", "a+b", "x", "1x")), rng.choice(("db", "h:5432", ""))
        return f"{scheme}://{user}:{pw}@{host}/x"
    key = rng.choice(PASSWORD_KEYS)
    key = key.upper() if rng.random() < .3 else key
    q = rng.choice(("", "", "\"", "'"))
    sep = rng.choice(("=", ":", " = ", ": ", "\t:", "=\"", ":'", "="))
    val = rng.choice(("hunter2", "abc", "abcd", "secreto", "s3cr3t!", "x y z", "\"a b c d\"", "'q'", "",
                      "p@ss;w", "1234", "ünïcode", "pass<tag>"))
    return key + q + sep + val


def _email(rng: random.Random) -> str:
    local = rng.choice(("ana.souza", "j_doe+tag", ".x", "a", "ü.ñ", "a" * 64, "a" * 65, "x%y", "-a-"))
    dom = rng.choice(("example.gov.br", "mail.com", "x.y", "a.b1", "ex-ample.org.", "b.co-", "d" * 250 + ".com",
                      "éxample.com", "x..com", "host"))
    return local + "@" + dom


def _phone(rng: random.Random) -> str:
    return rng.choice(("+55 11 91234-5678", "(11) 91234-5678", "+1 (415) 555-0100", "415 555 0100",
                       "(+57) 320 715 60 67", "0800 479 0167", "01 23 45 67 89", "+0 11 2345 6789",
                       "555-0100x1736", "+44 20 7946 0958", "+" + G._r(rng, rng.randrange(6, 17)),
                       "(" + G._r(rng, 2) + ") " + G._r(rng, 4) + "-" + G._r(rng, 4), "a+" + G._r(rng, 10)))


def _ip(rng: random.Random) -> str:
    r = rng.random()
    if r < .5:
        return ".".join(str(rng.choice((0, 1, 10, 127, 192, 255, 256, 999, rng.randrange(256)))) for _ in range(4))
    return rng.choice(("2001:db8::1", "fe80::1", "::1", "::", "2001:0db8:85a3::8a2e:0370:7334", "1::2::3",
                       "::ffff:1.2.3.4", "10:30:00", "a:b:c", "fe80::1%eth0", ":" * 3, "1:2:3:4:5:6:7:8",
                       "1:2:3:4:5:6:7:8:9", "..::1..", "0" * 46 + "::1"))


def _icd(rng: random.Random) -> str:
    return rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + G._r(rng, 2) + rng.choice(
        ("", "", "." + G._r(rng, rng.randrange(1, 6), G.DIG + G.UPPER), ".", "a"))


def _valid(rng: random.Random) -> str:
    det = rng.choice(sorted(G.VALID))
    gen, word = G.VALID[det]
    v = gen(rng)
    r = rng.random()
    if r < .15:
        v = G.corrupt(v, rng)
    elif r < .2:  # a digit dropped or doubled
        i = rng.randrange(len(v))
        v = v[:i] + v[i + 1:] if rng.random() < .5 else v[:i] + v[i] + v[i:]
    if word and rng.random() < .6:
        v = _unfold(rng, word.lower()) + rng.choice((" ", ": ", " nº ", "\n", "")) + v
    return v


def _encoded(rng: random.Random, s: str) -> str:
    s = s.encode("utf-8", "replace").decode()  # (a lone surrogate has no UTF-8)
    r = rng.random()
    if r < .4:
        e = base64.b64encode(s.encode()).decode()
        return e.rstrip("=") if rng.random() < .3 else e
    if r < .7:
        h = s.encode().hex()
        return h.upper() if rng.random() < .5 else h
    return "".join(f"%{b:02X}" if rng.random() < .6 else chr(b) if b < 128 else f"%{b:02x}" for b in s.encode())


PIECES = (_valid, _valid, _valid, _email, _phone, _ip, _secret, _jwt, _private_key, _password, _icd,
          lambda r: _unfold(r, r.choice(WORDS)), lambda r: _unfold(r, r.choice(WORDS)),
          lambda r: G._r(r, r.randrange(1, 30)), lambda r: G._r(r, r.randrange(1, 20), G.DIG + G.UPPER + ".-/ "),
          lambda r: G._r(r, r.randrange(12, 40), _B64ISH), lambda r: G._r(r, r.randrange(1, 12), "0123456789OlI"))

# ----------------------------------------------------------------------------- disguises

SEPARATORS = (" ", " ", ".", "-", "/", "\n", "\r\n", "\t", "\u00a0", "\u2009", "\u202f", "\u3000", "\u2028",
              "\u0085", "\u2010", "\u2013", "\u2212", "\uff0e", "\uff0d", ". ", " - ", "--", ":", ",", "_", "(",
              ")", "=", "@", "+", "%", "'", "\"", "\u2019")
INVIS = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\u061c", "\u180e",
         "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
         "\u200e", "\u200f", "\ufe0f", "\U000e0041", "\U000e0100", "\u3164", "\u115f")
MARKS = ("\u0301", "\u0303", "\u0327", "\u20e3", "\u0332", "\u0336", "\u20dd", "\u0488", "\U0001e944")
DIGIT_FORMS = tuple(
    [lambda d, b=b: chr(b + d) for b in (0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x0660, 0x06F0,
                                         0x0966, 0x09E6, 0x0E50, 0xFF10)]
    + [lambda d: "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"[d],
       lambda d: "\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089"[d],
       lambda d: ("\u24ea" if d == 0 else chr(0x2460 + d - 1)),
       lambda d: ("\U0001f100" if d == 0 else chr(0x2488 + d - 1))])  # "1." style: folds to more than one
HOMOGLYPHS = {"0": "OoΟОᴑ〇", "1": "lI|ǀΙІӀ", "5": "S", "8": "B", "2": "Z", "a": "аα", "e": "е", "o": "оο",
              "c": "с", "p": "р", "x": "х", "A": "АΑ", "B": "ВΒ", "E": "ЕΕ", "O": "ОΟ"}
ODD = ("\ud800", "\udfff", "\ud83d", "\U0001f600", "\u0100", "é", "ñ", "Ñ", "ß", "İ", "ı", "ﬁ", "Å", "\u00aa",
       "\u00ba", "\u2160", "\u216b", "\uff21", "\U0001d400", "\u00bd", "\x00", "\x7f", "\u0130", "ǅ", "\uffff",
       "\U0010ffff", "\u1e9e", "K", "Ω")


def disguise(rng: random.Random, s: str) -> str:
    """``s`` with evasion forms applied at random character positions."""
    if not s:
        return s
    p = rng.random() * .35
    out = []
    for c in s:
        r = rng.random()
        if r < p:
            k = rng.randrange(6)
            if k == 0 and c in G.DIG:
                c = rng.choice(DIGIT_FORMS)(int(c))
            elif k == 1 and c in HOMOGLYPHS:
                c = rng.choice(HOMOGLYPHS[c])
            elif k == 2 and c in ".-/ ":
                c = rng.choice(SEPARATORS)
            elif k == 3 and c.isascii() and c.isalpha():
                c = chr(ord(c) + 0xFEE0) if rng.random() < .5 else c.swapcase()  # full-width letters
            elif k == 4:
                c = c + rng.choice(MARKS)
            else:
                c = c + rng.choice(INVIS)
        out.append(c)
    return "".join(out)


def piece(rng: random.Random) -> str:
    s = rng.choice(PIECES)(rng)
    r = rng.random()
    if r < .1:
        s = _encoded(rng, s)
    elif r < .2:
        s = G.evade(s, rng.choice(G.EVASIONS), rng) if any(c in G.DIG for c in s) else s
    elif r < .45:
        s = disguise(rng, s)
    return s


def text(rng: random.Random) -> str:
    """One text: pieces joined by separators (or glued), with odd characters, long runs and cuts."""
    parts = []
    for _ in range(rng.choice((1, 1, 2, 3, 4, 6, 10))):
        parts.append(piece(rng))
        r = rng.random()
        if r < .5:
            parts.append(rng.choice(SEPARATORS))
        elif r < .6:
            parts.append(rng.choice(INVIS))
        elif r < .7:
            parts.append(rng.choice(ODD))
        elif r < .75:
            run = rng.choice(("0", "1", "a", "A", "9", " ", "\u200b", "x", "=", "%", "ñ"))
            parts.append(run * rng.choice((17, 64, 200, 4097)))
        # else glued to the next piece
    if rng.random() < .2:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(ODD))
    t = "".join(parts)
    r = rng.random()
    if r < .1 and len(t) > 2:  # cut at either end
        t = t[rng.randrange(len(t)):] if rng.random() < .5 else t[:rng.randrange(1, len(t))]
    elif r < .15:
        t = _encoded(rng, t) if len(t) < 300 else t
    return t


# ----------------------------------------------------------------------------- the check

def invariants(text: str, found: list) -> None:
    """What any finding list must satisfy: sorted, disjoint, within the text, not starting or ending
    on a character normalization drops."""
    last = 0
    for f in found:
        assert 0 <= f.start < f.end <= len(text), (text, f)
        assert f.start >= last, (text, found)
        assert text[f.start] not in INVISIBLE and text[f.end - 1] not in INVISIBLE, (text, f)
        last = f.end


def check(ref, core, text: str) -> None:
    """Both implementations give the same findings (every field) for ``text``."""
    a = ref(text)
    b = core(text)
    assert [tuple(f) for f in a] == [tuple(f) for f in b], {"text": text, "reference": a, "compiled": b}
    invariants(text, a)


def minimize(fails, text: str) -> str:
    """A shorter text on which ``fails(text)`` still holds (greedy removal of chunks, then characters)."""
    n = max(1, len(text) // 2)
    while n >= 1:
        i = 0
        while i < len(text):
            t = text[:i] + text[i + n:]
            if t and fails(t):
                text = t
            else:
                i += n
        n //= 2
    return text
