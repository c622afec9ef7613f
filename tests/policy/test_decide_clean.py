"""decide() without findings takes a shorter path (engine._decide_clean); it must give exactly the
Decision the general path (engine._decide) gives, for every candidate list, health and level."""

from __future__ import annotations

import itertools

import pytest

from gateway.auth.principal import Principal
from gateway.policy import Candidate, load_policies
from gateway.policy import engine
from gateway.testing.harness import bundled_policies

RESIDENCIES = ["BR", "US", "MX", "AR", "DE", "CN", "KP", None, ""]
LEVELS = ["public", "internal", "confidential", "restricted", "secret", "bogus"]


@pytest.fixture(scope="module")
def policies():
    return load_policies(bundled_policies())


def _cands(residencies):
    return [Candidate(f"u{i}", r, f"m{i}") for i, r in enumerate(residencies)]


@pytest.mark.parametrize("caller", ["BR", "US", "MX", "AR", "ZZ"])
def test_clean_decisions_equal_the_general_path(policies, caller):
    principal = Principal(sub="s", agency="a", jurisdiction=caller)
    lists = [[]] + [list(c) for n in (1, 2, 3) for c in itertools.product(RESIDENCIES, repeat=n)]
    for residencies in lists:
        cands = _cands(residencies)
        for level in LEVELS:
            for down in (set(), {"u0"}, {"u1"}, {"u0", "u1", "u2"}):
                def healthy(n, down=down):
                    return n not in down
                for did in ("d1", None):
                    got = engine.decide(policies, principal, [], cands, level, healthy, decision_id=did)
                    want = engine._decide(policies, principal, [], cands, level, healthy, did)
                    if did is None:  # a random id each
                        assert len(got.decision_id) == 32
                        got = got.__class__(**{**{f: getattr(got, f) for f in got.__struct_fields__},
                                               "decision_id": want.decision_id})
                    assert got == want, (caller, residencies, level, down)
