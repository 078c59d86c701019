"""Bad input: one red line on stderr naming what is wrong, exit code 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli_helpers import Cli, CliResult


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.err + result.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _bundle_with(iris_bundle: Path, tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(iris_bundle, copy)
    manifest = copy / "modelrunner.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))
    return copy


def test_push_not_a_bundle(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(cli("push", tmp_path), "not a bundle", "modelrunner.yaml")


def test_push_missing_path(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("push", tmp_path / "nope"), "nope")


def test_push_corrupt_archive(cli: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00garbage" * 50)
    assert_one_line_error(cli("push", archive, "--name", "x"), "corrupt")


def test_push_unknown_flavor(cli: Cli, iris_bundle: Path, tmp_path: Path) -> None:
    edited = _bundle_with(iris_bundle, tmp_path, "flavor: sklearn", "flavor: nosuchflavor")
    assert_one_line_error(cli("push", edited), "unknown flavor 'nosuchflavor'")
    assert "no models yet" in cli("models").out  # nothing was stored


def test_push_bad_license(cli: Cli, iris_bundle: Path, tmp_path: Path) -> None:
    edited = _bundle_with(iris_bundle, tmp_path, "license: MIT", "license: Not-A-License")
    assert_one_line_error(cli("push", edited), "invalid license 'Not-A-License'")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("push", "BUNDLE", "--tag", "novalue"), ("invalid tag 'novalue'",)),
        (("push", "BUNDLE", "--name", "bad@name"), ("invalid model name",)),
        (("push", "BUNDLE", "--alias", "latest"), ("'latest' is reserved",)),
        (("show", "nosuchmodel"), ("nosuchmodel",)),
        (("show", "iris@nosuchalias"), ("nosuchalias",)),
        (("show", "iris@99"), ("99",)),
        (("show", "iris@@"), ("iris@@",)),
        (("contract", "nosuchmodel@production"), ("nosuchmodel",)),
        (("alias", "set", "iris@7", "production"), ("7",)),
        (("alias", "set", "iris@1", "9lives"), ("9lives",)),
        (("alias", "delete", "iris", "nosuchalias"), ("nosuchalias",)),
        (("audit", "--subject", "x", "--limit", "5"), ()),
    ],
)
def test_bad_references(cli: Cli, iris_bundle: Path, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    assert cli("push", iris_bundle).code == 0
    argv = [str(iris_bundle) if a == "BUNDLE" else a for a in args]
    result = cli(*argv)
    if args[0] == "audit":  # a subject without entries is not an error
        assert result.code == 0 and "no audit entries" in result.out
        return
    assert_one_line_error(result, *needles)


def test_database_that_cannot_connect(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRUNNER_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    result = cli("models")
    assert_one_line_error(result, "cannot connect", "127.0.0.1")
    assert "secret" not in result.err  # the password is not echoed


def test_sqlite_path_that_cannot_exist(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MODELRUNNER_DATABASE_URL", f"sqlite:///{blocker}/registry.db")
    assert_one_line_error(cli("models"))


def test_message_with_markup_is_printed_verbatim(cli: Cli) -> None:
    result = cli("push", "[red]x[/red]")
    assert_one_line_error(result, "[red]x[/red]")


def test_usage_errors_exit_2_without_traceback(cli: Cli) -> None:
    for args in (("contract", "x", "--format", "xml"), ("audit", "--limit", "0"), ("nosuchcommand",)):
        result = cli(*args)
        assert result.code == 2, args
        assert "Traceback" not in result.err + result.out
        assert "Error" in result.err


def test_real_entry_point_one_line(tmp_home: Path) -> None:
    """``python -m modelrunner`` in a child process: the same one line and exit code 2."""
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home), "COLUMNS": "40"}
    proc = subprocess.run(
        [sys.executable, "-m", "modelrunner", "show", "nosuchmodel@production"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert_one_line_error(CliResult(proc.returncode, proc.stdout, proc.stderr), "nosuchmodel")


def test_help_exits_0_and_lists_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("push", "models", "show", "alias", "contract", "audit", "swap", "rollback", "endpoints"):
        assert command in result.out
