"""Shared pieces of the training tests: a digits model served from the registry, labelled logged traffic,
and trainer files written on the fly."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from modelrunner import save_model
from modelrunner.registry.tables import utcnow
from modelrunner.registry.types import PredictionRecord

SEED = 0


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x, y = d.data.astype(np.float64), d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    return x_tr, x_te, y_tr, y_te


def shift(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """A strong, learnable drift: pixels mirrored left-right plus noise (clipped to 0..16)."""
    rng = np.random.default_rng(seed)
    mirrored = x.reshape(-1, 8, 8)[:, :, ::-1].reshape(-1, 64)
    return np.clip(mirrored + rng.normal(0, 1.0, mirrored.shape), 0, 16)


def serve_digits(registry: Any, root: Path, endpoint: str = "digits") -> Any:
    """Fit a 3-NN on the train split, push it as digits@production, point ``endpoint`` at the alias."""
    x_tr, _, y_tr, _ = split()
    model = KNeighborsClassifier(n_neighbors=3).fit(x_tr, y_tr)
    path = save_model(
        model,
        root / f"digits-{uuid.uuid4().hex[:6]}",
        name="digits",
        sample=x_tr[:5],
        license="MIT",
        training_data=x_tr,
    )
    mv = registry.push(path.path, name="digits", alias="production")
    registry.set_endpoint(endpoint, "digits@production")
    return mv


def log_labelled(
    registry: Any, x: np.ndarray, y: np.ndarray, *, endpoint: str = "digits", version: int | None = 1
) -> None:
    """Log one request per row with its inputs, then send its label as feedback."""
    now = utcnow()
    rows, items = [], []
    for i in range(len(y)):
        rid = uuid.uuid4().hex
        rows.append(
            PredictionRecord(
                request_id=rid,
                endpoint=endpoint,
                variant="production",
                model="digits",
                version=version,
                ts=now,
                latency_ms=1.0,
                outputs={"label": [0]},
                inputs={"input": [x[i].tolist()]},
            )
        )
        items.append((rid, int(y[i])))
    registry.log_predictions(rows)
    registry.record_feedback(endpoint, items)


def write_trainer(folder: Path, body: str, name: str = "my_trainer.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


KNN_TRAINER = """
    from sklearn.neighbors import KNeighborsClassifier

    def train(data, base):
        assert data.feedback_rows > 0 and data.X.shape[1] == 64
        return KNeighborsClassifier(n_neighbors=3).fit(data.X, data.y)
"""
