"""The release path of a trained model: save it as a bundle like its parent, push it with lineage, judge it on
held-out recent labelled data (``--require`` + the model's saved gates), and start the online experiment
(``--rollout``) whose decision promotes or drops it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrunner.bundle import Manifest, open_bundle, save_model
from modelrunner.errors import InvalidArgument
from modelrunner.evaluation import metrics as m
from modelrunner.evaluation.datasets import Dataset
from modelrunner.evaluation.evaluate import CandidateResult, Options, evaluate
from modelrunner.evaluation.requirements import parse_requirements

_ROLLOUT = re.compile(
    r"^(?P<mode>shadow|canary|ab)(?:\s+(?P<pct>\d+(?:\.\d+)?)\s*%?)?"
    r"(?:\s+then\s+(?P<then>promote|stop))?$"
)


@dataclass(frozen=True)
class Rollout:
    """``mode`` shadow | canary | ab | none (push only, no experiment); ``then`` promote or None (stop)."""

    mode: str
    percent: float | None = None
    then: str | None = "promote"

    def __str__(self) -> str:
        if self.mode == "none":
            return "none"
        pct = f" {self.percent:g}" if self.percent is not None else ""
        return f"{self.mode}{pct} then {self.then or 'stop'}"


def parse_rollout(text: str | None) -> Rollout:
    """``"canary 20 then promote"``, ``"shadow then promote"``, ``"ab 50"`` (then stop), ``"none"``."""
    t = " ".join((text or "canary 10 then promote").strip().lower().split())
    if t == "none":
        return Rollout("none", None, None)
    found = _ROLLOUT.match(t)
    if found is None:
        raise InvalidArgument(
            f"--rollout {text!r}: expected 'canary N then promote', 'shadow then promote', "
            "'ab N then promote' (or '... then stop'), or 'none'",
            field="rollout",
        )
    pct = float(found["pct"]) if found["pct"] else None
    if pct is not None and not 0 < pct <= 100:
        raise InvalidArgument(f"--rollout {text!r}: the percent must be in (0, 100]", field="rollout")
    then = found["then"] or "promote"
    return Rollout(found["mode"], pct, None if then == "stop" else then)


def check_requirements(requirements: list[str]) -> None:
    parse_requirements(requirements)  # RequirementError naming the bad one, before any training


def default_rules(task: m.Task) -> list[str]:
    """The candidate must do at least as well as production online, and fail at most 1 % of requests."""
    primary = m.PRIMARY_METRIC[task]
    op = ">=" if primary == "accuracy" else "<="
    return [f"{primary} {op} baseline", "error_rate <= 0.01"]


def save_candidate(
    model: Any,
    parent_dir: Path,
    parent: Any,
    out: Path,
    *,
    training_data: Any,
    lineage: dict[str, Any],
    description: str,
) -> Path:
    """Save ``model`` as a bundle at ``out`` with the parent's example input, contract inputs, name and
    license; ``lineage`` goes to the manifest's ``lineage.extra``."""
    src = open_bundle(parent_dir)
    bundle = save_model(
        model,
        out,
        name=parent.name,
        sample=src.example_input(),
        license=parent.license or None,
        description=description,
        training_data=training_data,
        parent=parent.ref,
        tags={"trained_by": "modelrunner train"},
    )
    manifest = Manifest.read(bundle.path)
    manifest.lineage.extra.update(lineage)
    manifest.dump(bundle.path)
    return bundle.path


def push_candidate(registry: Any, bundle: Path, name: str, *, run_id: str, actor: str | None) -> Any:
    return registry.push(bundle, name=name, tags={"training_run": run_id}, actor=actor)


def judge(
    registry: Any, ref: str, held: Dataset, requirements: list[str], *, actor: str | None
) -> CandidateResult:
    """Evaluate ``ref`` on the held-out rows against ``requirements`` + the saved gates (stored)."""
    run = evaluate(
        registry, [ref], held, requirements, options=Options(served=False), store=True, actor=actor
    )
    return run.results[0]


def start_rollout(
    registry: Any,
    endpoint: str,
    ref: str,
    rollout: Rollout,
    rules: list[str],
    *,
    min_labels: int,
    actor: str | None,
) -> Any:
    return registry.start_experiment(
        endpoint,
        ref,
        mode=rollout.mode,
        percent=rollout.percent,
        rules=rules,
        min_labels=min_labels,
        then=rollout.then,
        actor=actor,
    )


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="modelrunner-train-")
