"""`soberana keys init|rotate` as real subprocesses on real folders, and the keyring they leave."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.keys import KeyRing
from gateway.transform.tokens import decrypt_token, encrypt_token

SOBERANA = str(Path(sys.executable).parent / "soberana")


def keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SOBERANA, "keys", *args], capture_output=True, text=True, timeout=60)


def test_init_then_rotate_keeps_old_tokens_decryptable(tmp_path):
    d = tmp_path / "keys"
    assert keys("init", str(d)).returncode == 0
    assert stat.S_IMODE((d / "keyring.json").stat().st_mode) == 0o600
    token = encrypt_token(KeyRing.load(d), "BR", "CPF", "529.982.247-25")
    p = keys("init", str(d))
    assert p.returncode == 1 and "exists" in p.stderr, "init never overwrites a keyring"
    p = keys("rotate", str(d))
    assert p.returncode == 0, p.stderr
    ring = KeyRing.load(d)
    assert ring.order == ["k1", "k2"] and stat.S_IMODE((d / "keyring.json").stat().st_mode) == 0o600
    assert decrypt_token(ring, token) == "529.982.247-25"


@pytest.mark.parametrize("content", [
    b"", b'{"order": ["k1"], "keys": {"k1": {"master": "c2VjcmV0LXNl', b"\x00\xff\x13garbage",
    b'{"order": ["k1"], "keys": {}}', b'{"order": ["k1"], "keys": {"k1": {"master": "not base64 at all!"}}}',
    b'["k1"]'])
def test_rotate_refuses_a_damaged_keyring_without_a_traceback(tmp_path, content):
    d = tmp_path / "keys"
    d.mkdir()
    (d / "keyring.json").write_bytes(content)
    p = keys("rotate", str(d))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "not a soberana keyring" in p.stderr
    assert "c2VjcmV0" not in p.stderr, "the message never quotes the keyring's content"
    assert (d / "keyring.json").read_bytes() == content, "a damaged keyring is left as it was"
    with pytest.raises(ValueError):
        KeyRing.load(d)


def test_init_or_rotate_where_a_file_is_in_the_way_is_a_clear_error(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    p = keys("init", str(f / "keys"))
    assert p.returncode == 1 and "Traceback" not in p.stderr and "cannot create" in p.stderr
    (tmp_path / "d" / "keyring.json").mkdir(parents=True)
    p = keys("rotate", str(tmp_path / "d"))
    assert p.returncode == 1 and "Traceback" not in p.stderr and "cannot rotate" in p.stderr


def test_decrypt_opens_tokens_of_every_key_id_and_only_those(tmp_path):
    # SPEC 8: ENC tokens are "restorable by the gateway and by soberana keys holders"; there was no
    # command for the holders
    d = tmp_path / "keys"
    assert keys("init", str(d)).returncode == 0
    old = encrypt_token(KeyRing.load(d), "BR", "CPF", "529.982.247-25")
    assert keys("rotate", str(d)).returncode == 0
    new = encrypt_token(KeyRing.load(d), "MX", "CURP", "GODE561231HDFRRN00")
    assert old.startswith("[ENC:BR.k1:") and new.startswith("[ENC:MX.k2:")
    p = keys("decrypt", str(d), old, new)
    assert p.returncode == 0 and p.stdout.splitlines() == ["529.982.247-25", "GODE561231HDFRRN00"], p.stderr

    other = tmp_path / "other"
    assert keys("init", str(other)).returncode == 0
    foreign = encrypt_token(KeyRing.load(other), "BR", "CPF", "111.444.777-35")
    tampered = old[:-3] + ("A" if old[-3] != "A" else "B") + old[-2:]
    text = f"CPF {old};\nCURP {new}, outro {foreign} e {tampered}.\n"
    p = subprocess.run([SOBERANA, "keys", "decrypt", str(d)], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout == f"CPF 529.982.247-25;\nCURP GODE561231HDFRRN00, outro {foreign} e {tampered}.\n"
    assert p.stderr.count("line 2:") == 2 and "does not authenticate" in p.stderr and "Traceback" not in p.stderr
    assert "111.444.777-35" not in p.stderr and foreign.split(":")[2] not in p.stderr
    p = keys("decrypt", str(d), foreign, old)
    assert p.returncode == 1 and p.stdout.splitlines() == [foreign, "529.982.247-25"] and "token 1:" in p.stderr
    p = keys("decrypt", str(tmp_path / "none"), old)
    assert p.returncode == 1 and "no keyring" in p.stderr and p.stdout == ""


def test_init_never_overwrites_the_public_keys_of_an_earlier_keyring(tmp_path):
    # keyring.json gone (deleted, not restored from backup): init wrote a new k1 over
    # audit-signing-k1.pub, the only key that still verified the audit logs of the old ring
    d = tmp_path / "keys"
    assert keys("init", str(d)).returncode == 0
    (d / "keyring.json").unlink()
    before = {f.name: f.read_bytes() for f in d.iterdir()}
    p = keys("init", str(d))
    assert p.returncode == 1 and "audit-signing" in p.stderr and "Traceback" not in p.stderr
    assert {f.name: f.read_bytes() for f in d.iterdir()} == before


def test_rotate_keeps_each_key_creation_date(tmp_path):
    # every rotation stamped every key, old ones too, with the time of the rotation
    import json

    d = tmp_path / "keys"
    assert keys("init", str(d)).returncode == 0
    data = json.loads((d / "keyring.json").read_text())
    data["keys"]["k1"]["created"] = 1_700_000_000  # made long ago
    (d / "keyring.json").write_text(json.dumps(data))
    assert keys("rotate", str(d)).returncode == 0
    assert keys("rotate", str(d)).returncode == 0
    created = {k: v["created"] for k, v in json.loads((d / "keyring.json").read_text())["keys"].items()}
    assert created["k1"] == 1_700_000_000 and created["k2"] > 1_700_000_000 and created["k3"] >= created["k2"]
    assert KeyRing.load(d).order == ["k1", "k2", "k3"]


def test_decrypt_passes_bytes_that_are_not_utf8_through(tmp_path):
    # a Latin-1 log piped through decrypt ended in a UnicodeDecodeError traceback
    d = tmp_path / "keys"
    assert keys("init", str(d)).returncode == 0
    token = encrypt_token(KeyRing.load(d), "BR", "CPF", "529.982.247-25")
    text = "café ".encode("latin-1") + token.encode() + " olá\n".encode()
    import os

    # as under a UTF-8 locale such as en_US.UTF-8, where standard input decodes strictly (the C
    # locale of a bare container escapes bad bytes, which hid the bug)
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    p = subprocess.run([SOBERANA, "keys", "decrypt", str(d)], input=text, capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "café ".encode("latin-1") + b"529.982.247-25" + " olá\n".encode()
