"""Real keys, PEM files, a token minter and a forger for the auth tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://idp.example.gov"
AUDIENCE = "soberana"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**over) -> dict:
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ana@receita.gov.br", "agency": "receita", "country": "br",
         "iat": now, "nbf": now, "exp": now + 300}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def mint(key, alg: str, *, kid: str | None = None, headers: dict | None = None, **over) -> str:
    """A properly signed token; ``over`` replaces claims (None drops one)."""
    h = dict(headers or {})
    if kid is not None:
        h["kid"] = kid
    # Through PyJWS with JSON bytes, so claims PyJWT would refuse to encode (a list `iss`) can be signed.
    return pyjwt.api_jws.encode(json.dumps(claims(**over)).encode(), key, algorithm=alg, headers=h or None)


def forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A token assembled by hand, the way an attacker would."""
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def forge_hmac(header: dict, payload: dict, secret: bytes) -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


class Keys:
    """One RSA, one EC P-256, one Ed25519 signer of the IdP, plus an unrelated RSA key."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
