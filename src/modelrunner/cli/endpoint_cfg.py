"""``modelrunner endpoint set NAME --batch 32 --batch-latency-ms 5``: an endpoint's options, changed live.

Options live in the endpoint's desired state (``config``); every worker applies them at its next poll without
reloading the model. Through a running server's admin API (``--url``) when one answers, else straight into
the registry (runners sharing it pick the change up by themselves).
"""

from __future__ import annotations

from typing import Any

import typer

from modelrunner.cli.endpoints import DEFAULT_URL, URL_HELP, _client, server_answers
from modelrunner.cli.output import console
from modelrunner.errors import InvalidArgument

endpoint_app = typer.Typer(name="endpoint", help="Change one endpoint's options (batching) live.",
                           no_args_is_help=True)


@endpoint_app.command("set")
def set_options(
    name: str = typer.Argument(..., help="Endpoint name, e.g. digits."),
    batch: int | None = typer.Option(
        None, "--batch", help="max_batch_size: rows merged into one predict call (1 turns batching off)."),
    batch_latency_ms: float | None = typer.Option(
        None, "--batch-latency-ms", help="max_latency_ms: longest a request waits for others to join."),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Set NAME's batching (max_batch_size, max_latency_ms); the model keeps serving, no reload."""
    changes: dict[str, Any] = {}
    if batch is not None:
        changes["max_batch_size"] = batch
    if batch_latency_ms is not None:
        changes["max_latency_ms"] = batch_latency_ms
    if not changes:
        raise InvalidArgument("nothing to set: give --batch N and/or --batch-latency-ms MS")
    from modelrunner.runner.batching import BatchConfig

    BatchConfig.from_config(changes)  # a clear one-line error before anything is sent or written
    if server_answers(url):
        with _client(url) as client:
            state = client.configure(name, **changes)
        config, generation = state.get("config") or {}, state.get("generation")
    else:
        console().print(f"[yellow]no server answers at {url}: writing the desired state to the registry"
                        "[/yellow]")
        from modelrunner.cli.models import open_registry
        from modelrunner.runner.batching import set_endpoint_config

        new = set_endpoint_config(open_registry(), name, changes)
        config, generation = new.config, new.generation
    console().print(f"{name}: {_describe(config)} (generation {generation}); applied live, no reload")


def _describe(config: dict[str, Any]) -> str:
    from modelrunner.runner.batching import BatchConfig

    batching = BatchConfig.from_config(config)
    if not batching.enabled:
        return "batching off"
    return f"batching max_batch_size={batching.max_batch_size} max_latency_ms={batching.max_latency_ms:g}"


def register(app: typer.Typer) -> None:
    """Add the ``endpoint`` command group to the main app."""
    app.add_typer(endpoint_app)
