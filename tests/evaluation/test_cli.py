"""The evaluate / promote / gates commands through the real entry point (``main()``)."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    from modelrunner.cli.main import main

    monkeypatch.setenv("MODELRUNNER_ACTOR", "tester")

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_evaluate_prints_the_table_writes_the_report_and_stores(
    cli: Run, digits_reg: Any, digits_npz: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r" / "report.html"
    code, out, err = cli(
        "evaluate",
        "digits@1",
        "digits@2",
        "--data",
        digits_npz,
        "--require",
        "accuracy>=0.85",
        "--no-served",
        "--report",
        report,
    )
    assert code == 0, err
    lines = out.splitlines()
    header = next(ln for ln in lines if "candidate" in ln)
    for title in ("accuracy", "macro F1", "in-proc p99 ms", "gates passed", "verdict"):
        assert title in header
    row2 = next(ln for ln in lines if "digits@2 (best)" in ln)
    assert "0.8894" in row2 and "1/1" in row2 and "pass" in row2
    row1 = next(ln for ln in lines if "digits@1" in ln and "best" not in ln)
    assert "0/1" in row1 and "fail: accuracy 0.4506 < 0.85" in out
    assert "best: digits@2" in out and f"report: {report}" in out
    assert report.is_file() and '<table id="results">' in report.read_text()
    assert len(digits_reg.evaluations("digits")) == 2


def test_evaluate_json_and_no_store(cli: Run, digits_reg: Any, digits_npz: Path) -> None:
    code, out, err = cli(
        "evaluate",
        "digits@3",
        "--data",
        digits_npz,
        "-r",
        "accuracy>=0.9",
        "--no-served",
        "--no-report",
        "--no-store",
        "--json",
    )
    assert code == 1  # no candidate meets the requirements: scripts and CI must see it
    assert err.strip() == "no candidate meets: accuracy>=0.9"
    data = json.loads(out)  # stdout stays valid JSON
    assert data["best"] is None and data["dataset"]["rows"] == 597 and len(data["dataset"]["sha256"]) == 64
    cand = data["candidates"][0]
    assert cand["ref"] == "digits@3" and cand["passed"] is False and cand["evaluation_id"] is None
    assert cand["gates"][0]["reason"] == "accuracy 0.8794 < 0.9"
    assert digits_reg.evaluations("digits") == []


def test_evaluate_exits_1_when_no_candidate_meets_the_requirements(
    cli: Run, digits_reg: Any, digits_npz: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    code, out, _ = cli(
        "evaluate",
        "digits@1",
        "digits@2",
        "--data",
        digits_npz,
        "-r",
        "accuracy>=0.99",
        "-r",
        "inproc_p99_ms<=5000",
        "--no-served",
        "--report",
        report,
    )
    assert code == 1, out
    assert "no candidate meets: accuracy>=0.99; inproc_p99_ms<=5000" in out
    assert report.is_file()  # the report is still written, so the failure can be read
    code, out, _ = cli("evaluate", "digits@2", "--data", digits_npz, "--no-served", "--no-report")
    assert code == 0 and "best: digits@2" in out  # no requirement: every candidate passes


def test_promote_exit_codes_and_reasons(cli: Run, digits_reg: Any, digits_npz: Path) -> None:
    code, out, _ = cli(
        "promote", "digits", "--best-of", "2,3", "--data", digits_npz, "-r", "accuracy>=0.95", "--no-served"
    )
    assert code == 1
    assert "not promoted: no candidate meets: accuracy>=0.95 (digits@2: fail: accuracy 0.8894 < 0.95" in out
    code, out, _ = cli("promote", "digits", "--best-of", "2,3", "-r", "accuracy>=0.85")  # stored evaluations
    assert code == 0, out
    assert "promoted digits@production -> version 2 (was version 1)" in out
    assert digits_reg.resolve("digits@production").version == 2
    assert digits_reg.audit(action="evaluation.promote")[0].actor == "tester"
    code, out, _ = cli("promote", "digits", "--best-of", "3", "--min-improvement", "0.01")
    assert code == 1 and "does not beat production digits@2" in out


def test_gates_commands_and_enforcement(cli: Run, digits_reg: Any, digits_npz: Path) -> None:
    assert cli("gates", "show", "digits")[1].strip() == "digits has no gates"
    code, out, _ = cli("gates", "set", "digits", "accuracy >= 0.85", "inproc_p99_ms<=5000")
    assert code == 0 and "gates of digits: accuracy>=0.85; inproc_p99_ms<=5000" in out
    assert digits_reg.gates("digits") == ["accuracy>=0.85", "inproc_p99_ms<=5000"]
    code, _, err = cli("alias", "set", "digits@2", "production")
    assert code == 2 and "digits@2 cannot become production: accuracy>=0.85: never evaluated" in err
    assert cli("evaluate", "digits@2", "--data", digits_npz, "--no-served", "--no-report")[0] == 0
    assert cli("alias", "set", "digits@2", "production")[0] == 0
    code, _, err = cli("alias", "set", "digits@1", "production")
    assert code == 2 and "accuracy>=0.85: never evaluated" in err
    assert cli("alias", "set", "digits@1", "production", "--force")[0] == 0
    override = digits_reg.audit(action="gates.override")[0]
    assert override.actor == "tester" and override.subject == "digits@1"
    assert cli("gates", "clear", "digits")[0] == 0 and digits_reg.gates("digits") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["gates", "set", "digits", "accuracy=>0.9"],
            'expected metric (>=|<=|>|<|==) number, e.g. "accuracy>=0.95"',
        ),
        (["gates", "set", "digits", "acc>=0.9"], "unknown metric 'acc' in requirement 'acc>=0.9'"),
        (["gates", "set", "nope", "accuracy>=0.9"], "unknown model 'nope'"),
        (
            ["evaluate", "digits@1", "--data", "DATA", "-r", "rmse<=1", "--no-served"],
            "metric 'rmse' does not apply to a classification task",
        ),
        (["evaluate", "digits@1", "--data", "missing.npz"], "data set 'missing.npz' not found"),
        (["evaluate", "digits@1", "--data", "DATA", "--task", "vision"], "unknown task 'vision'"),
        (["evaluate", "digits@1", "--data", "DATA", "--metric", "nomod_xyz:f"], "cannot import 'nomod_xyz'"),
        (["evaluate", "digits@9", "--data", "DATA"], "digits"),
        (["promote", "digits", "--best-of", "x"], "--best-of 'x': expected version numbers"),
    ],
)
def test_bad_input_is_one_line(
    cli: Run, digits_reg: Any, digits_npz: Path, args: list[str], message: str
) -> None:
    code, _, err = cli(*[str(digits_npz) if a == "DATA" else a for a in args])
    assert code == 2 and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_data_that_does_not_fit_names_the_field(cli: Run, digits_reg: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,target\n1,2,0\n")
    code, _, err = cli("evaluate", "digits@1", "--data", bad, "--no-served")
    assert code == 2 and "no column for input field 'input' (float64[64])" in err
    npz = tmp_path / "short.npz"
    np.savez(npz, input=np.zeros((2, 10)), target=np.zeros(2))
    code, _, err = cli("evaluate", "digits@1", "--data", npz, "--no-served")
    assert code == 2 and "'input'" in err and "(64,)" in err
