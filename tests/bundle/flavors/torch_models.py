"""Small PyTorch modules for the torch flavor tests (a file of their own: TorchScript reads their source)."""

from __future__ import annotations

import torch
from torch import nn


class TinyClassifier(nn.Module):
    """Linear layer + softmax: returns ``{"label", "proba"}`` as the other flavors' classifiers do."""

    def __init__(self, features: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        proba = torch.softmax(self.linear(x), dim=1)
        return {"label": proba.argmax(dim=1), "proba": proba}


class TwoInputs(nn.Module):
    """``(a * scale, a.sum(1))``: two inputs, a tuple of outputs."""

    def forward(self, a: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a * scale.unsqueeze(1), a.sum(dim=1)


class Untypeable(nn.Module):
    """TorchScript cannot compile a forward that builds a Python set."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = {float(v) for v in x.flatten().tolist()}  # noqa: C403
        return x * len(seen)
