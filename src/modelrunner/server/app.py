"""The routed HTTP app: one FastAPI app over one worker's data plane (built by ``server.compose``).

Every protocol's routes are mounted here — native ``/v1`` (``native.rest``), V2 ``/v2`` (``v2.rest``), the
V2 repository extension and ``/admin`` (``admin``), health and metrics — with the error handlers and the
request guard. Plain JSON predicts never reach the routes (``native.fastpath.FastApp``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from modelrunner.monitoring import metrics
from modelrunner.server import openapi, wire
from modelrunner.server.admin import repository
from modelrunner.server.admin import routes as admin
from modelrunner.server.admin import security as security_routes
from modelrunner.server.auth import AuthGate
from modelrunner.server.dataplane import DataPlane, RuntimeLike
from modelrunner.server.guard import RequestGuard
from modelrunner.server.http import ORJSONResponse, install_error_handlers, json_response, plane_of
from modelrunner.server.native import rest
from modelrunner.server.native.fastpath import FastApp
from modelrunner.server.v2 import rest as v2
from modelrunner.settings import Settings
from modelrunner.version import package_version


def create_app(
    runtime: RuntimeLike,
    settings: Settings | None = None,
    *,
    bind_host: str = "127.0.0.1",
    plane: DataPlane | None = None,
) -> FastAPI:
    """The HTTP app: predict (``/v1``), Open Inference Protocol (``/v2``), ``/admin``, health and metrics.

    The lifespan starts the runtime (reconciler, first loads) and stops it on shutdown. ``bind_host`` is the
    address the server listens on: which ``Host`` names it answers depends on it (server/guard.py).
    ``plane`` is the worker's :class:`DataPlane` (one over ``runtime`` when not given).
    """
    settings = settings or Settings()
    plane = plane or DataPlane(runtime, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastApp(  # FastAPI that answers plain JSON predict requests before routing (server/fastpath.py)
        title="modelrunner",
        version=package_version(),
        description="One serving deployment, any model, hot-swapped live with typed contracts.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
        # Swagger UI and ReDoc load their scripts from a CDN: blank pages offline. /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.dataplane = plane
    wire.hide_paths(settings)
    install_error_handlers(app)
    # added last, so outermost: a refused request costs no routing (an error inside still gets CatchErrors'
    # 500, as the guard itself answers without raising)
    app.add_middleware(AuthGate, state=app.state)  # who may call what (server/auth.py)
    app.add_middleware(RequestGuard, bind_host=bind_host, extra_hosts=settings.allowed_hosts)
    _add_health_routes(app)
    app.include_router(rest.router)
    app.include_router(v2.router)
    app.include_router(repository.router)
    app.include_router(admin.router)
    app.include_router(security_routes.router)  # tokens, trust, federation
    if getattr(runtime, "registry", None) is not None:
        from modelrunner.catalog import mount  # imported here: only the routed app serves the web catalog

        mount(app, runtime, settings)
    openapi.document(app, (rest.OPENAPI_PATHS, v2.OPENAPI_PATHS))
    return app


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="200 while the process is up")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["health"],
        summary="200 once every endpoint has a loaded version, else 503",
        responses={
            503: {
                "description": "not ready",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "waiting_for"],
                            "properties": {
                                "status": {"type": "string"},
                                "waiting_for": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
            }
        },
    )
    async def readyz(request: Request) -> Response:
        status, body = plane_of(request).readiness()
        return json_response(body, status)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics of every worker",
        response_class=PlainTextResponse,
    )
    async def metrics_route() -> Response:
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)
