"""``modelrunner endpoint create|delete|set``: make or remove an endpoint; change its options live.

``create NAME TARGET`` is the CLI's way (besides ``serve --endpoint``) to add an endpoint: ``swap`` refuses
unknown names so that a typo cannot start serving a second endpoint. ``delete NAME`` removes it from the
desired state; every worker unloads it and drops its metrics. ``set NAME --batch 32 --timeout 10`` changes
options in the desired state (``config``); every worker applies them at its next poll without
reloading the model. Each goes through a running server's admin API (``--url``) when one answers, else
straight into the registry (runners sharing it pick the change up by themselves).
"""

from __future__ import annotations

from typing import Any

import typer

from modelrunner.cli.endpoints import (
    DEFAULT_URL,
    URL_HELP,
    _client,
    _fallback_note,
    _print_state,
    _print_swap_result,
    _wait_in_registry,
    server_answers,
)
from modelrunner.cli.output import console
from modelrunner.errors import AlreadyExists, InvalidArgument

endpoint_app = typer.Typer(
    name="endpoint",
    no_args_is_help=True,
    help="Create or delete an endpoint; change its options (batching, limits) live.",
)


@endpoint_app.command("create")
def create(
    name: str = typer.Argument(..., help="New endpoint name, e.g. digits."),
    target: str = typer.Argument(..., help="What it serves: digits@production, digits@4, ..."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until every live worker serves it."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait with --wait."),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Create endpoint NAME serving TARGET (an existing NAME is refused: use swap to change it)."""
    if server_answers(url):
        with _client(url) as client:
            _refuse_existing(name, [e["name"] for e in client.endpoints()])
            _print_swap_result(client.create(name, target, wait=wait, timeout=timeout))
        return
    _fallback_note(url)
    from modelrunner.cli.models import open_registry
    from modelrunner.pipelines.targets import resolve_target

    registry = open_registry()
    _refuse_existing(name, [e.name for e in registry.endpoints()])
    resolve_target(registry, target)  # a clear NotFound / InvalidArgument before anything is written
    state = registry.set_endpoint(name, target)
    _print_state(state)
    if wait:
        _wait_in_registry(registry, state, timeout)


def _refuse_existing(name: str, known: list[str]) -> None:
    if name in known:
        raise AlreadyExists(
            f"endpoint {name!r} already exists: modelrunner swap {name} TARGET changes what it serves"
        )


@endpoint_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Endpoint to stop serving."),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Stop serving NAME: it leaves the desired state, every worker unloads it and drops its metrics."""
    if server_answers(url):
        with _client(url) as client:
            client.delete(name)
    else:
        _fallback_note(url)
        from modelrunner.cli.models import open_registry

        open_registry().delete_endpoint(name)
    console().print(f"deleted endpoint {name}; workers unload it")


@endpoint_app.command("set")
def set_options(
    name: str = typer.Argument(..., help="Endpoint name, e.g. digits."),
    batch: int | None = typer.Option(
        None, "--batch", help="max_batch_size: rows merged into one predict call (1 turns batching off)."
    ),
    no_batch: bool = typer.Option(False, "--no-batch", help="batch: false, batching off for any model."),
    auto_batch: bool = typer.Option(
        False, "--auto-batch", help="Back to the default: batching on for batch-safe flavors."
    ),
    batch_latency_ms: float | None = typer.Option(
        None, "--batch-latency-ms", help="max_latency_ms: longest a request waits for others to join."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="max_concurrency: predict calls running at once per worker."
    ),
    queue: int | None = typer.Option(
        None, "--queue", help="max_queue: requests waiting for a thread per worker; more get a 503."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="timeout_s: longest a request waits plus runs (0: none); then a 504."
    ),
    log_predictions: bool | None = typer.Option(
        None,
        "--log-predictions/--no-log-predictions",
        help="log_predictions: log every answer, or none (default: only while an experiment runs).",
    ),
    log_inputs: float | None = typer.Option(
        None, "--log-inputs", help="log_inputs: fraction of logged answers whose inputs are logged (0-1)."
    ),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Set NAME's batching (max_batch_size, max_latency_ms), limits (max_concurrency, max_queue,
    timeout_s) and prediction log (log_predictions, log_inputs); the model keeps serving, no reload."""
    given = {
        "max_batch_size": batch,
        "max_latency_ms": batch_latency_ms,
        "max_concurrency": concurrency,
        "max_queue": queue,
        "timeout_s": timeout,
        "log_predictions": log_predictions,
        "log_inputs": log_inputs,
    }
    changes: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    changes.update(_batch_switch(batch, no_batch, auto_batch))
    if not changes:
        raise InvalidArgument(
            "nothing to set: give --batch, --no-batch, --auto-batch, --batch-latency-ms, --concurrency, "
            "--queue, --timeout, --log-predictions or --log-inputs"
        )
    from modelrunner.runner.config import check_config

    check_config(changes)  # a clear one-line error before anything is sent or written
    if server_answers(url):
        with _client(url) as client:
            state = client.configure(name, **changes)
        config, generation = state.get("config") or {}, state.get("generation")
    else:
        _fallback_note(url)
        from modelrunner.cli.models import open_registry
        from modelrunner.runner.config import set_endpoint_config

        new = set_endpoint_config(open_registry(), name, changes)
        config, generation = new.config, new.generation
    console().print(f"{name}: {_describe(config)} (generation {generation}); applied live, no reload")


def _batch_switch(size: int | None, off: bool, auto: bool) -> dict[str, Any]:
    """The ``batch`` option of ``--no-batch`` / ``--auto-batch`` (one of them, not with ``--batch``)."""
    if [size is not None, off, auto].count(True) > 1:
        raise InvalidArgument("give only one of --batch, --no-batch and --auto-batch")
    if off:
        return {"batch": False}
    if auto:
        return {"batch": None, "max_batch_size": None}
    return {}


def _describe(config: dict[str, Any]) -> str:
    from modelrunner.runner.batching import BatchConfig
    from modelrunner.runner.limits import KEYS

    text = BatchConfig.from_config(config).describe()
    limits = ", ".join(f"{key}={config[key]:g}" for key in KEYS if config.get(key) is not None)
    text = f"{text}, {limits}" if limits else text
    logged = config.get("log_predictions")
    if logged is not None:
        text += ", log every answer" if logged else ", log nothing"
    if config.get("log_inputs"):
        text += f", log_inputs={config['log_inputs']:g}"
    return text


def register(app: typer.Typer) -> None:
    """Add the ``endpoint`` command group to the main app."""
    app.add_typer(endpoint_app)
