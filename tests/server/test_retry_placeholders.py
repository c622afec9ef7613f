"""A retry starts from no placeholders: what an earlier try pseudonymized is not restored in the answer of
an upstream that got the values as they are."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.dialects import extract_segments
from gateway.exchange import Exchange
from gateway.inspect import scan
from gateway.keys import init_keys
from gateway.server import proxy

CPF = "529.982.247-25"


def test_a_retry_to_an_upstream_that_takes_the_values_as_they_are_keeps_no_placeholder_map(tmp_path):
    body = {"model": "m", "messages": [{"role": "user", "content": f"CPF {CPF}"}]}
    ex = Exchange("r1", "/v1/chat/completions", "openai")
    ex.payload, ex.model = body, "m"
    ex.body = b'{"model": "m", "messages": [{"role": "user", "content": "CPF ' + CPF.encode() + b'"}]}'
    ex.segments = extract_segments(ex.endpoint, body)
    ex.findings = [scan(s.text) for s in ex.segments]
    ex.principal = SimpleNamespace(jurisdiction="BR")
    state = SimpleNamespace(ring=init_keys(tmp_path / "keys"))
    target = SimpleNamespace(cfg=SimpleNamespace(dialect="openai"))

    def decision(action):
        return SimpleNamespace(route=SimpleNamespace(model="m"), actions=[action])

    _, sent = proxy._upstream_body(state, ex, decision("pseudonymize"), target, 0)
    assert CPF.encode() not in sent and ex.pmap is not None  # the foreign try: a placeholder
    _, sent = proxy._upstream_body(state, ex, decision("allow"), target, 1)
    assert CPF.encode() in sent and ex.pmap is None  # the in-country retry: nothing to restore
