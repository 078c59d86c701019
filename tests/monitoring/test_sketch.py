"""Sketches: two workers' sketches merged equal one sketch of all rows; slots; the hot-path recorder."""

from __future__ import annotations

import numpy as np

from modelrunner.contract import Contract, Field
from modelrunner.contract.types import DType
from modelrunner.monitoring.profile import build_profile, generic_specs, quantile_edges
from modelrunner.monitoring.sketch import Binner, Recorder, Sketch

CONTRACT = Contract.build(
    [
        Field(name="x", dtype=DType.FLOAT64, shape=(3,)),
        Field(name="color", dtype=DType.STRING),
        Field(name="flag", dtype=DType.BOOL),
    ],
    [Field(name="label", dtype=DType.INT64)],
)


def _batch(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    x = rng.normal(0, 1, (n, 3))
    x[rng.random((n, 3)) < 0.05] = np.nan
    color = rng.choice(np.array(["red", "green", "blue", "mauve", None], dtype=object), n)
    return ({"x": x, "color": color, "flag": rng.random(n) < 0.3}, {"label": rng.integers(0, 3, n)})


def test_merging_two_workers_sketches_equals_one_sketch_of_all_rows() -> None:
    rng = np.random.default_rng(0)
    ref_in, ref_out = _batch(rng, 500)
    binner = build_profile(CONTRACT, ref_in, ref_out).binner()
    batches = [_batch(rng, int(n)) for n in rng.integers(1, 40, 30)]
    a, b = Recorder("e", "m", 1, binner), Recorder("e", "m", 1, binner)
    for i, (inputs, outputs) in enumerate(batches):
        (a if i % 2 else b).observe(inputs, outputs)
    all_in = {k: np.concatenate([bt[0][k] for bt in batches]) for k in batches[0][0]}
    all_out = {k: np.concatenate([bt[1][k] for bt in batches]) for k in batches[0][1]}
    one = Sketch(binner.count(all_in, all_out), len(all_in["x"]))
    merged = a.take().merge(Sketch.from_json(b.take().to_json()))  # through the stored JSON form
    assert np.array_equal(merged.counts, one.counts)
    assert merged.rows == one.rows == sum(len(bt[0]["x"]) for bt in batches)


def test_slots_count_below_above_nan_unseen_and_missing() -> None:
    rng = np.random.default_rng(1)
    ref_in, ref_out = _batch(rng, 300)
    profile = build_profile(CONTRACT, ref_in, ref_out)
    spec = profile.specs[0]
    lo, hi = spec.edges[0], spec.edges[-1]
    batch = {
        "x": np.array([[lo - 1, 0, 0], [hi + 1, 0, 0], [np.nan, 0, 0], [lo, 0, 0], [hi, 0, 0]]),
        "color": np.array(["red", "purple", None, "red", "red"], dtype=object),
        "flag": np.array([True, False, True, True, True]),
    }
    counts = profile.binner().count(batch, None)
    x0 = counts[: spec.slots]
    assert (x0[0], x0[-2], x0[-1]) == (1, 1, 1)  # below min, above max, NaN
    assert x0[1] == 1 and x0[-3] == 1  # min falls in the first bin, max in the last
    color = next(i for i, s in enumerate(profile.specs) if s.field == "color")
    start = sum(s.slots for s in profile.specs[:color])
    cats = profile.specs[color].categories
    run = counts[start : start + len(cats) + 2]
    assert run[cats.index("red")] == 3 and run[-2] == 1 and run[-1] == 1  # unseen "purple", one missing
    flags = profile.specs[color + 1]
    assert flags.kind == "categorical" and set(flags.categories) == {"true", "false"}


def test_recorder_counts_at_most_max_pending_rows_per_fold_and_keeps_a_failed_flush() -> None:
    specs = generic_specs(CONTRACT)
    rec = Recorder("e", "m", 1, Binner(specs), max_pending=10)

    def observe(batches: int) -> None:
        for _ in range(batches):
            rec.observe(
                {
                    "x": np.ones((3, 3)),
                    "color": np.array(["a"] * 3, dtype=object),
                    "flag": np.ones(3, dtype=bool),
                },
                {"label": np.zeros(3, dtype=np.int64)},
            )

    observe(5)  # 4 batches reach the cap (12 rows queued); the 5th is not counted, and not folded on the way
    assert rec._pending_rows == 12 and rec.sketch.rows == 0 and rec.skipped_rows == 3
    rec.fold()
    observe(1)  # a fold opens the next interval
    assert rec.take().rows == 15 and rec.skipped_rows == 3
    observe(2)
    taken = rec.take()
    rec.give_back(taken)
    assert rec.take().rows == 6


def test_quantile_edges_collapse_ties() -> None:
    assert quantile_edges(np.zeros(100)) == (0.0, 0.0)
    edges = quantile_edges(np.array([0] * 80 + list(range(1, 21))))
    assert edges[0] == 0 and edges[-1] == 20 and len(edges) < 11
    assert list(edges) == sorted(set(edges))
