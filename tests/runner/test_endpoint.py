"""Endpoint: pinning, swap in one assignment, drain, keep-previous, release — with in-test predictors."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from modelrunner.errors import Unavailable, ValidationError
from modelrunner.runner.endpoint import Endpoint
from modelrunner.runner.memory import rss_bytes
from support.runner_fakes import CONTRACT, TagPredictor, batch, deployment


def run(coro):
    return asyncio.run(coro)


def test_predict_runs_off_the_loop_and_names_the_version() -> None:
    async def main() -> None:
        ep = Endpoint("ep")
        pred = TagPredictor(1)
        ep.swap(deployment(pred))
        out = await ep.predict(batch(3), validated=True)
        assert out.version == 1 and out.model == "m" and out.ref == "m@1"
        assert out.columns["y"].tolist() == [1, 1, 1]
        assert pred.threads and pred.threads[0] != threading.current_thread().name

    run(main())


def test_empty_endpoint_is_unavailable() -> None:
    async def main() -> None:
        ep = Endpoint("ep")
        assert not ep.ready
        with pytest.raises(Unavailable, match="no model loaded"):
            await ep.predict(batch(), validated=True)
        with pytest.raises(Unavailable):
            _ = ep.contract

    run(main())


def test_in_flight_request_finishes_on_its_version_and_old_closes_after() -> None:
    async def main() -> None:
        ep = Endpoint("ep")
        gate = threading.Event()
        old = TagPredictor(1, gate=gate)
        ep.swap(deployment(old))
        slow = asyncio.create_task(ep.predict(batch(), validated=True))
        await asyncio.to_thread(old.entered.wait, 5)
        new = TagPredictor(2)
        previous = ep.swap(deployment(new))
        assert previous is not None and previous.retired and previous.inflight == 1
        fresh = await ep.predict(batch(), validated=True)
        assert fresh.version == 2
        await asyncio.sleep(0.05)
        assert old.closed == 0, "closed while a request was still in flight"
        gate.set()
        assert (await slow).version == 1
        await ep.wait_closed()
        assert old.closed == 1 and previous.predictor is None and new.closed == 0

    run(main())


def test_loop_stays_responsive_while_predict_blocks() -> None:
    async def main() -> None:
        ep = Endpoint("ep")
        gate = threading.Event()
        ep.swap(deployment(TagPredictor(1, gate=gate)))
        slow = asyncio.create_task(ep.predict(batch(), validated=True))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and not slow.done()
        gate.set()
        await slow

    run(main())


def test_drain_timeout_closes_anyway() -> None:
    async def main() -> None:
        ep = Endpoint("ep", drain_timeout_s=0.1)
        gate = threading.Event()
        old = TagPredictor(1, gate=gate)
        ep.swap(deployment(old))
        stuck = asyncio.create_task(ep.predict(batch(), validated=True))
        await asyncio.to_thread(old.entered.wait, 5)
        ep.swap(deployment(TagPredictor(2)))
        await ep.wait_closed()
        assert old.closed == 1
        gate.set()
        assert (await stuck).version == 1  # the thread already held the predictor

    run(main())


def test_keep_previous_keeps_one_version_for_instant_rollback() -> None:
    async def main() -> None:
        ep = Endpoint("ep", keep_previous=True)
        p1, p2, p3 = TagPredictor(1), TagPredictor(2), TagPredictor(3)
        d1, d2 = deployment(p1), deployment(p2)
        ep.swap(d1)
        ep.swap(d2)
        await ep.wait_closed()
        assert ep.previous is d1 and p1.closed == 0
        back = ep.take_previous("m", 1, "sha1")
        assert back is d1 and ep.take_previous("m", 2) is None
        ep.swap(back)
        assert ep.current is d1 and ep.previous is d2
        assert (await ep.predict(batch(), validated=True)).version == 1
        ep.swap(deployment(p3))
        await ep.wait_closed()
        assert ep.previous is d1 and p2.closed == 1 and p1.closed == 0
        await ep.close()
        assert p1.closed == 1 and p3.closed == 1 and not ep.ready

    run(main())


def test_validation_uses_the_pinned_contract() -> None:
    seen = []

    def validator(contract, columns):
        seen.append(contract)
        if columns["x"].shape[1:] != (2,):
            raise ValidationError("field 'x': expected float64[2]", field="x")
        return columns

    async def main() -> None:
        ep = Endpoint("ep", validator=validator)
        ep.swap(deployment(TagPredictor(1)))
        assert (await ep.predict(batch())).version == 1
        with pytest.raises(ValidationError, match="field 'x'"):
            await ep.predict({"x": np.zeros((1, 3))})
        assert seen == [CONTRACT, CONTRACT]

    run(main())


def test_many_swaps_release_memory() -> None:
    async def main() -> None:
        ep = Endpoint("ep")
        ep.swap(deployment(TagPredictor(0, size_mb=50)))
        await ep.predict(batch(), validated=True)
        ep.swap(deployment(TagPredictor(1, size_mb=50)))
        await ep.wait_closed()
        baseline = rss_bytes()
        for i in range(2, 12):
            ep.swap(deployment(TagPredictor(i, size_mb=50)))
            await ep.predict(batch(), validated=True)
            await ep.wait_closed()
        assert rss_bytes() < baseline * 1.2
        await ep.close()

    run(main())


def test_the_state_moves_only_through_settle_and_says_when_it_changed() -> None:
    ep = Endpoint("ep")
    assert (ep.state, ep.error, ep.generation) == ("empty", None, 0)
    assert ep.settle("loading") and not ep.settle("loading")
    assert ep.settle("failed", "bad bundle", 4)
    assert (ep.state, ep.error, ep.generation) == ("failed", "bad bundle", 4)
    assert ep.settle("serving") and (ep.error, ep.generation) == (None, 4)  # generation kept when not given
    with pytest.raises(ValueError, match="unknown endpoint state 'draining'"):
        ep.settle("draining")  # type: ignore[arg-type]
    assert ep.state == "serving"


class _CountingPredictor(TagPredictor):
    """A TagPredictor that counts the batches it is given already checked (predict_valid)."""

    def __init__(self, tag: int) -> None:
        super().__init__(tag)
        self.valid_calls = 0

    def predict_valid(self, columns):  # type: ignore[no-untyped-def]
        self.valid_calls += 1
        return self.predict(columns)


def test_columns_the_decoder_checked_against_these_inputs_are_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelrunner.contract.codecs import decode_json_request
    from modelrunner.contract.validate import ValidColumns, valid_for, validate_batch
    from modelrunner.runner import endpoint as endpoint_module

    checks = []

    def counting(fields, columns, **kwargs):  # type: ignore[no-untyped-def]
        checks.append(fields)
        return validate_batch(fields, columns, **kwargs)

    monkeypatch.setattr(endpoint_module, "validate_batch", counting)

    async def main() -> None:
        ep = Endpoint("ep")
        predictor = _CountingPredictor(1)
        ep.swap(deployment(predictor))
        columns, _ = decode_json_request({"instances": [{"x": [1, 2]}]}, CONTRACT.inputs)
        assert valid_for(columns, CONTRACT.inputs) and columns["x"].dtype == np.float64
        assert (await ep.predict(columns)).version == 1 and predictor.valid_calls == 1
        assert checks == []  # the decoder checked it; the runner did not again
        assert (await ep.predict(dict(columns))).version == 1 and len(checks) == 1  # a copy is checked
        # marked valid for other fields (not this contract's inputs object): checked here, and refused
        with pytest.raises(ValidationError, match="'x'"):
            await ep.predict(ValidColumns({"x": np.zeros((1, 3))}, list(CONTRACT.inputs)))
        with pytest.raises(ValidationError, match="'x'"):  # a plain dict is always checked
            await ep.predict({"x": np.zeros((1, 3))})

    run(main())
