"""Online metrics per variant: equal to the offline metrics on the same rows; intervals that cover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrunner.contract import DType
from modelrunner.evaluation import metrics as m
from modelrunner.experiments.online import online_stats, wilson
from support.exp_rows import Row, contract, rows


def _contract_for(c):  # type: ignore[no-untyped-def]
    return lambda model, version: c


@pytest.fixture(scope="module")
def digits_answers() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.naive_bayes import GaussianNB

    x, y = load_digits(return_X_y=True)
    model = GaussianNB(var_smoothing=0.01).fit(x[:1200], y[:1200])
    return model.predict(x[1200:]), y[1200:]


def test_online_accuracy_equals_offline_on_the_same_rows(digits_answers: tuple[np.ndarray, ...]) -> None:
    pred, y = digits_answers
    logged = rows("production", pred.tolist(), y.tolist())
    stats = online_stats(logged, logged, m.Task.CLASSIFICATION, _contract_for(contract()))
    prod = stats["production"]
    offline = m.compute_metrics(m.Task.CLASSIFICATION, y, {"label": pred}, contract())
    assert prod.labelled == len(y)
    assert prod.value("accuracy") == pytest.approx(offline["accuracy"], abs=0)
    assert prod.value("macro_f1") == pytest.approx(offline["macro_f1"], abs=0)
    est = prod.estimate("accuracy")
    assert est is not None and est.method == "wilson" and est.low < offline["accuracy"] < est.high


def test_regression_and_ocr_metrics_match_offline() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.5, size=300)
    reg = contract("prediction", DType.FLOAT64)
    logged = rows("production", pred.tolist(), y.tolist(), output="prediction")
    prod = online_stats(logged, logged, m.Task.REGRESSION, _contract_for(reg))["production"]
    assert prod.value("rmse") == pytest.approx(m.rmse(y, pred), abs=1e-12)
    est = prod.estimate("rmse")
    assert est is not None and est.method == "bootstrap" and est.low < m.rmse(y, pred) < est.high

    texts, truth = ["12", "305", "7"] * 20, ["12", "306", "71"] * 20
    ocr = contract("text", DType.STRING)
    logged = rows("production", texts, truth, output="text")
    prod = online_stats(logged, logged, m.Task.OCR, _contract_for(ocr))["production"]
    offline = m.cer(np.array(truth, dtype=object), np.array(texts, dtype=object))
    assert prod.value("cer") == pytest.approx(offline)
    assert prod.value("exact_match") == pytest.approx(1 / 3)


def test_errors_count_in_error_rate_not_in_quality_and_shadow_agreement() -> None:
    prod = rows("production", [1, 2, 3, 4] * 10, [1, 2, 3, 4] * 10, prefix="r")
    shadow = rows("shadow", [1, 2, 3, 0] * 10, [1, 2, 3, 4] * 10, prefix="r")  # production's request ids
    shadow[0] = Row("r-0", "shadow", "m", 2, 1.0, "RuntimeError: boom", None, 1)
    shadow.append(Row("r-40", "shadow", "m", 2, 1.0, None, {"label": [1, 2]}, [1, 2]))  # 2 rows, 2 targets
    shadow.append(Row("r-41", "shadow", "m", 2, 1.0, None, {"label": [1, 2]}, 1))  # does not fit: left out
    stats = online_stats(prod + shadow, prod + shadow, m.Task.CLASSIFICATION, _contract_for(contract()))
    sh = stats["shadow"]
    assert list(stats) == ["production", "shadow"]
    assert (sh.requests, sh.errors, sh.labelled) == (42, 1, 41)
    assert sh.value("error_rate") == pytest.approx(1 / 42)
    assert sh.value("accuracy") == pytest.approx(31 / 41)
    assert sh.value("agreement") == pytest.approx(29 / 39)  # 39 joined answers, 10 differ
    assert stats["production"].samples.get("agreement") is None


def test_wilson_known_values_and_edges() -> None:
    from scipy.stats import binomtest

    for k, n in ((56, 70), (48, 80), (3, 400)):
        est, ref = wilson(k, n), binomtest(k, n).proportion_ci(method="wilson")
        assert (est.low, est.high) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    zero = wilson(0, 300)
    assert zero.low == pytest.approx(0, abs=1e-12)
    assert zero.high == pytest.approx(3.8415 / (300 + 3.8415), rel=1e-3)
    assert wilson(0, 0).value is None


def test_interval_coverage_is_about_95_percent() -> None:
    """Wilson (accuracy) and bootstrap (rmse) intervals contain the true value in ~95 % of samples."""
    rng = np.random.default_rng(7)
    c, reg = contract(), contract("prediction", DType.FLOAT64)
    hits_acc = hits_rmse = 0
    trials = 120
    for i in range(trials):
        correct = rng.random(200) < 0.9
        logged = rows("production", np.where(correct, 1, 0).tolist(), [1] * 200)
        est = online_stats(logged, logged, m.Task.CLASSIFICATION, _contract_for(c))["production"].estimate(
            "accuracy"
        )
        hits_acc += est is not None and est.low <= 0.9 <= est.high  # type: ignore[operator]
        noise = rng.normal(scale=2.0, size=200)  # true rmse 2.0
        logged = rows("production", noise.tolist(), [0.0] * 200, output="prediction", prefix=f"t{i}")
        stats = online_stats(logged, logged, m.Task.REGRESSION, _contract_for(reg))
        est = stats["production"].estimate("rmse")
        hits_rmse += est is not None and est.low <= 2.0 <= est.high  # type: ignore[operator]
    assert 0.88 <= hits_acc / trials <= 1.0
    assert 0.85 <= hits_rmse / trials <= 1.0
    assert not math.isnan(hits_acc)
