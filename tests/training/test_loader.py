"""Loading a trainer: ``file.py:function`` and ``pkg.module:function``; bad specs give one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelrunner.errors import InvalidArgument
from modelrunner.training.loader import load_callable
from support.training_helpers import write_trainer


def test_a_file_and_a_module_load_with_their_code_version(tmp_path: Path) -> None:
    path = write_trainer(tmp_path, "def train(data, base):\n    return 42\n")
    loaded = load_callable(f"{path}:train")
    assert loaded.fn(None, None) == 42
    assert loaded.code["spec"] == f"{path}:train"
    assert loaded.code["sha256"] and len(loaded.code["sha256"]) == 64
    by_module = load_callable("modelrunner.training.data:balance")
    assert by_module.fn.__name__ == "balance" and by_module.code["sha256"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_colon_here", "must be 'pkg.module:function'"),
        ("missing.py:train", "not found"),
        ("modelrunner.training.data:nope", "has no 'nope'"),
        ("modelrunner.training.data:TrainingData.rows", "not a function"),
        ("no_such_package_xyz.mod:train", "cannot import 'no_such_package_xyz.mod'"),
        ("modelrunner.training.data:", "must be"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        load_callable(spec)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_file_that_fails_to_import_names_the_error(tmp_path: Path) -> None:
    broken = write_trainer(tmp_path, "def train(:\n", name="broken.py")
    with pytest.raises(InvalidArgument, match=r"SyntaxError: .* \(line 1\)"):
        load_callable(f"{broken}:train")
    raising = write_trainer(tmp_path, "raise RuntimeError('no GPU here')\n", name="raising.py")
    with pytest.raises(InvalidArgument, match="RuntimeError: no GPU here"):
        load_callable(f"{raising}:train")
