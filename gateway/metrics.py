"""Prometheus metrics. Labels carry ids (endpoint, upstream, detector, action), never a value.

With ``--workers N`` every worker is its own process: ``soberana serve`` then sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and ``/-/metrics`` in any worker reports the
sum over all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import glob
import os
import threading
from bisect import bisect_left
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# No `<name>_created` series: a pre-forked fleet's exposition (multiprocess mode) never has them, so
# with them one worker exposed other series than N, and each label set cost a second series.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("soberana_requests_total", "Requests by endpoint, route, residency and outcome",
                   ["endpoint", "route", "residency", "outcome"], registry=REGISTRY)
FINDINGS = Counter("soberana_findings_total", "Sensitive values found, by detector", ["detector"], registry=REGISTRY)
ACTIONS = Counter("soberana_actions_total", "Actions applied to findings", ["action"], registry=REGISTRY)
LEAKS = Counter("soberana_answer_leaks_total", "Sensitive values in answers that the caller did not send",
                ["detector"], registry=REGISTRY)
OVERHEAD = Histogram("soberana_gateway_overhead_seconds", "Time the gateway adds before forwarding (auth, inspect, decide, transform)",
                     buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1), registry=REGISTRY)
# Buckets up to the default upstream timeout (300 s): prometheus-client's defaults end at 10 s, where a
# non-streamed completion often only begins, so every slow call fell in +Inf and p95/p99 read "10 s".
UPSTREAM_LATENCY = Histogram("soberana_upstream_latency_seconds", "Time to the upstream's response headers",
                             ["upstream"], registry=REGISTRY,
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                                      60.0, 120.0, 300.0))
STREAMS = Gauge("soberana_streams_active", "Streams being relayed now", registry=REGISTRY,
                multiprocess_mode="livesum")
AUDIT_LAG = Gauge("soberana_audit_lag_records", "Audit records queued, not yet written", registry=REGISTRY,
                  multiprocess_mode="livesum")
CIRCUIT = Gauge("soberana_circuit_state", "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open (the worst worker)",
                ["upstream"], registry=REGISTRY, multiprocess_mode="livemax")
ERRORS = Counter("soberana_errors_total", "Requests answered with an error, by its code (unauthorized, rate_limited, "
                 "policy_blocked, no_compliant_upstream, upstream_error, payload_too_large, ...)", ["code"],
                 registry=REGISTRY)
RATE_LIMIT_BACKEND_FAILURES = Counter(
    "soberana_rate_limit_backend_failures_total", "Requests refused because the rate-limit backend did not "
    "answer (also counted as errors with code rate_limited, which is what the caller gets)", registry=REGISTRY)
RELOADS = Counter("soberana_config_reloads_total", "Config and policy reloads (SIGHUP), by result: applied or rejected",
                  ["result"], registry=REGISTRY)
RELOAD_OK = Gauge("soberana_config_last_reload_successful", "1 when the last reload was applied or none was tried, "
                  "0 while the running config is older than a rejected edit (the worst worker)",
                  registry=REGISTRY, multiprocess_mode="livemin")
RELOAD_OK.set(1)  # the config a worker starts with is the one it was given: nothing rejected yet
INSPECTION_ERRORS = Counter("soberana_inspection_errors_total", "Inspection or transformation failures", registry=REGISTRY)
CONNECTIONS_REFUSED = Counter("soberana_connections_refused_total", "Client connections refused past limits.max_connections",
                              registry=REGISTRY)
FAIL_OPEN = Counter("soberana_fail_open_total", "Requests forwarded uninspected under on_inspection_error: allow", registry=REGISTRY)


# The labelled children, looked up once per label set: ``labels()`` validates and locks on every
# call, which the data path would pay per request. Label values are ids from the config and the
# detector catalogue, so these caches stay small.
@lru_cache(maxsize=1024)
def requests(endpoint: str, route: str, residency: str, outcome: str):
    """REQUESTS for one label set."""
    return REQUESTS.labels(endpoint, route, residency, outcome)


@lru_cache(maxsize=1024)
def finding(detector: str):
    """FINDINGS for one detector."""
    return FINDINGS.labels(detector)


@lru_cache(maxsize=1024)
def leak(detector: str):
    """LEAKS for one detector."""
    return LEAKS.labels(detector)


@lru_cache(maxsize=64)
def error(code: str):
    """ERRORS for one error code (the gateway's own codes: a bounded set)."""
    return ERRORS.labels(code)


@lru_cache(maxsize=64)
def action(name: str):
    """ACTIONS for one action."""
    return ACTIONS.labels(name)


# The data path counts through the value cells themselves: ``Counter.inc()``, ``Gauge.set()`` and
# ``Histogram.observe()`` check on every call that the metric is a child (true for these, checked
# once here), that the amount is valid and whether there is an exemplar (never), then update the same
# cells. Same cells, same exposition (in multiprocess mode too); three to five Python calls fewer each.
@lru_cache(maxsize=1024)
def request_inc(endpoint: str, route: str, residency: str, outcome: str):
    """``requests(...).inc`` as its cell's ``inc``: call it with 1."""
    child = requests(endpoint, route, residency, outcome)
    child._raise_if_not_observable()
    return child._value.inc


class Observer:
    """``histogram.observe(amount)`` for the data path, for a histogram child with no exemplars.

    prometheus-client's ``observe`` checks observability and walks the bucket bounds in Python on
    every call; this finds the bucket with ``bisect`` and increments the same value cells (the sum
    and the first bucket whose bound is >= amount), so the exposition is the same."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, histogram: Histogram):
        histogram._raise_if_not_observable()  # a parent with labels has no cells of its own
        self._bounds = tuple(histogram._upper_bounds)
        self._buckets = tuple(histogram._buckets)
        self._sum = histogram._sum

    def observe(self, amount: float) -> None:
        self._sum.inc(amount)
        i = bisect_left(self._bounds, amount)
        # the guard keeps observe's behaviour for NaN (no bucket; bisect would answer 0)
        if i < len(self._bounds) and amount <= self._bounds[i]:
            self._buckets[i].inc(1)


OVERHEAD_OBSERVER = Observer(OVERHEAD)


_audit_healthy: Gauge | None = None
_audit_healthy_lock = threading.Lock()


def set_audit_healthy(ok: bool) -> None:
    """Set ``soberana_audit_healthy`` (1 when this worker's audit log is writing; the fleet's is the
    worst worker's). The gauge is made by the first call, which the audit log makes once it has opened
    its file: made at import, a starting worker's series read 0 from its import until then, and the
    fleet's minimum said "audit unhealthy" on every rollout and worker restart. A worker whose log is
    not open yet is unknown, not unhealthy: it has no series (and it serves nothing until it is open)."""
    global _audit_healthy
    if _audit_healthy is None:
        with _audit_healthy_lock:  # (the writer thread sets it too)
            if _audit_healthy is None:
                _audit_healthy = Gauge("soberana_audit_healthy", "1 when the audit sink is writing (the worst worker)",
                                       registry=REGISTRY, multiprocess_mode="livemin")
    _audit_healthy.set(1 if ok else 0)


AUDIT_LAG._raise_if_not_observable()  # (and its multiprocess_mode, livesum, is not mostrecent)
set_audit_lag = AUDIT_LAG._value.set
"""``AUDIT_LAG.set``, as its cell's ``set``: call it with a float."""


def fleet_audit_healthy() -> bool:
    """False when any worker of a pre-forked fleet has said its audit log is not writing (its
    ``soberana_audit_healthy`` is 0); True otherwise, and always when not pre-forked (nothing to add).
    Reads only the files of the ``livemin`` gauges, not the whole exposition: readiness probes call it."""
    d = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not d:
        return True
    files = glob.glob(os.path.join(d, "gauge_livemin_*.db"))
    for metric in MultiProcessCollector.merge(files):
        if metric.name == "soberana_audit_healthy":
            return all(s.value != 0 for s in metric.samples)
    return True  # no worker has opened its log yet


def exposition() -> bytes:
    """The metrics text: this process's, or every worker's when running pre-forked."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
