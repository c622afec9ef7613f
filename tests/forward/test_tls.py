"""TLS (gateway/tls.py). To upstreams (``upstreams[].tls``): an agency CA, a client certificate
(mutual TLS), the name the certificate carries — through the gateway, with the OpenAI SDK, to an
HTTPS stub model that demands a client certificate. On the gateway's own port (``listen.tls``):
HTTPS to the SDK, client certificates required, renewed files served after a reload. Real keys and
certificates, made here with ``cryptography``."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import ipaddress
import secrets
import ssl

import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import config_from_text, load_config
from gateway.keys import init_keys
from gateway.routing.registry import Registry
from gateway.server.main import run
from gateway.testing.harness import bundled_policies
from gateway.testing.stub import start_stub
from gateway.yamlfile import ConfigError

SERVER_NAME = "llm.interno.gov.br"
KEY = "sk-sob-" + secrets.token_urlsafe(16)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer_cert=None, issuer_key=None, *, ca=False, dns=None, ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(issuer_cert.subject if issuer_cert else _name(subject))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
    sans = [x509.DNSName(d) for d in dns or []] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip or []]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


class Pki:
    """An agency CA, the upstream's certificate (for SERVER_NAME only) and a client certificate."""

    def __init__(self, d):
        self.dir = d
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("Agency Test CA", self.ca_key, ca=True)
        (d / "ca.pem").write_bytes(_pem(self.ca))
        server_key = ec.generate_private_key(ec.SECP256R1())
        (d / "server.pem").write_bytes(_pem(_cert(SERVER_NAME, server_key, self.ca, self.ca_key, dns=[SERVER_NAME])))
        (d / "server.key").write_bytes(_key_pem(server_key))
        self.client("client")
        gw_key = ec.generate_private_key(ec.SECP256R1())  # the gateway's own port
        (d / "gateway.pem").write_bytes(_pem(_cert("localhost", gw_key, self.ca, self.ca_key,
                                                   dns=["localhost"], ip=["127.0.0.1"])))
        (d / "gateway.key").write_bytes(_key_pem(gw_key))

    def client(self, stem: str, password: bytes | None = None, cn: str = "soberana-gateway") -> None:
        """Write ``stem.pem`` and ``stem.key``: a client certificate the CA signed, and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        (self.dir / f"{stem}.pem").write_bytes(_pem(_cert(cn, key, self.ca, self.ca_key)))
        (self.dir / f"{stem}.key").write_bytes(_key_pem(key, password))

    def server_context(self) -> ssl.SSLContext:
        """The upstream's side: its certificate, and a client certificate from the CA required."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.dir / "server.pem", self.dir / "server.key")
        ctx.load_verify_locations(self.dir / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def _config(d, stub_url: str, tls: str | None, listen_tls: str | None = None) -> str:
    return f"""\
listen: {{host: 127.0.0.1, port: 0{f", tls: {listen_tls}" if listen_tls else ""}}}
policies: {bundled_policies()}
keys: {d / 'keys'}
auth:
  mode: api_key
  api_keys: [{{id: br-app, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, jurisdiction: BR, agency: receita}}]
upstreams:
  - name: br-sovereign
    url: "{stub_url}/v1"
    residency: BR
{f"    tls: {tls}" if tls else ""}
models:
  llama-3.3-70b:
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
audit: {{path: {d / 'audit'}}}
"""


class Gateway:
    """The gateway from a config file, in this event loop; ``verify``: an SSLContext for its HTTPS port."""

    def __init__(self, path, verify: ssl.SSLContext | None = None):
        self.path = path
        self.verify = verify

    async def __aenter__(self):
        self._stop = asyncio.Event()
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(run(load_config(self.path), config_path=str(self.path), stop=self._stop,
                                             ready=lambda port, holder: ready.set_result((port, holder))))
        done, _ = await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()
        self.port, self.holder = ready.result()
        if self.verify is None:
            self.client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=KEY, max_retries=0)
        else:
            self.client = openai.AsyncOpenAI(base_url=f"https://localhost:{self.port}/v1", api_key=KEY, max_retries=0,
                                             http_client=openai.DefaultAsyncHttpxClient(verify=self.verify))
        return self

    async def ask(self, text: str = "Olá"):
        return await self.client.chat.completions.create(model="llama-3.3-70b",
                                                         messages=[{"role": "user", "content": text}])

    async def __aexit__(self, *exc):
        self._stop.set()
        await asyncio.wait_for(self._task, 40)


async def _serve(pki, tls: str):
    """An HTTPS stub demanding a client certificate, and the path of a gateway config in front of it."""
    init_keys(pki.dir / "keys")
    stub = await start_stub("127.0.0.1", 0, "BR", ssl_context=pki.server_context())
    path = pki.dir / "soberana.yaml"
    path.write_text(_config(pki.dir, stub.url, tls))
    return stub, path


FULL = f"{{ca_file: ca.pem, cert_file: client.pem, key_file: client.key, server_name: {SERVER_NAME}}}"


async def test_mutual_tls_to_an_in_country_upstream(pki):
    stub, path = await _serve(pki, FULL)
    try:
        async with Gateway(path) as gw:
            for _ in range(2):
                answer = await gw.ask("Olá, tudo bem?")
                assert "Olá, tudo bem?" in answer.choices[0].message.content
                assert "[stub BR]" in answer.choices[0].message.content
            assert stub.requests == 2 and stub.connections == 1, "the TLS connection is kept alive"
    finally:
        await stub.close()


@pytest.mark.parametrize("tls, code, why", [
    # no client certificate: under TLS 1.3 the upstream refuses it after the client's side of the
    # handshake is done, so the request was written and the connection reset: 502
    (f"{{ca_file: ca.pem, server_name: {SERVER_NAME}}}", 502, "no client certificate"),
    # the system's CAs do not know the agency's: the gateway refuses the upstream, nothing is sent
    (f"{{cert_file: client.pem, key_file: client.key, server_name: {SERVER_NAME}}}", 503, "unknown CA"),
    # the URL's host (127.0.0.1) is not the name in the certificate
    ("{ca_file: ca.pem, cert_file: client.pem, key_file: client.key}", 503, "wrong name"),
])
async def test_a_tls_failure_forwards_nothing(pki, tls, code, why):
    stub, path = await _serve(pki, tls)
    try:
        async with Gateway(path) as gw:
            with pytest.raises(openai.APIStatusError) as e:
                await gw.ask()
            assert e.value.status_code == code, why
            assert e.value.body["code"] == ("upstream_error" if code == 502 else "no_compliant_upstream"), why
            assert stub.requests == 0, why
    finally:
        await stub.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_an_upstream_that_offers_only_tls_1_1_receives_nothing(pki, tmp_path):
    """TLS 1.2 or later, the peer verified and its name checked, in every upstream context; an
    upstream stuck on TLS 1.1 (which this OpenSSL still speaks when asked) gets no request."""
    from pathlib import Path

    from gateway.config import UpstreamTls
    from gateway.tls import client_context

    for ctx in (client_context(None, Path), client_context(UpstreamTls(ca_file="ca.pem"), lambda p: pki.dir / p)):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(pki.dir / "server.pem", pki.dir / "server.key")
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1
    init_keys(pki.dir / "keys")
    stub = await start_stub("127.0.0.1", 0, "BR", ssl_context=old)
    path = pki.dir / "soberana.yaml"
    path.write_text(_config(pki.dir, stub.url, f"{{ca_file: ca.pem, server_name: {SERVER_NAME}}}"))
    try:
        async with Gateway(path) as gw:
            with pytest.raises(openai.APIStatusError) as e:
                await gw.ask()
            assert e.value.status_code == 503 and e.value.body["code"] == "no_compliant_upstream"
            assert stub.requests == 0
    finally:
        await stub.close()


async def test_a_renewed_client_certificate_takes_effect_on_reload(pki):
    stub, path = await _serve(pki, FULL)
    try:
        async with Gateway(path) as gw:
            await gw.ask()
            swapped, _ = await gw.holder.reload()  # files unchanged: the warm connection stays
            assert swapped
            await gw.ask()
            assert stub.connections == 1
            pki.client("client", cn="soberana-gateway-renewed")  # cert-manager renewed it in place
            swapped, _ = await gw.holder.reload()
            assert swapped
            await gw.ask()
            assert stub.connections == 2, "the renewed certificate gets a new pool"
    finally:
        await stub.close()


async def test_an_encrypted_client_key_opens_with_its_password(pki, monkeypatch):
    pki.client("locked", password=b"s3nha-forte")
    monkeypatch.setenv("SOBERANA_TEST_KEY_PASSWORD", "s3nha-forte")
    stub, path = await _serve(pki, f"{{ca_file: ca.pem, cert_file: locked.pem, key_file: locked.key, "
                                   f"key_password_env: SOBERANA_TEST_KEY_PASSWORD, server_name: {SERVER_NAME}}}")
    try:
        async with Gateway(path) as gw:
            await gw.ask()
            assert stub.requests == 1
    finally:
        await stub.close()


# --- configuration errors: at load, with file, line and field ----------------------------------------------------
def _load(pki, tls: str, url: str = "https://127.0.0.1:9/v1"):
    path = pki.dir / "soberana.yaml"
    path.write_text(_config(pki.dir, url.removesuffix("/v1"), tls))
    return load_config(path)


@pytest.mark.parametrize("tls, field, says", [
    ("{ca_file: missing.pem}", "upstreams[0].tls.ca_file", "cannot load CA certificates"),
    ("{ca_file: server.key}", "upstreams[0].tls.ca_file", "cannot load CA certificates"),
    ("{cert_file: client.pem, key_file: server.key}", "upstreams[0].tls.key_file", "cannot be loaded together"),
    ("{cert_file: client.pem, key_file: nowhere.key}", "upstreams[0].tls.key_file", "cannot read"),
    ("{key_file: client.key}", "upstreams[0].tls.key_file", "needs cert_file"),
    ("{cert_file: locked.pem, key_file: locked.key}", "upstreams[0].tls.key_file", "encrypted: set key_password_env"),
    ("{cert_file: locked.pem, key_file: locked.key, key_password_env: SOBERANA_TEST_WRONG}",
     "upstreams[0].tls.key_password_env", "does not open with this password"),
    ("{cert_file: locked.pem, key_file: locked.key, key_password_env: SOBERANA_TEST_UNSET}",
     "upstreams[0].tls.key_password_env", "is not set"),
    ("{verify: false}", "upstreams[0].tls.verify", "unknown key"),
])
def test_tls_config_errors_name_file_line_and_field(pki, monkeypatch, tls, field, says):
    pki.client("locked", password=b"certa")
    monkeypatch.setenv("SOBERANA_TEST_WRONG", "errada")
    monkeypatch.delenv("SOBERANA_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as e:
        _load(pki, tls)
    err = str(e.value)
    assert "soberana.yaml:" in err and field.split(".")[-1] in err and says in err, err
    if "unknown" not in says:
        assert e.value.field == field and e.value.line == 11, err  # the `tls:` line
    for f in ("server.key", "client.key", "locked.key", "client.pem"):
        body = (pki.dir / f).read_text().splitlines()[1]
        assert body[:16] not in err and "-----BEGIN" not in err, "a file's content never shows"


def test_tls_needs_an_https_url(pki):
    with pytest.raises(ConfigError) as e:
        _load(pki, "{ca_file: ca.pem}", url="http://127.0.0.1:9/v1")
    assert e.value.field == "upstreams[0].tls" and "https://" in str(e.value)


def test_relative_paths_are_the_config_files_folder(pki, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # not where the files are
    cfg = _load(pki, FULL)
    assert cfg.upstreams[0].tls.server_name == SERVER_NAME


async def test_registry_keeps_a_pool_only_while_its_tls_files_are_the_same(pki):
    cfg = _load(pki, FULL)
    first = Registry(cfg)
    same = Registry(cfg, first)
    assert same.targets["br-sovereign"].pool is first.targets["br-sovereign"].pool
    (pki.dir / "ca.pem").write_bytes((pki.dir / "ca.pem").read_bytes() + b"\n")  # a CA bundle edited
    changed = Registry(cfg, same)
    assert changed.targets["br-sovereign"].pool is not same.targets["br-sovereign"].pool
    for r in (changed, first):
        await r.close()


def test_config_from_text_without_tls_still_loads():
    cfg = config_from_text('upstreams: [{name: a, url: "https://api.example.com/v1", residency: US}]\n'
                           "auth: {mode: none}\n")
    assert cfg.upstreams[0].tls is None


# --- the gateway's own port: listen.tls ----------------------------------------------------------------------------
def _caller_context(pki, cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca.pem"))
    if cert:
        ctx.load_cert_chain(pki.dir / f"{cert}.pem", pki.dir / f"{cert}.key")
    return ctx


async def _plain_stub_and_config(pki, listen_tls: str):
    init_keys(pki.dir / "keys")
    stub = await start_stub("127.0.0.1", 0, "BR")
    path = pki.dir / "soberana.yaml"
    path.write_text(_config(pki.dir, stub.url, None, listen_tls))
    return stub, path


async def _served_certificate(port: int, pki, cert: str | None = "client") -> x509.Certificate:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_caller_context(pki, cert),
                                              server_hostname="localhost")
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


async def test_https_on_the_gateways_port(pki):
    stub, path = await _plain_stub_and_config(pki, "{cert_file: gateway.pem, key_file: gateway.key}")
    try:
        async with Gateway(path, verify=_caller_context(pki)) as gw:
            answer = await gw.ask("Olá por TLS")
            assert "Olá por TLS" in answer.choices[0].message.content
            # no plain-HTTP fallback on the same port
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert not (await asyncio.wait_for(reader.read(100), 10)).startswith(b"HTTP/1.1 200")
            writer.close()
    finally:
        await stub.close()


async def test_mutual_tls_callers_need_a_certificate_from_the_client_ca(pki):
    pki.client("caller", cn="receita-app")
    stub, path = await _plain_stub_and_config(
        pki, "{cert_file: gateway.pem, key_file: gateway.key, client_ca_file: ca.pem}")
    try:
        async with Gateway(path, verify=_caller_context(pki, "caller")) as gw:
            assert "[stub BR]" in (await gw.ask()).choices[0].message.content
            without = openai.AsyncOpenAI(base_url=f"https://localhost:{gw.port}/v1", api_key=KEY, max_retries=0,
                                         http_client=openai.DefaultAsyncHttpxClient(verify=_caller_context(pki)))
            with pytest.raises(openai.APIConnectionError):
                await without.chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "x"}])
            assert stub.requests == 1, "a caller without a certificate reaches nothing"
    finally:
        await stub.close()


async def test_a_renewed_listener_certificate_is_served_after_reload(pki):
    stub, path = await _plain_stub_and_config(pki, "{cert_file: gateway.pem, key_file: gateway.key}")
    try:
        async with Gateway(path, verify=_caller_context(pki)) as gw:
            before = await _served_certificate(gw.port, pki, None)
            key = ec.generate_private_key(ec.SECP256R1())  # renewed in place
            (pki.dir / "gateway.pem").write_bytes(_pem(_cert("localhost", key, pki.ca, pki.ca_key,
                                                             dns=["localhost"], ip=["127.0.0.1"])))
            (pki.dir / "gateway.key").write_bytes(_key_pem(key))
            assert (await _served_certificate(gw.port, pki, None)).serial_number == before.serial_number
            swapped, _ = await gw.holder.reload()
            assert swapped
            after = await _served_certificate(gw.port, pki, None)
            assert after.serial_number != before.serial_number
            assert "[stub BR]" in (await gw.ask()).choices[0].message.content
    finally:
        await stub.close()


async def test_a_reload_with_a_broken_listener_key_keeps_serving(pki):
    stub, path = await _plain_stub_and_config(pki, "{cert_file: gateway.pem, key_file: gateway.key}")
    try:
        async with Gateway(path, verify=_caller_context(pki)) as gw:
            (pki.dir / "gateway.key").write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))  # not its key
            swapped, message = await gw.holder.reload()
            assert not swapped and "listen.tls.key_file" in message
            assert "[stub BR]" in (await gw.ask()).choices[0].message.content
    finally:
        await stub.close()


@pytest.mark.parametrize("tls, field", [
    ("{cert_file: missing.pem}", "listen.tls.cert_file"),
    ("{cert_file: gateway.pem, key_file: client.key}", "listen.tls.key_file"),
    ("{cert_file: gateway.pem, key_file: gateway.key, client_ca_file: server.key}", "listen.tls.client_ca_file"),
    ("{key_file: gateway.key}", "listen.tls.cert_file"),
])
def test_listen_tls_config_errors_name_the_field(pki, tls, field):
    path = pki.dir / "soberana.yaml"
    path.write_text(_config(pki.dir, "http://127.0.0.1:9", None, tls))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    err = str(e.value)
    assert e.value.line == 1 and (e.value.field == field or f"{e.value.field}: Object missing required field `cert_file`" in err), err


async def test_the_container_health_check_works_on_an_https_port(pki):
    """The Dockerfile's HEALTHCHECK command, run as written, against the gateway over HTTPS and HTTP."""
    import json
    import re
    import sys
    from pathlib import Path

    dockerfile = (Path(__file__).resolve().parents[2] / "deploy" / "Dockerfile").read_text()
    argv = json.loads(re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", dockerfile).group(1))
    argv[0] = sys.executable
    stub, path = await _plain_stub_and_config(pki, "{cert_file: gateway.pem, key_file: gateway.key}")
    try:
        async with Gateway(path, verify=_caller_context(pki)) as gw:
            for scheme, healthy in (("https", 0), ("http", 1)):  # plain HTTP on a TLS port is no answer
                env = {**os.environ, "SOBERANA_HEALTH_URL": f"{scheme}://127.0.0.1:{gw.port}/-/healthz"}
                p = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
                assert await asyncio.wait_for(p.wait(), 30) == healthy, scheme
    finally:
        await stub.close()
