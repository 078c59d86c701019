"""``modelrunner pipeline check/push/show`` and the step-swap check of ``modelrunner alias set``."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.pipeline_helpers import OCR_DIR, OcrBuild, push_narrow_recognizer

SPEC = OCR_DIR / "pipeline.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    from modelrunner.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def home(ocr: OcrBuild, monkeypatch: pytest.MonkeyPatch) -> OcrBuild:
    for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELRUNNER_HOME", str(ocr.home))
    return ocr


def test_check_prints_edges_and_the_derived_contract(
    home: OcrBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "pipeline", "check", SPEC)
    assert code == 0, err
    assert "digit-recognizer@1 (map)" in out and "segment.crops" in out and "float32[?x64]" in out
    assert "confidence" in out and "float64[?x10]" in out and "every edge fits" in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("segment.crops", "segment.crop"),
            "step 'recognize' input 'input' reads segment.crop: step 'segment' has no output 'crop'",
        ),
        (("decode.image}", "assemble.text}"), "cycle: segment -> recognize -> assemble -> segment"),
        (("text.join_labels", "text.join"), "step 'assemble' (transform text.join): unknown transform"),
        (
            ("digit-segmenter@production", "digit-segmentr@production"),
            "step 'segment' (model digit-segmentr@production): unknown model",
        ),
        (
            ("{labels: recognize.label, ", "{"),
            "missing edge: step 'assemble' (text.join_labels) input 'labels'",
        ),
        (
            ("inputs: {input: segment.crops}, map: true", "inputs: {input: segment.crops}"),
            "edge segment.crops -> recognize.input: float32[?x64] does not fit float64[64]",
        ),
    ],
)
def test_check_errors_name_step_and_field(
    home: OcrBuild, capsys: pytest.CaptureFixture[str], tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(SPEC.read_text().replace(*edit))
    code, out, err = run(capsys, "pipeline", "check", bad)
    assert code == 2 and message in err, err
    assert "Traceback" not in err + out


def test_check_a_file_that_is_not_a_pipeline(
    home: OcrBuild, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "name: x\ninput: {a: bytes}\nsteps: {s: {transform: text.join_labels, oops: 1}}\noutput: {}\n"
    )
    code, _, err = run(capsys, "pipeline", "check", bad)
    assert code == 2 and "steps.s.oops: unknown key" in err and len(err.strip().splitlines()) == 1


def test_push_and_show(home: OcrBuild, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "pipeline", "push", SPEC, "--alias", "staging", "-m", "cer=0.02")
    assert code == 0, err
    assert "as digits-ocr@staging" in out and "recognize=digit-recognizer@1" in out
    mv = home.registry.resolve("digits-ocr@staging")
    assert mv.metrics == {"cer": 0.02} and mv.flavor == "pipeline"
    code, out, _ = run(capsys, "pipeline", "show", "digits-ocr@staging")
    assert code == 0 and "digit-segmenter@1" in out and "contract of digits-ocr@" in out
    code, _, err = run(capsys, "pipeline", "push", SPEC, "-m", "cer")
    assert code == 2 and "invalid metric 'cer'" in err


def test_alias_set_refuses_a_step_swap_that_breaks_a_served_pipeline(
    home: OcrBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    narrow = push_narrow_recognizer(home)
    home.registry.set_endpoint("cli-ocr", "pipeline:digits-ocr@production")
    try:
        code, _, err = run(capsys, "alias", "set", f"digit-recognizer@{narrow}", "production")
        assert code == 2
        assert (
            "endpoint 'cli-ocr' (digits-ocr@1, step 'recognize'): edge segment.crops -> recognize.input: "
            "float32[64] does not fit float64[32]"
        ) in err
        assert home.registry.resolve("digit-recognizer@production").version == 1
        code, out, err = run(capsys, "alias", "set", "digit-recognizer@2", "production")
        assert code == 0, err
        assert (
            "endpoint cli-ocr follows digit-recognizer@production in step recognize of pipeline "
            "digits-ocr@1: that step swaps to version 2"
        ) in out
    finally:
        home.registry.set_alias("digit-recognizer", "production", 1)
        home.registry.delete_endpoint("cli-ocr")
