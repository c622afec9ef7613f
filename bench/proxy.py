"""What the gateway costs on the forwarding path: requests/s and added latency, beside baselines.

In one run, against one fast upstream (the `soberana stub` model, its own process):
  direct   the load generator talks to the stub
  nginx    nginx `proxy_pass` with upstream keep-alive, one worker (when /usr/sbin/nginx exists)
  relay    the gateway's own HTTP server (gateway.server.http) + the pooled upstream client
           (gateway.forward.client) and nothing else: the floor under the gateway; `raw-relay` is a
           bare asyncio+httptools protocol with the same client, `session` aiohttp's server with
           aiohttp.ClientSession (optional rows, see --only)
  scan-relay  the relay plus the inspection no inspecting gateway can skip: the request parsed and its
           texts scanned, the answer parsed and its texts scanned (the gateway's own functions), and
           nothing else (no auth, policy, audit, metrics): the floor under any gateway that inspects
  gateway  `soberana serve -c <generated config>` (one worker), auth api_key (or none), one upstream

Load: `wrk` with a Lua script for the POST when installed, else a bounded asyncio load generator in a
separate process (this file with --loadgen). A 4 KB chat body without sensitive data (or, with --pii,
one with a CPF and an e-mail, so the gateway also pseudonymizes and restores). Throughput at
--connections (default 32); latency percentiles at 1 connection. Targets: gateway ≥ 70% of nginx
req/s, added median latency < 0.3 ms.

While it runs, the bench holds /dev/cpu_dma_latency at 0 when it may (root; the standard latency
tuning that cyclictest and tuned's latency-performance profile apply): idle CPUs poll instead of
halting. On a virtual machine a halted vCPU is woken through the hypervisor, and at 1 connection every
hop of a request waits on such a wake-up, so without the hold the host's own scheduling sets most of
the latency figures (medians that double from one minute to the next). Every path runs under the
same setting; --allow-idle measures without it.

Every path is started first and stays up; then --rounds rounds each measure every path in turn
(throughput, then latency), so a slow spell of the host lands on all paths alike. A ratio to nginx
and an added latency (path's median minus direct's) are computed within each round; the table shows
their median over the rounds, and their range.

    .venv/bin/python bench/proxy.py                      # all paths, 5 rounds: 10 s of load and 5 s at 1 connection each
    .venv/bin/python bench/proxy.py --duration 5 --only direct,gateway --auth none
    .venv/bin/python bench/proxy.py --profile /tmp/gw.svg    # py-spy flame graph of the gateway under load
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
API_KEY = "sk-sob-bench-" + "x" * 24
NGINX = "/usr/sbin/nginx"

PARAGRAPH = ("O relatório trimestral da secretaria descreve a execução orçamentária dos programas de saúde, "
             "educação e infraestrutura, com metas cumpridas na maior parte dos municípios e atrasos pontuais "
             "nas obras de saneamento. El informe también resume los acuerdos de cooperación regional. ")


def chat_body(size: int = 4096, pii: bool = False) -> bytes:
    """A chat completion request of about ``size`` bytes."""
    text = ""
    if pii:
        text = "Contribuinte CPF 529.982.247-25, contato ana.souza@example.gov.br. "
    while len(text.encode()) < size - 200:
        text += PARAGRAPH
    body = {"model": "stub-model", "messages": [{"role": "system", "content": "Resuma em uma frase."},
                                                {"role": "user", "content": text}]}
    return json.dumps(body, ensure_ascii=False).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout:g} s")


def post(url: str, body: bytes, auth: bool) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", f"Bearer {API_KEY}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- the processes -----------------------------------------------------------------------------------------
class Procs:
    """Processes this run started; stopped by their own pid, never by name."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, **kw) -> subprocess.Popen:
        f = open(log, "wb")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p)


def start_stub(procs: Procs, tmp: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    p = procs.start([PY, "-m", "gateway", "stub", "--port", str(port), "--residency", "BR"], tmp / "stub.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v1/models", proc=p)
    return url, p


def start_nginx(procs: Procs, tmp: Path, upstream: str, workers: int = 1) -> str | None:
    if not os.path.exists(NGINX):
        return None
    port = free_port()
    host_port = upstream.split("//", 1)[1]
    conf = tmp / "nginx.conf"
    conf.write_text(f"""\
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    client_body_buffer_size 64k;
    upstream stub {{ server {host_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
    p = procs.start([NGINX, "-p", str(tmp), "-c", str(conf)], tmp / "nginx.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v1/models", proc=p)
    return url


def gateway_config(tmp: Path, upstream: str, port: int, auth: str) -> Path:
    """The config `soberana serve` runs with: one upstream (the stub), the bundled policies."""
    if auth == "api_key":
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        auth_yaml = f"""auth:
  mode: api_key
  api_keys:
    - {{id: bench, sha256: {digest}, jurisdiction: BR, agency: bench}}"""
    else:
        auth_yaml = "auth: {mode: none}"
    path = tmp / "soberana.yaml"
    path.write_text(f"""\
listen: {{host: 127.0.0.1, port: {port}}}
jurisdiction: BR
policies: {ROOT / 'policies'}
keys: {tmp / 'keys'}
{auth_yaml}
upstreams:
  - {{name: br-stub, url: "{upstream}/v1", dialect: openai, residency: BR}}
models:
  stub-model:
    - {{upstream: br-stub, model: stub-model}}
audit: {{path: {tmp / 'audit'}, checkpoint_every: 1000, checkpoint_seconds: 60, fsync: batch}}
""")
    return path


def start_gateway(procs: Procs, tmp: Path, upstream: str, auth: str, workers: int = 1) -> tuple[str, subprocess.Popen]:
    subprocess.run([PY, "-m", "gateway", "keys", "init", str(tmp / "keys")], check=True, capture_output=True)
    port = free_port()
    config = gateway_config(tmp, upstream, port, auth)
    argv = [PY, "-m", "gateway", "serve", "-c", str(config), "--workers", str(workers)]
    if auth == "none":
        argv.append("--insecure-no-auth")
    p = procs.start(argv, tmp / "gateway.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/-/healthz", proc=p)
    return url, p


def start_relay(procs: Procs, tmp: Path, upstream: str, client: str) -> str:
    # returns the URL; the process is procs.procs[-1]
    """A bare aiohttp server relaying to the stub with ``client`` (pool | session): the floor under the
    gateway (same server, same upstream client, none of auth/inspect/policy/audit)."""
    port = free_port()
    p = procs.start([PY, __file__, "--relay", upstream, "--relay-port", str(port), "--relay-client", client],
                    tmp / f"relay-{client}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/-/healthz", proc=p)
    return url


def relay_main(upstream: str, port: int, client: str) -> None:
    sys.path.insert(0, str(ROOT))
    import aiohttp
    import uvloop
    from aiohttp import web

    from gateway.forward.client import UpstreamPool

    async def app_factory():
        app = web.Application()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

        async def relay(request: web.Request):
            body = await request.read()
            async with session.post(upstream + request.path, data=body,
                                    headers={"content-type": "application/json"}) as resp:
                data = await resp.read()
                return web.Response(status=resp.status, body=data, content_type="application/json")

        async def health(request):
            return web.Response(text="ok")

        app.router.add_post("/v1/chat/completions", relay)
        app.router.add_get("/-/healthz", health)
        return app

    uvloop.install()
    if client == "raw":
        asyncio.run(raw_relay(upstream, port))
    elif client in ("pool", "scan"):
        asyncio.run(server_relay(upstream, port, client == "scan"))
    else:
        web.run_app(app_factory(), host="127.0.0.1", port=port, access_log=None, print=None)


async def server_relay(upstream: str, port: int, inspect: bool = False) -> None:
    """The gateway's own HTTP server (gateway.server.http) + the pooled client, nothing else: the floor
    under the gateway's data path. With ``inspect``, also what the gateway does to inspect a request and
    its answer, with its own functions (gateway.server.proxy's JSON path): the floor under any gateway
    that inspects."""
    from gateway import fastjson
    from gateway.dialects import ENDPOINTS, extract_segments
    from gateway.dialects.answers import map_answer_texts
    from gateway.forward.client import UpstreamPool
    from gateway.inspect import scan
    from gateway.server.http import HttpServer, Response
    from gateway.transform.leaks import scan_answer

    pool = UpstreamPool(upstream + "/v1")
    headers = [(b"content-type", b"application/json")]
    found = [0]

    def leak_scan(text: str, kind: str) -> str:
        found[0] += len(scan_answer(text, set()))
        return text

    async def relay(request):
        if request.path == "/-/healthz":
            return Response(200, b"ok", content_type="text/plain")
        if inspect:
            for seg in extract_segments(request.path, fastjson.loads(request.body)):
                if seg.text:
                    found[0] += len(scan(seg.text))
        resp = await pool.request("POST", request.path[3:], headers, request.body)
        data = await resp.read()
        resp.release()
        if inspect and resp.status == 200:
            map_answer_texts(ENDPOINTS[request.path], request.path, fastjson.loads(data), leak_scan)
        return Response(resp.status, data)

    server = HttpServer(relay, error_response=lambda req, status, code, msg: Response(status, code.encode()),
                        max_body_bytes=1 << 20, header_timeout=10, body_timeout=10)
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


async def raw_relay(upstream: str, port: int) -> None:
    """An HTTP/1.1 relay on a bare asyncio protocol (httptools parsing) + the pooled client: how much of
    the relay's cost is aiohttp's server. Keep-alive, Content-Length bodies only; enough for the bench."""
    import httptools

    from gateway.forward.client import UpstreamPool

    pool = UpstreamPool(upstream + "/v1")
    loop = asyncio.get_running_loop()
    headers = [(b"content-type", b"application/json")]

    class Relay(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.p = httptools.HttpRequestParser(self)
            self.parts: list[bytes] = []
            self.url = b""

        def data_received(self, data):
            self.p.feed_data(data)

        def on_url(self, url):
            self.url = url

        def on_body(self, body):
            self.parts.append(body)

        def on_message_complete(self):
            body, self.parts = b"".join(self.parts), []
            if self.url == b"/-/healthz":
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            else:
                loop.create_task(self.relay(self.url.decode()[3:], body))

        async def relay(self, path, body):
            resp = await pool.request("POST", path, headers, body)
            data = await resp.read()
            resp.release()
            self.t.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (resp.status, len(data), data))

    server = await loop.create_server(Relay, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (nginx's workers, pre-forked gateway workers)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of ``pid``'s process tree so far (Linux /proc)."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --- load ------------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, body_file: Path, auth: bool, connections: int, duration: float, tmp: Path) -> dict:
    lua = tmp / "post.lua"
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if auth:
        headers += f'wrk.headers["Authorization"] = "Bearer {API_KEY}"\n'
    lua.write_text(f'wrk.method = "POST"\n{headers}'
                   f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
                          "-s", str(lua), url], capture_output=True, text=True, check=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}"] = _ms(m.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    res["non2xx"] = int(bad.group(1)) if bad else 0
    res["socket_errors"] = errors.group(1) if errors else ""
    return res


def run_pyload(url: str, body_file: Path, auth: bool, connections: int, duration: float) -> dict:
    argv = [PY, __file__, "--loadgen", url, "--body-file", str(body_file), "--connections", str(connections),
            "--duration", str(duration)] + (["--auth-header"] if auth else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


async def _loadgen(url: str, body: bytes, auth: bool, connections: int, duration: float) -> dict:
    """Closed-loop load: ``connections`` workers, each one request at a time on its own connection."""
    sys.path.insert(0, str(ROOT))
    from gateway.forward.client import UpstreamPool

    base, _, path = url.partition("//")[2].partition("/")
    pool = UpstreamPool("http://" + base, max_connections=connections, read_timeout=30)
    headers = [(b"content-type", b"application/json")]
    if auth:
        headers.append((b"authorization", f"Bearer {API_KEY}".encode()))
    lat: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    clock = time.perf_counter

    async def worker():
        while loop.time() < end:
            t0 = clock()
            try:
                resp = await pool.request("POST", "/" + path, headers, body)
                await resp.read()
                resp.release()
            except Exception:
                counts["errors"] += 1
                continue
            lat.append(clock() - t0)
            counts["ok" if resp.status < 300 else "non2xx"] += 1

    t0 = clock()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = clock() - t0
    await pool.close()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    n = counts["ok"] + counts["non2xx"]
    return {"rps": n / elapsed, "requests": n, "p50": pct(0.5), "p99": pct(0.99),
            "non2xx": counts["non2xx"], "socket_errors": str(counts["errors"]) if counts["errors"] else ""}


# --- the run ---------------------------------------------------------------------------------------------
def hold_cpus_awake() -> int | None:
    """Ask the kernel to keep idle CPUs polling (PM QoS: a 0 µs wake-up latency bound) for as long as the
    returned descriptor stays open; None when this process may not (not root, no such device)."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError:
        return None
    try:
        os.write(fd, (0).to_bytes(4, sys.byteorder))
    except OSError:
        os.close(fd)
        return None
    return fd


class Target:
    """A path under test: where the load goes, and the process tree whose CPU is the proxy's."""

    def __init__(self, name: str, url: str, auth: bool, pid: int | None):
        self.name, self.url, self.auth, self.pid = name, url, auth, pid
        self.rounds: list[dict] = []


def measure(t: Target, body_file: Path, args, tmp: Path, duration: float, latency_duration: float,
            profile: str | None = None) -> dict:
    """One round of ``t``: throughput at ``--connections``, latency at 1 connection, and the proxy's CPU
    per request (process tree, user+system: steadier than req/s when load generator, proxy and upstream
    share cores)."""
    use_wrk = shutil.which("wrk") and not args.python_load
    run = (lambda c, d: run_wrk(t.url, body_file, t.auth, c, d, tmp)) if use_wrk else \
          (lambda c, d: run_pyload(t.url, body_file, t.auth, c, d))
    spy = None
    if profile:
        spy_bin = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        fmt = {".txt": "raw", ".json": "speedscope"}.get(Path(profile).suffix, "flamegraph")
        spy = subprocess.Popen([spy_bin, "record", "-o", profile, "-f", fmt, "-r", "250", "--gil", "-p", str(t.pid),
                                "-d", str(int(duration) + 1), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0 = cpu_seconds(t.pid)
    tput = run(args.connections, duration)
    cpu = cpu_seconds(t.pid) - cpu0
    if spy is not None:
        spy.wait()
        print(f"  profile  {profile}", file=sys.stderr)
    lat = run(1, latency_duration)
    res = {"rps": tput["rps"], "p50": lat["p50"], "p99": lat["p99"], "cpu_s": cpu if t.pid else None,
           "requests": tput["requests"], "errors": tput["non2xx"] + lat["non2xx"],
           "socket": tput["socket_errors"] or lat["socket_errors"]}
    cpu_text = f"   proxy CPU {cpu / tput['requests'] * 1e6:.0f} µs/req" if t.pid and tput["requests"] else ""
    print(f"  {t.name:10} {res['rps']:9.0f} req/s   p50 {res['p50']:.3f} ms   p99 {res['p99']:.3f} ms{cpu_text}"
          + (f"   non-2xx {res['errors']}" if res["errors"] else ""), file=sys.stderr, flush=True)
    t.rounds.append(res)
    return res


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def summarize(targets: list[Target]) -> list[dict]:
    """Per path: medians over the rounds, and the within-round ratio to nginx and added latency
    (median and range over the rounds)."""
    by = {t.name: t for t in targets}
    nginx, direct = by.get("nginx"), by.get("direct")
    rows = []
    for t in targets:
        rs = t.rounds
        requests = sum(r["requests"] for r in rs)
        row = {"path": t.name, "rps": _median([r["rps"] for r in rs]), "p50": _median([r["p50"] for r in rs]),
               "p99": _median([r["p99"] for r in rs]), "errors": sum(r["errors"] for r in rs),
               "cpu_us": sum(r["cpu_s"] for r in rs) / requests * 1e6 if t.pid and requests else None,
               "ratio": None, "added": None}
        if nginx is not None:
            ratios = [r["rps"] / n["rps"] for r, n in zip(rs, nginx.rounds)]
            row["ratio"] = (_median(ratios), min(ratios), max(ratios))
        if direct is not None and t is not direct:
            added = [r["p50"] - d["p50"] for r, d in zip(rs, direct.rounds)]
            row["added"] = (_median(added), min(added), max(added))
        rows.append(row)
    return rows


def table(rows: list[dict], rounds: int) -> str:
    lines = [f"| path | req/s | ratio to nginx (range over {rounds} rounds) | median @1 conn | p99 @1 conn | "
             "added median (range) | proxy CPU/req |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio'][0]:.2f} ({r['ratio'][1]:.2f}–{r['ratio'][2]:.2f})" if r["ratio"] else "—"
        added = f"{r['added'][0]:+.3f} ms ({r['added'][1]:+.3f} … {r['added'][2]:+.3f})" if r["added"] else "—"
        flag = f" ({r['errors']} non-2xx!)" if r["errors"] else ""
        cpu = f"{r['cpu_us']:.0f} µs" if r["cpu_us"] is not None else "—"
        lines.append(f"| {r['path']}{flag} | {r['rps']:,.0f} | {ratio} | {r['p50']:.3f} ms | {r['p99']:.3f} ms "
                     f"| {added} | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of throughput load per path, over all rounds")
    ap.add_argument("--latency-duration", type=float, default=5.0,
                    help="seconds at 1 connection per path, over all rounds")
    ap.add_argument("--rounds", type=int, default=5, help="rounds; each measures every path in turn "
                                                          "(wrk measures whole seconds: at least 1 s each)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--body-size", type=int, default=4096)
    ap.add_argument("--pii", action="store_true", help="put a CPF and an e-mail in the body (pseudonymize path)")
    ap.add_argument("--auth", choices=["api_key", "none"], default="api_key")
    ap.add_argument("--workers", type=int, default=1, help="`soberana serve --workers` for the gateway")
    ap.add_argument("--only", default="direct,nginx,raw-relay,relay,scan-relay,gateway",
                    help="comma-separated subset of direct, nginx, raw-relay (bare asyncio server + the pooled "
                         "client), relay (the gateway's HTTP server + the pooled client), scan-relay (relay + "
                         "the request's and the answer's inspection), session (bare aiohttp + "
                         "aiohttp.ClientSession), gateway")
    ap.add_argument("--python-load", action="store_true", help="use the asyncio load generator even if wrk exists")
    ap.add_argument("--allow-idle", action="store_true",
                    help="let idle CPUs halt (do not hold /dev/cpu_dma_latency at 0; see the module docstring)")
    ap.add_argument("--profile", metavar="FILE", help="record the gateway with py-spy during its first throughput "
                                                       "round (.svg flame graph, .txt collapsed stacks, .json "
                                                       "speedscope); only the thread holding the GIL is sampled")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    # the load-generator subprocess
    ap.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--body-file", help=argparse.SUPPRESS)
    ap.add_argument("--auth-header", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--relay", metavar="UPSTREAM", help=argparse.SUPPRESS)
    ap.add_argument("--relay-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--relay-client", choices=["pool", "scan", "session", "raw"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.relay:
        relay_main(args.relay, args.relay_port, args.relay_client)
        return 0

    if args.loadgen:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        body = Path(args.body_file).read_bytes()
        print(json.dumps(asyncio.run(_loadgen(args.loadgen, body, args.auth_header, args.connections, args.duration))))
        return 0

    only = set(args.only.split(","))
    rounds = max(1, args.rounds)
    duration = max(1.0, args.duration / rounds)
    latency_duration = max(1.0, args.latency_duration / rounds)
    tmp = Path(tempfile.mkdtemp(prefix="soberana-bench-"))
    procs = Procs()
    body = chat_body(args.body_size, args.pii)
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    tool = "wrk" if shutil.which("wrk") and not args.python_load else "python asyncio load generator"
    awake = None if args.allow_idle else hold_cpus_awake()
    idle = "idle CPUs poll (/dev/cpu_dma_latency held at 0)" if awake is not None else "idle CPUs may halt"
    print(f"bench/proxy.py: {os.cpu_count()} CPUs, {idle}, body {len(body)} bytes{' with PII' if args.pii else ''}, "
          f"{rounds} rounds of {args.connections} connections × {duration:g} s and 1 connection × "
          f"{latency_duration:g} s per path, load by {tool}, auth {args.auth}, gateway workers {args.workers}",
          file=sys.stderr)
    targets: list[Target] = []
    try:
        stub, _ = start_stub(procs, tmp)
        status, answer = post(stub + "/v1/chat/completions", body, False)
        assert status == 200 and b"You said" in answer, "the stub answers"
        if "direct" in only:
            targets.append(Target("direct", stub + "/v1/chat/completions", False, None))
        if "nginx" in only:
            url = start_nginx(procs, tmp, stub, args.workers)
            if url is None:
                print(f"  nginx    not installed ({NGINX}); no nginx baseline", file=sys.stderr)
            else:
                status, answer = post(url + "/v1/chat/completions", body, False)
                assert status == 200 and b"You said" in answer, f"nginx forwards ({status})"
                targets.append(Target("nginx", url + "/v1/chat/completions", False, procs.procs[-1].pid))
        for client, name in (("raw", "raw-relay"), ("pool", "relay"), ("scan", "scan-relay"), ("session", "session")):
            if name in only:
                url = start_relay(procs, tmp, stub, client)
                status, answer = post(url + "/v1/chat/completions", body, False)
                assert status == 200 and b"You said" in answer, f"{name} forwards ({status})"
                targets.append(Target(name, url + "/v1/chat/completions", False, procs.procs[-1].pid))
        if "gateway" in only:
            try:
                url, gw = start_gateway(procs, tmp, stub, args.auth, args.workers)
            except RuntimeError as e:
                log = (tmp / "gateway.log").read_text(errors="replace").strip().splitlines()[-15:]
                print(f"  gateway  did not start ({e}):\n    " + "\n    ".join(log), file=sys.stderr)
                return 1
            auth = args.auth == "api_key"
            status, answer = post(url + "/v1/chat/completions", body, auth)
            if status != 200 or b"You said" not in answer:
                print(f"  gateway  answered {status}: {answer[:300]!r}; see {tmp}/gateway.log", file=sys.stderr)
                args.keep = True
                return 1
            targets.append(Target("gateway", url + "/v1/chat/completions", auth, gw.pid))
        for t in targets:  # warm-up: connections, caches, the upstream pools
            (run_wrk(t.url, body_file, t.auth, args.connections, 1.0, tmp) if tool == "wrk" else
             run_pyload(t.url, body_file, t.auth, args.connections, 1.0))
        for i in range(rounds):
            print(f" round {i + 1}/{rounds}", file=sys.stderr)
            for t in targets:
                profile = args.profile if args.profile and i == 0 and t.name == "gateway" else None
                measure(t, body_file, args, tmp, duration, latency_duration, profile)
    finally:
        procs.stop_all()
        if awake is not None:
            os.close(awake)
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = summarize(targets)
    print(f"\n{idle}")
    print(table(rows, rounds))
    for r in rows:
        if r["path"] in ("gateway", "scan-relay") and r["ratio"]:
            med, lo, hi = r["ratio"]
            print(f"\n{r['path']} throughput {med:.0%} of nginx ({lo:.0%}–{hi:.0%}; target for the gateway ≥ 70%)")
        if r["path"] in ("gateway", "scan-relay") and r["added"]:
            med, lo, hi = r["added"]
            print(f"{r['path']} added median latency {med:.3f} ms at 1 connection ({lo:.3f}–{hi:.3f}; "
                  "target for the gateway < 0.3 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
