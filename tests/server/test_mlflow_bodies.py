"""MLflow scoring-server bodies on the native predict route, over real HTTP: ``dataframe_split``,
``dataframe_records`` and ``text/csv`` with a header, through the routed app (with its fast path) and a
worker's shell app; bad bodies are 422s naming the row and the column."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httpx
import numpy as np
import pytest

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract, DType, Field
from modelrunner.runner.endpoint import Endpoint
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, StaticRuntime, toy_deployment

MIXED = Contract.build(
    [
        Field(name="age", dtype=DType.FLOAT64),
        Field(name="rooms", dtype=DType.INT64),
        Field(name="city", dtype=DType.STRING),
        Field(name="garden", dtype=DType.BOOL),
        Field(name="extra", dtype=DType.FLOAT32, optional=True, default=0.5),
        Field(name="xy", dtype=DType.FLOAT64, shape=(2,), optional=True, default=0.0),
    ],
    [Field(name="score", dtype=DType.FLOAT64), Field(name="tag", dtype=DType.STRING)],
)
PREDICT = "/v1/endpoints/mixed/predict"
ROWS = 20


class MixedPredictor(Predictor):
    """score = age + rooms + garden + extra + sum(xy); tag = city upper-cased."""

    def __init__(self) -> None:
        self.contract = MIXED

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        score = (
            columns["age"]
            + columns["rooms"]
            + columns["garden"]
            + columns["extra"]
            + columns["xy"].sum(axis=1)
        )
        return {
            "score": score.astype(np.float64),
            "tag": np.array([c.upper() for c in columns["city"]], dtype=object),
        }


ALIASED = Contract.build(
    [
        Field(name="income_k", dtype=DType.FLOAT64, alias="income ($k)"),
        Field(name="n_rooms", dtype=DType.INT64, alias="n rooms", optional=True, default=1),
    ],
    [Field(name="score", dtype=DType.FLOAT64)],
)


class AliasedPredictor(Predictor):
    """A model saved from a DataFrame whose column labels are no field names: score = income * rooms."""

    def __init__(self) -> None:
        self.contract = ALIASED

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        return {"score": columns["income_k"] * columns["n_rooms"]}


def _apps(settings: Settings) -> dict[str, object]:
    from modelrunner.server.app import create_app
    from modelrunner.server.shell import WorkerApp

    def runtime() -> StaticRuntime:
        endpoint, aliased = Endpoint("mixed"), Endpoint("aliased")
        endpoint.current = toy_deployment("mixed", MixedPredictor())
        aliased.current = toy_deployment("aliased", AliasedPredictor())
        rt = StaticRuntime({"mixed": endpoint, "aliased": aliased})
        rt.started = True
        return rt

    worker_rt = runtime()
    return {
        "app": create_app(runtime(), settings),
        "worker": WorkerApp(worker_rt, settings, lambda: create_app(worker_rt, settings)),
    }


@pytest.fixture(scope="module", params=["app", "worker"])
def http(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = Settings(home=tmp_path_factory.mktemp("home"), max_request_rows=ROWS)
    with (
        ServerThread(_apps(settings)[request.param]) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


RECORDS = [
    {"age": 30.5, "rooms": 3, "city": "oslo", "garden": True},
    {"age": 41, "rooms": 5, "city": "rome", "garden": False, "extra": 1.0, "xy": [1, 2]},
]
EXPECTED = [{"score": 35.0, "tag": "OSLO"}, {"score": 50.0, "tag": "ROME"}]


def _predictions(r: httpx.Response, endpoint: str = "mixed") -> list[dict[str, object]]:
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"] == endpoint and r.json()["version"] == 3
    return r.json()["predictions"]  # type: ignore[no-any-return]


def test_dataframe_records(http: httpx.Client) -> None:
    assert _predictions(http.post(PREDICT, json={"dataframe_records": RECORDS})) == EXPECTED


def test_dataframe_split_as_pandas_writes_it(http: httpx.Client) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{k: v for k, v in row.items() if k not in ("xy", "extra")} for row in RECORDS])
    frame.index = [10, 11]
    body = {"dataframe_split": frame.to_dict(orient="split")}
    assert "index" in body["dataframe_split"]  # ignored, as MLflow ignores it
    assert _predictions(http.post(PREDICT, json=body)) == [EXPECTED[0], {"score": 46.5, "tag": "ROME"}]
    body = {"dataframe_records": frame.to_dict(orient="records")}  # NaN-free records: a plain JSON body
    assert _predictions(http.post(PREDICT, json=body))[1] == {"score": 46.5, "tag": "ROME"}


def test_dataframe_split_without_index(http: httpx.Client) -> None:
    body = {
        "dataframe_split": {"columns": ["city", "age", "rooms", "garden"], "data": [["oslo", 30.5, 3, True]]}
    }
    assert _predictions(http.post(PREDICT, json=body)) == EXPECTED[:1]


def test_csv_with_a_header(http: httpx.Client) -> None:
    csv = b'age,rooms,city,garden,extra,xy\n30.5,3,oslo,true,,\n41,5,rome,0,1.0,"[1, 2]"\n'
    for media in ("text/csv", "text/csv; charset=utf-8"):
        r = http.post(PREDICT, content=csv, headers={"content-type": media})
        assert _predictions(r) == EXPECTED
    r = http.post(
        PREDICT,
        content=b"\xef\xbb\xbfcity,age,rooms,garden\r\noslo,30.5,3,True\r\n",
        headers={"content-type": "text/csv"},
    )  # a BOM and CRLF, as spreadsheets write it
    assert _predictions(r) == EXPECTED[:1]


def test_instances_and_inputs_still_answer(http: httpx.Client) -> None:
    assert _predictions(http.post(PREDICT, json={"instances": RECORDS})) == EXPECTED
    r = http.post(PREDICT, json={"inputs": {"age": [1.0], "rooms": [1], "city": ["a"], "garden": [False]}})
    assert r.status_code == 200 and r.json()["outputs"] == {"score": [2.5], "tag": ["A"]}, r.text


def _refused(r: httpx.Response, status: int = 422) -> tuple[str, object]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    return error["message"], error.get("field")


def _csv(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post(PREDICT, content=body, headers={"content-type": "text/csv"})


def test_bad_csv_is_422_naming_the_row_and_column(http: httpx.Client) -> None:
    message, _ = _refused(_csv(http, b"age,rooms,city,garden\n1,2,a,true\n3,4,b\n"))
    assert message == "CSV row 1 (line 3) has 3 values for 4 columns"
    message, field = _refused(_csv(http, b"age,rooms,city,garden,colour\n1,2,a,true,red\n"))
    assert "unknown column 'colour'" in message and field == "colour"
    message, field = _refused(_csv(http, b"age,rooms,city,garden\n1,2,a,true\nold,2,b,false\n"))
    assert message == "CSV row 1 (line 3), column 'age': 'old' is not a number (float64)" and field == "age"
    message, field = _refused(_csv(http, b"age,rooms,city,garden\n1,2.5,a,true\n"))
    assert "column 'rooms': '2.5' is not an integer (int64)" in message and field == "rooms"
    message, field = _refused(_csv(http, b"age,rooms,city,garden\n1,2,a,maybe\n"))
    assert "column 'garden': 'maybe' is not true or false" in message
    message, field = _refused(_csv(http, b"age,rooms,city,garden\n,2,a,true\n"))  # empty: missing
    assert "row 0: missing input 'age'" in message and field == "age"
    message, _ = _refused(_csv(http, b"age,age,rooms,city,garden\n1,1,2,a,true\n"))
    assert "column 'age' appears twice" in message
    message, _ = _refused(_csv(http, b""))
    assert "the CSV body is empty" in message
    message, _ = _refused(_csv(http, b"age,rooms\n\xff\xfe\n"))
    assert "not UTF-8" in message


def test_csv_rows_over_the_limit_are_413(http: httpx.Client) -> None:
    body = b"age,rooms,city,garden\n" + b"1,2,a,true\n" * (ROWS + 1)
    message, _ = _refused(_csv(http, body), 413)
    assert f"at most {ROWS} rows" in message
    body = {"dataframe_split": {"columns": ["age"], "data": [[1]] * (ROWS + 1)}}
    assert _refused(http.post(PREDICT, json=body), 413)
    assert _refused(http.post(PREDICT, json={"dataframe_records": [{"age": 1}] * (ROWS + 1)}), 413)


def test_bad_dataframe_bodies_are_422(http: httpx.Client) -> None:
    split = {"columns": ["age", "rooms", "city", "garden"], "data": [[1, 2, "a", True], [1, 2]]}
    message, _ = _refused(http.post(PREDICT, json={"dataframe_split": split}))
    assert message == "dataframe_split row 1 has 2 values for 4 columns (age, rooms, city, garden)"
    split = {"columns": ["age", "rooms", "city", "garden", "nope"], "data": [[1, 2, "a", True, 0]]}
    message, field = _refused(http.post(PREDICT, json={"dataframe_split": split}))
    assert "unknown input 'nope'" in message and field == "nope"
    split = {"columns": ["age", "rooms", "city", "garden"], "data": [["x", 2, "a", True]]}
    message, field = _refused(http.post(PREDICT, json={"dataframe_split": split}))
    assert field == "age"
    message, _ = _refused(http.post(PREDICT, json={"dataframe_split": [[1, 2]]}))
    assert "'dataframe_split' must be an object" in message
    message, _ = _refused(http.post(PREDICT, json={"dataframe_records": [[1, 2, "a", True]]}))
    assert "dataframe_records row 0 must be an object" in message


def test_other_media_types_are_still_415(http: httpx.Client) -> None:
    r = http.post(PREDICT, content=b"age=1", headers={"content-type": "text/plain"})
    message, _ = _refused(r, 415)
    assert message.startswith("unsupported media type text/plain; send application/json, text/csv")


ALIASED_PATH = "/v1/endpoints/aliased/predict"


def test_column_labels_name_their_fields_in_every_form(http: httpx.Client) -> None:
    for body in (
        {"instances": [{"income ($k)": 2.5, "n rooms": 2}, {"income_k": 3.0}]},
        {"inputs": {"income ($k)": [2.5, 3.0], "n_rooms": [2, 1]}},
        {"dataframe_records": [{"income ($k)": 2.5, "n rooms": 2}, {"income ($k)": 3.0}]},
        {"dataframe_split": {"columns": ["income ($k)", "n rooms"], "data": [[2.5, 2], [3.0, 1]]}},
    ):
        r = http.post(ALIASED_PATH, json=body)
        assert r.status_code == 200, (body, r.text)
        answer = r.json()
        rows = answer.get("predictions") or [{"score": s} for s in answer["outputs"]["score"]]
        scores = [p["score"] for p in rows]
        assert scores == [5.0, 3.0], body
    r = http.post(
        ALIASED_PATH, content=b'"income ($k)",n rooms\n2.5,2\n3.0,\n', headers={"content-type": "text/csv"}
    )
    assert [p["score"] for p in _predictions(r, "aliased")] == [5.0, 3.0]


def test_a_field_named_twice_is_422(http: httpx.Client) -> None:
    r = http.post(ALIASED_PATH, json={"instances": [{"income ($k)": 2.5, "income_k": 2.5}]})
    message, field = _refused(r)
    assert message == "input 'income_k' is given twice (as 'income ($k)' and 'income_k')"
    assert field == "income_k"
    r = http.post(ALIASED_PATH, content=b"income ($k),income_k\n1,1\n", headers={"content-type": "text/csv"})
    assert "column 'income_k' appears twice" in _refused(r)[0]


def test_inputs_as_a_list_of_rows_is_mlflows_tensor_form(http: httpx.Client) -> None:
    assert _predictions(http.post(PREDICT, json={"inputs": RECORDS})) == EXPECTED
    message, _ = _refused(http.post(PREDICT, json={"inputs": "age"}))
    assert "'inputs' must be an object of columns, got str" in message
