"""torch flavor: TorchScript save/load without the class, contract from a sample tensor or array, dict and
tuple outputs, thread count from the workers, torch.export programs, refusals, and a real server once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelrunner as mr
from modelrunner.bundle.flavors.torch import torch_threads
from modelrunner.contract import DType
from modelrunner.errors import FlavorError

torch = pytest.importorskip("torch")
torch_models = pytest.importorskip("torch_models")


@pytest.fixture(scope="module")
def classifier() -> tuple[Any, np.ndarray]:
    torch.manual_seed(0)
    model = torch_models.TinyClassifier()
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    return model, x


def test_save_load_predict_without_the_class(
    tmp_path: Path, classifier: tuple[Any, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, x = classifier
    bundle = mr.save_model(model, tmp_path / "tiny", sample=torch.from_numpy(x[:5]))
    assert bundle.manifest.flavor == "torch"
    assert bundle.manifest.flavor_options == {"file": "model.pt", "format": "torchscript"}
    c = bundle.contract
    assert [(f.name, f.dtype, f.shape) for f in c.inputs] == [("input", DType.FLOAT32, (4,))]
    assert [(f.name, f.dtype, f.shape) for f in c.outputs] == [
        ("label", DType.INT64, ()),
        ("proba", DType.FLOAT32, (3,)),
    ]
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    monkeypatch.delattr(torch_models.TinyClassifier, "forward")  # the bundle must not need the class
    out = mr.load_model(bundle.path).predict({"input": x.astype(np.float64)})  # float64 made float32
    np.testing.assert_array_equal(out["label"], want["label"].numpy())
    np.testing.assert_allclose(out["proba"], want["proba"].numpy(), atol=1e-6)


def test_two_inputs_tuple_outputs_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRUNNER_TORCH_THREADS", "1")
    sample = {"a": np.ones((3, 2), np.float32), "scale": np.array([1.0, 2.0, 3.0], np.float32)}
    bundle = mr.save_model(torch_models.TwoInputs(), tmp_path / "two", sample=sample)
    assert [f.name for f in bundle.contract.outputs] == ["output_0", "output_1"]
    out = bundle.load().predict(sample)
    np.testing.assert_array_equal(out["output_0"], [[1, 1], [2, 2], [3, 3]])
    assert out["output_1"].tolist() == [2.0, 2.0, 2.0] and torch.get_num_threads() == 1


def test_thread_count_rules() -> None:
    import os

    cores = os.cpu_count() or 1
    assert torch_threads({}) == cores
    assert torch_threads({"MODELRUNNER_WORKERS": str(cores * 4)}) == 1
    assert torch_threads({"MODELRUNNER_WORKERS": "1"}) == cores
    assert torch_threads({"MODELRUNNER_TORCH_THREADS": "3", "MODELRUNNER_WORKERS": "2"}) == 3
    with pytest.raises(FlavorError, match="MODELRUNNER_TORCH_THREADS must be a whole number"):
        torch_threads({"MODELRUNNER_TORCH_THREADS": "two"})


def test_an_exported_program(tmp_path: Path, classifier: tuple[Any, np.ndarray]) -> None:
    model, x = classifier
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (torch.from_numpy(x[:4]),), dynamic_shapes=({0: batch},))
    bundle = mr.save_model(program, tmp_path / "exported", sample=x[:4])
    assert bundle.manifest.flavor_options["format"] == "export"
    out = bundle.load().predict({"input": x[:7]})
    with torch.no_grad():
        np.testing.assert_array_equal(out["label"], model(torch.from_numpy(x[:7]))["label"].numpy())


def test_a_module_torchscript_cannot_compile(tmp_path: Path) -> None:
    with pytest.raises(FlavorError, match="TorchScript cannot compile Untypeable.*torch.jit.trace"):
        mr.save_model(torch_models.Untypeable(), tmp_path / "bad", sample=np.zeros((2, 3), np.float32))


def test_served_by_a_real_server(tmp_path: Path, classifier: tuple[Any, np.ndarray]) -> None:
    from server_helpers import ServerThread

    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.settings import Settings

    model, x = classifier
    settings = Settings(home=tmp_path, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0)
    mr.save_model(model, tmp_path / "tiny", sample=x[:3], name="tiny")
    registry = Registry(settings)
    registry.push(tmp_path / "tiny", alias="production")
    registry.set_endpoint("tiny", "tiny@production")
    try:
        with (
            ServerThread(create_app(Runtime(registry, settings), settings)) as server,
            httpx.Client(base_url=server.url, timeout=30) as http,
        ):
            deadline = time.monotonic() + 60
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "tiny did not load in 60 s"
                time.sleep(0.05)
            r = http.post("/v1/endpoints/tiny/predict", json={"instances": x[:5].tolist()})
            assert r.status_code == 200, r.text
            with torch.no_grad():
                want = model(torch.from_numpy(x[:5]))["label"].tolist()
            assert [p["label"] for p in r.json()["predictions"]] == want
            r = http.post("/v1/endpoints/tiny/predict", json={"instances": [[1.0, 2.0]]})
            assert r.status_code == 422 and "input" in r.text
    finally:
        registry.close()
