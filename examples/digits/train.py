"""Train three digit classifiers, save them as bundles and push them to the registry.

    python examples/digits/train.py [--out bundles] [--name digits] [--no-push]

Uses scikit-learn's bundled digits data (8x8 images as 64 values 0..16). Writes:
- ``<out>/digits-lr``, ``<out>/digits-svc``, ``<out>/digits-rf``: one bundle per candidate;
- ``examples/digits/test.npz``: the held-out test set (``input``, ``target``) used for evaluation;
then pushes the three bundles as new versions of ``digits`` with alias ``production`` -> the logistic
regression and ``staging`` -> the SVC. Re-running pushes new versions and moves the aliases.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

log = logging.getLogger("examples.digits")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parents[1] / "bundles"
TEST_SET = HERE / "test.npz"
SEED = 0

# key -> (description, alias it gets after the push or None)
CANDIDATES: dict[str, tuple[str, str | None]] = {
    "lr": ("Logistic regression on standardised pixels", "production"),
    "svc": ("RBF support vector classifier with calibrated probabilities", "staging"),
    "rf": ("Random forest of 100 trees", None),
}


@dataclass
class Trained:
    """One fitted candidate and where its bundle was saved."""

    key: str
    model: Any
    accuracy: float
    bundle: Path
    alias: str | None


def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits data split 80/20 (stratified): ``x_train, x_test, y_train, y_test``."""
    digits = load_digits()
    x = digits.data.astype(np.float64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return x_train, x_test, y_train, y_test


def make_candidate(key: str, seed: int = SEED) -> Any:
    """An unfitted estimator for ``key`` (``lr``, ``svc`` or ``rf``)."""
    if key == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if key == "svc":
        # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its documented replacement.
        svc = make_pipeline(StandardScaler(), SVC(random_state=seed))
        return CalibratedClassifierCV(svc, ensemble=False)
    if key == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    raise ValueError(f"unknown candidate {key!r}; expected one of {sorted(CANDIDATES)}")


def write_test_set(x_test: np.ndarray, y_test: np.ndarray, path: Path = TEST_SET) -> Path:
    """Save the held-out rows as ``input`` (n, 64) float64 and ``target`` (n,) int64."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, input=x_test, target=y_test)
    return path


def train(
    out: Path = DEFAULT_OUT, *, name: str = "digits", seed: int = SEED, test_set: Path = TEST_SET
) -> list[Trained]:
    """Fit every candidate, score it on the test split and save it as a bundle under ``out``."""
    from modelrunner import save_model

    x_train, x_test, y_train, y_test = load_split(seed)
    write_test_set(x_test, y_test, test_set)
    trained = []
    for key, (description, alias) in CANDIDATES.items():
        started = time.perf_counter()
        model = make_candidate(key, seed).fit(x_train, y_train)
        accuracy = float((model.predict(x_test) == y_test).mean())
        bundle = out / f"{name}-{key}"
        save_model(
            model,
            bundle,
            name=name,
            sample=x_train[:5],
            license="MIT",
            description=description,
            metrics={"accuracy": accuracy},
            training_data=x_train,
            tags={"candidate": key},
        )
        log.info("%s: accuracy %.4f (%.1fs) -> %s", key, accuracy, time.perf_counter() - started, bundle)
        trained.append(Trained(key, model, accuracy, bundle, alias))
    return trained


def push(trained: list[Trained], registry: Any = None, *, name: str = "digits") -> dict[str, Any]:
    """Push every bundle as a new version of ``name``; move the aliases; return key -> ModelVersion."""
    from modelrunner import Registry

    registry = registry or Registry.from_env()
    pushed = {}
    for item in trained:
        mv = registry.push(item.bundle, name=name, tags={"candidate": item.key})
        pushed[item.key] = mv
        if item.alias:
            registry.set_alias(name, item.alias, mv.version)
        log.info("pushed %s version %d%s", name, mv.version, f" as {item.alias}" if item.alias else "")
    return pushed


def run(
    out: Path = DEFAULT_OUT,
    *,
    name: str = "digits",
    registry: Any = None,
    do_push: bool = True,
    test_set: Path = TEST_SET,
) -> dict[str, Any]:
    """Train, save and (unless ``do_push`` is false) push; return ``{"trained": [...], "pushed": {...}}``."""
    trained = train(out, name=name, test_set=test_set)
    pushed = push(trained, registry, name=name) if do_push else {}
    return {"trained": trained, "pushed": pushed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the bundles")
    parser.add_argument("--name", default="digits", help="registry model name")
    parser.add_argument("--no-push", action="store_true", help="only train and save the bundles")
    parser.add_argument("--test-set", type=Path, default=TEST_SET, help="where to write the test set (.npz)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    result = run(args.out, name=args.name, do_push=not args.no_push, test_set=args.test_set)
    for item in result["trained"]:
        mv = result["pushed"].get(item.key)
        version = f"  {args.name} version {mv.version}" if mv else ""
        alias = f"  @{item.alias}" if item.alias and mv else ""
        log.info("%-4s accuracy=%.4f  %s%s%s", item.key, item.accuracy, item.bundle, version, alias)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
