"""Open Inference Protocol (KServe V2) REST: health, metadata, readiness and infer; the model is the endpoint.

JSON tensors and the binary tensor data extension (``v2.binary``) are both accepted, so tritonclient and
KServe clients work unchanged. Health, metadata and the version check are the data plane's (the same as
gRPC's). Errors answer ``{"error": "<message>"}`` (see ``server.http``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelrunner.runner.endpoint import Prediction
from modelrunner.server import request_meta
from modelrunner.server.dataplane import OFFLOAD_BYTES
from modelrunner.server.http import dumps, json_response, plane_of, read_body
from modelrunner.server.v2 import binary, codec
from modelrunner.server.wire import load_request_json

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

_NOT_READY = 400  # the spec: 200 means true, a 4xx means false
_READY_DOC: dict[int | str, dict[str, Any]] = {
    _NOT_READY: {
        "description": "not ready",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["ready"],
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                }
            }
        },
    }
}


EXTENSIONS = ("binary_tensor_data", "model_repository")
"""V2 extensions served over REST."""
VERSION_HINT = "use /v2/models/{name} for whichever version is serving"


@router.get("/health/live", summary="200 while the server is up")
async def live() -> Response:
    return json_response({"live": True})


@router.get(
    "/health/ready", summary="200 once every model has a loaded version, else 400", responses=_READY_DOC
)
async def ready(request: Request) -> Response:
    ok = plane_of(request).ready()
    return json_response({"ready": ok}, 200 if ok else _NOT_READY)


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> Response:
    return json_response(plane_of(request).server_metadata(EXTENSIONS))


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    hint = VERSION_HINT.format(name=name)
    return json_response(plane_of(request).model_metadata(name, version, hint=hint))


@router.get("/models/{name}", summary="Model metadata (inputs/outputs of the serving version)")
async def model_metadata(name: str, request: Request) -> Response:
    return await _metadata(request, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model metadata of one version")
async def model_version_metadata(name: str, version: str, request: Request) -> Response:
    return await _metadata(request, name, version)


def _ready(request: Request, name: str, version: str | None) -> Response:
    ok = plane_of(request).model_ready(name, version)
    return json_response({"name": name, "ready": ok}, 200 if ok else _NOT_READY)


@router.get(
    "/models/{name}/ready", summary="200 when the model has a version loaded, else 400", responses=_READY_DOC
)
async def model_ready(name: str, request: Request) -> Response:
    return _ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="200 when this version is serving, else 400",
    responses=_READY_DOC,
)
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    return _ready(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    plane = plane_of(request)
    endpoint = plane.endpoint(name, version, hint=VERSION_HINT.format(name=name))
    body = await read_body(request, plane.max_bytes)
    head, tail = binary.split(body, request.headers.get(binary.HEADER))
    large = len(body) > OFFLOAD_BYTES
    doc = await load_request_json(head, plane.max_rows, large)
    infer_request = codec.parse_request(doc, tail, plane.max_rows)
    sticky = (
        request_meta.lookup(infer_request.parameters, request.headers.get) if endpoint.sticky_key else None
    )
    pred = await plane.infer(
        endpoint,
        infer_request.decoder,
        "v2",
        offload=large,
        version=version,
        sticky=sticky,
        request_id=request.headers.get(request_meta.REQUEST_ID) or infer_request.id,
    )
    return _infer_response(name, infer_request, pred)


def _infer_response(name: str, req: codec.InferRequest, pred: Prediction) -> Response:
    outputs, blobs = codec.encode_outputs(pred.columns, req)
    out: dict[str, Any] = {"model_name": name, "model_version": str(pred.version), "outputs": outputs}
    out["id"] = req.id if req.id is not None else pred.request_id
    out["parameters"] = {
        "model": pred.model,
        "ref": pred.ref,
        "variant": pred.variant,
        "request_id": pred.request_id,
    }
    if not blobs:
        return json_response(out, headers=request_meta.headers_of(pred))
    head = dumps(out)
    return Response(
        head + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head)), **request_meta.headers_of(pred)},
    )


@router.post(
    "/models/{name}/feedback",
    summary="Ground truth for answered requests (by request id; the "
    "same body and answer as POST /v1/endpoints/{name}/feedback)",
)
async def feedback(name: str, request: Request) -> Response:
    from modelrunner.server.native.rest import feedback_answer

    return await feedback_answer(request, name)


async def infer(request: Request) -> Response:
    """``POST /v2/models/{name}[/versions/{version}]/infer`` (hot path: a plain Starlette route)."""
    params = request.path_params
    return await _infer(request, params["name"], params.get("version"))


router.add_route("/v2/models/{name}/infer", infer, methods=["POST"], include_in_schema=False)
router.add_route(
    "/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"], include_in_schema=False
)


def _infer_doc(summary: str, with_version: bool) -> dict[str, Any]:
    params = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if with_version:
        params.append({"name": "version", "in": "path", "required": True, "schema": {"type": "string"}})
    return {
        "post": {
            "tags": ["open inference protocol (v2)"],
            "summary": summary,
            "parameters": params,
            "operationId": "v2_infer_version" if with_version else "v2_infer",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["inputs"],
                            "properties": {
                                "id": {"type": "string"},
                                "parameters": {"type": "object"},
                                "inputs": {"type": "array", "items": {"type": "object"}},
                                "outputs": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    },
                    "application/octet-stream": {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "binary tensor data extension",
                        }
                    },
                },
            },
            "responses": {
                "200": {"description": "V2 response: model_name, model_version, id, outputs"},
                "default": {"description": '{"error": "<message>"}'},
            },
        }
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/v2/models/{name}/infer": _infer_doc("Infer with V2 tensors (JSON or binary extension)", False),
    "/v2/models/{name}/versions/{version}/infer": _infer_doc("Infer, only if this version is serving", True),
}
"""OpenAPI of the hot-path routes, which are plain Starlette routes (no per-request dependency solving)."""
