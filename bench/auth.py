"""What identity and limits cost per request: Authenticator.authenticate and RateLimiter.check.

    .venv/bin/python bench/auth.py [--n 5000] [--keys 10,1000] [--redis]

Rows (µs per call, best of 3 runs of --n calls, one event loop, no network except Redis on loopback):

- api key, K keys configured: a Bearer key that matches (every stored digest is compared, so the
  cost grows with K on purpose — constant time across keys);
- jwt RS256 / ES256 / EdDSA: a valid token verified against PEM keys (signature + claims);
- jwt rejected (alg none): the cost of refusing a forged token before any crypto;
- ratelimit memory: one check charging 4 buckets (agency and key, requests and tokens);
- ratelimit redis (--redis, starts redis-server on a free port): the same through the Lua script.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt as pyjwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402

from gateway.auth.api_keys import hash_key  # noqa: E402
from gateway.auth.authenticator import Authenticator, AuthError  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.config import ApiKey, Auth, JwtAuth, RateLimit  # noqa: E402
from gateway.ratelimit import RateLimiter  # noqa: E402


async def timed(fn, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def row(name: str, us: float) -> None:
    print(f"{name:<34} {us:9.1f} µs   {1e6 / us:10.0f} /s")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--keys", default="10,1000")
    ap.add_argument("--redis", action="store_true")
    a = ap.parse_args()

    for k in (int(x) for x in a.keys.split(",")):
        keys = [ApiKey(id=f"k{i}", sha256=hash_key(f"key-{i}"), jurisdiction="BR", agency="a") for i in range(k)]
        auth = Authenticator(Auth(mode="api_key", api_keys=keys), default_jurisdiction="BR", base_dir=Path("."))
        h = {"authorization": f"Bearer key-{k - 1}"}
        row(f"api key, {k} keys", await timed(lambda: auth.authenticate(h), a.n))

    with tempfile.TemporaryDirectory() as d:
        signers = {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                   "ES256": ec.generate_private_key(ec.SECP256R1()), "EdDSA": ed25519.Ed25519PrivateKey.generate()}
        for alg, key in signers.items():
            pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
            (Path(d) / f"{alg}.pem").write_bytes(pem)
        cfg = JwtAuth(issuer="https://idp.example.gov", audience="soberana", public_keys=[f"{a}.pem" for a in signers])
        auth = Authenticator(Auth(mode="jwt", jwt=cfg), default_jurisdiction="BR", base_dir=Path(d))
        now = int(time.time())
        claims = {"iss": cfg.issuer, "aud": "soberana", "sub": "ana", "agency": "receita", "country": "BR",
                  "iat": now, "exp": now + 3600}
        for alg, key in signers.items():
            h = {"authorization": "Bearer " + pyjwt.encode(claims, key, algorithm=alg, headers={"kid": alg})}
            row(f"jwt {alg}", await timed(lambda: auth.authenticate(h), a.n))
        forged = ".".join(base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
                          for x in ({"alg": "none"}, claims)) + ".AA"
        h = {"authorization": f"Bearer {forged}"}

        async def refuse():
            try:
                await auth.authenticate(h)
            except AuthError:
                pass

        import logging

        logging.getLogger("soberana.auth").setLevel(logging.WARNING)  # the INFO reason log is not the point
        row("jwt rejected (alg none)", await timed(refuse, a.n))

    p = Principal(sub="ana", agency="receita", jurisdiction="BR", key_id="k1")
    big = dict(requests_per_minute=10**9, tokens_per_minute=10**12, key_requests_per_minute=10**9,
               key_tokens_per_minute=10**12)
    lim = RateLimiter.from_config(RateLimit(**big))
    row("ratelimit memory (4 buckets)", await timed(lambda: lim.check(p, 500), a.n))

    if a.redis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL)
        try:
            await asyncio.sleep(0.3)
            lim = RateLimiter.from_config(RateLimit(**big, backend="redis", redis_url=f"redis://127.0.0.1:{port}/0"))
            row("ratelimit redis (4 buckets)", await timed(lambda: lim.check(p, 500), a.n))
            await lim.close()
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
