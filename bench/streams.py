"""Concurrent SSE streams held by one gateway worker, and its memory; throughput with 1 and 2 workers.

    .venv/bin/python bench/streams.py [--streams 2000] [--seconds 10]

Starts `soberana stub` and `soberana serve` as separate processes on loopback, opens N concurrent
streaming chat requests (the stub trickles tokens slowly, so every stream stays open), samples the
worker's resident memory while all are open, and checks every stream ended with [DONE]. Then it
measures plain request throughput with --workers 1 and --workers 2 beside the stub alone, all in
the same run. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "sk-sob-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


def write_config(tmp: Path, stub_port: int, port: int) -> Path:
    from gateway.keys import init_keys
    from gateway.testing.harness import bundled_policies

    init_keys(tmp / "keys")
    cfg = tmp / "soberana.yaml"
    cfg.write_text(f"""\
listen: {{host: 127.0.0.1, port: {port}}}
policies: {bundled_policies()}
keys: {tmp / 'keys'}
auth:
  mode: api_key
  api_keys: [{{id: b, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, jurisdiction: BR, agency: bench}}]
upstreams:
  - {{name: br, url: "http://127.0.0.1:{stub_port}/v1", residency: BR, max_connections: 4096}}
models:
  slow: [{{upstream: br, model: stub-slow}}]
  fast: [{{upstream: br, model: m}}]
audit: {{path: {tmp / 'audit'}, fsync: batch}}
limits: {{upstream_timeout_s: 120}}
""")
    return cfg


async def hold_streams(url: str, n: int, words: int, pid: int) -> tuple[int, float, float]:
    body = orjson.dumps({"model": "slow", "stream": True,
                         "messages": [{"role": "user", "content": " ".join(["palavra"] * words)}]})
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=0)
    opened = asyncio.Event()
    count = 0
    peak = 0.0

    async def one(s: aiohttp.ClientSession) -> bool:
        nonlocal count
        async with s.post(url + "/v1/chat/completions", data=body, headers=headers) as r:
            await r.content.readline()
            count += 1
            if count == n:
                opened.set()
            rest = await r.content.read()
            return b"[DONE]" in rest

    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=300)) as s:
        t0 = time.monotonic()
        tasks = [asyncio.create_task(one(s)) for _ in range(n)]
        try:
            await asyncio.wait_for(opened.wait(), 120)
        except TimeoutError:
            pass
        open_s = time.monotonic() - t0
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.2)
        ok = sum(1 for t in tasks if not t.exception() and t.result())
    return ok, peak, open_s


async def throughput(url: str, path: str, seconds: float, conc: int, body: bytes, headers: dict) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(s):
        nonlocal done
        while time.monotonic() < stop:
            async with s.post(url + path, data=body, headers=headers) as r:
                await r.read()
                done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        await asyncio.gather(*(worker(s) for _ in range(conc)))
    return done / seconds


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--words", type=int, default=60, help="tokens per stream (the stub sends one per 50 ms)")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "gateway"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        stub_port, port = free_port(), free_port()
        stub = start(exe + ["stub", "--port", str(stub_port), "--residency", "BR"], tmp / "stub.log")
        await wait_http(f"http://127.0.0.1:{stub_port}/v1/models")
        cfg = write_config(tmp, stub_port, port)
        rows = []
        try:
            gw = start(exe + ["serve", "-c", str(cfg)], tmp / "gw.log")
            url = f"http://127.0.0.1:{port}"
            await wait_http(url + "/-/healthz")
            idle = rss_mb(gw.pid)
            ok, peak, open_s = await hold_streams(url, args.streams, args.words, gw.pid)
            rows.append(("concurrent streams, 1 worker", f"{ok}/{args.streams} completed",
                         f"RSS idle {idle:.0f} MB, peak {peak:.0f} MB", f"all open after {open_s:.1f} s"))
            body = orjson.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * 4000}]})
            h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            direct = await throughput(f"http://127.0.0.1:{stub_port}", "/v1/chat/completions",
                                      args.seconds, 32, body.replace(b'"fast"', b'"m"'), {"Content-Type": "application/json"})
            one = await throughput(url, "/v1/chat/completions", args.seconds, 32, body, h)
            stop(gw)
            gw = start(exe + ["serve", "-c", str(cfg), "--workers", "2"], tmp / "gw2.log")
            await wait_http(url + "/-/healthz")
            await asyncio.sleep(0.5)
            two = await throughput(url, "/v1/chat/completions", args.seconds, 32, body, h)
            stop(gw)
        finally:
            stop(stub)
    print(f"\n{'measure':34} {'result':26} {'memory / ratio':32} note")
    for r in rows:
        print(f"{r[0]:34} {r[1]:26} {r[2]:32} {r[3]}")
    print(f"{'stub direct, 32 conns':34} {direct:>10.0f} req/s")
    print(f"{'gateway, 1 worker, 32 conns':34} {one:>10.0f} req/s {'':15} {one / direct:.2f}× direct")
    print(f"{'gateway, 2 workers, 32 conns':34} {two:>10.0f} req/s {'':15} {two / one:.2f}× one worker")
    print("(load generator, stub and gateway share the 2 cores: ratios, not absolutes, are the result)")


if __name__ == "__main__":
    asyncio.run(main())
