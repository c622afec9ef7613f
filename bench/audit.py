"""The cost of auditing: writer throughput and per-request overhead against no audit, same run.

    .venv/bin/python bench/audit.py [--records 20000] [--request-us 200] [--repeat 3]
                                    [--gateway-requests 1000]

Each "request" is what the gateway hands the audit stage: an Exchange with two text segments and
three findings (a CPF twice, an e-mail), a routed decision and an upstream. Three tables:

1. the writer alone: ``build_record`` into a no-op sink, then into ``AuditLog`` with each fsync
   policy (checkpoint every 1000). records/s counts until the last record is on disk (``close``);
   loop CPU is what the event-loop thread pays per record (build + append), writer CPU what the
   writer thread pays (with the GIL on 2 cores its work is not free);
2. a mock gateway loop whose requests each do a fixed amount of work that takes ``--request-us`` on
   a quiet machine (calibrated, fastest of 30 runs), with no audit, a no-op sink, and the AuditLog:
   requests per CPU-second (process CPU, loop and writer thread, not wall time: the machines are
   shared and noisy);
3. a real gateway on loopback (``gateway.testing.Harness``; client, stubs and gateway in this
   process) with the audit stage swapped in place between rounds: CPU µs per request.

The acceptance bar is auditing < 5 % of gateway throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.audit.record import build_record  # noqa: E402
from gateway.audit.verify import verify_file  # noqa: E402
from gateway.audit.writer import AuditLog  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.config import Audit, Upstream  # noqa: E402
from gateway.dialects.segments import Segment  # noqa: E402
from gateway.exchange import Exchange  # noqa: E402
from gateway.inspect.findings import Finding  # noqa: E402
from gateway.keys import init_keys, load_public_keys  # noqa: E402

TEXT1 = "Meu CPF é 529.982.247-25 e o e-mail ana.lima@fazenda.gov.br; repito 52998224725."
TEXT2 = "Qual a alíquota de IRPF para esse contribuinte em 2026? Responda em português. " * 4
UPSTREAM = SimpleNamespace(cfg=Upstream(name="br-sovereign", url="http://127.0.0.1:9/v1", residency="BR"))
DECISION = SimpleNamespace(decision_id="d", route=SimpleNamespace(upstream="br-sovereign", residency="BR"),
                           destination="domestic", by_detector={"br.cpf": "allow", "intl.email": "allow"},
                           rules=["br.identifiers"], policy_revision="1a47937770b57f90")
PRINCIPAL = Principal(sub="tax-office", agency="receita-federal", jurisdiction="BR")


def _f(text: str, value: str, det: str, cat: str, cc) -> Finding:
    s = text.index(value)
    return Finding(det, cat, cc, s, s + len(value))


FINDINGS = [[_f(TEXT1, "529.982.247-25", "br.cpf", "national_id", "BR"),
             _f(TEXT1, "ana.lima@fazenda.gov.br", "intl.email", "contact", None),
             _f(TEXT1, "52998224725", "br.cpf", "national_id", "BR")], []]


def exchange(i: int) -> Exchange:
    ex = Exchange(f"{i:032x}", "/v1/chat/completions", "openai")
    ex.principal, ex.model, ex.decision, ex.route = PRINCIPAL, "gpt-4o-mini", DECISION, UPSTREAM
    ex.segments = [Segment(("messages", 0, "content"), TEXT1, "message"),
                   Segment(("messages", 1, "content"), TEXT2, "message")]
    ex.findings = FINDINGS
    ex.upstream_status, ex.upstream_latency_ms, ex.outcome = 200, 41.7, "forwarded"
    ex.bytes_in, ex.bytes_out = 1412, 903
    return ex


class NoopSink:
    healthy, lag = True, 0

    def append(self, record: dict) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _work(k: int) -> int:
    """A fixed amount of interpreter work standing in for the rest of a request."""
    x = 0
    for i in range(k):
        x = (x + i * 7) & 0xFFFF
    return x


def calibrate(us: float) -> int:
    """Iterations of ``_work`` that take ``us`` on this machine when it is quiet (the fastest of many
    runs), so that a busy neighbour slows the stand-in request and the audit stage alike."""
    k = 20000
    best = min(_timed(_work, k) for _ in range(30))
    return max(1, int(k * us / 1e6 / best))


def _timed(f, *a) -> float:
    t = time.perf_counter()
    f(*a)
    return time.perf_counter() - t


async def throughput(sink, ring, n: int) -> tuple[float, float, float]:
    """(records/s until closed, loop-thread CPU µs/record, writer-side CPU µs/record)."""
    exs = [exchange(i) for i in range(n)]
    await sink.start()
    c0, l0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    for k in range(0, n, 100):  # 100 requests per loop turn, then yield like a server would
        for ex in exs[k:k + 100]:
            sink.append(build_record(ex, ring))
        await asyncio.sleep(0)
    loop_cpu = time.thread_time() - l0
    await sink.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, loop_cpu / n * 1e6, max(0.0, cpu - loop_cpu) / n * 1e6


async def gateway_rate(sink, ring, n: int, work: int) -> float:
    """Requests per CPU-second of a mock gateway loop whose every request burns ``request_us`` of CPU
    and, unless ``sink`` is None, is audited into ``sink``. Process CPU time (loop and writer thread)
    rather than wall time, because these machines are shared and noisy."""
    exs = [exchange(i) for i in range(n)]
    if sink is not None:
        await sink.start()
    t0 = time.process_time()
    for i, ex in enumerate(exs):
        _work(work)
        if sink is not None:
            sink.append(build_record(ex, ring))
        if i % 20 == 0:
            await asyncio.sleep(0)
    if sink is not None:
        await sink.close()
    return n / (time.process_time() - t0)


async def gateway_cpu(n: int, repeat: int) -> dict[str, float]:
    """Process CPU µs per request through a real gateway on loopback (gateway.testing.Harness: stub
    upstreams, bundled policies, aiohttp client, all in this process), for three audit stages
    swapped in place between rounds: none, build_record into a no-op sink, and the real AuditLog.
    Client and stub CPU are included in every arm, so the ratios understate the gateway's share."""
    import aiohttp
    import orjson

    from gateway.server import proxy
    from gateway.testing.harness import Harness

    real_build = proxy.build_record
    out: dict[str, list[float]] = {"none": [], "noop": [], "audit": [], "never": []}
    with tempfile.TemporaryDirectory(prefix="soberana-bench-gw-") as d:
        async with Harness(d) as h:
            state = h.holder.current
            real_log = state.audit
            never = AuditLog(Audit(checkpoint_every=1000, fsync="never"), state.ring, directory=Path(d) / "never")
            await never.start()
            hdr = {"Authorization": f"Bearer {h.keys['br']}", "Content-Type": "application/json"}
            body = orjson.dumps({"model": "llama-3.3-70b", "messages": [
                {"role": "user", "content": TEXT1 + " " + TEXT2}]})
            async with aiohttp.ClientSession() as s:
                async def burst(k: int) -> float:
                    c0 = time.process_time()
                    for _ in range(k):
                        async with s.post(h.url + "/v1/chat/completions", data=body, headers=hdr) as r:
                            await r.read()
                            assert r.status == 200, r.status
                    return (time.process_time() - c0) / k * 1e6

                await burst(200)  # warm up: connections, caches
                for _ in range(repeat):
                    for arm in ("none", "noop", "audit", "never"):
                        proxy.build_record = (lambda ex, ring: {}) if arm == "none" else real_build
                        state.audit = {"audit": real_log, "never": never}.get(arm) or NoopSink()
                        out[arm].append(await burst(n))
            proxy.build_record, state.audit = real_build, real_log
            await never.close()
    res = {k: min(v) for k, v in out.items()}
    res["writer"] = never.writer_cpu_s / (n * repeat) * 1e6
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--request-us", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gateway-requests", type=int, default=1000,
                    help="requests per arm through a real gateway on loopback (0 skips it)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soberana-bench-audit-"))
    ring = init_keys(tmp / "keys")
    n = args.records

    def log(fsync: str, tag: str) -> AuditLog:
        return AuditLog(Audit(checkpoint_every=1000, fsync=fsync), ring, directory=tmp / f"{tag}-{fsync}")

    rows = []
    sinks = [("build_record only (no-op sink)", lambda r: NoopSink())] + [
        (f"AuditLog fsync={f}", (lambda f: lambda r: log(f, f"t{r}"))(f)) for f in ("never", "batch", "always")]
    for name, make in sinks:
        runs = [asyncio.run(throughput(make(r), ring, n)) for r in range(args.repeat)]
        rows.append((name, *max(runs, key=lambda x: x[0])))
    # the mock gateway: no audit at all, records built but dropped, records written; interleaved so
    # that the machine's noise hits every arm alike; best of --repeat
    m = max(1000, n // 10)
    work = calibrate(args.request_us)
    arms: dict[str, list[float]] = {"none": [], "noop": [], "audit": []}
    for r in range(args.repeat):
        arms["none"].append(asyncio.run(gateway_rate(None, ring, m, work)))
        arms["noop"].append(asyncio.run(gateway_rate(NoopSink(), ring, m, work)))
        arms["audit"].append(asyncio.run(gateway_rate(log("batch", f"g{r}"), ring, m, work)))
    best = {k: max(v) for k, v in arms.items()}

    print(f"audit writer, {n} records (~{len(TEXT1) + len(TEXT2)} chars of text, 3 findings each); best of {args.repeat}\n")
    print(f"| {'sink':32} | {'records/s':>10} | {'loop CPU µs/rec':>15} | {'writer CPU µs/rec':>17} |")
    print(f"|{'-' * 34}|{'-' * 12}|{'-' * 17}|{'-' * 19}|")
    for name, rate, loop_us, writer_us in rows:
        print(f"| {name:32} | {rate:10,.0f} | {loop_us:15.1f} | {writer_us:17.1f} |")
    print(f"\nmock gateway, {args.request_us:.0f} µs of CPU per request, {m} requests:\n")
    print(f"| {'audit stage':32} | {'req/CPU-s':>10} | {'cost vs no audit':>16} |")
    print(f"|{'-' * 34}|{'-' * 12}|{'-' * 18}|")
    for k, label in (("none", "none"), ("noop", "build_record, no-op sink"), ("audit", "build_record + AuditLog (batch)")):
        print(f"| {label:32} | {best[k]:10,.0f} | {1 - best[k] / best['none']:16.1%} |")
    print(f"\nacceptance bar: auditing costs < 5% of gateway throughput -> "
          f"{1 - best['audit'] / best['none']:.1%} here")
    if args.gateway_requests:
        cpu = asyncio.run(gateway_cpu(args.gateway_requests, args.repeat))
        print(f"\nreal gateway on loopback (client, stub and gateway in one process), {args.gateway_requests} "
              f"chat requests per arm, best of {args.repeat}:\n")
        print(f"| {'audit stage':40} | {'CPU µs/request':>14} | {'cost vs no audit':>16} |")
        print(f"|{'-' * 42}|{'-' * 16}|{'-' * 18}|")
        for k, label in (("none", "none"), ("noop", "build_record, no-op sink"),
                         ("audit", "build_record + AuditLog (batch, cp 50)"), ("never", "build_record + AuditLog (never, cp 1000)")):
            print(f"| {label:40} | {cpu[k]:14.0f} | {cpu[k] / cpu['none'] - 1:16.1%} |")
        print(f"\nwriter thread CPU per record in the fsync=never arm: {cpu['writer']:.1f} µs")
    t0 = time.perf_counter()
    files = sorted(tmp.glob("t0-batch/*.jsonl"))
    rep = verify_file(files[0], load_public_keys(tmp / "keys"))
    dt = time.perf_counter() - t0
    print(f"verify: {rep.records + rep.checkpoints + rep.epochs:,} lines in {dt:.2f} s "
          f"({(rep.records + rep.checkpoints) / dt:,.0f} lines/s), ok={rep.ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
