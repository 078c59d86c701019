"""Native REST: predict with rows (``instances``) or columns (``inputs``), and the endpoint's contract.

Only converts and delegates: JSON -> columns (``contract.codecs``) -> :meth:`DataPlane.infer` -> JSON.
Validation happens against the contract of the version that answers (``Endpoint.predict``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import PlainTextResponse, Response

from modelrunner.contract import Contract
from modelrunner.contract.codecs import (
    decode_json_request,
    encode_json_response,
    rows_to_columns,
    select_outputs,
    wanted_outputs,
)
from modelrunner.contract.tabular import csv_rows
from modelrunner.errors import UnsupportedMediaType
from modelrunner.pipelines.executor import collect_trace
from modelrunner.runner.endpoint import Prediction
from modelrunner.server import request_meta
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane, Decoder
from modelrunner.server.http import JSON, dumps, json_response, plane_of, read_body
from modelrunner.server.native import multipart, protobuf
from modelrunner.server.wire import load_request_json, media, request_style, version_headers

router = APIRouter(prefix="/v1", tags=["predict"])

PREDICT_REQUEST: dict[str, Any] = {
    "description": "Rows (`instances`: one object or bare value per row) or columns (`inputs`: one array per "
    "input); `outputs` (a list of output names) answers only those. The fields are the endpoint's: "
    "`GET /v1/endpoints/{name}/contract` answers its "
    "JSON Schema (`json_schema.request`, `json_schema.response`).",
    "anyOf": [
        {
            "type": "object",
            "required": ["instances"],
            "properties": {"instances": {"type": "array", "items": {}}},
        },
        {
            "type": "object",
            "required": ["inputs"],
            "properties": {"inputs": {"type": "object", "additionalProperties": {"type": "array"}}},
        },
        {
            "type": "object",
            "required": ["dataframe_split"],
            "description": "MLflow: pandas orient=split",
            "properties": {"dataframe_split": {"type": "object", "required": ["columns", "data"]}},
        },
        {
            "type": "object",
            "required": ["dataframe_records"],
            "description": "MLflow: pandas orient=records",
            "properties": {"dataframe_records": {"type": "array", "items": {"type": "object"}}},
        },
    ],
}
"""Any endpoint's predict body; each endpoint's own schema is served with its contract (contract/schema)."""
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/endpoints/{name}/predict": {
        "post": {
            "tags": ["predict"],
            "summary": "Predict with rows (instances) or columns (inputs)",
            "operationId": "predict",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "trace",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean"},
                    "description": "add the per-step latency of a pipeline (`trace`)",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": PREDICT_REQUEST},
                    "text/csv": {
                        "schema": {
                            "type": "string",
                            "description": "a header row naming the inputs, then one line "
                            "per row; the answer is `predictions`",
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "description": "One row: a part per input (a file for a bytes input, "
                            "text for a string, JSON otherwise); the answer is the row.",
                        }
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "`{endpoint, model, version, predictions}` (rows), `{..., outputs}` "
                    "(columns), or the row's outputs (a form)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {"description": "malformed JSON"},
                "404": {"description": "unknown endpoint"},
                "413": {"description": "body over max_request_bytes, or more rows than max_request_rows"},
                "415": {"description": "a body that is not JSON, CSV, protobuf or a form (e.g. text/plain)"},
                "422": {"description": "input does not fit the contract (names the field)"},
                "503": {"description": "nothing loaded yet"},
            },
        }
    },
}
"""OpenAPI of the hot-path routes, which are plain Starlette routes (no per-request dependency solving)."""


# versions fit the registry's integer columns (32-bit on PostgreSQL); a larger one was a 500 (overflow)
VERSION = Query(None, ge=1, le=2**31 - 1, description="contract version N")
MODEL_VERSION = Query(None, ge=1, le=2**31 - 1, description="the contract of model version N")


ACCEPTED = "application/json, text/csv (with a header row), application/x-protobuf or multipart/form-data"
"""What the predict route reads, for the 415 that answers any other body."""


def _is_json(raw: bytes) -> bool:
    """A JSON object/array body, whatever its content-type says (``curl -d`` labels it a urlencoded form)."""
    return raw.lstrip()[:1] in (b"{", b"[")


def _check_media(content_type: str | None, raw: bytes) -> None:
    """A body labelled as something we do not read (``text/csv``) is a 415 naming what we do read, rather
    than "malformed JSON"; an unlabelled body, a ``...json`` type, or a body that is JSON anyway is read."""
    kind = media(content_type)
    if kind and kind != "application/json" and not kind.endswith(("+json", "/json")) and not _is_json(raw):
        raise UnsupportedMediaType(f"unsupported media type {kind}; send {ACCEPTED}", media_type=kind)


async def _decoder(
    request: Request, plane: DataPlane, raw: bytes, wanted: list[tuple[str, ...] | None]
) -> tuple[Decoder, str, bool, Any]:
    """How to turn this request into columns, the response style (``instances``/``inputs``/``form``),
    whether to decode it in a thread (a large body), and the parsed JSON body (None for forms and CSV).
    A JSON body's ``outputs`` (the outputs asked for) are checked when it is decoded, into ``wanted``."""
    limit, max_rows = plane.max_bytes, plane.max_rows
    if multipart.is_form(request.headers) and not _is_json(raw):
        form = await multipart.parse_form(request.headers, raw, limit)
        return (lambda c: multipart.form_columns(form, c.inputs)), "form", False, None
    large = len(raw) > OFFLOAD_BYTES
    if media(request.headers.get("content-type")) == "text/csv" and not _is_json(raw):
        return (
            (lambda c: rows_to_columns(csv_rows(raw, c.inputs, max_rows), c.inputs)),
            "instances",
            large,
            None,
        )
    _check_media(request.headers.get("content-type"), raw)
    body = await load_request_json(raw, max_rows, large)

    def decode(contract: Contract) -> Any:
        wanted[0] = wanted_outputs(body, contract.outputs)
        return decode_json_request(body, contract.inputs, max_rows=max_rows)[0]

    return decode, request_style(body), large, body


async def predict(request: Request) -> Response:
    """``POST /v1/endpoints/{name}/predict`` (hot path: a plain Starlette route).

    JSON rows/columns, or a ``multipart/form-data`` form (one field per input, one row: the answer is that
    row's outputs at the top level). ``?trace=1`` adds the per-step latency of a pipeline.
    """
    name: str = request.path_params["name"]
    plane = plane_of(request)
    endpoint = plane.endpoint(name)
    raw = await read_body(request, plane.max_bytes)
    if protobuf.handles(request.headers):  # an application/x-protobuf body or Accept: native/protobuf.py
        return await protobuf.http_predict(plane, endpoint, raw, request.headers)
    wanted: list[tuple[str, ...] | None] = [None]
    decode, style, large, body = await _decoder(request, plane, raw, wanted)
    traced = request.query_params.get("trace", "").lower() in ("1", "true", "yes")
    sticky = request_meta.lookup(body, request.headers.get) if endpoint.sticky_key else None
    with collect_trace() as trace:  # a traced request is not merged into a batch: its steps are its own
        pred = await plane.infer(
            endpoint,
            decode,
            "rest",
            alone=traced,
            offload=large,
            sticky=sticky,
            request_id=request.headers.get(request_meta.REQUEST_ID),
        )
    meta: dict[str, Any] = {
        "endpoint": name,
        "model": pred.model,
        "version": pred.version,
        **request_meta.body_fields(pred),
    }
    if large:  # the answer to a large request is large too: encoded in a thread, as it was decoded
        payload = await asyncio.to_thread(_answer, meta, pred, style, trace if traced else None, wanted[0])
    else:
        payload = _answer(meta, pred, style, trace if traced else None, wanted[0])
    return Response(payload, media_type=JSON, headers=version_headers(pred))


def _answer(
    meta: dict[str, Any], pred: Prediction, style: str, trace: Any, wanted: tuple[str, ...] | None = None
) -> bytes:
    """The JSON answer: the request's form (rows, columns, or one form row) with the version and trace;
    only the ``wanted`` outputs (all for None)."""
    columns = select_outputs(pred.columns, wanted)
    if style == "form":
        row = encode_json_response(columns, "instances")["predictions"][0]
        out = {**row, **{k: v for k, v in meta.items() if k not in row}}
    else:
        out = {**meta, **encode_json_response(columns, style)}
    if trace is not None:
        out["trace"] = trace
    return dumps(out)


router.add_route("/v1/endpoints/{name}/predict", predict, methods=["POST"], include_in_schema=False)


async def feedback_answer(request: Request, name: str) -> Response:
    """Ground truth for answered requests (``{"request_id", "target"}``, ``{"items": [...]}`` or a list),
    joined to the prediction log: ``{joined, duplicates}``; unknown request ids: 404 naming them."""
    from modelrunner.runner import feedback
    from modelrunner.server.wire import parse_json

    plane = plane_of(request)
    items = feedback.parse(parse_json(await read_body(request, plane.max_bytes)))
    result = await feedback.join(plane.runtime, name, items)
    return json_response({"joined": result.joined, "duplicates": result.duplicates})


@router.post(
    "/endpoints/{name}/feedback",
    summary="Ground truth for answered requests, joined to the "
    "prediction log by request id (see docs/experiments.md)",
    responses={
        404: {"description": "unknown endpoint, or request ids never logged (named)"},
        422: {"description": "a malformed item (the field is named)"},
    },
)
async def post_feedback(name: str, request: Request) -> Response:
    return await feedback_answer(request, name)


@router.get("/endpoints", summary="Endpoints served by this worker")
async def list_endpoints(request: Request) -> Response:
    return json_response({"endpoints": plane_of(request).summaries()})


@router.get(
    "/endpoints/{name}/contract",
    summary="The endpoint's contract and its JSON Schema "
    "(?version=N: contract version N; ?model_version=N: that model version's)",
)
async def get_contract(
    name: str, request: Request, version: int | None = VERSION, model_version: int | None = MODEL_VERSION
) -> Response:
    from modelrunner.contract.schema import json_schema

    plane = plane_of(request)
    endpoint = plane.endpoint(name)
    contract = await protobuf.contract_of(
        endpoint, plane.registry, version=version, model_version=model_version
    )
    dep = endpoint.current
    assert dep is not None  # contract_of raised Unavailable otherwise
    return json_response(
        {
            "endpoint": name,
            "model": dep.model,
            "version": dep.version,
            "contract_version": contract.version,
            "contract": contract.to_dict(),
            "json_schema": json_schema(contract),
        }
    )


@router.get(
    "/endpoints/{name}/contract.proto",
    summary="The endpoint's contract as a .proto file "
    "(?version=N: contract version N; ?model_version=N: that model version's)",
    response_class=PlainTextResponse,
)
async def get_proto(
    name: str, request: Request, version: int | None = VERSION, model_version: int | None = MODEL_VERSION
) -> Response:
    plane = plane_of(request)
    return await protobuf.proto_response(plane.endpoint(name), plane.registry, version, model_version)
