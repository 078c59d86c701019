"""onnx flavor: an ``onnx.ModelProto`` or a path to a ``.onnx`` file, served with onnxruntime (CPU).

Without a sample the input contract comes from the graph: the first dimension is the batch, symbolic
dimensions become ``-1``. Field names are the graph's input/output names made into identifiers; a model with
one input accepts it under any field name (so a numpy sample's ``input`` works). Outputs are the graph's
tensor outputs; a ``seq(map(...))`` output (skl2onnx's ZipMap probabilities) becomes an (n, classes) array.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import Columns, Flavor, PredictFn, type_module
from modelrunner.contract import DType, Field
from modelrunner.contract.derive import sanitize_name
from modelrunner.errors import BundleError, FlavorError, require

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

MODEL_FILE = "model.onnx"
_TYPES = {
    "float": DType.FLOAT32, "double": DType.FLOAT64, "float16": DType.FLOAT16, "int8": DType.INT8,
    "int16": DType.INT16, "int32": DType.INT32, "int64": DType.INT64, "uint8": DType.UINT8,
    "uint16": DType.UINT16, "uint32": DType.UINT32, "uint64": DType.UINT64, "bool": DType.BOOL,
    "string": DType.STRING,
}  # fmt: skip


def _matches(obj: Any) -> bool:
    if isinstance(obj, str | Path):
        return str(obj).endswith(".onnx")
    return type_module(obj) == "onnx" and hasattr(obj, "SerializeToString")


def _model_bytes(obj: Any) -> bytes:
    if isinstance(obj, str | Path):
        try:
            return Path(obj).read_bytes()
        except OSError as exc:
            raise FlavorError(f"onnx flavor: cannot read {obj}: {exc.strerror or exc}") from exc
    if hasattr(obj, "SerializeToString"):
        data: bytes = obj.SerializeToString()
        return data
    raise FlavorError(f"onnx flavor needs an onnx.ModelProto or a .onnx path, got {type(obj).__name__}")


def _session(model: bytes | str) -> Any:
    ort = require("onnxruntime", "onnx")
    try:
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"onnx flavor: onnxruntime cannot load the model: {first}") from exc


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    data = _model_bytes(obj)
    _session(data)  # fail at save time, not at serve time
    (directory / MODEL_FILE).write_bytes(data)
    return {"file": MODEL_FILE}


def _field(arg: Any) -> Field:
    kind = str(arg.type)
    inner = kind.removeprefix("tensor(").removesuffix(")")
    if not kind.startswith("tensor(") or inner not in _TYPES:
        raise FlavorError(f"onnx flavor: input {arg.name!r} has unsupported type {kind}")
    dims = list(arg.shape)[1:]
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in dims)
    return Field(name=sanitize_name(arg.name), dtype=_TYPES[inner], shape=shape)


def _infer_inputs(obj: Any) -> tuple[Field, ...]:
    return tuple(_field(arg) for arg in _session(_model_bytes(obj)).get_inputs())


def _feed_names(session: Any, manifest: Manifest) -> dict[str, tuple[str, np.dtype[Any]]]:
    """Contract field -> (graph input name, numpy dtype the graph wants)."""
    graph = {sanitize_name(a.name): a for a in session.get_inputs()}
    fields = manifest.contract.inputs
    if len(graph) == 1 and len(fields) == 1:
        pairs = [(fields[0].name, next(iter(graph.values())))]
    else:
        missing = [name for name in graph if name not in {f.name for f in fields}]
        if missing:
            raise BundleError(f"onnx model inputs {missing} have no field in the contract")
        pairs = [(name, arg) for name, arg in graph.items()]
    out = {}
    for field_name, arg in pairs:
        inner = str(arg.type).removeprefix("tensor(").removesuffix(")")
        dtype = _TYPES.get(inner, DType.FLOAT32).numpy()
        out[field_name] = (arg.name, dtype)
    return out


def _column(value: Any) -> np.ndarray:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = list(value[0])
        return np.array([[row[k] for k in keys] for row in value])
    return np.asarray(value)


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    path = directory / str(manifest.flavor_options.get("file", MODEL_FILE))
    if not path.is_file():
        raise BundleError(f"onnx bundle is missing {path.name}")
    session = _session(str(path))
    feeds = _feed_names(session, manifest)
    outputs = [(sanitize_name(o.name), o.name) for o in session.get_outputs()]

    def predict(columns: Columns) -> Columns:
        feed = {
            graph: np.asarray(columns[name]).astype(dtype, copy=False)
            for name, (graph, dtype) in feeds.items()
            if name in columns
        }
        values = session.run([graph for _, graph in outputs], feed)
        return {name: _column(v) for (name, _), v in zip(outputs, values, strict=True)}

    setattr(predict, "batch_safe", _free_batch(session))  # noqa: B010 - read by Bundle.load
    return predict


def _free_batch(session: Any) -> bool:
    """True when every graph input takes any number of rows (its first dimension is symbolic or unknown): a
    graph fixed at one row cannot take merged requests, so it is not batched by default."""
    for arg in session.get_inputs():
        shape = getattr(arg, "shape", None) or []
        if shape and isinstance(shape[0], int):
            return False
    return True


FLAVOR = Flavor(
    name="onnx",
    extra="onnx",
    packages=("onnxruntime",),
    matches=_matches,
    save=_save,
    load=_load,
    infer_inputs=_infer_inputs,
    batch_safe=True,
)
