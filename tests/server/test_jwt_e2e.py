"""A JWT from the agency's identity provider, end to end: its jurisdiction claim picks the policy."""

from __future__ import annotations

import time

import json
import jwt
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.testing.harness import Harness

EMAIL = "ana.perez@correo.gob.ar"


@pytest.fixture
async def gw(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "idp.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    cfg = f"{{issuer: 'https://idp.gov.example', audience: soberana, public_keys: [{tmp_path / 'idp.pem'}], algorithms: [RS256]}}"
    async with Harness(tmp_path, jwt=cfg) as h:
        h.idp_key = key
        yield h


def token(h: Harness, country: str, **over) -> str:
    now = int(time.time())
    claims = {"iss": "https://idp.gov.example", "aud": "soberana", "sub": "analista-7", "agency": "tributos",
              "country": country, "iat": now, "exp": now + 300, **over}
    return jwt.encode(claims, h.idp_key, algorithm="RS256", headers={"kid": "idp"})


async def ask(h: Harness, tok: str):
    client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=tok, max_retries=0)
    return await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Escribile a {EMAIL} mañana."}])


async def test_the_jurisdiction_claim_drives_the_decision(gw):
    # Argentina's law treats the US as non-adequate: the e-mail leaves only as a placeholder
    answer = await ask(gw, token(gw, "AR"))
    sent = gw.received("US")[-1]["body"]["messages"][0]["content"]
    assert EMAIL not in sent and "[EMAIL_1]" in sent
    assert EMAIL in answer.choices[0].message.content
    # the same request from a US caller: US policy has no transfer restriction on contact data
    await ask(gw, token(gw, "US"))
    assert EMAIL in gw.received("US")[-1]["body"]["messages"][0]["content"]


async def test_bad_tokens_are_refused_with_401_and_reach_nothing(gw):
    before = len(gw.received("US")) + len(gw.received("BR"))
    for tok in (token(gw, "AR", exp=int(time.time()) - 3600), token(gw, "AR", iss="https://idp.gov.example.evil"),
                token(gw, "AR")[:-6] + "AAAAAA", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        with pytest.raises(openai.AuthenticationError) as e:
            await ask(gw, tok)
        assert e.value.body["code"] == "unauthorized"
    assert len(gw.received("US")) + len(gw.received("BR")) == before


async def test_a_reload_during_an_idp_outage_keeps_the_cached_jwks(tmp_path, aiohttp_server):
    # The JWKS cache serves its last good keys through an outage (up to jwks_max_stale_s). A reload
    # built a new, empty cache whose first fetch failed, so every JWT got 401 until the IdP was back.
    from aiohttp import web
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "idp", "use": "sig"}]}
    idp = {"down": False}

    async def serve(request: web.Request) -> web.Response:
        return web.Response(status=503) if idp["down"] else web.json_response(jwks)

    app = web.Application()
    app.router.add_get("/jwks.json", serve)
    server = await aiohttp_server(app, host="127.0.0.1")
    cfg = (f"{{issuer: 'https://idp.gov.example', audience: soberana, algorithms: [RS256], "
           f"jwks_url: 'http://127.0.0.1:{server.port}/jwks.json'}}")
    async with Harness(tmp_path, jwt=cfg) as h:
        h.idp_key = key
        assert (await ask(h, token(h, "AR"))).choices
        idp["down"] = True
        ok, message = await h.holder.reload()
        assert ok, message
        assert (await ask(h, token(h, "AR"))).choices  # still the keys fetched before the outage


async def test_a_rejected_reload_leaves_nothing_of_the_new_config_running(tmp_path, aiohttp_server):
    # A reload builds and starts a whole new State before swapping it in. When a later part failed
    # (here the new audit folder cannot be made), the parts already started were dropped unclosed: the
    # new JWKS client session (and a changed tracing exporter's thread) stayed open, one more for every
    # rejected SIGHUP.
    import gc
    import threading

    import aiohttp
    from aiohttp import web
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "idp", "use": "sig"}]}
    app = web.Application()
    app.router.add_get("/jwks.json", lambda request: web.json_response(jwks))
    server = await aiohttp_server(app, host="127.0.0.1")
    cfg = (f"{{issuer: 'https://idp.gov.example', audience: soberana, algorithms: [RS256], "
           f"jwks_url: 'http://127.0.0.1:{server.port}/jwks.json'}}")

    def open_sessions() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed)

    async with Harness(tmp_path, jwt=cfg) as h:
        h.idp_key = key
        before, threads = open_sessions(), threading.active_count()
        (tmp_path / "not-a-folder").write_text("")
        text = h.config_path.read_text()
        text = text.replace(f"path: {tmp_path / 'audit'}", f"path: {tmp_path / 'not-a-folder' / 'audit'}")
        h.config_path.write_text(text + "tracing: {enabled: true, otlp_endpoint: 'http://127.0.0.1:9/v1/traces'}\n")
        for _ in range(3):
            ok, message = await h.holder.reload()
            assert not ok and "audit" in message
        assert open_sessions() == before, "each rejected reload left its JWKS session open"
        assert threading.active_count() == threads, "each rejected reload left a span exporter thread running"
        assert (await ask(h, token(h, "AR"))).choices  # the running config serves on
