"""Built-in transforms: small steps with contracts of their own, usable in any pipeline.

``get_transform(name, options)`` returns a ready :class:`~modelrunner.bundle.predictor.Predictor`;
``TRANSFORMS`` lists them (name -> :class:`TransformInfo`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelrunner.bundle.predictor import FunctionPredictor, Predictor
from modelrunner.errors import PipelineError
from modelrunner.pipelines.transforms import arrays, image, text
from modelrunner.pipelines.transforms.base import TransformInfo

TRANSFORMS: dict[str, TransformInfo] = {
    t.name: t for t in (*image.TRANSFORMS, *text.TRANSFORMS, *arrays.TRANSFORMS)
}

__all__ = ["TRANSFORMS", "TransformInfo", "get_transform", "transform_info"]


def transform_info(name: str) -> TransformInfo:
    """The transform called ``name``; PipelineError listing the known ones otherwise."""
    if name not in TRANSFORMS:
        raise PipelineError(f"unknown transform {name!r} (known: {', '.join(sorted(TRANSFORMS))})")
    return TRANSFORMS[name]


def get_transform(name: str, options: Mapping[str, Any] | None = None) -> Predictor:
    """A predictor running transform ``name`` with ``options`` (checked against the transform's)."""
    info = transform_info(name)
    opts = info.check_options(dict(options or {}))
    return FunctionPredictor(info.contract, lambda columns: info.fn(columns, opts))
