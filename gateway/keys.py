"""The gateway's keys: pseudonymization (HMAC), encryption (AES-SIV) and audit signing (Ed25519).

A key directory holds ``keyring.json`` (mode 0600) with one random 32-byte master secret per key id,
and ``audit-signing.pub`` (plus ``audit-signing-<kid>.pub`` per key id) for auditors. Every working key
is derived from a master with HKDF-SHA256 under a purpose label, so one rotation renews them all:

- ``siv_key(jurisdiction)``: AES-SIV key of the current master for that jurisdiction; older masters
  keep decrypting (tokens carry the key id);
- ``signing_key()``: Ed25519 key of the current master; older public keys keep verifying;
- ``hmac_key(purpose)``: derived from the *first* master, so ``hash`` tokens and audit fingerprints
  stay stable across rotations (they are identifiers, never reversible).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEYRING = "keyring.json"
PUBLIC = "audit-signing.pub"


def _derive(master: bytes, purpose: str, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt=b"soberana-v1", info=purpose.encode()).derive(master)


class KeyError_(LookupError):
    """A key id the keyring does not hold."""


class KeyRing:
    """Loaded keys; immutable once built. Use ``KeyRing.load(dir)``."""

    def __init__(self, masters: dict[str, bytes], order: list[str]):
        self._masters = masters
        self.order = order
        """Key ids, oldest first; the last one is current."""

    @property
    def current(self) -> str:
        return self.order[-1]

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> "KeyRing":
        """The keyring of a key folder. Raises ``OSError`` when ``keyring.json`` cannot be read and
        ``ValueError`` when it is not a keyring (damaged, truncated, another file)."""
        path = Path(directory) / KEYRING
        try:
            data = json.loads(path.read_bytes())
            order = list(data["order"])
            masters = {kid: base64.b64decode(k["master"], validate=True) for kid, k in data["keys"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):  # (binascii.Error is a ValueError)
            # never the exception's text: it may quote part of a master secret
            raise ValueError(f"{path} is not a soberana keyring (damaged or another file)") from None
        if not order or any(kid not in masters for kid in order) or any(len(m) != 32 for m in masters.values()):
            raise ValueError(f"{path} is not a soberana keyring (damaged or another file)")
        return cls(masters, order)

    @classmethod
    def ephemeral(cls) -> "KeyRing":
        """A throwaway keyring (tests, `scan`)."""
        return cls({"k1": secrets.token_bytes(32)}, ["k1"])

    def _master(self, kid: str) -> bytes:
        try:
            return self._masters[kid]
        except KeyError:
            raise KeyError_(f"unknown key id {kid!r}") from None

    @cache
    def siv_key(self, jurisdiction: str, kid: str | None = None) -> tuple[str, bytes]:
        """(key id, 64-byte AES-SIV key) for a jurisdiction; the current key unless ``kid`` is given."""
        kid = kid or self.current
        return kid, _derive(self._master(kid), f"siv/{jurisdiction}", 64)

    @cache
    def hmac_key(self, purpose: str) -> bytes:
        """32-byte HMAC key for ``purpose`` (e.g. ``hash``, ``fingerprint``), stable across rotations."""
        return _derive(self._master(self.order[0]), f"hmac/{purpose}", 32)

    @cache
    def signing_key(self, kid: str | None = None) -> tuple[str, Ed25519PrivateKey]:
        """(key id, Ed25519 private key) for audit checkpoints; the current key unless ``kid`` is given."""
        kid = kid or self.current
        return kid, Ed25519PrivateKey.from_private_bytes(_derive(self._master(kid), "audit-signing", 32))

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every key id's audit-verification key."""
        return {kid: self.signing_key(kid)[1].public_key() for kid in self.order}

    def __hash__(self) -> int:  # for functools.cache on methods
        return id(self)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_keys(path: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """Verification keys from a ``.pub`` file, or every ``audit-signing-<kid>.pub`` in a key folder.

    A file holds a PEM key optionally preceded by a ``# kid: <id>`` line; without it the key id is
    taken from the file name (``audit-signing-<kid>.pub``) or left as ``*`` (matches any key id).
    """
    p = Path(path)
    files = sorted(p.glob("audit-signing-*.pub")) if p.is_dir() else [p]
    out: dict[str, Ed25519PublicKey] = {}
    for f in files:
        text = f.read_bytes()
        kid = "*"
        first = text.split(b"\n", 1)[0]
        if first.startswith(b"# kid:"):
            kid = first[6:].strip().decode()
        elif f.name.startswith("audit-signing-"):
            kid = f.name[len("audit-signing-"):-len(".pub")]
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{f}: not an Ed25519 public key")
        out[kid] = key
    return out


def _write(directory: Path, masters: dict[str, bytes], order: list[str], created: dict[str, int] | None = None) -> KeyRing:
    directory.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    created = created or {}
    data = {"version": 1, "order": order,
            "keys": {kid: {"master": base64.b64encode(m).decode(), "created": created.get(kid, now)}
                     for kid, m in masters.items()}}
    tmp = directory / (KEYRING + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, directory / KEYRING)
    ring = KeyRing(masters, order)
    for kid in order:
        pem = b"# kid: " + kid.encode() + b"\n" + public_pem(ring.signing_key(kid)[1].public_key())
        (directory / f"audit-signing-{kid}.pub").write_bytes(pem)
    (directory / PUBLIC).write_bytes(b"# kid: " + ring.current.encode() + b"\n" + public_pem(ring.signing_key()[1].public_key()))
    return ring


def init_keys(directory: str | os.PathLike[str]) -> KeyRing:
    """Create a new key folder; refuse to overwrite an existing keyring."""
    d = Path(directory)
    if (d / KEYRING).exists():
        raise FileExistsError(f"{d / KEYRING} exists; use `soberana keys rotate`")
    # Public keys without their keyring are all that still verifies the audit logs they signed: a new
    # k1 written over audit-signing-k1.pub would leave those logs unverifiable.
    old = sorted(d.glob("audit-signing*.pub")) if d.is_dir() else []
    if old:
        raise FileExistsError(f"{old[0]} exists (audit-verification keys of an earlier keyring); "
                              "move them away or use another folder")
    return _write(d, {"k1": secrets.token_bytes(32)}, ["k1"])


def rotate_keys(directory: str | os.PathLike[str]) -> KeyRing:
    """Add a new current master; old ones stay for decryption and verification."""
    d = Path(directory)
    old = KeyRing.load(d)
    kid = f"k{len(old.order) + 1}"
    masters = dict(old._masters)
    masters[kid] = secrets.token_bytes(32)
    # each key keeps the date it was created (a rotation used to stamp every key with today)
    keys = json.loads((d / KEYRING).read_bytes())["keys"]
    created = {k: v["created"] for k, v in keys.items() if type(v.get("created")) is int}
    return _write(d, masters, old.order + [kid], created)
