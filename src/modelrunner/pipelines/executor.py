"""Run a checked pipeline graph on a batch: steps in dependency order, independent steps concurrently.

Each step starts as soon as the steps it reads from are done. ``predict`` (the blocking Predictor call) runs
the steps in the calling thread while they form a chain (one step ready at a time: no thread hop, no event
loop per step); steps that become ready together (fan-out) run on the predictor's thread pool at the same
time. ``run`` awaits the same on any event loop.

A ``map: true`` step gets the elements of every row's lists concatenated into **one** predict call, and
its outputs are split back per row. Values
whose rows have different shapes (a list of 3 crops in one row, 5 in the next) travel as object arrays of
per-row arrays; a step that cannot take such a column in one call is called row by row.

Per-step latency goes to Prometheus (``modelrunner_pipeline_step_duration_seconds``) and, when the caller
collects a trace (:func:`collect_trace`, e.g. ``?trace=1``), into the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.errors import ModelrunnerError, Unavailable, ValidationError
from modelrunner.pipelines.graph import Graph
from modelrunner.pipelines.spec import Source
from modelrunner.pipelines.transforms.base import ragged

_TRACE: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "modelrunner_pipeline_trace", default=None
)


@dataclass(frozen=True)
class StepTrace:
    """How one step ran: its resolved ref, wall time, model rows and predict calls."""

    step: str
    ref: str
    ms: float
    rows: int
    calls: int


@contextlib.contextmanager
def collect_trace() -> Iterator[list[dict[str, Any]]]:
    """Collect the step traces of pipelines run inside this block (and threads that copy the context)."""
    steps: list[dict[str, Any]] = []
    token = _TRACE.set(steps)
    try:
        yield steps
    finally:
        _TRACE.reset(token)


class PipelinePredictor(Predictor):
    """A pipeline as a :class:`Predictor`: its contract is the graph's; ``predict`` runs the DAG."""

    def __init__(
        self,
        graph: Graph,
        steps: Mapping[str, Predictor],
        refs: Mapping[str, str],
        *,
        ref: str = "",
        max_workers: int = 4,
    ) -> None:
        self.graph = graph
        self.contract = graph.contract
        self.steps = dict(steps)
        self.refs = dict(refs)
        self.ref = ref or graph.name
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"pipeline-{graph.name}")
        self._closed = False
        # parsed once: every request reads them
        self._sources = {name: step.sources() for name, step in graph.spec.steps.items()}
        self._outputs = graph.spec.output_sources()

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        """Run the pipeline (blocking, thread-safe) in the calling thread; fan-out steps on the pool."""
        if self._closed:
            raise Unavailable(f"pipeline {self.ref} was closed")
        return self._execute(columns, _TRACE.get())

    async def run(
        self, columns: Mapping[str, np.ndarray], *, trace: list[dict[str, Any]] | None = None
    ) -> Columns:
        """:meth:`predict` awaitable on any event loop (in a thread of the pipeline's pool).

        ``trace`` (default: the one :func:`collect_trace` set) collects the steps.
        """
        if self._closed:
            raise Unavailable(f"pipeline {self.ref} was closed")
        collected = _TRACE.get() if trace is None else trace
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._execute, columns, collected)

    def _execute(self, columns: Mapping[str, np.ndarray], trace: list[dict[str, Any]] | None) -> Columns:
        """Run every step as soon as its inputs are ready; return the pipeline's output columns.

        A lone ready step (a chain: decode -> segment -> ...) runs in this thread, so a linear pipeline costs
        no thread hop per step; steps that become ready together (fan-out) run on the pool at once.
        """
        values: dict[Source, np.ndarray] = {Source(None, k): np.asarray(v) for k, v in columns.items()}
        n = _rows(values)
        pending = list(self.graph.order)  # topological: a step's dependencies come before it
        done: set[str] = set()
        running: dict[Future[None], str] = {}
        try:
            while pending or running:
                ready = [s for s in pending if self.graph.deps[s] <= done]
                pending = [s for s in pending if s not in ready]
                if len(ready) == 1 and not running:
                    self._run_step(ready[0], values, n, trace)
                    done.add(ready[0])
                    continue
                for name in ready:
                    running[self._pool.submit(self._run_step, name, values, n, trace)] = name
                if not running:  # cannot happen in a checked (acyclic) graph: never spin
                    raise ModelrunnerError(f"pipeline {self.ref}: steps {pending} can never run")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    future.result()  # a step's error ends the run; steps not started never start
                    done.add(name)
        finally:
            for future in running:
                future.cancel()
        return {name: values[src] for name, src in self._outputs.items()}

    def _run_step(
        self, name: str, values: dict[Source, np.ndarray], n: int, trace: list[dict[str, Any]] | None
    ) -> None:
        inputs = {field: values[src] for field, src in self._sources[name].items()}
        t0 = time.perf_counter()
        out, rows, calls = self._call(name, inputs, n)
        seconds = time.perf_counter() - t0
        _observe(self.graph.name, name, seconds)
        if trace is not None:
            ref, ms = self.refs.get(name, ""), round(seconds * 1000, 3)  # StepTrace's fields (asdict: slow)
            trace.append({"step": name, "ref": ref, "ms": ms, "rows": rows, "calls": calls})
        for field, value in out.items():
            values[Source(name, field)] = value

    def _call(self, name: str, inputs: dict[str, np.ndarray], n: int) -> tuple[Columns, int, int]:
        """Run one step on the whole batch: (outputs, model rows, predict calls)."""
        if self.graph.spec.steps[name].map:
            return self._call_mapped(name, inputs, n)
        if not any(_is_ragged(v) for v in inputs.values()):
            return self._predict(name, inputs), n, 1
        rows = {k: _split_rows(v, n) for k, v in inputs.items()}  # each column scanned once, not per row
        per_row = [self._predict(name, {k: r[i][None] for k, r in rows.items()}) for i in range(n)]
        return _join_rows(per_row), n, n

    def _call_mapped(self, name: str, inputs: dict[str, np.ndarray], n: int) -> tuple[Columns, int, int]:
        parts = {k: [np.asarray(r) for r in _split_rows(v, n)] for k, v in inputs.items()}
        counts = _element_counts(name, parts, n)
        total = int(sum(counts))
        if total == 0:
            out = {
                f.name: np.zeros((0, *[max(d, 0) for d in f.shape]), dtype=f.dtype.numpy())
                for f in self.steps[name].contract.outputs
            }
            calls = 0
        else:
            joined = {k: v[0] if n == 1 else np.concatenate(v) for k, v in parts.items()}
            out, calls = self._predict(name, joined), 1
        if n == 1:  # one row (a lone request): its list is the whole output, no split
            return {k: _one_row(np.asarray(v)) for k, v in out.items()}, total, calls
        cuts = np.cumsum(counts)[:-1]
        return {k: ragged(np.split(np.asarray(v), cuts)) for k, v in out.items()}, total, calls

    def _predict(self, name: str, batch: dict[str, np.ndarray]) -> Columns:
        try:
            return self.steps[name].predict(batch)
        except ModelrunnerError as exc:
            raise self._in_step(name, exc) from None
        except Exception as exc:  # noqa: BLE001 - a model's own error: name the step, keep one line
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ModelrunnerError(
                f"step {name!r} ({self.refs.get(name, name)}) failed: {type(exc).__name__}: {first}"
            ) from exc

    def _in_step(self, name: str, exc: ModelrunnerError) -> ModelrunnerError:
        """The same error, its message prefixed with the step (and the pipeline field it came from)."""
        field = getattr(exc, "field", None) or exc.details.get("field")
        src = self._sources[name].get(str(field)) if field else None
        where = f"step {name!r} ({self.refs.get(name, name)})"
        if src is not None:
            where += f" input {field!r} <- {src}"
            if src.step is None and isinstance(exc, ValidationError):
                exc.field = src.field
                exc.details["field"] = src.field
        exc.message = f"{where}: {exc.message}"
        exc.args = (exc.message,)
        return exc

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False)
        for predictor in self.steps.values():
            with contextlib.suppress(Exception):
                predictor.close()


def _observe(pipeline: str, step: str, seconds: float) -> None:
    from modelrunner.monitoring import metrics

    metrics.observe_step(pipeline, step, seconds)


def _rows(values: Mapping[Source, np.ndarray]) -> int:
    sizes = {len(v) for v in values.values() if np.ndim(v)}
    if len(sizes) > 1:
        raise ValidationError(f"input columns have different numbers of rows: {sorted(sizes)}")
    return sizes.pop() if sizes else 0


def _is_ragged(value: np.ndarray) -> bool:
    return value.dtype == object and any(isinstance(x, np.ndarray) for x in value)


def _split_rows(value: np.ndarray, n: int) -> list[Any]:
    """Each row of a column: a ragged column's per-row arrays, else its elements (one scan, not per row)."""
    if _is_ragged(value):
        return [np.asarray(value[i]) for i in range(n)]
    return [value[i] for i in range(n)]


def _one_row(value: np.ndarray) -> np.ndarray:
    """A batch of one row holding ``value`` (what :func:`ragged` makes of ``[value]``)."""
    return value[None] if value.dtype != object else ragged([value])


def _element_counts(name: str, parts: dict[str, list[np.ndarray]], n: int) -> list[int]:
    counts = [0] * n
    for field, rows in parts.items():
        for i, arr in enumerate(rows):
            if arr.ndim == 0:
                raise ValidationError(
                    f"step {name!r} maps over input {field!r}, but row {i} is not a list", field=field
                )
            counts[i] = len(arr)
    for i in range(n):
        lengths = {k: len(rows[i]) for k, rows in parts.items()}
        if len(set(lengths.values())) > 1:
            raise ValidationError(
                f"step {name!r} maps over lists of different lengths in row {i}: "
                + ", ".join(f"{k}={v}" for k, v in lengths.items())
            )
    return counts


def _join_rows(per_row: list[Columns]) -> Columns:
    """Per-row outputs (each a batch of one) -> one column per field."""
    return {field: ragged([r[field][0] for r in per_row]) for field in (per_row[0] if per_row else ())}
