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
