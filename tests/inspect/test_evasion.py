"""Evasion forms are seen through (≥ 99 % recall on generated values) and look-alikes with a failing
check digit are not reported (≤ 1 %), on both implementations."""

from __future__ import annotations

import random
import zlib

import pytest

import generators as G

CHECKED = sorted(G.VALID)


@pytest.mark.parametrize("form", [None, *G.EVASIONS])
def test_recall_per_evasion_form(scan_impl, form):
    # 22 check-digit detectors x 15 values each, disguised by one form
    rates = {d: G.recall(scan_impl, d, form, 15, seed=zlib.crc32(form.encode()) if form else 3) for d in CHECKED}
    overall = sum(rates.values()) / len(rates)
    assert overall >= 0.99, {d: r for d, r in rates.items() if r < 1}


@pytest.mark.parametrize("detector", CHECKED)
def test_recall_per_detector(scan_impl, detector):
    assert G.recall(scan_impl, detector, None, 40, seed=11) >= 0.975


@pytest.mark.parametrize("detector", CHECKED)
def test_look_alikes_with_failing_check_are_not_reported(scan_impl, detector):
    assert G.false_positive_rate(scan_impl, detector, 40, seed=5) <= 0.01


def test_false_positives_overall(scan_impl):
    rates = [G.false_positive_rate(scan_impl, d, 30, seed=8) for d in CHECKED]
    assert sum(rates) / len(rates) <= 0.01


def test_every_form_keeps_the_original_text_in_the_span(scan_impl):
    rng = random.Random(4)
    for form in G.EVASIONS:
        value = G.evade("529.982.247-25", form, rng)
        text = f"CPF: {value}\n"
        (f,) = scan_impl(text)
        assert text[f.start:f.end] == value, form


@pytest.mark.parametrize("value", [
    "５２９．９８２．２４７－２５",              # full-width digits and punctuation
    "529\u200b.982\u200c.247\u200d-25",          # zero-width characters
    "5\u00ad2\u00ad9\u00ad9\u00ad8\u00ad2\u00ad2\u00ad4\u00ad7\u00ad2\u00ad5",  # soft hyphens
    "529\u00a0982\u00a0247\u00a025",             # no-break spaces
    "529\u2009982\u202f247\u200925",             # thin and narrow no-break spaces
    "529\n982\n247\n25",                         # line breaks
    "529–982—247‑25",                            # en/em dash, non-breaking hyphen
    "\U0001d7d3\U0001d7d0\U0001d7d7.982.247-25",  # mathematical digits
    "529.982.247-25\ufeff",                      # BOM after (outside the span)
])
def test_cpf_in_disguise(scan_impl, value):
    text = f"cpf {value}"
    fs = scan_impl(text)
    assert [f.detector for f in fs] == ["br.cpf"]
    assert text[fs[0].start:fs[0].end] == value.rstrip("\ufeff")


def test_homoglyphs_only_inside_digit_runs(scan_impl):
    assert [f.detector for f in scan_impl("CPF 529.982.247-2S")] == []
    text = "CPF 529.982.247-25 e CNPJ l1.222.333/OOO1-8l"
    assert [(f.detector, text[f.start:f.end]) for f in scan_impl(text)] == [
        ("br.cpf", "529.982.247-25"), ("br.cnpj", "l1.222.333/OOO1-8l")]


def test_native_digits_are_not_folded(scan_impl):
    # NFKC keeps Arabic-Indic digits; so does the inspector (int() would read them)
    arabic = "".join(chr(0x0660 + int(c)) for c in "52998224725")
    assert scan_impl(f"CPF {arabic}") == []


def test_a_run_of_letters_alone_is_not_read_as_digits(scan_impl):
    # "OOOl" has no digit: it stays letters, so this CNPJ is not there
    assert scan_impl("CNPJ 11.222.333/OOOl-81") == []


# Zero-width characters beyond the usual four: every Default_Ignorable_Code_Point of Unicode
# (bidi embeddings and isolates, the Arabic letter mark, invisible operators, the Mongolian vowel
# separator, the grapheme joiner, variation selectors, Hangul fillers, tag characters) renders as
# nothing, so a value with them between its digits reads as the plain value.
@pytest.mark.parametrize("invisible", [
    "\u202a", "\u202e", "\u2066", "\u2069", "\u061c", "\u2062", "\u2064", "\u180e", "\u034f",
    "\ufe0f", "\u3164", "\u115f", "\uffa0", "\U000e0020", "\U000e0101", "\U0001d173",
])
def test_other_zero_width_characters_between_digits(scan_impl, invisible):
    value = invisible.join("529.982.247-25")
    text = f"CPF {value} fim"
    fs = scan_impl(text)
    assert [f.detector for f in fs] == ["br.cpf"], repr(invisible)
    assert text[fs[0].start:fs[0].end] == value.rstrip(invisible)


@pytest.mark.parametrize("mark", ["\u0332", "\u0336", "\u0301", "\u20e3", "\u20dd"])
def test_combining_marks_on_digits(scan_impl, mark):
    # underlined, struck-through, accented, keycap (5️⃣ is 5 + U+FE0F + U+20E3) and circled digits
    value = "".join(c + mark if c.isdigit() else c for c in "529.982.247-25")
    text = f"CPF {value} fim"
    fs = scan_impl(text)
    assert [f.detector for f in fs] == ["br.cpf"], repr(mark)
    assert text[fs[0].start:fs[0].end] == value[:-1]  # the last digit's mark stays outside


@pytest.mark.parametrize("word", ["Ce\u0301dula", "CE\u0301DULA", "ce\u0301dula de identidad"])
def test_context_words_in_decomposed_form(scan_impl, word):
    # NFD text (macOS, some keyboards) writes é as e + U+0301: still the word "cedula"
    assert [f.detector for f in scan_impl(f"{word} 1234567")] == ["co.cc"]


def test_health_terms_and_markings_in_decomposed_form(scan_impl):
    text = "diagno\u0301stico: diabe\u0301tico; SECRE\u0301TO"
    assert [f.detector for f in scan_impl(text)] == ["health.term", "gov.marking"]


# REFERENCE.md lists base64-, hex- and URL-encoded values among the evasion forms: the run is
# decoded and the finding spans the whole encoded run, with the text before it as context.
@pytest.mark.parametrize("encoded", [
    "NTI5Ljk4Mi4yNDctMjU=",               # base64 of the printed CPF
    "NTI5OTgyMjQ3MjU=",                   # base64 of the compact CPF
    "3532392e3938322e3234372d3235",       # hex of the printed CPF
    "529%2E982%2E247%2D25",               # URL-encoded separators
    "%35%32%39%2E%39%38%32%2E%32%34%37%2D%32%35",  # URL-encoded throughout
])
def test_encoded_values(scan_impl, encoded):
    text = f"CPF {encoded} fim"
    fs = scan_impl(text)
    assert [f.detector for f in fs] == ["br.cpf"]
    assert text[fs[0].start:fs[0].end] == encoded


@pytest.mark.parametrize("text, value", [
    ("mail ana%40example.gov.br ok", "ana%40example.gov.br"),                     # URL-encoded @
    ("GET /users/NTI5OTgyMjQ3MjU= cpf", "NTI5OTgyMjQ3MjU="),                       # end of a path
    ("cpf=NTI5OTgyMjQ3MjU", "NTI5OTgyMjQ3MjU"),                                    # padding dropped
    ("CPF 3532393938323234373235 fim", "3532393938323234373235"),                  # hex of digits only
    ("CPF 3532392E3938322E3234372D3235 fim", "3532392E3938322E3234372D3235"),      # upper-case hex
    ("q=cpf+529%2E982%2E247%2D25&x=1", "529%2E982%2E247%2D25"),                    # in a query string
    ("CPF：\u200bNTI5OTgyMjQ3MjU= fim", "NTI5OTgyMjQ3MjU="),                        # 2-byte text
    ("CPF 😀 %35%32%39%39%38%32%32%34%37%32%35", "%35%32%39%39%38%32%32%34%37%32%35"),  # 4-byte text
])
def test_more_encoded_values(scan_impl, text, value):
    fs = scan_impl(text)
    assert [text[f.start:f.end] for f in fs] == [value]


def test_encoded_values_keep_check_digits(scan_impl):
    # a CPF with a wrong check digit stays unreported once decoded, in every encoding
    import base64
    for enc in (base64.b64encode(b"529.982.247-26").decode(), b"529.982.247-26".hex(),
                "529%2E982%2E247%2D26"):
        assert scan_impl(f"CPF {enc} fim") == [], enc


@pytest.mark.parametrize("text", [
    "id 123e4567-e89b-12d3-a456-426614174000 ok",                                   # UUID
    "request 9f8b7c6d-1a2b-4c3d-8e9f-0a1b2c3d4e5f failed",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ok",     # SHA-256 hex
    "sha256 " + "ab" * 32,
    "50% de 200 e 12%a mais",                                                       # plain percent signs
    "GET https://example.org/busca?q=ola%20mundo&page=2 HTTP/1.1",                  # %20, no value
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "token " + "Zm9vYmFyYmF6cXV4cXV1eA" + "ZWxsbw==",                                # base64 of plain words
    "CamelCaseIdentifierName and AnotherLongWord42 in code",
    "RESPONSABILIDADE INTERNACIONAL",
    "Ciberseguridad e internacionalização",
])
def test_encoded_look_alikes_are_not_reported(scan_impl, text):
    assert scan_impl(text) == []


def test_random_base64_and_hex_are_not_reported(scan_impl):
    import base64
    rng = random.Random(21)
    for _ in range(200):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(9, 120)))
        for enc in (base64.b64encode(raw).decode(), raw.hex(), "".join(f"%{b:02X}" for b in raw)):
            assert scan_impl(f"CPF {enc} fim") == [], enc


def test_encoded_values_are_bounded(scan_impl):
    # runs over the length bound are not decoded, and a text decodes a bounded number of runs
    from gateway.inspect import _scan_py
    import base64
    enc = base64.b64encode(b"529.982.247-25").decode()
    long_run = base64.b64encode(b"CPF 529.982.247-25 " * 400).decode()
    assert len(long_run) > _scan_py._ENC_MAX_LEN
    assert scan_impl(f"CPF {long_run}") == []
    many = " ".join(["CPF " + enc] * (_scan_py._ENC_MAX_RUNS + 5))
    assert len(scan_impl(many)) == _scan_py._ENC_MAX_RUNS


def test_decoded_text_is_not_decoded_again(scan_impl):
    import base64
    twice = base64.b64encode(base64.b64encode(b"529.982.247-25")).decode()
    assert scan_impl(f"CPF {twice} fim") == []
