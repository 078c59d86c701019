"""Image transforms. ``image.decode_grayscale``: PNG/JPEG bytes -> a 2-d float32 image in 0..1.

Decoding is guarded: empty data, data that is not an image of an accepted format, a corrupt file, an image
over ``max_pixels`` and images over ``max_total_pixels`` together (both checked from the headers, before any
pixel is decoded) each raise a one-line error naming the field.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import ResourceExhausted, ValidationError, require
from modelrunner.pipelines.transforms.base import Columns, TransformInfo, ragged

DEFAULT_MAX_PIXELS = 4_000_000
DEFAULT_MAX_TOTAL_PIXELS = 16_000_000
"""Pixels decoded per call (a request, or a batch of them, retried alone when over): each costs ~9 bytes
while decoding (float32 + the 8-bit gray + the decoder's buffer), so 50 images of 4 megapixels took a
worker from 296 MB to 1.85 GB; 16 megapixels (four images at the per-image limit) is ~150 MB."""
DEFAULT_FORMATS = ["PNG", "JPEG"]


def _open(data: Any, max_pixels: int, formats: list[str]) -> Any:
    image_mod = require("PIL.Image", "images")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(f"field 'data': expected image bytes, got {type(data).__name__}", field="data")
    if len(data) == 0:
        raise ValidationError("field 'data': empty image (0 bytes)", field="data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", image_mod.DecompressionBombWarning)
        try:
            img = image_mod.open(io.BytesIO(bytes(data)), formats=formats)
        except image_mod.DecompressionBombError as exc:
            raise ResourceExhausted(f"field 'data': image too large ({exc})", field="data") from exc
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"field 'data': not a {'/'.join(formats)} image ({len(data)} bytes that no accepted "
                f"decoder recognises)",
                field="data",
            ) from exc
    width, height = img.size
    if width * height > max_pixels:
        raise ResourceExhausted(
            f"field 'data': image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.1f} megapixels",
            field="data",
        )
    if width == 0 or height == 0:
        raise ValidationError(f"field 'data': empty image ({width}x{height} pixels)", field="data")
    return img


def _gray(img: Any) -> np.ndarray:
    try:
        img.load()
        gray = img.convert("L")
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValidationError(f"field 'data': corrupt {img.format} image ({exc})", field="data") from exc
    return np.asarray(gray, dtype=np.float32) / 255.0


def decode_grayscale(columns: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> Columns:
    max_pixels = int(options["max_pixels"])
    budget = int(options.get("max_total_pixels", DEFAULT_MAX_TOTAL_PIXELS))  # older specs lack it
    formats = [str(f).upper() for f in options["formats"]]
    images = [_open(d, max_pixels, formats) for d in columns["data"]]  # headers only: no pixel decoded yet
    total = sum(img.size[0] * img.size[1] for img in images)
    if total > budget:
        raise ResourceExhausted(
            f"field 'data': the {len(images)} images hold {total / 1e6:.1f} megapixels together; at most "
            f"{budget / 1e6:.1f} are decoded per request (option max_total_pixels)",
            field="data",
        )
    return {"image": ragged([_gray(img) for img in images])}


DECODE_GRAYSCALE = TransformInfo(
    name="image.decode_grayscale",
    description="Decode PNG/JPEG bytes into a grayscale image, float32 in 0..1 (1 = white), "
    "refusing empty, non-image, corrupt and oversized data (max_pixels per image, "
    "max_total_pixels per request, both read from the headers before decoding).",
    contract=Contract.build(
        [Field(name="data", dtype=DType.BYTES, description="an encoded image (PNG or JPEG)")],
        [
            Field(
                name="image",
                dtype=DType.FLOAT32,
                shape=(-1, -1),
                description="grayscale pixels, rows x columns, 0..1",
            )
        ],
    ),
    fn=decode_grayscale,
    options={
        "max_pixels": DEFAULT_MAX_PIXELS,
        "max_total_pixels": DEFAULT_MAX_TOTAL_PIXELS,
        "formats": DEFAULT_FORMATS,
    },
)

TRANSFORMS = (DECODE_GRAYSCALE,)
