"""The registry facade: what the runner, the CLI and the server call.

A push is atomic: the bundle is packed and stored first (content-addressed, so identical bytes are stored
once and a failed push leaves at most an unreferenced artifact), then one transaction locks the model row,
allocates the next version number (unique (model_id, version) as a safety net) and writes the version,
alias and audit rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from modelrunner.bundle.manifest import check_fields
from modelrunner.errors import InvalidArgument, NotFound, StorageError
from modelrunner.registry import bundles, db, evals, gc, state, versions
from modelrunner.registry.audit import read_audit, write_audit
from modelrunner.registry.drift import DriftMethods
from modelrunner.registry.evals import EvaluationsMixin
from modelrunner.registry.experiments import ExperimentsMixin
from modelrunner.registry.notify import ChangeListener
from modelrunner.registry.probe import GenerationProbe
from modelrunner.registry.refs import check_alias, check_name, parse_ref
from modelrunner.registry.state import DesiredStateMixin
from modelrunner.registry.store import ArtifactStore
from modelrunner.registry.tables import aliases, model_versions, models
from modelrunner.registry.training import TrainingMixin
from modelrunner.registry.types import (
    AuditEntry,
    ModelInfo,
    ModelSummary,
    ModelVersion,
    VersionSummary,
)
from modelrunner.settings import Settings

log = logging.getLogger(__name__)
PUSH_ATTEMPTS = 20


class Registry(DesiredStateMixin, EvaluationsMixin, ExperimentsMixin, DriftMethods, TrainingMixin):
    """Models, versions, aliases, audit, desired state and artifacts over one database and one store
    (experiments, the prediction log and feedback: ``registry.experiments.ExperimentsMixin``; drift:
    ``registry.drift.DriftMethods``; training runs: ``registry.training.TrainingMixin``)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        store_url: str | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.database_url = database_url or self.settings.resolved_database_url()
        self.store = ArtifactStore(
            store_url or self.settings.resolved_store_url(), self.settings.store_options
        )
        self.engine = db.open_database(self.database_url)
        self._listener: ChangeListener | None = None
        self._probe = GenerationProbe(self.engine)

    @classmethod
    def from_env(cls) -> Registry:
        return cls(Settings())

    def __repr__(self) -> str:
        return f"Registry({db.safe_url(self.database_url)!r}, store={self.store.url!r})"

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._probe.close()
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _actor(self, actor: str | None) -> str:
        return actor or self.settings.resolved_actor()

    # ---- push / resolve / fetch -------------------------------------------------------------------------

    def push(
        self,
        bundle_path: Path | str,
        *,
        name: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Store a bundle as the next version of ``name`` (default: the manifest's name)."""
        who = self._actor(actor)
        if alias is not None:
            check_alias(alias)
        cache = self.settings.resolved_cache_dir()
        self._collect_orphans()
        directory, manifest = bundles.open_for_push(bundle_path, cache)
        model_name = check_name(name or manifest.name)
        all_tags = {**manifest.tags, **{str(k): str(v) for k, v in (tags or {}).items()}}
        check_fields(description=manifest.description, tags=all_tags, metrics=manifest.metrics)
        with gc.work_dir(cache) as tmp:
            packed = tmp / "bundle.tar.gz"
            for _ in range(PUSH_ATTEMPTS):
                with self._read() as conn:
                    base = versions.latest_contract(conn, model_name)
                contract = bundles.renumber(base, manifest.contract)
                update = {"name": model_name, "contract": contract, "tags": all_tags}
                final = manifest.model_copy(update=update)
                size = bundles.pack_to(directory, final, manifest, packed)
                bundles.check_expansion(directory, size)
                sha = self.store.put_file(packed, owner=tmp.name)
                try:
                    number = self._commit_version(model_name, final, sha, size, alias, who, manifest)
                except (versions.ContractMoved, IntegrityError) as exc:
                    log.debug("push of %s retried: %s", model_name, exc.__class__.__name__)
                    continue
                return self.resolve(f"{model_name}@{number}")
        raise StorageError(f"could not allocate a version of {model_name!r} after {PUSH_ATTEMPTS} attempts")

    def _commit_version(
        self, name: str, final: Any, sha: str, size: int, alias: str | None, actor: str, original: Any
    ) -> int:
        with self._write() as conn:
            model, created = versions.lock_or_create_model(
                conn, name, description=final.description, actor=actor
            )
            if created:
                write_audit(conn, actor=actor, action="model.create", subject=name, after={"name": name})
            base = versions.latest_contract(conn, name)
            if bundles.renumber(base, original.contract) != final.contract:
                raise versions.ContractMoved(name)
            number = versions.insert_version(
                conn, name=name, manifest=final, sha=sha, size=size, tags=dict(final.tags), actor=actor
            )
            if alias is not None:
                if alias == evals.GATED_ALIAS:
                    evals.enforce_gates(conn, name, number, force=False, actor=actor)
                versions.put_alias(conn, model, alias, number, actor=actor)
            return number

    def resolve(self, ref: str) -> ModelVersion:
        """``name`` / ``name@latest`` (newest), ``name@3``, ``name@alias`` -> the version, else NotFound."""
        parsed = parse_ref(ref)
        with self._read() as conn:
            model = versions.require_model(conn, parsed.name)
            return versions.to_version(conn, model.name, versions.version_row(conn, model, parsed))

    def fetch(self, mv: ModelVersion | str) -> Path:
        """A local, verified, unpacked copy of a version's bundle (cached by sha256); returns its folder."""
        if isinstance(mv, str):
            mv = self.resolve(mv)
        cache = self.settings.resolved_cache_dir()
        final = cache / mv.sha256
        if final.is_dir():
            return bundles.bundle_root(final)
        with bundles.fetch_lock(cache, mv.sha256):  # workers on this host download a bundle once
            if final.is_dir():  # another worker fetched it while this one waited
                return bundles.bundle_root(final)
            with gc.work_dir(cache, gc.FETCH_PREFIX) as work:
                archive = self.store.get_to(mv.sha256, work / "bundle.tar.gz")
                bundles.unpack(archive, work / "unpacked")
                try:
                    os.rename(work / "unpacked", final)
                except OSError:
                    if not final.is_dir():  # not a concurrent fetch that won the race
                        raise
        return bundles.bundle_root(final)

    def _collect_orphans(self) -> None:
        """Remove what killed pushes and fetches left (older than the grace period); never fails a push."""
        try:
            gc.collect_orphans(self.settings.resolved_cache_dir(), self.store, self.settings.orphan_grace_s)
        except Exception:  # noqa: BLE001 - best effort: a failed cleanup must not fail the push
            log.warning("could not remove orphaned temporary files", exc_info=True)

    # ---- models, aliases, tags, audit --------------------------------------------------------------------

    def models(self, limit: int | None = None, offset: int = 0) -> list[ModelSummary]:
        """Models by name; ``limit``/``offset`` give one page (see :meth:`model_count` for the total)."""
        with self._read() as conn:
            return versions.model_summaries(conn, limit=limit, offset=offset)

    def model_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(models)).scalar() or 0)

    def latest_summaries(self) -> dict[str, VersionSummary]:
        """The newest version of every model (by name): flavor, license, tags, steps, to list many models."""
        with self._read() as conn:
            return versions.latest_summaries(conn)

    def model(self, name: str) -> ModelInfo:
        with self._read() as conn:
            m = versions.require_model(conn, name)
            rows = conn.execute(
                select(model_versions)
                .where(model_versions.c.model_id == m.id)
                .order_by(model_versions.c.version)
            )
            return ModelInfo(
                name=m.name,
                description=m.description or "",
                created_at=m.created_at,
                created_by=m.created_by,
                updated_at=m.updated_at,
                aliases=versions.alias_map(conn, m.id),
                versions=[versions.to_version(conn, m.name, r) for r in rows],
            )

    def set_alias(
        self, name: str, alias: str, version: int | str, actor: str | None = None, *, force: bool = False
    ) -> ModelVersion:
        """Point ``name@alias`` at ``version`` (a number or a ref of the same model); bumps the generation.

        A move to ``production`` must pass the model's saved gates (stored evaluations) unless ``force``
        (then audited as ``gates.override``); else FailedPrecondition saying which gate failed.
        """
        check_alias(alias)
        target = parse_ref(f"{name}@{version}")
        with self._write() as conn:
            model = versions.require_model(conn, name, lock=True)
            row = versions.version_row(conn, model, target)
            if alias == evals.GATED_ALIAS:
                evals.enforce_gates(conn, model.name, int(row.version), force=force, actor=self._actor(actor))
            versions.put_alias(conn, model, alias, int(row.version), actor=self._actor(actor))
        return self.resolve(f"{name}@{alias}")

    def delete_alias(self, name: str, alias: str, actor: str | None = None) -> None:
        """Remove ``name@alias``; bumps the generation so endpoints on it notice."""
        with self._write() as conn:
            model = versions.require_model(conn, name, lock=True)
            current = versions.alias_map(conn, model.id)
            if alias not in current:
                known = ", ".join(sorted(current)) or "none"
                raise NotFound(f"model {name!r} has no alias {alias!r} (aliases: {known})")
            conn.execute(aliases.delete().where(aliases.c.model_id == model.id, aliases.c.alias == alias))
            state.bump_generation(conn)
            write_audit(
                conn,
                actor=self._actor(actor),
                action="alias.delete",
                subject=f"{name}@{alias}",
                before={"version": current[alias]},
                after=None,
            )

    def set_tags(self, ref: str, tags: Mapping[str, str | None], actor: str | None = None) -> ModelVersion:
        """Merge tags into a version (a value of None removes the key). Tags are labels, not content."""
        parsed = parse_ref(ref)
        with self._write() as conn:
            model = versions.require_model(conn, parsed.name)
            row = versions.version_row(conn, model, parsed)
            before = dict(row.tags or {})
            after = {**before, **{str(k): str(v) for k, v in tags.items() if v is not None}}
            for key in [k for k, v in tags.items() if v is None]:
                after.pop(key, None)
            check_fields(tags=after)
            conn.execute(update(model_versions).where(model_versions.c.id == row.id).values(tags=after))
            write_audit(
                conn,
                actor=self._actor(actor),
                action="tags.set",
                subject=f"{model.name}@{row.version}",
                before=before,
                after=after,
            )
        return self.resolve(f"{parsed.name}@{row.version}")

    def audit(
        self,
        limit: int = 100,
        subject: str | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``subject="digits"`` also matches ``digits@3`` and ``digits@production``."""
        with self._read() as conn:
            return read_audit(conn, limit=limit, subject=subject, action=action, actor=actor)

    def record(
        self, action: str, subject: str, before: Any = None, after: Any = None, actor: str | None = None
    ) -> None:
        """Append an audit row on behalf of another layer (runner, server, evaluation)."""
        if not action or not subject:
            raise InvalidArgument("an audit record needs an action and a subject")
        with self._write() as conn:
            write_audit(
                conn, actor=self._actor(actor), action=action, subject=subject, before=before, after=after
            )

    # ---- plumbing ----------------------------------------------------------------------------------------

    def _write(self) -> Any:
        return _translated(db.write_tx(self.engine), self.database_url)

    def _read(self) -> Any:
        return _translated(db.read_tx(self.engine), self.database_url)


class _translated:
    """Wrap a transaction context so database outages surface as StorageError (integrity errors pass)."""

    def __init__(self, inner: Any, url: str) -> None:
        self.inner, self.url = inner, url

    def __enter__(self) -> Any:
        try:
            return self.inner.__enter__()
        except DBAPIError as exc:
            raise StorageError(f"database {db.safe_url(self.url)}: {db.first_line(exc)}") from exc

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            suppressed = bool(self.inner.__exit__(exc_type, exc, tb))
        except IntegrityError:
            raise
        except DBAPIError as err:
            raise StorageError(f"database {db.safe_url(self.url)}: {db.first_line(err)}") from err
        if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError) and not suppressed:
            raise StorageError(f"database {db.safe_url(self.url)}: {db.first_line(exc)}") from exc
        return suppressed
