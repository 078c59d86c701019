"""Open Inference Protocol (KServe V2) over REST: routes (``rest``), tensors (``codec``), the binary tensor
data extension (``binary``). ``codec`` is shared with the gRPC adapter (``server.grpc.codec``)."""
