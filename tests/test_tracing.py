"""Tracing: spans from an Exchange's stage marks, W3C trace continuation, no values in any attribute,
nothing imported when off, and the real OTLP/HTTP exporter posting to a collector on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from gateway.audit.record import build_record
from gateway.auth.principal import Principal
from gateway.config import Tracing as TracingConfig
from gateway.config import Upstream, config_from_text
from gateway.dialects.segments import Segment
from gateway.exchange import Exchange
from gateway.inspect import scan
from gateway.keys import init_keys
from gateway.tracing import Tracing, format_traceparent, parse_traceparent, plan
from gateway.yamlfile import ConfigError

otel = pytest.importorskip("opentelemetry.sdk.trace", reason="the `otel` extra is not installed")
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CPF = "123.456.789-09"  # valid check digits
EMAIL = "maria.souza@correio.gov.br"
T0 = 1_790_000_000_000_000_000
STAGES = ["start", "auth", "body", "inspect", "decide", "transform", "upstream_sent", "upstream_headers", "done"]


def marks(names=STAGES, step=1_000_000) -> list[tuple[str, int]]:
    return [(n, T0 + i * step) for i, n in enumerate(names)]


def exchange(outcome: str = "forwarded", traceparent: str | None = None, request_id: str = "9f" * 16,
             model: str = "gpt-4o-mini", sub: str = "analyst-7") -> Exchange:
    """An Exchange as the server leaves it: real text with a CPF and an e-mail, found by the real scanner."""
    ex = Exchange(request_id, "/v1/chat/completions", "openai")
    ex.traceparent = traceparent
    ex.principal = Principal(sub=sub, agency="receita-federal", jurisdiction="BR")
    ex.model = model
    text = f"Meu CPF é {CPF} e o e-mail {EMAIL}."
    ex.segments = [Segment(("messages", 0, "content"), text, "message")]
    ex.findings = [scan(text)]
    assert {f.category for f in ex.findings[0]} == {"national_id", "contact"}
    ex.decision = SimpleNamespace(decision_id="dec-0001", route=SimpleNamespace(upstream="openai", residency="US"),
                                  destination="foreign", rules=["br.pseudonymize_abroad"], policy_revision="rev-7")
    ex.outcome = outcome
    if outcome in ("forwarded", "upstream_error"):
        ex.route = SimpleNamespace(cfg=Upstream(name="openai", url="http://127.0.0.1:9/v1", residency="US"))
        ex.upstream_status = 200 if outcome == "forwarded" else 502
    if outcome != "forwarded":
        ex.error = {"blocked": "policy_blocked", "upstream_error": "upstream_error"}.get(outcome, "bad_request")
    ex.marks = marks()
    return ex


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    t = Tracing(1.0, SimpleSpanProcessor(exporter), Resource.create({"service.name": "soberana-test"}))
    yield t, exporter
    t.shutdown()


def by_name(spans) -> dict:
    return {s.name: s for s in spans}


def test_spans_follow_the_marks_with_the_request_span_as_parent(traced):
    t, exporter = traced
    ex = exchange()
    t.emit(ex)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["soberana.request", "auth", "body", "inspect", "decide", "transform", "forward"]
    root = spans[0]
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert (root.start_time, root.end_time) == (T0, T0 + 8_000_000)
    for s in spans[1:]:
        assert s.context.trace_id == root.context.trace_id
        assert s.parent.span_id == root.context.span_id
    assert len({s.context.span_id for s in spans}) == len(spans)
    got = by_name(spans)
    assert (got["auth"].start_time, got["auth"].end_time) == (T0, T0 + 1_000_000)
    assert (got["transform"].start_time, got["transform"].end_time) == (T0 + 4_000_000, T0 + 5_000_000)
    fwd = got["forward"]
    assert fwd.kind is SpanKind.CLIENT and (fwd.start_time, fwd.end_time) == (T0 + 5_000_000, T0 + 8_000_000)
    assert [(e.name, e.timestamp) for e in fwd.events] == [("upstream_sent", T0 + 6_000_000), ("upstream_headers", T0 + 7_000_000)]
    assert fwd.attributes["http.response.status_code"] == 200 and fwd.attributes["soberana.route"] == "openai"
    a = root.attributes
    assert a["soberana.findings.national_id"] == 1 and a["soberana.findings.contact"] == 1 and a["soberana.findings.total"] == 2
    assert a["soberana.request_id"] == "9f" * 16 and a["soberana.outcome"] == "forwarded"
    assert a["soberana.route"] == "openai" and a["soberana.residency"] == "US"
    assert a["soberana.policy.revision"] == "rev-7" and a["soberana.decision.id"] == "dec-0001"
    assert a["soberana.upstream.status"] == 200 and a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["soberana.principal.agency"] == "receita-federal" and a["soberana.endpoint"] == "/v1/chat/completions"
    assert root.status.status_code is StatusCode.UNSET


def test_upstream_traceparent_names_the_forward_span_of_each_try(traced):
    t, exporter = traced
    ex = exchange()
    headers = [t.upstream_traceparent(ex), t.upstream_traceparent(ex)]  # a retry
    ex.marks = marks(STAGES[:6] + ["upstream_sent", "upstream_headers", "upstream_sent", "upstream_headers", "done"])
    t.emit(ex)
    spans = exporter.get_finished_spans()
    root, fwd = spans[0], [s for s in spans if s.name == "forward"]
    assert len(fwd) == 2
    for header, span in zip(headers, fwd):
        trace_id, span_id, flags = parse_traceparent(header)
        assert (trace_id, span_id, flags) == (root.context.trace_id, span.context.span_id, 1)
    # tries are contiguous: the first ends where the retry was sent, the last at "done"
    assert fwd[0].start_time == T0 + 5_000_000 and fwd[0].end_time == fwd[1].start_time == T0 + 8_000_000
    assert fwd[1].end_time == T0 + 10_000_000
    assert [s.attributes["soberana.try"] for s in fwd] == [0, 1]
    assert "http.response.status_code" not in fwd[0].attributes and root.attributes["soberana.tries"] == 2


def test_incoming_traceparent_continues_the_trace(traced):
    t, exporter = traced
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ex = exchange(traceparent=incoming)
    header = t.upstream_traceparent(ex)
    t.emit(ex)
    root = exporter.get_finished_spans()[0]
    assert root.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert root.parent.span_id == 0x00F067AA0BA902B7 and root.parent.is_remote
    assert header.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and header.endswith("-01")


def test_an_unsampled_caller_is_not_traced_but_its_trace_id_travels_on(traced):
    t, exporter = traced
    ex = exchange(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    header = t.upstream_traceparent(ex)
    t.emit(ex)
    assert exporter.get_finished_spans() == ()
    assert header.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and header.endswith("-00")


@pytest.mark.parametrize("bad", [
    "", "junk", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # 00 has no extra fields
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
    "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
    "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
])
def test_an_invalid_traceparent_starts_a_new_trace(traced, bad):
    t, exporter = traced
    ex = exchange(traceparent=bad)
    t.emit(ex)
    root = exporter.get_finished_spans()[0]
    assert root.parent is None and root.context.trace_id not in (0, 0x4BF92F3577B34DA6A3CE929D0E0E4736)
    assert parse_traceparent(bad) is None


def test_traceparent_parsing_and_formatting():
    assert parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)
    # a later version may carry more fields after a '-'
    assert parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-ab") == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 3)
    assert parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03ab") is None
    s = format_traceparent(5, 6, True)
    assert s == "00-00000000000000000000000000000005-0000000000000006-01" and parse_traceparent(s) == (5, 6, 1)


def _strings(span) -> list[str]:
    out = [span.name, span.status.description or ""]
    for v in list(span.attributes.values()) + [a for e in span.events for a in (e.attributes or {}).values()]:
        out.extend(v if isinstance(v, (list, tuple)) else [v])
    out.extend(str(v) for v in span.resource.attributes.values())
    return [str(v) for v in out]


@pytest.mark.parametrize("with_record", [True, False], ids=["with_audit_record", "exchange_only"])
def test_no_attribute_holds_a_value_even_when_the_client_put_one_in_its_own_strings(traced, tmp_path, with_record):
    t, exporter = traced
    # the client chose the request id, the model name and (through its IdP) the subject
    ex = exchange(outcome="blocked", request_id=CPF, model=f"gpt for {EMAIL}", sub=EMAIL)
    ex.error = "policy_blocked"
    record = build_record(ex, init_keys(tmp_path / "keys")) if with_record else None
    t.upstream_traceparent(ex)
    t.emit(ex, record)
    spans = exporter.get_finished_spans()
    assert spans and spans[0].attributes["soberana.findings.total"] == 2
    digits = CPF.replace(".", "").replace("-", "")
    for span in spans:
        for s in _strings(span):
            assert CPF not in s and EMAIL not in s and digits not in s.replace(".", "").replace("-", ""), (span.name, s)
            assert scan(s) == [], (span.name, s)
    a = spans[0].attributes
    if with_record:  # the audit record's keyed fingerprints stand in for the client's strings
        assert a["soberana.request_id"].startswith("fp:") and a["soberana.principal.sub"].startswith("fp:")
    else:
        assert "soberana.request_id" not in a and "soberana.principal.sub" not in a
    assert a["soberana.principal.agency"] == "receita-federal"


@pytest.mark.parametrize("outcome,code", [("blocked", StatusCode.ERROR), ("rejected", StatusCode.ERROR),
                                          ("upstream_error", StatusCode.ERROR), ("forwarded", StatusCode.UNSET),
                                          ("client_abort", StatusCode.UNSET)])
def test_status_is_error_for_refused_and_failed_requests(traced, outcome, code):
    t, exporter = traced
    t.emit(exchange(outcome=outcome))
    root = exporter.get_finished_spans()[0]
    assert root.status.status_code is code
    if code is StatusCode.ERROR:
        assert root.status.description == root.attributes["soberana.error"]


def test_sample_ratio_zero_keeps_no_new_trace_but_follows_a_sampled_caller():
    exporter = InMemorySpanExporter()
    t = Tracing(0.0, SimpleSpanProcessor(exporter), Resource.create({}))
    t.emit(exchange())
    assert exporter.get_finished_spans() == ()
    t.emit(exchange(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
    assert len(exporter.get_finished_spans()) == 7


def test_a_rejected_request_without_upstream_marks_has_no_forward_span(traced):
    t, exporter = traced
    ex = exchange(outcome="rejected")
    ex.marks = marks(["start", "auth", "done"])
    t.emit(ex)
    assert [s.name for s in exporter.get_finished_spans()] == ["soberana.request", "auth"]
    assert plan(marks(["start", "done"])) == ([], [])


def test_emit_never_raises_and_logs_no_value(caplog):
    class Broken:
        def on_end(self, span):
            raise ValueError(f"cannot export {CPF}")

        def shutdown(self):
            pass

    t = Tracing(1.0, Broken(), Resource.create({}))
    t.emit(exchange(request_id=CPF))
    assert "ValueError" in caplog.text and CPF not in caplog.text


def test_config_section_is_validated():
    cfg = config_from_text("auth: {mode: none}\ntracing: {enabled: true, sample_ratio: 0.25, headers: {authorization: Bearer x}}\n")
    assert cfg.tracing.enabled and cfg.tracing.sample_ratio == 0.25
    assert cfg.tracing.otlp_endpoint == "http://127.0.0.1:4318/v1/traces"
    for bad, field in [("sample_ratio: 1.5", "sample_ratio"), ("otlp_endpoint: ftp://x", "otlp_endpoint"),
                       ("colour: red", "colour")]:
        with pytest.raises(ConfigError) as e:
            config_from_text(f"auth: {{mode: none}}\ntracing:\n  {bad}\n", "gw.yaml")
        assert "gw.yaml:3" in str(e.value) and field in str(e.value)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_disabled_tracing_is_a_no_op_that_imports_no_sdk():
    out = _run("""
        import sys
        from gateway.config import Tracing as TC
        from gateway.exchange import Exchange
        from gateway.tracing import Tracing
        t = Tracing.from_config(TC())
        ex = Exchange("r", "/v1/chat/completions", "openai")
        ex.marks = [("start", 1), ("done", 2)]
        assert not t.enabled and t.upstream_traceparent(ex) is None
        t.emit(ex)
        assert ex.trace is None
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_packages_turn_tracing_off_with_one_warning():
    out = _run("""
        import logging, sys
        sys.modules["opentelemetry"] = None  # as if the `otel` extra were not installed
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        from gateway.config import Tracing as TC
        from gateway.tracing import Tracing
        t = Tracing.from_config(TC(enabled=True))
        print("enabled", t.enabled)
    """)
    assert out.returncode == 0, out.stderr
    assert "enabled False" in out.stdout
    assert out.stderr.count("WARNING") == 1 and "soberana[otel]" in out.stderr


async def test_the_real_exporter_posts_otlp_protobuf_to_a_collector():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list = []

    async def collect(request: web.Request) -> web.Response:
        received.append((request.headers.copy(), await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        cfg = TracingConfig(enabled=True, otlp_endpoint=f"http://127.0.0.1:{port}/v1/traces",
                            service_name="soberana-it", headers={"authorization": "Bearer collector-token"})
        t = Tracing.from_config(cfg, worker=3)
        assert t.enabled
        ex = exchange()
        header = t.upstream_traceparent(ex)
        t.emit(ex)
        await t.close()  # flushes the batch from the exporter's thread while this loop serves the POST
    finally:
        await runner.cleanup()
    assert received, "the collector got nothing"
    headers, body = received[0]
    assert headers["Content-Type"] == "application/x-protobuf" and headers["authorization"] == "Bearer collector-token"
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    (rs,) = req.resource_spans
    res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert res["service.name"] == "soberana-it" and res["service.instance.id"].endswith("-3")
    spans = [s for ss in rs.scope_spans for s in ss.spans]
    assert sorted(s.name for s in spans) == sorted(["soberana.request", "auth", "body", "inspect", "decide", "transform", "forward"])
    fwd = next(s for s in spans if s.name == "forward")
    assert header == format_traceparent(int.from_bytes(fwd.trace_id, "big"), int.from_bytes(fwd.span_id, "big"), True)
    assert CPF.encode() not in body and EMAIL.encode() not in body
