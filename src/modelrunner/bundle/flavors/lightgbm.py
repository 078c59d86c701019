"""lightgbm flavor: a ``Booster`` or a sklearn-API model (``LGBMClassifier``, ``LGBMRegressor``, ...).

Saved in LightGBM's text format (``model.txt``, via ``model_to_string``; no pickle). Classifiers give
``label`` (from the saved class list) and ``proba`` (n, classes); regressors and raw boosters give
``prediction``. LightGBM's predict is not documented as thread-safe, so calls are serialised with a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import Columns, Flavor, PredictFn, label_outputs, to_matrix, type_module
from modelrunner.errors import BundleError, FlavorError, require

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

MODEL_FILE = "model.txt"


def _matches(obj: Any) -> bool:
    return type_module(obj) == "lightgbm" and hasattr(obj, "predict")


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    lgb = require("lightgbm", "lightgbm")
    if isinstance(obj, lgb.Booster):
        booster, options = obj, {"api": "booster", "kind": "regressor"}
    elif isinstance(obj, lgb.LGBMModel):
        booster = obj.booster_
        kind = "classifier" if isinstance(obj, lgb.LGBMClassifier) else "regressor"
        options = {"api": "sklearn", "class": type(obj).__name__, "kind": kind}
        if kind == "classifier":
            options["classes"] = np.asarray(obj.classes_).tolist()
    else:
        raise FlavorError(f"lightgbm flavor cannot save a {type(obj).__name__}")
    (directory / MODEL_FILE).write_text(booster.model_to_string(), encoding="utf-8")
    return {"file": MODEL_FILE, **options}


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    lgb = require("lightgbm", "lightgbm")
    opts = manifest.flavor_options
    path = directory / str(opts.get("file", MODEL_FILE))
    if not path.is_file():
        raise BundleError(f"lightgbm bundle is missing {path.name}")
    booster = lgb.Booster(model_str=path.read_text(encoding="utf-8"))
    fields = manifest.contract.inputs
    classes = np.asarray(opts["classes"]) if opts.get("kind") == "classifier" else None
    lock = threading.Lock()

    def predict(columns: Columns) -> Columns:
        x = to_matrix(columns, fields)
        with lock:
            raw = np.asarray(booster.predict(x))
        if classes is None:
            return {"prediction": raw}
        proba = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
        return label_outputs(classes[np.argmax(proba, axis=1)], proba)

    return predict


FLAVOR = Flavor(
    name="lightgbm",
    extra="lightgbm",
    packages=("lightgbm",),
    matches=_matches,
    save=_save,
    load=_load,
    batch_safe=True,
)
