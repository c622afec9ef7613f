"""What the data path's HTTP server costs per request, beside aiohttp's and a bare httptools protocol.

Each server runs in its own process on uvloop and answers a 4 KB POST with a small JSON body after
reading the whole request:

  raw       a bare asyncio protocol + httptools, answering inside ``data_received`` (the floor)
  raw-task  the same, but answering from one task per request (what any async handler needs)
  http      gateway.server.http.HttpServer with a trivial async handler
  aiohttp   aiohttp's low-level server (``aiohttp.web.Server``) with the same handler

Load: ``wrk -t1 -c32`` with a Lua script for the POST (throughput and the server process's CPU
time per request, from /proc), then ``wrk -t1 -c1`` for the median latency; several interleaved
rounds, medians in the table (on a shared machine single runs swing by 2x; CPU µs/req is the
steadiest figure).

    .venv/bin/python bench/http_server.py                 # 3 rounds of 5 s per server
    .venv/bin/python bench/http_server.py --duration 10 --only http,aiohttp
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("raw", "raw-task", "http", "aiohttp")
ANSWER = b'{"id":"bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}'


# --- the servers (run with --serve KIND --port N) ------------------------------------------------------
def serve(kind: str, port: int) -> None:
    import uvloop

    uvloop.install()
    asyncio.run(_serve(kind, port))


async def _serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if kind == "http":
        sys.path.insert(0, str(ROOT))
        from gateway.server.http import HttpServer, Response

        async def handler(req):
            return Response(200, ANSWER)

        def errors(req, status, code, message):
            return Response(status, b'{"error":"%s"}' % code.encode())

        server = HttpServer(handler, error_response=errors, max_body_bytes=1 << 20, header_timeout=10,
                            body_timeout=30)
        await server.start("127.0.0.1", port)
    elif kind == "aiohttp":
        from aiohttp import web

        async def handler(request):
            await request.read()
            return web.Response(body=ANSWER, content_type="application/json")

        srv = web.Server(handler, access_log=None)
        await loop.create_server(srv, "127.0.0.1", port, backlog=2048)
    else:
        await loop.create_server(lambda: _Raw(kind == "raw-task"), "127.0.0.1", port, backlog=2048)
    await asyncio.Event().wait()


class _Raw(asyncio.Protocol):
    """The least an asyncio HTTP/1.1 server can do: parse, gather the body, answer."""

    def __init__(self, task: bool):
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.task = task
        self.parts: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.parser.feed_data(data)

    def on_body(self, body):
        self.parts.append(body)

    def on_message_complete(self):
        b"".join(self.parts)
        self.parts = []
        if self.task:
            asyncio.get_running_loop().create_task(self.answer())
        else:
            self._write()

    async def answer(self):
        self._write()

    def _write(self):
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(ANSWER), ANSWER))


# --- measuring ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}"), timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not come up")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(port: int, lua: Path, connections: int, duration: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua),
                          f"http://127.0.0.1:{port}/v1/chat/completions"], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))}


def start(kind: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], cwd=ROOT)
    wait_up(port, proc)
    return proc, port


def measure(kind: str, proc: subprocess.Popen, port: int, lua: Path, args) -> dict:
    wrk(port, lua, args.connections, 1)  # warm up
    cpu0 = cpu_seconds(proc.pid)
    load = wrk(port, lua, args.connections, args.duration)
    cpu = cpu_seconds(proc.pid) - cpu0
    latency = wrk(port, lua, 1, args.latency_duration)
    row = {"server": kind, "rps": load["rps"], "cpu_us": cpu / load["requests"] * 1e6, "p50": latency["p50"]}
    print(f"  {kind:9} {row['rps']:9.0f} req/s   {row['cpu_us']:6.1f} µs CPU/req   p50 (1 conn) {row['p50']:.3f} ms",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds of load per server and round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians (default 3)")
    ap.add_argument("--latency-duration", type=int, default=3, help="seconds of 1-connection load (default 3)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--only", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if not shutil.which("wrk"):
        print("bench/http_server.py needs wrk", file=sys.stderr)
        return 2
    kinds = [k for k in args.only.split(",") if k]
    with tempfile.TemporaryDirectory(prefix="soberana-http-bench-") as tmp:
        body = Path(tmp, "body.json")
        body.write_bytes(b'{"model":"stub-model","messages":[{"role":"user","content":"' + b"a" * 4000 + b'"}]}')
        lua = Path(tmp, "post.lua")
        lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                       f'wrk.headers["Authorization"] = "Bearer sk-bench"\n'
                       f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
        print(f"bench/http_server.py: {os.cpu_count()} CPUs, {body.stat().st_size}-byte POST, "
              f"wrk -t1 -c{args.connections} -d{args.duration}s, servers on uvloop, "
              f"median of {args.rounds} rounds", flush=True)
        servers = {k: start(k) for k in dict.fromkeys(kinds)}
        runs: dict[str, list[dict]] = {k: [] for k in servers}
        try:
            for n in range(args.rounds):  # interleaved rounds: a noisy neighbour hurts every server alike
                print(f"round {n + 1}/{args.rounds}", flush=True)
                for k, (proc, port) in servers.items():
                    runs[k].append(measure(k, proc, port, lua, args))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(5)
    rows = [{"server": k, **{f: statistics.median(r[f] for r in rs) for f in ("rps", "cpu_us", "p50")}}
            for k, rs in runs.items()]
    base = next((r for r in rows if r["server"] == "raw"), None)
    print("\n| server | req/s | vs raw | CPU µs/req | p50 (1 conn) |\n|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['rps'] / base['rps']:.0%}" if base else "—"
        print(f"| {r['server']} | {r['rps']:,.0f} | {ratio} | {r['cpu_us']:.1f} | {r['p50']:.3f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
