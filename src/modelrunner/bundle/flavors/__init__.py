"""Flavors: code that saves and loads one kind of model. Looked up by name or detected from the object."""

from __future__ import annotations

import importlib
from typing import Any

from modelrunner.bundle.flavors.base import Flavor
from modelrunner.errors import FlavorError

# Detection order matters: xgboost/lightgbm sklearn wrappers are sklearn estimators too; python is last.
FLAVOR_NAMES: tuple[str, ...] = ("xgboost", "lightgbm", "onnx", "torch", "sklearn", "python")

__all__ = ["FLAVOR_NAMES", "Flavor", "detect_flavor", "get_flavor"]


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; FlavorError listing the known ones otherwise."""
    if name not in FLAVOR_NAMES:
        raise FlavorError(f"unknown flavor {name!r}; known flavors: {', '.join(sorted(FLAVOR_NAMES))}")
    module = importlib.import_module(f"modelrunner.bundle.flavors.{name}")
    flavor: Flavor = module.FLAVOR
    return flavor


def detect_flavor(obj: Any) -> Flavor:
    """The first flavor whose ``matches(obj)`` is true; FlavorError when none does."""
    for name in FLAVOR_NAMES:
        flavor = get_flavor(name)
        if flavor.matches(obj):
            return flavor
    raise FlavorError(
        f"no flavor can save a {type(obj).__module__}.{type(obj).__qualname__}; "
        f"known flavors: {', '.join(sorted(FLAVOR_NAMES))} (a python model needs a predict(columns) method)"
    )
