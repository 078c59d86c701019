"""The goals of the throughput issue (#18), computed from one results document, beside the run before.

Every goal is measured against the *same-work* bare app (``bare-proba``: one ``predict_proba``, the label as
its argmax, both returned per row, as modelrunner answers); the label-only bare app (``bare``) is quoted
beside it. A goal that the document cannot compute (the run before had no same-work bare app, no c1
cells, ...) is ``-`` with what it did measure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Run = dict[str, Any]
Outcome = tuple[bool | None, str, float | None]  # met (None: not measured), figures, load average
SAME = "bare-proba"


def find(
    results: dict[str, Any], server: str, model: str, rows: int, conc: int, batching: bool | None = None
) -> Run | None:
    """The cell's run; with repeats, the median of each number (failed requests: the total). The paired
    cells (``bench/paired.py``: the two servers in turn, rounds) are used when the run has the cell there,
    those of the phase with batching on or off when ``batching`` says which (the bare app's cells are in
    both phases)."""
    cell = (server, model, rows, conc)
    paired = results.get("paired")
    in_phase = [
        r
        for r in (paired if isinstance(paired, list) else [])
        if batching is None or bool(r.get("batching")) == batching
    ]

    def matching(runs: list[Run]) -> list[Run]:
        return [r for r in runs if (r["server"], r["model"], r["rows"], r["connections"]) == cell]

    runs = matching(in_phase) or matching(results.get("runs", []))
    if len(runs) <= 1:
        return runs[0] if runs else None
    out = dict(runs[0])
    for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request", "loadavg"):
        out[key] = statistics.median(r.get(key, 0.0) for r in runs)
    out["failed"] = sum(r["failed"] for r in runs)
    out["repeats"] = len(runs)
    return out


def paired_ratios(results: dict[str, Any], server: str, rows: int, conc: int, key: str) -> list[float]:
    """``server``'s value of ``key`` over the same-work bare app's, one ratio per paired round (the two cells
    measured back to back in the same round and phase of ``bench/paired.py``); empty without paired cells."""
    paired = results.get("paired")
    if not isinstance(paired, list):
        return []
    batching = server == "modelrunner+batch"
    cells: dict[tuple[int, str], float] = {}
    for run in paired:
        if (run["model"], run["rows"], run["connections"]) != ("lr", rows, conc) or "round" not in run:
            continue
        if bool(run.get("batching")) == batching and run["server"] in (server, SAME) and run.get(key):
            cells[(run["round"], run["server"])] = float(run[key])
    rounds = sorted({rnd for rnd, _ in cells})
    return [
        cells[(r, server)] / cells[(r, SAME)] for r in rounds if (r, server) in cells and (r, SAME) in cells
    ]


def ratio_of(results: dict[str, Any], ours: Run, same: Run, key: str) -> tuple[float, str]:
    """The goal's ratio of ``ours`` to ``same`` for ``key``: the median of the per-round ratios where the run
    has paired cells (each pair measured back to back, so a drift of the machine between rounds cancels),
    else the ratio of the two cells; and how it was computed, for the table."""
    pairs = paired_ratios(results, ours["server"], ours["rows"], ours["connections"], key)
    if len(pairs) >= 3:
        rounds = ", ".join(f"{r:.2f}" for r in pairs)
        return statistics.median(pairs), f"median of {len(pairs)} paired rounds: {rounds}; "
    return ours[key] / same[key], ""


def _cpu(run: Run) -> float:
    return float(run.get("server_cpu_us_per_request") or 0.0)


def _label_only(results: dict[str, Any], rows: int, conc: int, ours: Run, key: str) -> str:
    bare = find(results, "bare", "lr", rows, conc)
    if bare is None or not bare.get(key):
        return ""
    unit = "µs" if key == "server_cpu_us_per_request" else "req/s"
    return f"; label-only bare {bare[key]:,.0f} {unit} ({ours[key] / bare[key]:.2f}×)"


def cpu_goal(rows: int, conc: int = 16) -> Callable[[dict[str, Any]], Outcome]:
    def measure(results: dict[str, Any]) -> Outcome:
        ours = find(results, "modelrunner", "lr", rows, conc)
        if ours is None:
            return None, "not measured", None
        same = find(results, SAME, "lr", rows, conc, batching=False)
        label = _label_only(results, rows, conc, ours, "server_cpu_us_per_request")
        if same is None or not _cpu(same):
            return None, f"{_cpu(ours):,.0f} µs/req; same-work bare not measured{label}", ours["loadavg"]
        ratio, how = ratio_of(results, ours, same, "server_cpu_us_per_request")
        text = f"{ratio:.2f}× ({how}medians {_cpu(ours):,.0f} vs {_cpu(same):,.0f} µs/req){label}"
        return ratio <= 1.1, text, ours["loadavg"]

    return measure


def rps_goal(results: dict[str, Any]) -> Outcome:
    ours = find(results, "modelrunner", "lr", 100, 16)
    if ours is None:
        return None, "not measured", None
    same = find(results, SAME, "lr", 100, 16, batching=False)
    label = _label_only(results, 100, 16, ours, "rps")
    if same is None:
        return None, f"{ours['rps']:,.0f} req/s; same-work bare not measured{label}", ours["loadavg"]
    ratio, how = ratio_of(results, ours, same, "rps")
    return (
        ratio >= 1.0,
        f"{ratio:.2f}× ({how}medians {ours['rps']:,.0f} vs {same['rps']:,.0f} req/s){label}",
        ours["loadavg"],
    )


def batching_goal(results: dict[str, Any]) -> Outcome:
    parts, met, loads = [], [], []
    for conc in (16, 64):
        ours = find(results, "modelrunner+batch", "lr", 1, conc)
        if ours is None:
            continue
        loads.append(ours["loadavg"])
        same = find(results, SAME, "lr", 1, conc, batching=True)
        label = _label_only(results, 1, conc, ours, "rps")
        if same is None:
            parts.append(f"c{conc}: {ours['rps']:,.0f} req/s, same-work bare not measured{label}")
            continue
        ratio, how = ratio_of(results, ours, same, "rps")
        met.append(ratio >= 2.0)
        parts.append(
            f"c{conc}: {ratio:.2f}× ({how}medians {ours['rps']:,.0f} vs {same['rps']:,.0f} req/s){label}"
        )
    if not parts:
        return None, "not measured", None
    return (all(met) if len(met) == 2 else None), "; ".join(parts), max(loads)


def c1_goal(results: dict[str, Any]) -> Outcome:
    ours = find(results, "modelrunner", "lr", 1, 1)
    if ours is None:
        return None, "not measured (no c1 cells)", None
    same = find(results, SAME, "lr", 1, 1)
    if same is None:
        return None, f"p50 {ours['p50_ms']:.2f} ms; same-work bare not measured", ours["loadavg"]
    diff = ours["p50_ms"] - same["p50_ms"]
    text = f"{diff:+.2f} ms (p50 {ours['p50_ms']:.2f} vs {same['p50_ms']:.2f} ms)"
    return diff <= 0.1, text, ours["loadavg"]


def cold_goal(results: dict[str, Any]) -> Outcome:
    launches = results.get("cold_starts", {}).get("modelrunner") or []
    if not launches:
        return None, "not measured", None
    cold = statistics.median(launches)
    bare = results.get("cold_starts", {}).get("bare")
    each = f" (launches {', '.join(f'{v:.2f}' for v in launches)})" if len(set(launches)) > 1 else ""
    text = f"{cold:.2f} s{each}"
    text += f"; bare {statistics.median(bare):.2f} s" if bare else ""
    return (
        (cold <= 1.5 if len(launches) >= 5 else None),
        text,
        results.get("machine", {}).get("loadavg_start"),
    )


def p99_goal(results: dict[str, Any]) -> Outcome:
    ours = find(results, "modelrunner+batch", "lr", 1, 64)
    if ours is None:
        return None, "not measured", None
    same = find(results, SAME, "lr", 1, 64) or find(results, "bare", "lr", 1, 64)
    text = f"p99 {ours['p99_ms']:.1f} ms"
    text += (
        f" (bare{' same-work' if same and same['server'] == SAME else ''} {same['p99_ms']:.1f})"
        if same
        else ""
    )
    return ours["p99_ms"] <= 10.0, text, ours["loadavg"]


def mlp_goal(results: dict[str, Any]) -> Outcome:
    on, off = find(results, "modelrunner+batch", "mlp", 1, 64), find(results, "modelrunner", "mlp", 1, 64)
    if not on or not off:
        return None, "not measured", None
    ratio = on["rps"] / off["rps"]
    return ratio >= 3, f"{ratio:.2f}× ({on['rps']:,.0f} vs {off['rps']:,.0f} req/s)", on["loadavg"]


GOALS: list[tuple[str, Callable[[dict[str, Any]], Outcome]]] = [
    ("1 row, c16, batching off: server CPU per request ≤ 1.1× same-work bare", cpu_goal(1)),
    ("100 rows, c16, batching off: server CPU per request ≤ 1.1× same-work bare", cpu_goal(100)),
    ("100 rows, c16, batching off: req/s ≥ 1.0× same-work bare", rps_goal),
    ("1 row, batching on: req/s ≥ 2× same-work bare at c16 and c64", batching_goal),
    ("1 row, c1, batching off: p50 ≤ same-work bare's + 0.1 ms", c1_goal),
    ("cold start (serve to first answer) median of 5 launches ≤ 1.5 s", cold_goal),
    ("1 row, c64, batching on: p99 ≤ 10 ms (on a quiet machine: see load)", p99_goal),
    ("MLP, 1 row, c64: batching on ≥ 3× batching off", mlp_goal),
]


def _met(met: bool | None) -> str:
    return "yes" if met else ("-" if met is None else "no")


def _load(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(results: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """The goals of ``results`` beside the same goals computed from ``before`` (the run before)."""
    when = (before or {}).get("date", "")[:10] or "-"
    lines = [
        f"| goal | met | this run | load | before ({when}) | met before |",
        "|---|---|---|---|---|---|",
    ]
    for name, measure in GOALS:
        met, text, load = measure(results)
        old_met, old_text, _old_load = measure(before) if before else (None, "-", None)
        lines.append(f"| {name} | {_met(met)} | {text} | {_load(load)} | {old_text} | {_met(old_met)} |")
    return "\n".join(lines)
