"""One worker process: ``python -m modelrunner.runner.child --fd N --slot I ...`` (started by workers.py).

Builds a :class:`Runtime` and the server app over it, then serves the inherited listening socket with uvicorn
on uvloop + httptools (uvloop sets TCP_NODELAY on accepted connections; the plain asyncio loop leaves Nagle
on), access log off. Exits when its parent dies. With ``--beat-fd`` its event loop writes a byte to that pipe
every ``--beat-interval`` seconds: the supervisor replaces a worker whose loop stops beating (workers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, cast

from modelrunner.settings import Settings

log = logging.getLogger("modelrunner.runner.child")


def worker_id(port: int, slot: int) -> str:
    """Stable per slot, so a restarted worker replaces its predecessor's status rows."""
    return f"{socket.gethostname()}:{port}/w{slot}"


def _watch_parent(parent: int) -> None:
    """Stop this worker (gracefully) when the supervisor is gone."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            log.warning("supervisor %d is gone; stopping", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def beat(loop: asyncio.AbstractEventLoop, fd: int, interval: float) -> None:
    """Write one byte to the supervisor's pipe now and every ``interval`` s, from ``loop``'s own callbacks:
    the beats stop when the loop is blocked (a model predicting on it, a stuck lock) or the process is."""
    try:
        os.write(fd, b".")
    except BlockingIOError:  # the supervisor is behind on reading: it has beats to read anyway
        pass
    except OSError:  # the supervisor is gone; _watch_parent stops this worker
        return
    loop.call_later(interval, beat, loop, fd, interval)


def serve_beating(server: Any, sock: socket.socket, fd: int, interval: float) -> None:
    """``server.run(sockets=[sock])`` with the event loop beating on ``fd`` (see :func:`beat`)."""
    os.set_blocking(fd, False)

    async def serve() -> None:
        beat(asyncio.get_running_loop(), fd, interval)
        await server.serve(sockets=[sock])

    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(serve())
    finally:
        os.close(fd)


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options from ``settings.tls_cert``/``tls_key`` (none: plain HTTP)."""
    if settings.tls_cert is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}


def build_server(args: argparse.Namespace) -> object:
    """uvicorn over a :class:`~modelrunner.server.shell.WorkerApp`: traffic once the models are loaded, the
    routed FastAPI app (``create_app``) built in a thread right after (server/shell.py)."""
    import uvicorn

    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.protocol import guarded_protocol
    from modelrunner.server.shell import WorkerApp

    settings = Settings()
    expect = dict(item.partition("=")[::2] for item in args.expect)
    runtime = Runtime(settings=settings, worker_id=worker_id(args.port, args.slot),
                      keep_previous=args.keep_previous, freeze_heap=True, expect=expect)
    from modelrunner.runner.workers import is_loopback
    from modelrunner.security.trust import install_policy

    # pickle loads need a trust decision beyond loopback (docs/security.md)
    install_policy(runtime.registry, settings, strict=not is_loopback(args.host))
    grpc = None
    if args.grpc_port is not None:
        from modelrunner.server.grpc_server import GrpcServer

        grpc = GrpcServer(cast(Any, runtime), settings, args.host, args.grpc_port)

    def routed() -> Any:
        from modelrunner.server.app import create_app

        return create_app(cast(Any, runtime), settings, bind_host=args.host)

    app = WorkerApp(runtime, settings, routed, grpc=grpc, refreeze=True)
    http = guarded_protocol(settings.max_header_bytes, settings.request_read_timeout_s)  # httptools + limits
    config = uvicorn.Config(app, loop="uvloop", http=http, lifespan="on", access_log=False,
                            log_level="warning", timeout_graceful_shutdown=int(settings.drain_timeout_s),
                            server_header=False, **tls_options(settings))
    server = uvicorn.Server(config)
    app.exiting = lambda: server.should_exit  # SIGTERM while still starting: stop now, not after the wait
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelrunner-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-previous", action="store_true")
    parser.add_argument("--grpc-port", type=int, default=None)
    parser.add_argument("--beat-fd", type=int, default=None, help="pipe to the supervisor for heartbeats")
    parser.add_argument("--beat-interval", type=float, default=1.0)
    parser.add_argument("--expect", action="append", default=[], metavar="NAME=TARGET",
                        help="wait for the desired state to say this before taking traffic")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s w{args.slot} %(levelname)s %(name)s: "
                        "%(message)s")
    logging.getLogger("modelrunner").setLevel(logging.INFO)
    sock = socket.socket(fileno=args.fd)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    server = build_server(args)
    if args.beat_fd is None:
        server.run(sockets=[sock])  # type: ignore[attr-defined]
    else:
        serve_beating(server, sock, args.beat_fd, args.beat_interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
