"""Per-contract gRPC services: ``rpc Predict(Request) returns (Response)`` of every endpoint's ``.proto``.

One generic handler answers ``/modelrunner.<endpoint>.Model/Predict`` for whatever endpoints the runtime
serves at call time (endpoints come and go with the desired state). Requests and responses stay bytes on the
wire side; ``server.native.protobuf`` decodes them with the endpoint's current contract, so a stub compiled
from the served ``.proto`` works, and keeps working across compatible swaps. No protoc at run time.
"""

from __future__ import annotations

import functools

import grpc

from modelrunner.errors import NotFound
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import request_meta
from modelrunner.server.dataplane import DataPlane
from modelrunner.server.grpc.errors import guard
from modelrunner.server.native import protobuf

METHOD = "Predict"
_PREFIX = "modelrunner."


class ContractHandler(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc has no type stubs
    """Routes ``/<package>.Model/Predict`` to the endpoint whose package it is."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        path = str(handler_call_details.method)
        service, _, method = path.lstrip("/").rpartition("/")
        if (
            method != METHOD
            or not service.startswith(_PREFIX)
            or not service.endswith(f".{protobuf.SERVICE}")
        ):
            return None  # not ours: UNIMPLEMENTED, as for any unknown method
        return grpc.unary_unary_rpc_method_handler(functools.partial(self._predict, service))

    def _endpoint_of(self, service: str) -> Endpoint:
        endpoints = self.plane.endpoints
        for name, endpoint in list(endpoints.items()):
            if protobuf.service_of(name) == service:
                return endpoint
        known = ", ".join(sorted(protobuf.service_of(n) for n in endpoints)) or "none"
        raise NotFound(f"no endpoint serves gRPC service {service!r} (services: {known})")

    @guard
    async def _predict(
        self, service: str, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        endpoint = self._endpoint_of(service)
        metadata = dict(context.invocation_metadata() or ())
        data, pred = await protobuf.predict(
            self.plane,
            endpoint,
            request,
            "grpc",
            headers=metadata.get,
            request_id=metadata.get(request_meta.REQUEST_ID),
        )
        # trailing metadata rides with the status; initial metadata would cost its own write per call
        context.set_trailing_metadata(tuple(protobuf.answer_headers(endpoint, pred).items()))
        return data
