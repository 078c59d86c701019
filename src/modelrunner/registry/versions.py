"""Models, versions and aliases in the database (functions over one open transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from modelrunner.bundle.manifest import Manifest
from modelrunner.contract import Contract
from modelrunner.errors import NotFound
from modelrunner.registry.audit import write_audit
from modelrunner.registry.db import upsert
from modelrunner.registry.refs import Ref
from modelrunner.registry.state import bump_generation
from modelrunner.registry.tables import aliases, model_versions, models, utcnow
from modelrunner.registry.types import ModelSummary, ModelVersion, VersionSummary

SHORT_LIST = 10


class ContractMoved(Exception):
    """A version was pushed concurrently and the renumbered contract must be computed again."""


def model_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    query = select(models).where(models.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def require_model(conn: Connection, name: str, *, lock: bool = False) -> Any:
    row = model_row(conn, name, lock=lock)
    if row is None:
        query = select(models.c.name).order_by(models.c.name).limit(SHORT_LIST + 1)
        known = [r.name for r in conn.execute(query)]
        hint = f" (models: {', '.join(known)})" if 0 < len(known) <= SHORT_LIST else ""
        raise NotFound(f"unknown model {name!r}{hint}")
    return row


def lock_or_create_model(conn: Connection, name: str, *, description: str, actor: str) -> tuple[Any, bool]:
    """The model row, locked until commit (created if missing). Returns ``(row, created)``."""
    now = utcnow()
    stmt = upsert(conn, models).values(
        name=name, description=description, created_at=now, created_by=actor, updated_at=now
    )
    created = bool(conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"])).rowcount)
    return model_row(conn, name, lock=True), created


def latest_row(conn: Connection, model_id: int) -> Any:
    return conn.execute(
        select(model_versions)
        .where(model_versions.c.model_id == model_id)
        .order_by(model_versions.c.version.desc())
        .limit(1)
    ).first()


def latest_contract(conn: Connection, name: str) -> Contract | None:
    row = model_row(conn, name)
    if row is None:
        return None
    latest = latest_row(conn, row.id)
    return Contract.from_dict(latest.contract) if latest else None


def insert_version(
    conn: Connection, *, name: str, manifest: Manifest, sha: str, size: int, tags: dict[str, str], actor: str
) -> int:
    """Insert the next version of ``name`` (model row locked by the caller); return its number."""
    model = model_row(conn, name)
    latest = conn.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model.id)
    ).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        model_versions.insert().values(
            model_id=model.id,
            version=version,
            sha256=sha,
            size=size,
            flavor=manifest.flavor,
            contract=manifest.contract.to_dict(),
            manifest=manifest.model_dump(mode="json"),
            license=manifest.license,
            description=manifest.description,
            metrics=dict(manifest.metrics),
            lineage=manifest.lineage.model_dump(mode="json"),
            tags=tags,
            created_at=utcnow(),
            created_by=actor,
        )
    )
    conn.execute(update(models).where(models.c.id == model.id).values(updated_at=utcnow()))
    write_audit(
        conn,
        actor=actor,
        action="version.create",
        subject=f"{name}@{version}",
        before=None,
        after={"sha256": sha, "size": size, "flavor": manifest.flavor, "tags": tags},
    )
    return version


def version_row(conn: Connection, model: Any, ref: Ref) -> Any:
    """The version row a ref points at, or NotFound naming what is missing."""
    if ref.version is not None:
        row = conn.execute(
            select(model_versions).where(
                model_versions.c.model_id == model.id, model_versions.c.version == ref.version
            )
        ).first()
        if row is None:
            raise NotFound(f"model {ref.name!r} has no version {ref.version}{_versions_hint(conn, model)}")
        return row
    if ref.is_latest:
        row = latest_row(conn, model.id)
        if row is None:
            raise NotFound(f"model {ref.name!r} has no versions")
        return row
    number = conn.execute(
        select(aliases.c.version).where(aliases.c.model_id == model.id, aliases.c.alias == ref.alias)
    ).scalar()
    if number is None:
        known = sorted(alias_map(conn, model.id))
        hint = f" (aliases: {', '.join(known)})" if known else " (no aliases)"
        hint = "" if len(known) > SHORT_LIST else hint
        raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}{hint}")
    return version_row(conn, model, Ref(name=ref.name, version=int(number)))


def _versions_hint(conn: Connection, model: Any) -> str:
    numbers = [
        int(v)
        for v in conn.scalars(
            select(model_versions.c.version)
            .where(model_versions.c.model_id == model.id)
            .order_by(model_versions.c.version)
        )
    ]
    if not numbers:
        return " (no versions yet)"
    if len(numbers) <= SHORT_LIST:
        return f" (versions: {', '.join(map(str, numbers))})"
    return f" (versions: {numbers[0]}..{numbers[-1]})"


def alias_map(conn: Connection, model_id: int) -> dict[str, int]:
    rows = conn.execute(select(aliases.c.alias, aliases.c.version).where(aliases.c.model_id == model_id))
    return {r.alias: int(r.version) for r in rows}


def put_alias(conn: Connection, model: Any, alias: str, version: int, *, actor: str) -> bool:
    """Point ``alias`` at ``version``; bump the generation when it moved. Returns whether it moved."""
    old = conn.execute(
        select(aliases.c.version).where(aliases.c.model_id == model.id, aliases.c.alias == alias)
    ).scalar()
    if old == version:
        return False
    now = utcnow()
    if old is None:
        conn.execute(
            aliases.insert().values(
                model_id=model.id, alias=alias, version=version, updated_at=now, updated_by=actor
            )
        )
    else:
        conn.execute(
            update(aliases)
            .where(aliases.c.model_id == model.id, aliases.c.alias == alias)
            .values(version=version, updated_at=now, updated_by=actor)
        )
    bump_generation(conn)
    write_audit(
        conn,
        actor=actor,
        action="alias.set",
        subject=f"{model.name}@{alias}",
        before=None if old is None else {"version": int(old)},
        after={"version": version},
    )
    return True


def model_summaries(conn: Connection, *, limit: int | None = None, offset: int = 0) -> list[ModelSummary]:
    """One page of models by name, with version counts and aliases (read for that page only)."""
    query = select(models).order_by(models.c.name).offset(max(0, int(offset)))
    if limit is not None:
        query = query.limit(max(0, int(limit)))
    page = list(conn.execute(query))
    ids = [m.id for m in page]
    if not ids:
        return []
    counts = {
        r.model_id: (int(r.n), int(r.latest))
        for r in conn.execute(
            select(
                model_versions.c.model_id,
                func.count().label("n"),
                func.max(model_versions.c.version).label("latest"),
            )
            .where(model_versions.c.model_id.in_(ids))
            .group_by(model_versions.c.model_id)
        )
    }
    by_model: dict[int, dict[str, int]] = {}
    for a in conn.execute(select(aliases).where(aliases.c.model_id.in_(ids))):
        by_model.setdefault(a.model_id, {})[a.alias] = int(a.version)
    result = []
    for m in page:
        n, latest = counts.get(m.id, (0, None))
        result.append(
            ModelSummary(
                name=m.name,
                latest_version=latest,
                version_count=n,
                aliases=by_model.get(m.id, {}),
                description=m.description or "",
                created_at=m.created_at,
                updated_at=m.updated_at,
            )
        )
    return result


def latest_summaries(conn: Connection, pipeline_flavor: str = "pipeline") -> dict[str, VersionSummary]:
    """The newest version of every model that has one, by model name, in two queries (not one per model);
    only the columns a listing shows (a pipeline's step refs come from its manifest)."""
    newest = (
        select(model_versions.c.model_id, func.max(model_versions.c.version).label("version"))
        .group_by(model_versions.c.model_id)
        .subquery()
    )
    mv = model_versions.c
    rows = list(
        conn.execute(
            select(mv.id, mv.version, mv.flavor, mv.license, mv.description, mv.tags, models.c.name)
            .join(newest, (mv.model_id == newest.c.model_id) & (mv.version == newest.c.version))
            .join(models, models.c.id == mv.model_id)
        )
    )
    pipelines = [r.id for r in rows if r.flavor == pipeline_flavor]
    steps: dict[int, dict[str, str]] = {}
    if pipelines:
        for r in conn.execute(select(mv.id, mv.manifest).where(mv.id.in_(pipelines))):
            found = ((r.manifest or {}).get("flavor_options") or {}).get("steps") or {}
            steps[r.id] = {str(k): str(v) for k, v in dict(found).items()}
    return {
        r.name: VersionSummary(
            name=r.name,
            version=int(r.version),
            flavor=r.flavor,
            license=r.license,
            description=r.description or "",
            tags=dict(r.tags or {}),
            steps=steps.get(r.id, {}),
        )
        for r in rows
    }


def to_version(conn: Connection, name: str, row: Any) -> ModelVersion:
    names = sorted(a for a, v in alias_map(conn, row.model_id).items() if v == row.version)
    return ModelVersion(
        name=name,
        version=int(row.version),
        sha256=row.sha256,
        flavor=row.flavor,
        contract=Contract.from_dict(row.contract),
        manifest=dict(row.manifest),
        license=row.license,
        description=row.description or "",
        metrics=dict(row.metrics or {}),
        lineage=dict(row.lineage or {}),
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        created_by=row.created_by,
        size=int(row.size),
        aliases=tuple(names),
    )
