"""Models: the searchable, sortable, filtered list; one model; its contract downloads; an evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelrunner.catalog import listing, svg
from modelrunner.catalog.access import Viewer
from modelrunner.errors import InvalidArgument, ModelrunnerError, NotFound

if TYPE_CHECKING:
    from modelrunner.catalog.web import Catalog
    from modelrunner.registry.registry import Registry

PAGE_SIZE = 50
DOWNLOADS = {  # file name -> (format given to contract.render.render_contract, media type)
    "contract.proto": ("proto", "text/plain; charset=utf-8"),
    "contract.schema.json": ("json-schema", "application/schema+json"),
    "contract.v2.json": ("v2", "application/json"),
    "contract.json": ("json", "application/json"),
}


@dataclass(frozen=True)
class Row:
    """One model in the list (its newest version's flavor, license and tags)."""

    name: str
    description: str
    flavor: str
    license: str
    latest: int | None
    aliases: dict[str, int]
    tags: dict[str, str]
    updated: datetime
    steps: dict[str, str]  # a pipeline's steps -> the model ref each resolved to at push


def _rows(registry: Registry) -> list[Row]:
    summaries = registry.models()
    latest = registry.latest_summaries()
    rows = []
    for s in summaries:
        v = latest.get(s.name)
        rows.append(
            Row(
                name=s.name,
                description=s.description or (v.description if v else ""),
                flavor=v.flavor if v else "",
                license=(v.license or "") if v else "",
                latest=s.latest_version,
                aliases=dict(s.aliases),
                tags=dict(v.tags) if v else {},
                updated=s.updated_at,
                steps=dict(v.steps) if v else {},
            )
        )
    return rows


async def models_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    rows = await cat.call(_rows, cat.registry)
    view = listing.View.from_query(request.query_params, PAGE_SIZE)
    page = listing.select(rows, view)
    return cat.render(
        request,
        "models.html",
        active="models",
        page=page,
        view=view,
        facets=listing.facets(rows),
        total=len(rows),
    )


async def pipelines_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    rows = [r for r in await cat.call(_rows, cat.registry) if r.flavor == "pipeline"]
    return cat.render(request, "pipelines.html", active="pipelines", rows=rows)


def _example(mv: Any) -> tuple[str, str]:
    """A request body of one row of zeros that fits the contract: as JSON (curl) and as Python (httpx)."""
    from modelrunner.contract.codecs import columns_to_rows
    from modelrunner.contract.derive import example_columns

    body = {"instances": columns_to_rows(example_columns(mv.contract.inputs, rows=1))}
    return json.dumps(body), repr(body)


def _serving_url(cat: Catalog, request: Request) -> str:
    if cat.serving_url:
        return str(cat.serving_url).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def _model_data(registry: Registry, name: str, version: str | None) -> dict[str, Any]:
    info = registry.model(name)
    if not info.versions:
        raise NotFound(f"model {name!r} has no versions")
    mv = info.versions[-1]
    if version:
        if not version.isdigit():
            raise InvalidArgument(f"version must be a number, got {version!r}")
        mv = registry.resolve(f"{name}@{int(version)}")
    endpoints = [e for e in registry.endpoints() if e.target.split(":", 1)[-1].split("@")[0] == name]
    served = mv  # the examples call an endpoint, so they fit the version it serves
    for e in endpoints:
        try:
            served = registry.resolve(e.target.split(":", 1)[-1])
            break
        except ModelrunnerError:
            continue
    return {
        "info": info,
        "mv": mv,
        "gates": registry.gates(name),
        "evaluations": registry.evaluations(name),
        "endpoints": endpoints,
        "served": served,
    }


async def model_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    name = request.path_params["name"]
    data = await cat.call(_model_data, cat.registry, name, request.query_params.get("version"))
    info, mv = data["info"], data["mv"]
    metric_names = sorted({k for v in info.versions for k in v.metrics})
    charts = {
        m: svg.sparkline([(v.version, v.metrics.get(m)) for v in info.versions], m) for m in metric_names
    }
    endpoint = data["endpoints"][0].name if data["endpoints"] else name
    as_json, as_python = _example(data["served"])
    return cat.render(
        request,
        "model.html",
        active="models",
        info=info,
        mv=mv,
        metric_names=metric_names,
        charts=charts,
        gates=data["gates"],
        evaluations=data["evaluations"],
        endpoints=data["endpoints"],
        example_endpoint=endpoint,
        example=as_json,
        python_example=as_python,
        served=data["served"],
        url=_serving_url(cat, request),
        downloads=list(DOWNLOADS),
    )


async def contract_download(cat: Catalog, request: Request, who: Viewer) -> Response:
    from modelrunner.contract.render import ContractFormat, render_contract

    name, version, file = (request.path_params[k] for k in ("name", "version", "file"))
    if file not in DOWNLOADS:
        raise NotFound(f"no download {file!r} (downloads: {', '.join(DOWNLOADS)})")
    fmt, media = DOWNLOADS[file]

    def render() -> str:
        mv = cat.registry.resolve(f"{name}@{version}")
        fmt_ = ContractFormat(fmt)
        versions = [v.version for v in cat.registry.model(name).versions] if fmt_ is ContractFormat.v2 else []
        return render_contract(mv.contract, fmt_, name=mv.name, flavor=mv.flavor, versions=versions)

    text = await cat.call(render)
    disposition = f'attachment; filename="{name}-{version}-{file}"'
    return Response(text, media_type=media, headers={"content-disposition": disposition})


async def evaluation_page(cat: Catalog, request: Request, who: Viewer) -> Response:
    name, eval_id = request.path_params["name"], request.path_params["eval_id"]
    evaluations = await cat.call(cat.registry.evaluations, name)
    found = next((e for e in evaluations if e.id == eval_id), None)
    if found is None:
        raise NotFound(f"model {name!r} has no evaluation #{eval_id}")
    return cat.render(request, "evaluation.html", active="models", ev=found, name=name)


async def alias_action(cat: Catalog, request: Request, who: Viewer) -> Response:
    """Move an alias (confirm first); saved gates and served pipelines may refuse, with the reason."""
    from modelrunner.pipelines.targets import refuse_breaking_step_swap

    name = request.path_params["name"]
    form = await request.form()
    alias, version = str(form.get("alias") or "").strip(), str(form.get("version") or "").strip()
    if not alias or not version.isdigit():
        raise InvalidArgument("give an alias and a version number")
    action = {
        "url": f"/models/{name}/alias",
        "fields": {"alias": alias, "version": version},
        "title": f"Point {name}@{alias} at version {version}?",
        "back": f"/models/{name}",
    }
    if form.get("confirm") != "yes":
        return cat.render(request, "confirm.html", active="models", action=action, notes=[])

    def move() -> Any:
        refuse_breaking_step_swap(cat.registry, name, alias, int(version))
        return cat.registry.set_alias(name, alias, int(version), actor=who.actor)

    await cat.call(move)
    wake = getattr(cat.runtime, "wake", None)
    if wake is not None:
        wake()
    return cat.render(
        request,
        "result.html",
        active="models",
        title="Alias moved",
        outcome="switched",
        message=f"{name}@{alias} -> version {version} (audited as {who.actor})",
        back=f"/models/{name}",
        workers=[],
    )


ROUTES = [
    ("/", models_page, ["GET"]),
    ("/pipelines", pipelines_page, ["GET"]),
    ("/models/{name}", model_page, ["GET"]),
    ("/models/{name}/versions/{version:int}/{file}", contract_download, ["GET"]),
    ("/models/{name}/evaluations/{eval_id:int}", evaluation_page, ["GET"]),
    ("/models/{name}/alias", alias_action, ["POST"]),
]
