"""Types shared by the CLI tests (``support.cli_helpers``)."""

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
