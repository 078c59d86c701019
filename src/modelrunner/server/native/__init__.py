"""The native protocol: ``/v1`` REST predict (routed and plain fast path), forms, and the endpoint's own
protobuf messages (over HTTP here; over gRPC in ``server.grpc.native``)."""
