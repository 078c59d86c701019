"""Bundles: save a model with its contract and provenance, open it (folder or archive), load a Predictor."""

from modelrunner.bundle.bundle import Bundle, load_model, open_bundle, save_model
from modelrunner.bundle.manifest import Lineage, Manifest
from modelrunner.bundle.predictor import Predictor

__all__ = ["Bundle", "Lineage", "Manifest", "Predictor", "load_model", "open_bundle", "save_model"]
