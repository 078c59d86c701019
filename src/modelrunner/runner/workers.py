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

The sockets are ``runner.sockets``, the restarts and heartbeats ``runner.supervisor``; this module checks what
may be served where, writes the desired state and runs the supervisor until a signal.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from modelrunner.errors import BY_CODE, FailedPrecondition, InvalidArgument, ModelrunnerError, NotFound
from modelrunner.runner import lead as leads
from modelrunner.runner import startup
from modelrunner.runner.sockets import bind_sockets, is_loopback, normalize_host, reserve_port, url_host
from modelrunner.runner.supervisor import Supervisor

if TYPE_CHECKING:
    from modelrunner.settings import Settings

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 2.0
"""How long workers stopped during startup (a bad ``--endpoint``) get before SIGKILL: they serve nothing."""


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


def serve(
    settings: Settings | None,
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
    so none takes traffic before it serves them. The first one checks and writes them (``write_expected``:
    this process then never imports the registry) unless a ``registry`` is given, which is written here. A
    target that does not resolve stops the workers and raises (one line in the CLI). ``modelrunner serve``
    spawned slot 0's first worker before it parsed its command line (runner/lead.py): it is adopted here.

    ``settings`` None: read them (``Settings()``) here. On a loopback host that happens after the workers
    are spawned (importing pydantic-settings is ~0.1 s of CPU, two thirds of the supervisor's start); beyond
    loopback the admin token is checked before anything listens."""
    if workers < 1:
        raise InvalidArgument(f"--workers must be at least 1, got {workers}")
    host = normalize_host(host)  # "--host [::1]" binds as "--host ::1" does
    if settings is None and not is_loopback(host):
        settings = _read_settings()
    if settings is not None:
        check_exposure(host, settings, registry)
    lead = leads.take(entry) if registry is None else None  # `modelrunner serve`'s first worker (lead.py)
    try:
        _serve(settings, host, port, workers, endpoints, keep_previous, registry, grpc_port, entry, lead)
    finally:
        if lead is not None:  # handed over: stopped with the others; else killed here
            lead.discard()
    return 0


def _serve(
    settings: Settings | None,
    host: str,
    port: int,
    workers: int,
    endpoints: Mapping[str, str] | None,
    keep_previous: bool,
    registry: Any,
    grpc_port: int | None,
    entry: str,
    lead: leads.Lead | None,
) -> None:
    grpc_sock = reserve_port(host, grpc_port) if grpc_port is not None else None
    sockets = bind_sockets(host, port, workers)
    bound = sockets[0].getsockname()[1]
    metrics_dir = lead.metrics_dir if lead is not None else tempfile.mkdtemp(prefix="modelrunner-metrics-")
    child_argv = ["--host", host, "--port", str(bound)] + (["--keep-previous"] if keep_previous else [])
    expect = [arg for name, target in (endpoints or {}).items() for arg in ("--expect", f"{name}={target}")]
    # no registry opened here: the first worker writes the targets (it opens the registry anyway)
    report = None if registry is not None else Path(metrics_dir) / REPORT_NAME
    if grpc_sock is not None:
        child_argv += ["--grpc-port", str(grpc_sock.getsockname()[1])]
        log.info("serving gRPC on %s:%d", url_host(host), grpc_sock.getsockname()[1])
    supervisor = Supervisor(
        sockets,
        child_argv,
        _child_env(metrics_dir, workers),
        first_argv=expect,
        lead_argv=[] if report is None else ["--write-expected", str(report)],
        liveness_timeout_s=None if settings is None else settings.liveness_timeout_s,
        entry=entry,
        lead=lead,
    )
    startup.mark("bind")
    try:
        _run(
            supervisor,
            host,
            bound,
            before=lambda: _settle(supervisor, settings, host, registry, endpoints, report),
        )
    finally:
        if grpc_sock is not None:
            grpc_sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _settle(
    supervisor: Supervisor,
    settings: Settings | None,
    host: str,
    registry: Any,
    endpoints: Mapping[str, str] | None,
    report: Path | None = None,
) -> None:
    """While the workers start: read the settings (unless given), check the exposure they allow, apply
    them to the supervisor, write ``endpoints`` into the desired state -- or, with a ``report`` file, wait
    for the first worker to have written them (:func:`write_expected`)."""
    if settings is None:
        settings = _read_settings()
        check_exposure(host, settings, registry)
    supervisor.liveness_timeout_s = settings.liveness_timeout_s
    supervisor.grace_s = settings.drain_timeout_s + 10.0
    if report is None:
        _write_endpoints(settings, registry, endpoints)
    else:
        _await_report(supervisor, report)


def _read_settings() -> Settings:
    from modelrunner.settings import Settings

    return Settings()


def _write_endpoints(settings: Settings, registry: Any, endpoints: Mapping[str, str] | None) -> None:
    _collect_orphans(settings)
    if not endpoints:
        return
    if registry is None:
        from modelrunner.registry.registry import Registry

        registry = Registry(settings)
    ensure_endpoints(registry, endpoints, actor=settings.resolved_actor())
    prefetch(registry, endpoints.values())


REPORT_NAME = "expected.json"
"""The file the first worker reports its :func:`write_expected` in (in the run's metrics folder, which
prometheus-client reads only ``*.db`` files of)."""


def write_expected(settings: Settings, registry: Any, endpoints: Mapping[str, str], report: Path) -> bool:
    """In ``serve``'s first worker (``--write-expected``), as soon as it has opened the registry: remove
    orphans, write ``endpoints`` into the desired state, report the outcome to the supervisor. The worker
    imports the registry in any case; the supervisor importing it too (SQLAlchemy, the contracts, NumPy:
    ~0.4 s of CPU) competed with the workers' start for the same cores. False: a target did not resolve
    (reported; the supervisor stops everything and says why in one line)."""
    _collect_orphans(settings)
    outcome: dict[str, str] = {"code": "ok"}
    try:
        if endpoints:
            ensure_endpoints(registry, endpoints, actor=settings.resolved_actor())
    except ModelrunnerError as exc:
        outcome = {"code": exc.code, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported as the supervisor's own error would be
        log.debug("writing the --endpoint targets failed", exc_info=True)
        outcome = {"code": "internal", "message": f"unexpected {type(exc).__name__}: {exc}"}
    partial = report.with_suffix(".part")
    partial.write_text(json.dumps(outcome))
    os.replace(partial, report)  # the supervisor never reads half of it
    return outcome["code"] == "ok"


def _await_report(supervisor: Supervisor, report: Path) -> None:
    """Until the first worker reported :func:`write_expected`; its error is raised here, as the
    supervisor's own was when it wrote the targets itself. A signal to stop ends the wait."""
    lead = supervisor.slots[0]
    while not report.exists():
        if supervisor.signalled:
            return  # asked to stop: the caller stops the workers
        proc = lead.proc
        code = None if proc is None else proc.poll()
        if code is not None and not report.exists():
            raise FailedPrecondition(
                f"worker 0 exited (code {code}) before it wrote the desired state; its log above says why"
            )
        time.sleep(0.01)
    outcome = json.loads(report.read_text())
    if outcome["code"] != "ok":
        raise BY_CODE.get(outcome["code"], ModelrunnerError)(outcome["message"])


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


def _run(supervisor: Supervisor, host: str, port: int, before: Callable[[], None] | None = None) -> None:
    """Start the workers, run ``before`` (reading the settings, writing the desired state) while they start,
    supervise until a signal; stop the workers (``supervisor.grace_s``). If ``before`` raises, the workers
    (not yet serving) are stopped at once and the error raised."""
    stop_requested: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.append(signum)
        supervisor.signalled = True  # ends a wait for the first worker's report (_await_report)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.start()
        startup.mark("spawn workers")
        collecting = gc.isenabled()
        gc.disable()  # importing the registry: ~100k objects, no garbage; ~10% of its CPU was the collector
        try:
            if before is not None:
                before()
        except BaseException:
            supervisor.grace_s = STARTUP_GRACE_S
            raise
        finally:
            if collecting:
                gc.enable()
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
        supervisor.stop(supervisor.grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
