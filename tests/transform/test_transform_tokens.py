"""ENC/HASH/REDACTED tokens and fingerprints, with real keys on disk."""

from __future__ import annotations

import base64
import re

import pytest

from gateway.cli import main
from gateway.keys import KeyRing, init_keys
from gateway.transform.tokens import (TokenError, decrypt_token, encrypt_token, fingerprint, hash_token, label_for,
                                      open_token, redact_token)

CPF = "123.456.789-09"
ENC = re.compile(r"\[ENC:([A-Z]{2})\.(k\d+):([A-Za-z0-9_-]+)\]\Z")


@pytest.fixture
def keydir(tmp_path):
    d = tmp_path / "keys"
    init_keys(d)
    return d


@pytest.mark.parametrize("detector,label", [
    ("br.cpf", "CPF"), ("intl.email", "EMAIL"), ("secret.api_key", "API_KEY"), ("health.term", "HEALTH"),
    ("br.cnpj", "CNPJ"), ("mx.curp", "CURP"), ("gov.marking", "CLASSIFIED"), ("intl.card", "CARD"),
])
def test_labels(detector, label):
    assert label_for(detector) == label


def test_labels_never_hold_digits():
    assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", label_for("xx.ipv4_addr2"))


def test_encrypt_round_trip_and_format(keydir):
    ring = KeyRing.load(keydir)
    token = encrypt_token(ring, "BR", "CPF", CPF)
    m = ENC.match(token)
    assert m and m.group(1) == "BR" and m.group(2) == "k1"
    assert CPF not in token and "12345678909" not in token
    assert decrypt_token(ring, token) == CPF
    assert open_token(ring, token) == ("CPF", CPF)


def test_encrypt_is_stable_across_requests_and_processes(keydir):
    a = encrypt_token(KeyRing.load(keydir), "BR", "CPF", CPF)
    b = encrypt_token(KeyRing.load(keydir), "BR", "CPF", CPF)  # a fresh load: another process
    assert a == b
    assert encrypt_token(KeyRing.load(keydir), "BR", "CPF", "111.444.777-35") != a
    assert encrypt_token(KeyRing.load(keydir), "MX", "CPF", CPF) != a  # each jurisdiction its own key


def test_old_tokens_decrypt_after_keys_rotate(keydir, capsys):
    old = encrypt_token(KeyRing.load(keydir), "BR", "CPF", CPF)
    assert main(["keys", "rotate", str(keydir)]) == 0
    ring = KeyRing.load(keydir)
    assert ring.current == "k2"
    new = encrypt_token(ring, "BR", "CPF", CPF)
    assert ENC.match(new).group(2) == "k2" and new != old
    assert decrypt_token(ring, old) == CPF
    assert decrypt_token(ring, new) == CPF
    assert encrypt_token(KeyRing.load(keydir), "BR", "CPF", CPF) == new  # stable again under the new key


def _flip(token: str) -> str:
    kid, b64 = token[5:-1].rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))
    raw[-1] ^= 1
    return f"[ENC:{kid}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}]"


def test_tampered_and_foreign_tokens_are_rejected(keydir, tmp_path):
    ring = KeyRing.load(keydir)
    token = encrypt_token(ring, "BR", "CPF", CPF)
    bad = [
        _flip(token),                                   # ciphertext changed
        token.replace("BR.k1", "MX.k1"),                # another jurisdiction's key
        token.replace("BR.k1", "BR.k9"),                # a key id the ring does not hold
        token.replace("BR.k1", "BR"),                   # malformed key id
        token[:-1],                                     # not a token
        "[ENC:BR.k1:!!!!!!!!!!!!!!!!!!!!!!]",
    ]
    other = init_keys(tmp_path / "other")
    for t in bad:
        with pytest.raises(TokenError) as e:
            decrypt_token(ring, t)
        assert CPF not in str(e.value)
    with pytest.raises(TokenError):
        decrypt_token(other, token)  # the right key id, but another agency's keyring


def test_hash_stable_labelled_and_not_the_value(keydir):
    ring = KeyRing.load(keydir)
    h = hash_token(ring, "CPF", "12345678909")
    assert re.fullmatch(r"\[HASH:CPF:[0-9a-f]{12}\]", h)
    assert h == hash_token(KeyRing.load(keydir), "CPF", "12345678909")
    assert h != hash_token(ring, "CPF", "11144477735")
    assert h[10:-1] != hash_token(ring, "PIS", "12345678909")[10:-1]
    assert hash_token(KeyRing.ephemeral(), "CPF", "12345678909") != h  # keyed: not a plain SHA-256


def test_hash_survives_rotation(keydir):
    h = hash_token(KeyRing.load(keydir), "CPF", "12345678909")
    main(["keys", "rotate", str(keydir)])
    assert hash_token(KeyRing.load(keydir), "CPF", "12345678909") == h


def test_redact():
    assert redact_token("EMAIL") == "[REDACTED:EMAIL]"


@pytest.mark.parametrize("value", [CPF, "ana@example.com", "0" * 32, "a" * 32, "sk-" + "x" * 40, ""])
def test_fingerprint_is_keyed_stable_and_never_the_value(keydir, value):
    ring = KeyRing.load(keydir)
    fp = fingerprint(ring, value)
    assert re.fullmatch(r"[0-9a-f]{32}", fp)
    assert fp != value and (not value or value not in fp)
    assert fingerprint(KeyRing.load(keydir), value) == fp
    assert fingerprint(KeyRing.ephemeral(), value) != fp


def test_fingerprint_normalizes_with_detector(keydir):
    ring = KeyRing.load(keydir)
    assert fingerprint(ring, CPF, "br.cpf") == fingerprint(ring, "12345678909", "br.cpf")
    assert fingerprint(ring, CPF) != fingerprint(ring, "12345678909")
