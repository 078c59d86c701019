"""Pipelines in the registry: push, resolve as an endpoint target, identity over step versions, step swaps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelrunner.errors import IncompatibleContract, InvalidArgument, NotFound, PipelineError
from modelrunner.pipelines.package import push_pipeline
from modelrunner.pipelines.targets import PipelineVersion, resolve_target
from modelrunner.runner.loading import build_deployment, load_bundle
from support.pipeline_helpers import OCR_DIR, OcrBuild, load_build_script, push_narrow_recognizer

TARGET = "pipeline:digits-ocr@production"


@contextlib.contextmanager
def recognizer_alias(ocr: OcrBuild, version: int) -> Iterator[None]:
    ocr.registry.set_alias("digit-recognizer", "production", version)
    try:
        yield
    finally:
        ocr.registry.set_alias("digit-recognizer", "production", 1)


def test_pipeline_target_resolves_with_its_step_versions(ocr: OcrBuild) -> None:
    pv = resolve_target(ocr.registry, TARGET)
    assert isinstance(pv, PipelineVersion) and pv.ref == "digits-ocr@1"
    assert pv.step_refs() == {
        "decode": "image.decode_grayscale",
        "segment": "digit-segmenter@1",
        "recognize": "digit-recognizer@1",
        "assemble": "text.join_labels",
    }
    assert pv.sha256 != pv.pipeline.sha256
    assert [f.name for f in pv.contract.outputs] == ["text", "boxes", "confidence"]
    assert resolve_target(ocr.registry, "digits-ocr@production").sha256 == pv.sha256  # prefix optional
    assert resolve_target(ocr.registry, "digit-recognizer@1").flavor == "sklearn"


def test_a_model_is_not_a_pipeline(ocr: OcrBuild) -> None:
    with pytest.raises(InvalidArgument, match="digit-recognizer@1 is a sklearn model, not a pipeline"):
        resolve_target(ocr.registry, "pipeline:digit-recognizer@1")
    with pytest.raises(NotFound):
        resolve_target(ocr.registry, "pipeline:nope@1")


def test_moving_a_step_alias_changes_the_identity(ocr: OcrBuild) -> None:
    before = resolve_target(ocr.registry, TARGET)
    with recognizer_alias(ocr, 2):
        after = resolve_target(ocr.registry, TARGET)
    assert after.ref == before.ref and after.sha256 != before.sha256
    assert after.step_refs()["recognize"] == "digit-recognizer@2"
    assert resolve_target(ocr.registry, TARGET).sha256 == before.sha256


def test_a_breaking_step_swap_is_refused_naming_the_edge(ocr: OcrBuild) -> None:
    narrow = push_narrow_recognizer(ocr)
    with recognizer_alias(ocr, narrow), pytest.raises(IncompatibleContract) as info:
        resolve_target(ocr.registry, TARGET)
    assert "edge segment.crops -> recognize.input: float32[64] does not fit float64[32]" in str(info.value)
    assert info.value.reasons and "recognize.input" in info.value.reasons[0]


def test_runner_loads_and_warms_up_the_pipeline(ocr: OcrBuild) -> None:
    pv = resolve_target(ocr.registry, TARGET)
    predictor, example = load_bundle(ocr.registry, pv)
    try:
        assert example is not None and example["image"][0][:4] == b"\x89PNG"
        out = predictor.predict(example)
        assert out["text"].tolist() == ["818"]  # examples/ocr/example.png
        assert out["boxes"].shape == (1, 3, 4) and out["confidence"].shape == (1, 3, 10)
    finally:
        predictor.close()
    dep = build_deployment("ocr", TARGET, pv, ocr.registry)
    assert dep.ref == "digits-ocr@1" and dep.sha256 == pv.sha256
    dep.close()
    loads = ocr.registry.audit(subject="pipeline:digits-ocr")
    assert any(
        e.action == "pipeline.load" and e.after["steps"]["recognize"] == "digit-recognizer@1" for e in loads
    )


def test_push_refuses_a_broken_pipeline_and_audits_step_versions(ocr: OcrBuild, tmp_path: Path) -> None:
    spec = (OCR_DIR / "pipeline.yaml").read_text()
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(spec.replace("segment.crops", "segment.crop").replace("example.png", "missing.png"))
    with pytest.raises(PipelineError) as info:
        push_pipeline(broken, ocr.registry)
    assert "step 'segment' has no output 'crop' (outputs: boxes, crops)" in str(info.value)
    pushes = [e for e in ocr.registry.audit(subject="pipeline:digits-ocr") if e.action == "pipeline.push"]
    assert pushes and pushes[-1].after["steps"]["segment"] == "digit-segmenter@1"


def test_no_digits_and_bad_png_through_the_pipeline(ocr: OcrBuild) -> None:
    from generate import to_png

    from modelrunner.errors import ValidationError

    pv = resolve_target(ocr.registry, TARGET)
    predictor, _ = load_bundle(ocr.registry, pv)

    def run(data: bytes) -> None:
        column = np.empty(1, dtype=object)
        column[0] = data
        predictor.predict({"image": column})

    try:
        with pytest.raises(ValidationError) as info:
            run(to_png(np.full((30, 90), 255, dtype=np.uint8)))
        assert str(info.value) == (
            "step 'segment' (digit-segmenter@1) input 'image' <- decode.image: no digits found in the image"
        )
        with pytest.raises(ValidationError) as info:
            run(b"this is not a png")
        assert str(info.value).startswith(
            "step 'decode' (image.decode_grayscale) input 'data' <- "
            "$input.image: field 'data': not a PNG/JPEG image"
        )
        assert info.value.field == "image"
    finally:
        predictor.close()


def test_a_python_bundle_step_travels_inside_the_pipeline(ocr: OcrBuild, tmp_path: Path) -> None:
    import shutil

    from segmenter import DigitSegmenter

    import modelrunner as mr

    sample = {"image": np.full((1, 20, 30), 1.0, dtype=np.float32)}
    sample["image"][0, 5:15, 10:14] = 0.0
    contract = load_build_script().SEGMENTER_CONTRACT
    mr.save_model(DigitSegmenter(), tmp_path / "seg", contract=contract, sample=sample)
    spec = (OCR_DIR / "pipeline.yaml").read_text()
    spec = spec.replace("name: digits-ocr", "name: digits-ocr-local")
    (tmp_path / "pipeline.yaml").write_text(spec.replace("model: digit-segmenter@production", "bundle: seg"))
    shutil.copy(OCR_DIR / "example.png", tmp_path / "example.png")
    mv = push_pipeline(tmp_path / "pipeline.yaml", ocr.registry)
    shutil.rmtree(tmp_path / "seg")  # the pipeline version carries its own copy of the step
    pv = resolve_target(ocr.registry, f"pipeline:{mv.ref}")
    assert pv.step_refs()["segment"] == "bundle:steps/segment"
    predictor, example = load_bundle(ocr.registry, pv)
    try:
        assert example is not None and predictor.predict(example)["text"].tolist() == ["818"]
    finally:
        predictor.close()
