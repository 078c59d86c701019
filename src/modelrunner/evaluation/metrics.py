"""Quality metrics by task (classification, regression, OCR), plus custom metrics by import path.

Everything is plain numpy so the core does not need scikit-learn; the tests check the numbers against
``sklearn.metrics``.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import InvalidArgument

log = logging.getLogger(__name__)


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    OCR = "ocr"


TASK_METRICS: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("accuracy", "macro_f1", "log_loss"),
    Task.REGRESSION: ("rmse", "mae", "r2"),
    Task.OCR: ("exact_match", "cer"),
}
PRIMARY_METRIC: dict[Task, str] = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "rmse", Task.OCR: "cer"}

LABEL_NAMES = ("label", "labels", "class", "y")
PROBA_NAMES = ("proba", "probabilities", "probability", "scores")
TEXT_NAMES = ("text", "transcript", "transcription")
PREDICTION_NAMES = ("prediction", "predictions", "output", "value")


def parse_task(value: str | Task | None) -> Task | None:
    """``None`` stays None (infer later); a name becomes a :class:`Task` or raises InvalidArgument."""
    if value is None or isinstance(value, Task):
        return value
    try:
        return Task(value.strip().lower())
    except ValueError as exc:
        names = ", ".join(t.value for t in Task)
        raise InvalidArgument(f"unknown task {value!r}: expected one of {names}") from exc


def _first(fields: tuple[Field, ...], names: Iterable[str]) -> Field | None:
    by_name = {f.name: f for f in fields}
    return next((by_name[n] for n in names if n in by_name), None)


def infer_task(contract: Contract) -> Task:
    """The task a model's outputs imply: a ``label``/``proba`` output -> classification, a float
    ``prediction`` -> regression, a string ``text`` -> OCR. Raise InvalidArgument when unclear."""
    outs = contract.outputs
    text = _first(outs, TEXT_NAMES)
    if text is not None and text.dtype == DType.STRING:
        return Task.OCR
    if _first(outs, LABEL_NAMES) or _first(outs, PROBA_NAMES):
        return Task.CLASSIFICATION
    pred = _first(outs, PREDICTION_NAMES) or (outs[0] if len(outs) == 1 else None)
    if pred is not None:
        if pred.dtype in (DType.FLOAT16, DType.FLOAT32, DType.FLOAT64):
            return Task.REGRESSION
        return Task.CLASSIFICATION
    names = ", ".join(f.name for f in outs) or "none"
    raise InvalidArgument(f"cannot infer the task from the model's outputs ({names}); pass --task")


def prediction_field(contract: Contract, task: Task) -> str:
    """The output field compared with the target."""
    outs = contract.outputs
    order = {
        Task.CLASSIFICATION: LABEL_NAMES + PREDICTION_NAMES,
        Task.REGRESSION: PREDICTION_NAMES + LABEL_NAMES,
        Task.OCR: TEXT_NAMES + PREDICTION_NAMES,
    }[task]
    found = _first(outs, order)
    if found is None:
        candidates = [f for f in outs if f.name not in PROBA_NAMES]
        if len(candidates) != 1:
            names = ", ".join(f.name for f in outs) or "none"
            raise InvalidArgument(
                f"no output to compare with the target among ({names}) for a {task.value} task"
            )
        found = candidates[0]
    return found.name


def proba_field(contract: Contract) -> str | None:
    found = _first(contract.outputs, PROBA_NAMES)
    return found.name if found is not None else None


# --- classification ------------------------------------------------------------------------------


def _as_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true).reshape(len(y_true)), np.asarray(y_pred).reshape(len(y_pred))
    if (t.dtype.kind in "biuf") != (p.dtype.kind in "biuf"):
        return t.astype(str), p.astype(str)
    return t, p


def class_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Sorted union of the labels seen in the target and the predictions."""
    t, p = _as_labels(y_true, y_pred)
    return np.unique(np.concatenate([t, p]))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _as_labels(y_true, y_pred)
    return float(np.mean(t == p)) if len(t) else math.nan


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _as_labels(y_true, y_pred)
    scores = []
    for c in class_labels(t, p):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else math.nan


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[list[Any], list[list[int]]]:
    """``(labels, matrix)`` with ``matrix[i][j]`` = rows of true label i predicted as j."""
    t, p = _as_labels(y_true, y_pred)
    labels = class_labels(t, p)
    index = {v: i for i, v in enumerate(labels.tolist())}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist(), strict=True):
        m[index[a], index[b]] += 1
    return [_plain(v) for v in labels.tolist()], m.tolist()


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def proba_classes(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> np.ndarray | None:
    """The label of each probability column, or None when it cannot be told with confidence.

    Tries the sorted labels seen, then ``0..k-1``; keeps the one whose argmax agrees with the predicted label.
    """
    k = proba.shape[1]
    t, p = _as_labels(y_true, y_pred)
    options = [class_labels(t, p)]
    if p.dtype.kind in "biu":
        options.append(np.arange(k))
    for classes in options:
        if len(classes) != k:
            continue
        agree = np.mean(classes[np.argmax(proba, axis=1)] == p) if len(p) else 0.0
        if agree >= 0.99:
            return classes
    return None


def log_loss(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean cross-entropy; rows are renormalised and clipped like scikit-learn."""
    t = np.asarray(y_true).reshape(len(y_true))
    if (t.dtype.kind in "biuf") != (classes.dtype.kind in "biuf"):
        t, classes = t.astype(str), classes.astype(str)
    pr = np.asarray(proba, dtype=np.float64)
    eps = np.finfo(pr.dtype).eps
    pr = np.clip(pr, eps, 1 - eps)
    pr = pr / pr.sum(axis=1, keepdims=True)
    index = {v: i for i, v in enumerate(classes.tolist())}
    cols = np.array([index.get(v, -1) for v in t.tolist()])
    if np.any(cols < 0):
        return math.nan
    return float(-np.mean(np.log(pr[np.arange(len(t)), cols])))


# --- regression -----------------------------------------------------------------------------------


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    t = t.reshape(len(t), -1)
    p = p.reshape(len(p), -1)
    if t.shape != p.shape:
        raise InvalidArgument(f"target has shape {t.shape[1:]} per row but the prediction has {p.shape[1:]}")
    return t, p


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.sqrt(np.mean((t - p) ** 2, axis=0))))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.mean(np.abs(t - p), axis=0)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    ss_res = np.sum((t - p) ** 2, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    scores = np.where(ss_tot > 0, 1 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


# --- OCR ------------------------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _texts(values: np.ndarray) -> list[str]:
    out = []
    for v in np.asarray(values, dtype=object).reshape(len(values)).tolist():
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else ("" if v is None else str(v)))
    return out


def exact_match(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _texts(y_true), _texts(y_pred)
    return float(np.mean([a == b for a, b in zip(t, p, strict=True)])) if t else math.nan


def cer(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Character error rate: total edit distance over total reference length."""
    t, p = _texts(y_true), _texts(y_pred)
    total = sum(len(x) for x in t)
    errors = sum(edit_distance(a, b) for a, b in zip(t, p, strict=True))
    return errors / total if total else float(errors > 0)


# --- custom and dispatch --------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomMetric:
    """A user function ``fn(y_true, y_pred) -> float`` loaded from ``pkg.module:function``."""

    name: str
    spec: str
    fn: Callable[[np.ndarray, np.ndarray], float]


def load_custom_metric(spec: str) -> CustomMetric:
    """Load ``pkg.module:function`` or ``name=pkg.module:function``; raise InvalidArgument on failure."""
    name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
    module_name, sep, attr = path.strip().partition(":")
    if not sep or not module_name or not attr:
        raise InvalidArgument(
            f"custom metric {spec!r}: expected 'pkg.module:function' or 'name=pkg.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(f"custom metric {spec!r}: cannot import {module_name!r} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidArgument(f"custom metric {spec!r}: {module_name} has no function {attr!r}")
    metric = name.strip() or attr
    if not metric.isidentifier():
        raise InvalidArgument(f"custom metric {spec!r}: name {metric!r} must be an identifier")
    return CustomMetric(name=metric, spec=spec, fn=fn)


def _custom_value(metric: CustomMetric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    try:
        value = float(metric.fn(y_true, y_pred))
    except Exception as exc:  # noqa: BLE001 - user code: report it as one line
        raise InvalidArgument(
            f"custom metric {metric.name!r} failed: {exc.__class__.__name__}: {exc}"
        ) from exc
    return value


def compute_metrics(
    task: Task,
    y_true: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    contract: Contract,
    custom: Iterable[CustomMetric] = (),
    *,
    classes: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of ``task`` (log-loss only when probabilities exist) plus the custom ones.

    ``classes`` labels the probability columns (as the flavor recorded them); guessed when not given.
    """
    pred = np.asarray(outputs[prediction_field(contract, task)])
    if len(pred) != len(y_true):
        raise InvalidArgument(f"the model returned {len(pred)} predictions for {len(y_true)} rows")
    values: dict[str, float] = {}
    if task is Task.CLASSIFICATION:
        values["accuracy"] = accuracy(y_true, pred)
        values["macro_f1"] = macro_f1(y_true, pred)
        pname = proba_field(contract)
        if pname is not None and pname in outputs:
            proba = np.asarray(outputs[pname])
            if classes is None or proba.ndim != 2 or len(classes) != proba.shape[1]:
                classes = proba_classes(y_true, pred, proba) if proba.ndim == 2 else None
            if classes is not None:
                values["log_loss"] = log_loss(y_true, proba, classes)
            else:
                log.warning("log-loss skipped: cannot tell which class each probability column is")
    elif task is Task.REGRESSION:
        values.update(rmse=rmse(y_true, pred), mae=mae(y_true, pred), r2=r2(y_true, pred))
    else:
        values.update(exact_match=exact_match(y_true, pred), cer=cer(y_true, pred))
    for metric in custom:
        values[metric.name] = _custom_value(metric, y_true, pred)
    return values
