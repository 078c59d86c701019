"""The CLI imports only the module of the command being run: the command -> module map must be right."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_group

from modelrunner.cli.main import COMMAND_MODULES, COMMANDS
from support.cli_helpers import Cli


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
    code = (
        "import sys; from modelrunner.cli.main import _register_for; _register_for(['serve', '--help']);"
        f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['modelrunner.cli.entry', 'modelrunner.cli.main', 'modelrunner.cli.serve']"


def test_help_and_unknown_commands_still_see_every_command() -> None:
    for args in (["--help"], ["no-such-command"]):
        out = subprocess.run([sys.executable, "-m", "modelrunner", *args], capture_output=True, text=True)
        text = out.stdout + out.stderr
        if args == ["--help"]:
            assert out.returncode == 0 and all(c in text for c in ("serve", "push", "promote", "pipeline"))
        else:
            assert out.returncode == 2 and "no-such-command" in text


def test_version_prints_the_installed_version(cli: Cli) -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.code == 0, result.err
    assert result.out == f"modelrunner {version('modelrunner')}\n" == "modelrunner 0.1.0\n"


def _every_command(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _every_command(command, (*path, name))


def test_help_shows_click_style_metavars(cli: Cli) -> None:
    """No ``{bundle}``, ``<str>`` or ``--help <bool>``: ``BUNDLE``, ``TEXT``, nothing after a flag."""
    from modelrunner.cli.main import _register_all, app

    _register_all()
    paths = list(_every_command(get_group(app)))
    assert ("endpoint", "create") in paths and ("push",) in paths
    for path in paths:
        result = cli(*path, "--help")
        assert result.code == 0, (path, result.err)
        text = result.out
        assert not re.search(r"<(str|int|float|bool|path|list\[[a-z]+\])>|\{[a-z_]+\}", text), (path, text)
        assert re.search(r"--help\s+Show this message", text), (path, text)
    push = cli("push", "--help").out
    assert "[OPTIONS] BUNDLE" in push and re.search(r"--name\s+-n\s+TEXT", push), push
    assert "CANDIDATES..." in cli("evaluate", "--help").out


def test_an_unusable_home_is_one_line_naming_the_path(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "home"
    monkeypatch.setenv("MODELRUNNER_HOME", str(home))
    result = cli("models")
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use "), result.err
    assert str(blocker) in lines[0] and "Not a directory" in lines[0]
    assert f"MODELRUNNER_HOME={home}" in lines[0] and "unexpected" not in lines[0]


@pytest.mark.parametrize(
    ("args", "code"),
    [(("models",), 0), (("endpoints", "--url", "http://127.0.0.1:9"), 2)],  # 2: "no endpoints yet"
)
def test_a_command_run_in_process_leaves_no_database_connection_open(
    cli: Any, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], code: int
) -> None:
    """main() closes every registry its command opened (tests and scripts call it in-process; an open
    engine's connections were collected by the gc: psycopg's ``BaseConnection.__del__`` warning)."""
    import psycopg

    opened: list[Any] = []
    real = psycopg.connect

    def connect(*a: Any, **kw: Any) -> Any:
        conn = real(*a, **kw)
        opened.append(conn)
        return conn

    monkeypatch.setattr(psycopg, "connect", connect)
    monkeypatch.setenv("MODELRUNNER_DATABASE_URL", pg_schema_url)
    result = cli(*args)
    assert result.code == code, result.err
    assert opened, "the command never reached PostgreSQL"
    assert all(conn.closed for conn in opened), "a connection of the command's registry is still open"
