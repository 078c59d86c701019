"""Many small registered models, fast: one tiny scikit-learn bundle pushed once, then registered under more
names sharing its artifact (a push packs and stores the bundle again: ~0.1 s each, 100 s for 1,000)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BODY = {"instances": [{"x": [0.5, 0.25, 0.0, 1.0]}]}


def save_tiny(path: Path) -> Path:
    """A scikit-learn bundle of a logistic regression on 4 features (~2 KB unpacked)."""
    from sklearn.linear_model import LogisticRegression

    from modelrunner.bundle import save_model

    x = np.random.default_rng(0).random((20, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    save_model(model, path, name="tiny", sample={"x": x[:2]}, license="MIT")
    return path


def register_many(reg: Any, bundle: Path, names: list[str], alias: str = "production") -> None:
    """Register ``names`` (new models), each version 1 at ``alias``, all on one stored artifact: the first
    is pushed, the others are inserted in bulk (the rows a push writes, minus the audit)."""
    from sqlalchemy import select

    from modelrunner.registry import bundles
    from modelrunner.registry.state import bump_generation
    from modelrunner.registry.tables import aliases, model_versions, models
    from modelrunner.registry.versions import utcnow

    first = reg.push(bundle, name=names[0], alias=alias)
    _, manifest = bundles.open_for_push(bundle, reg.settings.resolved_cache_dir())
    contract = bundles.renumber(None, manifest.contract).to_dict()
    rest, now = names[1:], utcnow()
    if not rest:
        return
    with reg._write() as conn:  # noqa: SLF001 - one transaction, a few statements: seconds, not minutes
        conn.execute(
            models.insert(),
            [
                {"name": n, "description": "", "created_at": now, "created_by": "test", "updated_at": now}
                for n in rest
            ],
        )
        ids = dict(conn.execute(select(models.c.name, models.c.id).where(models.c.name.in_(rest))).all())
        row = {
            "version": 1,
            "sha256": first.sha256,
            "size": first.size,
            "flavor": manifest.flavor,
            "contract": contract,
            "license": manifest.license,
            "description": "",
            "metrics": {},
            "lineage": manifest.lineage.model_dump(mode="json"),
            "tags": {},
            "created_at": now,
            "created_by": "test",
        }
        conn.execute(
            model_versions.insert(),
            [
                {**row, "model_id": ids[n], "manifest": {**manifest.model_dump(mode="json"), "name": n}}
                for n in rest
            ],
        )
        conn.execute(
            aliases.insert(),
            [
                {"model_id": ids[n], "alias": alias, "version": 1, "updated_at": now, "updated_by": "test"}
                for n in rest
            ],
        )
        bump_generation(conn)
