"""The ``modelrunner`` command: a typer app; command groups register themselves from their modules."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from modelrunner.errors import ModelrunnerError

app = typer.Typer(
    name="modelrunner",
    help="Reusable MLOps: bundles, a registry, and a runner that hot-swaps models live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each exposing ``register(app)``. Order is the order in ``--help``.
COMMAND_MODULES: list[str] = ["models", "endpoints", "endpoint_cfg", "pipeline", "serve", "evaluate", "ui"]
# Which module registers each top-level command (tests/cli/test_main.py checks it against the modules).
COMMANDS: dict[str, str] = {
    **dict.fromkeys(("push", "models", "show", "alias", "contract", "audit"), "models"),
    **dict.fromkeys(("swap", "rollback", "endpoints"), "endpoints"),
    "endpoint": "endpoint_cfg", "pipeline": "pipeline", "serve": "serve",
    **dict.fromkeys(("evaluate", "promote", "gates"), "evaluate"),
    "ui": "ui",
}

_err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _root() -> None:
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
    module = COMMANDS.get(command or "")
    if module is None:
        _register_all()
    else:
        _register(module)


def _error_line(message: str) -> None:
    """One red line on stderr: markup in the message is escaped, newlines folded, never wrapped."""
    text = " ".join(str(message).split()) or "unknown error"
    _err.print(f"[red]error:[/red] {escape(text)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; turn every modelrunner error into one line and exit code 2.

    Usage errors also exit 2; an unexpected exception prints one line and exits 1 (its traceback goes to
    the log at DEBUG, shown with ``MODELRUNNER_DEBUG=1``).
    """
    debug = os.environ.get("MODELRUNNER_DEBUG", "") not in ("", "0", "false")
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else list(argv)
    _register_for(args)
    try:
        result = app(args=args, standalone_mode=False)
    except ModelrunnerError as exc:
        _error_line(str(exc))
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _err.print("[red]aborted[/red]")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except _USAGE_ERRORS as exc:  # bad option, missing argument, bad choice: usage + one error line
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2) or 2)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        logging.getLogger("modelrunner.cli").debug("unexpected error", exc_info=True)
        _error_line(f"unexpected {type(exc).__name__}: {exc} (MODELRUNNER_DEBUG=1 shows the traceback)")
        return 1
    # with standalone_mode=False click returns the exit code of typer.Exit / --help instead of raising
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
