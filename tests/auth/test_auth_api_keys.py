"""API keys (Bearer and x-api-key), header handling, mode none, and 401 over real HTTP."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from aiohttp import web
from auth_helpers import AUDIENCE, ISSUER, mint

from gateway.auth.api_keys import ApiKeys, hash_key
from gateway.auth.authenticator import Authenticator, AuthError
from gateway.config import ApiKey, Auth, JwtAuth, config_from_text
from gateway.yamlfile import ConfigError

TAX_KEY = "sbr-tax-7d1f0c9a4e2b8f6d3a5c"
HEALTH_KEY = "sbr-health-1a2b3c4d5e6f7a8b9c0d"


def api_key_cfg() -> Auth:
    return Auth(mode="api_key", api_keys=[
        ApiKey(id="tax-office", sha256=hash_key(TAX_KEY), jurisdiction="br", agency="receita"),
        ApiKey(id="health", sha256=hash_key(HEALTH_KEY).upper(), jurisdiction="MX", agency="imss"),
    ])


def make(cfg: Auth | None = None, **kw) -> Authenticator:
    return Authenticator(cfg or api_key_cfg(), default_jurisdiction="BR", base_dir=".", **kw)


async def reason(auth: Authenticator, headers) -> str:
    with pytest.raises(AuthError) as e:
        await auth.authenticate(headers)
    assert e.value.code == "unauthorized"
    return str(e.value)


def test_hash_key_is_plain_sha256_hex():
    assert hash_key(TAX_KEY) == hashlib.sha256(TAX_KEY.encode()).hexdigest()


async def test_bearer_and_x_api_key_map_to_their_principal():
    auth = make()
    p = await auth.authenticate({"Authorization": f"Bearer {TAX_KEY}"})
    assert (p.sub, p.agency, p.jurisdiction, p.key_id) == ("tax-office", "receita", "BR", "tax-office")
    p = await auth.authenticate({"x-api-key": HEALTH_KEY})
    assert (p.agency, p.jurisdiction, p.key_id) == ("imss", "MX", "health")
    assert (await auth.authenticate({"authorization": f"bearer  {HEALTH_KEY} "})).key_id == "health"


@pytest.mark.parametrize("headers,why", [
    ({}, "missing credentials"),
    ({"Authorization": "Bearer sbr-tax-7d1f0c9a4e2b8f6d3a5d"}, "unknown api key"),  # last char differs
    ({"Authorization": f"Bearer {TAX_KEY}x"}, "unknown api key"),
    ({"Authorization": f"Bearer {TAX_KEY[:-1]}"}, "unknown api key"),
    ({"x-api-key": hash_key(TAX_KEY)}, "unknown api key"),  # the stored digest is not the key
    ({"x-api-key": ""}, "unknown api key"),
    ({"Authorization": TAX_KEY}, "malformed authorization header"),
    ({"Authorization": f"Basic {TAX_KEY}"}, "malformed authorization header"),
    ({"Authorization": "Bearer "}, "malformed authorization header"),
    ({"Authorization": f"Bearer {TAX_KEY} {TAX_KEY}"}, "malformed authorization header"),
    ({"Authorization": f"Bearer {TAX_KEY}", "x-api-key": TAX_KEY}, "ambiguous credentials: both authorization and x-api-key"),
    ({"x-api-key": "k" * 100_000}, "credential too large"),
])
async def test_wrong_or_malformed_keys_are_rejected(headers, why):
    assert await reason(make(), headers) == why


async def test_repeated_authorization_header_is_rejected():
    from multidict import CIMultiDict

    h = CIMultiDict([("Authorization", "Bearer nope"), ("authorization", f"Bearer {TAX_KEY}")])
    assert await reason(make(), h) == "repeated authorization header"


async def test_api_key_mode_never_verifies_jwts(keys, pem_dir):
    token = mint(keys.rsa, "RS256", kid="idp-rsa")
    assert await reason(make(), {"Authorization": f"Bearer {token}"}) == "unknown api key"


async def test_jwt_mode_also_accepts_configured_api_keys(keys, pem_dir):
    cfg = Auth(mode="jwt", jwt=JwtAuth(issuer=ISSUER, audience=AUDIENCE, public_keys=["idp-rsa.pem"]),
               api_keys=api_key_cfg().api_keys)
    auth = Authenticator(cfg, default_jurisdiction="BR", base_dir=pem_dir)
    assert (await auth.authenticate({"x-api-key": TAX_KEY})).key_id == "tax-office"
    assert (await auth.authenticate({"Authorization": f"Bearer {TAX_KEY}"})).key_id == "tax-office"
    assert (await auth.authenticate({"Authorization": f"Bearer {mint(keys.rsa, 'RS256')}"})).key_id is None
    # A token that looks like a JWT is judged as one, not retried as a key.
    assert await reason(auth, {"Authorization": f"Bearer {mint(keys.other, 'RS256')}"}) == "bad signature"


@pytest.mark.parametrize("entry,field", [
    (dict(id="a", sha256="abc", jurisdiction="BR", agency="x"), "auth.api_keys[0].sha256"),
    (dict(id="a", sha256="g" * 64, jurisdiction="BR", agency="x"), "auth.api_keys[0].sha256"),
    (dict(id="a", sha256=hash_key("k"), jurisdiction="BRA", agency="x"), "auth.api_keys[0].jurisdiction"),
    (dict(id="", sha256=hash_key("k"), jurisdiction="BR", agency="x"), "auth.api_keys[0]"),
])
def test_bad_key_entries_are_config_errors(entry, field):
    with pytest.raises(ConfigError) as e:
        ApiKeys([ApiKey(**entry)])
    assert e.value.field == field


def test_duplicate_ids_and_keys_are_config_errors():
    with pytest.raises(ConfigError, match="duplicate key id"):
        ApiKeys([ApiKey(id="a", sha256=hash_key("k1"), jurisdiction="BR", agency="x"),
                 ApiKey(id="a", sha256=hash_key("k2"), jurisdiction="BR", agency="x")])
    with pytest.raises(ConfigError, match="configured twice"):
        ApiKeys([ApiKey(id="a", sha256=hash_key("k1"), jurisdiction="BR", agency="x"),
                 ApiKey(id="b", sha256=hash_key("k1").upper(), jurisdiction="BR", agency="y")])


def test_every_stored_digest_is_compared(monkeypatch):
    # Constant time across keys: the match on the first key must not skip comparing the others.
    import gateway.auth.api_keys as mod

    calls = []
    real = mod.hmac.compare_digest
    monkeypatch.setattr(mod.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    keys = ApiKeys(api_key_cfg().api_keys)
    assert keys.match(TAX_KEY).key_id == "tax-office"
    assert len(calls) == 2


async def test_mode_none_needs_the_flag_and_gives_the_dev_principal():
    with pytest.raises(ConfigError) as e:
        make(Auth(mode="none"))
    assert e.value.field == "auth.mode"
    auth = make(Auth(mode="none"), allow_none=True)
    p = await auth.authenticate({})
    assert (p.sub, p.jurisdiction) == ("dev", "BR")


@pytest.mark.parametrize("entry,field", [
    (f"{{id: t, sha256: {hash_key(TAX_KEY)}, jurisdiction: BR, agency: r, scope: all}}", "auth.api_keys[0].scope"),
    ("{id: t, sha256: not-a-digest, jurisdiction: BR, agency: r}", "auth.api_keys[0].sha256"),
    (f"{{id: t, sha256: {hash_key(TAX_KEY)}, jurisdiction: Brazil, agency: r}}", "auth.api_keys[0].jurisdiction"),
])
def test_auth_config_errors_name_file_line_and_field(entry, field):
    text = f"jurisdiction: BR\nauth:\n  mode: api_key\n  api_keys:\n  - {entry}\n"
    with pytest.raises(ConfigError) as e:
        config_from_text(text, "gw.yaml")
    assert (e.value.file, e.value.line, e.value.field) == ("gw.yaml", 5, field)


@pytest.mark.parametrize("jwt_yaml,field", [
    ("{issuer: i, audience: a, public_keys: [k.pem], algorithms: [RS256, HS256]}", "auth.jwt.algorithms[1]"),
    ("{issuer: i, audience: a, public_keys: [k.pem], algorithms: [none]}", "auth.jwt.algorithms[0]"),
    ("{issuer: i, audience: a, public_keys: [k.pem], leeway_s: 3600}", "auth.jwt.leeway_s"),
    # a cooldown of 0 lets every made-up kid fetch the JWKS; a negative max-stale rejects every JWT
    ("{issuer: i, audience: a, jwks_url: 'https://i/j', jwks_cooldown_s: 0}", "auth.jwt.jwks_cooldown_s"),
    ("{issuer: i, audience: a, jwks_url: 'https://i/j', jwks_refresh_s: -5}", "auth.jwt.jwks_refresh_s"),
    ("{issuer: i, audience: a, jwks_url: 'https://i/j', jwks_max_stale_s: -1}", "auth.jwt.jwks_max_stale_s"),
])
def test_jwt_config_refuses_weak_settings_at_load(jwt_yaml, field):
    with pytest.raises(ConfigError) as e:
        config_from_text(f"auth:\n  mode: jwt\n  jwt: {jwt_yaml}\n", "gw.yaml")
    assert (e.value.line, e.value.field) == (3, field)


async def test_a_non_ascii_key_matches_as_utf8_whatever_decoded_the_header():
    key = "sbr-chave-ação-9f8e7d"
    auth = make(Auth(mode="api_key", api_keys=[ApiKey(id="u", sha256=hash_key(key), jurisdiction="BR", agency="r")]))
    # the gateway's server hands over latin-1 text (one char per byte); aiohttp and tests, real text
    for seen in (key.encode().decode("latin-1"), key):
        assert (await auth.authenticate({"x-api-key": seen})).key_id == "u"
        assert (await auth.authenticate({"authorization": f"Bearer {seen}"})).key_id == "u"
    assert await reason(auth, {"x-api-key": key.replace("ç", "c")}) == "unknown api key"


async def test_rejections_never_log_the_key():
    # the reason is what the gateway logs for a refused request (tests/server/test_request_ids.py)
    wrong = TAX_KEY[:-1] + "Z"
    text = await reason(make(), {"x-api-key": wrong})
    assert "unknown api key" in text and wrong not in text and TAX_KEY[:10] not in text


# --- 401 over real HTTP, through a minimal app that maps AuthError the way the server does -----------

@pytest.fixture
async def gate(aiohttp_server):
    auth = make()

    async def handler(request: web.Request) -> web.Response:
        try:
            p = await auth.authenticate(request.headers)
        except AuthError as e:
            return web.json_response({"error": {"code": e.code, "message": "missing or invalid credentials"}},
                                     status=401)
        return web.json_response({"agency": p.agency, "jurisdiction": p.jurisdiction})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}/v1/chat/completions"


async def test_http_401_and_200(gate):
    async with aiohttp.ClientSession() as s:
        async with s.post(gate, json={}, headers={"Authorization": f"Bearer {TAX_KEY}"}) as r:
            assert r.status == 200 and await r.json() == {"agency": "receita", "jurisdiction": "BR"}
        async with s.post(gate, json={}, headers={"x-api-key": HEALTH_KEY}) as r:
            assert r.status == 200 and (await r.json())["jurisdiction"] == "MX"
        for h in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"},
                  {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}):
            async with s.post(gate, json={}, headers=h) as r:
                body = await r.json()
                assert r.status == 401 and body["error"]["code"] == "unauthorized"
