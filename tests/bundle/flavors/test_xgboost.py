"""xgboost flavor: native .ubj format, sklearn wrappers and raw boosters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.errors import MissingExtra

xgb = pytest.importorskip("xgboost")


def test_classifier_round_trip(tmp_path: Path, digits: Any) -> None:
    x, y = digits
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(x[:500], y[:500])
    bundle = mr.save_model(clf, tmp_path / "xgb", sample=x[:5])
    assert bundle.manifest.flavor == "xgboost"
    assert (bundle.path / "model.ubj").is_file() and not list(bundle.path.glob("*.joblib"))
    assert any(r.startswith("xgboost") for r in bundle.manifest.requirements)
    out = mr.load_model(bundle.path).predict({"input": x[500:540]})
    np.testing.assert_array_equal(out["label"], clf.predict(x[500:540]))
    np.testing.assert_allclose(out["proba"], clf.predict_proba(x[500:540]), rtol=1e-6)
    assert out["proba"].shape == (40, 10)


def test_regressor_and_booster(tmp_path: Path, digits: Any) -> None:
    x, y = digits
    reg = xgb.XGBRegressor(n_estimators=5, max_depth=3, n_jobs=1).fit(x[:300], y[:300])
    out = mr.save_model(reg, tmp_path / "reg", sample=x[:3]).load().predict({"input": x[:4]})
    np.testing.assert_allclose(out["prediction"], reg.predict(x[:4]), rtol=1e-6)
    booster = reg.get_booster()
    b = mr.save_model(booster, tmp_path / "booster", sample=x[:3])
    assert b.manifest.flavor_options["api"] == "booster"
    got = b.load().predict({"input": x[:4]})["prediction"]
    np.testing.assert_allclose(got, reg.predict(x[:4]), rtol=1e-6)


def test_missing_extra(tmp_path: Path, digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = digits
    clf = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(x[:200], y[:200])
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(MissingExtra, match=r"'xgboost' extra.*pip install 'modelrunner\[xgboost\]'"):
        mr.save_model(clf, tmp_path / "b", sample=x[:2], flavor="xgboost")
