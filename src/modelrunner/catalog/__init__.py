"""The web catalog: server-rendered pages over the registry and the live runners, mounted at ``/ui``.

Every page reads through the same functions the CLI and the admin API use (``Registry`` methods,
``contract`` renderers, ``runner.waiting``, ``monitoring.metrics.render``); nothing here queries the
database itself. Pages work without JavaScript; htmx (vendored in ``static/``) only refreshes the live
figures of the endpoints page.

:func:`mount` costs nothing at startup: the pages (Jinja2, templates) are imported and built on the first
request under ``/ui``, not when a worker builds its routed app (see ``server/shell.py`` on cold start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from modelrunner.catalog.web import Runtime
    from modelrunner.settings import Settings

PREFIX = "/ui"


def mount(app: Starlette, runtime: Runtime, settings: Settings) -> None:
    """Add the catalog at ``/ui`` to a server's routed app, and ``GET /`` redirecting to it."""
    from starlette.responses import RedirectResponse

    built: list[Any] = []

    async def catalog(scope: Any, receive: Any, send: Any) -> None:
        if not built:
            from modelrunner.catalog.web import Catalog, catalog_app

            built.append(catalog_app(Catalog(runtime.registry, settings, runtime=runtime)))
        await built[0](scope, receive, send)

    async def home(_request: Any) -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=307)

    app.mount(PREFIX, catalog)
    app.add_route("/", home, methods=["GET"], include_in_schema=False)
    app.add_route(PREFIX, home, methods=["GET"], include_in_schema=False)


__all__ = ["PREFIX", "mount"]
