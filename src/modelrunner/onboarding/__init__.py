"""Onboarding: models from elsewhere into bundles (MLflow model folders, plain ONNX files) and converting a
registered sklearn model to ONNX (``optimize``). Uses bundle/, contract/, registry/, evaluation/ only."""
