"""A DataFrame model of mixed dtypes end to end: saved from a DataFrame whose labels are no identifiers,
with numbers, a bool, a Categorical and a datetime column, pushed, served by the real runtime, asked in every
body form (with the original labels; native JSON, MLflow bodies, CSV, V2 JSON, protobuf) and by the client."""

from __future__ import annotations

import io
import json
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
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from support.tabular_features import days_since_2024

    rng = np.random.default_rng(1)
    listed = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    frame = pd.DataFrame(
        {
            "income ($k)": rng.normal(50, 10, n),
            "rooms": rng.integers(1, 6, n),
            "city": pd.Categorical(
                rng.choice(["oslo", "rome", "lima"], n), categories=["lima", "oslo", "rome"]
            ),
            "has garden?": rng.random(n) > 0.5,
            "listed at": listed,
        }
    )
    y = (frame["income ($k)"] > 50) & frame["has garden?"] | (frame["listed at"].dt.month > 10)
    days = make_pipeline(FunctionTransformer(days_since_2024), StandardScaler())
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("n", StandardScaler(), ["income ($k)", "rooms", "has garden?"]),
                ("c", OneHotEncoder(), ["city"]),
                ("t", days, ["listed at"]),
            ]
        ),
        LogisticRegression(),
    )
    return frame, pipe.fit(frame, y.to_numpy().astype(int))


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
    with (
        ServerThread(create_app(Runtime(registry, settings), settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
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
    assert 0 < sum(want) < len(want)
    records = json.loads(part.to_json(orient="records", date_format="iso"))  # times as ISO-8601 strings
    split = json.loads(part.to_json(orient="split", date_format="iso"))
    with httpx.Client(base_url=url, timeout=30) as http:
        assert _labels(http.post(PREDICT, json={"instances": records})) == want
        assert _labels(http.post(PREDICT, json={"dataframe_records": records})) == want
        assert _labels(http.post(PREDICT, json={"dataframe_split": split})) == want
        csv = part.to_csv(index=False).encode()
        assert csv.startswith(b"income ($k),rooms,city,has garden?,listed at")
        assert _labels(http.post(PREDICT, content=csv, headers={"content-type": "text/csv"})) == want
        columns = {k: [row[k] for row in records] for k in part.columns}
        r = http.post(PREDICT, json={"inputs": columns})
        assert r.status_code == 200 and r.json()["outputs"]["label"] == want, r.text
        contract = http.get("/v1/endpoints/houses/contract").json()["contract"]
        assert [(f["name"], f["dtype"], f.get("alias"), f.get("categories")) for f in contract["inputs"]] == [
            ("income_k", "float64", "income ($k)", None),
            ("rooms", "int64", None, None),
            ("city", "category", None, ["lima", "oslo", "rome"]),
            ("has_garden", "bool", "has garden?", None),
            ("listed_at", "timestamp", "listed at", None),
        ]


def _v2_inputs(part: Any, micros: bool) -> list[dict[str, Any]]:
    stamps = part["listed at"].to_numpy().astype("datetime64[us]")
    listed = (
        {"datatype": "INT64", "data": stamps.astype(np.int64).tolist()}
        if micros
        else {"datatype": "BYTES", "data": [f"{s}Z" for s in stamps.astype(str)]}
    )
    n = [len(part)]
    return [
        {"name": "income_k", "datatype": "FP64", "shape": n, "data": part["income ($k)"].tolist()},
        {"name": "rooms", "datatype": "INT64", "shape": n, "data": part["rooms"].tolist()},
        {"name": "city", "datatype": "BYTES", "shape": n, "data": part["city"].astype(str).tolist()},
        {"name": "has_garden", "datatype": "BOOL", "shape": n, "data": part["has garden?"].tolist()},
        {"name": "listed_at", "shape": n, **listed},
    ]


def test_v2_and_protobuf_bodies_carry_times_and_categories(served: tuple[str, Any, Any, Any]) -> None:
    from modelrunner.contract import Contract
    from modelrunner.contract.proto import (
        columns_to_request_bytes,
        endpoint_package,
        response_bytes_to_columns,
    )

    url, frame, pipe, _ = served
    part = frame.iloc[40:60]
    want = pipe.predict(part).tolist()
    with httpx.Client(base_url=url, timeout=30) as http:
        for micros in (False, True):  # ISO strings (BYTES) or microseconds since 1970 (INT64)
            r = http.post("/v2/models/houses/infer", json={"inputs": _v2_inputs(part, micros)})
            assert r.status_code == 200, r.text
            assert next(o for o in r.json()["outputs"] if o["name"] == "label")["data"] == want
        contract = Contract.from_dict(http.get("/v1/endpoints/houses/contract").json()["contract"])
        package = endpoint_package("houses")
        cols = {
            "income_k": part["income ($k)"].to_numpy(),
            "rooms": part["rooms"].to_numpy(),
            "city": part["city"].to_numpy().astype(object),
            "has_garden": part["has garden?"].to_numpy(),
            "listed_at": part["listed at"].to_numpy(),
        }
        r = http.post(
            PREDICT,
            content=columns_to_request_bytes(cols, contract, package),
            headers={"content-type": "application/x-protobuf", "accept": "application/x-protobuf"},
        )
        assert r.status_code == 200, r.text
        assert response_bytes_to_columns(r.content, contract, package)["label"].tolist() == want


def test_bad_times_and_categories_are_refused_naming_the_field(served: tuple[str, Any, Any, Any]) -> None:
    url, frame, _, _ = served
    row = json.loads(frame.head(1).to_json(orient="records", date_format="iso"))[0]
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post(PREDICT, json={"instances": [{**row, "listed at": "next tuesday"}]})
        assert r.status_code == 422 and "'next tuesday' is not a timestamp" in r.text, r.text
        r = http.post(PREDICT, json={"instances": [{**row, "city": "paris"}]})
        assert r.status_code == 422 and "'paris' is not one of its categories" in r.text, r.text
        r = http.post(
            PREDICT,
            content=b"income ($k),rooms,city,has garden?,listed at\n50,2,oslo,true,soon\n",
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 422 and "listed_at" in r.text and "'soon'" in r.text, r.text


def test_the_client_sends_a_dataframe_and_reads_one(served: tuple[str, Any, Any, Any]) -> None:
    url, frame, pipe, _ = served
    part = frame.iloc[5:15]
    with mr.Client(url) as client:
        out = client.predict("houses", part)
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(part.index)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(part))


def test_loaded_from_the_registry_and_predicted_on_a_frame(
    served: tuple[str, Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, frame, pipe, home = served
    for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELRUNNER_HOME", str(home))
    model = mr.load_model("houses@production")
    back = pd.read_csv(io.StringIO(frame.head(6).to_csv(index=False)))  # as read back from a file
    out = model.predict(back)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(frame.head(6)))
