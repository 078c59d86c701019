"""The catalog's Starlette app: routes, rendering, access checks and error pages.

``catalog.mount`` adds it at ``/ui`` to the routed app of a server (it reads the server's runtime, so
swaps wake the local reconciler); :func:`standalone_app` serves it alone over a registry for
``modelrunner ui``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from modelrunner.catalog import PREFIX, access
from modelrunner.catalog.live import LiveStats
from modelrunner.errors import HTTP_STATUS, ModelrunnerError, Unauthenticated

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
T = TypeVar("T")
Handler = Callable[["Catalog", Request, access.Viewer], Awaitable[Response]]

NAV = [
    ("models", "Models", "/"),
    ("endpoints", "Endpoints", "/endpoints"),
    ("pipelines", "Pipelines", "/pipelines"),
    ("audit", "Audit", "/audit"),
    ("experiments", "Experiments", None),
    ("monitoring", "Monitoring", None),
]
"""The navigation bar; entries without a path are pages later issues add (shown, not linked)."""


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "-"
    seconds = max(0.0, (datetime.now(UTC) - value).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


class Runtime(Protocol):
    """What the catalog needs of the server's runtime (``runner.runtime.Runtime``) when mounted in one."""

    @property
    def registry(self) -> Registry: ...

    def wake(self) -> None:
        """Wake this process's reconciler after a change of the desired state."""


class Catalog:
    """What every page needs: the registry, the runtime when served by a runner, settings, templates."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        runtime: Runtime | None = None,
        serving_url: str | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.runtime = runtime
        self.serving_url = serving_url  # where predictions are served, for ``modelrunner ui``
        self.live = LiveStats()
        from modelrunner.security.auth import Authenticator

        self.auth = Authenticator(settings, registry)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        self.env.filters.update(when=_when, ago=_ago, number=_number)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking registry call off the event loop."""
        return await run_in_threadpool(fn, *args, **kwargs)

    def viewer(self, request: Request) -> access.Viewer:
        return access.viewer(request, self.auth, self.settings.resolved_actor())

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "") or PREFIX
        context.setdefault("viewer", self.viewer(request))
        html = self.env.get_template(template).render(
            base=base,
            nav=NAV,
            csrf=access.csrf_token(request),
            csrf_field=access.CSRF_FIELD,
            request=request,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        access.keep_csrf(request, response)
        return response

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        base = request.scope.get("root_path", "") or PREFIX
        return RedirectResponse(base + path, status_code=303)

    def page(self, handler: Handler, *, action: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: refuse visitors who may not read (or act), turn errors into an error page."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await answer(request)
            response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        async def answer(request: Request) -> Response:
            who = self.viewer(request)
            if not who.can_read:
                return self.render(
                    request,
                    "signin.html",
                    401,
                    next=request.url.path,
                    message="Sign in to use the catalog from another host.",
                )
            try:
                if action:
                    form = await request.form()
                    access.check_post(request, str(form.get(access.CSRF_FIELD) or ""))
                    if not who.can_act:
                        raise access.Forbidden("sign in with a token of the deployer role to change anything")
                return await handler(self, request, who)
            except access.Forbidden as exc:
                return self.render(request, "error.html", 403, title="Refused", message=str(exc))
            except ModelrunnerError as exc:
                status = HTTP_STATUS.get(exc.code, 500)
                return self.render(
                    request, "error.html", status, title=exc.code.replace("_", " "), message=exc.message
                )

        return endpoint


async def _signin_page(cat: Catalog, request: Request, who: access.Viewer) -> Response:
    return cat.render(request, "signin.html", next=request.query_params.get("next", ""), message="")


async def _signin(cat: Catalog, request: Request) -> Response:
    form = await request.form()
    try:
        access.check_post(request, str(form.get(access.CSRF_FIELD) or ""))
    except access.Forbidden as exc:
        return cat.render(request, "error.html", 403, title="Refused", message=str(exc))
    next_path = str(form.get("next") or "")
    base = request.scope.get("root_path", "") or PREFIX
    target = next_path if next_path.startswith(base + "/") else base + "/"
    response = RedirectResponse(target, status_code=303)
    try:
        access.sign_in(
            response,
            str(form.get("name") or ""),
            str(form.get("token") or ""),
            cat.auth,
            local=cat.viewer(request).local,
        )
    except Unauthenticated as exc:
        return cat.render(request, "signin.html", 401, next=next_path, message=exc.message)
    return response


async def _signout(cat: Catalog, request: Request, who: access.Viewer) -> Response:
    response = cat.redirect(request, "/")
    access.sign_out(response)
    return response


def _routes(cat: Catalog) -> list[Any]:
    from modelrunner.catalog import audit_pages, endpoint_pages, model_pages, pipeline_pages

    async def signin(request: Request) -> Response:
        if request.method == "POST":
            return await _signin(cat, request)
        return await _signin_page(cat, request, cat.viewer(request))

    routes: list[Any] = [
        Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signout", cat.page(_signout, action=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for module in (model_pages, endpoint_pages, audit_pages, pipeline_pages):
        for path, handler, methods in module.ROUTES:
            routes.append(Route(path, cat.page(handler, action="POST" in methods), methods=methods))
    return routes


def catalog_app(cat: Catalog) -> Starlette:
    """The catalog as an ASGI app (mount it at ``/ui``)."""
    return Starlette(routes=_routes(cat))


def standalone_app(registry: Registry, settings: Settings, serving_url: str) -> Starlette:
    """The catalog alone over ``registry`` (``modelrunner ui``): ``/ui`` plus ``/`` redirecting to it."""
    cat = Catalog(registry, settings, serving_url=serving_url)

    async def home(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    async def healthz(request: Request) -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/", home),
            Route(PREFIX, home),
            Route("/healthz", healthz),
            Mount(PREFIX, catalog_app(cat)),
        ]
    )
