"""JWT attack suite at the Authenticator: every forged or off-profile token is an AuthError.

Keys are real (RSA 2048, EC P-256, Ed25519), read from PEM files the way a deployment has them.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from auth_helpers import AUDIENCE, ISSUER, b64, claims, forge, forge_hmac, mint, pem_public
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from gateway.auth.authenticator import Authenticator, AuthError
from gateway.config import Auth, JwtAuth, JwtClaims
from gateway.yamlfile import ConfigError

PEMS = ["idp-rsa.pem", "idp-ec.pem", "idp-ed.pem"]


def make_auth(pem_dir, **jwt_over) -> Authenticator:
    cfg = JwtAuth(issuer=ISSUER, audience=AUDIENCE, public_keys=jwt_over.pop("public_keys", PEMS), **jwt_over)
    return Authenticator(Auth(mode="jwt", jwt=cfg), default_jurisdiction="BR", base_dir=pem_dir)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def rejected(auth: Authenticator, token: str) -> str:
    with pytest.raises(AuthError) as e:
        await auth.authenticate(bearer(token))
    return str(e.value)


# --- valid tokens -------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg,which,kid", [("RS256", "rsa", "idp-rsa"), ("ES256", "ec", "idp-ec"),
                                           ("EdDSA", "ed", "idp-ed"), ("RS256", "rsa", None)])
async def test_valid_tokens_are_accepted_and_mapped(pem_dir, keys, alg, which, kid):
    auth = make_auth(pem_dir)
    p = await auth.authenticate(bearer(mint(getattr(keys, which), alg, kid=kid)))
    assert (p.sub, p.agency, p.jurisdiction, p.key_id) == ("ana@receita.gov.br", "receita", "BR", None)


async def test_claim_names_come_from_config(pem_dir, keys):
    auth = make_auth(pem_dir, claims=JwtClaims(jurisdiction="pais", agency="org", sub="email"))
    token = mint(keys.rsa, "RS256", kid="idp-rsa", pais="mx", org="sat", email="x@sat.gob.mx")
    p = await auth.authenticate(bearer(token))
    assert (p.sub, p.agency, p.jurisdiction) == ("x@sat.gob.mx", "sat", "MX")


async def test_audience_list_holding_ours_is_accepted(pem_dir, keys):
    p = await make_auth(pem_dir).authenticate(bearer(mint(keys.ec, "ES256", kid="idp-ec", aud=["other", AUDIENCE])))
    assert p.agency == "receita"


async def test_small_clock_skew_is_tolerated(pem_dir, keys):
    now = int(time.time())
    token = mint(keys.rsa, "RS256", kid="idp-rsa", iat=now + 10, nbf=now + 10, exp=now - 10)
    # exp 10 s ago and nbf/iat 10 s ahead are all inside the 30 s leeway
    assert (await make_auth(pem_dir).authenticate(bearer(token))).jurisdiction == "BR"


# --- algorithm confusion ------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_in_any_case(pem_dir, alg):
    auth = make_auth(pem_dir)
    assert await rejected(auth, forge({"alg": alg, "typ": "JWT"}, claims())) == "malformed token"  # empty sig
    assert await rejected(auth, forge({"alg": alg}, claims(), b"x")) == "algorithm not allowed"
    assert await rejected(auth, forge({"alg": alg, "kid": "idp-rsa"}, claims()) + ".") == "malformed token"


async def test_stripped_signature(pem_dir, keys):
    head, payload, _ = mint(keys.rsa, "RS256", kid="idp-rsa").split(".")
    auth = make_auth(pem_dir)
    assert await rejected(auth, f"{head}.{payload}.") == "malformed token"
    assert await rejected(auth, f"{head}.{payload}") == "malformed token"


async def test_hs256_keyed_with_the_rsa_public_key_pem_and_jwk(pem_dir, keys):
    auth = make_auth(pem_dir)
    pem = pem_public(keys.rsa)
    jwk = RSAAlgorithm.to_jwk(keys.rsa.public_key()).encode()
    for secret in (pem, pem.strip(), jwk):
        for kid in ("idp-rsa", None):
            header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
            assert await rejected(auth, forge_hmac(header, claims(), secret)) == "algorithm not allowed"


async def test_hs256_is_refused_even_if_configured(pem_dir):
    with pytest.raises(ConfigError, match="auth.jwt.algorithms"):
        make_auth(pem_dir, algorithms=["RS256", "HS256"])
    with pytest.raises(ConfigError, match="auth.jwt.algorithms"):
        make_auth(pem_dir, algorithms=["none"])


async def test_algorithms_outside_the_allow_list(pem_dir, keys):
    auth = make_auth(pem_dir, algorithms=["ES256"])
    assert await rejected(auth, mint(keys.rsa, "RS256", kid="idp-rsa")) == "algorithm not allowed"
    assert await rejected(auth, mint(keys.ed, "EdDSA", kid="idp-ed")) == "algorithm not allowed"
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "PS256", kid="idp-rsa")) == "algorithm not allowed"
    assert (await auth.authenticate(bearer(mint(keys.ec, "ES256", kid="idp-ec")))).agency == "receita"


async def test_key_type_must_fit_the_algorithm(pem_dir, keys):
    # An RS256 signature can never be checked against the EC key, even when the kid points there.
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-ec")) == "unknown signing key"


# --- kid and key-carrying headers ---------------------------------------------------------------------

@pytest.mark.parametrize("kid", ["../../etc/passwd", "/etc/passwd", "..\\..\\keys", "idp-rsa/../x", "a b",
                                 "", "x" * 200, "idp-rsa\x00", "..", 7, ["idp-rsa"]])
async def test_path_like_or_malformed_kid(pem_dir, keys, kid):
    auth = make_auth(pem_dir)
    assert await rejected(auth, forge({"alg": "RS256", "kid": kid}, claims(), b"sig")) == "invalid kid"
    if isinstance(kid, str):
        assert await rejected(auth, mint(keys.rsa, "RS256", headers={"kid": kid})) == "invalid kid"


async def test_unknown_kid(pem_dir, keys):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa-2099")) == "unknown signing key"


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c", "crit"])
async def test_key_carrying_and_crit_headers(pem_dir, keys, header):
    value = {"jku": "https://evil.example/jwks.json", "x5u": "https://evil.example/cert.pem",
             "jwk": json.loads(RSAAlgorithm.to_jwk(keys.other.public_key())), "x5c": ["MIIB"],
             "crit": ["exp"]}[header]
    # Signed by the attacker's key that the header points at; the real key is also tried for jku/x5u.
    for signer in (keys.other, keys.rsa):
        token = mint(signer, "RS256", kid="idp-rsa", headers={header: value})
        assert await rejected(make_auth(pem_dir), token) == "forbidden token header"


# --- time claims ----------------------------------------------------------------------------------------

async def test_expired(pem_dir, keys):
    now = int(time.time())
    token = mint(keys.rsa, "RS256", kid="idp-rsa", iat=now - 600, nbf=now - 600, exp=now - 31)
    assert await rejected(make_auth(pem_dir), token) == "token expired"


async def test_not_yet_valid(pem_dir, keys):
    now = int(time.time())
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", nbf=now + 120)) \
        == "token not yet valid"
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", iat=now + 120)) \
        == "token not yet valid"


async def test_missing_exp(pem_dir, keys):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", exp=None)) == "missing exp claim"


@pytest.mark.parametrize("over,why", [({"exp": "9999999999"}, "invalid exp claim"), ({"exp": True}, "invalid exp claim"),
                                      ({"exp": [1]}, "invalid exp claim"), ({"nbf": "0"}, "invalid nbf claim"),
                                      ({"iat": None, "nbf": None}, None)])
async def test_time_claims_must_be_numbers(pem_dir, keys, over, why):
    token = mint(keys.rsa, "RS256", kid="idp-rsa", **over)
    if why is None:  # nbf and iat are optional
        assert (await make_auth(pem_dir).authenticate(bearer(token))).agency == "receita"
    else:
        assert await rejected(make_auth(pem_dir), token) == why


async def test_leeway_is_bounded(pem_dir):
    with pytest.raises(ConfigError, match="leeway_s"):
        make_auth(pem_dir, leeway_s=86400)


# --- issuer, audience, signer ---------------------------------------------------------------------------

@pytest.mark.parametrize("iss", ["https://idp.example.gov.evil.com", "https://idp.example.gov/", "https://idp.example",
                                 "HTTPS://IDP.EXAMPLE.GOV", "https://evil.com", ["https://idp.example.gov"]])
async def test_wrong_or_prefix_matched_issuer(pem_dir, keys, iss):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", iss=iss)) == "wrong issuer"


async def test_missing_issuer(pem_dir, keys):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", iss=None)) == "missing iss claim"


@pytest.mark.parametrize("aud", ["other", "soberana-dev", "sober", "SOBERANA", ["other"], [["soberana"]], 1])
async def test_wrong_audience(pem_dir, keys, aud):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", aud=aud)) == "wrong audience"


@pytest.mark.parametrize("aud", [None, []])
async def test_missing_audience(pem_dir, keys, aud):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", aud=aud)) == "missing aud claim"


async def test_another_signer(pem_dir, keys):
    auth = make_auth(pem_dir)
    assert await rejected(auth, mint(keys.other, "RS256", kid="idp-rsa")) == "bad signature"
    assert await rejected(auth, mint(keys.other, "RS256")) == "bad signature"  # no kid: every RSA key tried
    assert await rejected(auth, mint(ec.generate_private_key(ec.SECP256R1()), "ES256", kid="idp-ec")) == "bad signature"


async def test_kidless_tokens_are_tried_against_a_bounded_number_of_keys(tmp_path, keys):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signers = [ed25519.Ed25519PrivateKey.generate() for _ in range(5)]
    for i, k in enumerate(signers):
        (tmp_path / f"k{i}.pem").write_bytes(pem_public(k))
    auth4 = make_auth(tmp_path, public_keys=[f"k{i}.pem" for i in range(4)])
    assert (await auth4.authenticate(bearer(mint(signers[3], "EdDSA")))).agency == "receita"  # last candidate
    auth5 = make_auth(tmp_path, public_keys=[f"k{i}.pem" for i in range(5)])
    assert await rejected(auth5, mint(signers[0], "EdDSA")) == "token without kid matches too many keys"
    assert (await auth5.authenticate(bearer(mint(signers[4], "EdDSA", kid="k4")))).agency == "receita"


async def test_tampered_payload(pem_dir, keys):
    head, _, sig = mint(keys.rsa, "RS256", kid="idp-rsa").split(".")
    evil = b64(json.dumps(claims(country="US", agency="nsa")).encode())
    assert await rejected(make_auth(pem_dir), f"{head}.{evil}.{sig}") == "bad signature"


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "eyJ.eyJ.eyJ", "....", "e30.e30.e30",
                                     b64(b"[1,2]") + ".e30.AAAA", b64(b"\xff\xfe") + ".e30.AAAA", "Zm9v.YmFy.YmF6"])
async def test_garbage(pem_dir, garbage):
    await rejected(make_auth(pem_dir), garbage)


async def test_oversized_token(pem_dir, keys):
    token = mint(keys.rsa, "RS256", kid="idp-rsa", padding="x" * 9000)
    assert await rejected(make_auth(pem_dir), token) == "token too large"


async def test_small_rsa_key_is_refused_in_config(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "weak.pem").write_bytes(pem_public(weak))
    with pytest.raises(ConfigError, match="unsupported key type"):
        make_auth(tmp_path, public_keys=["weak.pem"])


async def test_private_key_file_is_refused(tmp_path, keys):
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "oops.pem").write_bytes(keys.rsa.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="private key"):
        make_auth(tmp_path, public_keys=["oops.pem"])


# --- claims → Principal ---------------------------------------------------------------------------------

@pytest.mark.parametrize("over,reason", [
    ({"country": None}, "missing or invalid jurisdiction claim"),
    ({"country": "BRA"}, "missing or invalid jurisdiction claim"),
    ({"country": "B1"}, "missing or invalid jurisdiction claim"),
    ({"country": 76}, "missing or invalid jurisdiction claim"),
    ({"agency": None}, "missing or invalid agency claim"),
    ({"agency": ""}, "missing or invalid agency claim"),
    ({"sub": None}, "missing or invalid sub claim"),
    ({"sub": ["a"]}, "missing or invalid sub claim"),
])
async def test_claims_that_cannot_make_a_principal(pem_dir, keys, over, reason):
    assert await rejected(make_auth(pem_dir), mint(keys.rsa, "RS256", kid="idp-rsa", **over)) == reason


# --- no secret in the log ---------------------------------------------------------------------------------

async def test_rejections_log_the_reason_never_the_token(pem_dir, keys):
    # the reason is what the gateway logs for a refused request (tests/server/test_request_ids.py)
    token = mint(keys.other, "RS256", kid="idp-rsa")
    logged = await rejected(make_auth(pem_dir), token)
    assert "bad signature" in logged
    for part in token.split("."):
        assert part not in logged
    assert "receita" not in logged and "ana@" not in logged


def test_token_parts_are_base64url_json():
    # Guard on the forger itself, so the attacks above attack what they claim to.
    t = forge({"alg": "none"}, {"a": 1})
    assert json.loads(base64.urlsafe_b64decode(t.split(".")[0] + "==")) == {"alg": "none"}
