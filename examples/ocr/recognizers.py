"""Recogniser candidates for the OCR pipeline, trained on the training split only, and line metrics.

Training and serving share preprocessing, not code paths: training crops are produced by the very
segmenter that the pipeline serves (run over generated *training* lines), plus the training split's original
8x8 images, so the recogniser sees at training time what it will see in the pipeline.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from generate import Line, Sources
from segmenter import NoDigits, segment
from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

log = logging.getLogger("ocr.recognizers")


def _scaled(model: ClassifierMixin) -> ClassifierMixin:
    """``model`` behind a standard scaler, so a linear model converges quickly."""
    return make_pipeline(StandardScaler(), model)


def _cnn() -> Any:
    from cnn import CnnRecognizer  # torch: imported only when the candidate is trained

    return CnnRecognizer()


CANDIDATES: dict[str, Callable[[], Any]] = {
    "svc": lambda: CalibratedClassifierCV(SVC(gamma=0.001, C=10.0), ensemble=False, cv=3),
    "knn": lambda: KNeighborsClassifier(n_neighbors=3),
    "forest": lambda: RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
    "logreg": lambda: _scaled(LogisticRegression(C=0.1, max_iter=100)),
}
"""Each candidate's constructor; every one predicts labels and class probabilities. ``cnn`` (cnn.py, the
torch flavor) is one when torch is installed, unless ``OCR_CNN=0``."""
if importlib.util.find_spec("torch") is not None and os.environ.get("OCR_CNN", "1") != "0":
    CANDIDATES["cnn"] = _cnn


def training_set(lines: Sequence[Line], sources: Sources) -> tuple[np.ndarray, np.ndarray]:
    """Crops of training lines cut by the segmenter (lines it mis-counts are skipped) + the source images."""
    xs = [sources.images.reshape(len(sources.labels), -1)]
    ys = [np.asarray(sources.labels)]
    skipped = 0
    for line in lines:
        try:
            boxes, crops = segment(line.image)
        except NoDigits:
            boxes, crops = np.zeros((0, 4)), np.zeros((0, 64))
        if len(boxes) != len(line.text):
            skipped += 1
            continue
        xs.append(crops)
        ys.append(np.array([int(c) for c in line.text]))
    log.info("training crops from %d lines (%d skipped by the segmenter)", len(lines) - skipped, skipped)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.int64)


def train(name: str, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit the candidate ``name`` on (x, y)."""
    model = CANDIDATES[name]()
    model.fit(x, y)
    return model


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def line_metrics(truths: Sequence[str], preds: Sequence[str]) -> dict[str, float]:
    """Exact-line accuracy and character error rate (edit distance / reference characters)."""
    if not truths:
        return {"exact_line_accuracy": 0.0, "character_error_rate": 0.0, "lines": 0.0}
    exact = sum(t == p for t, p in zip(truths, preds, strict=True))
    errors = sum(edit_distance(t, p) for t, p in zip(truths, preds, strict=True))
    chars = sum(len(t) for t in truths)
    return {
        "exact_line_accuracy": exact / len(truths),
        "character_error_rate": errors / max(chars, 1),
        "lines": float(len(truths)),
    }
