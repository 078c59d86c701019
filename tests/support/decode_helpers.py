"""Helpers for the decoding tests: a model that refuses an empty batch (as sklearn does), served over HTTP
and gRPC on 127.0.0.1, with the wire formats a client would send."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract, DType, Field
from modelrunner.runner.endpoint import Endpoint
from modelrunner.settings import Settings
from support.fuzz_helpers import varint
from support.server_helpers import ServerThread, StaticRuntime, toy_deployment

STRICT_CONTRACT = Contract.build(
    [
        Field(name="x", dtype=DType.FLOAT64, shape=(4,)),
        Field(name="age", dtype=DType.FLOAT64, optional=True, default=30.0),
    ],
    [
        Field(name="label", dtype=DType.INT64),
        Field(name="proba", dtype=DType.FLOAT64, shape=(2,)),
        Field(name="name", dtype=DType.STRING),
    ],
)


class StrictPredictor(Predictor):
    """Refuses zero rows with sklearn's own error (a ValueError) and counts its calls."""

    def __init__(self) -> None:
        self.contract = STRICT_CONTRACT
        self.calls = 0

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        self.calls += 1
        x = columns["x"]
        if len(x) == 0:
            raise ValueError("Found array with 0 sample(s) (shape=(0, 4)) while a minimum of 1 is required.")
        label = (x.sum(axis=1) > 0).astype(np.int64)
        proba = np.stack([1.0 - label, label.astype(np.float64)], axis=1)
        return {"label": label, "proba": proba, "name": np.array(["n"] * len(x), dtype=object)}


@dataclass
class Served:
    url: str
    grpc: str
    predictor: StrictPredictor


@contextmanager
def served_strict(settings: Settings) -> Iterator[Served]:
    """The ``strict`` endpoint over HTTP (the routed app) and gRPC (V2 and the per-contract service)."""
    from modelrunner.server.app import create_app
    from modelrunner.server.grpc.server import attach

    predictor = StrictPredictor()
    endpoint = Endpoint("strict")
    endpoint.current = toy_deployment("strict", predictor)
    app = create_app(StaticRuntime({"strict": endpoint}), settings)
    grpc_server = attach(app)
    with ServerThread(app) as server:
        yield Served(server.url, f"127.0.0.1:{grpc_server.port}", predictor)


def proto_row(x: list[float]) -> bytes:
    """One ``InputRow`` of STRICT_CONTRACT (``repeated double x = 1``, packed), as a ``rows`` entry."""
    packed = struct.pack(f"<{len(x)}d", *x)
    row = b"\x0a" + varint(len(packed)) + packed
    return b"\x0a" + varint(len(row)) + row


def v2_binary_body(shape: list[int], raw: bytes) -> tuple[bytes, dict[str, str]]:
    """A V2 REST body with the binary tensor data extension (what tritonclient sends)."""
    import orjson

    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": shape,
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    return head + raw, {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }


def grpc_call(target: str, method: str, body: bytes) -> Any:
    """A raw unary call (bytes in, bytes out), as a stub compiled from the served .proto would make."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        return channel.unary_unary(method)(body, timeout=30)
