"""Endpoints: desired state, the version every worker serves, live figures, swap and rollback forms.

Actions write the desired state with the registry's ``set_endpoint`` / ``rollback_endpoint`` (audited with
the visitor as actor, like the admin API), wake this server's reconciler and wait with
``runner.waiting.wait_for_rollout`` until every live worker serves it or one refuses (the reason shown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelrunner.catalog.access import Viewer
from modelrunner.catalog.live import figures
from modelrunner.errors import InvalidArgument, ModelrunnerError

if TYPE_CHECKING:
    from modelrunner.catalog.web import Catalog
    from modelrunner.registry.registry import Registry

ALIVE_S = 10.0  # worker rows older than this are not shown (as the admin API)
LIVE_WAIT_S = 3.0  # a worker that has not reported for this long does not hold a rollout up
WAIT_S = 30.0
POLL_S = 2


def _state(registry: Registry) -> dict[str, Any]:
    endpoints = registry.endpoints()
    workers = registry.workers(alive_within_s=ALIVE_S)
    by_endpoint: dict[str, list[Any]] = {}
    for w in workers:
        by_endpoint.setdefault(w.endpoint, []).append(w)
    return {"endpoints": endpoints, "workers": by_endpoint}


def _live(cat: Catalog, names: list[str]) -> dict[str, Any]:
    if cat.runtime is None:  # ``modelrunner ui``: no server metrics in this process
        return {}
    new, old = cat.live.read()
    return {n: figures(new, old, n) for n in names}


def _choices(registry: Registry, endpoints: list[Any]) -> dict[str, list[str]]:
    """Targets offered per endpoint: every version and alias of the model it serves."""
    out: dict[str, list[str]] = {}
    for e in endpoints:
        kind, _, ref = e.target.rpartition(":")
        name = ref.split("@")[0]
        try:
            info = registry.model(name)
        except ModelrunnerError:
            continue
        prefix = f"{kind}:" if kind else ""
        out[e.name] = [f"{prefix}{name}@{a}" for a in sorted(info.aliases)] + [
            f"{prefix}{name}@{v.version}" for v in reversed(info.versions)
        ]
    return out


async def endpoints_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    data = await cat.call(_state, cat.registry)
    names = [e.name for e in data["endpoints"]]
    live = await cat.call(_live, cat, names)
    choices = await cat.call(_choices, cat.registry, data["endpoints"])
    return cat.render(
        request,
        "endpoints.html",
        active="endpoints",
        live=live,
        choices=choices,
        poll_s=POLL_S,
        served=cat.runtime is not None,
        **data,
    )


async def endpoints_fragment(cat: Catalog, request: Request, who: Viewer) -> Response:
    """The status table alone, polled by htmx every ``POLL_S`` seconds."""
    data = await cat.call(_state, cat.registry)
    live = await cat.call(_live, cat, [e.name for e in data["endpoints"]])
    return cat.render(request, "endpoints_status.html", live=live, served=cat.runtime is not None, **data)


def _contract_notes(registry: Registry, name: str, target: str) -> list[str]:
    """What the runner's contract check will say about serving ``target`` instead of what serves now."""
    from modelrunner.contract.compat import check_compatible
    from modelrunner.pipelines.targets import resolve_target

    new = resolve_target(registry, target)
    serving = {
        (w.model, w.version)
        for w in registry.workers(endpoint=name, alive_within_s=ALIVE_S)
        if w.model and w.version is not None
    }
    notes = []
    for model, version in sorted(serving):
        old = resolve_target(registry, f"{model}@{version}")
        reasons = check_compatible(old.contract, new.contract)
        verdict = "breaks clients: " + "; ".join(reasons) if reasons else "compatible"
        notes.append(f"{model}@{version} -> {new.ref}: {verdict}")
    return notes


async def _finish(cat: Catalog, request: Request, state: Any, title: str) -> Response:
    """Wake this server's reconciler, wait for the live workers, render what they did."""
    from modelrunner.runner.waiting import wait_for_rollout

    wake = getattr(cat.runtime, "wake", None)
    if wake is not None:
        wake()
    live = await cat.call(cat.registry.workers, alive_within_s=LIVE_WAIT_S)
    if not live:
        return cat.render(
            request,
            "result.html",
            active="endpoints",
            title=title,
            outcome="pending",
            message=f"desired state written (generation {state.generation}); no live worker "
            "serves this registry now: runners pick it up when they start",
            back="/endpoints",
            workers=[],
        )
    result = await wait_for_rollout(cat.registry, state, timeout_s=WAIT_S, alive_within_s=LIVE_WAIT_S)
    status = {"switched": 200, "refused": 409, "timeout": 504}.get(result.outcome, 200)
    return cat.render(
        request,
        "result.html",
        status,
        active="endpoints",
        title=title,
        outcome=result.outcome,
        message=result.message,
        back="/endpoints",
        workers=result.workers,
    )


async def swap_action(cat: Catalog, request: Request, who: Viewer) -> Response:
    name = request.path_params["name"]
    form = await request.form()
    target = str(form.get("target") or "").strip()
    if not target:
        raise InvalidArgument("choose what the endpoint should serve (a version or an alias)")
    if form.get("confirm") != "yes":
        notes = await cat.call(_contract_notes, cat.registry, name, target)
        action = {
            "url": f"/endpoints/{name}/swap",
            "fields": {"target": target},
            "title": f"Swap endpoint {name} to {target}?",
            "back": "/endpoints",
        }
        return cat.render(request, "confirm.html", active="endpoints", action=action, notes=notes)
    state = await cat.call(lambda: cat.registry.set_endpoint(name, target, actor=who.actor))
    return await _finish(cat, request, state, f"Swap {name} to {target}")


async def rollback_action(cat: Catalog, request: Request, who: Viewer) -> Response:
    name = request.path_params["name"]
    form = await request.form()
    if form.get("confirm") != "yes":
        current = await cat.call(cat.registry.endpoint, name)
        if not current.previous_target:
            raise InvalidArgument(f"endpoint {name!r} has no previous target to roll back to")
        action = {
            "url": f"/endpoints/{name}/rollback",
            "fields": {},
            "title": f"Roll endpoint {name} back from {current.target} to {current.previous_target}?",
            "back": "/endpoints",
        }
        return cat.render(request, "confirm.html", active="endpoints", action=action, notes=[])
    state = await cat.call(lambda: cat.registry.rollback_endpoint(name, actor=who.actor))
    return await _finish(cat, request, state, f"Roll back {name} to {state.target}")


def _options(form: Any) -> dict[str, Any]:
    """The batching options of the form (an empty field keeps its value); InvalidArgument naming a bad one."""
    changes: dict[str, Any] = {}
    for key, kind in (("max_batch_size", int), ("max_latency_ms", float)):
        text = str(form.get(key) or "").strip()
        if not text:
            continue
        try:
            changes[key] = kind(text)
        except ValueError as exc:
            what = "a whole number" if kind is int else "a number"
            raise InvalidArgument(f"{key} must be {what}, got {text!r}") from exc
    if not changes:
        raise InvalidArgument("give max_batch_size and/or max_latency_ms")
    return changes


async def config_action(cat: Catalog, request: Request, who: Viewer) -> Response:
    """Change batching options in place (no reload), with ``runner.config.set_endpoint_config`` as
    ``PATCH /admin/endpoints/NAME/config`` does."""
    from modelrunner.runner.config import set_endpoint_config

    name = request.path_params["name"]
    form = await request.form()
    changes = _options(form)
    if form.get("confirm") != "yes":
        text = ", ".join(f"{k} = {v}" for k, v in changes.items())
        action = {
            "url": f"/endpoints/{name}/config",
            "fields": {k: str(v) for k, v in changes.items()},
            "title": f"Set {text} on endpoint {name}?",
            "back": "/endpoints",
        }
        return cat.render(
            request,
            "confirm.html",
            active="endpoints",
            action=action,
            notes=["the model is not reloaded: workers apply the options in place"],
        )
    state = await cat.call(set_endpoint_config, cat.registry, name, changes, who.actor)
    wake = getattr(cat.runtime, "wake", None)
    if wake is not None:
        wake()
    return cat.render(
        request,
        "result.html",
        active="endpoints",
        title=f"Options of {name}",
        outcome="switched",
        message=f"{name}: {state.config} (audited as {who.actor})",
        back="/endpoints",
        workers=[],
    )


ROUTES = [
    ("/endpoints", endpoints_page, ["GET"]),
    ("/endpoints/status", endpoints_fragment, ["GET"]),
    ("/endpoints/{name}/swap", swap_action, ["POST"]),
    ("/endpoints/{name}/rollback", rollback_action, ["POST"]),
    ("/endpoints/{name}/config", config_action, ["POST"]),
]
