"""The per-request placeholder map and value normalization."""

from __future__ import annotations

import pytest

from gateway.transform.pseudonymize import PlaceholderMap, normalize_value


def test_same_value_same_placeholder_different_values_different():
    pm = PlaceholderMap()
    a = pm.placeholder("br.cpf", "123.456.789-09")
    assert a == "[CPF_1]"
    assert pm.placeholder("br.cpf", "12345678909") == a           # same digits, other spelling
    assert pm.placeholder("br.cpf", "123 456 789 09") == a
    assert pm.placeholder("br.cpf", "１２３.４５６.７８９-０９") == a   # full-width digits
    assert pm.placeholder("br.cpf", "111.444.777-35") == "[CPF_2]"
    assert pm.placeholder("intl.email", "Ana@Example.com") == "[EMAIL_1]"
    assert pm.placeholder("intl.email", "ana@example.COM") == "[EMAIL_1]"
    assert pm.placeholder("intl.email", "bob@example.com") == "[EMAIL_2]"
    assert pm.placeholder("secret.api_key", "sk-AbC") == "[API_KEY_1]"
    assert pm.placeholder("secret.api_key", "sk-abc") == "[API_KEY_2]"  # secrets compare exactly
    assert len(pm) == 6


def test_original_is_the_first_spelling_and_lookup_tolerates_drift():
    pm = PlaceholderMap()
    pm.placeholder("br.cpf", "123.456.789-09")
    pm.placeholder("br.cpf", "12345678909")
    pm.placeholder("secret.api_key", "sk-1")
    for inner in ("CPF_1", "cpf_1", " CPF_1 ", "CPF 1", "Cpf-1", "CPF1", "c p f _ 1"):
        assert pm.original(inner) == "123.456.789-09", inner
    assert pm.original("api key 1") == "sk-1"
    assert pm.original("CPF_2") is None
    assert pm.original("CPF_11") is None


def test_placeholders_present_in_the_callers_text_are_never_handed_out():
    pm = PlaceholderMap()
    pm.reserve("compare with [CPF_1] and [ cpf 2 ] from last week")
    assert pm.placeholder("br.cpf", "123.456.789-09") == "[CPF_3]"
    assert pm.original("CPF_1") is None


def test_could_start_judges_partial_placeholders():
    pm = PlaceholderMap()
    pm.placeholder("br.cpf", "123.456.789-09")
    pm.placeholder("intl.email", "a@b.co")
    pm.record("[ENC:BR.k1:AbCdEfGhIjKlMnOpQrStUv]", "x")
    for partial in ("", " ", "C", "cp", "CPF", "CPF_", "CPF ", "e", "EMAIL_1", "E", "EN", "ENC", "ENC:",
                    "ENC:BR", "ENC:BR.k1", "ENC:BR.k1:", "ENC:BR.k1:AbCd", "ENC:BR.k1:AbCdEfGhIjKlMnOpQrStUv "):
        assert pm.could_start(partial), partial
    for partial in ("x", "Note", "CPF_2", "CPF_1x", "docs", "ENC:BR.k1:abcd", "ENC:BR.k1:Q", "ENCX"):
        assert not pm.could_start(partial), partial


def test_enc_tokens_are_only_restorable_when_recorded():
    pm = PlaceholderMap()
    t = "[ENC:BR.k1:AbCdEfGhIjKlMnOpQrStUv]"
    assert pm.original(t[1:-1]) is None
    pm.record(t, "123.456.789-09")
    assert pm.original(t[1:-1]) == "123.456.789-09"
    assert pm.original("enc:BR.k1: AbCdEfGhIjKlMnOpQrStUv ") == "123.456.789-09"
    assert pm.original("ENC:BR.k1:abcdefghijklmnopqrstuv") is None  # base64 is case-sensitive
    assert pm.max_len == len(t)


@pytest.mark.parametrize("detector,a,b", [
    ("br.cpf", "123.456.789-09", "12345678909"),
    ("br.cnpj", "12.abc.345/01de-35", "12ABC34501DE35"),
    ("intl.email", " Ana@Example.COM", "ana@example.com"),
    ("health.term", "Diabetes  Tipo 2", "diabetes tipo 2"),
    ("intl.phone", "+55 (11) 91234-5678", "5511912345678"),
])
def test_normalize_value(detector, a, b):
    assert normalize_value(detector, a) == normalize_value(detector, b)


@pytest.mark.parametrize("forged", ["[CPF.1]", "[CPF:1]", "[cpf=1]", "[CPF\u00a01]", "[CPF\u202f1]", "[\tCPF-1\t]",
                                    "[" + " " * 45 + "CPF_1]"])
def test_every_spelling_the_restorer_takes_is_reserved(forged):
    # the restorer takes these as [CPF_1]: if the caller wrote one, [CPF_1] is not handed out
    from gateway.transform.restore import restore_text

    pm = PlaceholderMap()
    pm.record("[ENC:BR.k1:" + "A" * 60 + "]", "x")  # a long token: the restorer then takes long drifts too
    pm.reserve(f"ref {forged} e CPF 529.982.247-25")
    assert pm.placeholder("br.cpf", "529.982.247-25") == "[CPF_2]"
    assert restore_text(f"eco {forged}", pm) == f"eco {forged}"
