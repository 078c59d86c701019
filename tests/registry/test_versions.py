"""Listing many models at once (``Registry.latest_summaries``), the gate check, the audit's actor filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.registry_helpers import write_bundle


def test_latest_summaries_hold_each_models_newest_version(registry: Any, tmp_path: Path) -> None:
    assert registry.latest_summaries() == {}
    registry.push(write_bundle(tmp_path / "a1", "alpha", payload=b"1"), tags={"team": "a"})
    registry.push(write_bundle(tmp_path / "a2", "alpha", payload=b"2", license="Apache-2.0"), tags={"x": "y"})
    registry.push(write_bundle(tmp_path / "b1", "beta", license=None))
    got = registry.latest_summaries()
    assert set(got) == {"alpha", "beta"}
    alpha = got["alpha"]
    assert (alpha.version, alpha.flavor, alpha.license) == (2, "python", "Apache-2.0")
    assert alpha.tags == {"team": "core", "x": "y"} and alpha.description == "alpha model"
    assert alpha.steps == {}
    assert got["beta"].license is None and got["beta"].version == 1
    for name, summary in got.items():  # the same as resolving each model's newest version
        mv = registry.resolve(name)
        assert (summary.version, summary.flavor, summary.license, summary.tags) == (
            mv.version,
            mv.flavor,
            mv.license,
            mv.tags,
        )


def test_gate_failures_and_the_audit_filtered_by_actor(registry: Any, tmp_path: Path) -> None:
    registry.push(write_bundle(tmp_path / "a", "alpha"), actor="ann")
    assert registry.gate_failures("alpha", 1) == []
    registry.set_gates("alpha", ["accuracy >= 0.9"], actor="bob")
    assert registry.gate_failures("alpha", 1) == ["accuracy >= 0.9: never evaluated"]
    registry.record_evaluation(
        "alpha",
        1,
        metrics={"accuracy": 0.95},
        passed=True,
        gates=[{"requirement": "accuracy >= 0.9", "value": 0.95, "passed": True}],
    )
    assert registry.gate_failures("alpha", 1) == []
    assert {e.action for e in registry.audit(actor="ann")} == {"model.create", "version.create"}
    assert [e.action for e in registry.audit(actor="bob")] == ["gates.set"]
    assert registry.audit(actor="bob", action="version.create") == []
    assert registry.audit(actor="nobody") == []
