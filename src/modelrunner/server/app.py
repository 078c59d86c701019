"""Composition root: one FastAPI app over one runtime (one per worker process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelrunner.monitoring import metrics
from modelrunner.server import admin, repository, rest, v2
from modelrunner.server.dataplane import RuntimeLike
from modelrunner.server.fastpath import FastApp
from modelrunner.server.http import ORJSONResponse, install_error_handlers, json_response
from modelrunner.server.wire import readiness
from modelrunner.settings import Settings


def package_version() -> str:
    try:
        return metadata.version("modelrunner")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(runtime: RuntimeLike, settings: Settings | None = None) -> FastAPI:
    """The HTTP app: predict (``/v1``), Open Inference Protocol (``/v2``), ``/admin``, health and metrics.

    The lifespan starts the runtime (reconciler, first loads) and stops it on shutdown.
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
    )
    app.state.runtime = runtime
    app.state.settings = settings
    install_error_handlers(app)
    _add_health_routes(app)
    app.include_router(rest.router)
    app.include_router(v2.router)
    app.include_router(repository.router)
    app.include_router(admin.router)
    if getattr(runtime, "registry", None) is not None:
        from modelrunner.catalog import mount  # imported here: only the routed app serves the web catalog

        mount(app, runtime, settings)
    _document_hot_paths(app)
    return app


def _document_hot_paths(app: FastAPI) -> None:
    """Add the hand-written OpenAPI of the plain Starlette routes (predict, infer) to the generated schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for paths in (rest.OPENAPI_PATHS, v2.OPENAPI_PATHS):
            for path, operations in paths.items():
                schema["paths"].setdefault(path, {}).update(operations)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="200 while the process is up")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"], summary="200 once every endpoint has a loaded version, else 503")
    async def readyz(request: Request) -> Response:
        status, body = readiness(request.app.state.runtime)
        return json_response(body, status)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics of every worker")
    async def metrics_route() -> Response:
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)
