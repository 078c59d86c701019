"""Settings: one pydantic-settings class, read from ``MODELRUNNER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob modelrunner reads from the environment. Build one with ``Settings()``; never at import."""

    model_config = SettingsConfigDict(env_prefix="MODELRUNNER_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".modelrunner",
        description="Folder of the embedded default: registry.db (SQLite) and artifacts/.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry database; default sqlite:///<home>/registry.db.",
    )
    store_url: str | None = Field(
        default=None, description="fsspec URL of the artifact store; default <home>/artifacts."
    )
    store_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options of the artifact store as JSON, e.g. "
        '\'{"endpoint_url": "http://minio:9000"}\' for an S3 store (the standard AWS_* '
        "variables, AWS_ENDPOINT_URL included, work too).",
    )
    cache_dir: Path | None = Field(
        default=None, description="Local cache of unpacked bundles (by sha256); default <home>/cache."
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token for /admin; required when serving on a non-loopback host."
    )
    token: str | None = Field(
        default=None,
        description="The token the CLI sends to a server (`modelrunner token create`); "
        "default: MODELRUNNER_ADMIN_TOKEN.",
    )
    token_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a server trusts a verified token before checking the "
        "registry again (a revocation takes effect within this time).",
    )
    require_auth_for_predict: bool = Field(
        default=False, description="Predict routes (REST, V2, gRPC) need a token with the predictor role."
    )
    trust_pickle: bool = Field(
        default=False,
        description="Load pickle artifacts (sklearn, python flavors) without a recorded trust "
        "decision (`modelrunner trust REF`).",
    )
    registry_name: str | None = Field(
        default=None,
        description="This registry's name in the lineage of versions it pushes to remotes "
        "(default: the host name).",
    )
    max_import_bytes: int = Field(
        default=4 * 1024**3, gt=0, description="Largest bundle another registry may push here (federation)."
    )
    tls_cert: Path | None = Field(default=None, description="PEM certificate: serve HTTP and gRPC over TLS.")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names (comma-separated) the HTTP server answers besides 127.0.0.1, localhost and "
        "[::1]; '*' answers any. Checked when bound to loopback, or on any address once set.",
    )
    actor: str | None = Field(default=None, description="Who is acting, recorded in the audit log.")
    poll_interval_s: float = Field(default=0.1, description="How often a reconciler polls desired state.")
    drain_timeout_s: float = Field(
        default=30.0, description="How long an old version may keep in-flight requests after a swap."
    )
    heartbeat_s: float = Field(default=1.0, description="How often a worker writes its status row.")
    liveness_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A worker whose event loop has not beaten for this long is killed and restarted.",
    )
    max_request_bytes: int = Field(default=32 * 1024 * 1024, description="Largest accepted request body.")
    max_unpacked_bytes: int = Field(
        default=16 * 1024**3,
        gt=0,
        description="Largest total size a bundle archive may expand to (declared and actually written).",
    )
    max_expansion_ratio: float = Field(
        default=200.0,
        gt=1,
        description="Largest uncompressed/compressed size ratio of a bundle archive over 64 MiB unpacked "
        "(a zip or gzip bomb expands 1000:1 and more; real model files rarely pass 20:1).",
    )
    max_archive_members: int = Field(
        default=100_000, gt=0, description="Most entries a bundle archive may hold."
    )
    orphan_grace_s: float = Field(
        default=3600.0,
        ge=0,
        description="Age after which temporary files of a killed push or fetch (cache/.push-*, "
        "artifacts/tmp/*.part) are removed at the next push, serve start or gc.",
    )
    max_request_rows: int = Field(
        default=100_000,
        ge=1,
        description="Most rows one predict/infer request may carry (any protocol); more is a 413, counted "
        "from the message's structure before its rows are decoded.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, description="Largest accepted request head (request line, headers); more: a 431."
    )
    request_read_timeout_s: float = Field(
        default=30.0,
        description="Longest a request (head and body) may take to arrive; then a 408 and the "
        "connection is closed (a slow or stalled client).",
    )
    drift_monitoring: bool = Field(
        default=True, description="Sketch every served version's inputs and outputs for drift monitoring."
    )
    drift_bucket_s: int = Field(
        default=60, ge=1, description="Time slice of the drift sketches each worker flushes to the registry."
    )
    drift_flush_s: float = Field(
        default=5.0, gt=0, description="How often a worker counts its queued rows and flushes its sketches."
    )
    drift_check_s: float = Field(
        default=30.0, gt=0, description="How often a worker scores drift (gauges, alerts, webhook)."
    )
    drift_window_s: int = Field(
        default=3600, ge=1, description="Traffic window drift is scored over (the last N seconds)."
    )
    drift_retention_s: int = Field(
        default=7 * 24 * 3600, ge=60, description="Sketches of older windows are deleted."
    )
    drift_webhook_url: str | None = Field(
        default=None, description="Where firing and resolving monitoring alerts are POSTed as JSON (retried)."
    )
    prediction_log_flush_s: float = Field(
        default=1.0, gt=0, description="How often a worker writes its buffered prediction log (one batch)."
    )
    prediction_log_batch: int = Field(
        default=500, ge=1, description="Buffered log rows that trigger a write before the flush interval."
    )
    prediction_log_buffer: int = Field(
        default=50_000,
        ge=1,
        description="Most log rows a worker buffers (the database down or slow); more are dropped, counted.",
    )
    prediction_log_max_rows: int = Field(
        default=1000,
        ge=0,
        description="A request with more rows than this is logged without its outputs and inputs.",
    )
    prediction_retention_s: float = Field(
        default=30 * 86400.0, gt=0, description="Logged predictions older than this are deleted."
    )
    prediction_retention_rows: int = Field(
        default=1_000_000, ge=1, description="Most logged predictions kept (all endpoints); older go first."
    )
    prediction_prune_s: float = Field(
        default=300.0, gt=0, description="How often a worker that logged predictions applies the retention."
    )
    shadow_queue: int = Field(
        default=256,
        ge=1,
        description="Shadow copies waiting for the candidate per worker; more are dropped (counted).",
    )

    endpoint_patterns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Pattern endpoints served on demand, comma-separated NAME_GLOB=TARGET "
        "(`serve --endpoint 'tenant-*=tenant-*@production'`; docs/runner.md).",
    )
    max_loaded: int = Field(
        default=0,
        ge=0,
        description="Most on-demand models one worker keeps loaded (0: no limit; LRU eviction).",
    )
    memory_budget: str = Field(
        default="0",
        description="Estimated memory one worker's on-demand models may take, e.g. 2GB (0: no budget).",
    )

    @field_validator("allowed_hosts", "endpoint_patterns", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """``MODELRUNNER_ALLOWED_HOSTS=a.example,b.example``: a comma-separated list (a list passes as is)."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'registry.db'}"

    def resolved_store_url(self) -> str:
        return self.store_url or str(self.home / "artifacts")

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or (self.home / "cache")

    def resolved_actor(self) -> str:
        if self.actor:
            return self.actor
        import getpass

        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name in some containers
            return "unknown"
