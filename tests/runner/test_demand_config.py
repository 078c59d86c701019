"""Pattern endpoints and memory sizes (runner/demand_config.py): syntax, matching, one-line errors."""

from __future__ import annotations

import pytest

from modelrunner.errors import InvalidArgument
from modelrunner.runner.demand_config import DemandConfig, Pattern, is_pattern, parse_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GB", 2_000_000_000), ("512MiB", 512 * 1024**2), ("1.5kb", 1500), ("0", 0), (" 10 B ", 10), (7, 7)],
)
def test_parse_bytes(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["2 parsecs", "GB", "-1GB", "", -3])
def test_bad_sizes_name_the_value(text: str | int) -> None:
    with pytest.raises(InvalidArgument, match="invalid memory size"):
        parse_bytes(text)


def test_pattern_maps_names_both_ways() -> None:
    p = Pattern.parse("tenant-*=tenant-*@production")
    assert p.target_for("tenant-42") == "tenant-42@production"
    assert p.target_for("tenant-") is None and p.target_for("other-1") is None
    assert p.target_for("tenant-a/b") is None  # '*' is one piece of a model name
    assert p.endpoint_for("tenant-42") == "tenant-42" and p.endpoint_for("acme") is None
    shared = Pattern.parse("demo-*=digits@production")  # many names, one model
    assert shared.target_for("demo-x") == "digits@production" and shared.endpoint_for("digits") is None
    assert str(p) == "tenant-*=tenant-*@production"


@pytest.mark.parametrize("item", ["tenant-*", "*=", "a-*-*=a-*", "a=a", "t-*=a-*-*"])
def test_bad_patterns_are_one_clear_error(item: str) -> None:
    with pytest.raises(InvalidArgument, match="expected NAME=TARGET|exactly one"):
        Pattern.parse(item)


def test_config_first_pattern_wins_and_lists_endpoints() -> None:
    config = DemandConfig.build(
        ["t-*=tenant-*@production", "t-*=other-*"], max_loaded=100, memory_budget="2GB"
    )
    assert config.enabled and config.memory_budget == 2_000_000_000
    assert config.target_for("t-1") == "tenant-1@production"
    assert config.endpoints_for(["tenant-1", "other-2", "x"]) == {
        "t-1": "tenant-1@production",
        "t-2": "tenant-2@production",  # t-2 is served by the first pattern that matches its name
    }
    assert is_pattern("t-*=x") and not is_pattern("t=x-*")
    with pytest.raises(InvalidArgument, match="--max-loaded"):
        DemandConfig.build([], max_loaded=-1)
