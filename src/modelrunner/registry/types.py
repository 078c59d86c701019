"""Plain records the registry returns (immutable snapshots of database rows)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelrunner.contract import Contract

WorkerState = Literal["loading", "serving", "failed", "draining"]
WORKER_STATES: tuple[str, ...] = ("loading", "serving", "failed", "draining")


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a model. ``tags`` and ``aliases`` are labels, not content."""

    name: str
    version: int
    sha256: str
    flavor: str
    contract: Contract
    manifest: dict[str, Any]
    license: str | None
    description: str
    metrics: dict[str, float]
    lineage: dict[str, Any]
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    size: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ModelSummary:
    name: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int]
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class VersionSummary:
    """What a listing shows of a model's newest version; ``steps``: a pipeline's step refs at push."""

    name: str
    version: int
    flavor: str
    license: str | None
    description: str
    tags: dict[str, str]
    steps: dict[str, str]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    aliases: dict[str, int]
    versions: list[ModelVersion]

    @property
    def latest(self) -> ModelVersion | None:
        return self.versions[-1] if self.versions else None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: Any
    after: Any


@dataclass(frozen=True)
class EndpointState:
    """Desired state of one endpoint. ``generation`` is the global generation of its last change."""

    name: str
    target: str
    previous_target: str | None
    config: dict[str, Any]
    generation: int
    force: bool
    updated_at: datetime
    updated_by: str = ""


@dataclass(frozen=True)
class WorkerStatus:
    """What one worker process serves for one endpoint (a row per runner_id x endpoint)."""

    runner_id: str
    endpoint: str
    state: WorkerState
    target: str | None = None
    model: str | None = None
    version: int | None = None
    sha256: str | None = None
    generation: int | None = None
    error: str | None = None
    load_ms: int | None = None
    warmup_ms: int | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    heartbeat: datetime | None = None  # set by the registry when reported


@dataclass(frozen=True)
class Evaluation:
    id: int
    model: str
    version: int | None
    dataset_sha256: str | None
    dataset_name: str | None
    metrics: dict[str, Any]
    gates: Any
    passed: bool | None
    created_at: datetime
    actor: str


ExperimentMode = Literal["shadow", "canary", "ab"]
EXPERIMENT_MODES: tuple[str, ...] = ("shadow", "canary", "ab")
ExperimentState = Literal["running", "promoted", "aborted", "stopped"]
EXPERIMENT_STATES: tuple[str, ...] = ("running", "promoted", "aborted", "stopped")
VARIANTS: tuple[str, ...] = ("production", "candidate", "shadow")


@dataclass(frozen=True)
class Experiment:
    """An online test on one endpoint: production plus one candidate, mirrored (shadow) or split.

    ``percent``: the candidate's share of requests (canary/ab) or of mirrored requests (shadow);
    ``sticky_key``: a request field/header whose value fixes the variant; ``rules``: requirement strings
    decided once ``min_labels``/``min_requests`` are reached; ``then_action``: ``"promote"`` or None."""

    id: str
    endpoint: str
    mode: ExperimentMode
    candidate: str
    candidate_ref: str
    percent: float
    sticky_key: str | None
    rules: tuple[str, ...]
    min_labels: int
    min_requests: int
    then_action: str | None
    state: ExperimentState
    decision: Any
    started_at: datetime
    started_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (times as ISO 8601 strings)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rules"] = list(self.rules)
        for key in ("started_at", "ended_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass(frozen=True)
class PredictionRecord:
    """One answered request as the runner logs it (``outputs``/``inputs``: JSON-able columns)."""

    request_id: str
    endpoint: str
    variant: str
    model: str
    version: int | None
    ts: datetime
    latency_ms: float
    outputs: Any = None
    experiment_id: str | None = None
    error: str | None = None
    inputs: Any = None


@dataclass(frozen=True)
class PredictionRow:
    """A logged prediction read back (request/error/latency statistics, shadow agreement by request_id)."""

    request_id: str
    variant: str
    model: str
    version: int | None
    ts: datetime
    latency_ms: float
    error: str | None
    outputs: Any
    experiment_id: str | None = None


@dataclass(frozen=True)
class LabelledRow:
    """A logged prediction joined with the ground truth sent later as feedback."""

    request_id: str
    variant: str
    model: str
    version: int | None
    ts: datetime
    latency_ms: float
    error: str | None
    outputs: Any
    target: Any
    experiment_id: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    """``joined``: items stored against a logged prediction (duplicates included: the later target wins);
    ``unknown``: request ids with no logged prediction (not stored); ``duplicates``: items that replaced an
    earlier target (already stored, or repeated in the same call)."""

    joined: int
    unknown: list[str]
    duplicates: int
