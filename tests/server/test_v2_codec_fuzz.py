"""Property tests of the V2 decoders (server/v2/codec.py, v2/binary.py, grpc/codec.py): any request body,
binary tail or ``ModelInferRequest`` bytes give columns or one of our errors, never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelrunner.contract import Contract
from modelrunner.server.grpc import codec as grpc_codec
from modelrunner.server.grpc.errors import Malformed, tolerant
from modelrunner.server.proto import grpc_predict_v2_pb2 as pb
from modelrunner.server.v2 import binary as v2_binary
from modelrunner.server.v2 import codec as v2_codec
from support.fuzz_helpers import CONTRACTS, FUZZ, JSON, only_our_errors

NAMES = st.sampled_from(["x", "k", "s", "b", "t", "nope"])
DATATYPES = st.sampled_from(["FP32", "FP64", "INT64", "UINT8", "BOOL", "BYTES", "FP16", "XX"])
SHAPES = st.lists(st.one_of(st.integers(-1, 4), st.sampled_from([2**31, 2**40])), max_size=3)
TENSORS = st.fixed_dictionaries(
    {"name": NAMES, "shape": st.one_of(SHAPES, JSON), "datatype": st.one_of(DATATYPES, JSON)},
    optional={
        "data": JSON,
        "parameters": st.one_of(
            st.fixed_dictionaries({"binary_data_size": st.one_of(st.integers(-1, 40), JSON)}), JSON
        ),
    },
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"inputs": st.lists(TENSORS, max_size=3)},
        optional={
            "outputs": st.one_of(JSON, st.lists(st.fixed_dictionaries({"name": NAMES}), max_size=2)),
            "id": JSON,
            "parameters": JSON,
        },
    ),
)


def _decode(body: Any, tail: bytes, contract: Contract, max_rows: int | None) -> None:
    request = v2_codec.parse_request(body, tail, max_rows)
    request.decoder(contract)


@FUZZ
@given(
    body=BODIES,
    tail=st.binary(max_size=48),
    contract=st.sampled_from(CONTRACTS),
    max_rows=st.sampled_from([None, 2]),
)
def test_v2_rest_request(body: Any, tail: bytes, contract: Contract, max_rows: int | None) -> None:
    only_our_errors(lambda: _decode(body, tail, contract, max_rows))


@FUZZ
@given(
    body=st.binary(max_size=64),
    header=st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 80).map(str)),
)
def test_binary_framing(body: bytes, header: str | None) -> None:
    split = only_our_errors(lambda: v2_binary.split(body, header))
    if split is not None:
        assert split[0] + split[1] == body


def _grpc_tensor(name: str, datatype: str, shape: list[int], values: list[float]) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    field = grpc_codec.CONTENTS.get(datatype.upper())
    if field is not None and values:
        target = getattr(tensor.contents, field)
        if field == "bytes_contents":
            target.extend(str(v).encode() for v in values)
        elif field == "bool_contents":
            target.extend(bool(v) for v in values)
        elif field.startswith(("fp", "int", "uint")) and not field.startswith("fp"):
            target.extend(abs(int(v)) % 100 for v in values)
        else:
            target.extend(values)
    return tensor


GRPC_TENSORS = st.builds(
    _grpc_tensor,
    NAMES,
    DATATYPES,
    st.lists(st.integers(0, 2**40), max_size=3),
    st.lists(st.floats(-1e6, 1e6), max_size=8),
)


@FUZZ
@given(
    tensors=st.lists(GRPC_TENSORS, max_size=3),
    raw=st.one_of(st.none(), st.lists(st.binary(max_size=40), max_size=3)),
    contract=st.sampled_from(CONTRACTS),
    flip=st.integers(0, 200),
)
def test_v2_grpc_request(tensors: list[Any], raw: list[bytes] | None, contract: Contract, flip: int) -> None:
    message = pb.ModelInferRequest(model_name="m", inputs=tensors, raw_input_contents=raw or [])
    data = bytearray(message.SerializeToString())
    if data and flip < len(data):
        data[flip] ^= 0xFF  # one corrupted byte: the bytes may no longer parse
    request = tolerant(pb.ModelInferRequest)(bytes(data))
    if isinstance(request, Malformed):
        assert "not a valid protobuf inference.ModelInferRequest" in str(request.error)
        return
    only_our_errors(lambda: grpc_codec.infer_request(request, 2).decoder(contract))
