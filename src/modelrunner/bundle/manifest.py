"""The bundle manifest (``modelrunner.yaml``): what a bundle is, how to load it, where it came from."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from modelrunner.contract import Contract
from modelrunner.errors import BundleError

MANIFEST_FILE = "modelrunner.yaml"
EXAMPLE_FILE = "example.npz"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
"""Largest ``modelrunner.yaml`` read: a contract of thousands of fields fits; a 50 MB description does not."""
MAX_DESCRIPTION = 10_000
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 64, 128, 1024
MAX_METRICS, MAX_METRIC_NAME = 256, 128


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that refuses anchors and aliases: a few hundred bytes of nested aliases ("billion
    laughs") expand to billions of nodes once validated or dumped; a manifest never needs them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "YAML anchors and aliases are not allowed in a manifest", event.start_mark
            )
        return super().compose_node(parent, index)


def check_fields(
    *, description: str = "", tags: dict[str, str] | None = None, metrics: dict[str, Any] | None = None
) -> None:
    """Refuse manifest fields past their caps (every version row and model listing carries them),
    naming the field and the limit."""
    _cap("description", len(description), MAX_DESCRIPTION, "characters")
    tags = tags or {}
    _cap("tags", len(tags), MAX_TAGS, "entries")
    for key, value in tags.items():
        _cap(f"tags key {key[:40]!r}", len(key), MAX_TAG_KEY, "characters")
        _cap(f"tags[{key!r}]", len(value), MAX_TAG_VALUE, "characters")
    metrics = metrics or {}
    _cap("metrics", len(metrics), MAX_METRICS, "entries")
    for key in metrics:
        _cap(f"metrics name {key[:40]!r}", len(key), MAX_METRIC_NAME, "characters")


def _cap(field: str, size: int, limit: int, unit: str) -> None:
    if size > limit:
        raise BundleError(f"field {field} is too long: {size} {unit} (limit {limit})")


class Lineage(BaseModel):
    """Where a model came from."""

    git_commit: str | None = None
    git_dirty: bool | None = None
    training_data_sha256: str | None = None
    parent: str | None = None  # a model ref, e.g. "digits@3"
    extra: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    """Contents of ``modelrunner.yaml``."""

    model_config = ConfigDict(extra="ignore")

    format_version: int = FORMAT_VERSION
    name: str
    flavor: str
    flavor_options: dict[str, Any] = Field(default_factory=dict)
    contract: Contract
    license: str | None = None  # an SPDX identifier
    description: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    python: str = ""
    requirements: list[str] = Field(default_factory=list)  # "package==version"
    example_input: str | None = EXAMPLE_FILE  # file name inside the bundle, or None
    # reference profile of the training data (monitoring), a file name in the bundle; omitted when None
    profile: str | None = Field(default=None, exclude_if=lambda v: v is None)
    created_at: datetime
    lineage: Lineage = Field(default_factory=Lineage)

    def check_fields(self) -> None:
        """Refuse a description, tags or metrics past their caps (see :func:`check_fields`)."""
        check_fields(description=self.description, tags=self.tags, metrics=self.metrics)

    def dump(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        path.write_bytes(self.dump_bytes())
        return path

    def dump_bytes(self) -> bytes:
        """The manifest as ``modelrunner.yaml`` content."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False).encode("utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        if not path.is_file():
            raise BundleError(f"{directory} is not a bundle: no {MANIFEST_FILE}")
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{path}: manifest is too large: {size} bytes (limit {MAX_MANIFEST_BYTES})")
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)  # noqa: S506 - safe
        except yaml.constructor.ConstructorError as exc:
            raise BundleError(f"{path}: invalid manifest: {exc.problem}") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BundleError(f"{path}: manifest is not valid YAML ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise BundleError(f"{path}: manifest must be a mapping")
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise BundleError(f"{path}: invalid manifest: {' '.join(first[:3])}") from exc
