"""Audit: who did what, when, filtered by model, endpoint, action and actor (``Registry.audit``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelrunner.catalog.access import Viewer

if TYPE_CHECKING:
    from modelrunner.catalog.web import Catalog

LIMITS = (100, 500, 2000)


def change(before: Any, after: Any) -> str:
    from modelrunner.registry.changes import change_text

    return change_text(before, after, limit=140)


async def audit_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    params = request.query_params
    model, endpoint = params.get("model", "").strip(), params.get("endpoint", "").strip()
    action, actor = params.get("action", "").strip(), params.get("actor", "").strip()
    try:
        limit = int(params.get("limit", LIMITS[0]))
    except ValueError:
        limit = LIMITS[0]
    limit = min(max(limit, 1), LIMITS[-1])
    subject = f"endpoint:{endpoint}" if endpoint else (model or None)
    entries = await cat.call(
        cat.registry.audit, limit=limit, subject=subject, action=action or None, actor=actor or None
    )
    if model and endpoint:  # both: the endpoint's entries that mention the model
        entries = [e for e in entries if model in f"{e.before} {e.after}"]
    rows = [(e, change(e.before, e.after)) for e in entries]
    return cat.render(
        request,
        "audit.html",
        active="audit",
        rows=rows,
        limit=limit,
        limits=LIMITS,
        filters={"model": model, "endpoint": endpoint, "action": action, "actor": actor},
    )


ROUTES = [("/audit", audit_page, ["GET"])]
