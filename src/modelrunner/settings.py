"""Settings: one pydantic-settings class, read from ``MODELRUNNER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    cache_dir: Path | None = Field(
        default=None, description="Local cache of unpacked bundles (by sha256); default <home>/cache."
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token for /admin; required when serving on a non-loopback host."
    )
    actor: str | None = Field(default=None, description="Who is acting, recorded in the audit log.")
    poll_interval_s: float = Field(default=0.1, description="How often a reconciler polls desired state.")
    drain_timeout_s: float = Field(
        default=30.0, description="How long an old version may keep in-flight requests after a swap."
    )
    heartbeat_s: float = Field(default=1.0, description="How often a worker writes its status row.")
    max_request_bytes: int = Field(default=32 * 1024 * 1024, description="Largest accepted request body.")
    max_header_bytes: int = Field(
        default=64 * 1024, description="Largest accepted request head (request line, headers); more: a 431.")
    request_read_timeout_s: float = Field(
        default=30.0, description="Longest a request (head and body) may take to arrive; then a 408 and the "
                                  "connection is closed (a slow or stalled client).")

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
