"""The drift of the demo: digits rotated, thickened and noisier (numpy only), from sklearn's bundled digits.

A new scanner, say: every image is rotated by ``angle`` degrees (bilinear), its strokes thickened (each pixel
at least ``thicken`` times its brightest neighbour), plus Gaussian noise, clipped to the 0..16 range.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0


def rotate(images: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (n, 8, 8) images about their centre by ``angle`` degrees, bilinear, zeros outside."""
    n, h, w = images.shape
    theta = np.deg2rad(angle)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # inverse mapping: where each output pixel comes from
    sy = np.cos(theta) * (yy - cy) - np.sin(theta) * (xx - cx) + cy
    sx = np.sin(theta) * (yy - cy) + np.cos(theta) * (xx - cx) + cx
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    padded = np.pad(images, ((0, 0), (1, 2), (1, 2)))  # out-of-range reads hit zeros

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return padded[:, np.clip(yi + 1, 0, h + 2), np.clip(xi + 1, 0, w + 2)]

    return (
        (1 - fy) * (1 - fx) * at(y0, x0)
        + (1 - fy) * fx * at(y0, x0 + 1)
        + fy * (1 - fx) * at(y0 + 1, x0)
        + fy * fx * at(y0 + 1, x0 + 1)
    )


def thicken(images: np.ndarray, amount: float) -> np.ndarray:
    """Each pixel at least ``amount`` times the brightest pixel of its 2x2 neighbourhood (down-right)."""
    p = np.pad(images, ((0, 0), (0, 1), (0, 1)))
    neighbours = np.maximum.reduce([p[:, :-1, :-1], p[:, 1:, :-1], p[:, :-1, 1:], p[:, 1:, 1:]])
    return np.maximum(images, amount * neighbours)


def shift(
    x: np.ndarray, rng: np.random.Generator, *, angle: float = 15.0, amount: float = 0.6, noise: float = 0.3
) -> np.ndarray:
    """Rows of 64 pixels -> the drifted rows (fresh noise per call)."""
    images = thicken(rotate(x.reshape(-1, 8, 8), angle), amount)
    images = images + rng.normal(0.0, noise, images.shape)
    return np.clip(images, 0.0, 16.0).reshape(-1, 64)


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits split 50/50 (stratified): ``x_train, x_test, y_train, y_test``."""
    d = load_digits()
    x, y = d.data.astype(np.float64), d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=SEED, stratify=y)
    return x_tr, x_te, y_tr, y_te
