"""evaluate(): real bundles in a real (SQLite) registry; the served path runs `modelrunner serve` once."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from modelrunner import load_model
from modelrunner.errors import InvalidArgument, RequirementError, ValidationError
from modelrunner.evaluation.evaluate import Options, evaluate
from modelrunner.evaluation.metrics import Task
from modelrunner.evaluation.speed import LoadSpec

FAST = Options(served=False, single_calls=20)


def test_in_process_metrics_gates_and_storage(digits_reg: Any, digits_npz: Path, digits_split: Any) -> None:
    run = evaluate(
        digits_reg,
        ["digits@1", "digits@2", "digits@3"],
        digits_npz,
        ["accuracy>=0.85", "inproc_p99_ms<=5000"],
        options=FAST,
    )
    assert run.task is Task.CLASSIFICATION and run.model == "digits" and run.dataset.rows == 597
    by_version = {r.candidate.version: r for r in run.results}
    x_test, y_test = digits_split[2], digits_split[3]
    expected = load_model(Path(digits_reg.fetch("digits@2"))).predict({"input": x_test})["label"]
    good = by_version[2]
    assert good.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_test, expected))
    assert good.metrics["macro_f1"] == pytest.approx(skm.f1_score(y_test, expected, average="macro"))
    assert "log_loss" in good.metrics and good.metrics["inproc_rows_per_s"] > 0
    assert not by_version[1].passed and by_version[1].verdict.startswith("fail: accuracy 0.4506 < 0.85")
    assert by_version[2].passed and by_version[3].passed
    assert run.best is not None and run.best.candidate.version == 2
    assert [r.candidate.version for r in run.ranked()] == [2, 3, 1]
    labels, matrix = good.confusion or ([], [])
    assert labels == list(range(10)) and sum(map(sum, matrix)) == 597
    stored = digits_reg.evaluations("digits", 2)
    assert len(stored) == 1 and stored[0].id == good.evaluation_id and stored[0].passed is True
    assert stored[0].dataset_sha256 == run.dataset.sha256 and stored[0].dataset_name == "test.npz"
    assert stored[0].gates[0]["requirement"] == "accuracy>=0.85"


def test_saved_gates_are_added(digits_reg: Any, digits_npz: Path) -> None:
    digits_reg.set_gates("digits", ["accuracy>=0.88"])
    run = evaluate(digits_reg, ["digits@3"], digits_npz, ["macro_f1>=0.5"], options=FAST, store=False)
    assert [g.requirement for g in run.results[0].gates] == ["macro_f1>=0.5", "accuracy>=0.88"]
    assert run.results[0].verdict == "fail: accuracy 0.8794 < 0.88" and run.best is None
    assert digits_reg.evaluations("digits") == []


def test_bad_input_is_refused_before_work(
    digits_reg: Any, digits_npz: Path, tmp_path: Path, digits_bundles: dict[str, Path]
) -> None:
    with pytest.raises(RequirementError, match="cannot parse requirement 'accuracy=>1'"):
        evaluate(digits_reg, ["digits@1"], digits_npz, ["accuracy=>1"], options=FAST)
    with pytest.raises(RequirementError, match="'rmse' does not apply to a classification task"):
        evaluate(digits_reg, ["digits@1"], digits_npz, ["rmse<=1"], options=FAST)
    with pytest.raises(RequirementError, match="p99_ms<=10 needs the served measurement"):
        evaluate(digits_reg, ["digits@1"], digits_npz, ["p99_ms<=10"], options=FAST)
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((3, 64)), target=np.zeros(3))
    with pytest.raises(ValidationError, match="no column for input field 'input'"):
        evaluate(digits_reg, ["digits@1"], bad, options=FAST)
    np.savez(bad, input=np.zeros((3, 8)), target=np.zeros(3))
    with pytest.raises(ValidationError, match="'input'"):
        evaluate(digits_reg, ["digits@1"], bad, options=FAST)
    assert digits_reg.evaluations("digits") == []


def test_candidates_of_different_models(digits_reg: Any, digits_npz: Path, tmp_path: Path) -> None:
    from sklearn.naive_bayes import GaussianNB

    from modelrunner import save_model

    x = np.random.default_rng(0).random((20, 64))
    save_model(GaussianNB().fit(x, np.arange(20) % 2), tmp_path / "other", name="other", sample=x[:2])
    digits_reg.push(tmp_path / "other")
    with pytest.raises(InvalidArgument, match=r"candidates of different models \(digits, other\)"):
        evaluate(digits_reg, ["digits@1", "other@1"], digits_npz, options=FAST)


def test_bundle_paths_and_regression_task(tmp_path: Path, reg: Any) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from modelrunner import save_model

    x, y = load_diabetes(return_X_y=True)
    save_model(Ridge().fit(x[:300], y[:300]), tmp_path / "ridge", name="diabetes", sample=x[:3])
    np.savez(tmp_path / "d.npz", input=x[300:], target=y[300:])
    run = evaluate(reg, [str(tmp_path / "ridge")], tmp_path / "d.npz", ["r2>=0.3", "rmse<=70"], options=FAST)
    result = run.results[0]
    pred = Ridge().fit(x[:300], y[:300]).predict(x[300:])
    assert run.task is Task.REGRESSION
    assert result.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y[300:], pred))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y[300:], pred))
    assert result.evaluation_id is None  # a bundle path is not a registry version: nothing stored


def test_served_speed_through_real_http(digits_reg: Any, digits_npz: Path) -> None:
    options = Options(single_calls=20, load=LoadSpec(requests=150, concurrency=4, warmup=10))
    run = evaluate(
        digits_reg,
        ["digits@2", "digits@3"],
        digits_npz,
        ["p99_ms<=5000", "qps>=1", "error_rate<=0"],
        options=options,
    )
    for r in run.results:
        m = r.metrics
        assert m["error_rate"] == 0 and m["qps"] > 1 and 0 < m["p50_ms"] <= m["p99_ms"]
        assert len(r.latencies["served"]) == 150 and r.passed
    assert run.served


def test_a_failing_model_is_one_clear_error(reg: Any, tmp_path: Path, digits_npz: Path) -> None:
    from modelrunner import save_model
    from support.eval_models import Broken

    save_model(
        Broken(), tmp_path / "broken", name="broken", sample={"input": np.zeros((2, 64))}, flavor="python"
    )
    reg.push(tmp_path / "broken")
    with pytest.raises(InvalidArgument, match="broken@1: predict failed: RuntimeError: model bug"):
        evaluate(reg, ["broken@1"], digits_npz, options=FAST)
    assert reg.evaluations("broken") == []
