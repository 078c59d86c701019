"""Contract derivation from samples, model outputs and type annotations."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, TypedDict

import numpy as np
import pandas as pd
import pytest

from modelrunner.contract import Contract, DType, Field
from modelrunner.contract.derive import (
    as_columns,
    example_columns,
    fields_from_annotations,
    fields_from_output,
    fields_from_sample,
    sanitize_name,
)
from modelrunner.errors import ContractError


def _summary(fields: tuple) -> list[tuple[str, DType, tuple[int, ...]]]:
    return [(f.name, f.dtype, f.shape) for f in fields]


def test_ndarray_sample_is_one_tensor_field() -> None:
    assert _summary(fields_from_sample(np.zeros((5, 8, 8), dtype=np.float32))) == [
        ("input", DType.FLOAT32, (8, 8))
    ]
    assert _summary(fields_from_sample(np.arange(3), default_name="x")) == [("x", DType.INT64, ())]
    assert _summary(fields_from_sample([[1.0, 2.0]])) == [("input", DType.FLOAT64, (2,))]


def test_dataframe_sample_is_one_field_per_column() -> None:
    frame = pd.DataFrame(
        {"sepal length (cm)": [1.0, 2.0], "kind": ["a", "b"], "n": [1, 2], "ok": [True, False]}
    )
    assert _summary(fields_from_sample(frame)) == [
        ("sepal_length_cm", DType.FLOAT64, ()),
        ("kind", DType.STRING, ()),
        ("n", DType.INT64, ()),
        ("ok", DType.BOOL, ()),
    ]
    cols = as_columns(frame)
    assert cols["kind"].dtype == object and list(cols) == ["sepal_length_cm", "kind", "n", "ok"]


def test_dict_and_rows_samples() -> None:
    sample = {
        "text": np.array(["hi", "yo"]),
        "blob": np.array([b"a", b"b"], dtype=object),
        "vec": np.ones((2, 3), dtype=np.uint8),
    }
    assert _summary(fields_from_sample(sample)) == [
        ("text", DType.STRING, ()),
        ("blob", DType.BYTES, ()),
        ("vec", DType.UINT8, (3,)),
    ]
    rows = [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]
    assert _summary(fields_from_sample(rows)) == [("a", DType.FLOAT64, ()), ("b", DType.STRING, ())]


@pytest.mark.parametrize(
    ("sample", "why"),
    [
        (np.float64(1.0), "needs rows"),
        ({"a": np.zeros(2), "b": np.zeros(3)}, "different numbers of rows"),
        ({}, "at least one column"),
        ({"a": np.array([1j])}, "field 'a': unsupported dtype"),
        ({"not valid": np.zeros(2)}, "must be an identifier"),
        (pd.DataFrame({"a b": [1], "a_b": [2]}), "both become field 'a_b'"),
        ({1: np.zeros(2)}, "column names must be strings"),
        (42, "cannot use a int as a sample"),
        ([{"a": 1}, {"b": 2}], "row 1 has keys"),
    ],
)
def test_bad_samples(sample: object, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        fields_from_sample(sample)


def test_sanitize_name() -> None:
    assert sanitize_name("petal width (cm)") == "petal_width_cm"
    assert sanitize_name(3) == "f_3"
    with pytest.raises(ContractError):
        sanitize_name("()")


def test_fields_from_output() -> None:
    out = {"label": np.array(["a", "b"]), "proba": np.zeros((2, 3), dtype=np.float32)}
    assert _summary(fields_from_output(out)) == [("label", DType.STRING, ()), ("proba", DType.FLOAT32, (3,))]
    with pytest.raises(ContractError, match="dict of columns"):
        fields_from_output(np.zeros(2))  # type: ignore[arg-type]


@dataclasses.dataclass
class House:
    rooms: int
    area: float
    city: str
    photo: bytes
    garden: bool
    floors: np.int32
    history: list[float]
    grid: list[list[np.float32]]
    note: str | None = None
    score: float = 1.5


class Point(NamedTuple):
    x: float
    y: float = 0.0


class Doc(TypedDict, total=False):
    text: str
    tags: list[str]


def test_annotations_dataclass() -> None:
    fields = fields_from_annotations(House)
    assert _summary(fields) == [
        ("rooms", DType.INT64, ()),
        ("area", DType.FLOAT64, ()),
        ("city", DType.STRING, ()),
        ("photo", DType.BYTES, ()),
        ("garden", DType.BOOL, ()),
        ("floors", DType.INT32, ()),
        ("history", DType.FLOAT64, (-1,)),
        ("grid", DType.FLOAT32, (-1, -1)),
        ("note", DType.STRING, ()),
        ("score", DType.FLOAT64, ()),
    ]
    assert [f.optional for f in fields] == [False] * 8 + [True, True]
    assert fields[-1].default == 1.5


def test_annotations_namedtuple_and_typeddict() -> None:
    point = fields_from_annotations(Point)
    assert _summary(point) == [("x", DType.FLOAT64, ()), ("y", DType.FLOAT64, ())]
    assert [f.optional for f in point] == [False, True]
    doc = fields_from_annotations(Doc)
    assert _summary(doc) == [("text", DType.STRING, ()), ("tags", DType.STRING, (-1,))]
    assert all(f.optional for f in doc)


def test_bad_annotations() -> None:
    @dataclasses.dataclass
    class Bad:
        when: dict[str, int]

    with pytest.raises(ContractError, match="field 'when': unsupported annotation"):
        fields_from_annotations(Bad)
    with pytest.raises(ContractError, match="not a dataclass, NamedTuple or TypedDict"):
        fields_from_annotations(int)


def test_example_columns_fit_fields() -> None:
    fields = fields_from_annotations(House)
    cols = example_columns(fields, rows=3)
    assert cols["grid"].shape == (3, 1, 1) and cols["city"].dtype == object and cols["rooms"].shape == (3,)
    assert cols["photo"][0] == b""


def test_dataframe_labels_that_are_no_names_become_aliases() -> None:
    frame = pd.DataFrame({"income ($k)": [1.0, 2.0], "rooms": [1, 2], 3: ["a", "b"]})
    fields = fields_from_sample(frame)
    assert [(f.name, f.alias) for f in fields] == [("income_k", "income ($k)"), ("rooms", ""), ("f_3", "3")]
    contract = Contract.build(fields)
    data = contract.to_dict()
    assert data["inputs"][0]["alias"] == "income ($k)" and "alias" not in data["inputs"][1]  # old shape
    assert Contract.from_dict(data) == contract
    del data["inputs"][0]["alias"]  # a contract saved before aliases existed still loads
    assert Contract.from_dict(data).inputs[0].alias == ""


def test_an_alias_may_not_be_another_fields_name() -> None:
    with pytest.raises(ContractError, match="alias 'b'"):
        Contract.build([Field(name="a", dtype=DType.INT64, alias="b"), Field(name="b", dtype=DType.INT64)])


def test_datetime_and_categorical_columns_of_a_frame() -> None:
    frame = pd.DataFrame(
        {
            "signed at": pd.to_datetime(["2024-05-01 12:30", "2024-05-02 08:00"]),
            "seen": pd.to_datetime(["2024-05-01T12:30:00+02:00", "2024-05-01T00:00:00Z"], utc=True),
            "city": pd.Categorical(["rome", "oslo"], categories=["oslo", "rome", "lima"]),
            "n": [1, 2],
        }
    )
    fields = fields_from_sample(frame)
    assert [(x.name, x.dtype, x.categories, x.alias) for x in fields] == [
        ("signed_at", DType.TIMESTAMP, (), "signed at"),
        ("seen", DType.TIMESTAMP, (), ""),
        ("city", DType.CATEGORY, ("oslo", "rome", "lima"), ""),
        ("n", DType.INT64, (), ""),
    ]
    cols = as_columns(frame)
    assert cols["seen"][0] == np.datetime64("2024-05-01T10:30:00")  # made UTC, then naive
    assert cols["city"].tolist() == ["rome", "oslo"]
