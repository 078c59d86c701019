"""examples/digits/train.py against a fresh MODELRUNNER_HOME: three bundles, pushed, aliases, test set."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "digits" / "train.py"


def test_train_pushes_three_candidates_with_aliases(tmp_home: Path, tmp_path: Path) -> None:
    from modelrunner import Registry, load_model

    example = runpy.run_path(str(TRAIN), run_name="digits_example")
    test_set = tmp_path / "test.npz"
    assert example["main"](["--out", str(tmp_path / "bundles"), "--test-set", str(test_set)]) == 0

    with Registry.from_env() as registry:
        info = registry.model("digits")
        assert [mv.version for mv in info.versions] == [1, 2, 3]
        assert {mv.tags["candidate"] for mv in info.versions} == {"lr", "svc", "rf"}
        for mv in info.versions:
            assert mv.license == "MIT"
            assert mv.metrics["accuracy"] > 0.9
            assert mv.lineage.get("training_data_sha256")
        production = registry.resolve("digits@production")
        staging = registry.resolve("digits@staging")
        assert production.tags["candidate"] == "lr"
        assert staging.tags["candidate"] == "svc"

        data = np.load(test_set)
        assert data["input"].shape[1:] == (64,) and len(data["input"]) == len(data["target"])
        predictor = load_model(registry.fetch(production))
        labels = predictor.predict({"input": data["input"]})["label"]
        assert (labels == data["target"]).mean() == production.metrics["accuracy"]

        # re-running the push is fine: new versions, aliases move to them
        trained = [
            example["Trained"](key, None, 0.0, tmp_path / "bundles" / f"digits-{key}", alias)
            for key, (_, alias) in example["CANDIDATES"].items()
        ]
        pushed = example["push"](trained, registry)
        assert sorted(mv.version for mv in pushed.values()) == [4, 5, 6]
        assert registry.resolve("digits@production").version == pushed["lr"].version
