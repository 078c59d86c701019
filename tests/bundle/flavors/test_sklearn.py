"""sklearn flavor: labels equal the estimator's own predict, whichever path computes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import modelrunner as mr
from modelrunner.bundle.flavors.sklearn import _proba_decides


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x[:400], y[:400]


@pytest.mark.parametrize(
    ("make", "one_call"),
    [
        (lambda: LogisticRegression(max_iter=300), True),
        (lambda: RandomForestClassifier(n_estimators=5, random_state=0), True),
        (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), True),
        (lambda: CalibratedClassifierCV(SVC(gamma=0.001, C=10.0), ensemble=False, cv=3), True),
        (lambda: KNeighborsClassifier(n_neighbors=3), False),
    ],
)
def test_labels_match_estimator_predict(
    make: object, one_call: bool, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    model = make()  # type: ignore[operator]
    model.fit(x, y)
    assert _proba_decides(model) is one_call
    mr.save_model(model, tmp_path / "b", sample=x[:3], license="MIT")
    loaded = mr.load_model(tmp_path / "b")
    assert loaded.batch_safe, "rows are predicted independently: batched by default"
    out = loaded.predict({"input": x})
    np.testing.assert_array_equal(out["label"], model.predict(x))
    np.testing.assert_allclose(out["proba"], model.predict_proba(x))
