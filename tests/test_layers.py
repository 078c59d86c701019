"""The layers of docs/architecture.md hold: the import-linter contracts of pyproject.toml pass on the source,
and the same contracts fail on a copy of the source given one upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LINT = Path(sys.executable).with_name("lint-imports")


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with this repository's contracts over the ``modelrunner`` package under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def source_copy(tmp_path: Path) -> Path:
    """The Python files of src/modelrunner under ``tmp_path/src``."""
    shutil.copytree(
        SRC / "modelrunner",
        tmp_path / "src" / "modelrunner",
        ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.css", "*.js", "*.svg", "*.png"),
    )
    return tmp_path / "src"


def test_the_source_keeps_its_layers() -> None:
    result = lint_imports(SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        (
            "contract/upward.py",
            "from modelrunner.registry import Registry\n",
            "modelrunner.contract is not allowed to import modelrunner.registry",
        ),
        (
            "catalog/upward.py",
            "def f() -> None:\n    from modelrunner.cli import output  # lazy, still counted\n",
            "modelrunner.catalog is not allowed to import modelrunner.cli",
        ),
        (
            "client/upward.py",
            "import modelrunner.runner.endpoint\n",
            "modelrunner.client is not allowed to import modelrunner.runner",
        ),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, line: str, expected: str) -> None:
    src = source_copy(tmp_path)
    (src / "modelrunner" / module).write_text(line)
    result = lint_imports(src)
    assert result.returncode != 0, result.stdout
    assert expected in " ".join(result.stdout.split()), result.stdout
