"""``modelrunner init DIR``: write a ready model-service project (train, gates, pipeline, Makefile, CI).

The files are package data (``cli/templates/init/*.tmpl``): ``{{name}}`` becomes the project's model name,
a ``dot-`` prefix becomes ``.`` (dot-folders are not package data everywhere), ``.tmpl`` is dropped.
``data/`` gets a small generated data set, so ``make test`` and ``make train`` work right away.
"""

from __future__ import annotations

import csv
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import typer

from modelrunner.cli.output import console
from modelrunner.errors import FailedPrecondition, InvalidArgument

TEMPLATES = "templates/init"
FEATURES = ("tenure_months", "monthly_spend", "support_calls", "age")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def _files(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """Every template file under ``root`` as (relative output path, resource)."""
    out: list[tuple[str, Traversable]] = []
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        name = item.name.removesuffix(".tmpl")
        name = "." + name.removeprefix("dot-") if name.startswith("dot-") else name
        if item.is_dir():
            out.extend(_files(item, f"{prefix}{name}/"))
        elif item.name.endswith(".tmpl"):
            out.append((prefix + name, item))
    return out


def generate_data(n: int, seed: int) -> list[dict[str, float | int]]:
    """A churn-like tabular set: four features; ``target`` = 1 mostly when a noisy linear score is > 0."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    spend = rng.normal(60, 20, n).clip(5)
    calls = rng.poisson(2, n)
    age = rng.integers(18, 80, n)
    score = -0.06 * (tenure - 36) + 0.03 * (spend - 60) + 0.6 * (calls - 2) + rng.normal(0, 0.6, n)
    target = (score > 0).astype(int)
    return [
        {
            "tenure_months": int(t),
            "monthly_spend": round(float(s), 2),
            "support_calls": int(c),
            "age": int(a),
            "target": int(y),
        }
        for t, s, c, a, y in zip(tenure, spend, calls, age, target, strict=True)
    ]


def _write_csv(path: Path, rows: list[dict[str, float | int]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FEATURES, "target"])
        writer.writeheader()
        writer.writerows(rows)


def init_project(target: Path, name: str | None = None) -> list[Path]:
    """Write the project into ``target`` (missing or empty); return the files written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FailedPrecondition(f"{target} is not empty: modelrunner init writes into a new or empty folder")
    name = name or re.sub(r"[^a-z0-9-]+", "-", target.resolve().name.lower()).strip("-") or "model"
    if not _NAME.match(name):
        raise InvalidArgument(
            f"model name {name!r} must be lowercase letters, digits and '-', starting with "
            "a letter (use --name)"
        )
    written: list[Path] = []
    for rel, item in _files(resources.files("modelrunner.cli").joinpath(TEMPLATES)):
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(item.read_text(encoding="utf-8").replace("{{name}}", name), encoding="utf-8")
        written.append(dest)
    (target / "data").mkdir(exist_ok=True)
    for file, n, seed in (("train.csv", 400, 0), ("test.csv", 150, 1)):
        _write_csv(target / "data" / file, generate_data(n, seed))
        written.append(target / "data" / file)
    return written


def init(
    directory: Path = typer.Argument(..., help="Folder to create (it must be new or empty)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Model name (default: the folder's name)."),
) -> None:
    """Start a project: train.py, a generated data set, gates, a pipeline, a Makefile, tests and CI."""
    written = init_project(directory, name)
    out = console()
    out.print(f"wrote {len(written)} files into {directory}:")
    for path in written:
        out.print(f"  {path.relative_to(directory)}")
    out.print(f"next: cd {directory} && make test && make train")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
