"""Running one worker process (started by supervisor.py): arguments, parent watch, heartbeats, the socket.

The process entry is ``python -m modelrunner.server.worker --fd N --slot I ...``: it calls :func:`run` with
the server's composition root (``server.compose.worker_server``), which builds a :class:`Runtime` and the
apps over it. This module imports nothing of server/: it parses the arguments, builds the server through the
callable it is given, and serves the inherited listening socket with it (``serve``'s first worker is given
them later, through a control socket: runner/lead.py). Exits when its parent dies. With
``--beat-fd`` its event loop writes a byte to that pipe every ``--beat-interval`` seconds: the supervisor
replaces a worker whose loop stops beating (supervisor.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from modelrunner.runner import lead, startup

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


class WorkerServer(Protocol):
    """What :func:`run` needs of the server it is given (a ``uvicorn.Server``)."""

    config: Any
    started: bool

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...

    async def serve(self, sockets: list[socket.socket] | None = None) -> None: ...


async def report_when_serving(server: WorkerServer, slot: int) -> None:
    """Log this worker's start-up timings (``runner.startup``) once uvicorn serves the socket."""
    while not server.started:
        await asyncio.sleep(0.005)
    if not getattr(server, "should_exit", False):  # a start abandoned on SIGTERM served nothing
        startup.report(f"w{slot}", "bind")


def serve_beating(server: WorkerServer, sock: socket.socket, fd: int, interval: float, slot: int = 0) -> None:
    """``server.run(sockets=[sock])`` with the event loop beating on ``fd`` (see :func:`beat`)."""
    os.set_blocking(fd, False)

    async def serve() -> None:
        beat(asyncio.get_running_loop(), fd, interval)
        reporting = asyncio.get_running_loop().create_task(report_when_serving(server, slot))
        await server.serve(sockets=[sock])
        reporting.cancel()

    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(serve())
    finally:
        os.close(fd)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelrunner-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-previous", action="store_true")
    parser.add_argument("--grpc-port", type=int, default=None)
    parser.add_argument("--beat-fd", type=int, default=None, help="pipe to the supervisor for heartbeats")
    parser.add_argument(
        "--beat-interval", type=float, default=None, help="seconds (default: from the liveness timeout)"
    )
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help="wait for the desired state to say this before taking traffic",
    )
    parser.add_argument(
        "--write-expected",
        default=None,
        metavar="REPORT",
        help="first write the --expect targets (and remove orphans) into the desired state; the outcome "
        "goes to the file REPORT (runner.workers.write_expected)",
    )
    return parser.parse_args(argv)


def run(
    argv: list[str] | None,
    build: Callable[[argparse.Namespace], WorkerServer],
    prepare: Callable[[], None] | None = None,
) -> int:
    """Run one worker: ``build(args)`` makes its server, which then serves the inherited socket.

    ``serve``'s lead worker (``--lead-control N``, runner/lead.py) runs ``prepare`` (its imports) first, then
    waits for its arguments; it exits at once if the supervisor closes the control socket instead."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == [lead.FLAG]:
        if prepare is not None:
            prepare()
        received = lead.receive(int(args[1]))
        if received is None:
            return 0
        startup.mark("arguments")
        args = received
    return _run(parse_args(args), build)


def _run(args: argparse.Namespace, build: Callable[[argparse.Namespace], WorkerServer]) -> int:
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s w{args.slot} %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("modelrunner").setLevel(logging.INFO)
    # a worker does not log a migration of the registry's database: its line would precede the supervisor's
    # one-line error on a bad --endpoint
    logging.getLogger("modelrunner.registry.db").setLevel(logging.WARNING)
    sock = socket.socket(fileno=args.fd)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    server = build(args)
    if args.beat_fd is None:
        server.run(sockets=[sock])
    else:
        serve_beating(server, sock, args.beat_fd, args.beat_interval or _beat_interval(), args.slot)
    return 0


def _beat_interval() -> float:
    """The beat interval the settings' liveness timeout asks for (the supervisor, which spawned this worker
    before it read the settings, reads the same ones)."""
    from modelrunner.runner.supervisor import beat_interval
    from modelrunner.settings import Settings

    return beat_interval(Settings().liveness_timeout_s)
