"""The drift demo's loop in a shortened form on a real server (1 worker): digits served, labelled traffic
fed back, the traffic shifts, the drift alert fires, ``modelrunner train --trigger drift`` retrains, the
candidate passes its gates and a canary, the decider promotes it, accuracy recovers; no request fails."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from modelrunner.registry import Registry
from modelrunner.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "examples" / "drift" / "run.py"
LINE = re.compile(
    r"^pre-drift accuracy (\d\.\d+), drifted (\d\.\d+), recovered (\d\.\d+), "
    r"failed requests (\d+), plot (.+)$"
)


def _demo() -> Any:
    spec = importlib.util.spec_from_file_location("drift_demo_run", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift_demo_run"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(900)  # a real server, ~1500 requests and a training run: minutes on a loaded machine
def test_the_drift_loop_recovers_without_a_failed_request(tmp_path: Path) -> None:
    demo = _demo()
    home, plot = tmp_path / "home", tmp_path / "drift.png"
    line = demo.run(demo.Sizes(pre=150, drift=600, post=200, repeats=2), plot, None, home)
    found = LINE.match(line)
    assert found, line
    pre, drifted, recovered, failed = (float(found[1]), float(found[2]), float(found[3]), int(found[4]))
    assert failed == 0
    assert drifted < pre - 0.15, line  # the shift hurts
    assert recovered > drifted + 0.15 and recovered >= pre - 0.05, line  # and the retrained model recovers
    assert plot.stat().st_size > 10_000 and found[5] == str(plot)
    with Registry(Settings(home=home)) as registry:
        assert registry.resolve("digits@production").version == 2
        run = registry.training_runs("digits")[0]
        assert run.state == "succeeded" and run.trigger.startswith("drift:") and run.new_version == 2
        actions = {e.action for e in registry.audit(limit=500)}
        wanted = {"drift.alert.firing", "training.start", "training.succeeded", "experiment.promoted"}
        assert wanted <= actions
