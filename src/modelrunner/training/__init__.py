"""Continuous training: ``modelrunner train`` (trainer loading, training data, triggers, the one-run lock, the
release path). See docs/training.md."""

from modelrunner.training.data import TrainingData
from modelrunner.training.loader import Loaded, load_callable
from modelrunner.training.run import Outcome, TrainOptions, prepare, train_once, watch

__all__ = [
    "Loaded",
    "Outcome",
    "TrainOptions",
    "TrainingData",
    "load_callable",
    "prepare",
    "train_once",
    "watch",
]
