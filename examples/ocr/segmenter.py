"""A classical digit segmenter: ink map, column projection, and crops normalised like sklearn's digits.

``segment(gray)`` finds the digits of one line image and returns their boxes and 8x8 crops on the 0..16
scale of scikit-learn's digits (height-normalised, aspect kept, centred), so a recogniser trained on those
images reads them. :class:`DigitSegmenter` wraps it as a model (``predict(columns) -> columns``) that is saved
as a python-flavor bundle.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from modelrunner.errors import ValidationError

CELL = 8  # crops are CELL x CELL, like sklearn's digits
INK_THRESHOLD = 0.3  # smoothed ink above this is a stroke
MIN_PIXELS = 12  # column runs with fewer stroke pixels are specks, not digits
MERGE_GAP = 0.12  # runs closer than this x line height ...
MERGE_WIDTH = 0.9  # ... and together narrower than this x height are one digit


class NoDigits(ValidationError):
    """The image holds no ink that looks like a digit (a 400 naming the ``image`` field when served)."""


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink in 0..1 from a grayscale image (0..1 or 0..255), whatever the polarity of paper and ink."""
    img = np.asarray(gray, dtype=np.float32)
    if img.size and img.max() > 1.0:
        img = img / 255.0
    paper = float(np.median(img)) if img.size else 1.0
    ink = (paper - img) if paper >= 0.5 else (img - paper)
    return ink.clip(0.0, 1.0)


def _smooth(ink: np.ndarray) -> np.ndarray:
    padded = np.pad(ink, 1, mode="edge")
    h, w = ink.shape
    total = sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
    return np.asarray(total, dtype=np.float32) / 9.0


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _rows(mask: np.ndarray, x0: int, x1: int) -> tuple[int, int]:
    rows = np.flatnonzero(mask[:, x0:x1].any(axis=1))
    return int(rows[0]), int(rows[-1]) + 1


def _merge(runs: list[tuple[int, int]], height: float) -> list[tuple[int, int]]:
    """Join runs split by a thin empty column inside one digit."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged:
            p_start, p_end = merged[-1]
            if start - p_end < MERGE_GAP * height and end - p_start <= MERGE_WIDTH * height:
                merged[-1] = (p_start, end)
                continue
        merged.append((start, end))
    return merged


def find_boxes(ink: np.ndarray) -> np.ndarray:
    """Boxes (k, 4) int32 ``x0, y0, x1, y1`` (exclusive) of the digits, left to right."""
    mask = np.asarray(_smooth(ink) > INK_THRESHOLD)
    runs = [(s, e) for s, e in _runs(np.asarray(mask.any(axis=0))) if mask[:, s:e].sum() >= MIN_PIXELS]
    if not runs:
        return np.zeros((0, 4), dtype=np.int32)
    heights = [np.subtract(*_rows(mask, s, e)[::-1]) for s, e in runs]
    runs = _merge(runs, float(np.median(heights)))
    boxes = [(s, *_rows(mask, s, e), e) for s, e in runs]
    return np.array([(x0, y0, x1, y1) for x0, y0, y1, x1 in boxes], dtype=np.int32)


def to_cell(crop: np.ndarray) -> np.ndarray:
    """A digit's ink crop -> 64 values on the 0..16 scale, height-normalised and centred like sklearn's.

    Like the UCI preprocessing behind sklearn's digits: the digit is scaled to a 32-pixel height (aspect
    kept), centred in 32x32, and each 4x4 block is summed (here with ink in 0..1 instead of bits).
    """
    h, w = crop.shape
    side = CELL * 4
    new_w = max(1, min(side, int(round(w * side / h))))
    img = Image.fromarray(crop.astype(np.float32), mode="F")
    big = np.asarray(img.resize((new_w, side), Image.Resampling.BILINEAR), dtype=np.float32)
    canvas = np.zeros((side, side), dtype=np.float32)
    left = (side - new_w) // 2
    canvas[:, left : left + new_w] = big
    inked = canvas[canvas > 0]
    peak = float(np.percentile(inked, 95)) if inked.size else 1.0
    blocks = (canvas / max(peak, 1e-6)).clip(0.0, 1.0).reshape(CELL, 4, CELL, 4).sum(axis=(1, 3))
    return blocks.astype(np.float32).reshape(-1)


def segment(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (k, 4) int32, crops (k, 64) float32) of one line image; raises NoDigits if it has none."""
    ink = ink_map(gray)
    if ink.ndim != 2 or ink.size == 0:
        raise NoDigits(f"expected a 2-d grayscale image, got shape {tuple(ink.shape)}", field="image")
    boxes = find_boxes(ink)
    if not len(boxes):
        raise NoDigits("no digits found in the image", field="image")
    crops = np.stack([to_cell(ink[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes])
    return boxes, crops


class DigitSegmenter:
    """The segmenter as a model: ``{"image": (n, H, W)} -> {"boxes": (n, k, 4), "crops": (n, k, 64)}``.

    A batch of several images returns object arrays (one (k, ...) array per image) when k differs.
    """

    thread_safe = True  # stateless: the python flavor may call it from several threads at once

    def predict(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = columns["image"]
        results = [segment(np.asarray(img)) for img in images]
        return {
            "boxes": _stack([b for b, _ in results]),
            "crops": _stack([c for _, c in results]),
        }


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    if len({p.shape for p in parts}) == 1:
        return np.stack(parts)
    out = np.empty(len(parts), dtype=object)
    for i, p in enumerate(parts):
        out[i] = p
    return out
