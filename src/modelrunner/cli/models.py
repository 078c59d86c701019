"""Registry commands: push, models, show, alias set/delete, contract, audit, gc."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from modelrunner.cli.output import (
    aliases_text,
    change_text,
    compact,
    console,
    contract_table,
    metrics_text,
    when,
)
from modelrunner.contract.render import ContractFormat
from modelrunner.errors import InvalidArgument

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import ModelInfo, ModelVersion

alias_app = typer.Typer(help="Move or delete aliases (production, staging, ...).", no_args_is_help=True)


_opened: list[Registry] = []


def open_registry() -> Registry:
    """The registry named by MODELRUNNER_* settings (default: SQLite under MODELRUNNER_HOME); closed when the
    command ends (:func:`close_registries`, called by ``cli.main.main``)."""
    from modelrunner.registry.registry import Registry

    registry = Registry.from_env()
    _opened.append(registry)
    return registry


def close_registries() -> None:
    """Close every registry a command opened (its database connections and LISTEN connection)."""
    while _opened:
        _opened.pop().close()


def parse_tags(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; raise InvalidArgument naming a malformed item."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"invalid tag {item!r}: expected key=value")
        tags[key.strip()] = value.strip()
    return tags


def push(
    bundle: Path = typer.Argument(..., help="Bundle folder, .zip or .tar.gz (--remote: a ref)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Model name (default: the bundle's name)."),
    alias: str | None = typer.Option(None, "--alias", "-a", help="Point this alias at the new version."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Label key=value (repeatable)."),  # noqa: B006
    remote: str | None = typer.Option(None, "--remote", help="Send version BUNDLE (a ref) to this remote."),
) -> None:
    """Push a bundle as the next version of a model (or, with --remote, a version to another registry)."""
    if remote is not None:
        from modelrunner.cli.federation import push_remote

        push_remote(str(bundle), remote, name)
        return
    tags = parse_tags(tag)
    mv = open_registry().push(bundle, name=name, alias=alias, tags=tags or None)
    extra = f"  alias {alias}" if alias else ""
    console().print(f"{mv.name} version {mv.version}{extra}  sha256 {mv.sha256[:12]}  flavor {mv.flavor}")


def models(
    limit: int = typer.Option(100, "--limit", "-l", min=1, help="Show at most this many models."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many models (by name) first."),
) -> None:
    """List models: versions, aliases, license, last update (one page; --offset for the next)."""
    registry = open_registry()
    table = Table(title="models", title_justify="left")
    for column in ("name", "versions", "latest", "aliases", "license", "updated"):
        table.add_column(column)
    page = registry.models(limit=limit, offset=offset)
    for summary in page:
        license_ = "-"
        if summary.latest_version is not None:
            license_ = registry.resolve(f"{summary.name}@{summary.latest_version}").license or "-"
        table.add_row(
            summary.name,
            str(summary.version_count),
            str(summary.latest_version or "-"),
            aliases_text(summary.aliases),
            license_,
            when(summary.updated_at),
        )
    total = registry.model_count()
    if not table.row_count:
        empty = (
            f"no models past offset {offset} (there are {total})"
            if total
            else "no models yet: modelrunner push BUNDLE --name NAME"
        )
        console().print(empty)
        return
    console().print(table)
    if offset + len(page) < total:
        console().print(
            f"models {offset + 1}-{offset + len(page)} of {total}; next page: "
            f"modelrunner models --offset {offset + len(page)} --limit {limit}"
        )


def _versions_table(info: ModelInfo) -> Table:
    by_version: dict[int, list[str]] = {}
    for alias, version in info.aliases.items():
        by_version.setdefault(version, []).append(alias)
    table = Table(title=f"{info.name}: versions", title_justify="left")
    for column in ("version", "aliases", "flavor", "license", "metrics", "created", "by", "sha256"):
        table.add_column(column)
    for mv in info.versions:
        table.add_row(
            str(mv.version),
            ", ".join(sorted(by_version.get(mv.version, []))) or "-",
            mv.flavor,
            mv.license or "-",
            metrics_text(mv.metrics),
            when(mv.created_at),
            mv.created_by,
            mv.sha256[:12],
        )
    return table


def _version_details(mv: ModelVersion) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("ref", mv.ref),
        ("description", mv.description or "-"),
        ("flavor", mv.flavor),
        ("license", mv.license or "-"),
        ("metrics", metrics_text(mv.metrics)),
        ("tags", compact(mv.tags) if mv.tags else "-"),
        ("sha256", mv.sha256),
        ("created", f"{when(mv.created_at)} by {mv.created_by}"),
    ]
    for key, value in sorted((mv.lineage or {}).items()):
        if value not in (None, "", {}, []):
            rows.append((f"lineage.{key}", compact(value, 80)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def show(ref: str = typer.Argument(..., help="name, name@3 or name@production.")) -> None:
    """Show a model: its versions and aliases, then one version's contract, metrics, license, lineage."""
    registry = open_registry()
    mv = registry.resolve(ref)
    info = registry.model(mv.name)
    out = console()
    if info.description:
        out.print(f"[bold]{info.name}[/bold]: {info.description}")
    out.print(_versions_table(info))
    out.print()
    out.print(f"[bold]{mv.ref}[/bold]" + (f" (resolved from {ref})" if ref.strip() != mv.ref else ""))
    out.print(_version_details(mv))
    out.print()
    out.print(contract_table(mv.contract))
    if (mv.manifest or {}).get("profile"):
        from modelrunner.cli.monitor import print_profile

        print_profile(registry, mv)
    _print_evaluations(registry, mv)


def _print_evaluations(registry: Registry, mv: ModelVersion) -> None:
    """The model's gates and this version's evaluations (newest first), when there are any."""
    out = console()
    gates = registry.gates(mv.name)
    if gates:
        out.print(f"\n[bold]gates[/bold]: {'; '.join(gates)}")
    evaluations = registry.evaluations(mv.name, mv.version)
    if not evaluations:
        return
    table = Table(title=f"{mv.ref}: evaluations", title_justify="left")
    for column in ("at", "by", "data set", "metrics", "passed"):
        table.add_column(column)
    for ev in evaluations[:10]:
        passed = "-" if ev.passed is None else ("yes" if ev.passed else "no")
        dataset = ev.dataset_name or (ev.dataset_sha256 or "-")[:12]
        table.add_row(when(ev.created_at), ev.actor, dataset, metrics_text(ev.metrics), passed)
    out.print()
    out.print(table)


def alias_set(
    ref: str = typer.Argument(..., help="The version to point at: name@3 (or name@staging, name)."),
    alias: str = typer.Argument(..., help="Alias to set, e.g. production."),
    force: bool = typer.Option(
        False, "--force", help="Move to production even if the model's saved gates refuse it (audited)."
    ),
) -> None:
    """Point ALIAS at the version REF resolves to (runners serving name@ALIAS swap by themselves)."""
    registry = open_registry()
    mv = registry.resolve(ref)
    before = registry.model(mv.name).aliases.get(alias)
    from modelrunner.pipelines.targets import refuse_breaking_step_swap

    refuse_breaking_step_swap(registry, mv.name, alias, mv.version)
    registry.set_alias(mv.name, alias, mv.version, force=force)
    moved = f" (was version {before})" if before is not None and before != mv.version else ""
    out = console()
    out.print(f"{mv.name}@{alias} -> version {mv.version}{moved}")
    for line in _who_follows(registry, mv.name, alias, mv.version):
        out.print(line)


def _who_follows(registry: Registry, name: str, alias: str, version: int) -> list[str]:
    """One line per endpoint using model ``name``: does it follow ``name@alias`` (swap) or is it pinned?"""
    from modelrunner.pipelines.targets import _refers, _served_pipeline, split_target
    from modelrunner.registry.refs import parse_ref

    lines = []
    for state in registry.endpoints():
        _, ref = split_target(state.target)
        try:
            parsed = parse_ref(ref)
        except InvalidArgument:
            continue
        if parsed.name == name:
            if parsed.alias == alias:
                lines.append(f"endpoint {state.name} follows {name}@{alias}: it swaps to version {version}")
            else:
                lines.append(f"endpoint {state.name} is pinned to {parsed}: does not follow {name}@{alias}")
            continue
        found = _served_pipeline(registry, state.target)
        steps = (
            [n for n, s in found[1].steps.items() if s.model and _refers(s.model, name, alias)]
            if found
            else []
        )
        if steps and found:
            lines.append(
                f"endpoint {state.name} follows {name}@{alias} in step {', '.join(steps)} of "
                f"pipeline {found[0].ref}: that step swaps to version {version}"
            )
    return lines or [f"no endpoint follows {name}@{alias}"]


def alias_delete(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to delete."),
) -> None:
    """Delete an alias of a model."""
    open_registry().delete_alias(name, alias)
    console().print(f"deleted {name}@{alias}")


def contract(
    ref: str = typer.Argument(..., help="name, name@3 or name@production."),
    fmt: ContractFormat = typer.Option(ContractFormat.proto, "--format", "-f", help="Output format."),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        "-e",
        help="proto: the endpoint a stub calls (package modelrunner.<endpoint>; default: the model name).",
    ),
) -> None:
    """Print a version's contract as proto3, JSON Schema, JSON or V2 model metadata."""
    registry = open_registry()
    mv = registry.resolve(ref)
    typer.echo(render_contract(registry, mv, fmt, endpoint=endpoint).rstrip("\n"))


def render_contract(
    registry: Registry, mv: ModelVersion, fmt: ContractFormat, *, endpoint: str | None = None
) -> str:
    """The contract of ``mv`` in ``fmt`` as text (:func:`modelrunner.contract.render.render_contract`)."""
    from modelrunner.contract.render import render_contract as render

    versions = [v.version for v in registry.model(mv.name).versions] if fmt is ContractFormat.v2 else []
    return render(mv.contract, fmt, name=mv.name, flavor=mv.flavor, versions=versions, endpoint=endpoint)


def audit(
    limit: int = typer.Option(50, "--limit", "-l", min=1, help="Show at most this many entries."),
    subject: str | None = typer.Option(None, "--subject", "-s", help="Only entries about this subject."),
) -> None:
    """Who pushed what, who moved which alias or endpoint, and when (newest first)."""
    entries = open_registry().audit(limit=limit + 1, subject=subject)
    more, entries = len(entries) > limit, entries[:limit]
    if not entries:
        console().print("no audit entries")
        return
    table = Table(title="audit", title_justify="left")
    for column in ("at", "actor", "action", "subject", "change"):
        table.add_column(column)
    for entry in entries:
        change = change_text(entry.before, entry.after)
        table.add_row(when(entry.at), entry.actor, entry.action, entry.subject, change)
    console().print(table)
    if more:
        console().print(f"newest {limit} entries shown; older ones: modelrunner audit --limit {limit * 10}")


GC_LABELS = {
    "artifact": "unreferenced artifact",
    "push": "push work folder",
    "fetch": "fetch work folder",
    "unpack": "unpack work folder",
    "upload": "partial upload",
}


def gc(
    min_age_s: float | None = typer.Option(
        None,
        "--min-age-s",
        min=0,
        help="Only remove what is older than this many seconds (default MODELRUNNER_ORPHAN_GRACE_S, 3600).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
) -> None:
    """Remove unreferenced artifacts and what killed pushes and fetches left; report the bytes freed."""
    from modelrunner.bundle.limits import human
    from modelrunner.registry.gc import collect

    registry = open_registry()
    removed = collect(registry, min_age_s, dry_run=dry_run)
    if not removed:
        age = registry.settings.orphan_grace_s if min_age_s is None else min_age_s
        typer.echo(f"nothing to remove (nothing unused older than {age:g} s)")
        return
    for item in removed:
        typer.echo(
            f"{'would remove' if dry_run else 'removed'} {GC_LABELS[item.kind]} {item.what} "
            f"({human(item.size)})"
        )
    total = sum(item.size for item in removed)
    typer.echo(
        f"{'would free' if dry_run else 'freed'} {human(total)} ({total} bytes) in {len(removed)} "
        f"item{'s' if len(removed) != 1 else ''}"
    )


def register(app: typer.Typer) -> None:
    """Add the registry commands to the main app."""
    app.command()(push)
    app.command()(models)
    app.command()(show)
    alias_app.command("set")(alias_set)
    alias_app.command("delete")(alias_delete)
    app.add_typer(alias_app, name="alias")
    app.command()(contract)
    app.command()(audit)
    app.command()(gc)
