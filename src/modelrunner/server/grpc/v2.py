"""Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService``; the model is the endpoint.

Only converts (``grpc.codec``) and delegates to the same data plane as V2 REST (:class:`DataPlane`: health,
metadata, the version check and ``infer`` are written there once), so tritonclient.grpc and KServe's V2
clients work unchanged. Errors become gRPC statuses (``grpc.errors``).
"""

from __future__ import annotations

import asyncio
from typing import TypeAlias

import grpc

from modelrunner.server import request_meta
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane
from modelrunner.server.grpc import codec
from modelrunner.server.grpc.errors import guard, tolerant
from modelrunner.server.proto import grpc_predict_v2_pb2 as pb
from modelrunner.server.proto import grpc_predict_v2_pb2_grpc as pb_grpc

EXTENSIONS = ("model_repository",)
"""V2 extensions served over gRPC (the repository extension's control lives on REST, ``/v2/repository``)."""
VERSION_HINT = "leave model_version empty for whichever version is serving"

Context: TypeAlias = grpc.aio.ServicerContext  # generic in grpc; untyped here (grpc has no stubs)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The V2 gRPC service over one worker's :class:`DataPlane`."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    @guard
    async def ServerLive(
        self,
        request: pb.ServerLiveRequest,  # noqa: N802 - the rpc's name
        context: Context,
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.plane.live())

    @guard
    async def ServerReady(
        self,
        request: pb.ServerReadyRequest,  # noqa: N802
        context: Context,
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    @guard
    async def ServerMetadata(
        self,
        request: pb.ServerMetadataRequest,  # noqa: N802
        context: Context,
    ) -> pb.ServerMetadataResponse:
        meta = self.plane.server_metadata(EXTENSIONS)
        return pb.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta["extensions"]
        )

    @guard
    async def ModelReady(
        self,
        request: pb.ModelReadyRequest,  # noqa: N802
        context: Context,
    ) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.plane.model_ready(request.name, request.version))

    @guard
    async def ModelMetadata(
        self,
        request: pb.ModelMetadataRequest,  # noqa: N802
        context: Context,
    ) -> pb.ModelMetadataResponse:
        meta = self.plane.model_metadata(request.name, request.version, hint=VERSION_HINT)
        return codec.model_metadata(meta)

    @guard
    async def ModelInfer(
        self,
        request: pb.ModelInferRequest,  # noqa: N802
        context: Context,
    ) -> pb.ModelInferResponse:
        plane, version = self.plane, request.model_version
        endpoint = plane.endpoint(request.model_name, version, hint=VERSION_HINT)
        large = request.ByteSize() > OFFLOAD_BYTES  # computed in C: cheap next to decoding
        if large:  # reading millions of values out of the message takes a while: not on the event loop
            infer_request = await asyncio.to_thread(codec.infer_request, request, plane.max_rows)
        else:
            infer_request = codec.infer_request(request, plane.max_rows)
        metadata = dict(context.invocation_metadata() or ())
        sticky = request_meta.lookup(infer_request.parameters, metadata.get) if endpoint.sticky_key else None
        pred = await plane.infer(
            endpoint,
            infer_request.decoder,
            "v2-grpc",
            offload=large,
            version=version,
            sticky=sticky,
            request_id=metadata.get(request_meta.REQUEST_ID) or infer_request.id,
        )
        context.set_trailing_metadata(tuple(request_meta.headers_of(pred).items()))
        return codec.infer_response(request.model_name, infer_request, pred)


def add_to_server(servicer: InferenceServicer, server: grpc.aio.Server) -> None:
    """As the generated ``add_GRPCInferenceServiceServicer_to_server``, but bytes that do not parse reach the
    handler as ``Malformed`` (INVALID_ARGUMENT naming the message) instead of grpc's own UNKNOWN."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=tolerant(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
