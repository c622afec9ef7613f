"""Context words that are also ordinary words (keywords.CONTEXT_UPPER) count only in capitals.

Measured on the labelled corpus of ``context_words`` (Faker sentences in es/pt/en/fr around values
valid by python-stdnum): the acronym as written for the identifier, or a long form in any case, is
still context; the same token used as an ordinary word ("pagado sin", "cc: Ana", "ci-joint",
"run the job", "nit:") is not.
"""

from __future__ import annotations

import random

import pytest

import context_words as CW
import generators as G
from gateway.inspect import _scan_py
from gateway.inspect.keywords import CONTEXT, CONTEXT_UPPER

N = 100


@pytest.mark.parametrize("group", sorted(CW.GROUPS))
def test_acronyms_and_long_forms_are_context(scan_impl, group):
    assert CW.rate(scan_impl, group, "a", N) >= 0.98


@pytest.mark.parametrize("group", sorted(CW.GROUPS))
def test_the_same_token_as_an_ordinary_word_is_not(scan_impl, group):
    assert CW.rate(scan_impl, group, "b", N) <= 0.02


@pytest.mark.parametrize("group", sorted(CW.GROUPS))
def test_no_context_no_finding(scan_impl, group):
    assert CW.rate(scan_impl, group, "c", N) <= 0.02


def test_every_upper_only_word_is_a_context_word():
    phrases = {p for ps in CONTEXT.values() for p in ps}
    assert set(CONTEXT_UPPER) <= phrases


@pytest.mark.parametrize("text,value,detector", [
    ("pagado sin 130692544", "130692544", None),
    ("pagado SIN 130692544", "130692544", "ca.sin"),
    ("NAS 130692544", "130692544", "ca.sin"),
    ("S.I.N. 130692544", "130692544", "ca.sin"),
    ("Confira nas notas 130692544", "130692544", None),
    ("cc: Ana 1234567", "1234567", None),
    ("CC 1234567", "1234567", "co.cc"),
    ("C.C. 1234567", "1234567", "co.cc"),
    ("c/c 1234567", "1234567", None),
    ("ci-joint la facture 1234567", "1234567", None),
    ("C.I. 1234567", "1234567", "py.ci"),
    ("set 80012345", "80012345", None),
    ("SET 80012345", "80012345", "py.ruc"),
    ("run 123456785", "123456785", None),
    ("RUN 123456785", "123456785", "cl.rut"),
    ("rut 123456785", "123456785", "cl.rut"),   # not an ordinary word: any case
    ("nit: 8001234565", "8001234565", None),
    ("NIT: 8001234565", "8001234565", "co.nit"),
    ("social insurance number 130692544", "130692544", "ca.sin"),
    ("Numéro d'assurance sociale : 130692544", "130692544", "ca.sin"),
])
def test_examples(scan_impl, text, value, detector):
    s = text.index(value)
    found = [f.detector for f in scan_impl(text) if (f.start, f.end) == (s, s + len(value))]
    assert found == ([detector] if detector else []), text


# the acronym in capitals disguised as REFERENCE.md's evasion forms do it (full-width letters,
# invisible characters between them), before a value in each evasion form
WORDS = {
    "ca.sin": ("SIN", "\uff33\uff29\uff2e", "S\u200bI\u200dN", "S\u00adIN", "NAS", "\uff2e\uff21\uff33", "S.I.N.",
               "S I N"),
    "co.cc": ("CC", "C.C.", "\uff23\uff23", "C\u200bC", "C.\u200bC.", "\uff23\uff0e\uff23\uff0e", "C C"),
    "cl.rut": ("RUN", "\uff32\uff35\uff2e", "R\u2060U\ufeffN"),
}


def _nine(gen):
    # 9 characters or more: the base64 of an 8-character value is 11 characters before its "=",
    # too short a run to be decoded (encoded_sites), with or without context
    def make(rng):
        while len(v := gen(rng)) < 9:
            pass
        return v
    return make


VALUES = {"ca.sin": CW._sin, "co.cc": _nine(CW._cc), "cl.rut": _nine(CW._rut)}


# (not "hex": the hex of a 9-digit value is 18 digits, which read as digits first, a CLABE)
@pytest.mark.parametrize("form", [None, "fullwidth", "zero_width", "soft_hyphen", "homoglyph", "math_digits",
                                  "spaces", "nbsp", "base64", "url"])
@pytest.mark.parametrize("detector", sorted(WORDS))
def test_evasion_forms_of_acronyms_in_capitals(scan_impl, detector, form):
    rng = random.Random(f"{detector}/{form}")
    for word in WORDS[detector]:
        for _ in range(5):
            v = VALUES[detector](rng)
            v = G.evade(v, form, rng) if form else v
            text = f"Dados: {word} {v} fim"
            s = text.index(v)
            found = {f.detector for f in scan_impl(text) if (f.start, f.end) == (s, s + len(v))}
            assert found & CW.GROUPS[detector][0], (text, scan_impl(text))
            # the same in lower case is no context
            lower = text.replace(word, word.lower())
            assert not [f for f in scan_impl(lower) if f.start == lower.index(v)], lower


def test_the_compiled_core_reads_capitals_as_the_reference():
    _scan_c = pytest.importorskip("gateway.inspect._scan_c")
    values = ("130692544", "1234567", "123456785", "80012345", "8001234565", "12.345.678")
    forms = []
    for phrase in CONTEXT_UPPER:
        dotted = ".".join(phrase.split(" ")) + "."
        for w in (phrase, dotted, phrase.replace(" ", "/")):
            forms += [w, w.upper(), w.title(), w.swapcase().title().swapcase(), w[:1].upper() + w[1:]]
        # accented, full-width, dotted-İ and invisible-character forms of the capitals
        up = phrase.upper()
        forms += [up.replace("I", "\u00cd"), up.replace("I", "\u0130"), up.replace("I", "\u0131"),
                  "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in up), "\u200b".join(up),
                  up.replace("C", "\u00c7"), up.lower().replace("c", "\u00e7")]
    prefixes = ("", "x ", "é ", "\u20ac ", "\U0001f600 ")
    seen = 0
    for w in forms:
        for gap in (" ", ": ", " nº ", "-"):
            for v in values:
                for p in prefixes:
                    text = f"{p}{w}{gap}{v} ok"
                    expected = _scan_py.scan(text)
                    assert _scan_c.scan(text) == expected, text
                    seen += bool(expected)
    assert seen > 100   # the comparison is about findings, not two empty lists
