"""import onnx: a plain .onnx file -> a bundle whose contract is the graph's (dynamic axes -> ?)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelrunner.contract import DType
from modelrunner.errors import BundleError, InvalidArgument
from modelrunner.onboarding.onnx_file import import_onnx


def _skl2onnx_iris(path: Path, zipmap: bool) -> tuple[np.ndarray, np.ndarray]:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    xf = x.astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(xf, y)
    path.write_bytes(to_onnx(model, xf[:1], options={"zipmap": zipmap}).SerializeToString())
    return xf, model.predict(xf)


def test_skl2onnx_model_contract_from_graph(tmp_path: Path) -> None:
    x, labels = _skl2onnx_iris(tmp_path / "iris.onnx", zipmap=False)
    bundle = import_onnx(tmp_path / "iris.onnx", tmp_path / "b", name="iris")
    (inp,) = bundle.contract.inputs
    assert (inp.name, inp.dtype, inp.shape) == ("X", DType.FLOAT32, (4,))
    outs = {f.name: f for f in bundle.contract.outputs}
    assert outs["label"].dtype is DType.INT64 and outs["probabilities"].describe() == "float32[3]"
    assert np.array_equal(bundle.load().predict({"X": x})["label"], labels)


def test_zipmap_probabilities_are_derived(tmp_path: Path) -> None:
    x, labels = _skl2onnx_iris(tmp_path / "iris.onnx", zipmap=True)
    bundle = import_onnx(tmp_path / "iris.onnx", tmp_path / "b", name="iris")
    assert [f.name for f in bundle.contract.outputs] == ["output_label", "output_probability"]
    out = bundle.load().predict({"X": x[:7]})
    assert out["output_probability"].shape == (7, 3)


def _dynamic_model(path: Path) -> None:
    """y = sum over the last axis of x, where x is (batch, ?, 3): symbolic batch and length dimensions."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "length", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "length"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [-1])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    graph = helper.make_graph([node], "dyn", [x], [y], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_dynamic_axes_become_variable(tmp_path: Path) -> None:
    _dynamic_model(tmp_path / "dyn.onnx")
    bundle = import_onnx(tmp_path / "dyn.onnx", tmp_path / "b", name="dyn")
    (inp,), (out,) = bundle.contract.inputs, bundle.contract.outputs
    assert (inp.name, inp.describe()) == ("x", "float32[?x3]")
    assert (out.name, out.describe()) == ("y", "float32[?]")
    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    assert np.allclose(bundle.load().predict({"x": x})["y"], x.sum(axis=-1))


def test_broken_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(BundleError, match="bad.onnx is not a valid ONNX model"):
        import_onnx(tmp_path / "bad.onnx", tmp_path / "b", name="x")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(BundleError, match="is empty"):
        import_onnx(tmp_path / "empty.onnx", tmp_path / "b", name="x")
    with pytest.raises(InvalidArgument, match="no ONNX file at"):
        import_onnx(tmp_path / "missing.onnx", tmp_path / "b", name="x")
