"""The model registry: models, versions, aliases, audit, desired state, artifacts."""

from modelrunner.registry.refs import Ref, parse_ref
from modelrunner.registry.registry import Registry
from modelrunner.registry.store import ArtifactStore
from modelrunner.registry.types import (
    AuditEntry,
    EndpointState,
    Evaluation,
    Experiment,
    FeedbackResult,
    LabelledRow,
    ModelInfo,
    ModelSummary,
    ModelVersion,
    PredictionRecord,
    PredictionRow,
    VersionSummary,
    WorkerStatus,
)

__all__ = [
    "ArtifactStore",
    "AuditEntry",
    "EndpointState",
    "Evaluation",
    "Experiment",
    "FeedbackResult",
    "LabelledRow",
    "ModelInfo",
    "ModelSummary",
    "ModelVersion",
    "PredictionRecord",
    "PredictionRow",
    "Ref",
    "Registry",
    "VersionSummary",
    "WorkerStatus",
    "parse_ref",
]
