"""The demo's trainer for ``modelrunner train``: ``train(data, base) -> model`` and the original data set.

    modelrunner train digits --trainer examples/drift/trainer.py:train \
        --data examples/drift/trainer.py:original

``data.X``/``data.y`` are the original training rows followed by the labelled rows of the feedback log;
``base`` is the model serving now (the scikit-learn object). An RBF SVC is refitted on all of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from shift import split
from sklearn.svm import SVC


def make_model() -> Any:
    return SVC(gamma="scale")


def original() -> tuple[np.ndarray, np.ndarray]:
    """The training half of the digits split: what version 1 was trained on."""
    x_train, _, y_train, _ = split()
    return x_train, y_train


def train(data: Any, base: Any) -> Any:
    params = base.get_params() if hasattr(base, "get_params") else {}
    model = make_model().set_params(**{k: v for k, v in params.items() if k in ("C", "gamma", "kernel")})
    return model.fit(data.X, np.asarray(data.y).astype(np.int64))
