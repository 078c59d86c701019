"""lightgbm flavor: text model format, classifier labels/probabilities, regressors, raw boosters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.errors import MissingExtra

lgb = pytest.importorskip("lightgbm")
PARAMS = {"n_estimators": 5, "num_leaves": 7, "n_jobs": 1, "verbose": -1}


def test_multiclass_round_trip(tmp_path: Path, digits: Any) -> None:
    x, y = digits
    clf = lgb.LGBMClassifier(**PARAMS).fit(x[:500], y[:500])
    bundle = mr.save_model(clf, tmp_path / "lgb", sample=x[:5])
    assert bundle.manifest.flavor == "lightgbm" and (bundle.path / "model.txt").is_file()
    out = mr.load_model(bundle.path).predict({"input": x[500:540]})
    np.testing.assert_array_equal(out["label"], clf.predict(x[500:540]))
    np.testing.assert_allclose(out["proba"], clf.predict_proba(x[500:540]), rtol=1e-6)


def test_binary_string_labels(tmp_path: Path, iris_frame: Any) -> None:
    frame, y = iris_frame
    names = np.where(y == 0, "setosa", "other")
    clf = lgb.LGBMClassifier(**PARAMS, min_child_samples=5).fit(frame, names)
    bundle = mr.save_model(clf, tmp_path / "bin", sample=frame.head(5))
    cols = {f.name: frame.iloc[:, i].to_numpy() for i, f in enumerate(bundle.contract.inputs)}
    out = bundle.load().predict(cols)
    np.testing.assert_array_equal(out["label"], clf.predict(frame))
    assert out["proba"].shape == (150, 2)
    np.testing.assert_allclose(out["proba"], clf.predict_proba(frame), rtol=1e-6)


def test_regressor_and_booster(tmp_path: Path, digits: Any) -> None:
    x, y = digits
    reg = lgb.LGBMRegressor(**PARAMS).fit(x[:300], y[:300].astype(float))
    out = mr.save_model(reg, tmp_path / "reg", sample=x[:3]).load().predict({"input": x[:4]})
    np.testing.assert_allclose(out["prediction"], reg.predict(x[:4]))
    b = mr.save_model(reg.booster_, tmp_path / "booster", sample=x[:3])
    assert b.manifest.flavor_options["api"] == "booster"
    np.testing.assert_allclose(b.load().predict({"input": x[:4]})["prediction"], reg.predict(x[:4]))


def test_missing_extra(tmp_path: Path, digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = digits
    reg = lgb.LGBMRegressor(**PARAMS).fit(x[:100], y[:100].astype(float))
    bundle = mr.save_model(reg, tmp_path / "reg", sample=x[:3])
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(MissingExtra, match=r"modelrunner\[lightgbm\]"):
        bundle.load()
