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

What the file alone cannot show: a file cut back to one of its own closing checkpoints (whole epochs
removed from its end) is a valid closed file, and so is an open file cut back to any checkpoint under
``--live``. ``check_witness`` compares a file with a *witness* (``audit.witness``: the same epoch and
checkpoint lines, appended elsewhere as they are written): every witnessed line of the file's chain
must be in it, at its ``seq``, byte for byte.
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
    epoch_ids: set[str] = field(default_factory=set)
    """The ids of the file's epochs."""
    anchors: dict[int, str] = field(default_factory=dict)
    """``seq`` -> ``hash`` of the file's epoch and checkpoint lines (what a witness holds)."""
    last: tuple[int, str] = (0, chain.GENESIS)
    """``seq`` and ``hash`` of the last line that holds its place in the chain."""

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
            if isinstance(epoch_id, str):
                rep.epoch_ids.add(epoch_id)
            rep.anchors[seq] = h
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
            rep.anchors[seq] = h
            rep.unsigned_tail = -1
        else:
            rep.records += 1
        rep.unsigned_tail += 1
        last = obj
        expected_seq, expected_prev = seq + 1, h
        rep.last = (seq, h)
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


class Witnessed(NamedTuple):
    """An epoch or checkpoint line as a witness holds it."""

    seq: int
    hash: str
    prev: str
    kind: str
    """``epoch`` or ``checkpoint``."""
    epoch: str
    """The id of the epoch it opens or vouches for."""


@dataclass
class Witness:
    """The lines of witness files (``read_witness``), with what could not be used."""

    lines: list[Witnessed] = field(default_factory=list)
    skipped: int = 0
    """Lines that are not whole, intact epoch or checkpoint lines (a write cut short, another file)."""
    problems: list[str] = field(default_factory=list)
    """Witnessed checkpoints whose signature does not verify: the witness itself was forged."""


def read_witness(paths: list[str], keys: dict[str, Ed25519PublicKey] | None = None) -> Witness:
    """The epoch and checkpoint lines of witness files (an ``audit.witness`` file, or the lines an
    ``audit.stdout`` stream shipped, whose records are passed over). Each line is checked on its own
    (stored form and hash; a checkpoint's signature when ``keys`` are given); lines that are not
    whole, intact audit lines are counted as ``skipped``. Read it before the audit files it is compared with: the
    writer appends to the witness after the chain file, so a witness read first never holds a line
    the chain file, read after it, lacks."""
    w = Witness()
    seen: set[tuple[int, str]] = set()
    for path in paths:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    obj = orjson.loads(raw) if raw.endswith(b"\n") else None
                    ok = isinstance(obj, dict) and isinstance(obj.get("seq"), int) and \
                        isinstance(obj.get("prev"), str) and isinstance(obj.get("hash"), str) and \
                        chain.check_line(raw, obj) is None
                except (orjson.JSONDecodeError, TypeError):
                    ok = False
                k = chain.kind(obj) if ok else None
                if k == "record":  # a shipped stream (audit.stdout) holds the records too
                    continue
                body = obj.get(k) if ok else None
                if not isinstance(body, dict) or not isinstance(body.get("id" if k == "epoch" else "epoch"), str):
                    w.skipped += 1
                    continue
                if k == "checkpoint" and keys is not None:
                    why = chain.check_signature(obj, keys)
                    if why is not None:
                        w.problems.append(f"{path} line {n}: checkpoint seq {obj['seq']}: {why}")
                        continue
                if (obj["seq"], obj["hash"]) in seen:  # a retried append after a failed one
                    continue
                seen.add((obj["seq"], obj["hash"]))
                w.lines.append(Witnessed(obj["seq"], obj["hash"], obj["prev"], k,
                                         body["id"] if k == "epoch" else body["epoch"]))
    return w


def check_witness(rep: Report, witness: Witness) -> tuple[list[Problem], set[str]]:
    """What the witness holds of ``rep``'s chain that the file does not (empty: nothing), and the ids
    of the epochs of this chain (the file's own and those the witness adds).

    A witnessed line is of this chain when its epoch is one of the file's, or is an epoch whose
    line follows (``prev``) the file's last line or one of its anchors, or one such epoch's anchors,
    and so on: epochs cut from the end of the file are found this way; lines of other files (other
    workers, other hosts sharing the witness) never link to this one. Each must be in the file at its
    ``seq`` with its ``hash``: past the file's end it was cut off (``truncated``), otherwise the file's
    line there was rewritten (``forged``)."""
    ours = set(rep.epoch_ids)
    heads = set(rep.anchors.values())
    heads.add(rep.last[1])
    by_epoch: dict[str, list[Witnessed]] = {}
    for w in witness.lines:
        by_epoch.setdefault(w.epoch, []).append(w)
    for e in ours:
        heads.update(w.hash for w in by_epoch.get(e, ()))
    grew = True
    while grew:  # epochs that continue the chain past what the file holds
        grew = False
        for w in witness.lines:
            if w.kind == "epoch" and w.epoch not in ours and w.prev in heads:
                ours.add(w.epoch)
                heads.update(x.hash for x in by_epoch[w.epoch])
                grew = True
    problems = []
    end = rep.last[0]
    for w in sorted((w for w in witness.lines if w.epoch in ours), key=lambda w: w.seq):
        have = rep.anchors.get(w.seq)
        if have == w.hash:
            continue
        what = f"the {w.kind} line of epoch {w.epoch}" if w.kind == "epoch" else f"a checkpoint of epoch {w.epoch}"
        if w.seq > end:
            problems.append(Problem(w.seq, "truncated", f"the witness holds seq {w.seq} ({what}), past the end of "
                                                        f"the file at seq {end}: lines were cut from its end"))
        else:
            problems.append(Problem(w.seq, "forged", f"the witness holds seq {w.seq} as {what}; the file's line "
                                                     "there is a different one"))
        break  # the first one: after it nothing in the file can be vouched for
    return problems, ours
