"""The models every server serves, trained once: digits logistic regression and a 2-layer MLP.

``prepare(cache)`` fits both on scikit-learn's bundled digits data (fixed seeds), writes
``<cache>/models/<key>.joblib`` (what the peers load), a modelrunner bundle per model, and the request bodies
(1 row and 100 rows) in each server's wire format. Identical inputs for every server.
"""

from __future__ import annotations

import json
import logging
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench.models")

ROWS = (1, 100)


@dataclass(frozen=True)
class BenchModel:
    key: str  # "lr" or "mlp"
    endpoint: str  # modelrunner endpoint / peer model name
    description: str


MODELS = (
    BenchModel("lr", "digits", "LogisticRegression on digits (64 floats -> 10 classes)"),
    BenchModel("mlp", "mlp", "MLPClassifier (1536, 1536) on digits"),
)


def _fit(key: str, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: speed is measured here, not accuracy
        if key == "lr":
            return LogisticRegression(max_iter=300).fit(x, y)
        return MLPClassifier(hidden_layer_sizes=(1536, 1536), max_iter=10, random_state=0).fit(x, y)


def prepare(cache: Path) -> dict[str, Path]:
    """Fit (once) and save every model; return key -> joblib path."""
    import joblib
    from sklearn.datasets import load_digits

    folder = cache / "models"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_digits(return_X_y=True)
    paths = {}
    for model in MODELS:
        path = folder / f"{model.key}-{zlib.crc32(model.description.encode()):08x}.joblib"  # changed: retrain
        if not path.exists():
            log.info("training %s", model.key)
            joblib.dump(_fit(model.key, x, y), path)
        paths[model.key] = path
    write_bodies(folder / "bodies", x.astype(np.float64))
    return paths


def rows_of(x: np.ndarray, n: int) -> list[list[float]]:
    return [[float(v) for v in row] for row in x[:n]]


def bodies(x: np.ndarray, n: int) -> dict[str, bytes]:
    """Wire format -> request body carrying the first ``n`` digits rows."""
    rows = rows_of(x, n)
    v2 = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [n, 64],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ]
    }
    forms: dict[str, Any] = {
        "modelrunner": {"instances": [{"input": row} for row in rows]},
        "instances": {"instances": rows},  # bare ASGI app, BentoML
        "v2": v2,  # MLServer (Open Inference Protocol)
        "mlflow": {"inputs": rows},  # MLflow scoring server (tensor input)
    }
    return {name: json.dumps(body, separators=(",", ":")).encode() for name, body in forms.items()}


def write_bodies(folder: Path, x: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in ROWS:
        for form, body in bodies(x, n).items():
            (folder / f"{form}-{n}.json").write_bytes(body)


def body_path(cache: Path, form: str, rows: int) -> Path:
    return cache / "models" / "bodies" / f"{form}-{rows}.json"


def push_bundles(
    home: Path, paths: dict[str, Path], models: tuple[BenchModel, ...] | list[BenchModel] = MODELS
) -> None:
    """Save each model as a modelrunner bundle and push it into the registry under ``home``."""
    import joblib
    from sklearn.datasets import load_digits

    from modelrunner import save_model
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    x = load_digits().data.astype(np.float64)
    with Registry(Settings(home=home)) as registry:
        for model in models:
            try:
                registry.resolve(f"{model.endpoint}@1")
                continue
            except Exception:  # noqa: BLE001 - not pushed yet
                pass
            folder = home.parent / "bundles" / model.endpoint
            save_model(
                joblib.load(paths[model.key]),
                folder,
                name=model.endpoint,
                sample=x[:2],
                license="MIT",
                description=model.description,
            )
            registry.push(folder)
