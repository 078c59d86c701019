"""gRPC: the server of a worker (``server``), V2 ``inference.GRPCInferenceService`` (``v2`` + ``codec``), the
per-contract ``modelrunner.<endpoint>.Model/Predict`` services (``native``), status mapping (``errors``)."""
