"""``modelrunner ui``: the web catalog alone over the registry, for people who only browse."""

from __future__ import annotations

import typer


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; beyond loopback: needs a token."),
    port: int = typer.Option(8090, "--port", "-p", min=0, max=65535, help="Port to listen on."),
    serving_url: str = typer.Option(
        "http://127.0.0.1:8080",
        "--serving-url",
        help="Where the runner serves predictions (used in the copy-paste examples).",
    ),
) -> None:
    """Serve the web catalog (models, endpoints, pipelines, audit) over the registry at /ui."""
    import uvicorn

    from modelrunner.catalog.web import standalone_app
    from modelrunner.cli.models import open_registry
    from modelrunner.runner.workers import check_exposure
    from modelrunner.settings import Settings

    settings = Settings()
    check_exposure(host, settings)
    app = standalone_app(open_registry(), settings, serving_url)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"modelrunner catalog: http://{shown}:{port}/ui  (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    """Add ``ui`` to the main app."""
    app.command()(ui)
