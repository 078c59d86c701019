"""Pipeline test fixtures: the OCR example built (small) into a throwaway registry, once per session."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from modelrunner.settings import Settings
from support.pipeline_helpers import OcrBuild, load_build_script


@pytest.fixture(scope="session")
def ocr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcrBuild]:
    from modelrunner.registry.registry import Registry

    build = load_build_script()
    home = tmp_path_factory.mktemp("ocr-home")
    settings = Settings(home=home, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0)
    registry = Registry(settings)
    work = home / "work"
    work.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn convergence chatter: accuracy is asserted instead
        result = build.build(registry, work, n_train=150, n_test=60, candidates=("svc", "knn"))
    try:
        yield OcrBuild(home, settings, registry, result)
    finally:
        registry.close()
