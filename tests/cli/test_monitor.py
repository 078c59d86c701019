"""``modelrunner monitor``: the report, --json, --plot, set, baseline, and one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from modelrunner.registry import Registry
from support.cli_helpers import Cli
from support.drift_helpers import digits, feed, save_digits, shifted


def _served(tmp_path: Path, *, training: bool = True) -> Registry:
    registry = Registry()
    registry.push(save_digits(tmp_path / "digits", training=training).path)
    registry.set_endpoint("digits", "digits@latest")
    return registry


def test_monitor_reports_drift_per_feature_and_plots(cli: Cli, tmp_path: Path) -> None:
    registry = _served(tmp_path)
    d, rng, now = digits(), np.random.default_rng(2), time.time()
    feed(registry, "digits", d.x[rng.choice(d.test, 300)], now - 1800)
    feed(registry, "digits", shifted(d.x[rng.choice(d.test, 300)], rng), now - 60)
    quiet = cli("monitor", "digits", "--window", "1h", "--json")
    report = json.loads(quiet.out)
    assert quiet.code == 0 and report["rows"] == 600 and report["status"] == "drift"
    recent = cli("monitor", "digits", "--window", "10m")
    assert recent.code == 0 and "300 rows: drift" in recent.out and "psi" in recent.out
    assert "estimated accuracy" in recent.out
    png = tmp_path / "drift.png"
    plotted = cli("monitor", "show", "digits", "--window", "10m", "--plot", png)
    assert plotted.code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_monitor_set_thresholds_are_audited_and_applied(cli: Cli, tmp_path: Path) -> None:
    registry = _served(tmp_path)
    assert cli("monitor", "set", "digits", "--psi", "0.3", "--min-rows", "50").code == 0
    assert registry.drift_thresholds("digits") == {"psi": 0.3, "min_rows": 50}
    assert cli("monitor", "set", "digits", "--js", "0.2").code == 0
    assert registry.drift_thresholds("digits") == {"psi": 0.3, "min_rows": 50, "js": 0.2}
    assert registry.audit(subject="digits", action="drift.thresholds")
    bad = cli("monitor", "set", "digits", "--quantile", "2")
    assert bad.code == 2 and "--quantile" in bad.err and "Traceback" not in bad.err
    assert cli("monitor", "set", "nosuch", "--psi", "0.1").code != 0


def test_baseline_from_traffic_for_a_bundle_without_training_data(cli: Cli, tmp_path: Path) -> None:
    registry = _served(tmp_path, training=False)
    d, rng, now = digits(), np.random.default_rng(4), time.time()
    before = cli("monitor", "digits")
    assert before.code == 0 and "no reference" in before.out
    empty = cli("monitor", "baseline", "digits", "--window", "10m")
    assert empty.code != 0 and "no traffic" in empty.err
    feed(registry, "digits", d.x[rng.choice(d.test, 400)], now - 1200)
    made = cli("monitor", "baseline", "digits", "--window", "1h")
    assert made.code == 0 and "baseline of 400 rows" in made.out
    feed(registry, "digits", shifted(d.x[rng.choice(d.test, 300)], rng, noise=4.0), now - 30)
    report = json.loads(cli("monitor", "digits", "--window", "5m", "--json").out)
    assert report["status"] == "drift"


def test_monitor_errors_are_one_line(cli: Cli) -> None:
    missing = cli("monitor", "nosuch")
    assert missing.code != 0 and "nosuch" in missing.err and "Traceback" not in missing.err
    bad = cli("monitor", "nosuch", "--window", "soon")
    assert bad.code == 2 and "--window" in bad.err


def test_show_prints_the_reference_profile(cli: Cli, tmp_path: Path) -> None:
    _served(tmp_path)
    shown = cli("show", "digits")
    assert shown.code == 0 and "reference profile (training_data): 65 features of 1100 rows" in shown.out
    assert "pixels[0]" in shown.out and "mean confidence" in shown.out


def test_monitor_lists_the_20_most_drifted_features_unless_all(cli: Cli, tmp_path: Path) -> None:
    registry = _served(tmp_path)
    d, rng, now = digits(), np.random.default_rng(3), time.time()
    feed(registry, "digits", shifted(d.x[rng.choice(d.test, 300)], rng), now - 60)
    top = cli("monitor", "digits", "--window", "10m")
    every = cli("monitor", "digits", "--window", "10m", "--all")

    def rows(out: str) -> list[str]:  # the feature of each table row (column widths differ)
        return [line.split("│")[1].strip() for line in out.splitlines() if "K-S" in line or "chi2" in line]

    assert top.code == 0 and every.code == 0
    assert len(rows(top.out)) == 20 < len(rows(every.out))
    assert rows(top.out) == rows(every.out)[:20]  # the same order: the most drifted first
