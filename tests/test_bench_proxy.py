"""bench/proxy.py: the rounds it measures are compared within each round, and the scan relay (the floor
under any inspecting gateway) inspects what it relays."""

import asyncio
import importlib.util
import socket
from pathlib import Path

import pytest

pytest.importorskip("orjson")  # bench/proxy.py's relays import the gateway

_spec = importlib.util.spec_from_file_location("bench_proxy", Path(__file__).resolve().parents[1] / "bench" / "proxy.py")
proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(proxy)


def _target(name, pid, rounds):
    t = proxy.Target(name, "http://x", False, pid)
    t.rounds = [{"rps": rps, "p50": p50, "p99": 2 * p50, "cpu_s": cpu, "requests": n, "errors": 0, "socket": ""}
                for rps, p50, cpu, n in rounds]
    return t


def test_ratios_and_added_latency_are_taken_within_each_round():
    # a slow spell in round 2 slows every path: compared within the round, the ratio holds steady,
    # while the ratio of the medians over rounds would not
    direct = _target("direct", None, [(12000, 0.10, 0, 1), (6000, 0.40, 0, 1), (12000, 0.11, 0, 1)])
    nginx = _target("nginx", 1, [(10000, 0.17, 1.0, 20000), (5000, 0.50, 1.0, 10000), (10000, 0.18, 1.0, 20000)])
    gw = _target("gateway", 2, [(4000, 0.35, 2.0, 8000), (1000, 0.65, 1.0, 1000), (4200, 0.36, 2.0, 8400)])
    rows = {r["path"]: r for r in proxy.summarize([direct, nginx, gw])}

    med, lo, hi = rows["gateway"]["ratio"]
    assert (lo, med, hi) == pytest.approx((0.2, 0.4, 0.42))
    med, lo, hi = rows["gateway"]["added"]
    assert (lo, med, hi) == pytest.approx((0.25, 0.25, 0.25))
    assert rows["nginx"]["added"][0] == pytest.approx(0.07)
    assert rows["direct"]["added"] is None and rows["direct"]["cpu_us"] is None
    # CPU per request over all rounds: total CPU over total requests, not a median of rounds
    assert rows["gateway"]["cpu_us"] == pytest.approx(5.0 / 17400 * 1e6)
    assert rows["gateway"]["rps"] == 4000 and rows["gateway"]["p50"] == 0.36

    text = proxy.table(list(rows.values()), 3)
    assert "| gateway | 4,000 | 0.40 (0.20–0.42) | 0.360 ms |" in text
    assert "+0.250 ms (+0.250 … +0.250)" in text


def test_without_baselines_the_rows_have_no_ratio():
    rows = proxy.summarize([_target("gateway", 2, [(4000, 0.35, 2.0, 8000)])])
    assert rows[0]["ratio"] is None and rows[0]["added"] is None
    assert "| gateway | 4,000 | — | 0.350 ms | 0.700 ms | — |" in proxy.table(rows, 1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _post(port, body):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    data = await reader.readexactly(length)
    writer.close()
    return head, data


async def test_the_scan_relay_relays_and_scans_the_request_and_the_answer(monkeypatch):
    from gateway.inspect import _scan_py
    from gateway.testing.stub import start_stub

    stub = await start_stub()
    scanned = []
    import gateway.inspect
    import gateway.transform.leaks as leaks

    def spy(text):
        scanned.append(text)
        return _scan_py.scan(text)

    monkeypatch.setattr(gateway.inspect, "scan", spy)
    monkeypatch.setattr(leaks, "scan", spy)
    port = _free_port()
    task = asyncio.create_task(proxy.server_relay(stub.url, port, inspect=True))
    try:
        for _ in range(100):
            try:
                (await asyncio.open_connection("127.0.0.1", port))[1].close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        head, data = await _post(port, proxy.chat_body(1024))
        assert head.startswith(b"HTTP/1.1 200")
        assert b"You said" in data
        # the system message, the user message, then the answer's text (which quotes the user message)
        assert len(scanned) == 3
        assert scanned[0] == "Resuma em uma frase."
        assert scanned[1] in scanned[2]
    finally:
        task.cancel()
        await stub.close()
