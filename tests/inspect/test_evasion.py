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


@pytest.mark.xfail(strict=True, reason="REFERENCE.md lists base64/hex/URL-encoded values among the "
                   "evasion forms; neither implementation decodes them yet")
@pytest.mark.parametrize("encoded", [
    "NTI5Ljk4Mi4yNDctMjU=",               # base64 of the printed CPF
    "NTI5OTgyMjQ3MjU=",                   # base64 of the compact CPF
    "3532392e3938322e3234372d3235",       # hex of the printed CPF
    "529%2E982%2E247%2D25",               # URL-encoded separators
    "%35%32%39%2E%39%38%32%2E%32%34%37%2D%32%35",  # URL-encoded throughout
])
def test_encoded_values(scan_impl, encoded):
    text = f"CPF {encoded} fim"
    assert [f.detector for f in scan_impl(text)] == ["br.cpf"]
