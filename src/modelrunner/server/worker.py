"""A worker process: ``python -m modelrunner.server.worker --fd N --slot I ...`` (runner.supervisor runs it).

The process entry sits here, above runner/, so that the layer arrows point down: ``runner.child.run`` runs
the process (arguments, parent watch, heartbeats, the inherited socket) and calls the composition root
(:func:`modelrunner.server.compose.worker_server`) to build what it serves.
"""

from __future__ import annotations

from modelrunner.runner import startup  # noqa: F401 - first: ends the "spawn" span (startup.py)

# isort: split
from modelrunner.runner import memory

if __name__ == "__main__":  # a worker process: no automatic collections until it serves (runner.memory)
    memory.pause_collector_for_start()

# isort: split
from modelrunner.runner import child  # noqa: E402
from modelrunner.server.compose import preload, worker_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return child.run(argv, worker_server, prepare=preload)


if __name__ == "__main__":
    raise SystemExit(main())
