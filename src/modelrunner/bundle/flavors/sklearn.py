"""scikit-learn flavor: any estimator or Pipeline, saved with joblib (a pickle).

Outputs: classifiers and clusterers -> ``label`` (``predict``) plus ``proba`` (``predict_proba``, shape
(n, classes)) when the model has it; other estimators with ``predict`` -> ``prediction``; transformers
without ``predict`` -> ``output`` (``transform``). Loading a pickle runs code: only load bundles you trust
(the registry verifies each bundle's sha256, which guards integrity, not intent).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import (
    Columns,
    Flavor,
    PredictFn,
    label_outputs,
    matrix_fn,
    type_module,
)
from modelrunner.errors import BundleError, FlavorError, require

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

MODEL_FILE = "model.joblib"


def _matches(obj: Any) -> bool:
    """sklearn's own estimators, and any ``BaseEstimator`` subclass (sklearn is imported already then)."""
    base = sys.modules.get("sklearn.base")
    is_estimator = type_module(obj) == "sklearn" or (
        base is not None and isinstance(obj, base.BaseEstimator) and not isinstance(obj, type)
    )
    return is_estimator and (hasattr(obj, "predict") or hasattr(obj, "transform"))


def _kind(model: Any) -> str:
    sk_base = require("sklearn.base", "sklearn")
    if hasattr(model, "predict"):
        if sk_base.is_classifier(model) or sk_base.is_clusterer(model):
            return "classifier"
        return "regressor"
    if hasattr(model, "transform"):
        return "transformer"
    raise FlavorError(f"{type(model).__name__} has neither predict nor transform; cannot serve it")


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    joblib = require("joblib", "sklearn")
    kind = _kind(obj)
    joblib.dump(obj, directory / MODEL_FILE)
    options: dict[str, Any] = {"file": MODEL_FILE, "kind": kind}
    if kind == "classifier":
        options["proba"] = hasattr(obj, "predict_proba")
        classes = getattr(obj, "classes_", None)
        if isinstance(classes, np.ndarray) and classes.ndim == 1:
            options["classes"] = classes.tolist()
    return options


# Classifiers whose ``predict`` is exactly ``classes_[argmax(predict_proba)]``: for them one call answers
# both outputs, which halves sklearn's per-call input checking on the single-row hot path.
_ARGMAX_CLASSIFIERS = frozenset(
    {
        "LogisticRegression",
        "LogisticRegressionCV",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "MLPClassifier",
        "GaussianNB",
        "MultinomialNB",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "CalibratedClassifierCV",  # e.g. the OCR example's recogniser (a calibrated SVC): predict_proba twice
    }
)


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if isinstance(steps, list) and steps else model


def _proba_decides(model: Any) -> bool:
    final = _final_estimator(model)
    classes = getattr(model, "classes_", None)
    return (
        type_module(final) == "sklearn"
        and type(final).__name__ in _ARGMAX_CLASSIFIERS
        and isinstance(classes, np.ndarray)
        and classes.ndim == 1
    )


def predict_fn(model: Any, manifest: Manifest, kind: str, proba: bool) -> PredictFn:
    """A predict function over an in-memory sklearn-API model (used by xgboost/lightgbm wrappers too)."""
    fields = manifest.contract.inputs
    names = getattr(model, "feature_names_in_", None)
    feature_names = [str(n) for n in names] if names is not None else None
    matrix = matrix_fn(fields, feature_names)

    if kind == "classifier" and proba and _proba_decides(model):
        classes = np.asarray(model.classes_)

        def predict_from_proba(columns: Columns) -> Columns:
            p = model.predict_proba(matrix(columns))
            return {"label": classes[p.argmax(axis=1)], "proba": p}  # label_outputs, both arrays already

        return predict_from_proba

    def predict(columns: Columns) -> Columns:
        x = matrix(columns)
        if kind == "classifier":
            return label_outputs(model.predict(x), model.predict_proba(x) if proba else None)
        if kind == "regressor":
            return {"prediction": np.asarray(model.predict(x))}
        return {"output": np.asarray(model.transform(x))}

    return predict


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    joblib = require("joblib", "sklearn")
    require("sklearn", "sklearn")
    opts = manifest.flavor_options
    path = directory / str(opts.get("file", MODEL_FILE))
    if not path.is_file():
        raise BundleError(f"sklearn bundle is missing {path.name}")
    model = joblib.load(path)
    return predict_fn(model, manifest, str(opts.get("kind", "classifier")), bool(opts.get("proba", False)))


FLAVOR = Flavor(
    name="sklearn",
    extra="sklearn",
    packages=("scikit-learn", "joblib"),
    matches=_matches,
    save=_save,
    load=_load,
    pickle=True,
    batch_safe=True,
)
