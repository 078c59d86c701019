"""Composition root: one FastAPI app over one runtime (one per worker process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from modelrunner.monitoring import metrics
from modelrunner.server import admin, openapi, repository, rest, v2, wire
from modelrunner.server.auth import AuthGate
from modelrunner.server.dataplane import RuntimeLike
from modelrunner.server.fastpath import FastApp
from modelrunner.server.guard import RequestGuard
from modelrunner.server.http import ORJSONResponse, install_error_handlers, json_response
from modelrunner.server.wire import readiness
from modelrunner.settings import Settings


def package_version() -> str:
    try:
        return metadata.version("modelrunner")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(runtime: RuntimeLike, settings: Settings | None = None, *,
               bind_host: str = "127.0.0.1") -> FastAPI:
    """The HTTP app: predict (``/v1``), Open Inference Protocol (``/v2``), ``/admin``, health and metrics.

    The lifespan starts the runtime (reconciler, first loads) and stops it on shutdown. ``bind_host`` is the
    address the server listens on: which ``Host`` names it answers depends on it (server/guard.py).
    """
    settings = settings or Settings()

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
    from modelrunner.server.security_routes import router as security_router  # tokens, trust, federation

    app.include_router(security_router)
    if getattr(runtime, "registry", None) is not None:
        from modelrunner.catalog import mount  # imported here: only the routed app serves the web catalog

        mount(app, runtime, settings)
    openapi.document(app, (rest.OPENAPI_PATHS, v2.OPENAPI_PATHS))
    return app


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="200 while the process is up")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"], summary="200 once every endpoint has a loaded version, else 503",
             responses={503: {"description": "not ready", "content": {"application/json": {"schema": {
                 "type": "object", "required": ["status", "waiting_for"], "properties": {
                     "status": {"type": "string"}, "waiting_for": {"type": "array", "items": {
                         "type": "string"}}}}}}}})
    async def readyz(request: Request) -> Response:
        status, body = readiness(request.app.state.runtime)
        return json_response(body, status)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics of every worker",
             response_class=PlainTextResponse)
    async def metrics_route() -> Response:
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)
