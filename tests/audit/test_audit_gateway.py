"""The audit log inside a real gateway on loopback: one record per request, matching the response
headers; no raw value; verifiable after a graceful stop; a failing sink stops forwarding."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import orjson

from gateway.audit.verify import check_witness, read_witness, verify_file
from gateway.inspect import scan
from gateway.keys import load_public_keys
from gateway.testing.harness import Harness

CPF = "529.982.247-25"
TEXT = f"Contribuinte CPF {CPF}, e-mail ana.lima@fazenda.gov.br: qual a alíquota?"


def chat(model: str, text: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": text}]})


async def test_records_match_the_responses_and_hold_no_values(tmp_path, caplog):
    caplog.set_level("DEBUG")
    async with Harness(tmp_path) as h:
        seen = []
        async with aiohttp.ClientSession() as s:
            for model in ("llama-3.3-70b", "gpt-4o-mini"):
                async with s.post(h.url + "/v1/chat/completions", data=chat(model, TEXT),
                                  headers={"Authorization": f"Bearer {h.keys['br']}"}) as r:
                    assert r.status == 200
                    seen.append(r.headers.copy())
            async with s.post(h.url + "/v1/chat/completions", data=chat("gpt-4o-mini", TEXT),
                              headers={"Authorization": "Bearer wrong-key", "X-Request-Id": CPF}) as r:
                assert r.status == 401
                assert r.headers["X-Request-Id"].startswith("fp:")  # not echoed, nor logged, as it came
        files = h.audit_files()
    assert len(files) == 1
    rep = verify_file(files[0], load_public_keys(tmp_path / "keys"))
    assert rep.ok and rep.closed and rep.records == 3
    data = files[0].read_bytes()
    assert CPF.encode() not in data and b"52998224725" not in data and b"ana.lima" not in data
    recs = [orjson.loads(x) for x in data.splitlines() if b'"request_id"' in x]
    for rec, headers in zip(recs, seen):
        assert rec["request_id"] == headers["X-Request-Id"]
        assert rec["decision_id"] == headers["X-Soberana-Decision"]
        assert rec["upstream"]["name"] == headers["X-Soberana-Route"] == rec["decision"]["route"]
        assert rec["upstream"]["status"] == 200 and rec["outcome"] == "forwarded"
        assert rec["principal"] == {"sub": "br-key", "agency": "receita-federal", "jurisdiction": "BR"}
        assert rec["bytes_in"] > 0 and rec["decision"]["policy_revision"]
        if scan(TEXT):  # with the detectors in place the CPF is recorded, as a fingerprint
            assert "br.cpf" in [f["detector"] for f in rec["findings"]]
    assert "52998224725" not in caplog.text.replace(".", "").replace("-", "")
    rejected = recs[2]
    assert rejected["outcome"] == "rejected" and rejected["principal"] is None
    assert rejected["request_id"].startswith("fp:")  # the client's X-Request-Id was a CPF


async def test_a_failing_sink_stops_forwarding(tmp_path):
    async with Harness(tmp_path) as h:
        audit = h.holder.current.audit
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, audit._fd)  # the disk is full from now on
        os.close(full)
        async with aiohttp.ClientSession() as s:
            hdr = {"Authorization": f"Bearer {h.keys['br']}"}
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", "primeiro"), headers=hdr) as r:
                assert r.status == 200  # forwarded while the sink still looked healthy; its record fails
            for _ in range(200):
                if not audit.healthy:
                    break
                import asyncio
                await asyncio.sleep(0.01)
            assert not audit.healthy
            before = len(h.received("BR"))
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", "segundo"), headers=hdr) as r:
                assert r.status == 503
                body = await r.json()
            async with s.get(h.url + "/-/readyz") as r:
                assert r.status == 503
        assert len(h.received("BR")) == before, "nothing is forwarded without an audit record"
        assert "audit" in orjson.dumps(body).decode()


async def test_reload_with_new_audit_settings_keeps_one_unbroken_chain(tmp_path):
    async with Harness(tmp_path) as h:
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            for i in range(3):
                async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", f"um {i}"), headers=hdr) as r:
                    assert r.status == 200
            text = h.config_path.read_text()
            assert "checkpoint_every: 50" in text
            h.config_path.write_text(text.replace("checkpoint_every: 50", "checkpoint_every: 2"))
            ok, msg = await h.holder.reload()
            assert ok, msg
            for i in range(3):
                async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", f"dois {i}"), headers=hdr) as r:
                    assert r.status == 200
    [path] = h.audit_files()
    rep = verify_file(path, load_public_keys(tmp_path / "keys"))
    assert rep.ok and rep.closed and rep.records == 6 and rep.epochs == 1
    assert rep.checkpoints >= 3  # the new every-2 setting took effect on the same chain


async def test_two_reloads_at_once_both_apply_on_one_unbroken_chain(tmp_path):
    # two SIGHUPs in a row (`systemctl reload` twice): the second must not be built on the same old
    # state as the first (it was rejected: "audit file ... failed during the hand-over")
    async with Harness(tmp_path) as h:
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            for i in range(3):
                async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", f"um {i}"), headers=hdr) as r:
                    assert r.status == 200
            text = h.config_path.read_text()
            h.config_path.write_text(text.replace("checkpoint_every: 50", "checkpoint_every: 2"))
            results = await asyncio.gather(h.holder.reload(), h.holder.reload())
            assert all(ok for ok, _ in results), results
            for i in range(3):
                async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", f"dois {i}"), headers=hdr) as r:
                    assert r.status == 200
    [path] = h.audit_files()
    rep = verify_file(path, load_public_keys(tmp_path / "keys"))
    assert rep.ok and rep.closed and rep.records == 6 and rep.epochs == 1


async def test_after_keys_rotate_and_a_reload_checkpoints_are_signed_with_the_new_key(tmp_path):
    from gateway.keys import rotate_keys

    async with Harness(tmp_path) as h:
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", "um"), headers=hdr) as r:
                assert r.status == 200
            rotate_keys(tmp_path / "keys")  # e.g. the old key may have leaked
            assert (await h.holder.reload())[0]
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", "dois"), headers=hdr) as r:
                assert r.status == 200
    [path] = h.audit_files()
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    last = [x["checkpoint"] for x in lines if "checkpoint" in x][-1]  # the closing one
    assert last.get("kid") == "k2", last
    rep = verify_file(path, load_public_keys(tmp_path / "keys"))
    assert rep.ok and rep.closed and rep.kids == {"k2"}


async def test_the_audit_healthy_gauge_follows_the_sink_without_a_scrape(tmp_path):
    """With ``--workers N`` a scrape reaches one worker; another one's sink failing must show at once."""
    from gateway import metrics

    async with Harness(tmp_path) as h:
        assert metrics.REGISTRY.get_sample_value("soberana_audit_healthy") == 1  # set when the log starts, not at the first scrape
        audit = h.holder.current.audit
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, audit._fd)  # the disk is full from now on
        os.close(full)
        async with aiohttp.ClientSession() as s:
            hdr = {"Authorization": f"Bearer {h.keys['br']}"}
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", "primeiro"), headers=hdr) as r:
                assert r.status == 200  # its record's write fails the sink
        for _ in range(300):  # and no scrape meanwhile
            if not audit.healthy:
                break
            await asyncio.sleep(0.01)
        assert not audit.healthy
        assert metrics.REGISTRY.get_sample_value("soberana_audit_healthy") == 0, "the gauge still says healthy"


async def test_a_witness_holds_the_epoch_and_checkpoints_of_a_running_gateway(tmp_path):
    wit = tmp_path / "offsite" / "audit-witness.jsonl"
    async with Harness(tmp_path, audit=f"witness: {wit}") as h:
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        async with aiohttp.ClientSession() as s:
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", TEXT), headers=hdr) as r:
                assert r.status == 200
    [path] = h.audit_files()
    held = [orjson.loads(x) for x in wit.read_bytes().splitlines()]
    assert [("epoch" in x, "checkpoint" in x) for x in held] == [(True, False), (False, True)]
    assert held[1]["checkpoint"]["closed"] is True
    rep = verify_file(path, load_public_keys(tmp_path / "keys"))
    problems, epochs = check_witness(rep, read_witness([str(wit)]))
    assert rep.ok and rep.closed and not problems and epochs == {held[0]["epoch"]["id"]}


async def test_a_stalled_disk_stops_forwarding_before_records_would_be_dropped(tmp_path):
    # A disk that hangs (an NFS server gone, a stalled volume) raises no error: the log stays
    # "healthy" while records pile up unwritten. Past max_queue the log refuses them, but the proxy
    # checked only `healthy`: requests went on being forwarded and their records were dropped
    # ("could not be queued"), and /-/readyz said ready. SPEC section 9: a request whose record
    # cannot be written is not forwarded.
    import threading

    async with Harness(tmp_path) as h, aiohttp.ClientSession() as s:
        audit = h.holder.current.audit
        audit.max_queue = 3
        stall, write = threading.Event(), audit._write

        def stalled_write(buf):
            stall.wait(30)
            write(buf)

        audit._write = stalled_write
        hdr = {"Authorization": f"Bearer {h.keys['br']}"}
        statuses = []
        for i in range(8):
            async with s.post(h.url + "/v1/chat/completions", data=chat("llama-3.3-70b", f"pedido {i}"), headers=hdr) as r:
                statuses.append(r.status)
            await asyncio.sleep(0.1)  # (the writer takes each group as it comes, and hangs on it)
        async with s.get(h.url + "/-/readyz") as r:
            ready = r.status
        stall.set()
        for _ in range(100):
            if audit.lag == 0:
                break
            await asyncio.sleep(0.05)
        assert 503 in statuses, statuses
        assert ready == 503, "ready while the audit log refuses records"
        forwarded = len(h.received("BR"))
    records = [orjson.loads(x) for f in h.audit_files() for x in f.read_bytes().splitlines()]
    audited = [x for x in records if x.get("outcome") == "forwarded"]
    assert forwarded == statuses.count(200) == len(audited), "a forwarded request has no audit record"
