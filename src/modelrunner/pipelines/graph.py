"""The pipeline graph: edges checked field by field, cycles rejected, the pipeline's contract derived.

:func:`build_graph` takes a spec and the contract of every step and returns a :class:`Graph`, or raises
:class:`PipelineError` listing every problem, each naming the step and field: an unknown step, a missing edge
(a required step input not connected), an unknown field, a cycle, or a type that does not fit. A value fits
an input when the names match, the dtype is the same or a safe widening (``int32 -> int64``,
``float32 -> float64``, ``int -> float``) and the per-row shape fits (``-1`` accepts any size).

``map: true`` feeds a step each element of a list: every input of a mapped step reads a value whose rows are
lists (a leading variable dimension), the step sees one element per model row, and each of its outputs gains
that leading list dimension back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import PipelineError
from modelrunner.pipelines.spec import PipelineSpec, Source


@dataclass(frozen=True)
class Graph:
    """A checked pipeline: step order, dependencies, the type of every value, the derived contract."""

    spec: PipelineSpec
    order: tuple[str, ...]
    deps: dict[str, frozenset[str]]
    values: dict[Source, Field]
    contract: Contract

    @property
    def name(self) -> str:
        return self.spec.name

    def dependents(self, step: str) -> list[str]:
        return [s for s in self.order if step in self.deps[s]]


def fit_problem(value: Field, accepted: Field) -> str | None:
    """Why a value of type ``value`` cannot feed an input of type ``accepted`` (None when it fits)."""
    if value.dtype != accepted.dtype and not _widens(value.dtype, accepted.dtype):
        return f"{value.dtype.value} does not fit {accepted.dtype.value} (not a safe widening)"
    if len(value.shape) != len(accepted.shape):
        return f"{value.describe()} does not fit {accepted.describe()} (different number of dimensions)"
    for got, want in zip(value.shape, accepted.shape, strict=True):
        if want != -1 and got != want:
            size = "a variable size" if got == -1 else f"size {got}"
            return f"{value.describe()} does not fit {accepted.describe()} ({size} where {want} is required)"
    return None


def _widens(src: DType, dst: DType) -> bool:
    textual = (DType.STRING, DType.BYTES)
    if src in textual or dst in textual:
        return False
    return bool(np.can_cast(src.numpy(), dst.numpy(), casting="safe"))


def build_graph(spec: PipelineSpec, contracts: Mapping[str, Contract]) -> Graph:
    """Check ``spec`` against its steps' contracts; PipelineError naming every problem."""
    problems: list[tuple[str, str | None, str | None]] = []
    inputs = spec.input_fields()
    deps = _dependencies(spec, problems)
    order = _topological(spec, deps, problems)
    values: dict[Source, Field] = {Source(None, f.name): f for f in inputs}
    if order is not None:
        for step in order:
            _check_step(spec, step, contracts[step], values, problems)
    outputs = _outputs(spec, values, problems) if order is not None else ()
    if problems:
        first_msg, where, field = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise PipelineError(
            f"pipeline {spec.name!r}: {first_msg}{more}",
            step=where,
            field=field,
            problems=[p[0] for p in problems],
        )
    assert order is not None
    contract = Contract.build(inputs, outputs)
    return Graph(spec=spec, order=tuple(order), deps=deps, values=values, contract=contract)


def _dependencies(
    spec: PipelineSpec, problems: list[tuple[str, str | None, str | None]]
) -> dict[str, frozenset[str]]:
    deps: dict[str, frozenset[str]] = {}
    for name, step in spec.steps.items():
        needed = set()
        for field, src in step.sources().items():
            if src.step is None:
                continue
            if src.step not in spec.steps:
                problems.append(
                    (
                        f"step {name!r} input {field!r} reads {src}: unknown step {src.step!r} "
                        f"(steps: {', '.join(spec.steps)})",
                        name,
                        field,
                    )
                )
            else:
                needed.add(src.step)
        deps[name] = frozenset(needed)
    for out, src in spec.output_sources().items():
        if src.step is not None and src.step not in spec.steps:
            problems.append((f"output {out!r} reads {src}: unknown step {src.step!r}", None, out))
    return deps


def _topological(
    spec: PipelineSpec, deps: dict[str, frozenset[str]], problems: list[tuple[str, str | None, str | None]]
) -> list[str] | None:
    """Kahn's algorithm in file order; a cycle is reported with the steps on it."""
    remaining = {s: set(d) for s, d in deps.items()}
    order: list[str] = []
    while remaining:
        ready = [s for s in spec.steps if s in remaining and not remaining[s]]
        if not ready:
            cycle = _cycle(remaining)
            first = cycle[0]
            problems.append((f"cycle: {' -> '.join(cycle)} (a pipeline must be acyclic)", first, None))
            return None
        for s in ready:
            order.append(s)
            del remaining[s]
        for left in remaining.values():
            left.difference_update(ready)
    return order


def _cycle(remaining: dict[str, set[str]]) -> list[str]:
    """One cycle among steps that all still wait on each other, as ``a -> b -> a`` (data flow order)."""
    start = next(iter(remaining))
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        node = sorted(remaining[node])[0]
        if node in seen:
            loop = path[seen[node] :] + [node]
            return list(reversed(loop))
        seen[node] = len(path)
        path.append(node)


def _check_step(
    spec: PipelineSpec,
    name: str,
    contract: Contract,
    values: dict[Source, Field],
    problems: list[tuple[str, str | None, str | None]],
) -> None:
    step = spec.steps[name]
    sources = step.sources()
    accepted = {f.name: f for f in contract.inputs}
    for field, src in sources.items():
        if field not in accepted:
            problems.append(
                (
                    f"step {name!r} ({step.target}) has no input {field!r} "
                    f"(inputs: {', '.join(accepted) or 'none'})",
                    name,
                    field,
                )
            )
        elif src.step is None or src.step in spec.steps:  # an unknown step is reported already
            _check_edge(name, step.map, field, src, accepted[field], values, problems)
    for want in accepted.values():
        if want.name not in sources and not want.optional:
            problems.append(
                (
                    f"missing edge: step {name!r} ({step.target}) input {want.name!r} "
                    f"({want.describe()}) is not connected",
                    name,
                    want.name,
                )
            )
    for out in contract.outputs:
        shape = (-1, *out.shape) if step.map else out.shape
        values[Source(name, out.name)] = out.model_copy(update={"shape": shape, "number": 0})


def _check_edge(
    name: str,
    maps: bool,
    field: str,
    src: Source,
    accepted: Field,
    values: dict[Source, Field],
    problems: list[tuple[str, str | None, str | None]],
) -> None:
    """The value ``src`` gives input ``field`` of step ``name`` (an element of it when the step ``maps``)
    fits the input the step's contract accepts; else a problem naming the edge."""
    value = _value(values, src, f"step {name!r} input {field!r}", problems, name, field)
    if value is None:
        return
    if maps:
        if not value.shape:
            problems.append(
                (
                    f"step {name!r} maps over input {field!r}, but {src} ({value.describe()}) is not a list",
                    name,
                    field,
                )
            )
            return
        value = value.model_copy(update={"shape": value.shape[1:]})
    why = fit_problem(value, accepted)
    if why:
        problems.append((f"edge {src} -> {name}.{field}: {why}", name, field))


def _value(
    values: dict[Source, Field],
    src: Source,
    where: str,
    problems: list[tuple[str, str | None, str | None]],
    step: str | None,
    field: str | None,
) -> Field | None:
    if src in values:
        return values[src]
    if src.step is None:
        known = ", ".join(s.field for s in values if s.step is None)
        problems.append(
            (f"{where} reads {src}: the pipeline has no input {src.field!r} (inputs: {known})", step, field)
        )
    else:
        known = ", ".join(s.field for s in values if s.step == src.step)
        problems.append(
            (
                f"{where} reads {src}: step {src.step!r} has no output {src.field!r} "
                f"(outputs: {known or 'none'})",
                step,
                field,
            )
        )
    return None


def _outputs(
    spec: PipelineSpec, values: dict[Source, Field], problems: list[tuple[str, str | None, str | None]]
) -> tuple[Field, ...]:
    out: list[Field] = []
    for name, src in spec.output_sources().items():
        if src.step is not None and src.step not in spec.steps:
            continue
        value = _value(values, src, f"output {name!r}", problems, src.step, name)
        if value is not None:
            try:
                out.append(Field.model_validate({**value.model_dump(), "name": name, "number": 0}))
            except ValueError:
                problems.append((f"output {name!r}: not a valid field name (letters, digits, _)", None, name))
    return tuple(out)
