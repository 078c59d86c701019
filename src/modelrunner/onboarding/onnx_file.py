"""``modelrunner import onnx``: a plain ``.onnx`` file -> a bundle whose contract comes from the graph.

Inputs and tensor outputs are the graph's (the first dimension is the batch; symbolic or unknown dimensions
become ``?``). Outputs that are not tensors (skl2onnx's ZipMap probabilities, a ``seq(map)``) are derived
by running the model on the example, as ``save_model`` does. Reuses the onnx flavor for loading and names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelrunner.bundle.bundle import Bundle, save_model
from modelrunner.bundle.flavors.onnx import FLAVOR, _field
from modelrunner.contract import Contract, Field
from modelrunner.errors import BundleError, FlavorError, InvalidArgument, require

MAX_ONNX_BYTES = 2 * 1024**3
"""protobuf's limit for one serialized ModelProto: a larger file keeps its weights outside (external data)."""


def read_graph(path: Path) -> Any:
    """An onnxruntime session over the file; one-line errors for a missing, empty or broken file."""
    if not path.is_file():
        raise InvalidArgument(f"no ONNX file at {path}")
    size = path.stat().st_size
    if size == 0:
        raise BundleError(f"{path} is empty: not an ONNX model")
    if size > MAX_ONNX_BYTES:
        raise BundleError(f"{path} is {size} bytes, past protobuf's 2 GiB limit for one ONNX file")
    onnx = require("onnx", "onnx")
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises ValidationError, DecodeError, ... for a broken file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BundleError(f"{path} is not a valid ONNX model: {first[:300]}") from exc
    ort = require("onnxruntime", "onnx")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unsupported operators
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BundleError(f"onnxruntime cannot load {path}: {first[:300]}") from exc


def graph_fields(args: Any, side: str) -> tuple[Field, ...] | None:
    """Fields for graph inputs or outputs; None when an output is not a tensor (derive those instead)."""
    fields = []
    for arg in args:
        if not str(arg.type).startswith("tensor("):
            if side == "input":
                raise FlavorError(f"ONNX input {arg.name!r} is a {arg.type}; only tensors are supported")
            return None
        try:
            fields.append(_field(arg))
        except FlavorError as exc:
            raise FlavorError(str(exc).replace("input", side, 1)) from exc
    return tuple(fields)


def graph_contract(session: Any) -> Contract:
    """The contract of an onnxruntime session: inputs, and the outputs when all are tensors."""
    inputs = graph_fields(session.get_inputs(), "input") or ()
    outputs = graph_fields(session.get_outputs(), "output") or ()
    return Contract.build(inputs, outputs)


def import_onnx(file: str | Path, dest: str | Path, *, name: str) -> Bundle:
    """Write a bundle at ``dest`` from the ONNX file (see the module docstring)."""
    path = Path(file)
    contract = graph_contract(read_graph(path))
    return save_model(
        path,
        dest,
        flavor=FLAVOR.name,
        name=name,
        contract=contract,
        description=f"imported from the ONNX file {path.name}",
    )
