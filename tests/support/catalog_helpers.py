"""Catalog test helpers: hand-made bundles, a registry with models, the catalog served for real."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from modelrunner.bundle.manifest import Manifest
from modelrunner.contract import Contract, DType, Field

NASTY = '<script>alert("x")</script> & <b>bold</b>'


def write_bundle(
    path: Path,
    name: str,
    *,
    description: str = "",
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    license: str | None = "MIT",
    inputs: tuple[str, ...] = ("x",),
) -> Path:
    """A minimal bundle folder (the registry and the catalog never load the model)."""
    path.mkdir(parents=True, exist_ok=True)
    contract = Contract.build(
        [Field(name=n, dtype=DType.FLOAT32, shape=(2,)) for n in inputs], [Field(name="y", dtype=DType.INT64)]
    )
    Manifest(
        name=name,
        flavor="python",
        contract=contract,
        license=license,
        description=description,
        metrics=metrics or {},
        tags=tags or {},
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    ).dump(path)
    (path / "weights.bin").write_bytes(name.encode())
    return path


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def get_ok(client: httpx.Client, path: str) -> httpx.Response:
    reply = client.get(path)
    assert reply.status_code == 200, (path, reply.status_code, reply.text[:500])
    assert reply.headers["content-type"].startswith("text/html")
    return reply


def served_catalog(registry: Any, settings: Any) -> Any:
    """The catalog alone over ``registry`` (what ``modelrunner ui`` serves), as a ServerThread."""
    from modelrunner.catalog.web import standalone_app
    from support.server_helpers import ServerThread

    return ServerThread(standalone_app(registry, settings, "http://127.0.0.1:8080"))


def add_models(registry: Any, count: int, *, prefix: str = "model") -> None:
    """``count`` models of one version each, inserted as two bulk statements into the registry's tables.

    ``registry.push`` costs ~0.1 s a model (mostly reading the manifest's YAML) and the per-row registry
    functions ~30 ms on a busy machine: too slow for 500. The rows are those a push writes (from a real
    ``Manifest``); the artifacts are not stored, as list pages never read them."""
    from modelrunner.registry.tables import model_versions, models, utcnow

    contract = Contract.build(
        [Field(name="x", dtype=DType.FLOAT32, shape=(2,))], [Field(name="y", dtype=DType.INT64)]
    )
    now = utcnow()
    manifests = [
        Manifest(
            name=f"{prefix}-{i:04d}",
            flavor=("python", "sklearn", "onnx")[i % 3],
            contract=contract,
            license=("MIT", "Apache-2.0")[i % 2],
            description=f"model number {i}",
            metrics={"accuracy": round(0.5 + (i % 50) / 100, 2)},
            tags={"team": f"t{i % 7}"},
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        )
        for i in range(count)
    ]
    with registry._write() as conn:
        start = now.replace(microsecond=0)
        conn.execute(
            models.insert(),
            [
                {
                    "name": m.name,
                    "description": m.description,
                    "created_at": now,
                    "created_by": "tests",
                    "updated_at": start + timedelta(seconds=i),
                }
                for i, m in enumerate(manifests)
            ],
        )
        ids = {r.name: r.id for r in conn.execute(select(models.c.id, models.c.name))}
        conn.execute(
            model_versions.insert(),
            [
                {
                    "model_id": ids[m.name],
                    "version": 1,
                    "sha256": f"{i:064x}",
                    "size": 1,
                    "flavor": m.flavor,
                    "contract": m.contract.to_dict(),
                    "manifest": m.model_dump(mode="json"),
                    "license": m.license,
                    "description": m.description,
                    "metrics": dict(m.metrics),
                    "lineage": {},
                    "tags": dict(m.tags),
                    "created_at": now,
                    "created_by": "tests",
                }
                for i, m in enumerate(manifests)
            ],
        )


def pages(name: str, version: int) -> list[str]:
    """Every page of the catalog about model ``name``."""
    return [
        "/ui/",
        "/ui/endpoints",
        "/ui/endpoints/status",
        "/ui/audit",
        "/ui/pipelines",
        "/ui/signin",
        f"/ui/models/{name}",
        f"/ui/models/{name}?version={version}",
        f"/ui/compare?model={name}&v={version}",
        f"/ui/audit?model={name}",
    ]
