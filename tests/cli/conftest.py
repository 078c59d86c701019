"""CLI fixtures: the real ``modelrunner`` entry point run in-process against a fresh MODELRUNNER_HOME."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.cli_helpers import Cli, CliResult


@pytest.fixture(autouse=True)
def _cli_env(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRUNNER_ACTOR", "tester")
    monkeypatch.delenv("MODELRUNNER_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("MODELRUNNER_DEBUG", raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("models")`` runs ``modelrunner models`` through ``main()`` (its error handling included)."""
    from modelrunner.cli.main import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def iris_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small logistic regression on iris saved as a bundle (license MIT, accuracy metric, lineage)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelrunner import save_model

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    path = tmp_path_factory.mktemp("bundles") / "iris-lr"
    save_model(
        model,
        path,
        name="iris",
        sample=x[:3],
        license="MIT",
        description="iris classifier",
        metrics={"accuracy": 0.97},
        training_data=x,
    )
    return path


@pytest.fixture
def free_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
