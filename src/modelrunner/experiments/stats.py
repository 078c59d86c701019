"""An experiment's online stats from the registry (prediction log + feedback), for status and decisions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from modelrunner.contract import Contract
from modelrunner.errors import InvalidArgument
from modelrunner.evaluation import metrics as m
from modelrunner.experiments.online import PRODUCTION, VariantStats, online_stats

SHADOW = "shadow"
CANDIDATE = "candidate"


def candidate_variant(mode: str) -> str:
    """The variant name the candidate's answers are logged under in ``mode``."""
    return SHADOW if mode == SHADOW else CANDIDATE


@dataclass
class ExperimentStats:
    """Per-variant online stats of one experiment, with the task they were measured for."""

    experiment: Any
    task: m.Task
    variants: dict[str, VariantStats]

    @property
    def candidate(self) -> VariantStats | None:
        return self.variants.get(candidate_variant(self.experiment.mode))

    @property
    def production(self) -> VariantStats | None:
        return self.variants.get(PRODUCTION)


def contract_lookup(registry: Any) -> Any:
    """``(model, version) -> Contract`` from the registry, cached (versions are immutable)."""

    @lru_cache(maxsize=64)
    def contract_for(model: str, version: int | None) -> Contract:
        ref = f"{model}@{version}" if version is not None else model
        return registry.resolve(ref).contract  # type: ignore[no-any-return]

    return contract_for


def experiment_task(registry: Any, experiment: Any) -> m.Task:
    """The task the candidate's outputs imply (same as the offline evaluation infers)."""
    contract = registry.resolve(experiment.candidate_ref).contract
    try:
        return m.infer_task(contract)
    except InvalidArgument as exc:
        raise InvalidArgument(f"experiment on {experiment.endpoint!r}: {exc}") from exc


def load_stats(registry: Any, experiment: Any, contract_for: Any = None) -> ExperimentStats:
    """Read the experiment's log rows and labelled rows and compute every variant's stats."""
    task = experiment_task(registry, experiment)
    rows = registry.prediction_rows(experiment.endpoint, experiment_id=experiment.id)
    labelled = registry.labelled(experiment.endpoint, experiment_id=experiment.id)
    variants = online_stats(rows, labelled, task, contract_for or contract_lookup(registry))
    return ExperimentStats(experiment=experiment, task=task, variants=variants)
