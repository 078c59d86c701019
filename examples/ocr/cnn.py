"""A small CNN digit recogniser for the OCR pipeline's 8x8 crops (0..16), trained with augmentation.

The module takes the same input as the sklearn candidates (``(n, 64)`` floats, 0..16) and returns
``{"label", "proba"}``, so it drops into ``digit-recognizer`` as a new version (torch flavor, TorchScript).
It can be an ensemble (``members`` nets trained with different seeds, class probabilities averaged); the
default is one net: conv 32 -> conv 64 -> pool -> dense 128 with dropout, about 150k weights.

Training runs 30 epochs (batch 128, AdamW with a one-cycle learning-rate schedule). Every batch mixes plain
and augmented crops: a ``keep`` fraction (30 %) is left as it is, so plain crops stay as well read, and the
rest is augmented on the fly on the 8x8 grid itself: rotation (±10°), shear, scale, stroke thickness (a 2x2
dilation or erosion) and noise. The test lines that check it come from the line generator (generate.py
``distort=True``), which rotates and shears glyphs at full size before they are segmented and shrunk: a
different generator from the one the CNN was trained with.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

SIDE = 32  # the segmenter normalises a crop at 32x32 before its 4x4 block sums
PAD = 48  # the canvas a glyph is transformed on, so that a rotated glyph is not clipped


class DigitCNN(nn.Module):
    """conv ``c1`` -> conv ``c2`` -> pool -> dense ``hidden`` (dropout) -> 10 classes."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, 10)
        self.drop = nn.Dropout(dropout)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32).reshape(-1, 1, 8, 8) / 16.0
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        proba = torch.softmax(self.logits(x), dim=1)
        # float64 like the sklearn candidates: moving the alias back and forth keeps the pipeline's contract
        return {"label": proba.argmax(dim=1), "proba": proba.to(torch.float64)}


class DigitEnsemble(nn.Module):
    """The mean of its members' class probabilities (what is saved and served)."""

    def __init__(self, members: list[DigitCNN]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        total = torch.zeros(x.shape[0], 10)
        for member in self.members:
            total = total + torch.softmax(member.logits(x), dim=1)
        proba = total / len(self.members)
        return {"label": proba.argmax(dim=1), "proba": proba.to(torch.float64)}


def _u(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * 2 - 1


def _bbox(
    img: torch.Tensor, thr: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """per-sample ink bbox (normalised coords -1..1, pixel centres) of (n,1,S,S)."""
    n, _, s, _ = img.shape
    mask = img[:, 0] > thr * img.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1)
    idx = torch.arange(s, dtype=torch.float32)
    rows, cols = mask.any(2), mask.any(1)
    big = float(s)
    r0 = torch.where(rows, idx, big).amin(1)
    r1 = torch.where(rows, idx, -1.0).amax(1) + 1
    c0 = torch.where(cols, idx, big).amin(1)
    c1 = torch.where(cols, idx, -1.0).amax(1) + 1
    return c0 / s * 2 - 1, r0 / s * 2 - 1, c1 / s * 2 - 1, r1 / s * 2 - 1


def augment(
    x: torch.Tensor,
    gen: torch.Generator,
    rot: float = 10.0,
    shear: float = 0.3,
    thick: tuple[float, float] = (0.2, 0.15),
    noise: float = 0.1,
) -> torch.Tensor:
    """(n,1,8,8) in 0..1 -> upsampled to 32, rotated/sheared/scaled, stroke thickness, re-cropped to the ink
    box and normalised like the segmenter (height 32, aspect kept, centred, 4x4 block means)."""
    n = x.shape[0]
    big = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    a = _u(n, gen) * math.radians(rot)
    sh = _u(n, gen) * shear
    sx = 1 + _u(n, gen) * 0.1
    cos, sin = torch.cos(a), torch.sin(a)
    k = PAD / SIDE
    z = torch.zeros(n)
    theta = torch.stack(
        [torch.stack([cos * sx * k, (-sin + sh) * k, z], 1), torch.stack([sin * sx * k, cos * k, z], 1)], 1
    )
    grid = F.affine_grid(theta, [n, 1, PAD, PAD], align_corners=False)
    img = F.grid_sample(big, grid, align_corners=False, padding_mode="zeros")
    t = torch.rand(n, generator=gen)
    dil = F.max_pool2d(img, 3, stride=1, padding=1)
    ero = -F.max_pool2d(-img, 3, stride=1, padding=1)
    img = torch.where((t < thick[0]).view(-1, 1, 1, 1), dil, img)
    img = torch.where((t > 1 - thick[1]).view(-1, 1, 1, 1), ero, img)
    x0, y0, x1, y1 = _bbox(img)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hh = ((y1 - y0) / 2).clamp_min(2 / PAD)
    hw = torch.maximum(hh, (x1 - x0) / 2)  # wider than tall: squeezed into the square like the segmenter
    theta2 = torch.stack([torch.stack([hw, z, cx], 1), torch.stack([z, hh, cy], 1)], 1)
    grid2 = F.affine_grid(theta2, [n, 1, SIDE, SIDE], align_corners=False)
    cell = F.grid_sample(img, grid2, align_corners=False, padding_mode="zeros")
    peak = cell.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1, 1)
    cell = (cell / (0.9 * peak)).clamp(0, 1)
    out = F.avg_pool2d(cell, 4)
    nz = torch.randn(out.shape, generator=gen) * torch.rand(n, 1, 1, 1, generator=gen) * noise
    return (out + nz).clamp(0, 1)


class CnnRecognizer:
    """``fit(x, y)`` / ``predict(x)`` like the sklearn candidates; ``module`` (the ensemble) is what gets
    saved. Deterministic for a given ``seed`` (member ``i`` uses ``seed + i``) and thread count."""

    def __init__(
        self,
        epochs: int = 30,
        batch: int = 128,
        threads: int = 1,
        seed: int = 0,
        members: int = 1,
        keep: float = 0.3,
    ) -> None:
        self.epochs, self.batch, self.threads, self.seed, self.keep = epochs, batch, threads, seed, keep
        self.n_members = members
        self.module = DigitEnsemble([])
        self.seconds = 0.0

    def _train_one(self, images: torch.Tensor, labels: torch.Tensor, seed: int) -> DigitCNN:
        torch.manual_seed(seed)
        net = DigitCNN()
        torch.manual_seed(seed)  # dropout's masks
        gen = torch.Generator().manual_seed(seed)  # batches and augmentation
        opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-4)
        steps = self.epochs * math.ceil(len(labels) / self.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(labels), generator=gen)
            for start in range(0, len(order), self.batch):
                idx = order[start : start + self.batch]
                plain = images[idx]
                augmented = augment(plain, gen)
                keep = (torch.rand(len(idx), generator=gen) < self.keep).view(-1, 1, 1, 1)
                batch = torch.where(keep, plain, augmented) * 16.0
                loss = F.cross_entropy(net.logits(batch), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return net.eval()

    def fit(self, x: np.ndarray, y: np.ndarray) -> CnnRecognizer:
        t0 = time.perf_counter()
        torch.set_num_threads(self.threads)
        images = torch.from_numpy(np.asarray(x, dtype=np.float32)).reshape(-1, 1, 8, 8) / 16.0
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        members = [self._train_one(images, labels, self.seed + i) for i in range(self.n_members)]
        self.module = DigitEnsemble(members).eval()
        self.seconds = time.perf_counter() - t0
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(np.asarray(x, dtype=np.float32)))["label"].numpy()
