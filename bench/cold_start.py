"""Cold start only, repeated and interleaved: from a server's command to its first answered prediction.

``make bench`` measures each server's cold start once per repeat, inside a long run; on a shared machine one
launch can be off by half a second. This starts the chosen servers in turn, ``--repeat`` times each (digits
LR, 2 workers, the same launch as ``make bench``), and prints every launch and the medians::

    python bench/cold_start.py --servers modelrunner,bare --repeat 7
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import models  # noqa: E402
from bench.peers import envs, servers  # noqa: E402
from bench.run_all import cold_starts  # noqa: E402

log = logging.getLogger("bench.cold_start")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="modelrunner,bare", help="comma-separated, in launch order")
    parser.add_argument("--repeat", type=int, default=5, help="launches per server, interleaved")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between launches")
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    unknown = [n for n in names if n not in servers.SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(servers.SERVERS)}")
    cache = envs.CACHE
    paths = models.prepare(cache)
    model = next(m for m in models.MODELS if m.key == "lr")
    times = cold_starts(names, model, paths[model.key], cache, args.repeat, args.pause)
    print("| server | cold start s, median | min | max | launches |")  # noqa: T201 - this command's output
    print("|---|---|---|---|---|")  # noqa: T201
    for name, values in times.items():
        print(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} "  # noqa: T201
            f"| {' '.join(f'{v:.2f}' for v in values)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
