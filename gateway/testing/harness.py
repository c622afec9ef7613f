"""A whole gateway on loopback: keys, two stub upstreams (in-country BR, foreign US), the bundled
policies, and the gateway itself — for the tests, the demo and users' own trials.

    async with Harness(tmp_path) as h:
        client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["br"])
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sys
from pathlib import Path

import orjson

from gateway.config import load_config

FOREIGN_KEY_ENV = "SOBERANA_DEMO_FOREIGN_KEY"


def bundled_policies() -> Path:
    """The policies shipped with Soberana (the repo's policies/ or the installed copy)."""
    here = Path(__file__).resolve().parents[2] / "policies"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "soberana" / "policies"


CALLERS = {
    # name: (jurisdiction, agency)
    "br": ("BR", "receita-federal"),
    "mx": ("MX", "sat"),
    "ar": ("AR", "afip"),
    "us": ("US", "irs"),
}


def _config_text(h: "Harness") -> str:
    keys = "\n".join(
        f"    - {{id: {name}-key, sha256: {hashlib.sha256(key.encode()).hexdigest()}, "
        f"jurisdiction: {CALLERS[name][0]}, agency: {CALLERS[name][1]}}}"
        for name, key in h.keys.items()
    )
    return f"""\
listen: {{host: 127.0.0.1, port: 0}}
jurisdiction: BR
policies: {h.policies}
keys: {h.dir / 'keys'}
auth:
  mode: {h.auth_mode}
{h.jwt_yaml}  api_keys:
{keys}
upstreams:
  - {{name: br-sovereign, url: "{h.stub_br.url}/v1", dialect: openai, residency: BR}}
  - {{name: foreign-openai, url: "{h.stub_us.url}/v1", dialect: openai, residency: US, api_key_env: {FOREIGN_KEY_ENV}}}
  - {{name: foreign-anthropic, url: "{h.stub_us.url}/v1", dialect: anthropic, residency: US, api_key_env: {FOREIGN_KEY_ENV}}}
models:
  gpt-4o-mini:
    - {{upstream: foreign-openai, model: gpt-4o-mini}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  claude-sonnet-4:
    - {{upstream: foreign-anthropic, model: claude-sonnet-4}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  gpt-4o:
    - {{upstream: foreign-openai, model: gpt-4o}}
  o4-mini:                          # an OpenAI reasoning model: chat max_tokens refused, as OpenAI does
    - {{upstream: foreign-openai, model: o4-mini}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  llama-3.3-70b:
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  flaky-foreign:                    # the foreign upstream answers 500; the in-country one is next
    - {{upstream: foreign-openai, model: stub-fail-500}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  rate-limited-foreign:             # the foreign upstreams answer 429 with a Retry-After: the caller's answer
    - {{upstream: foreign-openai, model: stub-rate-limit}}       # (a 4xx, not a failure: the next is not tried)
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  rate-limited-claude:
    - {{upstream: foreign-anthropic, model: stub-rate-limit}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  resets-midstream:
    - {{upstream: br-sovereign, model: stub-reset}}
  hangs-foreign:                    # the foreign upstream never answers; the in-country one is next
    - {{upstream: foreign-openai, model: stub-hang}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
  claude-only:                      # an Anthropic upstream alone: chat and messages, no embeddings
    - {{upstream: foreign-anthropic, model: claude-sonnet-4}}
  flaky-then-claude:                # after the failing one, an upstream that cannot carry embeddings
    - {{upstream: foreign-openai, model: stub-fail-500}}
    - {{upstream: foreign-anthropic, model: claude-sonnet-4}}
    - {{upstream: br-sovereign, model: llama-3.3-70b}}
audit: {{path: {h.dir / 'audit'}, checkpoint_every: 50, checkpoint_seconds: 60, fsync: batch{h.audit_extra}}}
limits: {{max_body_bytes: {h.limits.get('max_body_bytes', 1048576)}, header_timeout_s: {h.limits.get('header_timeout_s', 5)}, body_timeout_s: {h.limits.get('body_timeout_s', 5)}, upstream_timeout_s: {h.limits.get('upstream_timeout_s', 10)}, max_answer_bytes: {h.limits.get('max_answer_bytes', 268435456)}, max_connections: {h.limits.get('max_connections', 10000)}}}
{h.extra}"""


class Harness:
    """Stub upstreams plus a gateway, all in this event loop, in folder ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], *, policies: str | os.PathLike[str] | None = None,
                 extra_config: str = "", limits: dict | None = None, jwt: str | None = None, audit: str = ""):
        self.dir = Path(directory)
        self.audit_extra = f", {audit}" if audit else ""
        """``audit``: more members of the flow-style ``audit`` mapping (``witness: FILE``)."""
        self.policies = Path(policies) if policies else bundled_policies()
        self.extra = extra_config
        self.limits = limits or {}
        self.auth_mode = "jwt" if jwt else "api_key"
        self.jwt_yaml = f"  jwt: {jwt}\n" if jwt else ""
        """``jwt``: the flow-style YAML of ``auth.jwt`` (JWTs then work beside the API keys)."""
        self.keys = {name: "sk-sob-" + secrets.token_urlsafe(24) for name in CALLERS}
        """API key of each test caller (br, mx, ar, us), by name."""
        self.url = ""
        self.holder = None  # the StateHolder once started (tests reload it directly)
        self.config_path = self.dir / "soberana.yaml"

    async def __aenter__(self) -> "Harness":
        from gateway.keys import init_keys
        from gateway.server.main import run
        from gateway.testing.stub import start_stub

        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "keys" / "keyring.json").exists():
            init_keys(self.dir / "keys")
        os.environ.setdefault(FOREIGN_KEY_ENV, "sk-foreign-provider-" + secrets.token_hex(8))
        self.stub_br = await start_stub("127.0.0.1", 0, "BR", record=str(self.dir / "received-br.jsonl"))
        self.stub_us = await start_stub("127.0.0.1", 0, "US", record=str(self.dir / "received-us.jsonl"))
        self.config_path.write_text(_config_text(self))
        self.config = load_config(self.config_path)
        self._stop = asyncio.Event()
        ready: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_ready(port, holder):
            ready.set_result((port, holder))

        self._task = asyncio.create_task(run(self.config, config_path=str(self.config_path), stop=self._stop, ready=on_ready))
        done, _ = await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()  # raises the startup error
        port, self.holder = ready.result()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def received(self, residency: str) -> list[dict]:
        """Every request body the BR or US stub received, oldest first."""
        path = self.dir / f"received-{residency.lower()}.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def audit_files(self) -> list[Path]:
        return sorted((self.dir / "audit").glob("*.jsonl"))

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, 40)
        finally:
            await self.stub_br.close()
            await self.stub_us.close()
