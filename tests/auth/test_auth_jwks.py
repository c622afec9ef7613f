"""JWKS from a real aiohttp server on 127.0.0.1: rotation, cooldown (fetches counted), outage, max-stale.

Time for the cache is a fake clock we move by hand; token times are real (they are minutes long).
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web
from auth_helpers import AUDIENCE, ISSUER, mint
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth.authenticator import Authenticator, AuthError
from gateway.config import Auth, JwtAuth
from gateway.yamlfile import ConfigError

COOLDOWN, REFRESH, MAX_STALE = 60, 300, 3600


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Idp:
    """A JWKS endpoint whose key set and health the test controls; counts every fetch."""

    def __init__(self):
        self.jwks: list[dict] = []
        self.fetches = 0
        self.down = False
        self.hold: asyncio.Event | None = None  # while set to an unset Event, fetches hang
        self.piece: int | None = None  # when set, the body goes out in pieces of this many bytes
        self.body: bytes | None = None  # when set, sent instead of the JWKS (garbage, huge documents)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            return web.Response(status=503, text="maintenance")
        body = self.body if self.body is not None else json.dumps({"keys": self.jwks}).encode()
        if self.piece is None:
            return web.Response(body=body, content_type="application/json")
        return await self._in_pieces(request, body)

    async def _in_pieces(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """The way a real network delivers a document: several segments, a moment apart."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        try:
            for i in range(0, len(body), self.piece):
                await resp.write(body[i:i + self.piece])
                await asyncio.sleep(0.005)
            await resp.write_eof()
        except ConnectionError:  # the client stopped reading (a document over the limit)
            pass
        return resp

    def publish(self, *entries: tuple[str, object]) -> None:
        self.jwks = [jwk(kid, key) for kid, key in entries]


def jwk(kid: str, private_key) -> dict:
    """The public half of ``private_key`` as a JWK with ``kid``."""
    pub = private_key.public_key()
    cls = RSAAlgorithm if isinstance(pub, rsa.RSAPublicKey) else \
        ECAlgorithm if isinstance(pub, ec.EllipticCurvePublicKey) else OKPAlgorithm
    return json.loads(cls.to_jwk(pub)) | {"kid": kid, "use": "sig"}


@pytest.fixture
async def idp(aiohttp_server):
    i = Idp()
    app = web.Application()
    app.router.add_get("/jwks.json", i.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    i.url = f"http://127.0.0.1:{server.port}/jwks.json"
    return i


@pytest.fixture
def clock():
    return Clock()


async def started(url: str, clock: Clock, previous: Authenticator | None = None, **over) -> Authenticator:
    """A JWKS authenticator, started (in place of ``previous`` on a reload)."""
    cfg = JwtAuth(issuer=ISSUER, audience=AUDIENCE, jwks_url=url, jwks_cooldown_s=COOLDOWN,
                  jwks_refresh_s=REFRESH, jwks_max_stale_s=MAX_STALE, **over)
    auth = Authenticator(Auth(mode="jwt", jwt=cfg), default_jurisdiction="BR", base_dir=".", clock=clock)
    await auth.start(previous)
    return auth


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def reason(auth: Authenticator, token: str) -> str:
    with pytest.raises(AuthError) as e:
        await auth.authenticate(bearer(token))
    return str(e.value)


async def test_rs256_es256_eddsa_from_jwks(idp, clock, keys):
    idp.publish(("r1", keys.rsa), ("e1", keys.ec), ("d1", keys.ed))
    auth = await started(idp.url, clock)
    try:
        for key, alg, kid in ((keys.rsa, "RS256", "r1"), (keys.ec, "ES256", "e1"), (keys.ed, "EdDSA", "d1")):
            assert (await auth.authenticate(bearer(mint(key, alg, kid=kid)))).agency == "receita"
        assert idp.fetches == 1  # fetched once at start, then served from the cache
    finally:
        await auth.close()


async def test_rotation_picks_up_a_new_kid_once_the_cooldown_allows(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    auth = await started(idp.url, clock)
    try:
        new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        idp.publish(("k1", keys.rsa), ("k2", new))  # the IdP rotates right after our fetch
        clock.t += 1
        assert await reason(auth, mint(new, "RS256", kid="k2")) == "unknown signing key"
        assert idp.fetches == 1  # within the cooldown: no refetch for the unknown kid
        clock.t += COOLDOWN
        assert (await auth.authenticate(bearer(mint(new, "RS256", kid="k2")))).sub == "ana@receita.gov.br"
        assert idp.fetches == 2
        assert (await auth.authenticate(bearer(mint(keys.rsa, "RS256", kid="k1")))).sub == "ana@receita.gov.br"
        assert idp.fetches == 2
    finally:
        await auth.close()


async def test_a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    auth = await started(idp.url, clock)
    try:
        clock.t += COOLDOWN  # cooldown over: the first unknown kid may refetch, the rest may not
        for i in range(50):
            assert await reason(auth, mint(keys.rsa, "RS256", kid=f"made-up-{i}")) == "unknown signing key"
        assert idp.fetches == 2
        clock.t += COOLDOWN - 1
        await reason(auth, mint(keys.rsa, "RS256", kid="made-up-x"))
        assert idp.fetches == 2
        clock.t += 1
        await reason(auth, mint(keys.rsa, "RS256", kid="made-up-y"))
        assert idp.fetches == 3
    finally:
        await auth.close()


async def test_outage_serves_last_good_keys_until_max_stale_then_fails_closed(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    auth = await started(idp.url, clock)
    token = mint(keys.rsa, "RS256", kid="k1")
    try:
        idp.down = True
        clock.t += REFRESH  # due for a refresh; it runs in the background and fails; the cached key serves
        assert (await auth.authenticate(bearer(token))).agency == "receita"
        await auth.jwt.jwks.settled()
        assert idp.fetches == 2
        clock.t += MAX_STALE - REFRESH  # exactly max-stale old: still served
        assert (await auth.authenticate(bearer(token))).agency == "receita"
        await auth.jwt.jwks.settled()
        assert idp.fetches == 3
        clock.t += 1  # one second past max-stale: closed, even for a key we know
        assert await reason(auth, token) == "signing keys too stale"
        clock.t += COOLDOWN  # the IdP comes back: the next refresh restores service
        idp.down = False
        assert (await auth.authenticate(bearer(token))).agency == "receita"
    finally:
        await auth.close()


async def test_a_hanging_idp_does_not_stall_requests_served_from_cache(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    auth = await started(idp.url, clock)
    try:
        idp.hold = asyncio.Event()
        clock.t += REFRESH
        token = mint(keys.rsa, "RS256", kid="k1")
        assert (await auth.authenticate(bearer(token))).agency == "receita"
        for _ in range(500):  # let the background refresh reach the IdP, where it hangs
            if idp.fetches == 2:
                break
            await asyncio.sleep(0.01)
        assert idp.fetches == 2
        for _ in range(3):  # answered while the refresh is stuck inside the IdP
            assert (await auth.authenticate(bearer(token))).agency == "receita"
        assert idp.fetches == 2
        idp.hold.set()
        await auth.jwt.jwks.settled()
    finally:
        await auth.close()


async def test_removed_key_stops_working_after_refresh(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    auth = await started(idp.url, clock)
    try:
        idp.publish(("k2", keys.ec))
        clock.t += REFRESH
        old = mint(keys.rsa, "RS256", kid="k1")
        # The routine refresh runs behind this request, which the cached key still serves ...
        assert (await auth.authenticate(bearer(old))).agency == "receita"
        await auth.jwt.jwks.settled()
        assert idp.fetches == 2
        # ... and from then on the removed key is gone.
        assert await reason(auth, old) == "unknown signing key"
    finally:
        await auth.close()


async def test_idp_unreachable_at_start_fails_closed(clock, keys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    auth = await started(f"http://127.0.0.1:{port}/jwks.json", clock)
    try:
        assert await reason(auth, mint(keys.rsa, "RS256", kid="k1")) == "signing keys unavailable"
    finally:
        await auth.close()


async def test_symmetric_and_private_jwks_entries_are_never_used(idp, clock, keys):
    import base64

    secret = b"shared-secret-shared-secret-0123"
    private = json.loads(RSAAlgorithm.to_jwk(keys.rsa)) | {"kid": "priv"}  # a leaked private JWK
    idp.jwks = [{"kty": "oct", "kid": "hmac", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()},
                private, {"kty": "RSA", "kid": "broken", "n": "AAAA", "e": "AQAB"}]
    auth = await started(idp.url, clock)
    try:
        assert await reason(auth, mint(keys.rsa, "RS256", kid="priv")) == "unknown signing key"
        assert await reason(auth, mint(keys.rsa, "RS256", kid="broken")) == "unknown signing key"
        assert await reason(auth, mint(secret, "HS256", kid="hmac")) == "algorithm not allowed"
    finally:
        await auth.close()


async def test_jwk_alg_pin_is_respected(idp, clock, keys):
    idp.jwks = [jwk("k1", keys.rsa) | {"alg": "RS512"}]
    auth = await started(idp.url, clock, algorithms=["RS256", "RS512"])
    try:
        assert await reason(auth, mint(keys.rsa, "RS256", kid="k1")) == "unknown signing key"
        assert (await auth.authenticate(bearer(mint(keys.rsa, "RS512", kid="k1")))).agency == "receita"
    finally:
        await auth.close()


async def test_a_jwks_arriving_in_several_pieces_is_read_whole(idp, clock, keys):
    # Three RSA keys are ~1.3 kB; sent 200 bytes at a time, the client sees several reads. One
    # ``read(n)`` returned only the first piece: the refresh failed on truncated JSON, for good.
    idp.publish(("r1", keys.rsa), ("r2", keys.other), ("e1", keys.ec))
    idp.piece = 200
    auth = await started(idp.url, clock)
    try:
        assert (await auth.authenticate(bearer(mint(keys.ec, "ES256", kid="e1")))).agency == "receita"
        assert idp.fetches == 1
    finally:
        await auth.close()


async def test_a_jwks_over_one_mib_is_refused_even_in_pieces(idp, clock, keys):
    idp.publish(("r1", keys.rsa))
    doc = json.loads(json.dumps({"keys": idp.jwks}))
    doc["padding"] = "x" * (1 << 20)  # valid JSON, a good key, but past the size bound
    idp.body, idp.piece = json.dumps(doc).encode(), 64 * 1024
    auth = await started(idp.url, clock)
    try:
        assert await reason(auth, mint(keys.rsa, "RS256", kid="r1")) == "signing keys unavailable"
    finally:
        await auth.close()


@pytest.mark.parametrize("odd", [{"kty": ["RSA"]}, {"kty": {"RSA": 1}}, {"kty": "RSA", "alg": ["RS256"]},
                                 {"kty": "EC", "alg": {"name": "ES256"}}, {"kty": "RSA", "kid": ["k1"]}, ["RSA"], None])
async def test_an_odd_jwks_entry_does_not_hide_the_good_ones(idp, clock, keys, odd):
    # A list or object where a string belongs made parse_jwks raise TypeError (unhashable), so the
    # whole refresh failed: one entry the IdP added for another consumer took every key away.
    idp.jwks = [odd, jwk("k1", keys.rsa), odd]
    auth = await started(idp.url, clock)
    try:
        assert (await auth.authenticate(bearer(mint(keys.rsa, "RS256", kid="k1")))).agency == "receita"
    finally:
        await auth.close()


async def test_jwk_key_ops_without_verify_is_never_used(idp, clock, keys):
    # RFC 7517 §4.3: key_ops says what a key is for. An encryption key published beside the signing
    # keys, with no `use`, was taken for verifying signatures because key_ops was ignored.
    idp.jwks = [jwk("enc", keys.rsa) | {"key_ops": ["encrypt", "wrapKey"]},
                jwk("str", keys.ec) | {"key_ops": "verify"},  # must be an array
                jwk("ok", keys.ed) | {"key_ops": ["verify"]}]
    for entry in idp.jwks:
        entry.pop("use")
    auth = await started(idp.url, clock)
    try:
        assert await reason(auth, mint(keys.rsa, "RS256", kid="enc")) == "unknown signing key"
        assert await reason(auth, mint(keys.ec, "ES256", kid="str")) == "unknown signing key"
        assert (await auth.authenticate(bearer(mint(keys.ed, "EdDSA", kid="ok")))).agency == "receita"
    finally:
        await auth.close()


async def test_a_reloaded_authenticator_keeps_the_cached_keys_through_an_outage(idp, clock, keys):
    # A reload builds a new authenticator. Started during an IdP outage, it had no keys at all and
    # rejected every JWT, though the one it replaced could serve for up to max-stale.
    idp.publish(("k1", keys.rsa))
    old = await started(idp.url, clock)
    token = mint(keys.rsa, "RS256", kid="k1")
    idp.down = True
    clock.t += REFRESH
    new = await started(idp.url, clock, previous=old)
    await old.close()
    try:
        assert idp.fetches == 2  # the new one still asked the IdP first
        assert (await new.authenticate(bearer(token))).agency == "receita"
        clock.t += MAX_STALE - REFRESH + 1  # max-stale counts from the keys' own fetch, not the reload
        assert await reason(new, token) == "signing keys too stale"
    finally:
        await new.close()


async def test_a_reload_to_another_jwks_url_starts_from_nothing(idp, clock, keys):
    idp.publish(("k1", keys.rsa))
    old = await started(idp.url, clock)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    new = await started(f"http://127.0.0.1:{port}/jwks.json", clock, previous=old)
    await old.close()
    try:
        assert await reason(new, mint(keys.rsa, "RS256", kid="k1")) == "signing keys unavailable"
    finally:
        await new.close()


def test_jwks_url_must_be_https_off_loopback():
    cfg = JwtAuth(issuer=ISSUER, audience=AUDIENCE, jwks_url="http://idp.example.gov/jwks.json")
    with pytest.raises(ConfigError, match="jwks_url"):
        Authenticator(Auth(mode="jwt", jwt=cfg), default_jurisdiction="BR", base_dir=".")
    ok = JwtAuth(issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp.example.gov/jwks.json")
    Authenticator(Auth(mode="jwt", jwt=ok), default_jurisdiction="BR", base_dir=".")


@pytest.mark.parametrize("field", ["jwks_cooldown_s", "jwks_refresh_s", "jwks_max_stale_s"])
@pytest.mark.parametrize("value", [0, -60])
def test_jwks_periods_built_in_code_must_be_positive(field, value):
    # msgspec checks its constraints only when decoding YAML; a JwtAuth built in code (tests, embedders)
    # skipped them. With a cooldown of 0 a flood of made-up kids fetched the JWKS once per request.
    cfg = JwtAuth(issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp.example.gov/jwks.json", **{field: value})
    with pytest.raises(ConfigError) as e:
        Authenticator(Auth(mode="jwt", jwt=cfg), default_jurisdiction="BR", base_dir=".")
    assert e.value.field == f"auth.jwt.{field}"
