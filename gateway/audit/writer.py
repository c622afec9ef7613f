"""The audit writer: one hash-chained file per worker; the disk work happens off the event loop.

``record(ex)`` (the proxy's call) and ``append(record)`` only queue; at the end of the loop's turn
``_flush`` chains the turn's records together, on the loop (``seq``, ``ts``, ``prev``, ``hash``)
and adds the sealed lines to a buffer; nothing blocks on the disk. With the compiled encoder
(``_record_c.chain``) a run of ``record(ex)`` items is one C call that writes every line straight
into the buffer (no Python object per record; SHA-256 on the CPU's SHA extensions where it has
them); the reference (``build_record`` + ``chain.seal``) seals what it leaves, one at a time. A
background thread wakes when records arrive while it sleeps (an event set only then, not per
record), lets more gather for ``_GROUP_WINDOW_S``, takes the whole buffer and writes it with one
``write``, then syncs per policy:

- ``fsync: always`` — after every batch;
- ``fsync: batch``  — at every checkpoint and at least once a second while there is unsynced data;
- ``fsync: never``  — only at close (the OS decides).

Chaining on the loop rather than in the thread is what makes auditing cheap: the loop is the only
producer, so the chain needs no queue, no per-record hand-off and no per-record GIL hand-over; the
thread only ever holds the GIL for a swap and a system call per group. Checkpoints every
``checkpoint_every`` records are signed where the record that completes them is chained; checkpoints
after ``checkpoint_seconds`` and the closing one are added by the thread. One lock guards the chain
and the buffer.

With ``witness`` set, every epoch and checkpoint line is also appended to that file (after the
chain file has it, so the witness never holds a line the chain file lacks); ``soberana audit verify
--witness`` compares the two. A witness that cannot be written is logged and retried every ``retry_s``,
and never stops forwarding: the chain file is the record, the witness only a copy of its
anchors.

Any write, sync or file error (disk full, permissions, the file or its folder removed) turns the log
unhealthy: ``healthy`` goes false, ``append`` raises ``AuditUnavailable`` and the server stops
forwarding (SPEC section 9: a request whose audit record cannot be written is not forwarded). Every
``retry_s`` the writer tries the same file again; a restart does the same. Recovery truncates a
partial last line and opens a ``recovered`` epoch that ``verify`` reports as a gap. A removed file or
folder is never re-created (that would hide the removal): the log stays down until an operator acts.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import secrets
import select
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from gateway import metrics
from gateway.audit import chain
from gateway.audit.record import build_record
from gateway.config import Audit
from gateway.keys import KeyRing

log = logging.getLogger("soberana.audit")

# The compiled record encoder (gateway/audit/_record_c.pyx) when it is built: the same bytes as
# build_record + chain.seal, a few times cheaper. SOBERANA_NO_EXTENSIONS=1 keeps the reference.
_c: Any = None
if os.environ.get("SOBERANA_NO_EXTENSIONS") != "1":
    try:
        from gateway.audit import _record_c as _c
    except ImportError:  # pragma: no cover - built without extensions
        _c = None
IMPLEMENTATION = "cython" if _c is not None else "python"
"""Which record encoder ``AuditLog.record`` uses: ``cython`` or ``python`` (the reference)."""

_LIVE: dict[str, "AuditLog"] = {}  # the started, unclosed log of each file in this process
_BATCH_FSYNC_S = 1.0
_GROUP_WINDOW_S = 0.05
"""After waking for a record, let more gather this long before writing. A wake-up of the writer
thread costs far more CPU than a record (a wake-up, a write and a GIL hand-off are ~50-150 µs on the
2-core reference box), so under load one wake-up serves a whole group. Appends never wait for the
write, so this costs requests nothing; records reach the disk up to this much later (they are
equally lost in a crash either way until the next sync)."""


class _Signal:
    """An event that resets when a wait consumes it, on one C lock (locked = not set). The writer
    thread wakes about twenty times a second under load; ``threading.Event`` is a ``Condition``
    written in Python, whose wait and clear cost that thread more CPU than its write did."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """True when set (and now clear again), False after ``timeout`` seconds."""
        return self._lock.acquire(True, -1 if timeout is None else timeout)

    def clear(self) -> None:
        self._lock.acquire(False)


class AuditUnavailable(Exception):
    """The audit sink cannot take records; the request must not be forwarded."""


def _last_line(fd: int, size: int) -> tuple[int, bytes | None]:
    """(offset of the file's last newline or -1, the whole line it ends or None)."""
    pos, buf = size, b""
    while True:
        start = max(0, pos - 65536)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        nl = buf.rfind(b"\n")
        if nl >= 0:
            before = buf.rfind(b"\n", 0, nl)
            if before >= 0 or pos == 0:
                return pos + nl, buf[before + 1:nl]
        elif pos == 0:
            return -1, None


def _close(fd: int) -> int:
    """Close ``fd`` if open, whatever the OS says (the file is being let go of); returns -1."""
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    return -1


def file_name(worker: int) -> str:
    """The chain file of a worker: ``audit-w<worker>.jsonl``."""
    return f"audit-w{worker}.jsonl"


class AuditLog:
    """A worker's tamper-evident audit file. ``await start()``, then ``append`` per request, then
    ``await close()`` (final checkpoint with ``closed: true``)."""

    retry_s = 5.0
    """After a write failure, how often the writer tries the file again."""
    max_queue = 100_000
    """Records chained but not yet written beyond which ``append`` refuses (the disk cannot keep up)."""

    witness_backlog = 10_000
    """Witness lines kept for a retry while the witness file cannot be written (the oldest go first)."""

    def __init__(self, cfg: Audit, ring: KeyRing, *, directory: Path, worker: int = 0, witness: Path | None = None):
        self.cfg = cfg
        self.ring = ring
        self.directory = Path(directory)
        self.worker = worker
        self.path = self.directory / file_name(worker)
        # Guarded by _lock: the chain (_seq, _head, checkpoint counters), the buffer of sealed lines
        # not yet handed to the thread, and _healthy/_idle transitions.
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._buf_records = 0
        self._out: list[bytes] | None = [] if cfg.stdout else None  # the same lines, for stdout
        self._idle = False  # the thread sleeps until woken: the next append sets _wake
        self._wake = _Signal()
        self._stopping: str | None = None  # "close" or "hand_over", set by the loop
        self._pending: list[tuple] = []  # (time, record or Exchange, ring or None) not yet chained
        self._flush_soon = False  # a _flush is scheduled on the loop
        self._turn_room = 0  # records record() may still queue this turn without the checks of _enqueue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._appended = 0  # written only by the loop thread (accepted)
        self._dropped = 0   # written only by the loop thread (accepted, then lost to a failure)
        self._done = 0      # written only by the writer thread (written or dropped)
        self._healthy = False
        self._closed = False
        self.error: str | None = None
        """Why the log is unhealthy (an errno name or a short phrase; never a value)."""
        self._fd = -1
        self._thread: threading.Thread | None = None
        self._seq = 1
        self._head = chain.GENESIS
        self._epoch = ""
        self._epoch_records = 0
        self._since_cp = 0
        self._last_cp = time.monotonic()
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._checkpoints = 0
        self._committed_checkpoints = 0
        """``_checkpoints`` when the last buffer was written (and, under ``fsync: batch``, synced)."""
        self._last_link_check = 0.0
        self.writer_cpu_s = 0.0
        """CPU seconds the writer thread used (set when it ends; for benchmarks)."""
        self._successor: AuditLog | None = None
        self.witness = Path(witness) if witness is not None else None
        """The file that also receives every epoch and checkpoint line, or None."""
        self._witness: list[bytes] = []  # epoch and checkpoint lines for it, not yet written (under _lock)
        self._witness_fd = -1
        self._witness_error: str | None = None  # why the last witness write failed (logged once per failure)
        self._witness_retry_at = 0.0

    # -- the loop side -------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """True while records are being written."""
        s = self._successor
        return s.healthy if s is not None else self._healthy

    @property
    def accepting(self) -> bool:
        """True while a request may be forwarded: the log is writing and well short of ``max_queue``.

        A stalled disk (a hung NFS server, a frozen volume) raises no error: ``healthy`` stays true
        while records pile up unwritten, until ``append`` refuses them past ``max_queue``. Checked
        against ``healthy`` alone, requests went on being forwarded and their records were dropped.
        A tenth of ``max_queue`` is left for the records of requests already in flight."""
        s = self._successor
        if s is not None:
            return s.accepting
        return self._healthy and not self._closed and \
            self._appended - self._done - self._dropped < self.max_queue - self.max_queue // 10

    @property
    def lag(self) -> int:
        """Records accepted and not yet written (for metrics and readiness)."""
        own = self._appended - self._done - self._dropped
        return own + self._successor.lag if self._successor is not None else own

    def record(self, ex: Any, ring: KeyRing | None = None) -> None:
        """Audit the request ``ex`` (a finished ``gateway.exchange.Exchange``): what
        ``append(build_record(ex, ring))`` does, but the record is built and chained a moment later,
        together with the others of this turn of the event loop (see ``_flush``). Keeps a reference to
        ``ex`` until then, so the Exchange must not change after this call. Raises
        ``AuditUnavailable`` exactly when ``append`` would."""
        if self._turn_room > 0 and self._healthy:  # _enqueue's checks, made once per turn
            self._turn_room -= 1
            self._pending.append((time.time(), ex, ring or self.ring))
            self._appended += 1
            return
        self._enqueue((time.time(), ex, ring or self.ring))

    def append(self, record: dict) -> None:
        """Queue ``record`` (from ``build_record``; the log takes ownership of the dict and adds
        ``seq``, ``ts``, ``prev`` and ``hash`` to it); it is chained with the others of this turn of
        the event loop. Never blocks on the disk; raises ``AuditUnavailable`` when the sink is failing,
        closed, not started or too far behind."""
        self._enqueue((time.time(), record, None))

    def _enqueue(self, item: tuple) -> None:
        if self._successor is not None:
            return self._successor._enqueue(item)
        if not self._healthy or self._closed:
            raise AuditUnavailable(f"audit log {self.path.name} is not writing ({self.error or 'not started'})")
        if self._appended - self._done - self._dropped >= self.max_queue:
            raise AuditUnavailable(f"audit log {self.path.name} is {self.max_queue} records behind")
        self._pending.append(item)
        self._appended += 1
        if not self._flush_soon:
            self._flush_soon = True
            # until the flush: no successor, not closed (both reset this), healthy (checked per
            # record), and this much room under max_queue
            self._turn_room = self.max_queue - (self._appended - self._done - self._dropped)
            try:
                self._loop.call_soon(self._flush)
            except (AttributeError, RuntimeError):  # no loop (or a closed one): chain it now
                self._flush()

    def _flush(self) -> None:
        """Build and chain the records queued since the last flush, in one go, on the loop.

        Why not at once: a request's audit work run on its own runs with cold caches (the rest of
        the request has evicted the hashing, serialization and record code), and costs two to three
        times what the same work costs back to back. Deferring it to the end of the loop's turn
        batches the records of every request that finished in that turn."""
        self._flush_soon = False
        self._turn_room = 0
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._successor is not None:  # handed over meanwhile: the chain goes on there
            for item in pending:
                self._successor._pending.append(item)
            self._appended -= len(pending)
            self._successor._appended += len(pending)
            return self._successor._flush()
        lock = self._lock
        lock.acquire()  # (not ``with``: the context manager costs more)
        try:
            if not self._healthy:  # the sink failed after these were accepted: lost, like any in flight
                self._dropped += len(pending)
                self._publish_lag()
                return
            self._chain(pending)
            self._publish_lag()
            wake = self._idle
            self._idle = False
        finally:
            lock.release()
        if wake:
            self._wake.set()  # only when the thread sleeps with nothing to do: once per group, not per record

    def _chain(self, pending: list[tuple]) -> None:
        """Chain ``pending`` onto the buffer (under the lock), with a checkpoint every
        ``checkpoint_every`` records. The compiled encoder takes runs of ``record(ex)`` items in one
        call each; what it leaves (an ``append``ed dict, an Exchange it finds unusual) is built and
        sealed by the reference, one at a time."""
        every = self.cfg.checkpoint_every
        buf, out = self._buf, self._out
        chain_c = _c.chain if _c is not None else None
        i, n = 0, len(pending)
        while i < n:
            if chain_c is not None:
                room = max(1, every - self._since_cp) if every > 0 else n
                at = len(buf)
                try:
                    j, self._seq, self._head = chain_c(pending, i, buf, self._seq, self._head, room)
                except Exception as e:  # (out of memory): the rest of this group takes the reference
                    log.error("compiled audit chaining failed (%s); using the reference", type(e).__name__)
                    chain_c, j = None, i
                if j > i:
                    k = j - i
                    self._epoch_records += k
                    self._since_cp += k
                    self._buf_records += k
                    if out is not None:
                        out.extend(bytes(buf[at:]).splitlines(keepends=True))
                    if every > 0 and self._since_cp >= every:
                        buf += self._checkpoint(False)
                    i = j
                    continue
            t, rec, ring = pending[i]  # what the compiled encoder left (or all, without it)
            i += 1
            if ring is not None:
                try:
                    rec = build_record(rec, ring)
                except Exception as e:  # one bad record must not lose the others (type only: no values)
                    self._appended -= 1
                    log.error("building the audit record failed for request %s: %s",
                              getattr(rec, "request_id", "?"), type(e).__name__)
                    continue
            line = self._seal_record(t, rec)
            buf += line
            self._buf_records += 1
            if out is not None:
                out.append(line)
            if every > 0 and self._since_cp >= every:
                buf += self._checkpoint(False)

    async def start(self) -> None:
        """Open the file (creating folder and file), recover it after a crash, write the epoch line
        and start the writer thread. Raises ``AuditUnavailable`` when the file cannot be opened or is
        held by another process.

        When another log of this process is writing the same file (a reload that changed the audit
        settings), this one takes over its chain: the old log writes what it has and hands over the
        open file, the chain and whatever was appended meanwhile; later appends to it land here, and
        the file gets no epoch and no gap."""
        if self._thread is not None:
            return
        key = os.path.abspath(self.path)
        prev = _LIVE.get(key)
        loop = asyncio.get_running_loop()
        if prev is not None and prev is not self and prev._thread is not None and not prev._closed \
                and prev._healthy and prev._fd >= 0:
            prev._stopping = "hand_over"
            prev._wake.set()
            await loop.run_in_executor(None, prev._thread.join)  # appends meanwhile still go to prev
            prev._flush()  # what was queued meanwhile joins prev's chain (its writer ended healthy)
            with prev._lock:
                prev._closed = True
                if prev._fd < 0 or not prev._healthy:  # its last write failed: nothing to take over
                    raise AuditUnavailable(f"audit file {self.path} failed during the hand-over ({prev.error})")
                self._fd, prev._fd = prev._fd, -1
                for name in ("_seq", "_head", "_epoch", "_epoch_records", "_since_cp", "_last_cp", "_unsynced",
                             "_last_sync", "_buf", "_buf_records", "_checkpoints", "_committed_checkpoints"):
                    setattr(self, name, getattr(prev, name))
                if self.witness is not None:  # lines its witness could not take yet go to this one's
                    self._witness = prev._witness + self._witness
                if self._out is not None and prev._out is not None:
                    self._out = prev._out
                self._appended = self._buf_records
                prev._dropped += prev._buf_records  # (not lost: counted by this log from now on)
                prev._buf, prev._buf_records, prev._healthy = bytearray(), 0, False
                prev.error = "handed over"
                prev._successor, prev._turn_room = self, 0
                self._healthy = True
        else:
            await loop.run_in_executor(None, self._open)
            self._healthy = True
        _LIVE[key] = self
        self._loop = loop
        # The gauge is set where the health changes (here, _fail, _reopen): set only at a scrape, it
        # showed a pre-forked worker's failure only once a scrape happened to reach that worker.
        metrics.set_audit_healthy(self._healthy)
        self._thread = threading.Thread(target=self._run, name=f"audit-w{self.worker}", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Write what is chained, a final checkpoint marked ``closed``, sync and close the file.
        (A log that handed its file over to a successor has nothing left to close.)"""
        if self._closed:
            return
        self._flush()  # what was accepted is chained before the closing checkpoint ...
        self._turn_room = 0
        self._closed = True  # ... and from now on appends are refused, never silently dropped
        if self._thread is None:
            return
        self._stopping = "close"
        self._wake.set()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._healthy = False
        self.error = self.error or "closed"
        key = os.path.abspath(self.path)
        if _LIVE.get(key) is self:
            del _LIVE[key]

    # -- the chain (under the lock) ------------------------------------------------------------

    def _checkpoint(self, closed: bool) -> bytes:
        kid, key = self.ring.signing_key()
        line = chain.checkpoint(self._seq, self._head, kid=kid, key=key, epoch=self._epoch, closed=closed,
                                records=self._epoch_records)
        self._anchor(line)
        self._head = line[-67:-3].decode()  # the stored form ends with "hash":"<64 hex>"}\n
        self._seq += 1
        self._since_cp = 0
        self._last_cp = time.monotonic()
        self._checkpoints += 1
        return line

    def _anchor(self, line: bytes) -> None:
        """An epoch or checkpoint line, chained (under the lock): copied to the witness and to stdout,
        which thus carry what makes them verifiable (``audit verify --witness``), not records alone."""
        if self.witness is not None:
            self._witness.append(line)
        if self._out is not None:
            self._out.append(line)

    def _seal_record(self, t: float, rec: dict) -> bytes:
        rec["seq"], rec["ts"], rec["prev"] = self._seq, chain.iso_ts(t), self._head
        try:
            line = chain.seal(rec)
        except TypeError:  # a bug upstream must not break the chain or leak a repr of a value
            rid = rec.get("request_id")
            rec = {"seq": self._seq, "ts": rec["ts"], "prev": self._head, "invalid_record": True,
                   "request_id": rid if isinstance(rid, str) else None, "outcome": "rejected"}
            line = chain.seal(rec)
        self._head = rec["hash"]
        self._seq += 1
        self._epoch_records += 1
        self._since_cp += 1
        return line

    # -- the writer thread ---------------------------------------------------------------------

    def _open(self, create: bool = True) -> None:
        """Open (``create``: also the folder and the file), lock, recover and write the epoch line."""
        try:
            if create:
                self.directory.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
            fd = os.open(self.path, flags, 0o640)
        except OSError as e:
            raise AuditUnavailable(f"cannot open audit file {self.path}: {errno.errorcode.get(e.errno, e.strerror)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AuditUnavailable(f"audit file {self.path} is held by another writer") from None
        try:
            reason, discarded = self._recover(fd)
            self._fd = fd
            self._epoch = secrets.token_hex(8)
            line = {"seq": self._seq, "ts": chain.iso_ts(time.time()), "prev": self._head,
                    "epoch": {"id": self._epoch, "worker": self.worker, "pid": os.getpid(), "reason": reason,
                              "discarded_bytes": discarded}}
            sealed = chain.seal(line)
            self._write(sealed)
            with self._lock:
                self._anchor(sealed)
            self._head = line["hash"]
            self._seq += 1
            os.fsync(fd)
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except AuditUnavailable:
            os.close(fd)
            self._fd = -1
            raise
        except OSError as e:
            os.close(fd)
            self._fd = -1
            raise AuditUnavailable(f"cannot write audit file {self.path}: {errno.errorcode.get(e.errno, e.strerror)}") from None
        if reason == "recovered":
            log.warning("audit file %s was not closed cleanly: recovered at seq %d (%d bytes of a partial "
                        "line discarded); verify will report a gap", self.path, self._seq - 1, discarded)

    def _recover(self, fd: int) -> tuple[str, int]:
        """Find the last whole line, drop a partial tail, and continue the chain from there.
        Returns (epoch reason, bytes discarded)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return "new", 0
        last_nl, last = _last_line(fd, size)
        discarded = size - (last_nl + 1)
        if discarded:
            os.ftruncate(fd, last_nl + 1)
            os.fsync(fd)
        if last is None:
            return "recovered", discarded  # not one whole line survived
        try:
            rec = orjson.loads(last)
            seq, head = int(rec["seq"]), str(rec["hash"])
        except Exception:
            raise AuditUnavailable(f"the last line of {self.path} is not an audit line; run `soberana audit "
                                   "verify` on it and move it aside") from None
        self._seq, self._head = seq + 1, head
        closed = isinstance(rec.get("checkpoint"), dict) and rec["checkpoint"].get("closed") is True
        return ("reopened" if closed and not discarded else "recovered"), discarded

    def _write(self, buf: bytes | bytearray) -> None:
        view = memoryview(buf)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def _reopen(self) -> None:
        """After a failure, try the same file again (never re-creating a removed file or folder: that
        would hide the removal). On success the chain continues in a ``recovered`` epoch, which
        verify reports as a gap: the records of the failed batch were lost. Runs while the log is
        unhealthy, so that no append touches the chain meanwhile."""
        self._fd = _close(self._fd)
        try:
            self._open(create=False)
        except AuditUnavailable:
            return
        self._unsynced = False
        with self._lock:
            self._since_cp = self._epoch_records = 0
            self.error = None
            self._healthy = True
        metrics.set_audit_healthy(True)
        log.warning("audit file %s is writing again (seq %d); records lost in the failure show as a gap",
                    self.path, self._seq - 1)

    def _timeout(self) -> float | None:
        if not self._healthy:
            return self.retry_s
        now = time.monotonic()
        waits = []
        if self._since_cp:
            waits.append(self._last_cp + self.cfg.checkpoint_seconds - now)
        if self._unsynced and self.cfg.fsync == "batch":
            waits.append(self._last_sync + _BATCH_FSYNC_S - now)
        if self._witness:  # lines kept after a failed witness write
            waits.append(self._witness_retry_at - now)
        return max(0.0, min(waits)) if waits else None

    def _run(self) -> None:
        last_try = time.monotonic()
        while True:
            with self._lock:
                self._idle = not self._buf_records and not self._witness_due() and self._stopping is None
            if self._idle:
                self._wake.wait(self._timeout())
                self._wake.clear()
                self._idle = False  # a timer woke us, or an append or close (which set it already)
                if self._buf_records and self._stopping is None:
                    self._wake.wait(_GROUP_WINDOW_S)  # let more records gather; close cuts it short
            stopping = self._stopping
            if not self._healthy or self._fd < 0:
                with self._lock:  # dropped: the server already refuses to forward
                    self._drop_buffer()
                if stopping is not None:
                    break
                if not self._closed and time.monotonic() - last_try >= self.retry_s:
                    last_try = time.monotonic()
                    self._reopen()
                continue
            closing = stopping == "close"
            with self._lock:
                now = time.monotonic()
                if closing or (self._since_cp and now - self._last_cp >= self.cfg.checkpoint_seconds):
                    self._buf += self._checkpoint(closing)
                # Counted after the timed one: the loop chains a checkpoint every checkpoint_every
                # records into the buffer too, and ``fsync: batch`` owes each of them a sync (comparing
                # with the count before the timed checkpoint missed every one of those).
                checkpoints = self._checkpoints
                buf, n, out = self._buf, self._buf_records, self._out
                self._buf, self._buf_records = bytearray(), 0
                witnessed = None
                if self._witness and (closing or self._witness_due()):
                    witnessed, self._witness = self._witness, []
                if out is not None:
                    self._out = []
                if closing:  # nothing may be chained after the closing checkpoint
                    self._healthy = False
            try:
                self._commit(buf, out, now, force=closing or checkpoints != self._committed_checkpoints)
                self._committed_checkpoints = checkpoints
            except Exception as e:  # noqa: BLE001 — any failure of the sink fails closed
                with self._lock:
                    self._fail(e)
                    self._drop_buffer()
            else:
                if witnessed:  # only what the chain file now holds
                    self._write_witness(witnessed)
            with self._lock:
                self._done += n
                self._publish_lag()
            if stopping is not None:
                break
            if not self._idle and self._healthy:
                self._wake.wait(_GROUP_WINDOW_S)  # under load: the next group gathers meanwhile
                self._wake.clear()
        self.writer_cpu_s = time.thread_time()
        self._witness_fd = _close(self._witness_fd)  # (a successor opens its own)
        if stopping == "hand_over" and self._healthy:
            return  # the successor owns the file (and what was appended since) now
        if self._fd >= 0:
            try:
                os.close(self._fd)  # also releases the lock
            except OSError:
                pass
            self._fd = -1

    def publish_lag(self) -> None:
        """Set the lag gauge to the lag now (for a scrape)."""
        with self._lock:
            self._publish_lag()

    def _publish_lag(self) -> None:
        """Set the lag gauge, under ``_lock`` (held by the caller). It is set where the lag changes, by
        the loop when it chains records and by the writer thread when it has written them, both under
        the lock so that a value computed earlier cannot overwrite a later one. Set only per request
        and per scrape, a pre-forked worker kept the lag of its last request (records since written)
        until a scrape happened to reach it: an idle fleet reported records behind."""
        metrics.set_audit_lag(float(self.lag))

    def _drop_buffer(self) -> None:
        self._done += self._buf_records
        self._publish_lag()
        self._buf, self._buf_records = bytearray(), 0
        if self._out is not None:
            self._out = []

    def _commit(self, buf: bytearray, out: list[bytes] | None, now: float, *, force: bool) -> None:
        if not buf:
            self._sync(now, force=False)
            return
        self._write(buf)
        if now - self._last_link_check >= 1.0:  # a removed file takes writes without complaint
            self._last_link_check = now
            if os.fstat(self._fd).st_nlink == 0:
                raise FileNotFoundError(errno.ENOENT, "audit file was removed")
        self._unsynced = True
        if out:
            self._write_stdout(out)
        self._sync(now, force=force)

    def _sync(self, now: float, *, force: bool) -> None:
        if not self._unsynced:
            return
        policy = self.cfg.fsync
        if (policy == "always" or force or (policy == "batch" and now - self._last_sync >= _BATCH_FSYNC_S)) \
                and (policy != "never" or self._closed):
            os.fsync(self._fd)
            self._unsynced = False
            self._last_sync = now

    def _witness_due(self) -> bool:
        """Witness lines wait to be written, and the witness is not between failed tries."""
        return bool(self._witness) and (self._witness_error is None or time.monotonic() >= self._witness_retry_at)

    def _write_witness(self, lines: list[bytes]) -> None:
        """Append ``lines`` to the witness file and sync it (its lines are few: an epoch line per start,
        a checkpoint per ``checkpoint_every`` records or ``checkpoint_seconds``). On failure they are
        kept for the next group, up to ``witness_backlog``."""
        try:
            if self._witness_fd < 0:
                self.witness.parent.mkdir(parents=True, exist_ok=True)
                self._witness_fd = os.open(self.witness, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self._write_all(self._witness_fd, b"".join(lines))  # one append: workers sharing it never interleave
            if self.cfg.fsync != "never":
                os.fsync(self._witness_fd)
        except OSError as e:
            why = errno.errorcode.get(e.errno, "oserror") if e.errno is not None else type(e).__name__
            if self._witness_error is None:
                log.error("audit witness %s cannot be written (%s): its lines are kept and retried; the chain "
                          "file is unaffected", self.witness, why)
            self._witness_error = why
            self._witness_retry_at = time.monotonic() + self.retry_s
            self._witness_fd = _close(self._witness_fd)
            with self._lock:
                self._witness[:0] = lines
                del self._witness[:max(0, len(self._witness) - self.witness_backlog)]
            return
        if self._witness_error is not None:
            log.warning("audit witness %s is writing again", self.witness)
            self._witness_error = None

    @staticmethod
    def _write_stdout(lines: list[bytes]) -> None:
        """Whole lines in writes of at most PIPE_BUF bytes, so that workers sharing one stdout pipe
        never interleave inside a line (a single longer line is written alone)."""
        chunk = b""
        for line in lines:
            if chunk and len(chunk) + len(line) > select.PIPE_BUF:
                AuditLog._write_all(1, chunk)
                chunk = b""
            chunk += line
        if chunk:
            AuditLog._write_all(1, chunk)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _fail(self, e: BaseException) -> None:
        self._healthy = False
        metrics.set_audit_healthy(False)  # from the writer thread: prometheus values take their own lock
        if isinstance(e, OSError) and e.errno is not None:
            self.error = errno.errorcode.get(e.errno, "oserror")
        else:
            self.error = type(e).__name__
        log.critical("audit file %s cannot be written (%s): the gateway stops forwarding", self.path, self.error)
