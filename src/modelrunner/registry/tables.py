"""SQLAlchemy Core tables of the registry. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend; returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value  # type: ignore[no-any-return]

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def utcnow() -> datetime:
    return datetime.now(UTC)


models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("contract", JSON, nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("license", String(200), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(300), nullable=False, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("target", String(300), nullable=False),
    Column("previous_target", String(300), nullable=True),
    Column("config", JSON, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("force", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

state = Table(
    "state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

worker_status = Table(
    "worker_status",
    metadata,
    Column("runner_id", String(200), primary_key=True),
    Column("endpoint", String(128), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("target", String(300), nullable=True),
    Column("model", String(128), nullable=True),
    Column("version", Integer, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("generation", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("load_ms", Integer, nullable=True),
    Column("warmup_ms", Integer, nullable=True),
    Column("heartbeat", UTCDateTime, nullable=False, index=True),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("dataset_sha256", String(64), nullable=True),
    Column("dataset_name", String(300), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("gates", JSON, nullable=False),
    Column("passed", Boolean, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_evaluations_model_version", "model", "version"),
)

gates = Table(
    "gates",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("requirements", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

drift_sketches = Table(
    "drift_sketches",
    metadata,
    Column("endpoint", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("worker", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("slots", Integer, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("sketch", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_drift_sketches_endpoint_window", "endpoint", "window_start"),
)

drift_settings = Table(
    "drift_settings",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("thresholds", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

drift_baselines = Table(
    "drift_baselines",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("profile", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)

drift_alerts = Table(
    "drift_alerts",
    metadata,
    Column("endpoint", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=True),
    Column("detail", JSON, nullable=True),
    Column("since", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("endpoint", String(128), nullable=False, index=True),
    Column("mode", String(16), nullable=False),
    Column("candidate", String(300), nullable=False),
    Column("candidate_ref", String(300), nullable=False),
    Column("percent", Float, nullable=False),
    Column("sticky_key", String(128), nullable=True),
    Column("rules", JSON, nullable=False),
    Column("min_labels", Integer, nullable=False),
    Column("min_requests", Integer, nullable=False),
    Column("then_action", String(16), nullable=True),
    Column("state", String(16), nullable=False),
    Column("decision", JSON, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("ended_by", String(200), nullable=True),
    # partial: WHERE state = 'running' (its migration says so; naming the dialects here would import
    # PostgreSQL's on every start, ~20 ms of CPU; Alembic's comparison does not read the predicate)
    Index("uq_experiments_running", "endpoint", unique=True),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("endpoint", String(128), nullable=False),
    Column("experiment_id", String(64), nullable=True),
    Column("variant", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text, nullable=True),
    Column("outputs", JSON, nullable=True),
    Column("inputs", JSON, nullable=True),
    Index("ix_predictions_endpoint_request", "endpoint", "request_id"),
    Index("ix_predictions_endpoint_ts", "endpoint", "ts"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("endpoint", String(128), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("target", JSON, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("updates", Integer, nullable=False),
)

training_runs = Table(
    "training_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model", String(128), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("trigger", String(300), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("parent_version", Integer, nullable=True),
    Column("new_version", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=False),
    Column("started_by", String(200), nullable=False),
    # partial: WHERE state = 'running' (its migration says so; naming the dialects here would import
    # PostgreSQL's on every start, ~20 ms of CPU; Alembic's comparison does not read the predicate)
    Index("uq_training_runs_running", "model", unique=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),  # the public part of the token, for the look-up
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("kdf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)

trust_decisions = Table(
    "trust_decisions",
    metadata,
    Column("sha256", String(64), primary_key=True),  # the artifact trusted (content-addressed)
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("trusted_at", UTCDateTime, nullable=False),
    Column("trusted_by", String(200), nullable=False),
)

remotes = Table(
    "remotes",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", String(500), nullable=False),
    Column("allow_licenses", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)
