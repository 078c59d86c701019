"""Onboarding commands: ``import mlflow``, ``import onnx`` (a model from elsewhere -> a bundle, pushed) and
``optimize`` (a registered sklearn model -> a checked ONNX version)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelrunner.cli.output import console
from modelrunner.errors import InvalidArgument

if TYPE_CHECKING:
    from modelrunner.bundle.bundle import Bundle
    from modelrunner.onboarding.optimize import Outcome

import_app = typer.Typer(
    help="Import a model saved elsewhere (MLflow, ONNX) as a bundle and push it.", no_args_is_help=True
)

_NAME = typer.Option(..., "--name", "-n", help="Model name in the registry.")
_ALIAS = typer.Option(None, "--alias", "-a", help="Point this alias at the new version.")
_PUSH = typer.Option(True, "--push/--no-push", help="Push the bundle to the registry (default) or not.")
_OUT = typer.Option(None, "--output", "-o", help="Also keep the bundle folder here (needed with --no-push).")


def _import(
    write: Callable[[Path], Bundle], name: str, alias: str | None, push: bool, output: Path | None
) -> None:
    """Write the bundle (to ``output`` or a temporary folder) and push it."""
    if not push and output is None:
        raise InvalidArgument("--no-push needs --output BUNDLE (where to write the bundle)")
    with tempfile.TemporaryDirectory(prefix="mr-import-") as tmp:
        bundle = write(output if output is not None else Path(tmp) / name)
        fields = ", ".join(f"{f.name}: {f.describe()}" for f in bundle.contract.inputs)
        out = console()
        out.print(f"bundle {bundle.name} ({bundle.manifest.flavor}) inputs {fields}")
        if output is not None:
            out.print(f"written to {output}")
        if push:
            from modelrunner.registry.registry import Registry

            with Registry.from_env() as registry:
                mv = registry.push(bundle.path, name=name, alias=alias)
            extra = f"  alias {alias}" if alias else ""
            out.print(f"{mv.name} version {mv.version}{extra}  sha256 {mv.sha256[:12]}  flavor {mv.flavor}")


def import_mlflow(
    directory: Path = typer.Argument(..., help="MLflow model folder (holding MLmodel)."),
    name: str = _NAME,
    alias: str | None = _ALIAS,
    push: bool = _PUSH,
    output: Path | None = _OUT,
) -> None:
    """Import an MLflow model folder: signature -> contract, input example, requirements, run id."""
    from modelrunner.onboarding.mlflow import import_mlflow as run

    _import(lambda dest: run(directory, dest, name=name), name, alias, push, output)


def import_onnx(
    file: Path = typer.Argument(..., help="An .onnx file."),
    name: str = _NAME,
    alias: str | None = _ALIAS,
    push: bool = _PUSH,
    output: Path | None = _OUT,
) -> None:
    """Import a plain ONNX file; the contract comes from the graph (dynamic axes -> ?)."""
    from modelrunner.onboarding.onnx_file import import_onnx as run

    _import(lambda dest: run(file, dest, name=name), name, alias, push, output)


def optimize(
    ref: str = typer.Argument(..., help="A registered sklearn model, e.g. digits@3 or digits@production."),
    to: str = typer.Option("onnx", "--to", help="Target format (onnx)."),
    quantize: str | None = typer.Option(None, "--quantize", help="dynamic: int8 weights (MLPs)."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Extra rows to check: .npz with the inputs and target (accuracy is reported from it).",
    ),
    require: list[str] = typer.Option(
        [],
        "--require",
        "-r",  # noqa: B006
        help='Gate, e.g. "accuracy_change>=-0.01" (repeatable).',
    ),
    alias: str | None = _ALIAS,
    served: bool = typer.Option(
        False,
        "--served",
        help="Also measure both served over HTTP (one worker, "
        "concurrency 4, 400 one-row requests each; adds ~10-20 s).",
    ),
) -> None:
    """Convert a sklearn model to ONNX; push it as a new version only when its outputs match."""
    from modelrunner.onboarding.optimize import optimize as run
    from modelrunner.registry.registry import Registry

    if to != "onnx":
        raise InvalidArgument(f"--to {to!r}: only onnx is supported")
    with Registry.from_env() as registry:
        outcome = run(
            registry, ref, quantize=quantize, data=data, requirements=require, alias=alias, served=served
        )
    _report(outcome, quantize)
    if outcome.failed:
        raise typer.Exit(1)


def _report(outcome: Outcome, quantize: str | None) -> None:
    out = console()
    b, a = outcome.before, outcome.after
    what = "the float ONNX model's outputs" if quantize else "outputs"
    out.print(
        f"checked {outcome.rows_checked} rows: {what} equal to {outcome.source.ref}'s "
        "(labels identical, floats within 1e-4)"
    )
    out.print(
        f"in-process single-row p50 {b.p50_ms:.3f} ms -> {a.p50_ms:.3f} ms ({outcome.speedup:.1f}x); "
        f"batch {b.rows_per_s:,.0f} -> {a.rows_per_s:,.0f} rows/s ({outcome.throughput_gain:.1f}x)"
    )
    if outcome.served:
        sb, sa = outcome.served["before"], outcome.served["after"]
        out.print(
            f"served (HTTP, 1 worker, concurrency 4): p50 {sb['p50_ms']:.2f} ms -> "
            f"{sa['p50_ms']:.2f} ms ({sb['p50_ms'] / sa['p50_ms']:.1f}x); "
            f"{sb['qps']:,.0f} -> {sa['qps']:,.0f} requests/s"
        )
    m = outcome.metrics
    if quantize and "accuracy_change" in m:
        out.print(
            f"quantized ({quantize}): accuracy {m['accuracy_before']:.4f} -> {m['accuracy']:.4f} "
            f"({m['accuracy_change']:+.4f}); labels agree with the original on {m['agreement']:.2%}"
        )
    elif quantize and "agreement" in m:
        out.print(
            f"quantized ({quantize}): labels agree with the original on {m['agreement']:.2%} "
            "(give --data with a target for accuracy)"
        )
    if outcome.failed:
        out.print(f"not pushed: requirement(s) not met: {'; '.join(outcome.failed)}")
    elif outcome.version is not None:
        out.print(f"{outcome.version.ref} pushed (parent {outcome.source.ref}, flavor onnx)")


def register(app: typer.Typer) -> None:
    """Add ``import mlflow``, ``import onnx`` and ``optimize`` to the main app."""
    import_app.command("mlflow")(import_mlflow)
    import_app.command("onnx")(import_onnx)
    app.add_typer(import_app, name="import")
    app.command()(optimize)
