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
