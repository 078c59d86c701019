"""Bundle test fixtures: small fitted models on the sklearn toy datasets; an isolated MODELRUNNER_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own MODELRUNNER_HOME and runs outside any git repository."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x, y


@pytest.fixture(scope="session")
def digits_lr(digits: tuple[np.ndarray, np.ndarray]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    return LogisticRegression(max_iter=200).fit(x[:600], y[:600])


@pytest.fixture(scope="session")
def iris_frame() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()
