"""python flavor: a user class saved as its module source + pickled state; loads without the original."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import modelrunner as mr
import support
from modelrunner.contract import DType
from modelrunner.errors import BundleError, FlavorError
from support.bundle_toy_models import Broken, Rowwise, Scale, Shout


def test_round_trip_without_the_original_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    bundle = mr.save_model(Scale(2.0), tmp_path / "scale", sample=x[:2])
    assert bundle.manifest.flavor == "python"
    assert "class Scale" in (bundle.path / "code" / "model.py").read_text()
    assert [(f.name, f.shape) for f in bundle.contract.outputs] == [("scaled", (3,)), ("total", ())]
    monkeypatch.delitem(sys.modules, "support.bundle_toy_models")
    monkeypatch.setattr(support, "__path__", [])  # the original module cannot be imported again
    out = mr.load_model(tmp_path / "scale").predict({"input": x})
    np.testing.assert_allclose(out["scaled"], x * 2.0 + 1.0)
    np.testing.assert_allclose(out["total"], x.sum(axis=1))


def test_text_model_bare_array_output(tmp_path: Path) -> None:
    bundle = mr.save_model(Shout(), tmp_path / "shout", sample={"text": np.array(["hi", "yo"])})
    assert [(f.name, f.dtype) for f in bundle.contract.inputs] == [("text", DType.STRING)]
    assert [(f.name, f.dtype) for f in bundle.contract.outputs] == [("output", DType.STRING)]
    assert list(bundle.example_input()["text"]) == ["hi", "yo"]
    out = bundle.load().predict({"text": np.array(["a"], dtype=object)})
    assert out["output"].tolist() == ["A!"]


def test_model_error_at_save(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="model failed on the sample: RuntimeError: boom"):
        mr.save_model(Broken(), tmp_path / "b", sample=np.zeros((2, 2)))


def test_local_class_refused(tmp_path: Path) -> None:
    class Local:
        def predict(self, columns: dict) -> dict:
            return columns

    with pytest.raises(FlavorError, match="module-level class"):
        mr.save_model(Local(), tmp_path / "b", sample=np.zeros((2, 2)))


def test_batched_by_default_only_when_the_class_declares_batch_safe(tmp_path: Path) -> None:
    sample = {"text": np.array(["hi", "yo"])}
    plain = mr.save_model(Shout(), tmp_path / "shout", sample=sample).load()
    declared = mr.save_model(Rowwise(), tmp_path / "rowwise", sample=sample).load()
    assert plain.batch_safe is False, "custom python code is not merged unless it says it may be"
    assert declared.batch_safe is True
