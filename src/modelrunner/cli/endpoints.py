"""Runner commands: swap, rollback, endpoints.

They talk to a running server's admin API (``--url``). When no server answers there, ``swap`` and
``rollback`` write the desired state straight into the registry (runners sharing it pick it up by
themselves) and ``endpoints`` shows the desired state and worker rows recorded in the registry.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import typer
from rich.table import Table

from modelrunner.cli.models import open_registry
from modelrunner.cli.output import console, when
from modelrunner.errors import DeadlineExceeded, NotFound, SwapFailed
from modelrunner.pipelines.targets import resolve_target

if TYPE_CHECKING:
    from modelrunner.registry import Registry
    from modelrunner.registry.types import EndpointState
    from modelrunner.runner.client import AdminClient

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
LIVE_S = 10.0  # a worker whose heartbeat is older than this is not counted
URL_HELP = "Admin API of a running server; without one answering, the registry is changed directly."


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """True when something answers HTTP at ``url`` (``/healthz``); False when nothing listens."""
    try:
        httpx.get(url.rstrip("/") + "/healthz", timeout=timeout)
    except httpx.TransportError:
        return False
    return True


def _client(url: str) -> AdminClient:
    from modelrunner.runner.client import AdminClient
    from modelrunner.settings import Settings

    settings = Settings()
    return AdminClient(url, token=settings.token or settings.admin_token)


def _version(w: dict[str, Any]) -> str:
    if w.get("ref"):
        return str(w["ref"])
    return f"{w.get('model')}@{w['version']}" if w.get("version") is not None else "-"


def _print_swap_result(result: dict[str, Any]) -> None:
    """Print the admin API's answer to a swap: desired state, outcome, then one row per worker."""
    out = console()
    state = result.get("endpoint") or {}
    outcome = result.get("outcome", "pending")
    out.print(
        f"{state.get('name', '?')} -> {state.get('target', '?')} (generation {state.get('generation', '?')}, "
        f"was {state.get('previous_target') or '-'}): {outcome}"
        + (f": {result['message']}" if result.get("message") else "")
    )
    workers = result.get("workers") or []
    if not workers:
        return
    table = Table(title="workers", title_justify="left")
    for column in ("worker", "pid", "state", "version", "load ms", "warm-up ms", "error"):
        table.add_column(column)
    for w in workers:
        table.add_row(
            str(w.get("runner_id") or "-"),
            str(w.get("pid") or "-"),
            str(w.get("state") or "-"),
            _version(w),
            _ms(w.get("load_ms")),
            _ms(w.get("warmup_ms")),
            str(w.get("error") or ""),
        )
    out.print(table)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"


def _fallback_note(url: str) -> None:
    console().print(f"[yellow]no server answers at {url}: writing the desired state to the registry[/yellow]")


def _print_state(state: EndpointState) -> None:
    console().print(
        f"{state.name} -> {state.target} (generation {state.generation}, "
        f"was {state.previous_target or '-'}); runners using this registry swap by themselves"
    )


def swap(
    endpoint: str = typer.Argument(..., help="Endpoint name, e.g. digits."),
    target: str = typer.Argument(..., help="What it should serve: digits@4, digits@production, ..."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until every live worker serves it."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait with --wait."),
    force: bool = typer.Option(False, "--force", help="Swap even if the contract is incompatible."),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Point the existing ENDPOINT at TARGET, live: load, warm up, check the contract, switch, drain."""
    with _create_hint(endpoint, target):
        if server_answers(url):
            with _client(url) as client:
                _print_swap_result(client.swap(endpoint, target, wait=wait, timeout=timeout, force=force))
            return
        _fallback_note(url)
        registry = open_registry()
        resolve_target(registry, target)  # a clear NotFound / InvalidArgument before anything is written
        state = registry.set_endpoint(endpoint, target, force=force, create=False)
    _print_state(state)
    if wait:
        _wait_in_registry(registry, state, timeout)


@contextlib.contextmanager
def _create_hint(endpoint: str, target: str) -> Iterator[None]:
    """An unknown endpoint is refused (never created by a typo); the error says how to create one."""
    try:
        yield
    except NotFound as exc:
        if not str(exc).startswith("unknown endpoint"):
            raise
        raise NotFound(
            f"{exc}; swap only changes an existing endpoint, to create one: "
            f"modelrunner endpoint create {endpoint} {target}"
        ) from None


def rollback(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until every live worker serves it."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait with --wait."),
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
) -> None:
    """Swap ENDPOINT back to its previous target."""
    if server_answers(url):
        with _client(url) as client:
            _print_swap_result(client.rollback(endpoint, wait=wait, timeout=timeout))
        return
    _fallback_note(url)
    registry = open_registry()
    state = registry.rollback_endpoint(endpoint)
    _print_state(state)
    if wait:
        _wait_in_registry(registry, state, timeout)


def _wait_in_registry(registry: Registry, state: EndpointState, timeout: float) -> None:
    """Without a server to ask: poll the workers' status rows until every live one serves the target."""
    mv = resolve_target(registry, state.target)
    deadline = time.monotonic() + timeout
    while True:
        rows = registry.workers(state.name, alive_within_s=LIVE_S)
        if not rows:
            console().print(f"no live worker serves {state.name}: the next runner to start will serve it")
            return
        failed = [w for w in rows if w.state == "failed" and (w.generation or 0) >= state.generation]
        if failed:
            raise SwapFailed(f"pid {failed[0].pid} could not serve {state.target}: {failed[0].error}")
        if all(w.state == "serving" and w.model == mv.name and w.version == mv.version for w in rows):
            items = [{**asdict(state), "workers": [asdict(w) for w in rows]}]
            console().print(_endpoints_table(items, "workers"))
            return
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"not every worker serves {mv.ref} after {timeout:g}s")
        time.sleep(0.2)


def _endpoints_table(items: list[dict[str, Any]], title: str) -> Table:
    """One row per endpoint x runner host x worker: endpoint, target, host, worker pid, version, state, since
    (the desired state changed), seen (the worker's last heartbeat)."""
    table = Table(title=title, title_justify="left")
    for column in ("endpoint", "target", "host", "worker", "version", "state", "load ms", "since", "seen"):
        table.add_column(column)
    for item in items:
        since = _time(item.get("updated_at"))
        workers = sorted(item.get("workers") or [], key=lambda w: (str(w.get("host")), w.get("pid") or 0))
        if not workers:
            table.add_row(
                str(item["name"]), str(item["target"]), "-", "-", "-", "no live worker", "-", since, "-"
            )
        for w in workers:
            state = str(w.get("state") or "-") + (f": {w['error']}" if w.get("error") else "")
            table.add_row(
                str(item["name"]),
                str(item["target"]),
                str(w.get("host") or "-"),
                f"pid {w.get('pid')}",
                _version(w),
                state,
                _ms(w.get("load_ms")),
                since,
                _time(w.get("heartbeat")),
            )
    return table


def _time(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    return when(value) if isinstance(value, datetime) or value is None else str(value)


def _registry_items(alive_within_s: float) -> list[dict[str, Any]]:
    """The registry's desired state with each endpoint's live worker rows, as the admin API shapes them."""
    with open_registry() as registry:
        workers = [asdict(w) for w in registry.workers(alive_within_s=alive_within_s)]
        states = registry.endpoints()
    items = []
    for state in states:
        item = asdict(state)
        item["workers"] = [w for w in workers if w["endpoint"] == state.name]
        items.append(item)
    return items


def endpoints(
    url: str = typer.Option(DEFAULT_URL, "--url", help=URL_HELP),
    alive_within_s: float = typer.Option(
        LIVE_S, "--alive-within", help="Without a server: only workers seen in the last N seconds."
    ),
) -> None:
    """List endpoints: target, version per worker, state, since."""
    if server_answers(url):
        with _client(url) as client:
            table = _endpoints_table(client.endpoints(), f"endpoints served at {url}")
    else:
        console().print(f"[yellow]no server answers at {url}: showing the registry[/yellow]")
        table = _endpoints_table(_registry_items(alive_within_s), "endpoints (desired state in the registry)")
    if not table.row_count:
        raise NotFound(
            "no endpoints yet: modelrunner endpoint create NAME TARGET, or modelrunner serve "
            "--endpoint NAME=TARGET"
        )
    console().print(table)


def register(app: typer.Typer) -> None:
    """Add the runner commands to the main app."""
    app.command()(swap)
    app.command()(rollback)
    app.command()(endpoints)
