"""Instructions per proxied request, counted by callgrind: a figure the machine's noise cannot move.

    .venv/bin/python bench/instructions.py [--requests 1000] [--only nginx,relay,scan-relay,gateway]

Each proxy (the same ones as bench/proxy.py: nginx `proxy_pass`, the relay floor, the relay that also
inspects the request and the answer — the floor under any inspecting gateway —, the gateway) runs
under `valgrind --tool=callgrind` in front of `soberana stub` (not instrumented). After a warm-up the
counters are zeroed, --requests POSTs of the 4 KB chat body go through on 4 keep-alive connections,
and the counters are dumped: user-space instructions of the proxy process per request, every thread
included (the gateway's audit writer too). The kernel's share (system calls, loopback TCP) is not
counted: bench/proxy.py measures the CPU time that includes it. Needs valgrind; about 2 minutes.

Valgrind does not emulate the CPU's SHA extensions and hides them, so under callgrind the audit
record's SHA-256 runs its portable C rounds. The table shows that share separately: outside
valgrind, on a CPU with SHA-NI (`gateway.audit._record_c.SHA_NI`), those rounds run as a few
instructions per 64-byte block instead of about 2,500.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy import (API_KEY, NGINX, PY, Procs, chat_body, free_port, gateway_config,  # noqa: E402
                   start_stub)


def _load(url: str, body: bytes, n: int, conns: int = 4) -> None:
    """``n`` keep-alive POSTs, ``conns`` connections in lock step; every answer must be a 200."""
    host, port = url.split("//", 1)[1].split(":")
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    socks = [socket.create_connection((host, int(port)), timeout=60) for _ in range(conns)]
    bufs = [b""] * conns
    try:
        for _ in range(max(1, n // conns)):
            for s in socks:
                s.sendall(head + body)
            for i, s in enumerate(socks):
                buf = bufs[i]
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(65536)
                h, _, rest = buf.partition(b"\r\n\r\n")
                if not h.startswith(b"HTTP/1.1 200"):
                    status = h.split(b"\r\n", 1)[0].decode()
                    raise RuntimeError(f"{url} answered {status}")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", h)
                size = int(m.group(1))
                while len(rest) < size:
                    rest += s.recv(65536)
                bufs[i] = rest[size:]
    finally:
        for s in socks:
            s.close()


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the process on port {port} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s")


def _argv(what: str, tmp: Path, stub: str, port: int) -> list[str]:
    if what == "nginx":
        conf = tmp / "nginx.conf"
        conf.write_text(f"""\
master_process off;
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nb; proxy_temp_path {tmp}/np; fastcgi_temp_path {tmp}/nf;
    uwsgi_temp_path {tmp}/nu; scgi_temp_path {tmp}/ns;
    upstream stub {{ server {stub.split('//', 1)[1]}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{ proxy_pass http://stub; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
""")
        return [NGINX, "-p", str(tmp), "-c", str(conf)]
    if what in ("relay", "scan-relay"):
        return [PY, str(Path(__file__).with_name("proxy.py")), "--relay", stub, "--relay-port", str(port),
                "--relay-client", "pool" if what == "relay" else "scan"]
    subprocess.run([PY, "-m", "gateway", "keys", "init", str(tmp / "keys")], check=True, capture_output=True)
    return [PY, "-m", "gateway", "serve", "-c", str(gateway_config(tmp, stub, port, "api_key"))]


# the audit record's portable SHA-256 rounds (see the module docstring)
SHA_ROUNDS = "_record_c__compress"


def self_cost(dump: str, name_part: str) -> int:
    """Instructions spent in the functions whose name contains ``name_part`` themselves (callees
    excluded), from a callgrind dump (names are written once, then referred to by number)."""
    names: dict[str, str] = {}
    total, inside, after_calls = 0, False, False
    for line in dump.splitlines():
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ref, name = m.groups()
            if name:
                names[ref] = name
            if kind == "fn":
                inside = name_part in names.get(ref, "")
            continue
        if line.startswith("calls="):
            after_calls = True   # the next cost line is a call's inclusive cost
            continue
        if line and line[0] in "0123456789+-*":
            if after_calls:
                after_calls = False
            elif inside:
                total += int(line.split()[-1])
    return total


def count(what: str, tmp: Path, stub: str, body: bytes, n: int, procs: Procs) -> tuple[float, float]:
    """User-space instructions per request of proxy ``what``, and the part of them in the audit
    record's portable SHA-256 rounds."""
    port = free_port()
    out = tmp / f"{what}.callgrind"
    p = procs.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *_argv(what, tmp, stub, port)],
                    tmp / f"{what}.log", env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        _wait_port(port, p)
        url = f"http://127.0.0.1:{port}"
        _load(url, body, 200)  # warm: imports, pools, caches
        time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        _load(url, body, n)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        time.sleep(1)
    finally:
        p.kill()
        p.wait()
    dumps = sorted(tmp.glob(f"{what}.callgrind.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {what}")
    dump = dumps[-1].read_text(errors="replace")
    total = int(re.search(r"^summary: (\d+)", dump, re.M).group(1))
    return total / n, self_cost(dump, SHA_ROUNDS) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--only", default="nginx,relay,scan-relay,gateway")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        print("bench/instructions.py needs valgrind", file=sys.stderr)
        return 2
    body = chat_body(4096)
    procs = Procs()
    rows = []
    with tempfile.TemporaryDirectory(prefix="soberana-instr-") as d:
        tmp = Path(d)
        try:
            stub, _ = start_stub(procs, tmp)
            for what in args.only.split(","):
                if what == "nginx" and not Path(NGINX).exists():
                    continue
                total, sha = count(what, tmp, stub, body, args.requests, procs)
                rows.append((what, total, sha))
                print(f"  {what:8s} {total:>12,.0f} instructions/request", file=sys.stderr)
        finally:
            procs.stop_all()
    base = next((n for what, n, _ in rows if what == "nginx"), None)
    print(f"\n{args.requests} requests, body {len(body)} bytes, user-space instructions of the proxy process (callgrind)\n")
    print("| proxy | instructions per request | × nginx | of which portable SHA-256 rounds* |")
    print("|---|---|---|---|")
    for what, n, sha in rows:
        times = f"{n / base:.1f}" if base else "—"
        print(f"| {what} | {n:,.0f} | {times} | {sha:,.0f} |")
    print("\n* valgrind hides the CPU's SHA extensions; outside it, on a CPU with SHA-NI, the audit's "
          "SHA-256 costs a small fraction of this")
    return 0


if __name__ == "__main__":
    sys.exit(main())
