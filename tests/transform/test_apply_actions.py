"""Applying actions to segment texts: what leaves the gateway."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.inspect.findings import Finding
from gateway.keys import KeyRing
from gateway.transform.apply import TransformError, apply
from gateway.transform.pseudonymize import PlaceholderMap
from gateway.transform.restore import restore_text
from gateway.transform.tokens import decrypt_token

RING = KeyRing.ephemeral()


def finding(text: str, value: str, detector: str = "br.cpf", nth: int = 0) -> Finding:
    start = -1
    for _ in range(nth + 1):
        start = text.index(value, start + 1)
    category = {"br.cpf": "national_id", "intl.email": "contact", "secret.api_key": "credentials"}.get(detector, "x")
    return Finding(detector, category, "BR" if detector.startswith("br.") else None, start, start + len(value))


TEXT = "Cliente 123.456.789-09 (ana@example.com) e também 12345678909; chave sk-live-0123456789abcdef."


def _found():
    return [finding(TEXT, "123.456.789-09"), finding(TEXT, "ana@example.com", "intl.email"),
            finding(TEXT, "12345678909"), finding(TEXT, "sk-live-0123456789abcdef", "secret.api_key")]


def test_each_action():
    pm = PlaceholderMap()
    out = apply([TEXT], [_found()], [["pseudonymize", "encrypt", "pseudonymize", "redact"]], RING, "BR", pm)[0]
    assert re.fullmatch(r"Cliente \[CPF_1\] \(\[ENC:BR\.k1:[A-Za-z0-9_-]+\]\) e também \[CPF_1\]; "
                        r"chave \[REDACTED:API_KEY\]\.", out), out
    enc = re.search(r"\[ENC:[^\]]+\]", out).group(0)
    assert decrypt_token(RING, enc) == "ana@example.com"
    assert restore_text(out, pm) == TEXT.replace("12345678909", "123.456.789-09").replace(
        "sk-live-0123456789abcdef", "[REDACTED:API_KEY]")


def test_allow_leaves_text_and_hash_is_stable_across_spellings():
    out = apply([TEXT], [_found()], [["hash", "allow", "hash", "allow"]], RING, "BR", PlaceholderMap())[0]
    hashes = re.findall(r"\[HASH:CPF:[0-9a-f]{12}\]", out)
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    assert "ana@example.com" in out and "sk-live-0123456789abcdef" in out


def test_encrypt_uses_normalized_value_so_spellings_share_a_token():
    pm = PlaceholderMap()
    out = apply([TEXT], [_found()], [["encrypt", "allow", "encrypt", "allow"]], RING, "BR", pm)[0]
    tokens = re.findall(r"\[ENC:[^\]]+\]", out)
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert decrypt_token(RING, tokens[0]) == "12345678909"
    assert restore_text(tokens[0], pm) == "123.456.789-09"  # this request's answer: the caller's spelling


def test_segments_share_one_map():
    texts = ["a 123.456.789-09", "no findings", "b 12345678909 c 111.444.777-35"]
    found = [[finding(texts[0], "123.456.789-09")], [],
             [finding(texts[2], "12345678909"), finding(texts[2], "111.444.777-35")]]
    pm = PlaceholderMap()
    out = apply(texts, found, [["pseudonymize"], [], ["pseudonymize", "pseudonymize"]], RING, "BR", pm)
    assert out == ["a [CPF_1]", "no findings", "b [CPF_1] c [CPF_2]"]


def test_unsorted_findings_are_applied_in_text_order():
    found = _found()[::-1]
    out = apply([TEXT], [found], [["redact"] * 4], RING, "BR", PlaceholderMap())[0]
    assert out.count("[REDACTED:") == 4 and "123" not in out


@pytest.mark.parametrize("acts", [["block", "allow", "allow", "allow"], ["shout", "allow", "allow", "allow"]])
def test_block_and_unknown_actions_raise(acts):
    with pytest.raises(TransformError) as e:
        apply([TEXT], [_found()], [acts], RING, "BR", PlaceholderMap())
    assert "123" not in str(e.value)


def test_findings_that_do_not_fit_raise_without_the_value():
    bad = [[Finding("br.cpf", "national_id", "BR", 8, 22), Finding("br.cpf", "national_id", "BR", 10, 30)],
           [Finding("br.cpf", "national_id", "BR", 80, 200)],
           [Finding("intl.uninspectable", "uninspectable", None, 0, 0)]]
    for found in bad:
        with pytest.raises(TransformError) as e:
            apply([TEXT], [found], [["redact"] * len(found)], RING, "BR", PlaceholderMap())
        assert "123" not in str(e.value)
    with pytest.raises(TransformError):
        apply([TEXT], [_found()], [["redact"]], RING, "BR", PlaceholderMap())  # one action short


def test_zero_length_allowed_finding_is_fine():
    f = Finding("intl.uninspectable", "uninspectable", None, 0, 0)
    assert apply(["x"], [[f]], [["allow"]], RING, "BR", PlaceholderMap()) == ["x"]


# --- property: nothing a non-allow action covers survives -------------------------------------------

FILLER = st.text(alphabet="abcdefgh ,\n", min_size=1, max_size=12)  # never part of a value
VALUE = st.text(alphabet="0123456789.-", min_size=8, max_size=18).filter(lambda v: sum(c.isdigit() for c in v) >= 8)
ACTION = st.sampled_from(["allow", "encrypt", "pseudonymize", "hash", "redact"])
DETECTOR = st.sampled_from(["br.cpf", "br.cnpj", "intl.phone", "us.ssn"])


@st.composite
def segments(draw):
    texts, found, acts = [], [], []
    for _ in range(draw(st.integers(1, 3))):
        parts, fs, acs, pos = [], [], [], 0
        for _ in range(draw(st.integers(0, 5))):
            pre, value = draw(FILLER), draw(VALUE)
            parts += [pre, value]
            pos += len(pre)
            fs.append(Finding(draw(DETECTOR), "national_id", "BR", pos, pos + len(value)))
            acs.append(draw(ACTION))
            pos += len(value)
        parts.append(draw(FILLER))
        texts.append("".join(parts))
        found.append(fs)
        acts.append(acs)
    return texts, found, acts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments())
def test_no_protected_value_survives_apply(seg):
    texts, found, acts = seg
    out = apply(texts, found, acts, RING, "BR", PlaceholderMap())
    allowed = {t[f.start:f.end] for t, fs, acs in zip(texts, found, acts) for f, a in zip(fs, acs) if a == "allow"}
    joined = "\x00".join(out)
    for t, fs, acs in zip(texts, found, acts):
        for f, a in zip(fs, acs):
            value = t[f.start:f.end]
            if a != "allow" and not any(value in v for v in allowed):
                assert value not in joined
    # and the allowed ones are still there, in order
    for t, o, fs, acs in zip(texts, out, found, acts):
        kept = [t[f.start:f.end] for f, a in zip(fs, acs) if a == "allow"]
        pos = 0
        for v in kept:
            pos = o.index(v, pos) + len(v)
