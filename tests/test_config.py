"""Strict configuration: every error names file, line and field."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.config import load_config
from gateway.yamlfile import ConfigError

GOOD = """\
listen: {host: 127.0.0.1, port: 8080}
jurisdiction: BR
auth:
  mode: api_key
  api_keys:
    - {id: tax, sha256: a4314248dc70ea95b1ffca1a92818939952b21cb9e8649ec5975d18f46d8e24a, jurisdiction: BR, agency: receita}
upstreams:
  - {name: br, url: "http://127.0.0.1:9/v1", residency: BR}
  - {name: us, url: "https://api.example.com/v1", dialect: anthropic, residency: US}
models:
  m:
    - {upstream: us, model: x}
    - {upstream: br, model: y}
"""


def write(tmp_path, text):
    p = tmp_path / "soberana.yaml"
    p.write_text(text)
    return p


def test_good_config_loads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.upstream("us").dialect == "anthropic"
    assert cfg.limits.max_body_bytes == 10 * 1024 * 1024 and cfg.on_inspection_error == "block"
    assert cfg.path("var/keys") == tmp_path / "var/keys"


@pytest.mark.parametrize("bad, line, field", [
    (GOOD.replace("port: 8080", "port: eighty"), 1, "listen.port"),
    (GOOD.replace("jurisdiction: BR\n", "jurisdiction: BR\ncolour: blue\n"), 3, "colour"),
    (GOOD.replace("residency: US}", "residency: US, timeout: 3}"), 9, "upstreams[1].timeout"),
    (GOOD.replace("dialect: anthropic", "dialect: gemini"), 9, "upstreams[1].dialect"),
    (GOOD.replace("residency: US", "residency: usa"), 9, "upstreams[1].residency"),
    (GOOD.replace("{upstream: br, model: y}", "{upstream: nowhere, model: y}"), 13, "models.m[1].upstream"),
    (GOOD.replace('url: "http://127.0.0.1:9/v1"', "url: ftp://x"), 8, "upstreams[0].url"),
    (GOOD.replace("on_inspection_error", "x") + "on_inspection_error: shrug\n", 14, "on_inspection_error"),
    (GOOD.replace("agency: receita}", "agency: receita}\n    - {id: tax, sha256: " + "b" * 64 + ", jurisdiction: BR, agency: x}"),
     7, "auth.api_keys[1].id"),
    (GOOD.replace("agency: receita}", "agency: receita}\n    - {id: other, sha256: "
                  "A4314248DC70EA95B1FFCA1A92818939952B21CB9E8649EC5975D18F46D8E24A, jurisdiction: US, agency: x}"),
     7, "auth.api_keys[1].sha256"),
    # inside a map msgspec says `models[...]`: the entry is named, and its line found
    (GOOD.replace("{upstream: br, model: y}", "{upstream: br, model: 7}"), 13, "models.m[1].model"),
    (GOOD.replace("  m:\n", "  ok: [{upstream: br, model: y}]\n  gpt-4.1:\n").replace("model: y}\n", "model: [y]}\n"),
     14, "models.gpt-4.1[1].model"),
    (GOOD + "tracing:\n  headers:\n    a: b\n    c: 1\n", 17, "tracing.headers.c"),
    (GOOD.replace("  m:\n", "  gpt-4:\n    - {upstream: us, model: z}\n  gpt-4.1:\n").replace("{upstream: br, model: y}\n", "{upstream: nowhere, model: y}\n"),
     15, "models.gpt-4.1[1].upstream"),  # a dot in a model's name is not a step into it
    (GOOD.replace("port: 8080", "port: 80800"), 1, "listen.port"),
    (GOOD.replace("host: 127.0.0.1", "host: ''"), 1, "listen.host"),  # would listen on every interface
    (GOOD + "limits: {upstream_timeout_s: -1}\n", 14, "limits.upstream_timeout_s"),  # every request a 504
    (GOOD + "limits: {header_timeout_s: 0}\n", 14, "limits.header_timeout_s"),
    (GOOD + "limits: {max_body_bytes: 0}\n", 14, "limits.max_body_bytes"),
    (GOOD + "audit: {checkpoint_seconds: 0}\n", 14, "audit.checkpoint_seconds"),
    (GOOD + "jurisdiction: BRA\n", 14, "jurisdiction"),
    (GOOD.replace("residency: US}", "residency: US, breaker_failures: 0}"), 9, "upstreams[1].breaker_failures"),
    (GOOD.replace("residency: US}", "residency: US, max_connections: 0}"), 9, "upstreams[1].max_connections"),
    # `models` would be sent as /v1models: a 404, which the probe counts as healthy
    (GOOD.replace("residency: US}", "residency: US, health_path: models}"), 9, "upstreams[1].health_path"),
    (GOOD.replace("residency: US}", "residency: US, timeout_s: -3}"), 9, "upstreams[1].timeout_s"),
    (GOOD.replace('url: "http://127.0.0.1:9/v1"', 'url: "http:///v1"'), 8, "upstreams[0].url"),
    (GOOD.replace("127.0.0.1:9/v1", "127.0.0.1:99999/v1"), 8, "upstreams[0].url"),
    (GOOD + "auth: {mode: none}\n", 14, "auth"),  # YAML alone would keep this one, silently
    (GOOD.replace("residency: BR}", "residency: BR, url: \"http://127.0.0.1:10/v1\"}"), 8, "upstreams[0].url"),
])
def test_errors_name_file_line_and_field(tmp_path, bad, line, field):
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert (e.value.file, e.value.line, e.value.field) == (str(path), line, field)
    assert str(e.value).startswith(f"{path}:{line}: {field}:")


def test_country_codes_like_NO_stay_strings(tmp_path):
    cfg = load_config(write(tmp_path, GOOD.replace("residency: US", "residency: NO")))
    assert cfg.upstream("us").residency == "NO"


def test_serve_refuses_a_broken_config_with_the_location(tmp_path):
    path = write(tmp_path, GOOD.replace("port: 8080", "port: eighty"))
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"{path}:1: listen.port" in out.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("bad, line, field", [
    (GOOD.replace("residency: BR}", "residency: BR, api_key_env: SOBERANA_TEST_UNSET_KEY}"), 8, "upstreams[0].api_key_env"),
    (GOOD.replace("mode: api_key", "mode: jwt\n  jwt: {issuer: i, audience: a}"), 5, "auth.jwt"),
    (GOOD + "rate_limit: {backend: no-such-plugin}\n", 14, "rate_limit.backend"),
])
def test_serve_names_what_the_workers_would_fail_on_before_forking(tmp_path, workers, bad, line, field):
    # Found only while a worker builds its state, these made `serve` restart its workers forever
    # (the log said only "ConfigError") or, with one worker, exit with a traceback and no line.
    from gateway.testing.harness import bundled_policies

    path = write(tmp_path, bad + f"policies: {bundled_policies()}\n")
    env = {k: v for k, v in os.environ.items() if k != "SOBERANA_TEST_UNSET_KEY"}
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "-c", str(path), "--workers", workers],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    assert f"{path}:{line}: {field}:" in out.stderr


def test_auth_none_needs_the_development_flag(tmp_path):
    path = write(tmp_path, GOOD.replace("mode: api_key", "mode: none"))
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--insecure-no-auth" in out.stderr


def test_configuration_reference_is_generated_from_the_model():
    from pathlib import Path

    from gateway.configdoc import reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == reference(), "run: python -m gateway.configdoc > docs/configuration.md"
    assert "| `max_body_bytes` | int | `10485760` |" in reference()


async def test_a_reload_rejected_by_a_part_of_the_gateway_names_file_and_line(tmp_path):
    from gateway.testing.harness import Harness

    async with Harness(tmp_path) as h:
        text = h.config_path.read_text()
        h.config_path.write_text(text + "rate_limit: {backend: no-such-plugin}\n")
        ok, msg = await h.holder.reload()
    line = len(text.splitlines()) + 1
    assert not ok and f"{h.config_path}:{line}: rate_limit.backend:" in msg


@pytest.mark.parametrize("flags, says", [
    (["--workers", "0"], "--workers must be at least 1"), (["--workers", "-2"], "--workers must be at least 1"),
    (["--port", "70000"], "a port is 0 to 65535, not 70000"), (["--port", "-1"], "a port is 0 to 65535, not -1"),
])
def test_serve_refuses_flags_that_make_no_sense(tmp_path, flags, says):
    path = write(tmp_path, GOOD)
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "-c", str(path), *flags],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and says in out.stderr, out.stderr


def test_a_config_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "soberana.yaml"
    path.write_bytes(GOOD.encode() + "jurisdiction: Peru\n".encode("latin-1") + b"# a\xe7\xe3o\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}:15: not UTF-8"
