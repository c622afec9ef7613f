"""`soberana serve`: run the gateway in one process or pre-forked workers sharing the port.

Signals: SIGTERM/SIGINT drain (stop accepting, finish in-flight requests and streams up to
``DRAIN_SECONDS``, then give handlers still waiting on an upstream ``FINISH_SECONDS`` before cancelling
them, so each writes its record; close the audit files with a final checkpoint); SIGHUP reloads the config and
policies (a broken file keeps the running configuration; the log says why and
``soberana_config_last_reload_successful`` reads 0), also when it comes while the gateway starts. With
``--workers N`` the parent forks N workers (SO_REUSEPORT), forwards signals to them and restarts a
worker that dies (waiting longer each time while it keeps dying young).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import logging
import os
import signal
import socket
import sys
import tempfile
import time

import msgspec

from gateway.config import Config, in_file, load_config
from gateway.logs import setup_logging
from gateway.yamlfile import ConfigError

log = logging.getLogger("soberana")
DRAIN_SECONDS = 30.0
# After the drain, handlers whose connection was closed but whose upstream has not answered get this
# long to end (and write their audit record) before they are cancelled. Drain plus this, plus the
# preStop sleep (5 s), stays under Kubernetes' terminationGracePeriodSeconds (45 s in deploy/) with
# time left for the final audit checkpoint.
FINISH_SECONDS = 5.0
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
RESTART_S = 0.5  # before a dead worker is restarted; doubled while it keeps dying young, up to:
RESTART_MAX_S = 30.0
RESTART_RESET_S = 30.0  # a worker that lived this long starts again from RESTART_S
_early_hup = False  # a SIGHUP came before the handlers that reload were in: reload once they are


def _note_hup(_sig, _frame) -> None:
    """SIGHUP while ``serve`` starts: remembered, and done once the gateway has started. With its
    default action it ended the process, and systemd counts death by SIGHUP as a clean exit: a
    ``systemctl reload`` in the first second left the gateway down for good (Restart=on-failure)."""
    global _early_hup
    _early_hup = True


async def run(config: Config, *, worker: int = 0, config_path: str | None = None, allow_no_auth: bool = False,
              reuse_port: bool = False, ready=None, stop: asyncio.Event | None = None, policies=None) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT); then drain and close.

    ``ready(port, holder)`` is called once the port is bound (tests and the demo use it). ``policies``:
    the PolicySet to start with (else read from the config's folder)."""
    from gateway import metrics
    from gateway.app import StateHolder, build_handler
    from gateway.server.http import HttpServer
    from gateway.server.proxy import http_error

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    holder = StateHolder(config_path, worker, allow_no_auth)
    reloads: set[asyncio.Task] = set()

    def on_hup() -> None:
        if holder.current is not None:  # a HUP during startup has nothing to reload yet
            task = loop.create_task(holder.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

    # Handlers first: a SIGTERM that arrives while the worker is still starting must drain it, not kill it.
    for sig, handler in ((signal.SIGTERM, stop.set), (signal.SIGINT, stop.set), (signal.SIGHUP, on_hup)):
        try:
            loop.add_signal_handler(sig, handler)
        except (RuntimeError, ValueError):  # not the main thread (tests)
            pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked by the parent across fork()
    await holder.start(config, policies)
    global _early_hup
    if _early_hup:  # (a SIGHUP during `serve`'s own start, before the handlers above were in)
        _early_hup = False
        on_hup()
    limits = config.limits
    server = HttpServer(build_handler(holder), error_response=http_error(holder),
                        max_body_bytes=limits.max_body_bytes, header_timeout=limits.header_timeout_s,
                        body_timeout=limits.body_timeout_s, max_connections=limits.max_connections,
                        on_refused=metrics.CONNECTIONS_REFUSED.inc)

    def new_limits(state) -> None:  # a reload may change the limits; they apply from the next request
        server.max_body_bytes = state.config.limits.max_body_bytes
        server.header_timeout = state.config.limits.header_timeout_s
        server.max_connections = state.config.limits.max_connections
        server.body_timeout = state.config.limits.body_timeout_s

    holder.on_swap.append(new_limits)
    tls = _ListenerTls(config)
    holder.on_swap.append(tls.reload)
    try:
        try:
            port = await server.start(config.listen.host, config.listen.port, reuse_port=reuse_port,
                                      ssl=tls.listener.context if tls.listener else None)
        except OSError as e:  # the crash log would name only the type: say what and where
            raise _cannot_listen(config, e) from None
        log.info("worker %d listening on %s://%s:%d (policy revision %s)", worker,
                 "https" if tls.listener else "http", config.listen.host, port, holder.current.policies.revision)
        if ready is not None:
            ready(port, holder)
        await stop.wait()
        log.info("worker %d draining", worker)
        # idle connections close now, in-flight ones when done; returns once every handler has ended,
        # so every request that reached an upstream has its record before the audit log closes
        await server.shutdown(DRAIN_SECONDS, FINISH_SECONDS)
    finally:
        await holder.close()
    log.info("worker %d stopped", worker)


def _says_why(e: BaseException) -> bool:
    """A startup failure whose message is the whole story, and holds no request value: a ConfigError
    (file, line, field) or the audit log's AuditUnavailable (its file and errno). Logged by type only,
    as other exceptions are, an unwritable audit folder said "AuditUnavailable" and never which or why."""
    if isinstance(e, ConfigError):
        return True
    # (imported here: the pre-forking parent must not load the metrics before its workers start)
    from gateway.audit.writer import AuditUnavailable

    return isinstance(e, AuditUnavailable)


def _cannot_listen(config: Config, e: OSError) -> ConfigError:
    where = f"{config.listen.host}:{config.listen.port}"
    return in_file(ConfigError("<config>", None, "listen", f"cannot listen on {where}: {e.strerror or e}"), config)


class _ListenerTls:
    """``listen.tls`` of a running worker: the listener's context, and a reload's renewed files swapped
    in for the next connections."""

    def __init__(self, config: Config):
        from gateway.tls import Listener, files_digest, server_context

        self.tls = config.listen.tls
        self.digest = files_digest(self.tls, config.path)
        self.listener = Listener(server_context(self.tls, config.path)) if self.tls is not None else None

    def reload(self, state) -> None:
        from gateway.tls import files_digest, server_context

        new, old = state.config.listen.tls, self.tls
        if (new is None) != (old is None) or (new and old and (new.client_ca_file is None) != (old.client_ca_file is None)):
            log.warning("listen.tls: turning TLS or client certificates on or off needs a restart; kept as it was")
            return
        digest = files_digest(new, state.config.path)
        if new is None or (new == old and digest == self.digest):
            return
        try:
            self.listener.swap(server_context(new, state.config.path))
        except ValueError as e:  # checked at load; a file may have changed since
            log.error("listen.tls not reloaded, keeping the running certificate: %s", e)
            return
        self.tls, self.digest = new, digest
        log.info("listen.tls: new connections get the reloaded certificate")


def _worker_main(config: Config, worker: int, args: argparse.Namespace, reuse_port: bool, policies=None) -> None:
    setup_logging(worker)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(config, worker=worker, config_path=args.config, allow_no_auth=args.insecure_no_auth,
                    reuse_port=reuse_port, policies=policies))


def _prefork(config: Config, policies, args: argparse.Namespace) -> int:
    children: dict[int, int] = {}
    started: dict[int, float] = {}  # worker number → when it was last started
    delay: dict[int, float] = {}  # worker number → its last restart delay
    stopping = False
    # What a (re)started worker starts with: the last config and policies that validated. The policies
    # too: read from disk by the worker, a policy file broken on disk (an edit not yet reloaded, or
    # rejected by a reload) kept every restarted worker from starting, for as long as it stayed broken.
    current = config, policies

    def spawn(i: int) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # the child unblocks once its handlers are in
        if stopping:  # a SIGTERM was forwarded only to the workers alive then: a new one would never stop
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            return
        pid = os.fork()
        if pid == 0:
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(s, signal.SIG_DFL)
            code = 0
            try:
                _worker_main(current[0], i, args, True, current[1])
            except BaseException as e:
                if _says_why(e):
                    log.error("worker %d cannot start: %s", i, e)
                    code = 2
                else:
                    log.exception("worker %d crashed", i)
                    code = 1
            os._exit(code)
        children[pid] = i  # before a signal held during the fork runs `forward`, which must reach it too
        started[i] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)

    def forward(sig, _frame):
        nonlocal stopping, current
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        if sig == signal.SIGHUP:
            # The workers reload themselves; the parent keeps the new config too, or a worker restarted
            # after a crash would come back with the startup config (e.g. an API key since removed).
            try:
                current = _load(args)
            except Exception:  # the workers keep their state and log why
                pass
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM if sig == signal.SIGINT else sig)
            except ProcessLookupError:
                pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    global _early_hup
    if _early_hup:  # a SIGHUP while starting: the workers start with the config as it is now
        _early_hup = False
        forward(signal.SIGHUP, None)
    for i in range(args.workers):
        spawn(i)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        i = children.pop(pid, None)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # its live gauges no longer count
        if i is not None and not stopping:
            # A worker that dies young (it cannot start: its audit file held, a crash at start) waits
            # twice as long each time, up to RESTART_MAX_S: restarted every half second, it wrote two
            # log lines each time and left each start's metrics files in /tmp for as long as it lasted.
            young = time.monotonic() - started.get(i, 0.0) < RESTART_RESET_S
            delay[i] = wait = min(RESTART_MAX_S, delay.get(i, RESTART_S / 2) * 2) if young else RESTART_S
            log.error("worker %d exited (status %d); restarting it in %g s", i, status, wait)
            end = time.monotonic() + wait
            while not stopping and time.monotonic() < end:  # a SIGTERM meanwhile ends the wait
                time.sleep(0.1)
            spawn(i)  # (not if a SIGTERM came during the pause)
    return 0


def _load(args: argparse.Namespace):
    """The config file with the command line's --host/--port, checked as far as can be before forking,
    and the policies it names: (Config, PolicySet)."""
    config = load_config(args.config)
    listen = msgspec.structs.replace(config.listen, host=args.host or config.listen.host,
                                     port=args.port if args.port is not None else config.listen.port)
    config = msgspec.structs.replace(config, listen=listen)
    if config.auth.mode == "none" and not args.insecure_no_auth:
        raise ConfigError(config.source, None, "auth.mode", "`none` needs --insecure-no-auth (development only)")
    from gateway.policy import load_policies

    policies = load_policies(config.path(config.policies))  # fail before forking, with file:line:field
    _check_parts(config)
    return config, policies


def _check_parts(config: Config) -> None:
    """What a worker would otherwise find only while building its state (the JWT settings and key
    files, the rate-limit plugin, the upstream credentials in the environment), found before forking
    and named with the line: a worker that fails there only logs it, and is restarted again and again."""
    from gateway.auth.authenticator import Authenticator
    from gateway.plugins import rate_limit_backend

    try:
        if config.rate_limit.backend != "memory":
            rate_limit_backend(config.rate_limit.backend)
        if config.auth.mode != "none":
            Authenticator(config.auth, default_jurisdiction=config.jurisdiction, base_dir=config.path("."))
        for i, u in enumerate(config.upstreams):
            if u.api_key_env and not os.environ.get(u.api_key_env):
                raise ConfigError("<config>", None, f"upstreams[{i}].api_key_env",
                                  f"environment variable {u.api_key_env} is not set")
    except ConfigError as e:
        raise in_file(e, config) from None


def _clear_metrics_dir() -> None:
    """Remove an earlier run's files from the PROMETHEUS_MULTIPROC_DIR the environment names (without
    one, each run gets a new temporary folder). Left there, the earlier run's workers counted as this
    run's: counters went on from its totals, and one of its workers that had lost its audit log kept
    the fleet's soberana_audit_healthy, and so /-/readyz, at 0 for good."""
    d = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not d:
        return
    stale = glob.glob(os.path.join(d, "*.db"))
    for f in stale:
        os.remove(f)
    if stale:
        log.info("removed %d metrics file(s) of an earlier run from PROMETHEUS_MULTIPROC_DIR %s", len(stale), d)


def serve_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGHUP, _note_hup)  # first: until the reload handlers are in (see _note_hup)
    # the parent of pre-forked workers logs as none of them (its lines said worker 0); one process is worker 0
    setup_logging(0 if args.workers <= 1 else None)
    if args.workers < 1:  # (--port is checked by the argument parser)
        print("soberana serve: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        config, policies = _load(args)
    except ConfigError as e:
        print(f"soberana serve: {e}", file=sys.stderr)
        return 2
    _clear_metrics_dir()
    if args.workers <= 1:
        try:
            _worker_main(config, 0, args, False, policies)
        except Exception as e:  # e.g. a rate-limit backend no installed plugin provides, an audit folder
            if not _says_why(e):  # that cannot be written
                raise
            print(f"soberana serve: {e}", file=sys.stderr)
            return 2
        return 0
    try:  # before forking: workers that cannot bind would only be restarted, again and again
        socket.create_server((config.listen.host, config.listen.port), reuse_port=True).close()
    except OSError as e:
        print(f"soberana serve: {_cannot_listen(config, e)}", file=sys.stderr)
        return 2
    rl = config.rate_limit
    if rl.backend == "memory" and (rl.requests_per_minute or rl.tokens_per_minute
                                   or rl.key_requests_per_minute or rl.key_tokens_per_minute):
        # each worker counts alone and the kernel spreads connections over them: say so, or an
        # operator reads the configured limit as the fleet's while callers get up to N times it
        log.warning("rate limits are counted per worker (rate_limit.backend: memory): with %d workers a caller "
                    "may get up to %d times each limit; backend: redis shares one count", args.workers, args.workers)
    if "prometheus_client" in sys.modules:
        log.warning("metrics are per worker: prometheus_client was imported before the workers started")
    with tempfile.TemporaryDirectory(prefix="soberana-metrics-") as d:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", d)  # before any worker imports the metrics
        return _prefork(config, policies, args)
