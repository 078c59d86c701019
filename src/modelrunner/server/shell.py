"""The ASGI app of a worker process: it takes traffic as soon as its models are loaded, FastAPI comes after.

Importing FastAPI and building the routed app (``create_app``: pydantic models of the admin API, OpenAPI,
the V2 routes) costs ~0.3 s of CPU, a fifth of a worker's cold start, and a worker does not need it to
answer predictions. :class:`WorkerApp` runs the lifespan itself (the runtime's first reconcile and loads,
then gRPC when asked), then takes traffic at once and builds the routed app in a thread
:data:`BUILD_AFTER_S` later, or as soon as a request needs it:

- plain JSON predict requests (see :mod:`modelrunner.server.native.plain`) and plain protobuf ones
  (``native.protocore``) are answered here, before and after, by the same interceptions the routed app
  makes (``plain.intercept``, ``protocore.intercept``);
- ``/healthz`` and ``/readyz`` are answered here until the routed app is built;
- every other request (``/v2``, ``/admin``, ``/metrics``, protobuf, forms, ``?trace=1``) waits for the
  routed app (a few hundred milliseconds after start at most) and goes to it unchanged.

Once built, the routed app is frozen out of the collector's sight like the rest of the startup heap
(``runner.memory.freeze_startup_heap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from modelrunner.runner import startup
from modelrunner.runner.memory import freeze_startup_heap
from modelrunner.server import wire
from modelrunner.server.dataplane import DataPlane, RuntimeLike
from modelrunner.server.native import plain, protocore
from modelrunner.server.wire import Receive, Scope, Send
from modelrunner.settings import Settings

log = logging.getLogger(__name__)

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
HEALTH = ("/healthz", "/readyz")
EXIT_POLL_S = 0.05
BUILD_AFTER_S = 0.25
"""How long after its start a worker builds the routed app unless a request needs it sooner."""


class Startable(Protocol):
    """What the shell runs after the runtime in its lifespan (the gRPC server)."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...


class WorkerApp:
    """A worker's ASGI app over ``runtime`` (see the module docstring); ``build()`` makes the routed app.

    ``plane`` is the worker's :class:`DataPlane` (one over ``runtime`` when not given)."""

    def __init__(
        self,
        runtime: RuntimeLike,
        settings: Settings,
        build: Callable[[], ASGIApp],
        *,
        grpc: Startable | None = None,
        refreeze: bool = False,
        exiting: Callable[[], bool] | None = None,
        plane: DataPlane | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.plane = plane or DataPlane(runtime, settings)
        wire.hide_paths(settings)  # errors answered before the routed app exists hide them too
        self.grpc = grpc
        # True once the server is asked to exit (uvicorn's ``should_exit``): a start still waiting for
        # ``serve``'s targets, or loading them, is abandoned instead of holding the process until it ends.
        self.exiting = exiting or (lambda: False)
        self.app: ASGIApp | None = None
        self._build = build
        self._refreeze = refreeze
        self._building: asyncio.Future[ASGIApp] | None = None
        self._build_now: asyncio.Event | None = None  # set: build the routed app now (a request waits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and await self._answered_here(scope, receive, send):
            return
        try:
            app = self.app or await self.routed()
        except Exception as exc:  # noqa: BLE001 - the routed app failed to build (logged once): a 500
            if scope["type"] == "http":
                body = wire.error_body(scope["path"], "internal", f"internal error: {type(exc).__name__}")
                await wire.send_json(send, 500, body)
            return
        await app(scope, receive, send)

    async def _answered_here(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if await plain.intercept(self.plane, scope, receive, send):
            return True
        if await protocore.intercept(self.plane, scope, receive, send):  # a plain protobuf predict
            return True
        if self.app is None and scope["method"] in ("GET", "HEAD") and scope["path"] in HEALTH:
            healthz = scope["path"] == "/healthz"
            status, body = (200, {"status": "ok"}) if healthz else self.plane.readiness()
            await wire.send_json(send, status, body)
            return True
        return False

    async def routed(self) -> ASGIApp:
        """The routed app, building it (in a thread) if no one has started to."""
        self._start_building()
        assert self._building is not None and self._build_now is not None
        self._build_now.set()
        return await asyncio.shield(self._building)

    def _start_building(self, after_s: float = 0.0) -> None:
        """Build the routed app in a thread, ``after_s`` from now or as soon as a request needs it
        (:meth:`routed`). The lifespan waits :data:`BUILD_AFTER_S`: the requests queued while the worker
        started are answered first, without a thread importing FastAPI beside them (it held the GIL for
        ~0.1 s of their answers in a worker's cold start)."""
        if self._building is not None:
            return
        build_now = self._build_now = asyncio.Event()

        def make() -> ASGIApp:
            app = self._build()
            if self._refreeze:
                freeze_startup_heap(count=False)
            return app

        def done(fut: asyncio.Future[ASGIApp]) -> None:
            if fut.cancelled():
                return
            if fut.exception() is None:
                self.app = fut.result()
            else:
                log.error(
                    "building the routed app failed; only plain predict requests are served",
                    exc_info=fut.exception(),
                )

        async def build_when_due() -> ASGIApp:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(build_now.wait(), after_s)
            return await asyncio.to_thread(make)

        self._building = asyncio.ensure_future(build_when_due())
        self._building.add_done_callback(done)

    async def _start(self) -> bool:
        """``runtime.start()``, then gRPC; False when abandoned because the server is asked to exit."""
        start = asyncio.ensure_future(self.runtime.start())
        while not start.done():
            await asyncio.wait({start}, timeout=EXIT_POLL_S)
            if not start.done() and self.exiting():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await start
                return False
        start.result()
        startup.mark("runtime")  # the first reconcile: desired state, fetch, load, warm-up (runtime.start)
        if self.grpc is not None:
            await self.grpc.start()
            startup.mark("grpc")
        return True

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    started = await self._start()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    log.exception("the worker failed to start")
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                if started:
                    self._start_building(after_s=BUILD_AFTER_S)
                # abandoned: the server, asked to exit, skips serving and runs the shutdown below at once
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self.grpc is not None:
                        await self.grpc.stop()
                    await self.runtime.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return
