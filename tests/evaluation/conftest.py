"""Evaluation fixtures: small digits candidates saved once per session, a SQLite registry per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.fixture(scope="session")
def digits_npz(digits_split: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The held-out digits rows as ``input`` + ``target`` (what examples/digits/train.py writes)."""
    _, _, x_test, y_test = digits_split
    path = tmp_path_factory.mktemp("data") / "test.npz"
    np.savez(path, input=x_test, target=y_test)
    return path


@pytest.fixture(scope="session")
def digits_bundles(digits_split: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``weak`` (depth-3 tree, accuracy 0.45), ``good`` (naive Bayes, 0.889), ``good2`` (naive Bayes, 0.879).

    Models that fit in milliseconds: the machine is small and shared."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    from modelrunner import save_model

    x_train, y_train, _, _ = digits_split
    root = tmp_path_factory.mktemp("bundles")
    models = {
        "good": GaussianNB(var_smoothing=0.01),
        "weak": DecisionTreeClassifier(max_depth=3, random_state=0),
        "good2": GaussianNB(var_smoothing=0.5),
    }
    out = {}
    for key, model in models.items():
        out[key] = root / f"digits-{key}"
        save_model(model.fit(x_train, y_train), out[key], name="digits", sample=x_train[:5], license="MIT")
    return out


@pytest.fixture
def digits_reg(reg: Any, digits_bundles: dict[str, Path]) -> Any:
    """A registry with digits@1 = weak (production), digits@2 = good, digits@3 = good2."""
    reg.push(digits_bundles["weak"], alias="production", actor="tester")
    reg.push(digits_bundles["good"], actor="tester")
    reg.push(digits_bundles["good2"], actor="tester")
    return reg
