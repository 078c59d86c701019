"""registry.changes: an audit entry's change as one line (``modelrunner audit``, the catalog's audit page)."""

from __future__ import annotations

from modelrunner.registry.changes import change_text, compact


def test_changed_keys_first_target_then_sorted_noise_dropped() -> None:
    before = {"target": "digits@1", "generation": 3, "batch": 8, "updated_at": "x"}
    after = {"target": "digits@2", "generation": 4, "batch": 8, "updated_at": "y", "force": True}
    assert change_text(before, after) == "target: digits@1 -> digits@2; force: - -> true"


def test_created_removed_and_unchanged() -> None:
    created = change_text(None, {"version": 3, "sha256": "a" * 64, "tags": {}})
    assert created == "+ version=3 sha256=" + "a" * 12  # the first, known keys lead; sha256 shortened
    assert change_text({"alias": "production"}, None) == "- alias=production"
    assert change_text({"a": 1}, {"a": 1}) == "no change"


def test_compact_shortens_with_an_ellipsis() -> None:
    assert compact(None) == "-"
    assert compact("x" * 100, limit=10) == "x" * 9 + "…"
