"""A DataFrame model of mixed dtypes end to end: saved from a DataFrame whose labels are no identifiers,
pushed, served by the real runtime, asked in every body form (with the original labels) and by the client."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

import modelrunner as mr
from modelrunner.settings import Settings
from support.server_helpers import ServerThread

pd = pytest.importorskip("pandas")
PREDICT = "/v1/endpoints/houses/predict"


def _houses(n: int = 80) -> tuple[Any, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"income ($k)": rng.normal(50, 10, n), "rooms": rng.integers(1, 6, n),
                          "city": rng.choice(["oslo", "rome", "lima"], n),
                          "has garden?": rng.random(n) > 0.5})
    y = ((frame["income ($k)"] > 50) & frame["has garden?"]).to_numpy().astype(int)
    pipe = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["income ($k)", "rooms", "has garden?"]),
                                            ("c", OneHotEncoder(), ["city"])]), LogisticRegression())
    return frame, pipe.fit(frame, y)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Any, Any]]:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    home = tmp_path_factory.mktemp("houses")
    settings = Settings(home=home, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0)
    frame, pipe = _houses()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mr.save_model(pipe, home / "houses", sample=frame.head(5), name="houses")
    registry = Registry(settings)
    registry.push(home / "houses", alias="production")
    registry.set_endpoint("houses", "houses@production")
    with ServerThread(create_app(Runtime(registry, settings), settings)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        deadline = time.monotonic() + 30
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "houses did not load in 30 s"
            time.sleep(0.02)
        yield server.url, frame, pipe, home
    registry.close()


def _labels(r: httpx.Response) -> list[int]:
    assert r.status_code == 200, r.text
    return [p["label"] for p in r.json()["predictions"]]


def test_every_body_form_with_the_original_labels(served: tuple[str, Any, Any, Any]) -> None:
    url, frame, pipe, _ = served
    part = frame.iloc[20:40]
    want = pipe.predict(part).tolist()
    records = part.to_dict(orient="records")
    with httpx.Client(base_url=url, timeout=30) as http:
        assert _labels(http.post(PREDICT, json={"instances": records})) == want
        assert _labels(http.post(PREDICT, json={"dataframe_records": records})) == want
        assert _labels(http.post(PREDICT, json={"dataframe_split": part.to_dict(orient="split")})) == want
        csv = part.to_csv(index=False).encode()
        assert csv.startswith(b"income ($k),rooms,city,has garden?")
        assert _labels(http.post(PREDICT, content=csv, headers={"content-type": "text/csv"})) == want
        columns = {k: list(v.values()) for k, v in part.to_dict().items()}
        r = http.post(PREDICT, json={"inputs": columns})
        assert r.status_code == 200 and r.json()["outputs"]["label"] == want, r.text
        contract = http.get("/v1/endpoints/houses/contract").json()["contract"]
        assert [(f["name"], f.get("alias")) for f in contract["inputs"]] == [
            ("income_k", "income ($k)"), ("rooms", None), ("city", None), ("has_garden", "has garden?")]


def test_the_client_sends_a_dataframe_and_reads_one(served: tuple[str, Any, Any, Any]) -> None:
    url, frame, pipe, _ = served
    part = frame.iloc[5:15]
    with mr.Client(url) as client:
        out = client.predict("houses", part)
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(part.index)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(part))


def test_loaded_from_the_registry_and_predicted_on_a_frame(served: tuple[str, Any, Any, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, frame, pipe, home = served
    for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELRUNNER_HOME", str(home))
    model = mr.load_model("houses@production")
    back = pd.read_csv(io.StringIO(frame.head(6).to_csv(index=False)))  # as read back from a file
    out = model.predict(back)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(frame.head(6)))
