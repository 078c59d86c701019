"""import mlflow: real MLflow model folders (mlflow-skinny's save_model) -> bundles -> served over HTTP."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.bundle.bundle import open_bundle
from modelrunner.contract import DType
from modelrunner.errors import ContractError, FailedPrecondition, FlavorError, InvalidArgument
from modelrunner.onboarding.mlflow import import_mlflow
from modelrunner.onboarding.signature import fields_from_signature, parse_spec
from modelrunner.registry.registry import Registry
from support.onboard_helpers import close, iris_frame, post, served, write_sklearn_tensor


def test_sklearn_frame_model_keeps_signature_example_requirements_and_run_id(
    mlflow_frame: tuple[Path, Any], tmp_path: Path
) -> None:
    path, model = mlflow_frame
    bundle = import_mlflow(path, tmp_path / "b", name="iris")
    inputs = bundle.contract.inputs
    names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    assert [f.name for f in inputs] == names
    assert all(f.dtype is DType.FLOAT64 and f.shape == () for f in inputs)
    assert "sepal length (cm)" in inputs[0].description
    assert [f.name for f in bundle.contract.outputs] == ["label", "proba"]
    m = bundle.manifest
    assert m.flavor == "sklearn"
    assert m.lineage.extra["mlflow_run_id"] == "0123456789abcdef"
    assert m.tags["mlflow.run_id"] == "0123456789abcdef"
    assert m.tags["mlflow.metadata.team"] == "risk"
    assert any(r.startswith("pandas") for r in m.requirements)
    assert not any(r.startswith("mlflow") for r in m.requirements)  # a native flavor needs no mlflow
    assert (bundle.path / "mlflow" / "MLmodel").is_file()
    x, _ = iris_frame()
    example = open_bundle(bundle.path).example_input()
    assert close(example["petal_width_cm"], x["petal width (cm)"][:3])
    out = bundle.load().predict(example)
    assert np.array_equal(out["label"], model.predict(x[:3]))


def test_sklearn_tensor_model_pickle_format(tmp_path: Path) -> None:
    model = write_sklearn_tensor(tmp_path / "mlflow")
    bundle = import_mlflow(tmp_path / "mlflow", tmp_path / "b", name="iris")
    (field,) = bundle.contract.inputs
    assert (field.name, field.dtype, field.shape) == ("input", DType.FLOAT64, (4,))
    x = iris_frame()[0].to_numpy()[50:60]
    out = bundle.load().predict({"input": x})
    assert close(out["proba"], model.predict_proba(x))


def test_imported_sklearn_model_is_served_over_http(
    mlflow_frame: tuple[Path, Any], tmp_path: Path, tmp_home: Path
) -> None:
    path, model = mlflow_frame
    bundle = import_mlflow(path, tmp_path / "b", name="iris")
    with Registry.from_env() as registry:
        mv = registry.push(bundle.path, alias="production")
    x, _ = iris_frame()
    rows = x[100:104]
    with served(tmp_home, "iris", f"{mv.name}@production") as url:
        body = {
            "inputs": {
                "sepal_length_cm": rows["sepal length (cm)"].tolist(),
                "sepal_width_cm": rows["sepal width (cm)"].tolist(),
                "petal_length_cm": rows["petal length (cm)"].tolist(),
                "petal_width_cm": rows["petal width (cm)"].tolist(),
            }
        }
        r = post(url, "iris", body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"]["label"] == model.predict(rows).tolist()


def test_pyfunc_model_with_an_optional_column_is_served(
    mlflow_pyfunc: Path, tmp_path: Path, tmp_home: Path
) -> None:
    bundle = import_mlflow(mlflow_pyfunc, tmp_path / "b", name="adder")
    a, b = bundle.contract.inputs
    assert (a.name, a.optional, b.name, b.optional) == ("a", False, "b", True)
    assert bundle.manifest.flavor == "python"
    assert any(r.startswith("mlflow") for r in bundle.manifest.requirements)
    with Registry.from_env() as registry:
        registry.push(bundle.path, alias="production")
    with served(tmp_home, "adder", "adder@production") as url:
        both = post(url, "adder", {"inputs": {"a": [1.0, 2.5], "b": [10.0, 20.0]}})
    assert both.status_code == 200, both.text
    assert both.json()["outputs"]["prediction"] == [11.0, 22.5]


def test_pyfunc_tensor_model(tmp_path: Path) -> None:
    from support.onboard_helpers import write_pyfunc_tensor

    write_pyfunc_tensor(tmp_path / "m")
    bundle = import_mlflow(tmp_path / "m", tmp_path / "b", name="double")
    (field,) = bundle.contract.inputs
    assert (field.name, field.describe()) == ("input", "float32[3]")
    x = np.ones((4, 3), dtype=np.float32)
    assert close(bundle.load().predict({"input": x})["prediction"], x * 2)


def test_pyfunc_without_mlflow_says_so(
    mlflow_pyfunc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)  # import mlflow.pyfunc now raises ImportError
    with pytest.raises(FailedPrecondition, match="needs mlflow to load: pip install mlflow-skinny"):
        import_mlflow(mlflow_pyfunc, tmp_path / "b", name="adder")


def test_xgboost_flavor(tmp_path: Path) -> None:
    import mlflow.xgboost
    import xgboost

    x, y = iris_frame()
    model = xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(x.to_numpy(), y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.xgboost.save_model(
            model, str(tmp_path / "m"), input_example=x.to_numpy()[:2], pip_requirements=["xgboost"]
        )
    bundle = import_mlflow(tmp_path / "m", tmp_path / "b", name="xgb")
    assert bundle.manifest.flavor == "xgboost"
    out = bundle.load().predict({"input": x.to_numpy()[:20]})
    assert np.array_equal(out["label"], model.predict(x.to_numpy()[:20]))


def test_lightgbm_booster_flavor(tmp_path: Path) -> None:
    import lightgbm
    import mlflow.lightgbm

    x = iris_frame()[0].to_numpy()
    y = iris_frame()[1].to_numpy()
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1}, lightgbm.Dataset(x, y), num_boost_round=4
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.lightgbm.save_model(
            booster, str(tmp_path / "m"), input_example=x[:2], pip_requirements=["lightgbm"]
        )
    bundle = import_mlflow(tmp_path / "m", tmp_path / "b", name="lgb")
    assert bundle.manifest.flavor == "lightgbm"
    assert close(bundle.load().predict({"input": x[:9]})["prediction"], booster.predict(x[:9]))


def test_onnx_flavor(tmp_path: Path) -> None:
    import mlflow.onnx
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = iris_frame()
    xf = x.to_numpy().astype(np.float32)
    onx = to_onnx(LogisticRegression(max_iter=300).fit(xf, y), xf[:1], options={"zipmap": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.onnx.save_model(onx, str(tmp_path / "m"), input_example=xf[:2], pip_requirements=["onnx"])
    bundle = import_mlflow(tmp_path / "m", tmp_path / "b", name="onnxiris")
    assert bundle.manifest.flavor == "onnx"
    assert np.array_equal(bundle.load().predict({"X": xf[:5]})["label"], [0] * 5)


def test_not_an_mlflow_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not an MLflow model folder: no MLmodel"):
        import_mlflow(tmp_path, tmp_path / "b", name="x")
    with pytest.raises(InvalidArgument, match="is not a folder"):
        import_mlflow(tmp_path / "missing", tmp_path / "b", name="x")
    with pytest.raises(InvalidArgument, match="written as a folder, not an archive"):
        import_mlflow(tmp_path, tmp_path / "b.tar.gz", name="x")


def test_unsupported_flavor(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n")
    with pytest.raises(FlavorError, match="unsupported MLflow flavor.*pytorch; supported: onnx, sklearn"):
        import_mlflow(tmp_path / "m", tmp_path / "b", name="x")


def test_signature_forms() -> None:
    cols = fields_from_signature(
        parse_spec(
            '[{"type": "long", "name": "age"}, {"type": "string", "name": "city name", "required": false}]',
            "inputs",
        )
    )
    assert [(f.name, f.dtype, f.optional) for f in cols] == [
        ("age", DType.INT64, False),
        ("city_name", DType.STRING, True),
    ]
    (tensor,) = fields_from_signature(
        parse_spec([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, -1]}}], "inputs")
    )
    assert (tensor.name, tensor.dtype, tensor.describe()) == ("input", DType.FLOAT32, "float32[28x?]")
    with pytest.raises(ContractError, match="column 'when' has type 'datetime'"):
        fields_from_signature([{"type": "datetime", "name": "when"}])
