"""optimize --to onnx: sklearn -> ONNX, checked equal, measured, pushed with the original as parent."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.errors import FailedPrecondition, InvalidArgument, RequirementError
from modelrunner.onboarding.optimize import first_difference, optimize
from modelrunner.registry.registry import Registry


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x, y


def _push(registry: Registry, model: Any, name: str, root: Path) -> None:
    x, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[:600], y[:600])
    mr.save_model(model, root / name, sample=x[:5], name=name, license="MIT")
    registry.push(root / name, alias="production")


@pytest.fixture
def registry(tmp_home: Path, tmp_path: Path) -> Registry:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    reg = Registry.from_env()
    _push(reg, LogisticRegression(max_iter=200), "digits", tmp_path)
    _push(reg, MLPClassifier((32,), max_iter=60, random_state=0), "mlp", tmp_path)
    x, y = _digits()
    np.savez(tmp_path / "holdout.npz", input=x[1200:], target=y[1200:])
    return reg


def test_digits_lr_becomes_an_equal_onnx_version(registry: Registry, tmp_path: Path) -> None:
    outcome = optimize(registry, "digits@production", data=tmp_path / "holdout.npz")
    assert outcome.version is not None and outcome.version.ref == "digits@2"
    assert outcome.rows_checked == 5 + 597
    assert outcome.metrics["agreement"] == 1.0 and outcome.metrics["accuracy_change"] == 0.0
    assert outcome.before.p50_ms > 0 and outcome.after.p50_ms > 0
    bundle = mr.open_bundle(registry.fetch("digits@2"))
    assert bundle.manifest.flavor == "onnx"
    assert bundle.manifest.lineage.parent == "digits@1"
    assert bundle.manifest.tags["optimized_from"] == "digits@1"
    assert bundle.contract == registry.resolve("digits@1").contract
    x, _ = _digits()
    rows = {"input": x[1500:1510]}
    before = mr.open_bundle(registry.fetch("digits@1")).load().predict(rows)
    after = bundle.load().predict(rows)
    assert np.array_equal(before["label"], after["label"])
    assert np.abs(before["proba"] - after["proba"]).max() < 1e-4


@pytest.mark.slow  # a real `modelrunner serve` subprocess: ~20 s on the shared VM
def test_served_speed_is_measured_over_http_without_errors(registry: Registry) -> None:
    outcome = optimize(registry, "digits@1", served=True, requirements=["error_rate<=0"])
    assert outcome.version is not None and not outcome.failed
    for side in ("before", "after"):
        measured = outcome.served[side]
        assert measured["error_rate"] == 0.0 and measured["p50_ms"] > 0 and measured["qps"] > 0
    assert outcome.metrics["p50_ms"] == outcome.served["after"]["p50_ms"]


def test_mlp_quantized_reports_accuracy_change_and_is_gated(registry: Registry, tmp_path: Path) -> None:
    refused = optimize(
        registry,
        "mlp@1",
        quantize="dynamic",
        data=tmp_path / "holdout.npz",
        requirements=["accuracy_change>=0.5"],
    )
    assert refused.version is None and refused.failed[0].startswith("accuracy_change>=0.5 (got ")
    assert registry.model("mlp").latest is not None and registry.model("mlp").latest.version == 1
    kept = optimize(
        registry,
        "mlp@1",
        quantize="dynamic",
        data=tmp_path / "holdout.npz",
        requirements=["accuracy_change>=-0.05", "agreement>=0.9"],
    )
    assert kept.version is not None and kept.version.ref == "mlp@2"
    assert abs(kept.metrics["accuracy_change"]) <= 0.05
    assert mr.open_bundle(registry.fetch("mlp@2")).manifest.tags["quantized"] == "dynamic"


def test_a_difference_refuses_with_the_first_row(registry: Registry) -> None:
    with pytest.raises(FailedPrecondition, match=r"not equivalent \(tolerance 1e-15\): row \d+: proba"):
        optimize(registry, "digits@1", tolerance=1e-15)  # float32 ONNX vs float64 sklearn
    assert registry.model("digits").latest.version == 1  # type: ignore[union-attr]


def test_first_difference_names_row_and_field() -> None:
    a = {"label": np.array([1, 2, 3]), "proba": np.zeros((3, 2))}
    assert first_difference(a, {"label": np.array([1, 2, 3]), "proba": np.full((3, 2), 5e-5)}) is None
    b = {"label": np.array([1, 9, 3]), "proba": np.zeros((3, 2))}
    assert first_difference(a, b) == "row 1: label is 2 in the original, 9 in ONNX"


def test_bad_requests(registry: Registry, tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    xf = x.astype(np.float32)
    mr.save_model(to_onnx(LogisticRegression(max_iter=50).fit(xf, y), xf[:1]), tmp_path / "o", name="o")
    registry.push(tmp_path / "o")
    with pytest.raises(InvalidArgument, match="converts sklearn models; o@1 has flavor onnx"):
        optimize(registry, "o@1")
    with pytest.raises(InvalidArgument, match="only 'dynamic'"):
        optimize(registry, "digits@1", quantize="static")
    with pytest.raises(RequirementError, match="unknown metric 'speed'"):
        optimize(registry, "digits@1", requirements=["speed>=2"])
