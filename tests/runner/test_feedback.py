"""Feedback bodies and the join with the prediction log (one worker's runtime, real SQLite registry)."""

from __future__ import annotations

import numpy as np
import pytest

from modelrunner.errors import InvalidArgument, NotFound
from modelrunner.runner import feedback
from support.runner_fakes import _started, run


def test_parse_forms_and_errors() -> None:
    assert feedback.parse({"request_id": "r1", "target": 7}) == [("r1", 7)]
    assert feedback.parse({"items": [{"request_id": "a", "target": [1, 2]}]}) == [("a", [1, 2])]
    assert feedback.parse([{"request_id": "a", "target": None}, {"request_id": "b", "target": "x"}]) == [
        ("a", None),
        ("b", "x"),
    ]
    bad = [
        (3, "body"),
        ({"items": {}}, "items"),
        ({"items": []}, "items"),
        ([], "body"),
        ({"target": 1}, "request_id"),
        ({"request_id": "", "target": 1}, "request_id"),
        ({"request_id": "r"}, "target"),
        ({"items": [{"request_id": "a", "target": 1}, 5]}, "items[1]"),
        ([{"request_id": 5, "target": 1}], "[0].request_id"),
    ]
    for body, field in bad:
        with pytest.raises(InvalidArgument) as info:
            feedback.parse(body)
        assert info.value.details["field"] == field, (body, info.value.details)


def test_join_flushes_this_workers_log_and_names_unknown_ids(reg, push, loader, tmp_home) -> None:
    push("m", 1, alias="production")
    reg.set_endpoint("ep", "m@production", config={"log_predictions": True})

    async def main() -> None:
        rt = await _started(reg, tmp_home, loader, flush_s=30.0)  # only an explicit flush writes
        try:
            await rt.get("ep").predict({"x": np.zeros((1, 2))}, request_id="r-1")
            assert rt.predictions.pending == 1
            result = await feedback.join(rt, "ep", [("r-1", 1)])
            assert (result.joined, result.duplicates, result.unknown) == (1, 0, [])
            items = feedback.parse({"items": [{"request_id": "r-1", "target": 0}]})
            again = await feedback.join(rt, "ep", items)
            assert (again.joined, again.duplicates) == (1, 1)
            with pytest.raises(NotFound, match="request id\\(s\\) nope") as info:
                await feedback.join(rt, "ep", [("r-1", 0), ("nope", 1)], retry_s=0.2)
            assert info.value.details["unknown"] == ["nope"] and info.value.details["joined"] == 1
            with pytest.raises(NotFound, match="no endpoint 'ghost'"):
                await feedback.join(rt, "ghost", [("r-1", 0)])
            assert [r.target for r in reg.labelled("ep")] == [0]
        finally:
            await rt.stop()

    run(main())
