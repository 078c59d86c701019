"""Management API under ``/admin``: endpoints' desired state, swaps and rollbacks, workers, models, audit.

Handlers convert and delegate to the registry (blocking SQLAlchemy calls, run in a thread) and to
``runner.waiting.wait_for_rollout``. Guarded by :func:`modelrunner.server.auth.require_admin`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelrunner.pipelines.targets import resolve_target
from modelrunner.runner.config import check_config, set_endpoint_config
from modelrunner.server.admin import rollout
from modelrunner.server.admin.schemas import (
    AliasOut,
    AliasPut,
    AuditOut,
    EndpointConfigPatch,
    EndpointOut,
    EndpointPut,
    ModelOut,
    ModelSummaryOut,
    RollbackPost,
    RolloutOut,
    VersionOut,
    WorkerOut,
)
from modelrunner.server.auth import actor_of, require_admin
from modelrunner.server.http import json_response

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

T = TypeVar("T")
ACTOR_HEADER = "x-modelrunner-actor"
CREATE_HELP = "false: only change an existing endpoint (404 naming the known ones), never create one."
ALIVE_S = 10.0
"""Worker rows older than this (no heartbeat) are left out of endpoint views by default."""
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
"""Models per page of ``GET /admin/models`` by default and at most."""
MAX_OFFSET = 2**53
"""SQL drivers take 64-bit integers: a larger ``offset`` is a 422 here, not a driver error (it was a 500)."""
MAX_ALIVE_S = 366 * 86_400.0
"""Longest ``alive_within_s`` (a year): beyond, the cutoff is before any datetime (it was a 500)."""


def _registry(request: Request) -> Any:
    return request.app.state.runtime.registry


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking registry call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def _actor(request: Request) -> str | None:
    """Who is acting: the client's ``X-Modelrunner-Actor`` header, else the registry's default."""
    return actor_of(request)


def _out(model: type[Any], obj: Any) -> Response:
    return json_response(model.model_validate(obj).model_dump(mode="json"))


def _endpoint_out(state: Any, workers: list[Any]) -> EndpointOut:
    data = dataclasses.asdict(state)
    data["workers"] = [WorkerOut.model_validate(w) for w in workers if w.endpoint == state.name]
    return EndpointOut.model_validate(data)


def _version_out(mv: Any) -> VersionOut:
    data = {f.name: getattr(mv, f.name) for f in dataclasses.fields(mv) if f.name != "manifest"}
    data["contract"] = mv.contract.to_dict()
    data["aliases"] = list(mv.aliases)
    return VersionOut.model_validate(data)


# -- endpoints ---------------------------------------------------------------------------------------------


@router.get("/endpoints", response_model=list[EndpointOut], summary="Desired state and per-worker state")
async def list_endpoints(
    request: Request, alive_within_s: float | None = Query(ALIVE_S, gt=0, le=MAX_ALIVE_S)
) -> Response:
    reg = _registry(request)
    states, workers = await _call(lambda: (reg.endpoints(), reg.workers(alive_within_s=alive_within_s)))
    return json_response([_endpoint_out(s, workers).model_dump(mode="json") for s in states])


@router.get("/endpoints/{name}", response_model=EndpointOut, summary="One endpoint")
async def get_endpoint(
    name: str, request: Request, alive_within_s: float | None = Query(ALIVE_S, gt=0, le=MAX_ALIVE_S)
) -> Response:
    reg = _registry(request)
    state, workers = await _call(
        lambda: (reg.endpoint(name), reg.workers(endpoint=name, alive_within_s=alive_within_s))
    )
    return json_response(_endpoint_out(state, workers).model_dump(mode="json"))


ROLLOUT_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": RolloutOut, "description": "a worker refused the swap (or the target is refused)"},
    504: {"model": RolloutOut, "description": "not every worker answered in timeout_s"},
}


@router.put(
    "/endpoints/{name}",
    response_model=RolloutOut,
    summary="Set what an endpoint serves (swap)",
    responses={
        **ROLLOUT_ERRORS,
        404: {"description": "unknown target; or unknown endpoint with create=false"},
    },
)
async def put_endpoint(
    name: str, body: EndpointPut, request: Request, create: bool = Query(True, description=CREATE_HELP)
) -> Response:
    reg = _registry(request)
    if body.config is not None:
        check_config(body.config)  # a bad option is a 400 naming it, before anything is written
    await _call(resolve_target, reg, body.target)  # any kind, a pipeline's steps too: 404/400/409 naming it
    state = await _call(
        reg.set_endpoint,
        name,
        body.target,
        config=body.config,
        force=body.force,
        actor=_actor(request),
        create=create,
    )
    return await _rollout_response(request, state, body.wait, body.timeout_s)


@router.patch(
    "/endpoints/{name}/config",
    response_model=EndpointOut,
    summary="Change an endpoint's options (batching, limits) in place; the model is not reloaded",
)
async def patch_config(name: str, body: EndpointConfigPatch, request: Request) -> Response:
    reg = _registry(request)
    changes = body.model_dump(exclude_unset=True)
    state = await _call(set_endpoint_config, reg, name, changes, _actor(request))
    rollout.wake(request.app.state.runtime)
    workers = await _call(reg.workers, endpoint=name, alive_within_s=ALIVE_S)
    return json_response(_endpoint_out(state, workers).model_dump(mode="json"))


@router.post(
    "/endpoints/{name}/rollback",
    response_model=RolloutOut,
    responses=ROLLOUT_ERRORS,
    summary="Serve the previous target again (same wait semantics as PUT)",
)
async def rollback(name: str, request: Request, body: RollbackPost | None = None) -> Response:
    body = body or RollbackPost.model_validate({})
    state = await _call(_registry(request).rollback_endpoint, name, actor=_actor(request))
    return await _rollout_response(request, state, body.wait, body.timeout_s)


@router.delete("/endpoints/{name}", status_code=204, summary="Stop serving an endpoint")
async def delete_endpoint(name: str, request: Request) -> Response:
    reg = _registry(request)
    await _call(reg.delete_endpoint, name, actor=_actor(request))
    rollout.wake(request.app.state.runtime)
    return Response(status_code=204)


async def _rollout_response(request: Request, state: Any, wait: bool, timeout_s: float) -> Response:
    """The desired state just written and, with ``wait``, every live worker's answer (200/409/504)."""
    runtime = request.app.state.runtime
    rollout.wake(runtime)
    result = await rollout.wait(runtime, state, timeout_s) if wait else None
    reg = _registry(request)
    workers = await _call(reg.workers, endpoint=state.name, alive_within_s=ALIVE_S)
    endpoint = _endpoint_out(state, workers)
    if result is None:
        out = RolloutOut(
            endpoint=endpoint,
            waited=False,
            outcome="pending",
            message=f"desired state written (generation {state.generation})",
        )
        return json_response(out.model_dump(mode="json"))
    out = RolloutOut.model_validate(
        {
            "endpoint": endpoint,
            "waited": True,
            "outcome": result.outcome,
            "message": result.message,
            "workers": result.workers,
        }
    )
    return json_response(out.model_dump(mode="json"), rollout.STATUS[result.outcome])


# -- workers, models, audit --------------------------------------------------------------------------------


@router.get("/workers", response_model=list[WorkerOut], summary="Worker status rows")
async def list_workers(
    request: Request,
    endpoint: str | None = None,
    alive_within_s: float | None = Query(None, gt=0, le=MAX_ALIVE_S),
) -> Response:
    reg = _registry(request)
    rows = await _call(reg.workers, endpoint=endpoint, alive_within_s=alive_within_s)
    return json_response([WorkerOut.model_validate(w).model_dump(mode="json") for w in rows])


@router.get(
    "/models",
    response_model=list[ModelSummaryOut],
    summary="One page of the registry's models, by name (X-Total-Count, Link rel=next)",
)
async def list_models(
    request: Request,
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    reg = _registry(request)
    rows, total = await _call(lambda: (reg.models(limit=limit, offset=offset), reg.model_count()))
    response = json_response([ModelSummaryOut.model_validate(m).model_dump(mode="json") for m in rows])
    response.headers["X-Total-Count"] = str(total)
    if offset + len(rows) < total:
        url = request.url.include_query_params(limit=limit, offset=offset + len(rows))
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


@router.get("/models/{name}", response_model=ModelOut, summary="A model with its versions and aliases")
async def get_model(name: str, request: Request) -> Response:
    info = await _call(_registry(request).model, name)
    data = {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name != "versions"}
    data["versions"] = [_version_out(v) for v in info.versions]
    return json_response(ModelOut.model_validate(data).model_dump(mode="json"))


@router.put(
    "/models/{name}/aliases/{alias}",
    response_model=AliasOut,
    summary="Point an alias at a version",
    responses={409: {"description": "a saved gate of the model fails (send force to override)"}},
)
async def put_alias(name: str, alias: str, body: AliasPut, request: Request) -> Response:
    reg = _registry(request)
    mv = await _call(reg.set_alias, name, alias, body.version, actor=_actor(request), force=body.force)
    rollout.wake(request.app.state.runtime)
    return json_response(AliasOut(model=name, alias=alias, version=mv.version).model_dump())


@router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
async def delete_alias(name: str, alias: str, request: Request) -> Response:
    await _call(_registry(request).delete_alias, name, alias, actor=_actor(request))
    rollout.wake(request.app.state.runtime)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut], summary="The audit log, newest first")
async def audit(
    request: Request, limit: int = Query(100, ge=1, le=10_000), subject: str | None = None
) -> Response:
    rows = await _call(_registry(request).audit, limit=limit, subject=subject)
    return json_response([AuditOut.model_validate(a).model_dump(mode="json") for a in rows])
