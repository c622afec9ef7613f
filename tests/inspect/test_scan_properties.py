"""Properties of `scan` on arbitrary text (hypothesis): sorted, non-overlapping findings inside the
text; offsets index the original text; findings do not depend on unrelated text around them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import generators as G

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

PIECES = ["CPF ", "529.982.247-25", "RUT 12.531.909-2", "DNI ", "26.756.539", "ana@gov.br", "@",
          "+55 11 91234-5678", "(11) 3456-7890", "4111 1111 1111 1111", "SECRETO", "diabetes",
          "sk-" + "a" * 24, "\u200b", "\u00ad", "\u00a0", "５", "O", "l", "I", "-", ".", "/", "\n", " ",
          "192.168.0.1", "::1", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x", "CID E11.9", "é", "😀"]
texty = st.one_of(st.text(max_size=200),
                  st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=30).map("".join))


def _check(text, findings):
    last_end = 0
    for f in findings:
        assert 0 <= f.start < f.end <= len(text)
        assert f.start >= last_end
        last_end = f.end
        # a span never starts or ends on an invisible character or a space
        assert not text[f.start].isspace() and not text[f.end - 1].isspace()
        assert text[f.start] not in "\u200b\u200c\u200d\u2060\ufeff\u00ad"
        assert text[f.end - 1] not in "\u200b\u200c\u200d\u2060\ufeff\u00ad"


@SETTINGS
@given(texty)
def test_findings_sorted_disjoint_inside_the_text(scan_impl, text):
    _check(text, scan_impl(text))


@SETTINGS
@given(texty, st.sampled_from(["", "~~ ", "§§§\n", "¡¡ ", "😀😀 "]), st.sampled_from(["", " ~~", "\n§§"]))
def test_unrelated_text_around_only_shifts_offsets(scan_impl, text, before, after):
    base = scan_impl(text)
    moved = scan_impl(before + text + after)
    assert [(f.detector, f.start + len(before), f.end + len(before)) for f in base] == \
        [(f.detector, f.start, f.end) for f in moved]


@SETTINGS
@given(st.sampled_from(sorted(G.VALID)), st.integers(0, 2**32 - 1), st.sampled_from(G.EVASIONS))
def test_planted_value_is_reported_at_its_original_offsets(scan_impl, detector, seed, form):
    import random
    rng = random.Random(seed)
    gen, word = G.VALID[detector]
    value = G.evade(gen(rng), form, rng)
    prefix = "😀 texto " + (word + " " if word else "")
    text = prefix + value + " fim"
    hits = [f for f in scan_impl(text) if (f.start, f.end) == (len(prefix), len(prefix) + len(value))]
    # recall is measured elsewhere; here: when reported, the span is exactly the planted text
    for f in hits:
        assert text[f.start:f.end] == value


def test_empty_and_whitespace(scan_impl):
    assert scan_impl("") == []
    assert scan_impl(" \n\t\u200b") == []


def test_long_runs_are_handled(scan_impl):
    text = "1" * 5000 + " CPF 529.982.247-25 " + "9" * 5000
    assert [f.detector for f in scan_impl(text)] == ["br.cpf"]


@pytest.mark.parametrize("text", [
    "a" * 20000 + "@" * 2000,                  # one long local run, many '@'
    "x" * 20000 + " ://",                       # a long scheme-like run and a '://'
    "-----BEGIN " + "A " * 5000 + "\n" + "-----BEGIN " * 500,
    "1:" * 10000,                               # a long IPv6-like run
    "CPF " * 5000 + "5" * 9,                    # many context words
    "%41" * 20000,                              # one long URL-encoded run
    "%41 " * 20000,                             # many URL-encoded sites
    "Ab1/" * 20000 + "=",                       # one long base64 run of many sites
    "NTI5OTgyMjQ3MjU= " * 5000,                 # many base64 sites (32 decoded)
])
def test_pathological_inputs_stay_linear(scan_impl, text):
    # no timing assertion: a quadratic scan of these would not finish within the test run
    _check(text, scan_impl(text))


@pytest.mark.parametrize("text", [
    "password=" * 100_000,                      # found by timing hostile inputs: keys inside one value,
    "password:" * 100_000,                      # each measured to its end, took minutes for 1 MB
    "pwd:" + "a" * 400_000 + "secret:x" * 50_000,
])
def test_password_keys_inside_one_value_stay_linear(scan_impl, text):
    import time
    t0 = time.process_time()
    found = scan_impl(text)
    # linear: well under a second here; the quadratic scan took over five minutes (CPU time, so
    # that other work on the machine does not count)
    assert time.process_time() - t0 < 30
    assert [f.detector for f in found] == ["secret.password"]
    _check(text, found)
