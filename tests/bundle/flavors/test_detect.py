"""Flavor detection from the object, lookup by name, and the known-flavor list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.bundle.flavors import FLAVOR_NAMES, detect_flavor, get_flavor
from modelrunner.errors import FlavorError
from support.bundle_toy_models import Scale


def _models(digits: Any) -> list[tuple[Any, str]]:
    import lightgbm
    import skl2onnx
    import xgboost
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    class MyEstimator(BaseEstimator):
        def predict(self, x: Any) -> Any:
            return x

    x, y = digits
    lr = LogisticRegression(max_iter=50).fit(x[:100], y[:100])
    return [
        (lr, "sklearn"),
        (make_pipeline(StandardScaler(), LogisticRegression()), "sklearn"),
        (MyEstimator(), "sklearn"),
        (xgboost.XGBClassifier(n_estimators=2), "xgboost"),
        (lightgbm.LGBMClassifier(n_estimators=2), "lightgbm"),
        (skl2onnx.to_onnx(lr, x[:1].astype(np.float32)), "onnx"),
        ("model.onnx", "onnx"),
        (Path("model.onnx"), "onnx"),
        (Scale(1.0), "python"),
    ]


def test_detect(digits: Any) -> None:
    for model, name in _models(digits):
        assert detect_flavor(model).name == name, type(model)


@pytest.mark.parametrize("obj", [object(), 3, "model.pkl", np.zeros(3), Scale])
def test_nothing_matches(obj: Any) -> None:
    with pytest.raises(FlavorError, match="no flavor can save.*known flavors: lightgbm, onnx, python"):
        detect_flavor(obj)


def test_get_flavor() -> None:
    assert set(FLAVOR_NAMES) == {"sklearn", "onnx", "xgboost", "lightgbm", "torch", "python"}
    for name in FLAVOR_NAMES:
        flavor = get_flavor(name)
        assert flavor.name == name and (flavor.extra is None) == (name == "python")
    with pytest.raises(FlavorError, match="unknown flavor 'pytorch'; known flavors: lightgbm, onnx"):
        get_flavor("pytorch")
