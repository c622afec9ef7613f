"""Request ids the gateway makes: 32 hex digits, unique within a process and across forked workers."""

from __future__ import annotations

import os

from gateway.server.proxy import _new_id


def test_ids_are_32_hex_and_unique():
    ids = [_new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_worker_gets_its_own_sequence():
    before = _new_id()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave without running pytest's teardown
        os.write(w, _new_id().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    parent = _new_id()
    assert child[:16] != before[:16]  # a fresh random prefix, not the parent's sequence continued
    assert parent[:16] == before[:16] and child != parent
