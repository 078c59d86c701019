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


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A batch of (n, 1, 8, 8) images in 0..1: random rotation (±10°), shear (±0.3), scale (±8 %), stroke
    thickness (a 2x2 dilation or erosion) and noise, on the 8x8 grid itself."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    shear = (torch.rand(n, generator=gen) * 2 - 1) * 0.3
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.08
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin + shear, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    thick = torch.rand(n, generator=gen)
    dilated = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride=1)
    eroded = -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=-1.0), 2, stride=1)
    x = torch.where((thick < 0.2).view(-1, 1, 1, 1), dilated, x)
    x = torch.where((thick > 0.85).view(-1, 1, 1, 1), eroded, x)
    noise = torch.randn(x.shape, generator=gen) * torch.rand(n, 1, 1, 1, generator=gen) * 0.1
    return (x + noise).clamp(0, 1)


class CnnRecognizer:
    """``fit(x, y)`` / ``predict(x)`` like the sklearn candidates; ``module`` (the ensemble) is what gets
    saved. Deterministic for a given ``seed`` (member ``i`` uses ``seed + i``) and thread count."""

    def __init__(
        self,
        epochs: int = 30,
        batch: int = 128,
        threads: int = 2,
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
        gen = torch.Generator().manual_seed(seed)
        net = DigitCNN()
        opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-4)
        steps = self.epochs * math.ceil(len(labels) / self.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(labels), generator=gen)
            for start in range(0, len(order), self.batch):
                idx = order[start : start + self.batch]
                plain = images[idx]
                keep = (torch.rand(len(idx), generator=gen) < self.keep).view(-1, 1, 1, 1)
                batch = torch.where(keep, plain, augment(plain, gen)) * 16.0
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
