"""Onboarding fixtures: MLflow model folders written once per module, an isolated MODELRUNNER_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _home(tmp_home: Path) -> Path:
    return tmp_home


@pytest.fixture(scope="module")
def mlflow_frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from support.onboard_helpers import write_sklearn_frame

    path = tmp_path_factory.mktemp("mlflow") / "frame"
    return path, write_sklearn_frame(path)


@pytest.fixture(scope="module")
def mlflow_pyfunc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.onboard_helpers import write_pyfunc

    path = tmp_path_factory.mktemp("mlflow") / "pyfunc"
    write_pyfunc(path)
    return path
