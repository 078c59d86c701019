"""A pipeline's DAG (the graph the checker builds, steps resolved now) and the comparison of versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelrunner.catalog import svg
from modelrunner.catalog.access import Viewer
from modelrunner.errors import InvalidArgument

if TYPE_CHECKING:
    from modelrunner.catalog.web import Catalog
    from modelrunner.registry.registry import Registry

MAX_COMPARED = 6


def _pipeline(registry: Registry, name: str, version: str | None) -> dict[str, Any]:
    from modelrunner.pipelines.package import FLAVOR
    from modelrunner.pipelines.targets import resolve_pipeline

    mv = registry.resolve(f"{name}@{version}" if version else name)
    if mv.flavor != FLAVOR:
        raise InvalidArgument(f"{mv.ref} is a {mv.flavor} model, not a pipeline")
    resolved = resolve_pipeline(registry, mv)
    runs = {
        n: t.ref + (" (map)" if resolved.graph.spec.steps[n].map else "") for n, t in resolved.steps.items()
    }
    return {
        "mv": mv,
        "pv": resolved,
        "picture": svg.dag(resolved.graph, runs),
        "runs": runs,
        "versions": [v.version for v in registry.model(name).versions],
    }


async def pipeline_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    name = request.path_params["name"]
    data = await cat.call(_pipeline, cat.registry, name, request.query_params.get("version"))
    graph = data["pv"].graph
    edges = [
        (step, field, str(src), graph.values[src].describe() if src in graph.values else "?")
        for step in graph.order
        for field, src in graph.spec.steps[step].sources().items()
    ]
    return cat.render(request, "pipeline.html", active="pipelines", edges=edges, graph=graph, **data)


def _compare(registry: Registry, name: str, wanted: list[int]) -> dict[str, Any]:
    from modelrunner.contract.compat import check_compatible

    info = registry.model(name)
    by_number = {v.version: v for v in info.versions}
    chosen = [by_number[n] for n in wanted if n in by_number] or info.versions[-2:]
    missing = [n for n in wanted if n not in by_number]
    if missing:
        raise InvalidArgument(
            f"model {name!r} has no version {missing[0]} (versions: {', '.join(str(v) for v in by_number)})"
        )
    pairs = zip(chosen, chosen[1:], strict=False)
    diffs = [(a, b, check_compatible(a.contract, b.contract)) for a, b in pairs]
    metric_names = sorted({k for v in chosen for k in v.metrics})
    return {
        "info": info,
        "chosen": chosen,
        "diffs": diffs,
        "metric_names": metric_names,
        "gates": registry.gates(name),
        "failures": {v.version: _gate_failures(registry, v) for v in chosen},
    }


def _gate_failures(registry: Registry, mv: Any) -> list[str] | None:
    """Which saved gates ``mv`` fails (the production check), None when the model has no gates."""
    if not registry.gates(mv.name):
        return None
    failures: list[str] = registry.gate_failures(mv.name, mv.version)
    return failures


async def compare_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    name = request.query_params.get("model", "").strip()
    if not name:
        raise InvalidArgument("choose a model to compare its versions (?model=NAME&v=1&v=2)")
    try:
        wanted = [int(v) for v in request.query_params.getlist("v")][:MAX_COMPARED]
    except ValueError as exc:
        raise InvalidArgument("versions to compare must be numbers (?v=1&v=2)") from exc
    data = await cat.call(_compare, cat.registry, name, wanted)
    return cat.render(request, "compare.html", active="models", name=name, **data)


ROUTES = [
    ("/pipelines/{name}", pipeline_page, ["GET"]),
    ("/compare", compare_page, ["GET"]),
]
