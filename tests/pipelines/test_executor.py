"""The executor: fan-out/fan-in, independent steps concurrently, map batched into one call, traces, errors."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from modelrunner.errors import ModelrunnerError, ValidationError
from modelrunner.pipelines.executor import PipelinePredictor, collect_trace
from modelrunner.pipelines.graph import build_graph
from modelrunner.pipelines.transforms.base import ragged
from support.pipeline_helpers import ToyStep, contract, f, spec

DELAY = 0.3


def fan_pipeline() -> tuple[PipelinePredictor, dict[str, ToyStep]]:
    """x -> a (sum) and b (max) in parallel -> c (a - b): fan-out from $input.x, fan-in at c."""
    steps = {
        "a": ToyStep(
            contract([f("x", "float64", 3)], [f("s", "float64")]),
            lambda c: {"s": c["x"].sum(axis=1)},
            delay=DELAY,
        ),
        "b": ToyStep(
            contract([f("x", "float64", 3)], [f("m", "float64")]),
            lambda c: {"m": c["x"].max(axis=1)},
            delay=DELAY,
        ),
        "c": ToyStep(
            contract([f("s", "float64"), f("m", "float64")], [f("r", "float64")]),
            lambda c: {"r": c["s"] - c["m"]},
        ),
    }
    sp = spec(
        {
            "a": {"model": "a@1", "inputs": {"x": "$input.x"}},
            "b": {"model": "b@1", "inputs": {"x": "$input.x"}},
            "c": {"model": "c@1", "inputs": {"s": "a.s", "m": "b.m"}},
        },
        output={"r": "c.r", "s": "a.s"},
    )
    graph = build_graph(sp, {n: s.contract for n, s in steps.items()})
    return PipelinePredictor(graph, steps, {n: f"{n}@1" for n in steps}), steps


def test_fan_out_fan_in_runs_independent_steps_concurrently() -> None:
    pipe, steps = fan_pipeline()
    x = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, 1.0]])
    t0 = time.perf_counter()
    out = pipe.predict({"x": x})
    wall = time.perf_counter() - t0
    np.testing.assert_allclose(out["r"], [3.0, 1.0])
    np.testing.assert_allclose(out["s"], [6.0, 5.0])
    a, b = steps["a"].calls[0], steps["b"].calls[0]
    assert a["start"] < b["end"] and b["start"] < a["end"], "a and b did not overlap"
    assert wall < 2 * DELAY
    assert steps["c"].calls[0]["start"] >= max(a["end"], b["end"])
    pipe.close()
    assert all(s.closed for s in steps.values())


def test_trace_names_every_step_with_its_latency() -> None:
    pipe, _ = fan_pipeline()
    with collect_trace() as trace:
        pipe.predict({"x": np.ones((1, 3))})
    by_step = {t["step"]: t for t in trace}
    assert set(by_step) == {"a", "b", "c"}
    assert by_step["a"]["ref"] == "a@1" and by_step["a"]["ms"] >= DELAY * 1000 * 0.9
    assert by_step["c"]["calls"] == 1 and by_step["c"]["rows"] == 1
    pipe.predict({"x": np.ones((1, 3))})  # outside the block: nothing more collected
    assert len(trace) == 3


def map_pipeline() -> tuple[PipelinePredictor, dict[str, ToyStep]]:
    """n -> split (n items of 2 per row, a list) -> each (map: one score per item) -> total."""

    def split(c):  # type: ignore[no-untyped-def]
        return {
            "items": ragged(
                [
                    np.arange(2 * k, dtype=np.float64).reshape(k, 2) + 10 * i
                    for i, k in enumerate(c["n"].tolist())
                ]
            )
        }

    steps = {
        "split": ToyStep(contract([f("n", "int64")], [f("items", "float64", -1, 2)]), split),
        "each": ToyStep(
            contract([f("item", "float64", 2)], [f("score", "float64"), f("label", "int64")]),
            lambda c: {"score": c["item"].sum(axis=1), "label": np.arange(len(c["item"]))},
        ),
        "total": ToyStep(
            contract([f("scores", "float64", -1)], [f("t", "float64")]),
            lambda c: {"t": np.array([np.sum(r) for r in c["scores"]])},
        ),
    }
    sp = spec(
        {
            "split": {"model": "split@1", "inputs": {"n": "$input.n"}},
            "each": {"model": "each@1", "inputs": {"item": "split.items"}, "map": True},
            "total": {"model": "total@1", "inputs": {"scores": "each.score"}},
        },
        inputs={"n": "int64"},
        output={"scores": "each.score", "total": "total.t"},
    )
    graph = build_graph(sp, {n: s.contract for n, s in steps.items()})
    return PipelinePredictor(graph, steps, {n: f"{n}@1" for n in steps}), steps


def test_map_batches_every_element_into_one_predict_call() -> None:
    pipe, steps = map_pipeline()
    with collect_trace() as trace:
        out = pipe.predict({"n": np.array([3, 0, 2])})
    assert [c["rows"] for c in steps["each"].calls] == [5]  # 3 + 0 + 2 elements, one call
    scores = out["scores"]
    assert [len(r) for r in scores] == [3, 0, 2]
    np.testing.assert_allclose(scores[0], [1.0, 5.0, 9.0])
    np.testing.assert_allclose(scores[2], [41.0, 45.0])
    np.testing.assert_allclose(out["total"], [15.0, 0.0, 86.0])
    # ragged rows reach a non-mapped step one row at a time
    assert [c["rows"] for c in steps["total"].calls] == [1, 1, 1]
    each = next(t for t in trace if t["step"] == "each")
    assert (each["rows"], each["calls"]) == (5, 1)


def test_map_over_empty_lists_calls_nothing() -> None:
    pipe, steps = map_pipeline()
    out = pipe.predict({"n": np.array([0])})
    assert steps["each"].calls == []
    assert out["scores"].shape == (1, 0) and out["scores"].dtype == np.float64
    assert out["total"].tolist() == [0.0]


def test_equal_length_lists_stay_a_regular_array() -> None:
    pipe, _ = map_pipeline()
    out = pipe.predict({"n": np.array([2, 2])})
    assert out["scores"].dtype == np.float64 and out["scores"].shape == (2, 2)


def test_step_errors_name_the_step_and_pipeline_field() -> None:
    def refuse(c):  # type: ignore[no-untyped-def]
        raise ValidationError("field 'x': values must be positive", field="x")

    def explode(c):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom\nsecond line")

    for fn, cls, text in [
        (refuse, ValidationError, "step 'a' (a@1) input 'x' <- $input.x: field 'x': values must be positive"),
        (explode, ModelrunnerError, "step 'a' (a@1) failed: RuntimeError: boom"),
    ]:
        pipe, steps = fan_pipeline()
        steps["a"].fn = fn
        steps["a"].delay = 0
        with pytest.raises(cls) as info:
            pipe.predict({"x": np.ones((1, 3))})
        assert str(info.value) == text
        if cls is ValidationError:
            assert info.value.field == "x"  # type: ignore[attr-defined]
        assert steps["c"].calls == []  # the fan-in step never ran


def test_predict_from_a_running_event_loop() -> None:
    pipe, _ = fan_pipeline()

    async def main() -> np.ndarray:
        return pipe.predict({"x": np.ones((2, 3))})["r"]

    np.testing.assert_allclose(asyncio.run(main()), [2.0, 2.0])


def test_concurrent_requests_share_the_pipeline() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pipe, _ = map_pipeline()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: pipe.predict({"n": np.array([k])})["total"][0], range(20)))
    expected = [float(np.arange(2 * k).sum()) for k in range(20)]
    assert results == expected


def test_a_chain_runs_in_the_calling_thread_and_a_fan_out_on_the_pool() -> None:
    """No thread hop per step of a chain (the OCR shape); steps ready together still overlap on the pool."""
    import threading

    def record(pipe: PipelinePredictor, steps: dict[str, ToyStep]) -> dict[str, int]:
        threads: dict[str, int] = {}
        for name, step in steps.items():
            fn = step.fn

            def wrapped(c, name=name, fn=fn):  # type: ignore[no-untyped-def]
                threads[name] = threading.get_ident()
                return fn(c)

            step.fn = wrapped
        return threads

    chain, chain_steps = map_pipeline()
    threads = record(chain, chain_steps)
    chain.predict({"n": np.array([2, 1])})
    assert set(threads.values()) == {threading.get_ident()}, threads

    fan, fan_steps = fan_pipeline()
    for step in fan_steps.values():
        step.delay = 0
    threads = record(fan, fan_steps)
    fan.predict({"x": np.ones((1, 3))})
    assert threading.get_ident() not in (threads["a"], threads["b"])
    assert threads["c"] == threading.get_ident()  # the fan-in step, alone again, runs in the caller
    chain.close()
    fan.close()
