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


async def test_a_refused_credential_is_one_log_line_with_the_request_id(tmp_path, caplog):
    # Each 401 wrote two lines: the authenticator's "unauthorized: <reason>" (no request id to find
    # the audit record by) and the proxy's own with the id: twice the log volume under a
    # credential-stuffing flood, and a count of 401s in the logs that read double.
    import logging

    import aiohttp

    from gateway.testing.harness import Harness

    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        caplog.clear()
        caplog.set_level(logging.INFO)
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "olá"}]}
        wrong = {"Authorization": "Bearer sk-sob-wrong-key-0123456789"}
        async with s.post(h.url + "/v1/chat/completions", json=body, headers={**wrong, "X-Request-Id": "rid-401-test"}) as r:
            assert r.status == 401
        async with s.post(h.url + "/-/explain", json=body, headers=wrong) as r:
            assert r.status == 401
        async with s.get(h.url + "/v1/models", headers=wrong) as r:
            assert r.status == 401
    lines = [rec.getMessage() for rec in caplog.records if "unauthorized" in rec.getMessage()]
    assert len(lines) == 3, lines  # one for each refused request
    assert "rid-401-test" in lines[0] and "unknown api key" in lines[0]
    assert "/-/explain" in lines[1] and "/v1/models" in lines[2]
    assert "sk-sob-wrong" not in caplog.text
