"""The goals' cells, paired in time: modelrunner and the same-work bare app loaded in turn, several rounds.

``make bench``'s matrix measures one server after another: the bare app's cells and modelrunner's are minutes
apart, and on this shared machine the speed of the same code drifts by 10-20 % over minutes (the same-work
bare app measured 215-230 µs of CPU per 1-row request at 01:30 and 266-275 µs at 02:30 on 2026-12-07, with
nothing else running). A ratio of two cells minutes apart then moves by more than the goals' bounds.

Here both servers run at once (2 workers each; the idle one costs ~1 % of a core) and wrk loads one, then
the other, cell by cell (each cell of the two back to back), for ``rounds`` rounds, the order swapped every
round: batching off, 1 and 100 rows at 16 connections; then batching on (the run's batching settings), 1 row
at 16 and 64 connections. The goals (``bench/goals.py``) take the median of the per-round ratios of these
cells when the run has them.
"""

from __future__ import annotations

import logging
import shutil
import statistics
from pathlib import Path
from typing import Any

from bench import models, procs
from bench.goals import SAME
from bench.peers import servers

log = logging.getLogger("bench.paired")

OFF_CELLS = ((1, 16), (100, 16))
ON_CELLS = ((1, 16), (1, 64))


class _Pair:
    """The two servers, started; ``stop`` ends both."""

    def __init__(self, cache: Path, model: models.BenchModel, joblib_path: Path) -> None:
        self.cache, self.model = cache, model
        self.specs: dict[str, servers.Launch] = {}
        self.procs: dict[str, procs.Server] = {}
        for name in (SAME, "modelrunner"):
            work = cache / "work" / f"paired-{name}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            spec = servers.SERVERS[name](model, procs.free_port(), work, joblib_path)
            proc = procs.Server(spec, work / "server.log")
            self.specs[name], self.procs[name] = spec, proc
            proc.start()
            proc.wait_ready(models.body_path(cache, spec.body_form, 1).read_bytes())

    def batching(self, config: dict[str, Any]) -> None:
        admin_url = self.specs["modelrunner"].admin_url
        assert admin_url is not None  # modelrunner's launch names its admin API
        procs.set_batching(admin_url, self.model.endpoint, config)

    def cell(
        self, name: str, label: str, rows: int, conc: int, duration: float, warmup: float
    ) -> dict[str, Any]:
        spec, proc = self.specs[name], self.procs[name]
        body = models.body_path(self.cache, spec.body_form, rows)
        cell = procs.load_cell(spec.url, body, proc, conc, duration, warmup)
        log.info(
            "paired %-18s %3d rows c%-3d %8.0f req/s p99 %6.1f ms, server CPU %.0f us/request",
            label,
            rows,
            conc,
            cell["rps"],
            cell["p99_ms"],
            cell["server_cpu_us_per_request"],
        )
        return {"server": label, "model": self.model.key, "rows": rows, "connections": conc, **cell}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def measure(
    cache: Path,
    model: models.BenchModel,
    joblib_path: Path,
    batching: dict[str, Any],
    *,
    rounds: int = 5,
    duration: float = 5.0,
    warmup: float = 1.0,
) -> list[dict[str, Any]]:
    """The goals' cells, ``rounds`` times each, the two servers in turn (module docstring)."""
    pair = _Pair(cache, model, joblib_path)
    runs: list[dict[str, Any]] = []
    try:
        phases = (({"batch": False}, OFF_CELLS, "modelrunner"), (batching, ON_CELLS, "modelrunner+batch"))
        for config, cells, label in phases:
            pair.batching(config)
            order = [(SAME, SAME), ("modelrunner", label)]
            for rnd in range(rounds):
                for rows, conc in cells:  # each cell of the two servers back to back
                    for name, shown in order if rnd % 2 == 0 else order[::-1]:
                        run = pair.cell(name, shown, rows, conc, duration, warmup)
                        runs.append({**run, "round": rnd, "batching": config != {"batch": False}})
    finally:
        pair.stop()
    return runs


def report(runs: list[dict[str, Any]]) -> str:
    """The paired cells as markdown: each server's value per round and the median, per cell."""
    cells: dict[tuple[int, int, str], dict[str, list[dict[str, Any]]]] = {}
    for run in runs:
        phase = "on" if run.get("batching") else "off"
        cell = cells.setdefault((run["rows"], run["connections"], phase), {})
        cell.setdefault(run["server"], []).append(run)
    lines = [
        "Paired cells (`bench/paired.py`; the goals above use the median of the per-round ratios): "
        "modelrunner and the same-work bare app loaded in turn, each cell of the two back to back, the order "
        "swapped every round.",
        "",
        "| rows | conn | batching | server | req/s by round | server CPU µs/req by round | median req/s | "
        "median CPU µs/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (rows, conc, phase), by_server in cells.items():
        for server, its in by_server.items():
            rps = [r["rps"] for r in its]
            cpu = [r["server_cpu_us_per_request"] for r in its]
            lines.append(
                f"| {rows} | {conc} | {phase} | {server} | {' · '.join(f'{v:,.0f}' for v in rps)} | "
                f"{' · '.join(f'{v:,.0f}' for v in cpu)} | {statistics.median(rps):,.0f} | "
                f"{statistics.median(cpu):,.0f} |"
            )
    return "\n".join(lines)
