"""The ``modelrunner`` command: a typer app; command groups register themselves from their modules."""

from __future__ import annotations

from modelrunner.runner import startup  # noqa: F401 - first: ends the "spawn" span of `serve` (startup.py)

# isort: split
import functools
import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from modelrunner.errors import ModelrunnerError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="modelrunner",
    help="Reusable MLOps: bundles, a registry, and a runner that hot-swaps models live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each exposing ``register(app)``. Order is the order in ``--help``.
COMMAND_MODULES: list[str] = [
    "models",
    "endpoints",
    "endpoint_cfg",
    "pipeline",
    "serve",
    "evaluate",
    "experiment",
    "monitor",
    "train",
    "ui",
    "init",
    "onboard",
    "security",
    "federation",
]
# Which module registers each top-level command (tests/cli/test_main.py checks it against the modules).
COMMANDS: dict[str, str] = {
    **dict.fromkeys(("push", "models", "show", "alias", "contract", "audit", "gc"), "models"),
    **dict.fromkeys(("swap", "rollback", "endpoints"), "endpoints"),
    "endpoint": "endpoint_cfg",
    "pipeline": "pipeline",
    "serve": "serve",
    **dict.fromkeys(("evaluate", "promote", "gates"), "evaluate"),
    "experiment": "experiment",
    "monitor": "monitor",
    "train": "train",
    "ui": "ui",
    "init": "init",
    **dict.fromkeys(("import", "optimize"), "onboard"),
    **dict.fromkeys(("token", "trust"), "security"),
    **dict.fromkeys(("remote", "pull"), "federation"),
}


@functools.cache
def _err() -> Console:
    """The console of error lines, made on first use: rich's console is not imported by a command that
    succeeds (``serve`` starts sooner)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


_TYPE_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "int range": "INTEGER",
    "float range": "FLOAT",
}


def _classic_label(label: str | None) -> str | None:
    """typer's ``<str>`` / ``<list[str]>`` / ``<a|b>`` -> click's ``TEXT`` / ``TEXT`` / ``[a|b]``."""
    if not label or not (label.startswith("<") and label.endswith(">")):
        return label
    inner = label[1:-1]
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]  # a repeatable option takes one value per use
    if "|" in inner:
        return f"[{inner}]"
    return _TYPE_NAMES.get(inner, inner.upper())


def _classic_help() -> None:
    """Help in click's style: ``BUNDLE``, ``TEXT``, no metavar on a flag.

    typer 0.2x renders ``Usage: ... {bundle}``, ``--name <str>``, ``--help <bool>``. Its parameter classes
    have no setting for it, so their three display methods are wrapped; a typer without them is left alone.
    """
    core = importlib.import_module("typer.core")
    param, option, argument = (
        getattr(core, n, None) for n in ("_TyperParameter", "TyperOption", "TyperArgument")
    )
    hooks: tuple[Any, ...] = (
        getattr(param, "display_type", None),
        getattr(option, "display_type_rich", None),
        getattr(argument, "_usage_display_name", None),
    )
    if None in hooks or getattr(hooks[0], "classic", False):
        return
    display_type, option_display, usage_name = hooks

    def classic_type(self: Any, ctx: Any) -> str | None:
        return _classic_label(display_type(self, ctx))

    def option_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None  # --help, --wait: nothing to type after them
        return _classic_label(option_display(self, ctx))

    def usage(self: Any) -> str:  # {bundle} -> BUNDLE, [name] -> [NAME], {candidates}... -> CANDIDATES...
        raw = str(usage_name(self))
        dots = "..." if raw.endswith("...") else ""
        name = raw[: len(raw) - len(dots)]
        if name[:1] in "{[" and name[-1:] in "}]":
            name = name[1:-1].upper() if name[0] == "{" else f"[{name[1:-1].upper()}]"
        return name + dots

    classic_type.classic = True  # type: ignore[attr-defined]
    param.display_type = classic_type  # type: ignore[union-attr]
    option.display_type_rich = option_type  # type: ignore[union-attr]
    argument._usage_display_name = usage  # type: ignore[union-attr]


_classic_help()


def version_text() -> str:
    """``modelrunner 0.1.0``: the installed distribution's version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"modelrunner {version('modelrunner')}"
    except PackageNotFoundError:
        from modelrunner import __version__

        return f"modelrunner {__version__}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """Reusable MLOps: bundles, a registry, and a runner that hot-swaps models live."""
    # A callback keeps ``modelrunner COMMAND`` a group even when only one command module is registered.


_registered: set[str] = set()


def _usage_errors() -> tuple[type[Exception], ...]:
    """Usage-error classes: typer >= 0.20 vendors click (``typer.TyperException``); older typer uses click."""
    found: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover - click is optional with a vendoring typer
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def _register_all() -> None:
    """Import every command module once; a broken one is reported in one line, the others still work."""
    for name in COMMAND_MODULES:
        _register(name)


def _register(name: str) -> None:
    if name in _registered:
        return
    _registered.add(name)
    try:
        importlib.import_module(f"modelrunner.cli.{name}").register(app)
    except Exception as exc:  # noqa: BLE001 - one broken command group must not take down the CLI
        logging.getLogger("modelrunner.cli").debug("cannot load %s", name, exc_info=True)
        _error_line(f"the '{name}' commands are unavailable: {type(exc).__name__}: {exc}")


def _register_for(args: list[str]) -> None:
    """Import only the module of the command being run (``serve`` starts ~0.6 s sooner than with every
    module imported); the whole CLI for ``--help``, no command, or an unknown one (typer's suggestions)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command is None and "--version" in args:
        return  # answered by the root callback: no command module needed
    module = COMMANDS.get(command or "")
    if module is None:
        _register_all()
    else:
        _register(module)


def _error_line(message: str) -> None:
    """One red line on stderr: markup in the message is escaped, newlines folded, never wrapped."""
    from rich.markup import escape

    text = " ".join(str(message).split()) or "unknown error"
    _err().print(f"[red]error:[/red] {escape(text)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; turn every modelrunner error into one line and exit code 2.

    Usage errors also exit 2; an unexpected exception prints one line and exits 1 (its traceback goes to
    the log at DEBUG, shown with ``MODELRUNNER_DEBUG=1``).
    """
    debug = os.environ.get("MODELRUNNER_DEBUG", "") not in ("", "0", "false")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    args = sys.argv[1:] if argv is None else list(argv)
    _register_for(args)
    try:
        return _run(args)
    finally:
        _close_registries()  # main() also runs in-process (tests, scripts): no connection left open


def _close_registries() -> None:
    """Close what ``cli.models.open_registry`` opened. A command that never imported ``cli.models`` opened
    nothing, and importing it (rich, the registry, SQLAlchemy, contracts: ~0.1 s of CPU, 0.7 s on a busy
    machine) before running ``serve`` delayed its workers' spawn by as much."""
    models = sys.modules.get("modelrunner.cli.models")
    if models is not None:
        models.close_registries()


def _run(args: list[str]) -> int:
    """Run the command; every error becomes one line and an exit code (see :func:`main`)."""
    try:
        result = app(args=args, standalone_mode=False)
    except ModelrunnerError as exc:
        _error_line(str(exc))
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _err().print("[red]aborted[/red]")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except _USAGE_ERRORS as exc:  # bad option, missing argument, bad choice: usage + one error line
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2) or 2)
    except OSError as exc:
        if exc.filename is None:
            raise_unexpected(exc)
            return 1
        _error_line(_path_problem(exc))  # e.g. an unwritable MODELRUNNER_HOME: the user can fix it
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        raise_unexpected(exc)
        return 1
    # with standalone_mode=False click returns the exit code of typer.Exit / --help instead of raising
    return result if isinstance(result, int) else 0


def raise_unexpected(exc: BaseException) -> None:
    """Report an unexpected error in one line; its traceback goes to the log at DEBUG."""
    logging.getLogger("modelrunner.cli").debug("unexpected error", exc_info=exc)
    _error_line(f"unexpected {type(exc).__name__}: {exc} (MODELRUNNER_DEBUG=1 shows the traceback)")


def _path_problem(exc: OSError) -> str:
    """``cannot use /x/artifacts: No such file or directory (MODELRUNNER_HOME=/x)``."""
    path = str(exc.filename)
    problem = exc.strerror or type(exc).__name__
    home = os.environ.get("MODELRUNNER_HOME", "").rstrip("/")
    inside = home and (path.startswith(home) or home.startswith(path))  # the home, in it, or a parent
    where = f" (MODELRUNNER_HOME={home})" if inside else ""
    if exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    return f"cannot use {path}: {problem}{where}"


if __name__ == "__main__":
    sys.exit(main())
