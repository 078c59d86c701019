"""Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService``; the model is the endpoint.

Only converts (``grpc_codec``) and delegates to the same data plane as V2 REST (``dataplane.infer``), so
tritonclient.grpc and KServe's V2 clients work unchanged. Errors become gRPC statuses (``grpc_errors``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from modelrunner.errors import NotFound, Unavailable
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import dataplane, grpc_codec, request_meta
from modelrunner.server.grpc_errors import guard, tolerant
from modelrunner.server.proto import grpc_predict_v2_pb2 as pb
from modelrunner.server.proto import grpc_predict_v2_pb2_grpc as pb_grpc

EXTENSIONS = ("model_repository",)
"""V2 extensions served over gRPC (the repository extension's control lives on REST, ``/v2/repository``)."""


def _endpoint(runtime: dataplane.RuntimeLike, name: str, version: str) -> Endpoint:
    """The endpoint ``name``; with a ``version``, only while that version is the one serving."""
    endpoint = runtime.get(name)
    if version:
        dep = endpoint.current
        if dep is None:
            raise Unavailable(f"model {name!r} has no version loaded yet")
        if str(dep.version) != version:
            raise NotFound(f"model {name!r} serves version {dep.version}, not {version!r} "
                           "(leave model_version empty for whichever version is serving)")
    return endpoint


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The V2 gRPC service over one runtime (one per worker process); ``max_rows`` as the setting."""

    def __init__(self, runtime: dataplane.RuntimeLike, max_rows: int | None = None) -> None:
        self.runtime = runtime
        self.max_rows = max_rows

    @guard
    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 - the rpc's name
        return pb.ServerLiveResponse(live=True)

    @guard
    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=bool(self.runtime.ready))

    @guard
    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        from modelrunner.server.app import package_version

        return pb.ServerMetadataResponse(name="modelrunner", version=package_version(),
                                         extensions=list(EXTENSIONS))

    @guard
    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        dep = self.runtime.get(request.name).current
        ready = dep is not None and (not request.version or str(dep.version) == request.version)
        return pb.ModelReadyResponse(ready=ready)

    @guard
    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        from modelrunner.contract.schema import v2_metadata

        endpoint = _endpoint(self.runtime, request.name, request.version)
        dep = endpoint.current
        if dep is None:
            raise Unavailable(f"model {request.name!r} has no version loaded yet")
        meta = v2_metadata(dep.contract, request.name, [str(dep.version)], "modelrunner")
        return grpc_codec.model_metadata(meta)

    @guard
    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        endpoint = _endpoint(self.runtime, request.model_name, request.model_version)
        large = request.ByteSize() > dataplane.OFFLOAD_BYTES  # computed in C: cheap next to decoding
        if large:  # reading millions of values out of the message takes a while: not on the event loop
            infer_request = await asyncio.to_thread(grpc_codec.infer_request, request, self.max_rows)
        else:
            infer_request = grpc_codec.infer_request(request, self.max_rows)
        metadata = dict(context.invocation_metadata() or ())
        sticky = request_meta.lookup(infer_request.parameters, metadata.get) if endpoint.sticky_key else None
        pred = await dataplane.infer(endpoint, infer_request.decoder, "v2-grpc", offload=large, sticky=sticky,
                                     request_id=metadata.get(request_meta.REQUEST_ID) or infer_request.id)
        if request.model_version and str(pred.version) != request.model_version:
            raise Unavailable(f"model {request.model_name!r} switched to version {pred.version} during the "
                              "request; retry")
        context.set_trailing_metadata(tuple(request_meta.headers_of(pred).items()))
        return grpc_codec.infer_response(request.model_name, infer_request, pred)


def add_to_server(servicer: InferenceServicer, server: grpc.aio.Server) -> None:
    """As the generated ``add_GRPCInferenceServiceServicer_to_server``, but bytes that do not parse reach the
    handler as ``Malformed`` (INVALID_ARGUMENT naming the message) instead of grpc's own UNKNOWN."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=tolerant(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString)
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
