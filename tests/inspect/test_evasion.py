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
