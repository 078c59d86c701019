"""The demo's figure: online accuracy (rolling, from the labels) and the drift score over time, with the drift
alert, the training run, the canary and the swap marked (matplotlib: the ``monitoring`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

EVENTS = {
    "drift starts": ("traffic drifts", "tab:gray"),
    "alert": ("drift alert", "tab:red"),
    "training": ("training", "tab:purple"),
    "canary": ("canary 20 %", "tab:orange"),
    "swap": ("swap", "tab:green"),
}


def rolling_accuracy(answers: list[Any], t0: float, width: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of the last ``width`` answered requests, at each answer's time (seconds from ``t0``)."""
    ok = [a for a in answers if a.ok]
    if len(ok) < width:
        return np.zeros(0), np.zeros(0)
    t = np.array([a.t - t0 for a in ok])
    c = np.array([a.correct for a in ok], dtype=float)
    kernel = np.ones(width) / width
    return t[width - 1 :], np.convolve(c, kernel, mode="valid")


def draw(path: Path, answers: list[Any], marks: Any) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = marks.t0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[3, 2])
    t, acc = rolling_accuracy(answers, t0)
    top.plot(t, acc, color="tab:blue", label="online accuracy (last 100 requests)")
    top.set_ylabel("online accuracy")
    top.set_ylim(0.4, 1.02)
    if marks.drift:
        d = np.array(marks.drift)
        bottom.plot(d[:, 0] - t0, d[:, 1], color="tab:red", label="share of drifted features")
        bottom.plot(d[:, 0] - t0, d[:, 2], color="tab:red", linestyle=":", label="alert threshold")
    bottom.set_ylabel("drift score")
    bottom.set_xlabel("seconds")
    for name, at in marks.events.items():
        label, color = EVENTS.get(name, (name, "black"))
        for ax in (top, bottom):
            ax.axvline(at - t0, color=color, linestyle="--", linewidth=1, label=label if ax is top else None)
    top.legend(loc="lower left", fontsize=8, ncol=2)
    bottom.legend(loc="upper left", fontsize=8)
    top.set_title("digits: drift, retraining, canary, swap")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
