"""Search, filters, sorting and pages of the models list (pure functions over rows)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

SORTS = ("name", "description", "flavor", "license", "latest", "aliases", "tags", "updated")


@dataclass(frozen=True)
class View:
    """What the visitor asked for: ``q`` (searched in name, description, tags, aliases), filters, sort."""

    q: str = ""
    license: str = ""
    flavor: str = ""
    tag: str = ""  # "key" or "key=value"
    sort: str = "name"
    desc: bool = False
    page: int = 1
    size: int = 50

    @classmethod
    def from_query(cls, params: Mapping[str, str], size: int) -> View:
        sort = params.get("sort", "name")
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            q=params.get("q", "").strip(),
            license=params.get("license", ""),
            flavor=params.get("flavor", ""),
            tag=params.get("tag", ""),
            sort=sort if sort in SORTS else "name",
            desc=params.get("order") == "desc",
            page=page,
            size=size,
        )

    def query(self, **changes: Any) -> str:
        """The query string of this view with ``changes`` (empty values left out)."""
        view = replace(self, **changes)
        params = {
            "q": view.q,
            "license": view.license,
            "flavor": view.flavor,
            "tag": view.tag,
            "sort": view.sort if view.sort != "name" else "",
            "order": "desc" if view.desc else "",
            "page": str(view.page) if view.page > 1 else "",
        }
        return urlencode({k: v for k, v in params.items() if v})

    def sort_query(self, column: str) -> str:
        """The query that sorts by ``column`` (flipping the order when it is the current one)."""
        return self.query(sort=column, desc=(not self.desc) if column == self.sort else False, page=1)


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    number: int
    pages: int
    matched: int


def _matches(row: Any, view: View) -> bool:
    if view.license and row.license != view.license:
        return False
    if view.flavor and row.flavor != view.flavor:
        return False
    if view.tag:
        key, sep, value = view.tag.partition("=")
        if key not in row.tags or (sep and row.tags[key] != value):
            return False
    if view.q:
        words = [
            row.name,
            row.description,
            row.flavor,
            row.license,
            *row.aliases,
            *(f"{k}={v}" for k, v in row.tags.items()),
            *row.steps.values(),
        ]
        text = " ".join(words).lower()
        return all(part in text for part in view.q.lower().split())
    return True


def _key(column: str) -> Any:
    def key(row: Any) -> Any:
        if column == "latest":
            return row.latest or 0
        if column == "updated":
            return row.updated
        if column == "aliases":
            return ",".join(sorted(row.aliases))
        if column == "tags":
            return ",".join(f"{k}={v}" for k, v in sorted(row.tags.items()))
        return str(getattr(row, column)).lower()

    return key


def select(rows: Sequence[Any], view: View) -> Page:
    """The page of ``rows`` matching ``view``, sorted (ties by name)."""
    matched = sorted((r for r in rows if _matches(r, view)), key=lambda r: r.name)
    matched.sort(key=_key(view.sort), reverse=view.desc)
    pages = max(1, math.ceil(len(matched) / view.size))
    number = min(view.page, pages)
    start = (number - 1) * view.size
    return Page(rows=matched[start : start + view.size], number=number, pages=pages, matched=len(matched))


def facets(rows: Sequence[Any]) -> dict[str, list[str]]:
    """The values each filter offers: licenses, flavors, tags (``key=value``)."""
    return {
        "license": sorted({r.license for r in rows if r.license}),
        "flavor": sorted({r.flavor for r in rows if r.flavor}),
        "tag": sorted({f"{k}={v}" for r in rows for k, v in r.tags.items()})[:200],
    }
