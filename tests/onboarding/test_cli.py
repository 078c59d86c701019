"""The onboarding commands through the real entry point: output, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.cli.main import main
from modelrunner.registry.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_mlflow_pushes_and_keeps_a_copy(
    mlflow_frame: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = mlflow_frame
    code, out, err = run(
        capsys, "import", "mlflow", path, "--name", "churn", "--alias", "staging", "-o", tmp_path / "bundle"
    )
    assert code == 0, err
    assert "inputs sepal_length_cm: float64" in out and "churn version 1  alias staging" in out
    assert (tmp_path / "bundle" / "modelrunner.yaml").is_file()
    with Registry.from_env() as registry:
        assert registry.resolve("churn@staging").version == 1


def test_import_onnx_without_push(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    xf = x.astype(np.float32)
    onx = to_onnx(LogisticRegression(max_iter=50).fit(xf, y), xf[:1])
    (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
    code, out, err = run(
        capsys, "import", "onnx", tmp_path / "m.onnx", "--name", "det", "--no-push", "-o", tmp_path / "b"
    )
    assert code == 0, err
    assert "inputs X: float32[4]" in out and "version" not in out
    with Registry.from_env() as registry:
        assert registry.model_count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("import", "mlflow", "{tmp}", "--name", "x"), "is not an MLflow model folder: no MLmodel file"),
        (("import", "onnx", "{tmp}/bad.onnx", "--name", "x"), "bad.onnx is not a valid ONNX model"),
        (("import", "onnx", "{tmp}/bad.onnx", "--name", "x", "--no-push"), "--no-push needs --output"),
        (("optimize", "nosuch@1"), "nosuch"),
        (("optimize", "x@1", "--to", "tflite"), "--to 'tflite': only onnx is supported"),
    ],
)
def test_bad_input_is_one_red_line_exit_2(
    args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    code, _, err = run(capsys, *(a.format(tmp=tmp_path) for a in args))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_optimize_prints_check_speed_and_new_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import modelrunner as mr

    x, y = load_digits(return_X_y=True)
    mr.save_model(
        LogisticRegression(max_iter=100).fit(x[:400], y[:400]), tmp_path / "d", sample=x[:5], name="digits"
    )
    with Registry.from_env() as registry:
        registry.push(tmp_path / "d")
    code, out, err = run(capsys, "optimize", "digits@1", "--to", "onnx")
    assert code == 0, err
    assert "checked 5 rows: outputs equal to digits@1's" in out
    assert "in-process single-row p50" in out and "digits@2 pushed (parent digits@1, flavor onnx)" in out
    code, out, err = run(capsys, "optimize", "digits@1", "--require", "inproc_p50_ms<=0")
    assert code == 1 and "not pushed: requirement(s) not met: inproc_p50_ms<=0" in out
