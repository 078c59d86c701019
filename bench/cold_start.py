"""Cold start only, repeated and interleaved: from a server's command to its first answered prediction.

``make bench`` measures each server's cold start once per repeat, inside a long run; on a shared machine one
launch can be off by half a second. This starts the chosen servers in turn, ``--repeat`` times each (digits
LR, 2 workers, the same launch as ``make bench``), and prints every launch and the medians::

    python bench/cold_start.py --servers modelrunner,bare --repeat 7
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import models, procs  # noqa: E402
from bench.peers import envs, servers  # noqa: E402

log = logging.getLogger("bench.cold_start")


def time_cold_start(name: str, model: models.BenchModel, joblib_path: Path, cache: Path) -> float:
    """Start ``name`` serving ``model`` on a fresh work folder, time it to its first answer, stop it."""
    work = cache / "work" / f"cold-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = servers.SERVERS[name](model, procs.free_port(), work, joblib_path)
    body = models.body_path(cache, spec.body_form, 1).read_bytes()
    server = procs.Server(spec, work / "server.log")
    server.start()
    try:
        return server.wait_ready(body)
    finally:
        server.stop()


def cold_starts(
    names: list[str],
    model: models.BenchModel,
    joblib_path: Path,
    cache: Path,
    repeat: int,
    pause_s: float = 2.0,
) -> dict[str, list[float]]:
    """Each server launched ``repeat`` times, interleaved, on a machine without load: seconds to ready.

    One launch inside a long run can be off by half a second on a shared machine (measured: 1.83 and
    2.75 s for the same server in two repeats), so the tables report the median of these."""
    times: dict[str, list[float]] = {}
    for name in names:
        envs.ensure(servers.venv(name))
    for rep in range(repeat):
        for name in names:
            try:
                took = time_cold_start(name, model, joblib_path, cache)
            except Exception:  # noqa: BLE001 - one peer failing must not lose the others' numbers
                log.exception("%s: cold start failed", name)
                continue
            times.setdefault(name, []).append(round(took, 3))
            log.info("cold start %d/%d %s: %.2f s (load %.1f)", rep + 1, repeat, name, took, procs.loadavg())
            time.sleep(pause_s)
    return times


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
