"""The run before: what the goals table puts beside this run's figures ("before").

``bench/results/latest.json`` when a full run left one (read before this run overwrites it; smoke runs —
cells under 10 s, or no server cells — are passed over); otherwise the tables of ``docs/performance.md``
(the last full run published there), read back into a results document with the numbers those tables
carry (req/s, p50, p99, server CPU per request, load, cold start median).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.baseline")

SERVER_NAMES = {"bare": "bare", "modelrunner": "modelrunner", "mlserver": "mlserver", "bentoml": "bentoml"}


def load(results_dir: Path, doc: Path, explicit: Path | None = None) -> dict[str, Any] | None:
    """The run before (``explicit`` if given), or None when there is none to read."""
    for path in [explicit] if explicit else [results_dir / "latest.json"]:
        if path is not None and path.exists():
            try:
                data: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("cannot read %s: %s", path, exc)
                continue
            if explicit or _full(data):
                log.info("the run before: %s (%s)", path, data.get("date"))
                return data
            log.info("the run before: not %s (a smoke run of %s)", path, data.get("date"))
    if doc.exists():
        parsed = from_doc(doc.read_text())
        if parsed is not None:
            log.info("the run before: the tables of %s (%s)", doc, parsed.get("date"))
        return parsed
    return None


def _full(data: dict[str, Any]) -> bool:
    """A full run: it measured the servers' cells, each for at least 10 s."""
    return bool(data.get("runs")) and data.get("settings", {}).get("duration_s", 0) >= 10


def _section(text: str, name: str) -> str | None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0]


def _tables(section: str) -> list[list[dict[str, str]]]:
    """Each markdown table of ``section`` as a list of {header: cell} rows."""
    tables: list[list[dict[str, str]]] = []
    current: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in [*section.splitlines(), ""]:
        if not line.startswith("|"):
            if header and current:
                tables.append(current)
            current, header = [], None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            current.append(dict(zip(header, cells, strict=False)))
    return tables


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("×", "") or "nan")


def _server_name(label: str) -> str | None:
    if "same work" in label:
        return "bare-proba"
    first = label.split()[0].lower()
    return SERVER_NAMES.get(first) or ("mlflow" if "mlflow" in first else None)


def from_doc(text: str) -> dict[str, Any] | None:
    """A results document rebuilt from the ``bench:latest`` tables of docs/performance.md."""
    section = _section(text, "latest")
    if section is None:
        return None
    date = re.search(r"`make bench` of (\S+?)[\s(]", section)
    load = re.search(r"load average ([\d.]+) at the start, ([\d.]+) at the end", section)
    out: dict[str, Any] = {
        "date": date.group(1) if date else "",
        "machine": {"loadavg_start": float(load.group(1)) if load else None},
        "runs": [],
        "servers": {},
        "cold_starts": {},
        "source": "docs/performance.md",
    }
    models = {"digits LR": "lr", "digits MLP": "mlp"}
    for table in _tables(section):
        for row in table:
            if "server" in row and "req/s" in row:
                out["runs"].append(
                    {
                        "server": row["server"].strip("*"),
                        "model": models.get(row["model"], row["model"]),
                        "rows": int(row["rows"]),
                        "connections": int(row["conn"]),
                        "rps": _num(row["req/s"]),
                        "p50_ms": _num(row["p50 ms"]),
                        "p99_ms": _num(row["p99 ms"]),
                        "failed": int(_num(row["failed"])),
                        "server_cpu_us_per_request": _num(row.get("server CPU µs/req", "")),
                        "loadavg": _num(row.get("load", "")),
                    }
                )
            elif "server" in row:
                name = _server_name(row["server"])
                cold = next((v for k, v in row.items() if k.startswith("cold start")), "-")
                if name and cold not in ("-", ""):
                    # the table holds the median only: one value stands for the launches
                    out["cold_starts"][name] = [_num(cold)] * _launches(row)
    return out


def _launches(row: dict[str, str]) -> int:
    for key in row:
        match = re.search(r"median of (\d+) launches", key)
        if match:
            return int(match.group(1))
    return 1
