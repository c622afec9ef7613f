"""The catalogue's data is consistent: every name it refers to exists, every word list is written the
way the scanner compares words (folded), tables have the values their sources give."""

from __future__ import annotations

import re

from gateway.inspect import keywords as K
from gateway.inspect.detectors import (
    BY_ID, CARD_IIN_RANGES, DETECTORS, IBAN_LENGTHS, LAYOUTS, MAX_CHUNKS, SECRET_PATTERNS)
from gateway.inspect.normalize import fold_word
from gateway.inspect.validators import VALIDATORS


def test_ids_unique_and_well_formed():
    ids = [d.id for d in DETECTORS]
    assert len(ids) == len(set(ids))
    for i in ids:
        assert re.fullmatch(r"([a-z]{2}|intl|secret|gov|health)\.[a-z_]+", i), i


def test_window_detectors_name_real_validators_and_shapes():
    for d in DETECTORS:
        if d.scanner == "window":
            assert d.shapes, d.id
            assert d.validator in VALIDATORS or d.id == "intl.phone", d.id
            assert d.context in ("none", "always", "compact")
        else:
            assert not d.shapes and d.validator is None
    assert MAX_CHUNKS <= 9
    for layout, dets in LAYOUTS.items():
        assert list(dets) == sorted(dets) and all(DETECTORS[i].scanner == "window" for i in dets)


def test_context_words_are_folded_phrases_of_known_detectors():
    for det, words in K.CONTEXT.items():
        assert det in BY_ID, det
        for w in words:
            assert w == " ".join(fold_word(t) for t in re.findall(r"[^\W\d_]+", w)), (det, w)
    for d in DETECTORS:
        if d.context != "none":
            assert d.keywords, f"{d.id} needs context but has no words"


def test_term_lists_are_folded():
    for table in (K.MARKINGS, K.MARKING_LABELS, K.HEALTH_TERMS, K.ICD10_CONTEXT):
        for w in table:
            assert w == " ".join(fold_word(t) for t in re.findall(r"[^\W\d_]+", w)), w
            assert len(w.split(" ")) <= 6


def test_iban_lengths_match_python_stdnum_registry():
    import os

    import stdnum

    path = os.path.join(os.path.dirname(stdnum.__file__), "iban.dat")
    expected = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r'([A-Z]{2}) .*bban="([^"]+)"', line)
        if m:
            expected[m.group(1)] = 4 + sum(int(x) for x in re.findall(r"(\d+)!", m.group(2)))
    assert IBAN_LENGTHS == expected


def test_card_ranges_and_secret_patterns_are_sane():
    for lo, hi, width, lengths in CARD_IIN_RANGES:
        assert lo <= hi < 10 ** width and all(13 <= n <= 19 for n in lengths)
    for prefix, body, lo, hi in SECRET_PATTERNS:
        re.compile("[" + body + "]")
        assert prefix and lo > 0 and (hi == 0 or hi >= lo)
