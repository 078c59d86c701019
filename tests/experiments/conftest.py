"""Experiment fixtures: digits bundles (good, and one trained on shuffled labels) saved once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.fixture(scope="session")
def digits_models(digits_data: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``weak`` (depth-3 tree, ~0.5), ``good`` (naive Bayes, ~0.89), ``bad`` (trained on shuffled labels,
    ~0.1): models that fit in milliseconds."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    from modelrunner import save_model

    x, y, _, _ = digits_data
    shuffled = np.random.default_rng(0).permutation(y)
    root = tmp_path_factory.mktemp("exp-bundles")
    out = {}
    for key, model in (
        ("good", GaussianNB(var_smoothing=0.01).fit(x, y)),
        ("weak", DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)),
        ("bad", GaussianNB(var_smoothing=0.01).fit(x, shuffled)),
    ):
        out[key] = root / f"digits-{key}"
        save_model(model, out[key], name="digits", sample=x[:5], license="MIT")
    return out
