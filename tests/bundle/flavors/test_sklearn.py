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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_naming_the_input_and_row(
    bad: float, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """scikit-learn's finiteness check is done by the flavor for a model that refuses NaN/inf: the same
    refusal, as a ValidationError (422 / INVALID_ARGUMENT) naming where; sklearn's config stays as it was."""
    import sklearn

    from modelrunner.bundle.flavors.sklearn import refuses_non_finite
    from modelrunner.errors import ValidationError

    x, y = digits
    model = LogisticRegression(max_iter=300).fit(x, y)
    assert refuses_non_finite(model)
    mr.save_model(model, tmp_path / "b", sample=x[:3], license="MIT")
    loaded = mr.load_model(tmp_path / "b")
    rows = x[:4].copy()
    rows[2, 5] = bad
    with pytest.raises(ValidationError, match=r"row 2: input 'input' is NaN or infinite") as caught:
        loaded.predict({"input": rows})
    assert caught.value.field == "input"
    with pytest.raises(ValueError, match="NaN|infinity"):  # what scikit-learn itself says to the same rows
        model.predict_proba(rows)
    assert sklearn.get_config()["assume_finite"] is False
    np.testing.assert_allclose(loaded.predict({"input": x[:4]})["proba"], model.predict_proba(x[:4]))
    assert sklearn.get_config()["assume_finite"] is False


def test_models_that_take_nan_still_get_it(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelrunner.bundle.flavors.sklearn import refuses_non_finite

    x, y = digits
    composite = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
    assert not refuses_non_finite(composite)  # composites keep scikit-learn's own checks
    assert not refuses_non_finite(CalibratedClassifierCV(SVC(), cv=2).fit(x[:100], y[:100]))
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    assert not refuses_non_finite(model)
    mr.save_model(model, tmp_path / "b", sample=x[:3], license="MIT")
    rows = x[:4].copy()
    rows[1, 3] = np.nan
    out = mr.load_model(tmp_path / "b").predict({"input": rows})
    np.testing.assert_array_equal(out["label"], model.predict(rows))
