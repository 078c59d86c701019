"""``Predictor.predict`` on pandas DataFrames (a DataFrame in, a DataFrame out; ``as_frame``) and
``load_model`` of a registry ref."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.errors import NotFound, ValidationError

pd = pytest.importorskip("pandas")


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Any, Any, Any]:
    """A pipeline over a DataFrame of mixed dtypes with a column label that is no identifier."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "income ($k)": rng.normal(50, 10, n),
            "rooms": rng.integers(1, 6, n),
            "city": rng.choice(["oslo", "rome", "lima"], n),
        }
    )
    y = (frame["income ($k)"] > 50).to_numpy().astype(int)
    pipe = make_pipeline(
        ColumnTransformer(
            [("n", StandardScaler(), ["income ($k)", "rooms"]), ("c", OneHotEncoder(), ["city"])]
        ),
        LogisticRegression(),
    )
    pipe.fit(frame, y)
    mr.save_model(pipe, tmp_path / "mixed", sample=frame.head(5), name="mixed")
    return frame, pipe, tmp_path / "mixed"


def test_a_dataframe_in_is_a_dataframe_out(mixed: tuple[Any, Any, Any]) -> None:
    frame, pipe, path = mixed
    model = mr.load_model(path)
    assert [(f.name, f.alias) for f in model.contract.inputs] == [
        ("income_k", "income ($k)"),
        ("rooms", ""),
        ("city", ""),
    ]
    part = frame.iloc[10:20]
    out = model.predict(part)  # the original labels ("income ($k)") are read as their fields
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == list(part.index)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(part))
    proba = np.stack(out["proba"].to_list())  # a multi-value output: an array per cell
    np.testing.assert_allclose(proba, pipe.predict_proba(part))
    cols = model.predict(part, as_frame=False)
    assert isinstance(cols, dict) and cols["label"].shape == (10,)


def test_sanitised_labels_and_as_frame_on_columns(mixed: tuple[Any, Any, Any]) -> None:
    frame, pipe, path = mixed
    model = mr.load_model(path)
    renamed = frame.rename(columns={"income ($k)": "income_k"}).head(3)
    out = model.predict(renamed)
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(frame.head(3)))
    columns = {
        "income_k": frame["income ($k)"].to_numpy()[:3],
        "rooms": frame["rooms"].to_numpy()[:3],
        "city": frame["city"].to_numpy(dtype=object)[:3],
    }
    out = model.predict(columns, as_frame=True)
    assert isinstance(out, pd.DataFrame) and list(out.index) == [0, 1, 2]
    assert isinstance(model.predict(columns), dict)  # columns in: columns out, as before


def test_a_bad_dataframe_names_the_column(mixed: tuple[Any, Any, Any]) -> None:
    frame, _, path = mixed
    model = mr.load_model(path)
    with pytest.raises(ValidationError, match="rooms") as info:
        model.predict(frame.drop(columns=["rooms"]).head(2))
    assert info.value.field == "rooms"
    bad = frame.head(2).assign(rooms=["two", "three"])
    with pytest.raises(ValidationError, match="rooms"):
        model.predict(bad)


def test_load_model_takes_a_registry_ref(reg: Any, mixed: tuple[Any, Any, Any]) -> None:
    frame, pipe, path = mixed
    reg.push(path, alias="production")
    for ref in ("mixed@production", "mixed@1", "mixed"):
        out = mr.load_model(ref).predict(frame.head(4))
        np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(frame.head(4)))
    with pytest.raises(NotFound, match="nope"):
        mr.load_model("nope@production")


def test_load_model_path_that_does_not_exist_is_not_a_ref(tmp_home: Path, tmp_path: Path) -> None:
    with pytest.raises(mr.errors.BundleError, match="no bundle at"):
        mr.load_model(str(tmp_path / "missing"))
    with pytest.raises(mr.errors.BundleError, match="no bundle at"):
        mr.load_model("missing.tar.gz")
