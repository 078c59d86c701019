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
from modelrunner.errors import BundleError, FlavorError, ValidationError, require

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


_COMPOSITE = frozenset({"estimator", "estimators", "base_estimator", "steps", "transformers"})
"""Parameters that make an estimator a composite of others (left to scikit-learn's own checks)."""


def refuses_non_finite(model: Any) -> bool:
    """True for one scikit-learn estimator (not a pipeline or other composite) whose tags say it refuses NaN
    and infinity: its input check is then done by :func:`checked_call` (the same refusal, ~10 us less per
    1-row call than scikit-learn's). Older scikit-learn (no public ``get_tags``): False."""
    get_tags = getattr(sys.modules.get("sklearn.utils"), "get_tags", None)
    if get_tags is None or type_module(model) != "sklearn":
        return False
    try:
        params = model.get_params(deep=False)
        if _COMPOSITE.intersection(params) or any(isinstance(v, _base_estimator()) for v in params.values()):
            return False  # a meta-estimator (calibration, one-vs-rest): its inner calls check their arrays
        return not get_tags(model).input_tags.allow_nan
    except Exception:  # noqa: BLE001 - tags that cannot be read: leave scikit-learn's check on
        return False


def _base_estimator() -> type:
    return require("sklearn.base", "sklearn").BaseEstimator  # type: ignore[no-any-return]


def checked_call(fn: Any, x: Any, columns: Columns) -> Any:
    """``fn(x)`` for a model that refuses NaN and infinity (:func:`refuses_non_finite`): a float matrix is
    proven finite here (a ValidationError naming the input and row otherwise, a 422 rather than scikit-learn's
    ValueError), then ``fn`` runs with scikit-learn's ``assume_finite`` set for this thread during the call
    (its configuration is per thread), so the check is not done twice."""
    if type(x) is not np.ndarray or x.dtype.kind != "f":
        return fn(x)  # a DataFrame, integers, booleans, objects: scikit-learn checks them as before
    if not np.isfinite(x).all():
        raise _non_finite(columns)
    sklearn = sys.modules["sklearn"]
    before = sklearn.get_config()["assume_finite"]
    sklearn.set_config(assume_finite=True)
    try:
        return fn(x)
    finally:
        sklearn.set_config(assume_finite=before)


def _non_finite(columns: Columns) -> ValidationError:
    for name, col in columns.items():
        arr = np.asarray(col)
        bad = ~np.isfinite(arr) if arr.dtype.kind == "f" else None
        if bad is not None and bad.any():
            row = int(np.argwhere(bad)[0][0])
            return ValidationError(
                f"row {row}: input {name!r} is NaN or infinite; this model accepts finite numbers only",
                field=name,
            )
    return ValidationError("the input is NaN or infinite somewhere; this model accepts finite numbers only")


def predict_fn(model: Any, manifest: Manifest, kind: str, proba: bool) -> PredictFn:
    """A predict function over an in-memory sklearn-API model (used by xgboost/lightgbm wrappers too)."""
    fields = manifest.contract.inputs
    names = getattr(model, "feature_names_in_", None)
    feature_names = [str(n) for n in names] if names is not None else None
    matrix = matrix_fn(fields, feature_names)
    finite = refuses_non_finite(model)

    if kind == "classifier" and proba and _proba_decides(model):
        classes = np.asarray(model.classes_)
        predict_proba = model.predict_proba

        def predict_from_proba(columns: Columns) -> Columns:
            x = matrix(columns)
            p = checked_call(predict_proba, x, columns) if finite else predict_proba(x)
            return {"label": classes[p.argmax(axis=1)], "proba": p}  # label_outputs, both arrays already

        return predict_from_proba

    def outputs(x: Any) -> Columns:
        if kind == "classifier":
            return label_outputs(model.predict(x), model.predict_proba(x) if proba else None)
        if kind == "regressor":
            return {"prediction": np.asarray(model.predict(x))}
        return {"output": np.asarray(model.transform(x))}

    def predict(columns: Columns) -> Columns:
        x = matrix(columns)
        return checked_call(outputs, x, columns) if finite else outputs(x)

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
