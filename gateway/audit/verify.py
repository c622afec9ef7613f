"""Verify an audit file: every line's hash, every link, every checkpoint signature (SPEC section 2).

``verify_file`` walks the file once, holding only a small look-ahead, and stops at the first break of
the chain — after that nothing can be vouched for. The reasons it reports:

- ``changed``    — a line is not what was written (bad JSON, not canonical, or its hash does not match);
- ``forged``     — a line was rewritten with a recomputed hash (the next line links elsewhere), a
                   checkpoint does not verify or names an unknown key, lines follow a closed file, or a
                   file named ``audit-w<N>.jsonl`` holds the chain of another worker;
- ``missing``    — sequence numbers are skipped (lines removed);
- ``reordered``  — lines are out of order;
- ``duplicated`` — a line appears twice;
- ``truncated``  — the file ends without its closing checkpoint (or mid-line);
- ``gap``        — an epoch began after an unclean stop (crash recovery): records in flight were lost.
                   The chain links across a gap, so verification continues after it.
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit import chain

REASONS = ("changed", "forged", "missing", "reordered", "duplicated", "truncated", "gap")
_LOOKAHEAD = 64
_RECENT = 4096
_WORKER_FILE = re.compile(r"audit-w([0-9]+)\.jsonl\Z")  # the writer's file_name(worker)


class Problem(NamedTuple):
    """The first bad sequence number (or the one a gap starts at) and why."""

    seq: int
    reason: str
    """One of ``REASONS``."""
    detail: str


@dataclass
class Report:
    """What ``verify_file`` found in one file."""

    path: str
    lines: int = 0
    records: int = 0
    checkpoints: int = 0
    epochs: int = 0
    closed: bool = False
    """The file ends with a closing checkpoint."""
    signatures_checked: bool = False
    kids: set[str] = field(default_factory=set)
    """Key ids whose signatures verified."""
    unsigned_tail: int = 0
    """Lines after the last checkpoint (only possible with ``live``)."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Lines:
    """Raw lines of a file with a bounded look-ahead."""

    def __init__(self, f):
        self._f = f
        self._ahead: deque[bytes] = deque()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ahead:
            return self._ahead.popleft()
        line = self._f.readline()
        if not line:
            raise StopIteration
        return line

    def peek(self, n: int) -> list[bytes]:
        while len(self._ahead) < n:
            line = self._f.readline()
            if not line:
                break
            self._ahead.append(line)
        return list(self._ahead)[:n]


def _seq_of(raw: bytes) -> int | None:
    try:
        s = orjson.loads(raw).get("seq")
        return s if isinstance(s, int) else None
    except Exception:
        return None


def verify_file(path: str | os.PathLike[str], keys: dict[str, Ed25519PublicKey] | None = None, *,
                live: bool = False) -> Report:
    """Verify one audit file. ``keys`` (from ``gateway.keys.load_public_keys``) enables signature
    checks; without them only the hash chain is checked. ``live`` accepts a file still being written
    (no closing checkpoint, possibly a partial last line)."""
    rep = Report(str(path), signatures_checked=keys is not None)
    with open(path, "rb") as f:
        _walk(_Lines(f), rep, keys, live, _file_worker(path))
    return rep


def _file_worker(path: str | os.PathLike[str]) -> int | None:
    """The worker whose chain a file is by its name (``audit-w<N>.jsonl``, as the writer names it), or
    None for any other name (an archive, a copy): then the file is only its own chain.

    Why: every link and signature of a worker's intact file still holds when it is copied over another
    worker's file, which would silently lose that worker's records; the epochs say whose chain it is."""
    m = _WORKER_FILE.match(os.path.basename(os.fspath(path)))
    return int(m.group(1)) if m else None


def _walk(lines: _Lines, rep: Report, keys, live: bool, worker: int | None = None) -> None:
    expected_seq, expected_prev = 1, chain.GENESIS
    last: dict | None = None
    epoch_id = None
    recent: deque[tuple[int, str]] = deque(maxlen=_RECENT)

    def fail(seq: int, reason: str, detail: str) -> None:
        rep.problems.append(Problem(seq, reason, detail))

    for raw in lines:
        if not raw.endswith(b"\n"):
            if live:
                return  # a write in progress
            fail(expected_seq, "truncated", "the file ends in the middle of a line")
            return
        rep.lines += 1
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            fail(expected_seq, "changed", f"line {rep.lines} is not valid JSON")
            return
        seq, prev, h = (obj.get("seq"), obj.get("prev"), obj.get("hash")) if isinstance(obj, dict) else (None,) * 3
        if not (isinstance(seq, int) and isinstance(prev, str) and isinstance(h, str)):
            fail(expected_seq, "changed", f"line {rep.lines} lacks seq, prev or hash")
            return
        why = chain.check_line(raw, obj)
        if why is not None:
            fail(expected_seq, "changed", f"line {rep.lines} {why}")
            return
        # The line is intact in itself; now its place in the chain.
        if seq < expected_seq:
            if (seq, h) in recent:
                fail(seq, "duplicated", f"line {rep.lines} repeats seq {seq}")
            else:
                fail(seq, "reordered", f"seq {seq} appears after seq {expected_seq - 1}")
            return
        if seq > expected_seq:
            if any(_seq_of(r) == expected_seq for r in lines.peek(_LOOKAHEAD)):
                fail(expected_seq, "reordered", f"seq {expected_seq} appears after seq {seq}")
            elif expected_seq == 1:
                fail(1, "missing", f"the file does not begin with its first line (it begins at seq {seq})")
            else:
                span = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
                fail(expected_seq, "missing", f"{span} removed (seq {seq} follows seq {expected_seq - 1})")
            return
        if prev != expected_prev:
            if seq == 1:
                fail(1, "forged", "the first line does not start from the genesis hash")
            else:
                fail(seq - 1, "forged", f"seq {seq - 1} was rewritten with a recomputed hash: seq {seq} "
                                        "links to a different line")
            return
        recent.append((seq, h))
        k = chain.kind(obj)
        after_close = last is not None and chain.kind(last) == "checkpoint" and last["checkpoint"].get("closed") is True
        if k == "epoch":
            ep = obj["epoch"] if isinstance(obj["epoch"], dict) else {}
            rep.epochs += 1
            epoch_id = ep.get("id")
            if worker is not None and ep.get("worker") != worker:
                other = ep.get("worker")
                whose = f"worker {other}" if type(other) is int else "no worker"
                fail(seq, "forged", f"epoch {epoch_id} is the chain of {whose}, but this is the file of worker {worker}")
                return
            unclean = (last is not None and not after_close) or ep.get("reason") == "recovered"
            if unclean:
                fail(seq, "gap", f"epoch {epoch_id} began after an unclean stop (no closing checkpoint before it): "
                                 f"records in flight were lost; {ep.get('discarded_bytes', 0)} bytes of a partial "
                                 "line were discarded")
        elif last is None:
            fail(seq, "forged", "the file does not begin with an epoch line")
            return
        elif after_close:
            fail(seq, "forged", f"seq {seq} follows the closing checkpoint without a new epoch")
            return
        elif k == "checkpoint":
            cp = obj["checkpoint"] if isinstance(obj["checkpoint"], dict) else {}
            if cp.get("head") != prev or cp.get("epoch") != epoch_id:
                fail(seq, "forged", f"checkpoint at seq {seq} vouches for a different chain head or epoch")
                return
            if keys is not None:
                why = chain.check_signature(obj, keys)
                if why is not None:
                    fail(seq, "forged", f"checkpoint at seq {seq}: {why}")
                    return
                rep.kids.add(str(cp.get("kid")))
            rep.checkpoints += 1
            rep.unsigned_tail = -1
        else:
            rep.records += 1
        rep.unsigned_tail += 1
        last = obj
        expected_seq, expected_prev = seq + 1, h
    if last is None:
        fail(1, "truncated", "the file is empty")
        return
    rep.closed = chain.kind(last) == "checkpoint" and last["checkpoint"].get("closed") is True
    if not rep.closed:
        # lines after the last checkpoint: the writer's open tail, or what is left of a cut file
        if live:
            return
        fail(expected_seq, "truncated", f"the file ends at seq {expected_seq - 1} without its closing checkpoint "
                                        "(use --live for a file that is still being written)")
