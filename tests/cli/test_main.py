"""The CLI imports only the module of the command being run: the command -> module map must be right."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
from typer.main import get_group

from modelrunner.cli.main import COMMAND_MODULES, COMMANDS


def _commands_of(module: str) -> set[str]:
    app = typer.Typer()
    app.callback()(lambda: None)
    importlib.import_module(f"modelrunner.cli.{module}").register(app)
    return set(get_group(app).commands)


def test_every_command_maps_to_the_module_that_registers_it() -> None:
    found = {command: module for module in COMMAND_MODULES for command in _commands_of(module)}
    assert found == COMMANDS


def test_serve_imports_neither_the_other_commands_nor_the_registry() -> None:
    prefixes = ("modelrunner.cli.", "sqlalchemy", "sklearn")
    code = ("import sys; from modelrunner.cli.main import _register_for; _register_for(['serve', '--help']);"
            f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['modelrunner.cli.main', 'modelrunner.cli.serve']"


def test_help_and_unknown_commands_still_see_every_command() -> None:
    for args in (["--help"], ["no-such-command"]):
        out = subprocess.run([sys.executable, "-m", "modelrunner", *args], capture_output=True, text=True)
        text = out.stdout + out.stderr
        if args == ["--help"]:
            assert out.returncode == 0 and all(c in text for c in ("serve", "push", "promote", "pipeline"))
        else:
            assert out.returncode == 2 and "no-such-command" in text
