"""The OCR pipeline as a candidate: exact match and CER through the pipeline, in-process and served."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.evaluation.evaluate import Options, evaluate
from modelrunner.evaluation.metrics import Task, cer, exact_match
from modelrunner.evaluation.speed import LoadSpec

OCR_DIR = Path(__file__).resolve().parents[2] / "examples" / "ocr"


@pytest.fixture(scope="module")
def ocr_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """digit-segmenter, digit-recognizer (svc) and digits-ocr@1, built small from the example."""
    if str(OCR_DIR) not in sys.path:
        sys.path.insert(0, str(OCR_DIR))
    # examples/ocr/build.py under a name of its own: "build" is also a PyPI package.
    spec = importlib.util.spec_from_file_location("ocr_build", OCR_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    build = sys.modules.get("ocr_build") or importlib.util.module_from_spec(spec)
    if "ocr_build" not in sys.modules:
        sys.modules["ocr_build"] = build
        spec.loader.exec_module(build)
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    home = tmp_path_factory.mktemp("ocr-eval")
    registry = Registry(Settings(home=home))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn convergence chatter
        build.build(registry, home, n_train=150, n_test=10, candidates=("svc",))
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture(scope="module")
def ocr_npz(tmp_path_factory: pytest.TempPathFactory, ocr_registry: Any) -> Path:
    """Unseen test lines: ``image`` (PNG bytes, a numpy bytes array: no pickles) and ``target`` (text)."""
    from generate import make_lines, split_sources

    _, test = split_sources()
    lines = make_lines(test, 30, seed=11)
    path = tmp_path_factory.mktemp("ocr-data") / "lines.npz"
    np.savez(
        path,
        image=np.array([line.png() for line in lines], dtype="S"),
        target=np.array([line.text for line in lines]),
    )
    return path


def test_pipeline_candidate_in_process_and_served(ocr_registry: Any, ocr_npz: Path) -> None:
    options = Options(single_calls=10, load=LoadSpec(requests=30, concurrency=2, warmup=2))
    run = evaluate(
        ocr_registry,
        ["digits-ocr@1"],
        ocr_npz,
        ["cer<=0.1", "exact_match>=0.7", "error_rate<=0"],
        options=options,
    )
    assert run.task is Task.OCR and run.primary == "cer"
    result = run.results[0]
    data = np.load(ocr_npz)
    predicted = result.candidate.load().predict({"image": data["image"].astype(object)})["text"]
    assert result.metrics["cer"] == pytest.approx(cer(data["target"], predicted))
    assert result.metrics["exact_match"] == pytest.approx(exact_match(data["target"], predicted))
    assert result.passed, result.verdict
    assert result.metrics["error_rate"] == 0 and len(result.latencies["served"]) == 30
    stored = ocr_registry.evaluations("digits-ocr", 1)[0]
    assert stored.metrics["cer"] == pytest.approx(result.metrics["cer"]) and stored.passed
