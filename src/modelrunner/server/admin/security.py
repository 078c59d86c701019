"""Admin routes for tokens and trust decisions (admin role), and federation's export/import
(``security/federation.py``). Roles are checked by ``server/auth.py`` (``required_role``) before any of these
runs; ``require_admin`` repeats it when an app is built without the gate."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from modelrunner.errors import InvalidArgument, ResourceExhausted
from modelrunner.registry import tokens
from modelrunner.security import federation, trust
from modelrunner.server.auth import actor_of, require_admin
from modelrunner.server.http import json_response

router = APIRouter(prefix="/admin", tags=["security"], dependencies=[Depends(require_admin)])


class TokenPost(BaseModel):
    name: str = Field(description="Unique name, recorded as the audit actor (token:NAME).")
    role: str = Field(description="viewer, predictor, deployer or admin.")
    expires: str | None = Field(default=None, description="Lifetime such as 30d, 12h; none: no expiry.")


def _registry(request: Request) -> Any:
    return request.app.state.runtime.registry


def _cache(registry: Any) -> Path:
    cache = Path(registry.settings.resolved_cache_dir())
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _token_out(info: tokens.TokenInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "role": info.role,
        "token_id": info.token_id,
        "created_at": info.created_at.isoformat(),
        "created_by": info.created_by,
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
    }


@router.get("/tokens", summary="Tokens (never their values)")
async def list_tokens(request: Request) -> Response:
    found = await run_in_threadpool(tokens.list_all, _registry(request))
    return json_response([_token_out(t) for t in found])


@router.post("/tokens", status_code=201, summary="Create a token; its value is in this answer only")
async def create_token(body: TokenPost, request: Request) -> Response:
    expires = tokens.parse_duration(body.expires) if body.expires else None
    info, value = await run_in_threadpool(
        lambda: tokens.create(
            _registry(request), body.name, body.role, expires_in=expires, actor=actor_of(request)
        )
    )
    return json_response({**_token_out(info), "token": value}, 201)


@router.delete("/tokens/{name}", status_code=204, summary="Revoke a token")
async def revoke_token(name: str, request: Request) -> Response:
    await run_in_threadpool(lambda: tokens.revoke(_registry(request), name, actor=actor_of(request)))
    return Response(status_code=204)


@router.get("/trust", summary="Trust decisions of pickle artifacts")
async def list_trust(request: Request) -> Response:
    rows = await run_in_threadpool(trust.decisions, _registry(request))
    return json_response([{**r, "trusted_at": r["trusted_at"].isoformat()} for r in rows])


@router.put("/trust/{ref}", summary="Trust a version's pickle artifact (runners may load it)")
async def put_trust(ref: str, request: Request) -> Response:
    row = await run_in_threadpool(lambda: trust.trust(_registry(request), ref, actor=actor_of(request)))
    return json_response({**row, "trusted_at": row["trusted_at"].isoformat()})


@router.get("/federation/export/{ref}", summary="A version's metadata for another registry (deployer role)")
async def export_meta(ref: str, request: Request) -> Response:
    mv = await run_in_threadpool(_registry(request).resolve, ref)
    return json_response(federation.export_meta(mv))


@router.get("/federation/export/{ref}/artifact", summary="A version's bundle archive (deployer role)")
async def export_artifact(ref: str, request: Request) -> Response:
    registry = _registry(request)
    mv = await run_in_threadpool(registry.resolve, ref)
    work = tempfile.mkdtemp(prefix="mr-export-", dir=_cache(registry))
    path = await run_in_threadpool(registry.store.get_to, mv.sha256, Path(work) / "bundle.tar.gz")
    return FileResponse(
        path,
        media_type="application/gzip",
        headers={federation.SHA_HEADER: mv.sha256},
        background=BackgroundTask(shutil.rmtree, work, True),
    )


@router.post("/federation/import", status_code=201, summary="Store a bundle sent by another registry (admin)")
async def import_bundle(request: Request) -> Response:
    registry = _registry(request)
    sha, name = request.headers.get(federation.SHA_HEADER), request.headers.get(federation.NAME_HEADER)
    if not sha or not name:
        raise InvalidArgument(f"headers {federation.SHA_HEADER} and {federation.NAME_HEADER} are required")
    limit = registry.settings.max_import_bytes
    work = Path(tempfile.mkdtemp(prefix="mr-import-", dir=_cache(registry)))
    try:
        size = 0
        with open(work / "bundle.tar.gz", "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ResourceExhausted(f"bundle over MODELRUNNER_MAX_IMPORT_BYTES ({limit} bytes)")
                out.write(chunk)
        origin = {
            "registry": request.headers.get(federation.REGISTRY_HEADER) or "unnamed",
            "ref": request.headers.get(federation.ORIGIN_HEADER),
            "sha256": sha,
        }
        mv = await run_in_threadpool(
            lambda: federation.store_import(
                registry,
                work / "bundle.tar.gz",
                expected_sha=sha,
                origin=origin,
                name=name,
                actor=actor_of(request),
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return json_response(federation.export_meta(mv), 201)
