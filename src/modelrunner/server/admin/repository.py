"""The V2 model repository extension (Triton / MLServer model control) mapped onto endpoints and swaps.

* ``POST /v2/repository/index``: every endpoint of the desired state with this worker's state (``READY``,
  ``LOADING``, ``UNAVAILABLE`` + reason), then registry models no endpoint serves (``UNAVAILABLE``, "not
  loaded"); ``{"ready": true}`` keeps the ready ones.
* ``POST /v2/repository/models/{name}/load``: make endpoint ``name`` exist and serve, then wait until every
  live worker does (a swap with ``wait``). The target is ``parameters.target`` if given, else the endpoint's
  current target, else model ``name`` at its ``production`` alias if it has one, else its latest version.
  ``parameters.force`` forces an incompatible swap; ``parameters.timeout_s`` bounds the wait.
* ``POST /v2/repository/models/{name}/unload``: remove the endpoint from the desired state and wait until
  no live worker serves it.

Load and unload change what is served, so they need the admin token when one is set. Errors answer
``{"error": "<message>"}`` as every ``/v2`` route.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelrunner.errors import InvalidArgument, NotFound
from modelrunner.runner.waiting import ALIVE_WITHIN_S
from modelrunner.server.admin import rollout
from modelrunner.server.auth import actor_of, require_admin
from modelrunner.server.http import json_response, parse_json, read_body
from modelrunner.server.wire import redact

router = APIRouter(prefix="/v2/repository", tags=["open inference protocol (v2)"])

DEFAULT_TIMEOUT_S = 60.0


def _body_doc(properties: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI of an optional JSON object body (read by hand in :func:`_body`, so FastAPI cannot see it)."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "properties": properties}}},
        }
    }


_PARAMETERS = {
    "parameters": {
        "type": "object",
        "properties": {
            "target": {
                "type": "string",
                "description": "what to serve: 'digits@production', 'digits@2', 'digits'",
            },
            "force": {"type": "boolean"},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        },
    }
}
_STATES = {"serving": "READY", "loading": "LOADING", "failed": "UNAVAILABLE", "empty": "LOADING"}


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, request.app.state.settings.max_request_bytes)
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    return body


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidArgument("'parameters' must be a JSON object")
    return params


def _entry(name: str, endpoint: Any) -> dict[str, Any]:
    if endpoint is None:
        return {"name": name, "version": "", "state": "LOADING", "reason": "not loaded by this worker yet"}
    dep = endpoint.current
    state = "READY" if dep is not None else _STATES.get(endpoint.state, "UNAVAILABLE")
    # a READY endpoint with a reason still serves its old version: its last swap was refused
    return {
        "name": name,
        "version": str(dep.version) if dep else "",
        "state": state,
        "reason": redact(endpoint.error or ""),
    }


@router.post(
    "/index",
    summary="Endpoints (and loadable registry models) with their state",
    openapi_extra=_body_doc({"ready": {"type": "boolean", "description": "only the READY ones"}}),
)
async def index(request: Request) -> Response:
    body = await _body(request)
    runtime = request.app.state.runtime
    registry = runtime.registry
    states, models = await run_in_threadpool(lambda: (registry.endpoints(), registry.models()))
    entries = [_entry(s.name, runtime.endpoints.get(s.name)) for s in states]
    served = {s.name for s in states}
    loaded = runtime.endpoints  # and on-demand endpoints this worker loaded (runner/ondemand.py)
    entries += [
        _entry(m.name, loaded[m.name])
        if m.name in loaded
        else {
            "name": m.name,
            "version": str(m.latest_version or ""),
            "state": "UNAVAILABLE",
            "reason": "not loaded",
        }
        for m in models
        if m.name not in served
    ]
    listed = served | {m.name for m in models}
    entries += [_entry(name, ep) for name, ep in list(loaded.items()) if name not in listed]
    if body.get("ready"):
        entries = [e for e in entries if e["state"] == "READY"]
    return json_response(entries)


def _default_target(registry: Any, name: str, demand: Any = None) -> str:
    """The endpoint's target; else what a pattern endpoint maps ``name`` to (runner/ondemand.py); else model
    ``name``'s production alias, else its latest version."""
    try:
        return str(registry.endpoint(name).target)
    except NotFound:
        pass
    pattern_target = demand.config.target_for(name) if demand is not None else None
    if pattern_target:
        return str(pattern_target)
    try:
        info = registry.model(name)
    except NotFound:
        raise NotFound(
            f"no endpoint or model {name!r} to load; pass parameters.target (e.g. 'digits@production')"
        ) from None
    return f"{name}@production" if "production" in info.aliases else name


@router.post(
    "/models/{name}/load",
    dependencies=[Depends(require_admin)],
    openapi_extra=_body_doc(_PARAMETERS),
    summary="Serve endpoint `name` (created if needed) and wait until every worker does",
)
async def load(name: str, request: Request) -> Response:
    params = _parameters(await _body(request))
    registry = request.app.state.runtime.registry
    demand = getattr(request.app.state.runtime, "demand", None)
    target = params.get("target")
    if target is not None and not isinstance(target, str):
        raise InvalidArgument("parameters.target must be a string such as 'digits@production'")
    timeout_s = params.get("timeout_s", DEFAULT_TIMEOUT_S)
    if not isinstance(timeout_s, int | float) or isinstance(timeout_s, bool) or not 0 < timeout_s <= 3600:
        raise InvalidArgument("parameters.timeout_s must be a number of seconds in (0, 3600]")
    actor = actor_of(request)

    def write() -> Any:
        chosen = target or _default_target(registry, name, demand)
        return registry.set_endpoint(name, chosen, force=bool(params.get("force", False)), actor=actor)

    state = await run_in_threadpool(write)
    rollout.wake(request.app.state.runtime)
    result = await rollout.wait(request.app.state.runtime, state, timeout_s)
    if result.outcome != "switched":
        return json_response(
            {"error": redact(f"load of {name!r} ({state.target}): {result.message}")},
            rollout.STATUS.get(result.outcome, 500),
        )
    return json_response({"name": name, "target": state.target, "message": result.message})


@router.post(
    "/models/{name}/unload",
    dependencies=[Depends(require_admin)],
    openapi_extra=_body_doc({"parameters": {"type": "object"}}),
    summary="Stop serving endpoint `name` (removed from the desired state)",
)
async def unload(name: str, request: Request) -> Response:
    await _body(request)  # parameters (e.g. unload_dependents) are accepted and have no effect
    runtime = request.app.state.runtime
    registry = runtime.registry
    actor = actor_of(request)
    demand = getattr(runtime, "demand", None)
    if demand is not None and demand.owns(name) and name not in runtime.reconciler.desired:
        await demand.unload(name, DEFAULT_TIMEOUT_S)  # on demand, in this worker only: loaded again on use
        return json_response({"name": name})
    await run_in_threadpool(registry.delete_endpoint, name, actor)
    rollout.wake(request.app.state.runtime)
    if not await _wait_unloaded(registry, name, DEFAULT_TIMEOUT_S):
        return json_response(
            {
                "error": f"{name!r} was removed from the desired state but some worker still "
                f"serves it after {DEFAULT_TIMEOUT_S:g}s"
            },
            504,
        )
    return json_response({"name": name})


async def _wait_unloaded(registry: Any, name: str, timeout_s: float) -> bool:
    """Wait until no live worker reports endpoint ``name`` (each drops its row once it unloaded it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await run_in_threadpool(registry.workers, endpoint=name, alive_within_s=ALIVE_WITHIN_S)
        if not rows:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
