"""The fleet's metrics as ``soberana serve --workers N`` aggregates them: worker processes writing into
one PROMETHEUS_MULTIPROC_DIR, read back the way /-/metrics reads it (prometheus-client's
MultiProcessCollector)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.keys import init_keys

# What a worker does at start: import the gateway (its metrics with it), then open its audit log.
WORKER = textwrap.dedent("""\
    import asyncio, sys
    from pathlib import Path
    import gateway.app  # (imports gateway.metrics: the worker's metric files exist from here on)
    from gateway.audit.writer import AuditLog
    from gateway.config import Audit
    from gateway.keys import KeyRing

    async def main(step, directory, keys, worker):
        log = AuditLog(Audit(), KeyRing.load(keys), directory=Path(directory), worker=int(worker))
        if step == "open":
            await log.start()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await log.close()

    asyncio.run(main(*sys.argv[1:]))
""")


class Fleet:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.dir = tmp / "metrics"
        self.dir.mkdir()
        init_keys(tmp / "keys")
        self.procs: list[subprocess.Popen] = []

    def worker(self, step: str, audit: Path) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.dir)}
        p = subprocess.Popen([sys.executable, "-c", WORKER, step, str(audit), str(self.tmp / "keys"), str(len(self.procs))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.procs.append(p)
        assert p.stdout.readline() == "ready\n"

    def gauge(self, name: str) -> list[float]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.dir))
        text = generate_latest(registry).decode()
        return [s.value for f in text_string_to_metric_families(text) if f.name == name for s in f.samples]

    def stop(self) -> None:
        for p in self.procs:
            p.communicate("\n", timeout=20)


def test_a_starting_worker_does_not_turn_the_fleets_audit_health_to_zero(tmp_path):
    # soberana_audit_healthy (the worst worker's) read 0 for as long as any worker was starting: the
    # gauge existed, at 0, from the worker's import of the metrics until its audit log was open, and
    # an alert on it fired on every rollout and every worker restart. A worker whose log is not open
    # yet has no value; one whose log failed still reads 0.
    fleet = Fleet(tmp_path)
    try:
        fleet.worker("open", tmp_path / "audit")
        assert fleet.gauge("soberana_audit_healthy") == [1]
        fleet.worker("import", tmp_path / "audit")  # started, audit log not open yet
        assert fleet.gauge("soberana_audit_healthy") == [1], "a starting worker reads as an unhealthy audit log"
    finally:
        fleet.stop()
