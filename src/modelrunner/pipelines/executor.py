"""Run a checked pipeline graph on a batch: steps as an asyncio DAG, independent steps concurrently.

Each step starts as soon as the steps it reads from are done; its model runs on a thread pool, so steps
that do not depend on each other (fan-out) run at the same time. ``predict`` (the blocking Predictor call)
schedules the DAG on the predictor's own event loop thread; ``run`` can be awaited on any loop.

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
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
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
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._closed = False

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        """Run the pipeline (blocking, thread-safe) on this predictor's event loop thread."""
        trace = _TRACE.get()  # read here: the loop thread does not share the caller's context
        future = asyncio.run_coroutine_threadsafe(self.run(columns, trace=trace), self._event_loop())
        return future.result()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop that schedules steps, started on first use in a daemon thread."""
        with self._lock:
            if self._loop is None:
                if self._closed:
                    raise Unavailable(f"pipeline {self.ref} was closed")
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, daemon=True, name=f"pipeline-{self.graph.name}-loop"
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    async def run(
        self, columns: Mapping[str, np.ndarray], *, trace: list[dict[str, Any]] | None = None
    ) -> Columns:
        """Run every step as soon as its inputs are ready; return the pipeline's output columns.

        Awaitable on any event loop; ``trace`` (default: the one :func:`collect_trace` set) collects steps.
        """
        values: dict[Source, np.ndarray] = {Source(None, k): np.asarray(v) for k, v in columns.items()}
        n = _rows(values)
        if trace is None:
            trace = _TRACE.get()
        tasks: dict[str, asyncio.Task[None]] = {}
        for name in self.graph.order:  # topological: every dependency already has its task
            deps = [tasks[d] for d in self.graph.deps[name]]
            tasks[name] = asyncio.ensure_future(self._run_step(name, deps, values, n, trace))
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise
        return {name: values[src] for name, src in self.graph.spec.output_sources().items()}

    async def _run_step(
        self,
        name: str,
        deps: list[asyncio.Task[None]],
        values: dict[Source, np.ndarray],
        n: int,
        trace: list[dict[str, Any]] | None,
    ) -> None:
        if deps:
            await asyncio.gather(*deps)
        step = self.graph.spec.steps[name]
        inputs = {field: values[src] for field, src in step.sources().items()}
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        out, rows, calls = await loop.run_in_executor(self._pool, self._call, name, inputs, n)
        seconds = time.perf_counter() - t0
        _observe(self.graph.name, name, seconds)
        if trace is not None:
            trace.append(
                asdict(StepTrace(name, self.refs.get(name, ""), round(seconds * 1000, 3), rows, calls))
            )
        for field, value in out.items():
            values[Source(name, field)] = value

    def _call(self, name: str, inputs: dict[str, np.ndarray], n: int) -> tuple[Columns, int, int]:
        """Run one step on the whole batch: (outputs, model rows, predict calls)."""
        if self.graph.spec.steps[name].map:
            return self._call_mapped(name, inputs, n)
        if not any(_is_ragged(v) for v in inputs.values()):
            return self._predict(name, inputs), n, 1
        per_row = [self._predict(name, {k: _row(v, i)[None] for k, v in inputs.items()}) for i in range(n)]
        return _join_rows(per_row), n, n

    def _call_mapped(self, name: str, inputs: dict[str, np.ndarray], n: int) -> tuple[Columns, int, int]:
        parts = {k: [np.asarray(_row(v, i)) for i in range(n)] for k, v in inputs.items()}
        counts = _element_counts(name, parts, n)
        total = int(sum(counts))
        if total == 0:
            out = {
                f.name: np.zeros((0, *[max(d, 0) for d in f.shape]), dtype=f.dtype.numpy())
                for f in self.steps[name].contract.outputs
            }
            calls = 0
        else:
            out = self._predict(name, {k: np.concatenate(v) for k, v in parts.items()})
            calls = 1
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
        src = self.graph.spec.steps[name].sources().get(str(field)) if field else None
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
        with self._lock:
            self._closed = True
            loop, thread, self._loop = self._loop, self._loop_thread, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
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


def _row(value: np.ndarray, i: int) -> np.ndarray:
    return np.asarray(value[i]) if _is_ragged(value) else value[i]


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
