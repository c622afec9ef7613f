"""The compiled core against the reference on texts assembled from identifiers, context words and
evasion forms (``fragments.text``): ``scan``, ``scan_decoded`` and ``normalize`` agree on every field,
and the findings satisfy the invariants of a finding list.

A bounded number of texts on every test run; ``SOBERANA_FUZZ_EXAMPLES=N`` runs N of them (hundreds of
thousands in a few minutes), and ``tests/fuzz/fuzz_fragments.py SECONDS`` runs for a given time and
minimizes what it finds.
"""

from __future__ import annotations

import collections
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fragments
from gateway.inspect import _scan_py, normalize

_scan_c = pytest.importorskip("gateway.inspect._scan_c")

EXAMPLES = int(os.environ.get("SOBERANA_FUZZ_EXAMPLES", "0")) or None


@settings(max_examples=EXAMPLES or 1000, deadline=None, derandomize=EXAMPLES is None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**64 - 1))
def test_the_core_agrees_with_the_reference_on_assembled_texts(seed):
    text = fragments.text(random.Random(seed))
    fragments.check(_scan_py.scan, _scan_c.scan, text)
    fragments.check(_scan_py.scan_decoded, _scan_c.scan_decoded, text)
    assert tuple(normalize.normalize(text)) == tuple(_scan_c.normalize(text)), text


def test_the_assembled_texts_reach_every_window_detector():
    # the texts carry what the detectors find, or the comparison above would compare empty lists
    seen = collections.Counter()
    rng = random.Random(1)
    for _ in range(3000):
        seen.update(f.detector for f in _scan_py.scan(fragments.text(rng)))
    from generators import VALID
    missing = set(VALID) | {"intl.email", "intl.phone", "intl.ip", "secret.api_key", "secret.jwt",
                            "secret.private_key", "secret.password", "gov.marking", "health.term"}
    assert not missing - set(seen), missing - set(seen)


def test_minimize_keeps_what_fails():
    assert fragments.minimize(lambda t: "529" in t and "x" in t, "abc 529 def x ghi") == "529x"
