"""Lines of handwritten digits composed from scikit-learn's bundled digits images, as PNGs.

Each line holds 3-8 digits, upscaled from 8x8 with a random scale, random spacing, vertical jitter and
noise, drawn as dark ink on light paper. The 1,797 source images are split into train and test *by source
image* first, so a test line is made only of digit images never seen in training.

    python examples/ocr/generate.py out/ --count 20 --split test     # writes out/0000_40127.png ...
"""

from __future__ import annotations

import argparse
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

log = logging.getLogger("ocr.generate")

MIN_DIGITS, MAX_DIGITS = 3, 8


@dataclass(frozen=True)
class Line:
    """One generated line: the grayscale image (uint8, 255 = paper), its text and the digit boxes."""

    image: np.ndarray
    text: str
    boxes: np.ndarray  # (k, 4) int32: x0, y0, x1, y1 (exclusive) of each digit's 8x8 cell as drawn

    def png(self) -> bytes:
        return to_png(self.image)


@dataclass(frozen=True)
class Sources:
    """The digits images (8x8, 0..16) and labels of one split."""

    images: np.ndarray
    labels: np.ndarray


def split_sources(test_fraction: float = 0.3, seed: int = 0) -> tuple[Sources, Sources]:
    """Split sklearn's digits images into (train, test), stratified by label, disjoint by source image."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == label))
        n_test = int(round(len(idx) * test_fraction))
        test_idx.extend(idx[:n_test].tolist())
        train_idx.extend(idx[n_test:].tolist())
    train = np.array(sorted(train_idx))
    test = np.array(sorted(test_idx))
    images = digits.images.astype(np.float32)
    return (Sources(images[train], digits.target[train]), Sources(images[test], digits.target[test]))


def _glyph(cell: np.ndarray, size: int) -> np.ndarray:
    """Upscale an 8x8 0..16 cell to size x size ink in 0..1 (bilinear)."""
    img = Image.fromarray((cell / 16.0).astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32).clip(0, 1)


def _distorted(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A full-size glyph rotated by up to ±10° and sheared by up to ±0.3 (about its centre)."""
    size = glyph.shape[0]
    angle = np.radians(rng.uniform(-10, 10))
    shear = rng.uniform(-0.3, 0.3)
    cos, sin = np.cos(angle), np.sin(angle)
    a, b, d, e = cos, -sin + shear, sin, cos  # output -> input pixel mapping, as PIL's AFFINE wants
    c0 = size / 2
    coeffs = (a, b, c0 - a * c0 - b * c0, d, e, c0 - d * c0 - e * c0)
    img = Image.fromarray(glyph, mode="F")
    return np.asarray(
        img.transform((size, size), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR),
        dtype=np.float32,
    ).clip(0, 1)


def render_line(
    cells: list[np.ndarray], rng: np.random.Generator, distort: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Draw cells side by side (each rotated and sheared when ``distort``); return (uint8 image, boxes)."""
    base = int(rng.integers(20, 41))  # digit height in pixels for this line
    sizes = [max(12, int(round(base * rng.uniform(0.9, 1.1)))) for _ in cells]
    jitter = int(round(base * rng.uniform(0.0, 0.3)))
    margin = int(rng.integers(4, 16))
    gaps = [int(round(base * rng.uniform(0.15, 0.8))) for _ in cells[1:]]
    width = 2 * margin + sum(sizes) + sum(gaps)
    height = 2 * margin + max(sizes) + jitter
    ink = np.zeros((height, width), dtype=np.float32)
    boxes = np.zeros((len(cells), 4), dtype=np.int32)
    x = margin
    for i, (cell, size) in enumerate(zip(cells, sizes, strict=True)):
        y = margin + int(rng.integers(0, jitter + 1))
        glyph = _distorted(_glyph(cell, size), rng) if distort else _glyph(cell, size)
        ink[y : y + size, x : x + size] = np.maximum(ink[y : y + size, x : x + size], glyph)
        boxes[i] = (x, y, x + size, y + size)
        x += size + (gaps[i] if i < len(gaps) else 0)
    return _paper(ink, rng), boxes


def _paper(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink on paper with a random tone, contrast and gaussian noise, as uint8 (255 = white)."""
    paper = rng.uniform(0.85, 1.0)
    contrast = rng.uniform(0.6, 0.95)
    gray = paper - contrast * ink + rng.normal(0.0, rng.uniform(0.0, 0.08), ink.shape)
    return (gray.clip(0.0, 1.0) * 255).round().astype(np.uint8)


def make_lines(sources: Sources, count: int, seed: int = 0, distort: bool = False) -> list[Line]:
    """``count`` random lines of MIN_DIGITS..MAX_DIGITS digits drawn from ``sources`` (each glyph rotated by
    up to ±10° and sheared when ``distort``)."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        k = int(rng.integers(MIN_DIGITS, MAX_DIGITS + 1))
        pick = rng.integers(0, len(sources.labels), size=k)
        image, boxes = render_line([sources.images[i] for i in pick], rng, distort)
        text = "".join(str(int(sources.labels[i])) for i in pick)
        lines.append(Line(image=image, text=text, boxes=boxes))
    return lines


def to_png(image: np.ndarray) -> bytes:
    """Encode a uint8 grayscale image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write <index>_<text>.png files into")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--split", choices=["train", "test"], default="test")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--distort", action="store_true", help="rotate (±10°) and shear each glyph")
    args = parser.parse_args(argv)
    train, test = split_sources()
    lines = make_lines(
        train if args.split == "train" else test, args.count, seed=args.seed, distort=args.distort
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for i, line in enumerate(lines):
        (args.out / f"{i:04d}_{line.text}.png").write_bytes(line.png())
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("wrote %d lines to %s", len(lines), args.out)


if __name__ == "__main__":
    main()
