"""The OCR example: generator split, segmenter, and accuracy of the built pipeline on a small test set."""

from __future__ import annotations

import numpy as np
import pytest
from generate import make_lines, split_sources
from recognizers import edit_distance, line_metrics
from segmenter import NoDigits, segment

from support.pipeline_helpers import OcrBuild


def test_split_is_by_source_image_and_stratified() -> None:
    train, test = split_sources()
    assert len(train.labels) + len(test.labels) == 1797
    flat = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in flat for img in test.images)  # no test image was seen in training
    assert set(test.labels.tolist()) == set(range(10))


def test_lines_have_three_to_eight_digits_and_match_their_boxes() -> None:
    _, test = split_sources()
    lines = make_lines(test, 40, seed=5)
    assert {len(line.text) for line in lines} <= set(range(3, 9))
    assert all(line.image.dtype == np.uint8 and len(line.boxes) == len(line.text) for line in lines)
    assert make_lines(test, 3, seed=5)[0].text == lines[0].text  # seeded: reproducible
    assert lines[0].png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_segmenter_finds_every_digit_box() -> None:
    _, test = split_sources()
    lines = make_lines(test, 60, seed=9)
    found = 0
    for line in lines:
        boxes, crops = segment(line.image)
        assert crops.shape == (len(boxes), 64) and crops.max() <= 16.0
        found += len(boxes) == len(line.text)
    assert found == len(lines)


def test_blank_image_has_no_digits() -> None:
    blank = np.full((40, 120), 250, dtype=np.uint8)
    noisy = (blank + np.random.default_rng(0).normal(0, 6, blank.shape)).clip(0, 255).astype(np.uint8)
    for img in (blank, noisy):
        with pytest.raises(NoDigits, match="no digits found in the image"):
            segment(img)


def test_line_metrics() -> None:
    assert edit_distance("40127", "4127") == 1 and edit_distance("", "12") == 2
    m = line_metrics(["123", "45"], ["123", "46"])
    assert m["exact_line_accuracy"] == 0.5 and m["character_error_rate"] == pytest.approx(1 / 5)


def test_built_pipeline_meets_the_target_on_unseen_digits(ocr: OcrBuild) -> None:
    """Trained on 150 lines only (the full build uses 800), it already reads test lines well."""
    m = ocr.result["metrics"]
    assert m["lines"] == 60
    assert m["character_error_rate"] <= 0.05 and m["exact_line_accuracy"] >= 0.8, m
    assert ocr.result["best"] == "svc"
    mv = ocr.registry.resolve("digits-ocr@production")
    assert mv.flavor == "pipeline" and mv.metrics["character_error_rate"] == m["character_error_rate"]
    assert ocr.registry.evaluations("digits-ocr", mv.version)[0].metrics["lines"] == 60
    rec = ocr.registry.resolve("digit-recognizer@production")
    assert rec.tags["candidate"] == "svc" and "exact_line_accuracy" in rec.metrics
