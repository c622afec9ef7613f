"""`soberana serve` as a real process: pre-forked workers, SIGHUP reload, SIGTERM drain."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from gateway.keys import init_keys
from gateway.testing.harness import bundled_policies
from gateway.testing.stub import start_stub

KEY = "sk-sob-process-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp: Path, stub_url: str, port: int, policies: Path) -> Path:
    text = f"""\
listen: {{host: 127.0.0.1, port: {port}}}
jurisdiction: BR
policies: {policies}
keys: {tmp / 'keys'}
auth:
  mode: api_key
  api_keys: [{{id: t, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, jurisdiction: BR, agency: test}}]
upstreams:
  - {{name: br, url: "{stub_url}/v1", residency: BR}}
models:
  slow: [{{upstream: br, model: stub-slow}}]
  fast: [{{upstream: br, model: m}}]
audit: {{path: {tmp / 'audit'}, checkpoint_every: 10, checkpoint_seconds: 60}}
"""
    path = tmp / "soberana.yaml"
    path.write_text(text)
    return path


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the gateway exited"
            try:
                async with s.get(url + "/-/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("gateway not ready")


@pytest.fixture
async def served(tmp_path):
    init_keys(tmp_path / "keys")
    policies = tmp_path / "policies"
    shutil.copytree(bundled_policies(), policies)
    stub = await start_stub("127.0.0.1", 0, "BR")
    port = free_port()
    cfg = config(tmp_path, stub.url, port, policies)
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", "2"],
                            stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)  # (one worker is)
        deadline = time.monotonic() + 20
        while not all((tmp_path / "audit" / f"audit-w{i}.jsonl").exists() for i in (0, 1)):
            assert time.monotonic() < deadline, "a worker did not start"
            await asyncio.sleep(0.05)  # both: a test may change what a worker still starting would read
        yield proc, url, tmp_path
    finally:
        await _stop(proc, log, stub)


async def _stop(proc: subprocess.Popen, log, stub) -> None:
    """SIGTERM the gateway (if it still runs) and wait for its drain, killing its process group after
    30 s; then close its log file and the stub."""
    if proc.poll() is None:
        _terminate(proc)
    log.close()
    await stub.close()


def _terminate(proc: subprocess.Popen) -> str:
    """SIGTERM the gateway, wait for its drain (its process group killed after 30 s); its stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err or ""


def body(model: str, stream: bool = False) -> bytes:
    return orjson.dumps({"model": model, "stream": stream,
                         "messages": [{"role": "user", "content": "um dois três quatro cinco seis sete oito nove dez"}]})


HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


async def test_sigterm_during_a_stream_lets_it_finish_and_closes_the_audit_files(served):
    proc, url, tmp = served
    async with aiohttp.ClientSession() as s:
        for _ in range(4):  # spread some records over both workers
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                assert r.status == 200
        async with s.post(url + "/v1/chat/completions", data=body("slow", True), headers=HEADERS) as r:
            assert r.status == 200
            first = await r.content.readline()
            assert first.startswith(b"data:")
            proc.send_signal(signal.SIGTERM)  # "a second terminal's kill -TERM"
            rest = await r.content.read()
    assert b"data: [DONE]" in rest, "the stream finished normally through the drain"
    assert proc.wait(30) == 0
    files = sorted((tmp / "audit").glob("*.jsonl"))
    assert len(files) >= 1
    out = subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", *map(str, files),
                          "--key", str(tmp / "keys" / "audit-signing.pub")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


async def test_sighup_with_a_broken_policy_keeps_the_old_one_and_says_why(served):
    proc, url, tmp = served
    policy = tmp / "policies" / "br.yaml"
    policy.write_text(policy.read_text() + "\nnot_a_field: true\n")
    proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(1.0)
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
            assert r.status == 200, "still serving with the old policies"
    log = (tmp / "gateway.log").read_text()
    assert "reload rejected" in log and "br.yaml" in log and "not_a_field" in log


async def test_a_rejected_reload_shows_in_the_metrics_until_a_reload_is_applied(served):
    # A rejected SIGHUP left only a log line: the fleet went on with the old policies while a dashboard
    # or an alert had nothing to say that the edit never took effect.
    from prometheus_client.parser import text_string_to_metric_families

    proc, url, tmp = served

    async def scrape() -> dict:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/-/metrics") as r:
                text = await r.text()
        return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
                for f in text_string_to_metric_families(text) for smp in f.samples}

    async def after_both_workers(result: str) -> dict:
        key = ("soberana_config_reloads_total", (("result", result),))
        for _ in range(100):
            m = await scrape()
            if m.get(key) == 2:  # each worker's reload (the counters add up over the workers)
                return m
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {result} reload counted for both workers: {m.get(key)}")

    assert (await scrape())[("soberana_config_last_reload_successful", ())] == 1
    policy = tmp / "policies" / "br.yaml"
    good = policy.read_text()
    policy.write_text(good + "\nnot_a_field: true\n")
    proc.send_signal(signal.SIGHUP)
    await after_both_workers("rejected")
    for _ in range(4):  # whichever worker answers
        m = await scrape()
        assert m[("soberana_config_last_reload_successful", ())] == 0, "a rejected reload reads as applied"
    policy.write_text(good)
    proc.send_signal(signal.SIGHUP)
    m = await after_both_workers("applied")
    assert m[("soberana_config_last_reload_successful", ())] == 1


async def test_readyz_says_not_ready_while_any_worker_cannot_write_its_audit_log(served):
    # Each worker answers /-/readyz for itself. One worker whose audit file was removed refuses every
    # request it gets (503, fail closed), but a readiness probe that the kernel handed to the other
    # worker said ready: the pod stayed in the Service and about 1/N of its requests failed.
    proc, url, tmp = served
    (tmp / "audit" / "audit-w1.jsonl").unlink()
    refused = 0
    for _ in range(40):  # until the worker without its file has tried to write
        async with aiohttp.ClientSession() as s:  # a new connection each: both workers get some
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                refused += r.status == 503
        if refused:
            break
        await asyncio.sleep(0.3)  # (the writer notices a removed file about once a second)
    assert refused, "the worker without its audit file still forwards"
    statuses = []
    for _ in range(8):
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/-/readyz") as r:
                statuses.append(r.status)
                assert (await r.json())["checks"]["audit"] is (r.status == 200)
    assert statuses == [503] * 8, statuses


async def test_metrics_of_all_workers_add_up(served):
    proc, url, tmp = served
    async with aiohttp.ClientSession() as s:
        for _ in range(6):
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                assert r.status == 200
        for _ in range(3):  # whichever worker answers the scrape reports the fleet's total
            async with s.get(url + "/-/metrics") as r:
                text = await r.text()
            line = next(l for l in text.splitlines() if l.startswith("soberana_requests_total{") and 'outcome="forwarded"' in l)
            assert line.endswith(" 6.0"), line


def worker_pids(proc: subprocess.Popen) -> set[int]:
    return {int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()}


async def test_a_worker_restarted_after_a_reload_runs_the_reloaded_config(served):
    proc, url, tmp = served
    cfg = tmp / "soberana.yaml"
    new_key = "sk-sob-process-test-key-rotated"
    cfg.write_text(cfg.read_text().replace(hashlib.sha256(KEY.encode()).hexdigest(),
                                           hashlib.sha256(new_key.encode()).hexdigest()))
    proc.send_signal(signal.SIGHUP)  # the old key is revoked
    await asyncio.sleep(1.0)
    old = worker_pids(proc)
    assert len(old) == 2
    for pid in old:  # both workers die (OOM killer, a segfault ...) and are restarted
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not (len(worker_pids(proc)) == 2 and not worker_pids(proc) & old):
        assert time.monotonic() < deadline, "the workers were not restarted"
        await asyncio.sleep(0.1)
    await wait_ready(url, proc)
    new_headers = {**HEADERS, "Authorization": f"Bearer {new_key}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(4):
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                assert r.status == 401, "the revoked key came back with the restarted worker"
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=new_headers) as r:
                assert r.status == 200


async def test_a_worker_restarted_while_a_policy_file_is_broken_starts_with_the_validated_policies(served):
    # Each worker read the policies from disk when it started: with a policy file broken by an edit
    # (not yet reloaded, or rejected by a reload), a worker that died could not start again, and was
    # restarted in vain for as long as the file stayed broken. It now starts with what validated.
    proc, url, tmp = served
    policy = tmp / "policies" / "br.yaml"
    policy.write_text(policy.read_text() + "\nnot_a_field: true\n")
    old = worker_pids(proc)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not (len(worker_pids(proc)) == 2 and not worker_pids(proc) & old):
        assert time.monotonic() < deadline, "the workers were not restarted"
        await asyncio.sleep(0.1)
    await wait_ready(url, proc)
    for _ in range(4):  # a new connection each: both workers
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                assert r.status == 200
    assert "cannot start" not in (tmp / "gateway.log").read_text()


async def test_sigterm_while_a_dead_worker_is_being_restarted_still_stops(served):
    proc, url, tmp = served
    os.kill(min(worker_pids(proc)), signal.SIGKILL)
    await asyncio.sleep(0.2)  # the parent has seen it die and pauses before the restart
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(20) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("the worker restarted after the SIGTERM was never stopped: the gateway hangs")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_already_taken_is_named_and_serve_exits(tmp_path, workers):
    # with workers, each one crashed on bind and was restarted forever, the log saying only "OSError"
    init_keys(tmp_path / "keys")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = config(tmp_path, "http://127.0.0.1:9", port, bundled_policies())
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", workers],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("serve kept restarting workers that cannot bind")
    assert proc.returncode == 2
    assert f"{cfg}:1: listen: cannot listen on 127.0.0.1:{port}" in err


async def test_audit_lag_of_every_worker_falls_back_to_zero_once_written(served):
    # Each worker's lag gauge was set only when that worker finished a request or answered a scrape,
    # before its writer thread had written the records: after a burst, a worker that was not scraped
    # again kept reporting its last lag (8 records "behind") for ever, and an alert on lag fired on an
    # idle, healthy fleet. The writer now publishes the lag when it has written.
    from prometheus_client.parser import text_string_to_metric_families

    proc, url, tmp = served
    async with aiohttp.ClientSession() as s:
        async def one():
            async with s.post(url + "/v1/chat/completions", data=body("fast"), headers=HEADERS) as r:
                assert r.status == 200

        await asyncio.gather(*[one() for _ in range(8)])
    await asyncio.sleep(1.5)  # written (and synced) long since
    for _ in range(6):  # new connections: the scrapes land on both workers
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/-/metrics") as r:
                text = await r.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}  # valid text format
        assert families["soberana_requests"].samples[0].value == 8
        lag = families["soberana_audit_lag_records"].samples[0].value
        assert lag == 0, f"an idle fleet reports {lag} audit records behind"
        assert families["soberana_audit_healthy"].samples[0].value == 1


def test_per_worker_rate_limits_are_said_at_start(tmp_path):
    # With --workers N and the memory backend each worker counts alone (the kernel spreads
    # connections), so a caller gets up to N times each limit; nothing said so at start.
    init_keys(tmp_path / "keys")
    port = free_port()
    cfg = config(tmp_path, "http://127.0.0.1:9", port, bundled_policies())
    cfg.write_text(cfg.read_text() + "rate_limit: {key_requests_per_minute: 60}\n")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    finally:
        err = _terminate(proc)
    assert "rate limits are counted per worker" in err and "up to 2 times each limit" in err, err[-2000:]
    # the parent's own lines said "worker": 0, as if worker 0 had written them (its restarts of a dead
    # worker too): a log query by worker mixed them up
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    (warning,) = [x for x in lines if "rate limits are counted per worker" in x["msg"]]
    assert warning["worker"] is None
    assert {x["worker"] for x in lines if x["msg"].startswith("worker 1 ")} == {1}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_audit_folder_that_cannot_be_written_is_named_at_start(tmp_path, workers):
    # One worker: a Python traceback, exit status 1. Pre-forked: "worker 0 crashed" with the exception's
    # type only, restarted again and again, and never which file or why.
    init_keys(tmp_path / "keys")
    (tmp_path / "not-a-folder").write_text("")
    cfg = config(tmp_path, "http://127.0.0.1:9", free_port(), bundled_policies())
    cfg.write_text(cfg.read_text().replace(f"path: {tmp_path / 'audit'}", f"path: {tmp_path / 'not-a-folder' / 'audit'}"))
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=3 if workers == "2" else 30)
    except subprocess.TimeoutExpired:  # the workers are restarted: stop it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    where = f"cannot open audit file {tmp_path / 'not-a-folder' / 'audit' / 'audit-w0.jsonl'}: ENOTDIR"
    assert "Traceback" not in err, err[-2000:]
    if workers == "1":
        assert proc.returncode == 2 and f"soberana serve: {where}" in err, err[-2000:]
    else:
        assert f"worker 0 cannot start: {where}" in err, err[-2000:]


async def test_a_metrics_folder_named_in_the_environment_starts_without_the_last_runs_workers(tmp_path):
    # With PROMETHEUS_MULTIPROC_DIR set (a tmpfs of the operator's choosing), the files of the last
    # run's workers stayed: their counters were added to this run's, and one that had lost its audit
    # log held the fleet's soberana_audit_healthy, and /-/readyz, at 0 for ever.
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stale = ("import gateway.metrics as m; m.set_audit_healthy(False); "
             "m.request_inc('/v1/chat/completions', 'br', 'BR', 'forwarded')(1)")
    subprocess.run([sys.executable, "-c", stale], check=True, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    init_keys(tmp_path / "keys")
    stub = await start_stub("127.0.0.1", 0, "BR")
    port = free_port()
    cfg = config(tmp_path, stub.url, port, bundled_policies())
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", "2"],
                            stdout=log, stderr=log, start_new_session=True,
                            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/-/metrics") as r:
                text = await r.text()
        assert "soberana_audit_healthy 1.0" in text
        assert not [line for line in text.splitlines() if line.startswith("soberana_requests_total{")]
    finally:
        await _stop(proc, log, stub)


# `soberana serve`, telling the test (on stdout) when it has begun loading the config.
LOADING = """\
import sys
import gateway.server.main as m
load = m._load
def loading(args):
    print("loading", flush=True)
    return load(args)
m._load = loading
from gateway.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_sighup_while_serve_starts_neither_kills_it_nor_is_lost(tmp_path, workers):
    # Until its handlers were in, SIGHUP had its default action: a reload (`systemctl reload`, a
    # config tool) in the first second ended the gateway, and systemd counts death by SIGHUP as a
    # clean exit, so Restart=on-failure left it down. It is now remembered and done once started.
    init_keys(tmp_path / "keys")
    stub = await start_stub("127.0.0.1", 0, "BR")
    port = free_port()
    cfg = config(tmp_path, stub.url, port, bundled_policies())
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", LOADING, "serve", "-c", str(cfg), "--workers", workers],
                            stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    new_key = "sk-sob-process-test-key-after-hup"
    try:
        assert proc.stdout.readline() == b"loading\n"
        cfg.write_text(cfg.read_text().replace(hashlib.sha256(KEY.encode()).hexdigest(),
                                               hashlib.sha256(new_key.encode()).hexdigest()))
        proc.send_signal(signal.SIGHUP)
        await wait_ready(url, proc)
        for _ in range(100):  # the remembered reload runs once the gateway has started
            async with aiohttp.ClientSession() as s:
                async with s.post(url + "/v1/chat/completions", data=body("fast"),
                                  headers={**HEADERS, "Authorization": f"Bearer {new_key}"}) as r:
                    if r.status == 200:
                        break
            await asyncio.sleep(0.1)
        for _ in range(4):  # a new connection each: both workers
            async with aiohttp.ClientSession() as s:
                async with s.post(url + "/v1/chat/completions", data=body("fast"),
                                  headers={**HEADERS, "Authorization": f"Bearer {new_key}"}) as r:
                    assert r.status == 200, "the SIGHUP during the start was lost"
    finally:
        await _stop(proc, log, stub)
    assert proc.returncode == 0


def test_a_worker_that_keeps_failing_is_restarted_less_and_less_often(tmp_path):
    # A worker that could not start (here its audit file is held by another process) was restarted
    # every half second for as long as the cause lasted: two log lines each time, and each start left
    # its metrics files in the in-memory /tmp (64 MiB in deploy/) until the pod was evicted.
    import fcntl

    init_keys(tmp_path / "keys")
    cfg = config(tmp_path, "http://127.0.0.1:9", free_port(), bundled_policies())
    (tmp_path / "audit").mkdir()
    with open(tmp_path / "audit" / "audit-w1.jsonl", "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(cfg), "--workers", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(9)
        err = _terminate(proc)
    assert proc.returncode == 0
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("worker 1 cannot start" in x["msg"] and "held by another writer" in x["msg"] for x in lines)
    exits = [x["msg"] for x in lines if x["msg"].startswith("worker 1 exited")]
    assert 1 <= len(exits) <= 5, f"worker 1 restarted {len(exits)} times in 9 s"  # (every 0.5 s: 10 or more)
    assert [m.rsplit(" in ", 1)[1] for m in exits[:3]] == ["0.5 s", "1 s", "2 s"][:len(exits[:3])]
