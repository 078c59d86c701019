"""The ``modelrunner`` command's process entry (the console script and ``python -m modelrunner``).

``modelrunner serve`` spawns its first worker here, before anything else is imported: the worker's imports
(~0.5 s of CPU) then overlap the supervisor's (typer, pydantic: ~0.15 s), and the supervisor hands it its
arguments once it has parsed them (runner/lead.py). Every command then runs :func:`modelrunner.cli.main.main`.
"""

from __future__ import annotations

from modelrunner.runner import startup  # noqa: F401 - first: ends the "spawn" span of `serve` (startup.py)

# isort: split
import sys

from modelrunner.runner import lead

WORKER = "modelrunner.server.worker"
"""The worker process's module (``python -m``): ``serve`` passes it to ``runner.workers.serve``."""


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["serve"] and "--help" not in args:
        lead.begin(WORKER)
    try:
        from modelrunner.cli.main import main as run

        return run()
    finally:
        lead.discard()  # nothing once `serve` adopted it; else (an error, --help) it is killed
