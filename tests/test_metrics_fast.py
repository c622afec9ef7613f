"""The data path's metric shortcuts (gateway.metrics) update the same cells as prometheus-client's
own calls: the exposition after either is byte-identical."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gateway import metrics

AMOUNTS = [0.0, -1.0, 0.00005, 0.00004999, 0.0000500001, 0.0001, 0.00025, 0.0003, 0.001, 0.01, 0.0999,
           0.1, 0.10001, 5.0, 1e9, math.inf, -math.inf, math.nan, 2.5e-4, 1e-12]


def _text(registry) -> list[bytes]:
    return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]  # clock


def _pair(buckets):
    ra, rb = CollectorRegistry(), CollectorRegistry()
    kw = {"buckets": buckets} if buckets else {}
    return (Histogram("h", "h", ["u"], registry=ra, **kw), Histogram("h", "h", ["u"], registry=rb, **kw), ra, rb)


def test_observer_matches_observe_for_every_bucket_layout():
    for buckets in (None, metrics.OVERHEAD._kwargs["buckets"], (1.0,), (0.5, 1.0, math.inf)):
        ha, hb, ra, rb = _pair(buckets)
        ca, cb = ha.labels("x"), metrics.Observer(hb.labels("x"))
        for a in AMOUNTS:
            ca.observe(a)
            cb.observe(a)
        assert _text(ra) == _text(rb)


def test_observer_refuses_a_labelled_parent():
    with pytest.raises(ValueError):
        metrics.Observer(Histogram("h", "h", ["u"], registry=CollectorRegistry()))


def test_request_inc_and_audit_lag_update_the_metrics_cells():
    before = metrics.requests("/v1/x", "r", "BR", "forwarded")._value.get()
    metrics.request_inc("/v1/x", "r", "BR", "forwarded")(1)
    assert metrics.requests("/v1/x", "r", "BR", "forwarded")._value.get() == before + 1
    metrics.set_audit_lag(7.0)
    assert b"soberana_audit_lag_records 7.0" in generate_latest(metrics.REGISTRY)
    metrics.AUDIT_LAG.set(0)
