"""The cost of tracing on the event loop, per request, against tracing off, same run.

    .venv/bin/python bench/tracing.py [--requests 20000] [--repeat 5]

Each "request" is an Exchange as the server leaves it (a CPF and an e-mail found, a routed decision,
the nine stage marks of one upstream try). Rows: what the event-loop thread pays per request for
``upstream_traceparent`` + ``emit`` (a) with tracing off, (b) on with sample_ratio 0 (ids chosen, no
span), (c) on and sampled into a BatchSpanProcessor whose exporter encodes each batch to OTLP protobuf
and drops it (that thread's CPU is not the loop's and is shown separately, per request). Best of
``--repeat``; loop CPU is the calling thread's CPU time (``time.thread_time``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.auth.principal import Principal  # noqa: E402
from gateway.config import Upstream  # noqa: E402
from gateway.dialects.segments import Segment  # noqa: E402
from gateway.exchange import Exchange  # noqa: E402
from gateway.inspect import scan  # noqa: E402
from gateway.tracing import Tracing  # noqa: E402

STAGES = ["start", "auth", "body", "inspect", "decide", "transform", "upstream_sent", "upstream_headers", "done"]
TEXT = "Meu CPF é 123.456.789-09 e o e-mail maria.souza@correio.gov.br."
FINDINGS = [scan(TEXT)]
UPSTREAM = SimpleNamespace(cfg=Upstream(name="openai", url="http://127.0.0.1:9/v1", residency="US"))
DECISION = SimpleNamespace(decision_id="dec-1", route=None, destination="foreign", rules=["br.x"], policy_revision="r1")
PRINCIPAL = Principal(sub="analyst-7", agency="receita-federal", jurisdiction="BR")


def exchange(i: int) -> Exchange:
    ex = Exchange(f"{i:032x}", "/v1/chat/completions", "openai")
    ex.principal, ex.model, ex.decision, ex.route = PRINCIPAL, "gpt-4o-mini", DECISION, UPSTREAM
    ex.segments, ex.findings, ex.outcome, ex.upstream_status = [Segment(("m",), TEXT, "message")], FINDINGS, "forwarded", 200
    t = time.time_ns()
    ex.marks = [(n, t + k * 1000) for k, n in enumerate(STAGES)]
    return ex


def thread_cpu(name_prefix: str) -> float:
    # per-thread CPU of the export thread, from /proc (Linux); 0 where unavailable
    total = 0.0
    for th in threading.enumerate():
        if th.name.startswith(name_prefix) and th.native_id:
            try:
                fields = Path(f"/proc/self/task/{th.native_id}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / 100  # utime + stime, clock ticks
            except OSError:
                pass
    return total


def run(t: Tracing, n: int) -> float:
    exs = [exchange(i) for i in range(n)]
    c0 = time.thread_time()
    for ex in exs:
        t.upstream_traceparent(ex)
        t.emit(ex)
    return (time.thread_time() - c0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    class Drop(SpanExporter):
        """Encodes each batch as the OTLP/HTTP exporter does, then drops it (no network in a bench)."""

        def export(self, spans):
            encode_spans(spans).SerializePartialToString()
            return SpanExportResult.SUCCESS

    resource = Resource.create({"service.name": "bench"})
    rows = []
    off = Tracing()
    rows.append(("off", min(run(off, args.requests) for _ in range(args.repeat)), None))
    unsampled = Tracing(0.0, BatchSpanProcessor(Drop()), resource)
    rows.append(("on, sample_ratio 0", min(run(unsampled, args.requests) for _ in range(args.repeat)), None))
    unsampled.shutdown()
    on = Tracing(1.0, BatchSpanProcessor(Drop(), max_queue_size=1 << 20), resource)
    best = min(run(on, args.requests) for _ in range(args.repeat))
    cpu = thread_cpu("OtelBatch")
    on.shutdown()
    rows.append(("on, sampled (7 spans)", best, cpu / (args.requests * args.repeat) * 1e6 if cpu else None))
    print(f"{'tracing':<24}{'loop CPU µs/request':>22}{'export CPU µs/request':>24}")
    for name, us, exp in rows:
        print(f"{name:<24}{us:>22.2f}{(f'{exp:.1f}' if exp is not None else '-'):>24}")


if __name__ == "__main__":
    main()
