"""``modelrunner init``: the generated project's own ``make test``, ``make train`` and gated ``make release``
pass (or refuse) for real, with this interpreter and a temporary MODELRUNNER_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import modelrunner
from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.cli_helpers import Cli

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

EXPECTED = {
    "train.py",
    "Makefile",
    "modelrunner.toml",
    "pipeline.yaml",
    "requirements.txt",
    "README.md",
    ".gitignore",
    "tests/test_model.py",
    ".github/workflows/ci.yml",
    "data/train.csv",
    "data/test.csv",
}


def _make(project: Path, home: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(modelrunner.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "MAKE"))}
    path = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    env.update(MODELRUNNER_HOME=str(home), PYTHONPATH=path)
    return subprocess.run(
        ["make", "-s", *targets, f"PY={sys.executable}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _production(home: Path, name: str) -> int | None:
    registry = Registry(Settings(home=home))
    try:
        return registry.model(name).aliases.get("production")
    finally:
        registry.close()


def test_init_project_tests_train_and_gated_release(cli: Cli, tmp_path: Path) -> None:
    project, home = tmp_path / "churn-service", tmp_path / "home"
    result = cli("init", project)
    assert result.code == 0, result.err
    written = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert written == EXPECTED
    assert "{{name}}" not in (project / "Makefile").read_text()
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step.get("run") for step in ci["jobs"]["train-evaluate-push"]["steps"]]
    assert runs.index("make evaluate") < runs.index("make push")

    tested = _make(project, home, "test")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    trained = _make(project, home, "train")
    assert trained.returncode == 0, trained.stderr
    assert "pushed churn-service@1" in trained.stdout

    toml = project / "modelrunner.toml"
    toml.write_text(toml.read_text().replace("accuracy>=0.80", "accuracy>=0.999"))
    refused = _make(project, home, "release")
    assert refused.returncode != 0  # a gate failed: nothing is pushed
    assert _production(home, "churn-service") is None
    toml.write_text(toml.read_text().replace("accuracy>=0.999", "accuracy>=0.80"))
    released = _make(project, home, "release")
    assert released.returncode == 0, released.stdout + released.stderr
    assert _production(home, "churn-service") == 2


def test_init_refuses_a_non_empty_folder(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli("init", target)
    assert result.code == 2
    assert "not empty" in result.err and len(result.err.strip().splitlines()) == 1
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_init_names_the_model_after_the_folder_or_refuses_a_bad_name(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", tmp_path / "My Service", "--name", "fraud").code == 0
    assert "fraud@production" in (tmp_path / "My Service" / "Makefile").read_text()
    bad = cli("init", tmp_path / "other", "--name", "Bad_Name")
    assert bad.code == 2 and "--name" in bad.err
