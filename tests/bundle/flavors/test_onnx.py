"""onnx flavor: ModelProto or .onnx path, contract from the graph, ZipMap outputs, bad files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.contract import DType
from modelrunner.errors import BundleError, MissingExtra

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def iris_lr() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(x, y), x


def test_contract_from_graph(tmp_path: Path, iris_lr: Any) -> None:
    clf, x = iris_lr
    proto = skl2onnx.to_onnx(clf, x[:1].astype(np.float32), options={"zipmap": False})
    bundle = mr.save_model(proto, tmp_path / "onnx")
    assert bundle.manifest.flavor == "onnx"
    c = bundle.contract
    assert [(f.name, f.dtype, f.shape) for f in c.inputs] == [("X", DType.FLOAT32, (4,))]
    assert [(f.name, f.dtype, f.shape) for f in c.outputs] == [
        ("label", DType.INT64, ()),
        ("probabilities", DType.FLOAT32, (3,)),
    ]
    assert bundle.example_input()["X"].shape == (2, 4)
    out = mr.load_model(bundle.path).predict({"X": x[:20]})  # float64 in: cast to the graph's float32
    np.testing.assert_array_equal(out["label"], clf.predict(x[:20]))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(x[:20]), atol=1e-5)


def test_path_with_sample_and_zipmap(tmp_path: Path, iris_lr: Any) -> None:
    clf, x = iris_lr
    path = tmp_path / "iris.onnx"
    path.write_bytes(skl2onnx.to_onnx(clf, x[:1].astype(np.float32)).SerializeToString())
    bundle = mr.save_model(str(path), tmp_path / "b", sample=x[:5].astype(np.float32))
    assert bundle.contract.inputs[0].name == "input"
    assert bundle.contract.output("output_probability").shape == (3,)
    out = bundle.load().predict({"input": x[:6].astype(np.float32)})
    np.testing.assert_allclose(out["output_probability"], clf.predict_proba(x[:6]), atol=1e-5)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(BundleError, match="onnxruntime cannot load the model"):
        mr.save_model(path, tmp_path / "b")


def test_missing_extra(tmp_path: Path, iris_lr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clf, x = iris_lr
    proto = skl2onnx.to_onnx(clf, x[:1].astype(np.float32))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra, match=r"modelrunner\[onnx\]"):
        mr.save_model(proto, tmp_path / "b")


def test_batch_safe_unless_the_graph_fixes_its_batch_size(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    def identity(batch: int | str) -> Any:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [x], [y])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    free = mr.save_model(identity("n"), tmp_path / "free", sample=np.zeros((3, 2), np.float32))
    fixed = mr.save_model(identity(1), tmp_path / "fixed", sample=np.zeros((1, 2), np.float32))
    assert free.load().batch_safe is True
    assert fixed.load().batch_safe is False, "a graph fixed at one row cannot take merged requests"
