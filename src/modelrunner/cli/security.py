"""``modelrunner token create|list|revoke`` and ``modelrunner trust REF`` (docs/security.md).

They change the registry directly, as ``push`` and ``alias`` do: whoever reaches the registry database is
an admin. The token value is printed once; only a KDF hash of it is stored.
"""

from __future__ import annotations

import typer
from rich.table import Table

from modelrunner.cli.models import open_registry
from modelrunner.cli.output import console, when

token_app = typer.Typer(
    help="API tokens with roles (viewer, predictor, deployer, admin).", no_args_is_help=True
)


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., "--role", help="viewer, predictor, deployer or admin."),
    name: str = typer.Option(..., "--name", help="Unique name; the audit log records it as token:NAME."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime: 30d, 12h, 90m, 2w (default none)."),
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from modelrunner.registry import tokens

    lifetime = tokens.parse_duration(expires) if expires else None
    with open_registry() as registry:
        info, value = tokens.create(registry, name, role, expires_in=lifetime)
    typer.echo(value)
    expiry = when(info.expires_at) if info.expires_at else "never"
    typer.echo(f"token {info.name!r} ({info.role}), expires {expiry}; shown once, store it now", err=True)


@token_app.command("list")
def token_list() -> None:
    """The tokens: name, role, id, created, expiry (never their values)."""
    from modelrunner.registry import tokens

    with open_registry() as registry:
        found = tokens.list_all(registry)
    table = Table()
    for column in ("name", "role", "id", "created", "by", "expires"):
        table.add_column(column)
    for t in found:
        expiry = when(t.expires_at) + (" (expired)" if t.expired else "") if t.expires_at else "never"
        table.add_row(t.name, t.role, t.token_id, when(t.created_at), t.created_by, expiry)
    console().print(table)


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: servers refuse it within MODELRUNNER_TOKEN_CACHE_S (default 5 s)."""
    from modelrunner.registry import tokens

    with open_registry() as registry:
        info = tokens.revoke(registry, name)
    console().print(f"revoked token {info.name!r} ({info.role})")


def trust(
    ref: str = typer.Argument(..., help="The version whose pickle artifact runners may load: digits@3."),
) -> None:
    """Record that a version's pickle artifact may be loaded by runners (who and when; audited)."""
    from modelrunner.security.trust import trust as record

    with open_registry() as registry:
        row = record(registry, ref)
    console().print(
        f"trusted {row['model']}@{row['version']} (sha256 {row['sha256'][:12]}) by "
        f"{row['trusted_by']} at {when(row['trusted_at'])}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.command()(trust)
