"""The writer: group commit under concurrency, crash recovery, failing sinks, checkpoints, key rotation."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap

import orjson
import pytest

from audit_helpers import exchange, write_log
from gateway.audit.record import build_record
from gateway.audit.verify import verify_file
from gateway.audit.writer import AuditLog, AuditUnavailable
from gateway.config import Audit
from gateway.keys import init_keys, load_public_keys, rotate_keys


@pytest.fixture
def keydir(tmp_path):
    init_keys(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def ring(keydir):
    from gateway.keys import KeyRing
    return KeyRing.load(keydir)


def lines(path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


async def eventually(cond, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.005)


async def test_concurrent_appends_from_many_tasks_make_one_intact_chain(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=97), ring, directory=tmp_path / "audit", worker=3)
    await log.start()
    assert log.path.name == "audit-w3.jsonl" and log.healthy

    async def client(t: int):
        for j in range(40):
            log.append(build_record(exchange(t * 1000 + j), ring))
            if j % 3 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(client(t) for t in range(50)))
    await log.close()
    assert log.lag == 0 and not log.healthy
    rep = verify_file(log.path, load_public_keys(keydir))
    assert rep.ok and rep.closed and rep.records == 2000
    recs = [x for x in lines(log.path) if "request_id" in x]
    assert sorted(r["request_id"] for r in recs) == sorted(f"req-{t * 1000 + j:05d}" for t in range(50) for j in range(40))
    seqs = [x["seq"] for x in lines(log.path)]
    assert seqs == list(range(1, len(seqs) + 1))
    with pytest.raises(AuditUnavailable):
        log.append({"request_id": "late"})


async def test_append_before_start_is_refused(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path)
    assert not log.healthy
    with pytest.raises(AuditUnavailable):
        log.append({"request_id": "x"})


@pytest.mark.parametrize("fsync", ["always", "batch", "never"])
async def test_every_fsync_policy_writes_a_verifiable_file(tmp_path, ring, keydir, fsync):
    path = await write_log(tmp_path / "audit", ring, 30, checkpoint_every=7, fsync=fsync)
    rep = verify_file(path, load_public_keys(keydir))
    assert rep.ok and rep.records == 30 and rep.checkpoints == 30 // 7 + 1


async def test_checkpoint_after_checkpoint_seconds_without_more_traffic(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=1000, checkpoint_seconds=0.05), ring, directory=tmp_path)
    await log.start()
    log.append(build_record(exchange(1), ring))
    await eventually(lambda: b'"checkpoint"' in log.path.read_bytes())
    last = lines(log.path)[-1]
    assert last["checkpoint"]["closed"] is False and last["checkpoint"]["records"] == 1
    assert verify_file(log.path, load_public_keys(keydir), live=True).ok
    await log.close()
    cps = [x for x in lines(log.path) if "checkpoint" in x]
    assert [c["checkpoint"]["closed"] for c in cps] == [False, True]  # no empty timed checkpoints


async def test_restart_after_a_clean_close_continues_the_chain_without_a_gap(tmp_path, ring, keydir):
    await write_log(tmp_path / "audit", ring, 4)
    path = await write_log(tmp_path / "audit", ring, 3)
    epochs = [x["epoch"] for x in lines(path) if "epoch" in x]
    assert [e["reason"] for e in epochs] == ["new", "reopened"]
    rep = verify_file(path, load_public_keys(keydir))
    assert rep.ok and rep.records == 7 and rep.epochs == 2


CRASH = textwrap.dedent("""
    import asyncio, os, sys, time
    sys.path.insert(0, sys.argv[3])
    from audit_helpers import write_log
    from gateway.keys import KeyRing
    async def main():
        path = await write_log(__import__("pathlib").Path(sys.argv[1]), KeyRing.load(sys.argv[2]), 8,
                               checkpoint_every=3, close=False)
        with open(path, "ab") as f:  # the process dies in the middle of writing a line
            f.write(b'{"bytes_in":1234,"decision":{"actions":{"br.cpf"')
        os._exit(9)
    asyncio.run(main())
""")


async def test_crash_in_the_middle_of_a_write_recovers_and_verify_reports_the_gap(tmp_path, ring, keydir):
    here = os.path.dirname(__file__)
    proc = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "audit"), str(keydir), here], timeout=60)
    assert proc.returncode == 9
    path = tmp_path / "audit" / "audit-w0.jsonl"
    assert not path.read_bytes().endswith(b"\n")
    crashed_lines = len(path.read_bytes().splitlines()) - 1
    path2 = await write_log(tmp_path / "audit", ring, 5, checkpoint_every=3)
    assert path2 == path
    objs = lines(path)
    epoch = objs[crashed_lines]["epoch"]
    assert epoch["reason"] == "recovered" and epoch["discarded_bytes"] == 48
    rep = verify_file(path, load_public_keys(keydir))
    assert [p.reason for p in rep.problems] == ["gap"]
    assert rep.problems[0].seq == objs[crashed_lines]["seq"]
    assert rep.records == 13 and rep.closed


async def test_crash_without_a_partial_line_is_still_a_gap(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=2), ring, directory=tmp_path)
    await log.start()
    for i in range(3):
        log.append(build_record(exchange(i), ring))
    await eventually(lambda: log.lag == 0)
    os.close(log._fd)  # the process is gone: no closing checkpoint, lock released
    log._fd = -1
    await write_log(tmp_path, ring, 1)
    rep = verify_file(log.path, load_public_keys(keydir))
    assert [p.reason for p in rep.problems] == ["gap"] and rep.records == 4
    await log.close()


async def test_recovery_refuses_a_file_whose_last_whole_line_is_not_an_audit_line(tmp_path, ring):
    await write_log(tmp_path, ring, 2)
    path = tmp_path / "audit-w0.jsonl"
    with open(path, "ab") as f:
        f.write(b"not json at all\n")
    with pytest.raises(AuditUnavailable, match="not an audit line"):
        await AuditLog(Audit(), ring, directory=tmp_path).start()
    assert path.read_bytes().endswith(b"not json at all\n")  # evidence is never truncated away


async def test_a_file_with_only_a_partial_first_line_recovers(tmp_path, ring, keydir):
    path = tmp_path / "audit-w0.jsonl"
    path.write_bytes(b'{"epoch":{"disc')
    await write_log(tmp_path, ring, 2)
    rep = verify_file(path, load_public_keys(keydir))
    assert [p.reason for p in rep.problems] == ["gap"] and rep.problems[0].seq == 1 and rep.records == 2


LOCKER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
""")


async def test_a_file_held_by_another_process_is_refused(tmp_path, ring):
    p = subprocess.Popen([sys.executable, "-c", LOCKER, str(tmp_path / "audit-w0.jsonl")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"locked\n"
        with pytest.raises(AuditUnavailable, match="another writer"):
            await AuditLog(Audit(), ring, directory=tmp_path).start()
    finally:
        p.stdin.close()
        p.wait(10)


async def test_a_second_log_on_the_same_file_takes_the_chain_over(tmp_path, keydir):
    """What a reload that changes the audit settings does: the new log continues the old one's chain
    (no epoch, no gap), and records still appended through the old one land in the new one."""
    from gateway.keys import KeyRing
    old = AuditLog(Audit(checkpoint_every=1000), KeyRing.load(keydir), directory=tmp_path)
    await old.start()
    for i in range(5):
        old.append(build_record(exchange(i), old.ring))
    rotate_keys(keydir)
    new = AuditLog(Audit(checkpoint_every=2), KeyRing.load(keydir), directory=tmp_path)
    await new.start()
    old.append(build_record(exchange(5), new.ring))  # a request that began before the swap
    assert old.healthy and new.healthy
    await old.close()  # the old state is retired: nothing to close, the file stays open
    assert new.healthy
    for i in range(6, 9):
        new.append(build_record(exchange(i), new.ring))
    await new.close()
    assert not old.healthy and not new.healthy
    objs = lines(new.path)
    assert [o["request_id"] for o in objs if "request_id" in o] == [f"req-{i:05d}" for i in range(9)]
    assert sum("epoch" in o for o in objs) == 1
    rep = verify_file(new.path, load_public_keys(keydir))
    assert rep.ok and rep.closed and rep.records == 9 and rep.kids == {"k2"}  # new settings, new key
    # 5 records were pending a checkpoint at the hand-over: the new every-2 rule signs at once
    assert [o["checkpoint"]["records"] for o in objs if "checkpoint" in o] == [6, 8, 9]


async def test_disk_full_turns_the_log_unhealthy_and_append_raises(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path)
    await log.start()
    log.append(build_record(exchange(0), ring))
    await eventually(lambda: log.lag == 0)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # the kernel now answers every write with ENOSPC
    os.close(full)
    log.append(build_record(exchange(1), ring))
    await eventually(lambda: not log.healthy)
    assert log.error == "ENOSPC"
    with pytest.raises(AuditUnavailable, match="ENOSPC"):
        log.append(build_record(exchange(2), ring))
    with pytest.raises(AuditUnavailable, match="ENOSPC"):
        log.record(exchange(3), ring)
    await eventually(lambda: log.lag == 0)  # the lost record is not counted as pending forever
    await log.close()


async def test_removed_directory_turns_the_log_unhealthy_and_is_not_recreated(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path / "audit")
    log.retry_s = 0.02
    await log.start()
    shutil.rmtree(tmp_path / "audit")
    log.append(build_record(exchange(0), ring))
    await eventually(lambda: not log.healthy)
    assert log.error == "ENOENT"
    with pytest.raises(AuditUnavailable):
        log.append(build_record(exchange(1), ring))
    await asyncio.sleep(0.2)  # several retries
    assert not log.healthy and not (tmp_path / "audit").exists()
    await log.close()


async def test_writing_resumes_when_the_disk_has_room_again_with_a_gap(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=3), ring, directory=tmp_path)
    log.retry_s = 0.3
    await log.start()
    for i in range(4):
        log.append(build_record(exchange(i), ring))
    await eventually(lambda: log.lag == 0)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # disk full: the next write fails ...
    os.close(full)
    log.append(build_record(exchange(4), ring))  # ... and this record is lost
    await eventually(lambda: not log.healthy)
    await eventually(lambda: log.healthy)  # ... until the retry finds the file writable again
    for i in range(5, 8):
        log.append(build_record(exchange(i), ring))
    await log.close()
    rep = verify_file(log.path, load_public_keys(keydir))
    assert [p.reason for p in rep.problems] == ["gap"] and rep.closed
    ids = [x["request_id"] for x in lines(log.path) if "request_id" in x]
    assert ids == [f"req-{i:05d}" for i in (0, 1, 2, 3, 5, 6, 7)]


async def test_unopenable_directory_fails_start(tmp_path, ring):
    (tmp_path / "file").write_text("x")
    log = AuditLog(Audit(), ring, directory=tmp_path / "file" / "audit")
    with pytest.raises(AuditUnavailable, match="cannot open"):
        await log.start()
    assert not log.healthy


async def test_queue_bound_refuses_instead_of_growing_without_limit(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path)
    log.max_queue = 0
    await log.start()
    with pytest.raises(AuditUnavailable, match="behind"):
        log.append({"request_id": "x"})
    await log.close()


async def test_stdout_option_copies_each_line_of_the_chain(tmp_path, ring, capfd):
    await write_log(tmp_path, ring, 3, stdout=True)
    out = capfd.readouterr().out.encode()
    recs = [orjson.loads(x) for x in out.splitlines() if b'"request_id"' in x]
    assert [r["request_id"] for r in recs] == ["req-00000", "req-00001", "req-00002"]
    # the same chained lines, byte for byte: the epoch, the records, every checkpoint (so that the
    # shipped stream can serve as a witness)
    assert out == (tmp_path / "audit-w0.jsonl").read_bytes()


async def test_key_rotation_keeps_old_checkpoints_verifiable(tmp_path, keydir):
    from gateway.keys import KeyRing
    path = await write_log(tmp_path / "audit", KeyRing.load(keydir), 4, checkpoint_every=2)
    rotate_keys(keydir)
    await write_log(tmp_path / "audit", KeyRing.load(keydir), 4, checkpoint_every=2)
    rep = verify_file(path, load_public_keys(keydir))
    assert rep.ok and rep.kids == {"k1", "k2"}
    # the current public key alone cannot vouch for the older checkpoints
    rep = verify_file(path, load_public_keys(keydir / "audit-signing.pub"))
    assert rep.problems[0].reason == "forged" and "'k1'" in rep.problems[0].detail
    assert verify_file(path, load_public_keys(keydir / "audit-signing-k1.pub")).problems[0].seq > 4


async def _append_until_refused(log, ring, start: int, stop_after: int | None = None,
                                via: str = "append") -> list[str]:
    """Append records (``via`` append or record) as fast as the loop allows (yielding between them)
    until the log refuses one; return the request ids it accepted."""
    accepted = []
    i = start
    while stop_after is None or len(accepted) < stop_after:
        try:
            if via == "append":
                log.append(build_record(exchange(i), ring))
            else:
                log.record(exchange(i), ring)
        except AuditUnavailable:
            break
        accepted.append(f"req-{i:05d}")
        i += 1
        await asyncio.sleep(0)
    return accepted


async def test_a_record_appended_while_the_writer_sleeps_wakes_it(tmp_path, ring, keydir):
    """The writer sleeps without a timeout when idle; the append that finds it asleep must wake it,
    batch after batch, with no other traffic and no checkpoint timer to rescue it."""
    log = AuditLog(Audit(checkpoint_every=0, checkpoint_seconds=3600, fsync="never"), ring, directory=tmp_path)
    await log.start()
    for round_ in range(3):
        await eventually(lambda: log._idle)  # asleep, nothing due
        log.append(build_record(exchange(round_), ring))
        await eventually(lambda: log.lag == 0, timeout=5)
        assert f"req-{round_:05d}".encode() in log.path.read_bytes()
    await log.close()
    assert verify_file(log.path, load_public_keys(keydir)).records == 3


async def test_order_is_kept_across_many_groups(tmp_path, ring, keydir):
    log = AuditLog(Audit(checkpoint_every=13), ring, directory=tmp_path)
    await log.start()
    for burst in range(6):
        for j in range(50):
            log.append(build_record(exchange(burst * 50 + j), ring))
        await asyncio.sleep(0.06 if burst % 2 else 0)  # some bursts land in one group, some in several
    await log.close()
    objs = lines(log.path)
    assert [o["request_id"] for o in objs if "request_id" in o] == [f"req-{i:05d}" for i in range(300)]
    assert [o["seq"] for o in objs] == list(range(1, len(objs) + 1))
    assert verify_file(log.path, load_public_keys(keydir)).ok


@pytest.mark.parametrize("via", ["append", "record"])
async def test_appends_racing_close_are_written_or_refused_never_lost(tmp_path, ring, keydir, via):
    log = AuditLog(Audit(checkpoint_every=50), ring, directory=tmp_path)
    await log.start()
    producer = asyncio.create_task(_append_until_refused(log, ring, 0, via=via))
    await asyncio.sleep(0.02)
    await log.close()
    accepted = await producer
    assert accepted  # the producer ran before and during the close
    objs = lines(log.path)
    assert [o["request_id"] for o in objs if "request_id" in o] == accepted
    assert "checkpoint" in objs[-1] and objs[-1]["checkpoint"]["closed"] is True
    rep = verify_file(log.path, load_public_keys(keydir))
    assert rep.ok and rep.closed and rep.records == len(accepted)


@pytest.mark.parametrize("via", ["append", "record"])
async def test_appends_during_a_hand_over_keep_one_chain(tmp_path, keydir, via):
    from gateway.keys import KeyRing
    ring = KeyRing.load(keydir)
    old = AuditLog(Audit(checkpoint_every=7), ring, directory=tmp_path)
    await old.start()
    producer = asyncio.create_task(_append_until_refused(old, ring, 0, stop_after=400, via=via))
    await asyncio.sleep(0.01)
    new = AuditLog(Audit(checkpoint_every=5), ring, directory=tmp_path)
    await new.start()  # the producer keeps appending through ``old`` meanwhile
    accepted = await producer
    await old.close()
    await new.close()
    assert len(accepted) == 400
    objs = lines(new.path)
    assert [o["request_id"] for o in objs if "request_id" in o] == accepted
    assert sum("epoch" in o for o in objs) == 1
    rep = verify_file(new.path, load_public_keys(keydir))
    assert rep.ok and rep.closed and rep.records == 400


async def test_record_writes_the_same_line_as_append_of_build_record(tmp_path, ring, keydir):
    """``record(ex)`` defers building to the end of the loop's turn; the file must not tell the two
    apart: the same records, the same chain, the same bytes once seq, ts and prev are equal."""
    exs = [exchange(i, outcome=("forwarded", "blocked", "upstream_error")[i % 3],
                    detectors=("br.cpf", "intl.email", "intl.card", "secret.api_key", "health.term")) for i in range(40)]
    a = AuditLog(Audit(checkpoint_every=9), ring, directory=tmp_path / "a")
    b = AuditLog(Audit(checkpoint_every=9), ring, directory=tmp_path / "b")
    await a.start()
    await b.start()
    for i, ex in enumerate(exs):
        a.append(build_record(ex, ring))
        b.record(ex, ring)
        if i % 7 == 0:
            await asyncio.sleep(0)  # flushes of different sizes
    assert b.lag > 0 or b._pending  # queued, not yet chained
    await a.close()
    await b.close()
    keys = load_public_keys(keydir)
    assert verify_file(a.path, keys).ok and verify_file(b.path, keys).records == 40 and verify_file(b.path, keys).ok
    strip = {"seq", "ts", "prev", "hash"}
    ra = [{k: v for k, v in o.items() if k not in strip} for o in lines(a.path) if "request_id" in o]
    rb = [{k: v for k, v in o.items() if k not in strip} for o in lines(b.path) if "request_id" in o]
    assert ra == rb and len(ra) == 40
    # with the chain fields made equal, the stored lines are byte for byte the same
    from gateway.audit import chain
    la = [o for o in lines(a.path) if "request_id" in o][5]
    lb = [o for o in lines(b.path) if "request_id" in o][5]
    for k in strip:
        lb[k] = la[k]
    assert chain.seal(dict(la)) == chain.seal(dict(lb))


async def test_record_before_start_and_after_close_is_refused(tmp_path, ring):
    log = AuditLog(Audit(), ring, directory=tmp_path)
    with pytest.raises(AuditUnavailable):
        log.record(exchange(0), ring)
    await log.start()
    log.record(exchange(1))  # the log's own ring by default
    await log.close()
    with pytest.raises(AuditUnavailable):
        log.record(exchange(2), ring)
    assert [o["request_id"] for o in lines(log.path) if "request_id" in o] == ["req-00001"]


@pytest.mark.parametrize("via", ["append", "record"])
async def test_batch_fsync_syncs_at_every_checkpoint(tmp_path, ring, keydir, monkeypatch, via):
    """``fsync: batch`` syncs "at every checkpoint": also at the checkpoints that the loop chains
    every ``checkpoint_every`` records, not only at the timed and the closing ones."""
    from gateway.audit import writer
    monkeypatch.setattr(writer, "_BATCH_FSYNC_S", 3600.0)  # no once-a-second sync to hide a missing one
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    log = AuditLog(Audit(checkpoint_every=2, checkpoint_seconds=3600, fsync="batch"), ring, directory=tmp_path)
    await log.start()
    fd = log._fd
    synced.clear()

    def add(i):
        log.append(build_record(exchange(i), ring)) if via == "append" else log.record(exchange(i), ring)

    add(0)
    await eventually(lambda: log.lag == 0)
    assert fd not in synced  # a record alone waits for the batch sync
    add(1)  # completes a checkpoint
    await eventually(lambda: log.lag == 0)
    assert b'"checkpoint"' in log.path.read_bytes()
    assert fd in synced, "the checkpoint was written but not synced"
    await log.close()
    assert verify_file(log.path, load_public_keys(keydir)).ok
