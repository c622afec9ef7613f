"""The registry's candidate lists per endpoint: an upstream whose dialect cannot carry an endpoint is no
candidate for it, so the decision goes on to the next one (as past an unhealthy one)."""

from __future__ import annotations

from gateway.auth.principal import Principal
from gateway.config import config_from_text
from gateway.policy import Candidate, decide, load_policies
from gateway.routing.registry import Registry
from gateway.testing.harness import bundled_policies

CONFIG = """\
auth: {mode: none}
upstreams:
  - {name: claude, url: "http://127.0.0.1:9/v1", dialect: anthropic, residency: US}
  - {name: gpt, url: "http://127.0.0.1:9/v1", dialect: openai, residency: US}
models:
  either:
    - {upstream: claude, model: claude-sonnet-4}
    - {upstream: gpt, model: gpt-4o-mini}
  claude-only:
    - {upstream: claude, model: claude-sonnet-4}
"""
CLAUDE = Candidate("claude", "US", "claude-sonnet-4")
GPT = Candidate("gpt", "US", "gpt-4o-mini")


async def test_an_upstream_is_a_candidate_only_for_the_endpoints_its_dialect_can_carry():
    r = Registry(config_from_text(CONFIG))
    try:
        for endpoint in ("/v1/chat/completions", "/v1/messages"):  # translated when the dialects differ
            assert r.by_endpoint[endpoint] == {"either": [CLAUDE, GPT], "claude-only": [CLAUDE]}
        for endpoint in ("/v1/embeddings", "/v1/responses", "/v1/completions"):
            assert r.by_endpoint[endpoint] == {"either": [GPT], "claude-only": []}
        assert r.models == {"either": [CLAUDE, GPT], "claude-only": [CLAUDE]}  # (all of them: /v1/models)

        # the first compliant, healthy candidate of the endpoint's list: the Anthropic one for chat,
        # the OpenAI one for embeddings, also on a retry after the first failed (the same list, ``tried``)
        policies = load_policies(bundled_policies())
        us = Principal(sub="t", agency="a", jurisdiction="US")
        assert decide(policies, us, [], r.by_endpoint["/v1/chat/completions"]["either"]).route == CLAUDE
        assert decide(policies, us, [], r.by_endpoint["/v1/embeddings"]["either"]).route == GPT
        retry = decide(policies, us, [], r.by_endpoint["/v1/embeddings"]["either"], healthy=lambda n: n != "gpt")
        assert retry.outcome == "unavailable" and retry.route is None  # never the one that cannot carry it
    finally:
        await r.close()


async def test_a_plain_http_upstream_off_this_machine_is_named_in_a_warning(caplog, monkeypatch):
    """Plain http:// is allowed (an in-country model on a private network) but said at start and at a
    reload that adds it: the prompts, and the provider key when there is one, cross that network in
    clear. Loopback upstreams (a sidecar's, a test's) and https:// ones are not named."""
    monkeypatch.setenv("BR_MODEL_KEY", "sk-test")
    text = """\
auth: {mode: none}
upstreams:
  - {name: br-sovereign, url: "http://10.0.0.5:8000/v1", dialect: openai, residency: BR, api_key_env: BR_MODEL_KEY}
  - {name: br-named, url: "http://llm.interno.gov.br/v1", dialect: openai, residency: BR}
  - {name: sidecar, url: "http://127.0.0.1:9/v1", dialect: openai, residency: BR, api_key_env: BR_MODEL_KEY}
  - {name: local, url: "http://localhost:9/v1", dialect: openai, residency: BR}
  - {name: v6, url: "http://[::1]:9/v1", dialect: openai, residency: BR}
  - {name: tls, url: "https://10.0.0.6/v1", dialect: openai, residency: BR}
models:
  m: [{upstream: br-sovereign, model: m}]
"""
    with caplog.at_level("WARNING", logger="soberana.routing"):
        r = Registry(config_from_text(text))
    try:
        named = {m.split()[1]: m for m in (rec.getMessage() for rec in caplog.records) if "plain http" in m}
        assert set(named) == {"br-sovereign", "br-named"}
        assert "and its provider key" in named["br-sovereign"] and "provider key" not in named["br-named"]
        assert "sk-test" not in caplog.text
        caplog.clear()
        with caplog.at_level("WARNING", logger="soberana.routing"):
            r2 = Registry(config_from_text(text), previous=r)  # a reload that changes nothing says nothing
        assert "plain http" not in caplog.text
    finally:
        await r.close()
