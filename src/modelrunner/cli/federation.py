"""``modelrunner remote add|list|remove`` and ``modelrunner pull`` (docs/federation.md);
``modelrunner push REF --remote NAME`` lives with ``push`` (cli/models.py) and calls :func:`push_remote`."""

from __future__ import annotations

import typer
from rich.table import Table

from modelrunner.cli.models import open_registry
from modelrunner.cli.output import console
from modelrunner.errors import InvalidArgument

remote_app = typer.Typer(
    help="Other modelrunner servers to pull versions from and push them to.", no_args_is_help=True
)


@remote_app.command("add")
def remote_add(
    name: str = typer.Argument(..., help="A short name: partner."),
    url: str = typer.Argument(..., help="The remote server: https://mr.partner.example."),
    token: str = typer.Option(..., "--token", help="A token of the remote (deployer: pull, admin: push)."),
    allow_license: list[str] = typer.Option(  # noqa: B006
        [], "--allow-license", help="SPDX licence accepted from/to this remote (repeatable; none: any)."
    ),
) -> None:
    """Add a remote; its token is kept in a file only you can read (docs/federation.md)."""
    from modelrunner.security import remotes

    with open_registry() as registry:
        remote = remotes.add(registry, name, url, token, allow_license)
    console().print(
        f"remote {remote.name} -> {remote.url} (licences: {', '.join(remote.allow_licenses) or 'any'})"
    )


@remote_app.command("list")
def remote_list() -> None:
    """The remotes: name, URL, licence allow-list (never their tokens)."""
    from modelrunner.security import remotes

    with open_registry() as registry:
        found = remotes.list_all(registry)
    table = Table()
    for column in ("name", "url", "licences"):
        table.add_column(column)
    for remote in found:
        table.add_row(remote.name, remote.url, ", ".join(remote.allow_licenses) or "any")
    console().print(table)


@remote_app.command("remove")
def remote_remove(name: str = typer.Argument(..., help="The remote's name.")) -> None:
    """Remove a remote and its stored token."""
    from modelrunner.security import remotes

    with open_registry() as registry:
        remotes.remove(registry, name)
    console().print(f"removed remote {name}")


def pull(
    source: str = typer.Argument(..., help="REMOTE:MODEL@REF, e.g. partner:digits@production."),
    as_name: str | None = typer.Option(None, "--as", help="Local model name (default: the remote's)."),
) -> None:
    """Copy a version from a remote: bundle, contract, licence, lineage (origin recorded), sha256 checked."""
    from modelrunner.security import federation

    remote, sep, ref = source.partition(":")
    if not sep or not remote or not ref:
        raise InvalidArgument(f"invalid source {source!r}: expected REMOTE:MODEL@REF (partner:digits@3)")
    with open_registry() as registry:
        mv = federation.pull(registry, remote, ref, as_name or ref.partition("@")[0])
    origin = mv.lineage.get("extra", {}).get("origin", {})
    console().print(
        f"{mv.name} version {mv.version} <- {remote}:{origin.get('ref', ref)} "
        f"(sha256 {str(origin.get('sha256', ''))[:12]} verified, license {mv.license or '-'})"
    )


def push_remote(ref: str, remote: str, name: str | None) -> None:
    """``modelrunner push REF --remote NAME``: send a version to a remote's import route."""
    from modelrunner.security import federation

    with open_registry() as registry:
        answer = federation.push(registry, ref, remote, name)
    console().print(f"{remote}: {answer['name']} version {answer['version']} <- {ref}")


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
    app.command()(pull)
