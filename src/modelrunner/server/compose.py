"""The composition root of a worker: its runtime, data plane, HTTP app, gRPC server and ASGI shell.

Everything a worker process serves is wired here, once: one :class:`Runtime` (the registry's desired state),
one :class:`DataPlane` over it that every protocol calls, one observer both report to (Prometheus,
``monitoring.prometheus.PROMETHEUS``), the gRPC server (when asked) over that data plane,
and the :class:`WorkerApp` shell that takes traffic once the models are loaded while the routed FastAPI app
(``server.app.create_app``, over the same data plane) is built in a thread. ``worker_server`` wraps it all
in uvicorn for ``runner.child.run`` (the process entry is ``server.worker``).

Nothing here imports FastAPI at module level: a worker answers its first predictions before FastAPI is
imported (server/shell.py).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrunner.monitoring.observer import RequestObserver
from modelrunner.monitoring.prometheus import PROMETHEUS
from modelrunner.runner.child import worker_id
from modelrunner.server.dataplane import DataPlane, RuntimeLike
from modelrunner.server.shell import ASGIApp, WorkerApp
from modelrunner.settings import Settings

if TYPE_CHECKING:
    import uvicorn


def build_worker(
    runtime: RuntimeLike,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    grpc_port: int | None = None,
    refreeze: bool = False,
    observer: RequestObserver = PROMETHEUS,
) -> WorkerApp:
    """The apps of one worker over ``runtime``: the shell (returned), the routed HTTP app it builds, and the
    gRPC server on ``grpc_port`` (when given) it starts after the runtime — all over one data plane, which
    reports requests to ``observer``."""
    plane = DataPlane(runtime, settings, observer)
    grpc = None
    if grpc_port is not None:
        from modelrunner.server.grpc.server import GrpcServer  # grpc's import is not paid without gRPC

        grpc = GrpcServer(plane, host, grpc_port)

    def routed() -> ASGIApp:
        from modelrunner.server.app import create_app  # FastAPI: imported in the shell's build thread

        app: ASGIApp = create_app(runtime, settings, bind_host=host, plane=plane)
        return app

    return WorkerApp(runtime, settings, routed, grpc=grpc, refreeze=refreeze, plane=plane)


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options from ``settings.tls_cert``/``tls_key`` (none: plain HTTP)."""
    if settings.tls_cert is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}


@functools.cache
def preload() -> None:
    """Import what :func:`worker_server` needs, and end the start-up span "imports" (once). ``serve``'s
    first worker runs it before its arguments arrive (runner/lead.py)."""
    import uvicorn  # noqa: F401

    from modelrunner.runner import runtime, sockets, startup  # noqa: F401
    from modelrunner.security import trust  # noqa: F401
    from modelrunner.server import fastproto  # noqa: F401

    startup.mark("imports")


def worker_server(args: argparse.Namespace) -> uvicorn.Server:
    """uvicorn over :func:`build_worker`'s shell for the worker ``args`` describe (``runner.child``'s
    arguments): traffic once the models are loaded, the routed app built in a thread right after."""
    preload()
    import uvicorn

    from modelrunner.runner import startup
    from modelrunner.runner.runtime import Runtime
    from modelrunner.runner.sockets import is_loopback
    from modelrunner.security.trust import install_policy
    from modelrunner.server.fastproto import fast_protocol

    settings = Settings()
    observer = PROMETHEUS
    expect = dict(item.partition("=")[::2] for item in args.expect)
    runtime = Runtime(
        settings=settings,
        worker_id=worker_id(args.port, args.slot),
        keep_previous=args.keep_previous,
        freeze_heap=True,
        expect=expect,
        observer=observer,
    )
    # pickle loads need a trust decision beyond loopback (docs/security.md)
    install_policy(runtime.registry, settings, strict=not is_loopback(args.host))
    report = args.write_expected  # serve's first worker writes its --endpoint targets (runner.workers)
    if report:
        from modelrunner.runner.workers import write_expected  # (the others never import it)

        if not write_expected(settings, runtime.registry, expect, Path(report)):
            raise SystemExit(2)  # the supervisor says why, in one line
    startup.mark("registry")
    app = build_worker(
        runtime, settings, host=args.host, grpc_port=args.grpc_port, refreeze=True, observer=observer
    )
    # httptools, with limits, answering plain predicts itself (server/fastproto.py)
    http = fast_protocol(app.plane, settings.max_header_bytes, settings.request_read_timeout_s)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=http,
        ws="none",  # no WebSocket routes: uvicorn's "auto" imported the websockets library at every start
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        server_header=False,
        **tls_options(settings),
    )
    server = uvicorn.Server(config)
    app.exiting = lambda: server.should_exit  # SIGTERM while still starting: stop now, not after the wait
    startup.mark("app")
    return server
