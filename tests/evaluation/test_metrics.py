import numpy as np
import pytest
from sklearn import metrics as skm

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import InvalidArgument
from modelrunner.evaluation import metrics as m
from modelrunner.evaluation.metrics import Task

RNG = np.random.default_rng(7)


LABEL = Field(name="label", dtype=DType.INT64)


def _contract(*outputs: Field) -> Contract:
    return Contract.build([Field(name="input", dtype=DType.FLOAT32, shape=(4,))], list(outputs))


def test_classification_matches_sklearn() -> None:
    y = RNG.integers(0, 5, 300)
    p = np.where(RNG.random(300) < 0.7, y, RNG.integers(0, 5, 300))
    p[p == 4] = 3  # class 4 never predicted: F1 of that class is 0
    assert m.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert m.macro_f1(y, p) == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    labels, cm = m.confusion_matrix(y, p)
    assert labels == [0, 1, 2, 3, 4]
    assert np.array_equal(np.array(cm), skm.confusion_matrix(y, p))


def test_string_labels_and_log_loss_match_sklearn() -> None:
    classes = np.array(["cat", "dog", "eel"], dtype=object)
    y = classes[RNG.integers(0, 3, 200)]
    raw = RNG.random((200, 3)) + np.eye(3)[[list(classes).index(v) for v in y]]
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = classes[np.argmax(proba, axis=1)]
    found = m.proba_classes(y, pred, proba)
    assert found is not None and list(found) == ["cat", "dog", "eel"]
    assert m.log_loss(y, proba, found) == pytest.approx(skm.log_loss(y, proba, labels=list(classes)))
    assert m.macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))


def test_log_loss_with_a_class_missing_from_the_test_set() -> None:
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.6, 0.2, 0.2], [0.2, 0.5, 0.3]])
    pred = np.argmax(proba, axis=1)
    classes = m.proba_classes(y, pred, proba)
    assert classes is not None and list(classes) == [0, 1, 2]
    assert m.log_loss(y, proba, classes) == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))


def test_regression_matches_sklearn() -> None:
    y = RNG.normal(size=100)
    p = y + RNG.normal(scale=0.3, size=100)
    assert m.rmse(y, p) == pytest.approx(skm.root_mean_squared_error(y, p))
    assert m.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert m.r2(y, p) == pytest.approx(skm.r2_score(y, p))
    y2, p2 = RNG.normal(size=(50, 2)), RNG.normal(size=(50, 2))
    assert m.rmse(y2, p2) == pytest.approx(skm.root_mean_squared_error(y2, p2))
    assert m.r2(y2, p2) == pytest.approx(skm.r2_score(y2, p2))
    assert m.r2(np.ones(5), np.ones(5)) == 1.0


def test_ocr_exact_match_and_cer() -> None:
    assert m.edit_distance("kitten", "sitting") == 3
    assert m.edit_distance("", "abc") == 3 and m.edit_distance("same", "same") == 0
    truth = np.array(["hello", "world", "ab"], dtype=object)
    pred = np.array(["hello", "word", "abc"], dtype=object)
    assert m.exact_match(truth, pred) == pytest.approx(1 / 3)
    assert m.cer(truth, pred) == pytest.approx(2 / 12)


def test_infer_task_and_prediction_field() -> None:
    cls = _contract(LABEL, Field(name="proba", dtype=DType.FLOAT64, shape=(3,)))
    reg = _contract(Field(name="prediction", dtype=DType.FLOAT64))
    ocr = _contract(Field(name="text", dtype=DType.STRING))
    assert m.infer_task(cls) is Task.CLASSIFICATION
    assert m.prediction_field(cls, Task.CLASSIFICATION) == "label"
    assert m.infer_task(reg) is Task.REGRESSION and m.prediction_field(reg, Task.REGRESSION) == "prediction"
    assert m.infer_task(ocr) is Task.OCR and m.prediction_field(ocr, Task.OCR) == "text"
    assert m.infer_task(_contract(Field(name="prediction", dtype=DType.INT64))) is Task.CLASSIFICATION
    with pytest.raises(InvalidArgument, match="pass --task"):
        m.infer_task(_contract(Field(name="a", dtype=DType.FLOAT32), Field(name="b", dtype=DType.FLOAT32)))
    assert m.parse_task("Regression") is Task.REGRESSION
    with pytest.raises(InvalidArgument, match="unknown task 'vision'"):
        m.parse_task("vision")


def test_compute_metrics_per_task() -> None:
    cls = _contract(LABEL, Field(name="proba", dtype=DType.FLOAT64, shape=(2,)))
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    out = {"label": np.argmax(proba, axis=1), "proba": proba}
    values = m.compute_metrics(Task.CLASSIFICATION, y, out, cls)
    assert values["accuracy"] == 0.75 and set(values) == {"accuracy", "macro_f1", "log_loss"}
    no_proba = m.compute_metrics(
        Task.CLASSIFICATION, y, {"label": out["label"]}, _contract(Field(name="label", dtype=DType.INT64))
    )
    assert "log_loss" not in no_proba
    with pytest.raises(InvalidArgument, match="returned 3 predictions for 4 rows"):
        m.compute_metrics(Task.CLASSIFICATION, y, {"label": out["label"][:3]}, cls)


def rate_of_zeros(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_pred) == 0))


def broken(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    raise RuntimeError("boom")


def test_custom_metrics_by_import_path() -> None:
    here = __name__
    metric = m.load_custom_metric(f"{here}:rate_of_zeros")
    assert metric.name == "rate_of_zeros"
    named = m.load_custom_metric(f"zeros={here}:rate_of_zeros")
    assert named.name == "zeros"
    reg = _contract(Field(name="label", dtype=DType.INT64))
    values = m.compute_metrics(
        Task.CLASSIFICATION, np.array([0, 1]), {"label": np.array([0, 0])}, reg, [metric, named]
    )
    assert values["rate_of_zeros"] == 1.0 and values["zeros"] == 1.0
    with pytest.raises(InvalidArgument, match="custom metric 'broken' failed: RuntimeError: boom"):
        m.compute_metrics(
            Task.CLASSIFICATION,
            np.array([0]),
            {"label": np.array([0])},
            reg,
            [m.load_custom_metric(f"{here}:broken")],
        )
    for spec, msg in [
        ("nodots", "expected 'pkg.module:function'"),
        ("no_such_mod_x:f", "cannot import"),
        (f"{here}:missing", "has no function 'missing'"),
    ]:
        with pytest.raises(InvalidArgument, match=msg):
            m.load_custom_metric(spec)
