"""Request and response bodies of the management API (documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelrunner.server.wire import redact


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EndpointPut(BaseModel):
    """Desired state of an endpoint; ``wait`` blocks until every live worker serves it."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(description="What to serve: 'digits@production', 'digits@3', 'digits'.")
    force: bool = Field(False, description="Swap even when the contract is not compatible (audited).")
    wait: bool = Field(False, description="Wait until every live worker serves the target.")
    timeout_s: float = Field(30.0, gt=0, le=3600, description="How long to wait (with wait).")
    config: dict[str, Any] | None = Field(
        None,
        description="Endpoint options {batch, max_batch_size, max_latency_ms, max_concurrency, max_queue, "
        "timeout_s, log_predictions, log_inputs, log_bytes_inputs}; omitted: kept as they "
        "are.",
    )


class EndpointConfigPatch(BaseModel):
    """Options of an endpoint changed in place (no model reload); omitted keys keep their value."""

    model_config = ConfigDict(extra="forbid")

    batch: bool | None = Field(
        None,
        description="Batching: false turns it off, true on for any model; null (the default) batches "
        "models whose flavor is batch-safe (sklearn, xgboost, lightgbm, onnx, torch).",
    )
    max_batch_size: int | None = Field(
        None,
        ge=0,
        le=65_536,
        description="Rows merged into one predict call (default 64); 0 or 1 turns batching off.",
    )
    max_latency_ms: float | None = Field(
        None, ge=0, le=10_000, description="Longest a request waits for others to join its batch."
    )
    max_concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Predict calls of this endpoint running at once per worker (its own threads).",
    )
    max_queue: int | None = Field(
        None, ge=0, le=100_000, description="Requests that may wait for a thread; more get a 503."
    )
    timeout_s: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="Longest a request waits plus runs (0: none); then a 504 naming the endpoint.",
    )
    log_predictions: bool | None = Field(
        None,
        description="Log every answer (true), none (false), or only while an experiment runs (null, "
        "the default).",
    )
    log_inputs: float | None = Field(
        None, ge=0, le=1, description="Fraction of logged answers whose inputs are logged too (default 0)."
    )
    log_bytes_inputs: bool | None = Field(
        None, description="Include bytes inputs in logged inputs (default false)."
    )


class RollbackPost(BaseModel):
    """Options of a rollback. A rollback is always forced: the previous target served before."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(True, description="Accepted for symmetry with PUT; rollbacks are always forced.")
    wait: bool = False
    timeout_s: float = Field(30.0, gt=0, le=3600)


class AliasPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | str = Field(
        description="The version the alias points to from now on: 3, 'latest' or another alias."
    )
    force: bool = Field(
        default=False,
        description="Move to 'production' even when the model's saved gates "
        "fail (audited as gates.override).",
    )


def _hide_paths(cls: Any, value: str | None) -> str | None:
    """A worker's error, without the server's local folders (server/wire.py hide_paths)."""
    return redact(value) if value else value


class WorkerOut(_Out):
    runner_id: str
    pid: int
    host: str
    endpoint: str
    state: str
    target: str | None = None
    model: str | None = None
    version: int | None = None
    sha256: str | None = None
    generation: int | None = None
    error: str | None = None
    load_ms: int | None = None
    warmup_ms: int | None = None
    heartbeat: datetime | None = None

    hide_error = field_validator("error")(_hide_paths)


class EndpointOut(_Out):
    name: str
    target: str
    previous_target: str | None = None
    config: dict[str, Any] = {}
    generation: int
    force: bool = False
    updated_at: datetime | None = None
    updated_by: str = ""
    workers: list[WorkerOut] = []


class WorkerResultOut(BaseModel):
    """What one worker did with a rollout."""

    runner_id: str | None = None
    pid: int | None = None
    host: str | None = None
    state: str
    model: str | None = None
    version: int | None = None
    ref: str | None = None
    generation: int | None = None
    load_ms: float | None = None
    warmup_ms: float | None = None
    error: str | None = None

    hide_error = field_validator("error")(_hide_paths)


class RolloutOut(BaseModel):
    """The endpoint's desired state and, with ``wait``, what every live worker did."""

    endpoint: EndpointOut
    waited: bool
    outcome: Literal["switched", "refused", "timeout", "pending"]
    message: str = ""

    hide_message = field_validator("message")(_hide_paths)
    workers: list[WorkerResultOut] = []


class ModelSummaryOut(_Out):
    name: str
    latest_version: int | None = None
    version_count: int
    aliases: dict[str, int] = {}
    description: str = ""
    created_at: datetime
    updated_at: datetime


class VersionOut(_Out):
    name: str
    version: int
    sha256: str
    flavor: str
    contract: dict[str, Any]
    license: str | None = None
    description: str = ""
    metrics: dict[str, Any] = {}
    lineage: dict[str, Any] = {}
    tags: dict[str, str] = {}
    aliases: list[str] = []
    size: int = 0
    created_at: datetime
    created_by: str


class ModelOut(_Out):
    name: str
    description: str = ""
    created_at: datetime
    created_by: str
    updated_at: datetime
    aliases: dict[str, int] = {}
    versions: list[VersionOut] = []


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int


class AuditOut(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: Any = None
    after: Any = None
