"""Types shared by the CLI tests (imported as ``cli_helpers``: tests/cli is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CliResult:
    """Exit code, stdout and stderr of one ``modelrunner`` run."""

    code: int
    out: str
    err: str


Cli = Callable[..., CliResult]
