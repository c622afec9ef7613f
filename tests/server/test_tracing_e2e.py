"""Tracing through the real gateway: the caller's trace continues through Soberana to the upstream, the
spans reach an OTLP collector on loopback, and no value is in them."""

from __future__ import annotations

import openai
import pytest
from aiohttp import web

from gateway.testing.harness import Harness
from gateway.tracing import parse_traceparent

pytest.importorskip("opentelemetry.sdk")

CPF = "529.982.247-25"
CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


async def test_a_traced_request_continues_the_callers_trace_to_the_upstream(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    bodies: list[bytes] = []

    async def collect(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    tracing = f"tracing: {{enabled: true, otlp_endpoint: 'http://127.0.0.1:{port}/v1/traces'}}\n"
    incoming = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"
    try:
        async with Harness(tmp_path, extra_config=tracing) as h:
            client = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["ar"], max_retries=0)
            answer = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"Mi CPF es {CPF}"}],
                extra_headers={"traceparent": incoming})
            assert CPF in answer.choices[0].message.content  # restored on the way back
            (sent,) = h.received("US")
        # leaving the harness closes the gateway, which flushes the exporter
    finally:
        await runner.cleanup()

    assert CPF not in str(sent["body"])  # the upstream saw a placeholder …
    trace_id, forward_id, _ = parse_traceparent(sent["traceparent"])  # … and the gateway's traceparent
    assert trace_id == CALLER_TRACE

    spans = []
    for body in bodies:
        assert CPF.encode() not in body
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        spans += [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    by_name = {s.name: s for s in spans}
    assert {"soberana.request", "auth", "inspect", "decide", "transform", "forward"} <= set(by_name)
    root = by_name["soberana.request"]
    assert int.from_bytes(root.trace_id, "big") == CALLER_TRACE
    assert int.from_bytes(root.parent_span_id, "big") == CALLER_SPAN
    assert int.from_bytes(by_name["forward"].span_id, "big") == forward_id
    assert all(s.trace_id == root.trace_id for s in spans)
    attrs = {kv.key: kv.value.string_value for kv in root.attributes}
    assert attrs["soberana.outcome"] == "forwarded" and attrs["soberana.residency"] == "US"
