"""A served registry: one token per role, predict behind tokens (require_auth_for_predict), gRPC."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from modelrunner.registry.tables import api_tokens, utcnow
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, push_sklearn_models

ROLES = ("viewer", "predictor", "deployer", "admin")


@dataclass
class AuthStack:
    url: str
    grpc: str
    registry: Any
    tokens: dict[str, str]  # role (or "expired") -> token value

    def headers(self, who: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[who]}"} if who else {}


@contextmanager
def auth_stack(home: Path, **extra: Any) -> Iterator[AuthStack]:
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.server.grpc.server import attach

    settings = Settings(
        home=home,
        require_auth_for_predict=True,
        token_cache_s=0,
        poll_interval_s=0.05,
        heartbeat_s=0.2,
        drain_timeout_s=5.0,
        **extra,
    )
    registry = Registry(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        push_sklearn_models(registry, home / "bundles", versions=2)
    registry.set_endpoint("digits", "digits@production")
    values = {role: tokens.create(registry, f"{role}-bot", role)[1] for role in ROLES}
    values["expired"] = tokens.create(registry, "old-bot", "admin", expires_in=timedelta(days=1))[1]
    with registry._write() as conn:  # as if a day had passed
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == "old-bot")
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    runtime = Runtime(registry, settings)
    app = create_app(runtime, settings)
    grpc_server = attach(app)
    try:
        with ServerThread(app) as http:
            yield AuthStack(http.url, f"127.0.0.1:{grpc_server.port}", registry, values)
    finally:
        registry.close()
