"""Runner fixtures: a real SQLite registry under a temporary MODELRUNNER_HOME, hand-made bundles and the
in-test loader that builds small predictors from them (see ``support.runner_fakes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.runner_fakes import Loader, write_bundle


@pytest.fixture
def push(reg: Any, tmp_path: Path) -> Any:
    """``push(name, tag, mode="ok", inputs=("x",), alias=None) -> ModelVersion``."""
    counter = iter(range(10_000))

    def _push(
        name: str, tag: int, mode: str = "ok", inputs: tuple[str, ...] = ("x",), alias: str | None = None
    ) -> Any:
        folder = write_bundle(tmp_path / f"b{next(counter)}", name, tag, mode, inputs)
        return reg.push(folder, alias=alias)

    return _push


@pytest.fixture
def loader() -> Loader:
    return Loader()
