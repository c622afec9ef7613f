"""Every kind of tampering with a closed audit file is caught, with the right reason and sequence number."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from audit_helpers import write_log
from gateway.audit import chain
from gateway.audit.verify import verify_file
from gateway.keys import KeyRing, init_keys, load_public_keys


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A closed file of 24 records with a checkpoint every 5, signed by a real key folder."""
    d = tmp_path_factory.mktemp("audit")
    ring = init_keys(d / "keys")
    path = asyncio.run(write_log(d / "audit", ring, 24, checkpoint_every=5))
    return path, path.read_bytes(), load_public_keys(d / "keys")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A closed file of 6 records with a checkpoint every 3 (for the byte-by-byte sweep)."""
    d = tmp_path_factory.mktemp("audit-small")
    ring = init_keys(d / "keys")
    path = asyncio.run(write_log(d / "audit", ring, 6, checkpoint_every=3))
    return path, path.read_bytes(), load_public_keys(d / "keys")


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def check(tmp_path, data: bytes, keys=None, live=False):
    p = tmp_path / "t.jsonl"
    p.write_bytes(data)
    return verify_file(p, keys, live=live)


def first(rep):
    breaks = [p for p in rep.problems if p.reason != "gap"]
    assert breaks, "tampering went undetected"
    return breaks[0]


def seq_of(line: bytes) -> int:
    return orjson.loads(line)["seq"]


def test_intact_file_verifies_with_and_without_key(sample, tmp_path):
    path, data, keys = sample
    rep = verify_file(path, keys)
    assert rep.ok and rep.closed and rep.signatures_checked
    assert (rep.records, rep.epochs, rep.kids) == (24, 1, {"k1"})
    assert rep.checkpoints == 24 // 5 + 1  # every 5 records, plus the closing one
    rep = verify_file(path)
    assert rep.ok and not rep.signatures_checked


def test_every_single_byte_change_in_sampled_records_and_checkpoints(small, tmp_path):
    _, data, keys = small
    lines = lines_of(data)
    kinds = [chain.kind(orjson.loads(x)) for x in lines]
    picks = [kinds.index("epoch"), kinds.index("record"), kinds.index("checkpoint"),
             len(lines) // 2, len(lines) - 2, len(lines) - 1]  # ... and the closing checkpoint
    p = tmp_path / "t.jsonl"
    for i in sorted(set(picks)):
        before = b"".join(lines[:i])
        after = b"".join(lines[i + 1:])
        line = lines[i]
        for pos in range(len(line)):
            for flip in (0x01, 0x20) if pos % 7 == 0 else (0x01,):
                mutated = bytearray(line)
                mutated[pos] ^= flip
                p.write_bytes(before + bytes(mutated) + after)
                bad = first(verify_file(p, keys if kinds[i] == "checkpoint" else None))
                if i == len(lines) - 1 and pos == len(line) - 1:  # the file's last newline
                    assert bad.reason in ("changed", "truncated"), (i, pos, bad)
                else:
                    assert (bad.seq, bad.reason) == (seq_of(line), "changed"), (i, pos, flip, bad)


@pytest.mark.parametrize("with_key", [True, False])
def test_every_single_deleted_line(sample, tmp_path, with_key):
    _, data, keys = sample
    lines = lines_of(data)
    for i, line in enumerate(lines):
        bad = first(check(tmp_path, b"".join(lines[:i] + lines[i + 1:]), keys if with_key else None))
        if i == len(lines) - 1:
            assert bad.reason == "truncated", bad  # the closing checkpoint is gone
        else:
            assert (bad.seq, bad.reason) == (seq_of(line), "missing"), (i, bad)


def test_every_adjacent_swap_is_reordered(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    for i in range(len(lines) - 1):
        swapped = lines[:i] + [lines[i + 1], lines[i]] + lines[i + 2:]
        bad = first(check(tmp_path, b"".join(swapped), keys))
        assert (bad.seq, bad.reason) == (seq_of(lines[i]), "reordered"), (i, bad)


def test_a_line_moved_far_away_is_reordered(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    moved = lines[:3] + lines[4:20] + [lines[3]] + lines[20:]
    bad = first(check(tmp_path, b"".join(moved), keys))
    assert (bad.seq, bad.reason) == (seq_of(lines[3]), "reordered")


def test_every_duplicated_line(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    for i in range(len(lines)):
        dup = lines[:i + 1] + [lines[i]] + lines[i + 1:]
        bad = first(check(tmp_path, b"".join(dup), keys))
        assert (bad.seq, bad.reason) == (seq_of(lines[i]), "duplicated"), (i, bad)
    # a replay of an older line further on
    dup = lines[:10] + [lines[4]] + lines[10:]
    bad = first(check(tmp_path, b"".join(dup), keys))
    assert (bad.seq, bad.reason) == (seq_of(lines[4]), "duplicated")


def _rehash_from(lines: list[bytes], start: int, edit) -> list[bytes]:
    """Apply ``edit`` to line ``start`` and recompute its hash; return all lines (a forger's first move)."""
    out = list(lines)
    obj = orjson.loads(out[start])
    edit(obj)
    out[start] = chain.seal(obj)
    return out


def test_forged_record_with_recomputed_hash_is_caught_by_the_next_link(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    i = next(j for j, x in enumerate(lines) if b'"outcome":"blocked"' in x)
    forged = _rehash_from(lines, i, lambda o: o.__setitem__("outcome", "forwarded"))
    for k in (keys, None):
        bad = first(check(tmp_path, b"".join(forged), k))
        assert (bad.seq, bad.reason) == (seq_of(lines[i]), "forged")


def _rechain(lines: list[bytes], start: int, signer=None) -> list[bytes]:
    """Recompute every hash and link from ``start`` on; re-sign checkpoints with ``signer`` (kid, key)
    when given, else leave their old signatures (which no longer match)."""
    out = list(lines[:start])
    prev = orjson.loads(out[-1])["hash"] if out else chain.GENESIS
    for raw in lines[start:]:
        obj = orjson.loads(raw)
        obj["prev"] = prev
        if "checkpoint" in obj:
            obj["checkpoint"]["head"] = prev
            if signer is not None:
                kid, key = signer
                obj["checkpoint"]["kid"] = kid
                obj["checkpoint"].pop("sig")
                obj["checkpoint"]["sig"] = __import__("base64").b64encode(key.sign(chain._signed_bytes(obj))).decode()
        line = chain.seal(obj)
        prev = obj["hash"]
        out.append(line)
    return out


def test_forged_record_with_the_whole_chain_recomputed_is_caught_by_the_signed_checkpoint(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    i = next(j for j, x in enumerate(lines) if b'"outcome":"blocked"' in x)
    forged = _rehash_from(lines, i, lambda o: o.__setitem__("outcome", "forwarded"))
    forged = _rechain(forged, i + 1)
    bad = first(check(tmp_path, b"".join(forged), keys))
    cp = next(j for j in range(i, len(lines)) if b'"checkpoint"' in lines[j])
    assert (bad.seq, bad.reason) == (seq_of(lines[cp]), "forged")
    assert "signature does not verify" in bad.detail
    # without the key, only the chain can be checked, and the forger rebuilt it: that is why
    # verify says loudly that signatures were not checked
    assert check(tmp_path, b"".join(forged), None).ok


def test_checkpoints_signed_by_another_key_are_forged(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    other = KeyRing.ephemeral()  # also calls its key "k1"
    resigned = _rechain(lines, 1, signer=other.signing_key())
    bad = first(check(tmp_path, b"".join(resigned), keys))
    assert (bad.seq, bad.reason) == (seq_of(next(x for x in lines if b'"checkpoint"' in x)), "forged")
    assert "does not verify" in bad.detail
    # a forger's own key id is not among the auditor's keys
    resigned = _rechain(lines, 1, signer=("k9", other.signing_key()[1]))
    bad = first(check(tmp_path, b"".join(resigned), keys))
    assert bad.reason == "forged" and "'k9'" in bad.detail and "not among" in bad.detail
    # and it verifies under the forger's key: the signature is what binds the file to the gateway
    from gateway.audit.verify import verify_file as vf
    p = tmp_path / "r.jsonl"
    p.write_bytes(b"".join(resigned))
    assert vf(p, {"k9": other.signing_key()[1].public_key()}).ok


def test_truncating_a_closed_file_is_caught_and_live_accepts_an_open_tail(sample, tmp_path):
    _, data, keys = sample
    lines = lines_of(data)
    for k in range(1, len(lines)):
        cut = b"".join(lines[:-k])
        bad = first(check(tmp_path, cut, keys))
        assert (bad.seq, bad.reason) == (seq_of(lines[-k]), "truncated"), (k, bad)
        assert check(tmp_path, cut, keys, live=True).ok
    rnd = random.Random(7)
    for _ in range(20):
        n = rnd.randrange(1, len(data) - 1)
        if data[n - 1:n] == b"\n":
            continue
        assert first(check(tmp_path, data[:n], keys)).reason == "truncated"
        assert check(tmp_path, data[:n], keys, live=True).ok  # a write in progress
    assert first(check(tmp_path, b"", keys)).reason == "truncated"


def test_lines_appended_after_the_closing_checkpoint_are_forged(sample, tmp_path):
    _, data, keys = sample
    last = orjson.loads(lines_of(data)[-1])
    extra = {"seq": last["seq"] + 1, "ts": last["ts"], "prev": last["hash"], "request_id": "evil", "outcome": "forwarded"}
    bad = first(check(tmp_path, data + chain.seal(extra), keys))
    assert (bad.seq, bad.reason) == (last["seq"] + 1, "forged")


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_EDITS = st.lists(st.tuples(st.sampled_from(["delete", "duplicate", "swap", "flip", "cut"]),
                            st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 255)),
                  min_size=1, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS)
def test_any_combination_of_edits_is_caught(sample, tmp_path, edits):
    _, data, keys = sample
    lines = lines_of(data)
    for op, a, b, x in edits:
        if not lines:
            break
        i, j = a % len(lines), b % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        elif op == "swap" and lines[i] != lines[j]:
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "flip":
            line = bytearray(lines[i])
            line[b % len(line)] ^= x
            lines[i] = bytes(line)
        elif op == "cut":
            lines = lines[:i]
    tampered = b"".join(lines)
    if tampered == data:
        return
    rep = check(tmp_path, tampered, keys)
    assert [p for p in rep.problems if p.reason != "gap"], edits


def test_another_workers_file_put_in_place_of_a_workers_file_is_forged(tmp_path):
    """Each worker keeps its own chain file, ``audit-w<N>.jsonl``, whose epochs name worker N. A copy of
    worker 1's intact file put in place of worker 0's (worker 0's records gone, worker 1's twice) holds
    every link and signature, so only the file's name gives it away."""
    ring = init_keys(tmp_path / "keys")
    keys = load_public_keys(tmp_path / "keys")

    async def go():
        return (await write_log(tmp_path / "audit", ring, 4, worker=0),
                await write_log(tmp_path / "audit", ring, 4, worker=1))

    w0, w1 = asyncio.run(go())
    assert verify_file(w0, keys).ok and verify_file(w1, keys).ok
    swapped = tmp_path / "swapped" / "audit-w0.jsonl"
    swapped.parent.mkdir()
    swapped.write_bytes(w1.read_bytes())
    bad = first(verify_file(swapped, keys))
    assert (bad.seq, bad.reason) == (1, "forged") and "worker 1" in bad.detail and "worker 0" in bad.detail
    # under a name of its own (an archive, a copy for the auditor) a file is its chain alone
    archived = tmp_path / "swapped" / "audit-w1.2026-11-26.jsonl"
    archived.write_bytes(w1.read_bytes())
    assert verify_file(archived, keys).ok
