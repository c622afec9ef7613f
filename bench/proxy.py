"""What the gateway costs on the forwarding path: requests/s and added latency, beside baselines.

In one run, against one fast upstream (the `soberana stub` model, its own process):
  direct   the load generator talks to the stub
  nginx    nginx `proxy_pass` with upstream keep-alive, one worker (when /usr/sbin/nginx exists)
  relay    the gateway's own HTTP server (gateway.server.http) + the pooled upstream client
           (gateway.forward.client) and nothing else: the floor under the gateway; `raw-relay` is a
           bare asyncio+httptools protocol with the same client, `session` aiohttp's server with
           aiohttp.ClientSession (optional rows, see --only)
  gateway  `soberana serve -c <generated config>` (one worker), auth api_key (or none), one upstream

Load: `wrk` with a Lua script for the POST when installed, else a bounded asyncio load generator in a
separate process (this file with --loadgen). A 4 KB chat body without sensitive data (or, with --pii,
one with a CPF and an e-mail, so the gateway also pseudonymizes and restores). Throughput at
--connections (default 32); latency percentiles at 1 connection. Targets: gateway ≥ 70% of nginx
req/s, added median latency < 0.3 ms.

    .venv/bin/python bench/proxy.py                      # all paths, 10 s each
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


def start_nginx(procs: Procs, tmp: Path, upstream: str) -> str | None:
    if not os.path.exists(NGINX):
        return None
    port = free_port()
    host_port = upstream.split("//", 1)[1]
    conf = tmp / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
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
    elif client == "pool":
        asyncio.run(server_relay(upstream, port))
    else:
        web.run_app(app_factory(), host="127.0.0.1", port=port, access_log=None, print=None)


async def server_relay(upstream: str, port: int) -> None:
    """The gateway's own HTTP server (gateway.server.http) + the pooled client, nothing else: the floor
    under the gateway's data path."""
    from gateway.forward.client import UpstreamPool
    from gateway.server.http import HttpServer, Response

    pool = UpstreamPool(upstream + "/v1")
    headers = [(b"content-type", b"application/json")]

    async def relay(request):
        if request.path == "/-/healthz":
            return Response(200, b"ok", content_type="text/plain")
        resp = await pool.request("POST", request.path[3:], headers, request.body)
        data = await resp.read()
        resp.release()
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
def measure(name: str, url: str, body_file: Path, auth: bool, args, tmp: Path, proxy_pid: int | None) -> dict:
    """Throughput at ``--connections``, latency at 1 connection, and the proxy's CPU per request
    (process tree, user+system: steadier than req/s when load generator, proxy and upstream share cores)."""
    use_wrk = shutil.which("wrk") and not args.python_load
    run = (lambda c, d: run_wrk(url, body_file, auth, c, d, tmp)) if use_wrk else \
          (lambda c, d: run_pyload(url, body_file, auth, c, d))
    run(args.connections, 1.0)  # warm-up: connections, caches, the upstream pool
    cpu0 = cpu_seconds(proxy_pid)
    tput = run(args.connections, args.duration)
    cpu = cpu_seconds(proxy_pid) - cpu0
    lat = run(1, args.latency_duration)
    res = {"path": name, "rps": tput["rps"], "p50": lat["p50"], "p99": lat["p99"],
           "cpu_us": cpu / tput["requests"] * 1e6 if proxy_pid and tput["requests"] else None,
           "errors": tput["non2xx"] + lat["non2xx"], "socket": tput["socket_errors"] or lat["socket_errors"]}
    cpu_text = f"   proxy CPU {res['cpu_us']:.0f} µs/req" if res["cpu_us"] is not None else ""
    print(f"  {name:8} {res['rps']:9.0f} req/s   p50 {res['p50']:.3f} ms   p99 {res['p99']:.3f} ms{cpu_text}"
          + (f"   non-2xx {res['errors']}" if res["errors"] else ""), file=sys.stderr, flush=True)
    return res


def table(rows: list[dict]) -> str:
    base = {r["path"]: r for r in rows}
    nginx = base.get("nginx")
    direct = base.get("direct")
    lines = ["| path | req/s | ratio to nginx | median @1 conn | p99 @1 conn | added median | proxy CPU/req |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['rps'] / nginx['rps']:.2f}" if nginx else "—"
        added = f"{r['p50'] - direct['p50']:+.3f} ms" if direct and r is not direct else "—"
        flag = f" ({r['errors']} non-2xx!)" if r["errors"] else ""
        cpu = f"{r['cpu_us']:.0f} µs" if r["cpu_us"] is not None else "—"
        lines.append(f"| {r['path']}{flag} | {r['rps']:,.0f} | {ratio} | {r['p50']:.3f} ms | {r['p99']:.3f} ms | {added} | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of throughput load per path")
    ap.add_argument("--latency-duration", type=float, default=5.0, help="seconds at 1 connection per path")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--body-size", type=int, default=4096)
    ap.add_argument("--pii", action="store_true", help="put a CPF and an e-mail in the body (pseudonymize path)")
    ap.add_argument("--auth", choices=["api_key", "none"], default="api_key")
    ap.add_argument("--workers", type=int, default=1, help="`soberana serve --workers` for the gateway")
    ap.add_argument("--only", default="direct,nginx,raw-relay,relay,gateway",
                    help="comma-separated subset of direct, nginx, raw-relay (bare asyncio server + the pooled "
                         "client), relay (the gateway's HTTP server + the pooled client), session (bare aiohttp + "
                         "aiohttp.ClientSession), gateway")
    ap.add_argument("--python-load", action="store_true", help="use the asyncio load generator even if wrk exists")
    ap.add_argument("--profile", metavar="FILE", help="record the gateway with py-spy during the throughput run "
                                                       "(.svg flame graph, .txt collapsed stacks, .json speedscope); "
                                                       "only the thread holding the GIL is sampled")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    # the load-generator subprocess
    ap.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--body-file", help=argparse.SUPPRESS)
    ap.add_argument("--auth-header", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--relay", metavar="UPSTREAM", help=argparse.SUPPRESS)
    ap.add_argument("--relay-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--relay-client", choices=["pool", "session", "raw"], help=argparse.SUPPRESS)
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
    tmp = Path(tempfile.mkdtemp(prefix="soberana-bench-"))
    procs = Procs()
    body = chat_body(args.body_size, args.pii)
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    tool = "wrk" if shutil.which("wrk") and not args.python_load else "python asyncio load generator"
    print(f"bench/proxy.py: {os.cpu_count()} CPUs, body {len(body)} bytes{' with PII' if args.pii else ''}, "
          f"{args.connections} connections × {args.duration:g} s, latency at 1 connection × "
          f"{args.latency_duration:g} s, load by {tool}, auth {args.auth}, gateway workers {args.workers}",
          file=sys.stderr)
    rows = []
    try:
        stub, _ = start_stub(procs, tmp)
        status, answer = post(stub + "/v1/chat/completions", body, False)
        assert status == 200 and b"You said" in answer, "the stub answers"
        if "direct" in only:
            rows.append(measure("direct", stub + "/v1/chat/completions", body_file, False, args, tmp, None))
        if "nginx" in only:
            url = start_nginx(procs, tmp, stub)
            if url is None:
                print(f"  nginx    not installed ({NGINX}); no nginx baseline", file=sys.stderr)
            else:
                status, answer = post(url + "/v1/chat/completions", body, False)
                assert status == 200 and b"You said" in answer, f"nginx forwards ({status})"
                rows.append(measure("nginx", url + "/v1/chat/completions", body_file, False, args, tmp,
                                    procs.procs[-1].pid))
                procs.stop(procs.procs[-1])
        for client, name in (("raw", "raw-relay"), ("pool", "relay"), ("session", "session")):
            if name in only:
                url = start_relay(procs, tmp, stub, client)
                rows.append(measure(name, url + "/v1/chat/completions", body_file, False, args, tmp,
                                    procs.procs[-1].pid))
                procs.stop(procs.procs[-1])
        if "gateway" in only:
            try:
                url, gw = start_gateway(procs, tmp, stub, args.auth, args.workers)
            except RuntimeError as e:
                log = (tmp / "gateway.log").read_text(errors="replace").strip().splitlines()[-15:]
                print(f"  gateway  did not start ({e}):\n    " + "\n    ".join(log), file=sys.stderr)
                print(table(rows))
                return 1
            auth = args.auth == "api_key"
            status, answer = post(url + "/v1/chat/completions", body, auth)
            if status != 200 or b"You said" not in answer:
                print(f"  gateway  answered {status}: {answer[:300]!r}; see {tmp}/gateway.log", file=sys.stderr)
                args.keep = True
                return 1
            spy = None
            if args.profile:
                spy_bin = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
                fmt = {".txt": "raw", ".json": "speedscope"}.get(Path(args.profile).suffix, "flamegraph")
                spy = subprocess.Popen([spy_bin, "record", "-o", args.profile, "-f", fmt, "-r", "250", "--gil", "-p", str(gw.pid),
                                        "-d", str(int(args.duration) + 1), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rows.append(measure("gateway", url + "/v1/chat/completions", body_file, auth, args, tmp, gw.pid))
            if spy is not None:
                spy.wait()
                print(f"  profile  {args.profile}", file=sys.stderr)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    g, n, d = (next((r for r in rows if r["path"] == p), None) for p in ("gateway", "nginx", "direct"))
    if g and n:
        print(f"\ngateway throughput {g['rps'] / n['rps']:.0%} of nginx (target ≥ 70%)")
    if g and d:
        print(f"gateway added median latency {g['p50'] - d['p50']:.3f} ms at 1 connection (target < 0.3 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
