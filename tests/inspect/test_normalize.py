"""Normalization for matching: what is folded, what is dropped, and the offset map back."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings, strategies as st

from gateway.inspect.normalize import FOLD, fold_word, normalize, normalize_both


def test_fullwidth_digits_and_punctuation_fold_to_ascii():
    norm, off = normalize("ＣＰＦ：５２９．９８２")
    assert norm == "CPF:529.982"
    assert off == list(range(11)) + [11]


def test_invisible_characters_are_dropped_and_offsets_skip_them():
    text = "5\u200b2\u00ad9\ufeff"
    norm, off = normalize(text)
    assert norm == "529"
    assert off == [0, 2, 4, 6]


def test_spaces_and_dashes():
    norm, _ = normalize("a\u00a0b\u2009c\u202fd\u3000e\u2013f\u2014g\u2212h\u2028i")
    assert norm == "a b c d e-f-g-h\ni"


def test_only_what_nfkc_maps_to_ascii_digits_becomes_a_digit():
    for cp, ch in FOLD.items():
        if ch.isdigit():
            assert unicodedata.normalize("NFKC", chr(cp)) == ch
    assert chr(0x0663) not in normalize("\u0663")[0].translate({}) or normalize("\u0663")[0] == "\u0663"
    assert normalize("\u0663")[0] == "\u0663"  # Arabic-Indic three stays
    assert normalize("\U0001d7d1")[0] == "3"   # MATHEMATICAL BOLD DIGIT THREE


def test_homoglyphs_inside_digit_runs_only():
    assert normalize("529.98O.247-2l")[0] == "529.980.247-21"
    assert normalize("CO2 hello1 IOI Ol")[0] == "CO2 hello1 IOI Ol"
    norm, plain, _ = normalize_both("AB.1O2")
    assert (norm, plain) == ("AB.102", "AB.1O2")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=100))
def test_offset_map_is_increasing_and_points_at_the_source(text):
    norm, off = normalize(text)
    assert len(off) == len(norm) + 1 and off[-1] == len(text)
    assert all(a < b for a, b in zip(off, off[1:]))
    for i, c in enumerate(norm):
        src = text[off[i]]
        assert c == src or FOLD.get(ord(src)) == c or (src in "OlI" and c in "01")


def test_fold_word():
    assert fold_word("Cédula") == "cedula"
    assert fold_word("CLASSIFICAÇÃO") == "classificacao"
    assert fold_word("Très") == "tres"
