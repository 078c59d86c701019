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
    created_at: datetime
    lineage: Lineage = Field(default_factory=Lineage)

    def dump(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        data = self.model_dump(mode="json")
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        if not path.is_file():
            raise BundleError(f"{directory} is not a bundle: no {MANIFEST_FILE}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BundleError(f"{path}: manifest is not valid YAML ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise BundleError(f"{path}: manifest must be a mapping")
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise BundleError(f"{path}: invalid manifest: {' '.join(first[:3])}") from exc
