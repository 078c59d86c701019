"""``modelrunner experiment start|status|stop|list`` against a registry (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.cli_helpers import Cli
from support.exp_log import log_answers


@pytest.fixture(scope="module")
def iris_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``good`` (logistic regression) and ``bad`` (the same trained on shuffled labels) iris bundles."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelrunner import save_model

    x, y = load_iris(return_X_y=True)
    root = tmp_path_factory.mktemp("iris")
    out = {}
    for key, labels in (("good", y), ("bad", np.random.default_rng(0).permutation(y))):
        out[key] = root / key
        save_model(
            LogisticRegression(max_iter=500).fit(x, labels),
            out[key],
            name="iris",
            sample=x[:3],
            license="MIT",
        )
    return out


@pytest.fixture
def reg(tmp_home: Path, iris_pair: dict[str, Path]) -> Any:
    """iris@1 bad (production), iris@2 good; endpoint iris -> iris@production."""
    from modelrunner.registry import Registry

    registry = Registry.from_env()
    registry.push(iris_pair["bad"], alias="production")
    registry.push(iris_pair["good"])
    registry.set_endpoint("iris", "iris@production")
    yield registry
    registry.close()


def _traffic(reg: Any, n: int = 150) -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    exp = reg.experiment("iris")
    log_answers(reg, exp, "production", "iris@1", x[:n], y[:n], prefix="p")
    log_answers(reg, exp, "candidate", "iris@2", x[:n], y[:n], prefix="c")


def test_start_status_and_manual_promote(cli: Cli, reg: Any) -> None:
    result = cli(
        "experiment",
        "start",
        "iris",
        "--candidate",
        "iris@2",
        "--mode",
        "ab",
        "--decide",
        "accuracy>=baseline-0.01",
        "--min-labels",
        "50",
        "--then",
        "promote",
    )
    assert result.code == 0, result.err
    exp = reg.experiment("iris")
    assert exp.rules == ("accuracy >= baseline - 0.01",) and exp.then_action == "promote"
    assert f"experiment {exp.id} on iris: ab iris@2 (50%)" in result.out
    _traffic(reg)
    result = cli("experiment", "status", "iris")
    assert result.code == 0, result.err
    rows = [line.replace("│", " ") for line in result.out.splitlines()]
    lines = {line.split()[0]: line for line in rows if line.split()[:1] in (["production"], ["candidate"])}
    assert "iris@1" in lines["production"] and "iris@2" in lines["candidate"]
    good = reg.labelled("iris", experiment_id=exp.id)
    accuracy = np.mean([r.outputs["label"][0] == r.target for r in good if r.variant == "candidate"])
    assert f"{accuracy:.4g} [" in lines["candidate"]
    assert "rules now: pass" in result.out and "Newcombe" in result.out and "decision: pending" in result.out
    result = cli("experiment", "stop", "iris", "--promote")
    assert result.code == 0, result.err
    assert "promoted: iris@production -> 2" in result.out
    assert reg.resolve("iris@production").version == 2 and reg.experiment("iris") is None
    listed = cli("experiment", "list")
    assert listed.code == 0 and exp.id in listed.out and "promoted" in listed.out


def test_abort_and_one_line_errors(cli: Cli, reg: Any) -> None:
    bad = cli(
        "experiment",
        "start",
        "iris",
        "--candidate",
        "iris@2",
        "--mode",
        "canary",
        "--decide",
        "accuracy >= basline",
    )
    assert bad.code == 2 and "cannot parse rule 'accuracy >= basline'" in bad.err
    assert len(bad.err.strip().splitlines()) == 1
    wrong = cli(
        "experiment",
        "start",
        "iris",
        "--candidate",
        "iris@2",
        "--mode",
        "canary",
        "--decide",
        "rmse <= baseline",
    )
    assert wrong.code == 2 and "unknown metric 'rmse'" in wrong.err
    assert cli("experiment", "start", "iris", "--candidate", "iris@2", "--mode", "nope").code == 2
    assert cli("experiment", "stop", "iris", "--abort").code == 2  # nothing running
    assert cli("experiment", "start", "iris", "--candidate", "iris@2", "--mode", "canary").code == 0
    again = cli("experiment", "start", "iris", "--candidate", "iris@2", "--mode", "shadow")
    assert again.code == 2 and "already runs experiment" in again.err
    neither = cli("experiment", "stop", "iris")
    assert neither.code == 2 and "--promote or --abort" in neither.err
    stopped = cli("experiment", "stop", "iris", "--abort")
    assert stopped.code == 0 and "production keeps serving" in stopped.out
    assert reg.resolve("iris@production").version == 1
    status = cli("experiment", "status", "iris")
    assert status.code == 0 and "decision: aborted by tester" in status.out
    assert cli("experiment", "status", "nope").code == 2
