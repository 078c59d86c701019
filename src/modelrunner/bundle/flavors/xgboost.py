"""xgboost flavor: a ``Booster`` or a sklearn-API model (``XGBClassifier``, ``XGBRegressor``, ...).

Saved in xgboost's own format (``model.ubj``, via ``save_model``; no pickle). Sklearn-API classifiers give
``label`` and ``proba`` like the sklearn flavor, regressors ``prediction``; a raw ``Booster`` gives
``prediction`` (what ``inplace_predict`` returns: values, or class probabilities for ``multi:softprob``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import Columns, Flavor, PredictFn, to_matrix, type_module
from modelrunner.bundle.flavors.sklearn import predict_fn
from modelrunner.errors import BundleError, FlavorError, require

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

MODEL_FILE = "model.ubj"


def _matches(obj: Any) -> bool:
    return type_module(obj) == "xgboost" and (hasattr(obj, "save_model") and hasattr(obj, "predict"))


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    xgb = require("xgboost", "xgboost")
    if isinstance(obj, xgb.Booster):
        obj.save_model(str(directory / MODEL_FILE))
        return {"file": MODEL_FILE, "api": "booster"}
    if not isinstance(obj, xgb.XGBModel):
        raise FlavorError(f"xgboost flavor cannot save a {type(obj).__name__}")
    obj.save_model(str(directory / MODEL_FILE))
    kind = "classifier" if isinstance(obj, xgb.XGBClassifier) else "regressor"
    options: dict[str, Any] = {
        "file": MODEL_FILE,
        "api": "sklearn",
        "class": type(obj).__name__,
        "kind": kind,
    }
    if kind == "classifier":
        options["proba"] = True
        options["classes"] = np.asarray(obj.classes_).tolist()
    return options


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    xgb = require("xgboost", "xgboost")
    opts = manifest.flavor_options
    path = directory / str(opts.get("file", MODEL_FILE))
    if not path.is_file():
        raise BundleError(f"xgboost bundle is missing {path.name}")
    if opts.get("api") == "booster":
        booster = xgb.Booster(model_file=str(path))
        return _booster_fn(booster, manifest)
    cls = getattr(xgb, str(opts.get("class", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, xgb.XGBModel)):
        raise BundleError(f"xgboost bundle names an unknown model class {opts.get('class')!r}")
    model = cls()
    model.load_model(str(path))
    return predict_fn(model, manifest, str(opts.get("kind", "regressor")), bool(opts.get("proba", False)))


def _booster_fn(booster: Any, manifest: Manifest) -> PredictFn:
    fields = manifest.contract.inputs
    names = booster.feature_names

    def predict(columns: Columns) -> Columns:
        return {"prediction": np.asarray(booster.inplace_predict(to_matrix(columns, fields, names)))}

    return predict


FLAVOR = Flavor(
    name="xgboost",
    extra="xgboost",
    packages=("xgboost",),
    matches=_matches,
    save=_save,
    load=_load,
    batch_safe=True,
)
