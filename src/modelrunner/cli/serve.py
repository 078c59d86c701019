"""``modelrunner serve``: run the runner (N worker processes on one port) that hot-swaps models live."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from modelrunner.cli.entry import WORKER
from modelrunner.errors import InvalidArgument

log = logging.getLogger(__name__)


def parse_endpoints(items: list[str]) -> dict[str, str]:
    """``["digits=digits@production", ...]`` -> ``{"digits": "digits@production"}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise InvalidArgument(
                f"invalid --endpoint {item!r}: expected NAME=TARGET, e.g. digits=digits@production"
            )
        out[name.strip()] = target.strip()
    return out


def export_on_demand(patterns: list[str], max_loaded: int, memory_budget: str) -> None:
    """Check the pattern endpoints and limits (one-line errors) and pass them to the worker processes
    (``MODELRUNNER_ENDPOINT_PATTERNS``, ``..._MAX_LOADED``, ``..._MEMORY_BUDGET``: runner/ondemand.py)."""
    from modelrunner.runner.demand_config import DemandConfig

    config = DemandConfig.build(patterns, max_loaded, memory_budget)
    if not patterns and (max_loaded or config.memory_budget):
        log.warning("--max-loaded / --memory-budget apply to pattern endpoints only (none given)")
    if patterns:
        os.environ["MODELRUNNER_ENDPOINT_PATTERNS"] = ",".join(str(p) for p in config.patterns)
    os.environ["MODELRUNNER_MAX_LOADED"] = str(max_loaded)
    os.environ["MODELRUNNER_MEMORY_BUDGET"] = str(config.memory_budget)


def export_security_options(
    require_auth: bool, trust_pickle: bool, cert: Path | None, key: Path | None
) -> None:
    """Pass the security flags to the worker processes (they read MODELRUNNER_* settings)."""
    if (cert is None) != (key is None):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise InvalidArgument(f"TLS file {path} does not exist")
    if require_auth:
        os.environ["MODELRUNNER_REQUIRE_AUTH_FOR_PREDICT"] = "1"
    if trust_pickle:
        os.environ["MODELRUNNER_TRUST_PICKLE"] = "1"
    if cert is not None and key is not None:
        os.environ["MODELRUNNER_TLS_CERT"] = str(cert.resolve())
        os.environ["MODELRUNNER_TLS_KEY"] = str(key.resolve())


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; beyond loopback: needs a token."),
    port: int = typer.Option(8080, "--port", "-p", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes sharing the port."),
    endpoint: list[str] = typer.Option(  # noqa: B006
        [],
        "--endpoint",
        "-e",
        help="NAME=TARGET written into the desired state first (repeatable); a NAME with one '*' is a "
        "pattern endpoint loaded on demand: 'tenant-*=tenant-*@production'.",
    ),
    max_loaded: int = typer.Option(
        0, "--max-loaded", min=0, help="Most pattern-endpoint models one worker keeps loaded (0: no limit)."
    ),
    memory_budget: str = typer.Option(
        "0", "--memory-budget", help="Estimated memory of one worker's pattern-endpoint models, e.g. 2GB."
    ),
    keep_previous: bool = typer.Option(
        False, "--keep-previous", help="Keep the last version loaded after a swap so a rollback is instant."
    ),
    grpc_port: int | None = typer.Option(
        None,
        "--grpc-port",
        min=0,
        max=65535,
        help="Also serve gRPC on this port: V2 (inference.GRPCInferenceService) and endpoints' Predict.",
    ),
    require_auth_for_predict: bool = typer.Option(
        False, "--require-auth-for-predict", help="Predict calls need a token with the predictor role."
    ),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", help="Load pickle artifacts without a trust decision."
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate: HTTP and gRPC over TLS."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
    timings: bool = typer.Option(
        False, "--timings", help="Log how long each step of every process's start took (docs/performance.md)."
    ),
) -> None:
    """Serve every endpoint of the registry's desired state; swaps happen live, with zero failed requests."""
    from modelrunner.runner import startup
    from modelrunner.runner.demand_config import is_pattern
    from modelrunner.runner.workers import serve as run_workers

    startup.mark("imports")
    if timings:
        os.environ[startup.ENV] = "1"  # the workers inherit it

    targets = parse_endpoints([e for e in endpoint if not is_pattern(e)])
    export_on_demand([e for e in endpoint if is_pattern(e)], max_loaded, memory_budget)
    export_security_options(require_auth_for_predict, trust_pickle, tls_cert, tls_key)
    logging.getLogger("modelrunner.runner").setLevel(logging.INFO)
    code = run_workers(
        None,  # read after the workers are spawned (loopback) or before anything listens (runner.workers)
        host,
        port,
        workers,
        targets,
        keep_previous=keep_previous,
        grpc_port=grpc_port,
        entry=WORKER,
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main app."""
    app.command()(serve)
