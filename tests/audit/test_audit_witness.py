"""`audit.witness` and `soberana audit verify --witness`: the cuts the chain alone cannot show.

A file cut back to one of its own closing checkpoints is a valid closed file, and an open file cut
back to any checkpoint passes `--live`; the witness (the same epoch and checkpoint lines, appended
elsewhere) catches both. Real AuditLogs, real files, the real command.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from audit_helpers import exchange
from gateway.audit import chain
from gateway.audit.record import build_record
from gateway.audit.writer import AuditLog
from gateway.config import Audit
from gateway.keys import init_keys

SOBERANA = str(Path(sys.executable).parent / "soberana")


def verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run([SOBERANA, "audit", "verify", *map(str, args)], capture_output=True, text=True, timeout=60)


def anchors(path: Path) -> list[dict]:
    """The epoch and checkpoint lines of an audit file (or of a witness), whole lines only: the writer
    may be in the middle of appending one while a test polls."""
    whole = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    return [x for x in map(orjson.loads, whole) if "epoch" in x or "checkpoint" in x]


async def session(directory: Path, ring, witness: Path, n: int, *, worker: int = 0, close: bool = True) -> AuditLog:
    """One run of a worker's log: start (an epoch), ``n`` records with a checkpoint every 2, and a
    graceful close (or, with ``close=False``, an open log whose witness has caught up)."""
    log = AuditLog(Audit(checkpoint_every=2), ring, directory=directory, worker=worker, witness=witness)
    await log.start()
    for i in range(n):
        log.append(build_record(exchange(i), ring))
    if close:
        await log.close()
        return log
    deadline = time.monotonic() + 10
    while log.lag or log._witness or len(anchors(witness)) < len(anchors(log.path)):
        assert time.monotonic() < deadline, "the witness did not catch up"
        await asyncio.sleep(0.01)
    return log


@pytest.fixture
def ring(tmp_path):
    return init_keys(tmp_path / "keys")


def cut_after(path: Path, seq: int) -> None:
    """Keep the lines up to ``seq``: what an intruder who removes the end of the file leaves."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(x for x in lines if orjson.loads(x)["seq"] <= seq))


async def test_epochs_cut_from_a_closed_file_are_caught_by_the_witness(tmp_path, ring):
    wit = tmp_path / "witness" / "audit-witness.jsonl"
    log = await session(tmp_path / "audit", ring, wit, 5)
    await session(tmp_path / "audit", ring, wit, 3)  # a restart: a second epoch in the same file
    held = anchors(wit)
    assert held == anchors(log.path)  # every epoch and checkpoint line, byte for byte the chain's
    assert [("epoch" in x) for x in held].count(True) == 2
    keys = tmp_path / "keys"
    p = verify(log.path, "--key", keys, "--witness", wit)
    assert p.returncode == 0 and "every epoch and checkpoint the witness holds is in it" in p.stdout, p.stdout + p.stderr

    first_close = next(x for x in held if "checkpoint" in x and x["checkpoint"]["closed"])
    second_epoch = next(x for x in held if "epoch" in x and x["seq"] > first_close["seq"])
    cut_after(log.path, first_close["seq"])
    alone = verify(log.path, "--key", keys)
    assert alone.returncode == 0, "the hole this closes: a file cut at a closing checkpoint is valid on its own"
    p = verify(log.path, "--key", keys, "--witness", wit)
    assert p.returncode == 1, p.stdout
    assert f"FAILED at seq {second_epoch['seq']}: truncated" in p.stdout


async def test_an_open_file_cut_back_to_a_checkpoint_is_caught_under_live(tmp_path, ring):
    wit = tmp_path / "w.jsonl"
    log = await session(tmp_path / "audit", ring, wit, 7, close=False)
    cps = [x for x in anchors(wit) if "checkpoint" in x]
    assert len(cps) == 3
    cut_after(log.path, cps[0]["seq"])
    assert verify(log.path, "--live").returncode == 0
    p = verify(log.path, "--live", "--witness", wit)
    assert p.returncode == 1 and f"FAILED at seq {cps[1]['seq']}: truncated" in p.stdout, p.stdout
    await log.close()


async def test_a_cut_file_given_a_new_tail_is_forged(tmp_path, ring):
    wit = tmp_path / "w.jsonl"
    log = await session(tmp_path / "audit", ring, wit, 4)
    await session(tmp_path / "audit", ring, wit, 2)
    first_close = next(x for x in anchors(wit) if "checkpoint" in x and x["checkpoint"]["closed"])
    cut_after(log.path, first_close["seq"])
    # a made-up epoch, chained on: the file reads as one that is still being written
    fake = {"seq": first_close["seq"] + 1, "ts": chain.iso_ts(time.time()), "prev": first_close["hash"],
            "epoch": {"id": "0" * 16, "worker": 0, "pid": 1, "reason": "reopened", "discarded_bytes": 0}}
    with open(log.path, "ab") as f:
        f.write(chain.seal(fake))
    assert verify(log.path, "--live").returncode == 0
    p = verify(log.path, "--live", "--witness", wit)
    assert p.returncode == 1 and f"FAILED at seq {fake['seq']}: forged" in p.stdout, p.stdout


async def test_one_witness_for_two_workers(tmp_path, ring):
    wit = tmp_path / "w.jsonl"
    a = await session(tmp_path / "audit", ring, wit, 3, worker=0)
    b = await session(tmp_path / "audit", ring, wit, 5, worker=1)
    p = verify(a.path, b.path, "--witness", wit)
    assert p.returncode == 0 and p.stdout.count(": OK:") == 2, p.stdout + p.stderr
    assert "of no file given" not in p.stderr
    p = verify(a.path, "--witness", wit)  # worker 1's lines link to nothing in worker 0's file
    assert p.returncode == 0, p.stdout
    assert "the witness holds 1 epoch(s) of no file given" in p.stderr


async def test_a_witness_line_that_was_tampered_with(tmp_path, ring):
    wit = tmp_path / "w.jsonl"
    log = await session(tmp_path / "audit", ring, wit, 4)
    lines = wit.read_bytes().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if b'"checkpoint"' in x)
    cp = orjson.loads(lines[i])
    cp["checkpoint"]["records"] += 1  # re-sealed, so its own hash holds; its signature does not
    lines[i] = chain.seal(cp)
    wit.write_bytes(b"".join(lines))
    p = verify(log.path, "--key", tmp_path / "keys", "--witness", wit)
    assert p.returncode == 1 and f"witness FAILED: {wit} line {i + 1}: checkpoint seq {cp['seq']}" in p.stdout
    p = verify(log.path, "--witness", wit)  # without keys the two disagree, and that is what it says
    assert p.returncode == 1 and f"FAILED at seq {cp['seq']}: forged" in p.stdout, p.stdout
    wit.write_bytes(b"".join(lines[:i]) + lines[i][:40])  # a write cut short: skipped, said so
    p = verify(log.path, "--witness", wit)
    assert p.returncode == 0 and "1 line(s) of the witness are not whole" in p.stderr, p.stdout + p.stderr


async def test_a_witness_that_cannot_be_written_is_retried_and_never_stops_the_log(tmp_path, ring, caplog):
    caplog.set_level(logging.WARNING, logger="soberana.audit")
    blocker = tmp_path / "mnt"
    blocker.write_text("not a folder")  # the witness's folder cannot be made
    wit = blocker / "w.jsonl"
    log = AuditLog(Audit(checkpoint_every=2), ring, directory=tmp_path / "audit", witness=wit)
    log.retry_s = 0.1
    await log.start()
    for i in range(4):
        log.append(build_record(exchange(i), ring))
    deadline = time.monotonic() + 10
    while log.lag or "cannot be written" not in caplog.text:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert log.healthy and len(anchors(log.path)) == 3  # the chain file took everything
    assert caplog.text.count("cannot be written (") == 1  # once per failure, not per try
    blocker.unlink()  # (the writer makes the folder itself)
    while len(anchors(wit)) < 3 or "is writing again" not in caplog.text:  # (it says so after the write)
        assert time.monotonic() < deadline, "the kept lines were not retried"
        await asyncio.sleep(0.02)
    await log.close()
    assert anchors(wit) == anchors(log.path)
    assert verify(log.path, "--witness", wit).returncode == 0


async def _serve_once(tmp: Path, stub_url: str, shipped) -> None:
    """``soberana serve --workers 2`` with ``audit.stdout`` on, its stdout shipped to ``shipped``;
    a few requests, then SIGTERM."""
    import signal
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp / "soberana.yaml"
    cfg.write_text(f"""\
listen: {{host: 127.0.0.1, port: {port}}}
jurisdiction: BR
policies: {Path(__file__).resolve().parents[2] / 'policies'}
keys: {tmp / 'keys'}
auth: {{mode: none}}
upstreams: [{{name: br, url: "{stub_url}/v1", residency: BR}}]
models: {{m: [{{upstream: br, model: m}}]}}
audit: {{path: {tmp / 'audit'}, checkpoint_every: 2, stdout: true}}
""")
    with open(tmp / "gateway.log", "ab") as log:
        proc = subprocess.Popen([SOBERANA, "serve", "-c", str(cfg), "--workers", "2", "--insecure-no-auth"],
                                stdout=shipped, stderr=log)
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "CPF 529.982.247-25"}]})

    def post() -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if await asyncio.to_thread(post) == 200:
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
                await asyncio.sleep(0.1)
        for _ in range(9):
            assert await asyncio.to_thread(post) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


async def test_the_stream_audit_stdout_ships_is_a_witness(tmp_path, ring):
    from gateway.testing.stub import start_stub

    stub = await start_stub("127.0.0.1", 0, "BR")
    shipped = tmp_path / "shipped.jsonl"  # what a log shipper would take off the host
    try:
        with open(shipped, "ab") as out:
            await _serve_once(tmp_path, stub.url, out)
            await _serve_once(tmp_path, stub.url, out)  # a restart: a second epoch in each file
    finally:
        await stub.close()
    files = sorted((tmp_path / "audit").glob("audit-w*.jsonl"))
    assert len(files) == 2
    lines = [orjson.loads(x) for x in shipped.read_bytes().splitlines()]
    assert sum("request_id" in x for x in lines) == 20  # the records, as before ...
    assert sorted(map(orjson.dumps, anchors(shipped))) == sorted(  # ... and every epoch and checkpoint
        orjson.dumps(x) for f in files for x in anchors(f))
    p = verify(*files, "--key", tmp_path / "keys", "--witness", shipped)
    assert p.returncode == 0 and p.stdout.count("witness holds is in it") == 2, p.stdout + p.stderr
    assert "not whole" not in p.stderr  # the records of the stream are passed over, not counted as damage
    first_close = next(x for x in anchors(files[0]) if "checkpoint" in x and x["checkpoint"]["closed"])
    cut_after(files[0], first_close["seq"])
    assert verify(*files, "--key", tmp_path / "keys").returncode == 0
    p = verify(*files, "--key", tmp_path / "keys", "--witness", shipped)
    assert p.returncode == 1 and f"{files[0]}: FAILED at seq {first_close['seq'] + 1}: truncated" in p.stdout
