"""N worker processes on one port, supervised.

The parent binds one ``SO_REUSEPORT`` listening socket per worker slot (so the kernel spreads connections
across workers) and keeps it open for the whole run. Each worker is a fresh interpreter (``python -m
<entry>``: the server's ``modelrunner.server.worker``, named by the caller, so runner/ imports nothing of
server/) that inherits its slot's socket and serves it with uvicorn (uvloop + httptools). A worker that dies
is restarted on the same socket: connections the kernel queued meanwhile wait in the backlog and are answered
by the new worker once it has loaded what it should serve. So is a worker that hangs: each worker's event loop
writes a byte to a pipe every ``beat_interval`` (``child.beat``); one silent for longer than
``liveness_timeout_s`` gets SIGTERM, SIGKILL ``HUNG_GRACE_S`` later, and is replaced. SIGTERM/SIGINT stop
every worker gracefully (in-flight requests finish), then the parent exits.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from modelrunner.errors import FailedPrecondition, InvalidArgument, NotFound
from modelrunner.runner import startup
from modelrunner.settings import Settings

log = logging.getLogger(__name__)

BACKLOG = 2048
GRACE_S = 20.0
STARTUP_GRACE_S = 2.0
"""How long workers stopped during startup (a bad ``--endpoint``) get before SIGKILL: they serve nothing."""
MAX_RESTART_DELAY_S = 30.0
HUNG_GRACE_S = 3.0
"""How long a worker that stopped beating gets to exit on SIGTERM before SIGKILL (its loop may never run)."""
STARTUP_ALLOWANCE_S = 60.0
"""Added to the liveness timeout until a new worker's first beat: its imports run before its event loop."""


def normalize_host(host: str) -> str:
    """How sockets take a host: ``[::1]`` -> ``::1``, ``Localhost`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def is_loopback(host: str) -> bool:
    host = normalize_host(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as written in a URL: an IPv6 address in brackets."""
    host = normalize_host(host)
    return f"[{host}]" if ":" in host else host


def check_exposure(host: str, settings: Settings, registry: Any = None) -> None:
    """Refuse to serve the admin API beyond this machine without a token (MODELRUNNER_ADMIN_TOKEN or one
    made by `modelrunner token create`), or with a blank admin token."""
    token = settings.admin_token
    if token is not None and token and not token.strip():
        raise FailedPrecondition(
            "MODELRUNNER_ADMIN_TOKEN is only whitespace; set a real token (or unset it and bind 127.0.0.1)"
        )
    if not is_loopback(host) and not token and not _registry_has_tokens(settings, registry):
        raise FailedPrecondition(
            f"refusing to serve on {host} without MODELRUNNER_ADMIN_TOKEN (the admin API would be open); "
            "set it, create a token (`modelrunner token create --role admin --name NAME`) or bind 127.0.0.1"
        )


def _registry_has_tokens(settings: Settings, registry: Any) -> bool:
    from modelrunner.registry import tokens

    if registry is not None:
        return tokens.count(registry) > 0
    from modelrunner.registry.registry import Registry

    with Registry(settings) as opened:
        return tokens.count(opened) > 0


def ensure_endpoints(registry: Any, endpoints: Mapping[str, str], actor: str | None = None) -> list[Any]:
    """Write ``name -> target`` desired state where it differs (target checked first); return what changed."""
    changed = []
    for name, target in endpoints.items():
        try:
            current = registry.endpoint(name)
        except NotFound:
            current = None
        if current is not None and current.target == target:
            continue
        from modelrunner.pipelines.targets import resolve_target

        resolve_target(registry, target)  # a clear NotFound (or broken pipeline) before anything is written
        changed.append(registry.set_endpoint(name, target, actor=actor))
    return changed


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address with SO_REUSEPORT; port 0 picks one free port for all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _check_port_free(host, port, family)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Linux copies TCP_NODELAY to accepted connections: no 40 ms Nagle/delayed-ACK stalls on
            # keep-alive, whatever event loop the worker runs.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
            sockets.append(sock)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sockets


def _check_port_free(host: str, port: int, family: int) -> None:
    """Binding without SO_REUSEPORT fails if anyone (even another modelrunner) already holds the port."""
    if port == 0:
        return
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    finally:
        probe.close()


@dataclass
class Slot:
    """One worker position: its socket, its current process, how often it restarted."""

    index: int
    sock: socket.socket
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    crashes_in_a_row: int = 0
    next_start: float = 0.0
    argv: list[str] = field(default_factory=list)
    beats: int | None = None  # read end of the worker's heartbeat pipe
    last_beat: float = 0.0
    beaten: bool = False
    kill_at: float | None = None  # set once a silent worker got SIGTERM


class Supervisor:
    """Starts one child per slot, restarts dead ones (backing off when they crash at start), stops all."""

    def __init__(
        self,
        sockets: list[socket.socket],
        child_argv: list[str],
        env: dict[str, str],
        first_argv: list[str] | None = None,
        liveness_timeout_s: float = 30.0,
        *,
        entry: str,
    ) -> None:
        self.slots = [Slot(i, s) for i, s in enumerate(sockets)]
        self.entry = entry  # the worker's module, run with ``python -m`` (runner.child.run inside)
        self.liveness_timeout_s = liveness_timeout_s
        self.child_argv = child_argv
        # For the first workers only (``--expect``): a restarted one serves what is desired when it starts,
        # which may have moved on since ``serve`` wrote its ``--endpoint`` targets.
        self.first_argv = first_argv or []
        self.env = env
        self.stopping = False

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot, self.first_argv)

    def _spawn(self, slot: Slot, extra: list[str] | None = None) -> None:
        fd = slot.sock.fileno()
        self._close_beats(slot)
        beats, beat_w = os.pipe()
        os.set_blocking(beats, False)
        interval = min(1.0, self.liveness_timeout_s / 5)
        argv = [
            sys.executable,
            "-m",
            self.entry,
            "--fd",
            str(fd),
            "--slot",
            str(slot.index),
            "--beat-fd",
            str(beat_w),
            "--beat-interval",
            f"{interval:g}",
            *self.child_argv,
            *(extra or []),
        ]
        try:
            slot.proc = subprocess.Popen(argv, pass_fds=[fd, beat_w], env=self.env, process_group=0)
        finally:
            os.close(beat_w)
        slot.beats, slot.beaten, slot.kill_at = beats, False, None
        slot.started_at = slot.last_beat = time.monotonic()
        log.debug("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def check(self) -> None:
        """Restart workers that exited (not while stopping)."""
        now = time.monotonic()
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                self._reap(slot, proc, now)
            elif proc is not None and not self.stopping:
                self._check_alive(slot, proc, now)
            if slot.proc is None and not self.stopping and now >= slot.next_start:
                slot.restarts += 1
                self._spawn(slot)

    def _check_alive(self, slot: Slot, proc: subprocess.Popen[bytes], now: float) -> None:
        """Note its beats; SIGTERM a worker silent past the liveness timeout, SIGKILL it a grace later."""
        if _drain(slot.beats):
            slot.last_beat, slot.beaten = now, True
        if slot.kill_at is not None:
            if now >= slot.kill_at:
                _signal(proc, signal.SIGKILL)
                slot.kill_at = float("inf")  # once; the exit is reaped by check()
            return
        limit = self.liveness_timeout_s + (0.0 if slot.beaten else STARTUP_ALLOWANCE_S)
        silent = now - slot.last_beat
        if silent > limit:
            log.warning(
                "worker %d (pid %d) is hung: no heartbeat from its event loop for %.1fs (liveness "
                "timeout %gs); killing and restarting it",
                slot.index,
                proc.pid,
                silent,
                self.liveness_timeout_s,
            )
            _signal(proc, signal.SIGTERM)
            slot.kill_at = now + HUNG_GRACE_S

    def _close_beats(self, slot: Slot) -> None:
        if slot.beats is not None:
            os.close(slot.beats)
            slot.beats = None

    def _reap(self, slot: Slot, proc: subprocess.Popen[bytes], now: float) -> None:
        from modelrunner.monitoring import metrics

        metrics.mark_process_dead(proc.pid)
        slot.proc = None
        self._close_beats(slot)
        if self.stopping:
            return
        quick = now - slot.started_at < 10.0
        slot.crashes_in_a_row = slot.crashes_in_a_row + 1 if quick else 0
        crashes = slot.crashes_in_a_row
        delay = min(2.0 ** (crashes - 1), MAX_RESTART_DELAY_S) if crashes > 1 else 0.0
        slot.next_start = now + delay
        log.warning(
            "worker %d (pid %d) exited with %s; restarting%s",
            slot.index,
            proc.pid,
            proc.returncode,
            f" in {delay:.0f}s" if delay else "",
        )

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every worker, wait up to ``grace_s``, SIGKILL what is left."""
        self.stopping = True
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        # Our copies of the listening sockets go now: the workers close theirs as they stop accepting, and
        # while ours stayed open the kernel kept completing handshakes into a backlog nobody would accept,
        # so new connections hung until the last worker exited. Now they are refused at once.
        for slot in self.slots:
            slot.sock.close()
        deadline = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in %.0fs; killing it", proc.pid, grace_s)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        for slot in self.slots:
            self._close_beats(slot)

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None]


def _drain(fd: int | None) -> bool:
    """Read every pending heartbeat byte (non-blocking); True if there was at least one."""
    got = False
    while fd is not None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:  # the worker closed its end (it is exiting)
            break
        got = True
    return got


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``port`` (bound with SO_REUSEPORT, never listening) for the workers' gRPC servers to share, so no
    other program takes it meanwhile; port 0 picks a free one. Close it when serving ends."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _check_port_free(host, port, family)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    endpoints: Mapping[str, str] | None = None,
    *,
    keep_previous: bool = False,
    registry: Any = None,
    grpc_port: int | None = None,
    entry: str,
) -> int:
    """Run ``workers`` processes on ``host:port`` (and gRPC on ``grpc_port`` when given) serving the desired
    state, after writing ``endpoints`` into it. Each worker is ``python -m <entry>`` (the CLI names the
    server's ``modelrunner.server.worker``).

    The workers start first (their imports are most of a cold start) and are told which targets to expect,
    so none takes traffic before it serves them; meanwhile the targets are checked and written. A target
    that does not resolve stops the workers and raises (one line in the CLI)."""
    if workers < 1:
        raise InvalidArgument(f"--workers must be at least 1, got {workers}")
    host = normalize_host(host)  # "--host [::1]" binds as "--host ::1" does
    check_exposure(host, settings, registry)
    grpc_sock = reserve_port(host, grpc_port) if grpc_port is not None else None
    sockets = bind_sockets(host, port, workers)
    bound = sockets[0].getsockname()[1]
    metrics_dir = tempfile.mkdtemp(prefix="modelrunner-metrics-")
    child_argv = ["--host", host, "--port", str(bound)] + (["--keep-previous"] if keep_previous else [])
    expect = [arg for name, target in (endpoints or {}).items() for arg in ("--expect", f"{name}={target}")]
    if grpc_sock is not None:
        child_argv += ["--grpc-port", str(grpc_sock.getsockname()[1])]
        log.info("serving gRPC on %s:%d", url_host(host), grpc_sock.getsockname()[1])
    supervisor = Supervisor(
        sockets,
        child_argv,
        _child_env(metrics_dir, workers),
        first_argv=expect,
        liveness_timeout_s=settings.liveness_timeout_s,
        entry=entry,
    )
    startup.mark("bind")
    try:
        _run(
            supervisor,
            host,
            bound,
            grace_s=settings.drain_timeout_s + 10.0,
            before=lambda: _write_endpoints(settings, registry, endpoints),
        )
    finally:
        if grpc_sock is not None:
            grpc_sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _write_endpoints(settings: Settings, registry: Any, endpoints: Mapping[str, str] | None) -> None:
    _collect_orphans(settings)
    if not endpoints:
        return
    if registry is None:
        from modelrunner.registry.registry import Registry

        registry = Registry(settings)
    ensure_endpoints(registry, endpoints, actor=settings.resolved_actor())
    prefetch(registry, endpoints.values())


def prefetch(registry: Any, targets: Iterable[str]) -> None:
    """Fetch (verify, unpack) each target's bundle into the host's cache while the workers import, so none
    of them does it on its critical path (the fetch lock makes a worker that gets there first wait instead).
    Best effort: a worker fetches whatever this could not."""
    from modelrunner.pipelines.targets import PipelineVersion, resolve_target

    for target in targets:
        try:
            resolved = resolve_target(registry, target)
            if not isinstance(resolved, PipelineVersion):  # a pipeline's steps are fetched as it loads
                registry.fetch(resolved)
        except Exception:  # noqa: BLE001 - the worker's own fetch reports the error
            log.debug("prefetching %s failed", target, exc_info=True)


def _collect_orphans(settings: Settings) -> None:
    """Remove what killed pushes and fetches left in the cache and store (past the grace period)."""
    from modelrunner.registry.gc import collect_orphans
    from modelrunner.registry.store import ArtifactStore

    try:
        store = ArtifactStore(settings.resolved_store_url(), settings.store_options)
        collect_orphans(settings.resolved_cache_dir(), store, settings.orphan_grace_s)
    except Exception:  # noqa: BLE001 - best effort: a failed cleanup must not stop serving
        log.warning("could not remove orphaned temporary files", exc_info=True)


def _child_env(metrics_dir: str, workers: int = 1) -> dict[str, str]:
    """The workers' environment: ours, plus the shared Prometheus multiprocess folder and the number of
    workers (``MODELRUNNER_WORKERS``: flavors with their own thread pools, torch, share the cores by it).

    The supervisor records no metrics: unless this process imported prometheus-client already, exporting the
    (new, empty) folder is all multiprocess mode needs, and the supervisor's start skips that import."""
    if "prometheus_client" in sys.modules:
        from modelrunner.monitoring import metrics

        metrics.setup_multiprocess(metrics_dir)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    return {**os.environ, "MODELRUNNER_WORKERS": str(workers)}


def _run(
    supervisor: Supervisor,
    host: str,
    port: int,
    grace_s: float = GRACE_S,
    before: Callable[[], None] | None = None,
) -> None:
    """Start the workers, run ``before`` (writing the desired state) while they start, supervise until a
    signal. If ``before`` raises, the workers (not yet serving) are stopped at once and the error raised."""
    stop_requested: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.start()
        startup.mark("spawn workers")
        try:
            if before is not None:
                before()
        except BaseException:
            grace_s = STARTUP_GRACE_S
            raise
        startup.report("supervisor", "desired state")
        log.info(
            "serving on http://%s:%d with %d worker(s) (pids %s)",
            url_host(host),
            port,
            len(supervisor.slots),
            ", ".join(map(str, supervisor.pids())),
        )
        while not stop_requested:
            supervisor.check()
            time.sleep(0.1)
        log.warning("stopping (signal %d)", stop_requested[0])
    finally:
        supervisor.stop(grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
