"""Trust decisions for pickle artifacts, and the serving workers' load policy (docs/security.md).

A decision is stored per artifact sha256 (the bytes trusted), with the version it was made for, who and
when; ``trust`` is audited. A serving worker refuses to unpickle an artifact without one when it is bound
beyond loopback, unless ``--trust-pickle``; on loopback it loads as before and logs a warning once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from modelrunner.bundle import trust as choke
from modelrunner.errors import FailedPrecondition
from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import model_versions, models, trust_decisions, utcnow

log = logging.getLogger(__name__)


def trust(registry: Any, ref: str, *, actor: str | None = None) -> dict[str, Any]:
    """Record that ``ref``'s artifact may be unpickled by the runners; returns the decision."""
    mv = registry.resolve(ref)
    who = registry.settings.resolved_actor() if actor is None else actor
    row = {
        "sha256": mv.sha256,
        "model": mv.name,
        "version": mv.version,
        "trusted_at": utcnow(),
        "trusted_by": who,
    }
    with registry._write() as conn:
        existing = conn.execute(select(trust_decisions).where(trust_decisions.c.sha256 == mv.sha256)).first()
        if existing is None:
            conn.execute(trust_decisions.insert().values(**row))
            write_audit(
                conn,
                actor=who,
                action="trust",
                subject=mv.ref,
                after={"sha256": mv.sha256, "flavor": mv.flavor},
            )
        else:
            row = dict(existing._mapping)
    return row


def decisions(registry: Any) -> list[dict[str, Any]]:
    with registry._read() as conn:
        rows = conn.execute(
            select(trust_decisions).order_by(trust_decisions.c.model, trust_decisions.c.version)
        )
        return [dict(r._mapping) for r in rows]


def _decision(registry: Any, sha: str) -> Any:
    with registry._read() as conn:
        return conn.execute(select(trust_decisions).where(trust_decisions.c.sha256 == sha)).first()


def _ref_of(registry: Any, sha: str) -> str:
    with registry._read() as conn:
        row = conn.execute(
            select(models.c.name, model_versions.c.version)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.sha256 == sha)
            .order_by(model_versions.c.id.desc())
        ).first()
    return f"{row.name}@{row.version}" if row is not None else f"the artifact {sha[:12]}"


class RunnerPolicy:
    """The serving worker's policy (see the module docstring)."""

    def __init__(self, registry: Any, settings: Any, *, strict: bool) -> None:
        self.registry = registry
        self.cache = Path(settings.resolved_cache_dir()).resolve()
        self.trust_all = bool(settings.trust_pickle)
        self.strict = strict
        self.warned = False

    def __call__(self, path: Path, flavor: str) -> None:
        if self.trust_all:
            return
        try:
            sha = path.resolve().relative_to(self.cache).parts[0]
        except (ValueError, IndexError):
            sha = ""
        if sha and _decision(self.registry, sha) is not None:
            return
        ref = _ref_of(self.registry, sha) if sha else str(path)
        if not self.strict:
            if not self.warned:
                self.warned = True
                log.warning(
                    "loading %s (%s flavor: a pickle, its code runs) without a trust decision: "
                    "allowed on loopback; `modelrunner trust %s` records one",
                    ref,
                    flavor,
                    ref,
                )
            return
        raise FailedPrecondition(
            f"{ref} is a {flavor} artifact (a pickle: loading it runs its code) without a trust decision: "
            f"run `modelrunner trust {ref}` (admin role) or serve with --trust-pickle"
        )


def install_policy(registry: Any, settings: Any, *, strict: bool) -> RunnerPolicy:
    """Install the worker's policy: ``strict`` (refuse untrusted pickles) when bound beyond loopback."""
    policy = RunnerPolicy(registry, settings, strict=strict)
    choke.install(policy)
    return policy
