"""Limits a hostile client cannot get around, error shapes, and the ops endpoints — over raw HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from gateway.testing.harness import Harness


@pytest.fixture
async def gw(tmp_path):
    async with Harness(tmp_path, limits={"max_body_bytes": 65536, "header_timeout_s": 0.5, "body_timeout_s": 0.5}) as h:
        yield h


def auth(h: Harness) -> dict:
    return {"Authorization": f"Bearer {h.keys['br']}"}


async def test_unknown_paths_are_404_in_the_callers_dialect(gw):
    async with aiohttp.ClientSession() as s:
        for method, path in (("GET", "/"), ("POST", "/v1/files"), ("POST", "/v1/chat/completions/../x"),
                             ("GET", "/v1/chat/completions"), ("POST", "/v2/chat/completions")):
            async with s.request(method, gw.url + path, headers=auth(gw), data=b"{}") as r:
                assert r.status in (404, 405), path
                if r.status == 404:
                    assert (await r.json())["error"]["code"] == "not_found"
        async with s.post(gw.url + "/v1/nope", headers={"x-api-key": gw.keys["br"], "anthropic-version": "2023-06-01"}) as r:
            body = await r.json()
            assert r.status == 404 and body["type"] == "error"


async def test_body_too_large_is_413_declared_or_streamed(gw):
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"a" * 70000 + b'"}]}'
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=big) as r:
            assert r.status == 413
            assert (await r.json())["error"]["code"] == "payload_too_large"

        async def chunks():  # chunked: no Content-Length to refuse early, counted as it streams in
            for _ in range(20):
                yield b"x" * 8192

        async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=chunks()) as r:
            assert r.status == 413
    assert gw.received("US") == [] and gw.received("BR") == []


async def test_malformed_json_is_400(gw):
    async with aiohttp.ClientSession() as s:
        for body in (b"{not json", b"[1, 2]", b'{"model": "gpt-4o-mini", "messages": "nope"}'):
            async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=body) as r:
                assert r.status == 400, body
                assert (await r.json())["error"]["code"] == "invalid_request"


async def test_slow_headers_are_cut_off(gw):
    port = int(gw.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=5)  # EOF once the deadline closes it
    assert data == b""
    writer.close()


async def test_slow_body_is_cut_off(gw):
    port = int(gw.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gw.keys["br"].encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=5)
    assert data.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_classification_header_raises_never_lowers_and_rejects_garbage(gw):
    async with aiohttp.ClientSession() as s:
        body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]})
        async with s.post(gw.url + "/v1/chat/completions", headers={**auth(gw), "X-Data-Classification": "top"}, data=body) as r:
            assert r.status == 400
        async with s.post(gw.url + "/v1/chat/completions", headers={**auth(gw), "X-Data-Classification": "public"}, data=body) as r:
            assert r.status == 200


async def test_ops_endpoints(gw):
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/-/healthz") as r:
            assert r.status == 200
        async with s.get(gw.url + "/-/readyz") as r:
            assert r.status == 200 and (await r.json())["checks"]["audit"] is True
        body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "CPF 123.456.789-09"}]})
        async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=body) as r:
            assert r.status == 200
        async with s.get(gw.url + "/-/metrics") as r:
            text = await r.text()
        assert 'soberana_findings_total{detector="br.cpf"}' in text
        assert "soberana_requests_total" in text and "123.456.789-09" not in text and "12345678909" not in text
        async with s.post(gw.url + "/-/explain", headers=auth(gw), data=body) as r:
            assert r.status == 200
            explained = orjson.dumps(await r.json()).decode()
        assert "br.cpf" in explained and "123.456.789-09" not in explained


async def test_a_body_refused_by_the_server_is_audited_and_limits_follow_a_reload(gw):
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"a" * 30000 + b'"}]}'
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=big) as r:
            assert r.status == 200  # under the 65536 limit the gateway started with
        text = gw.config_path.read_text()
        gw.config_path.write_text(text.replace("max_body_bytes: 65536", "max_body_bytes: 20000"))
        ok, _ = await gw.holder.reload()
        assert ok
        async with s.post(gw.url + "/v1/chat/completions", headers=auth(gw), data=big) as r:
            assert r.status == 413  # the reloaded limit applies from the next request
    await asyncio.sleep(0.1)  # records are chained at the end of the loop's turn
    recs = [orjson.loads(x) for f in gw.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]
    assert [r["outcome"] for r in recs][-2:] == ["forwarded", "rejected"]
    assert recs[-1]["error"] == "payload_too_large" and recs[-1]["endpoint"] == "/v1/chat/completions"


async def test_a_json_answer_over_max_answer_bytes_is_a_502_and_the_next_request_is_served(tmp_path):
    async with Harness(tmp_path, limits={"max_answer_bytes": 4096}) as h:
        async with aiohttp.ClientSession() as s:
            for size, status in ((8000, 502), (100, 200)):  # the stub quotes the message in its answer
                body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "a" * size}]}
                async with s.post(h.url + "/v1/chat/completions", headers=auth(h), json=body) as r:
                    assert r.status == status
                    if status == 502:
                        assert (await r.json())["error"]["code"] == "upstream_error"
        await asyncio.sleep(0.1)  # records are chained at the end of the loop's turn
        recs = [orjson.loads(x) for f in h.audit_files() for x in f.read_bytes().splitlines() if b'"request_id"' in x]
        assert [r["outcome"] for r in recs] == ["upstream_error", "forwarded"]


async def test_connections_past_max_connections_are_answered_503_and_closed(tmp_path):
    """A flood of connections cannot take the worker: past limits.max_connections a new one gets a 503
    `overloaded` with Retry-After at once, unread, and is closed; the connections already open are
    served, and a closed one frees its slot. A reload changes the cap for the next connections."""
    from gateway import metrics

    async with Harness(tmp_path, limits={"max_connections": 3}) as h:
        host, port = h.url.split("//")[1].split(":")
        refused = metrics.CONNECTIONS_REFUSED._value.get()
        held = [await asyncio.open_connection(host, int(port)) for _ in range(3)]
        await asyncio.sleep(0.1)  # (accepted)
        reader, writer = await asyncio.open_connection(host, int(port))
        answer = await asyncio.wait_for(reader.read(), 5)  # to the end: the gateway closed it
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head and b"Connection: close" in head
        assert orjson.loads(body)["error"]["code"] == "overloaded"
        assert metrics.CONNECTIONS_REFUSED._value.get() == refused + 1

        # a connection that was let in is served as usual
        r0, w0 = held[0]
        w0.write(f"GET /-/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert (await asyncio.wait_for(r0.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
        # one closed frees its slot for the next
        held[1][1].close()
        await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as s:
            async with s.get(h.url + "/-/healthz") as r:
                assert r.status == 200
        await asyncio.sleep(0.1)
        # the reloaded cap applies from the next connection
        h.config_path.write_text(h.config_path.read_text().replace("max_connections: 3", "max_connections: 1"))
        ok, _ = await h.holder.reload()
        assert ok
        reader, writer = await asyncio.open_connection(host, int(port))
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 503")
        writer.close()
        for _, w in held:
            w.close()
