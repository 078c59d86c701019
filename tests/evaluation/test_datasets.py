import numpy as np
import pandas as pd
import pytest

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import InvalidArgument, NotFound, ValidationError
from modelrunner.evaluation.datasets import load_dataset

CONTRACT = Contract.build(
    [Field(name="pixels", dtype=DType.FLOAT32, shape=(4,)), Field(name="note", dtype=DType.STRING)],
    [Field(name="label", dtype=DType.INT64)],
)
X = np.arange(12, dtype=np.float64).reshape(3, 4)
NOTES = np.array(["a", "b", "c"])
Y = np.array([0, 1, 0])


def test_npz_fits_and_is_hashed(tmp_path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, pixels=X, note=NOTES, target=Y)
    ds = load_dataset(path)
    assert ds.name == "d.npz" and ds.rows == 3 and len(ds.sha256) == 64
    cols = ds.inputs_for(CONTRACT)
    assert cols["pixels"].dtype == np.float32 and cols["pixels"].shape == (3, 4)
    assert cols["note"].tolist() == ["a", "b", "c"]
    assert np.array_equal(ds.target, Y)
    other = tmp_path / "e.npz"
    np.savez(other, pixels=X + 1, note=NOTES, target=Y)
    assert load_dataset(other).sha256 != ds.sha256
    assert load_dataset(path).sha256 == ds.sha256


def test_npz_not_fitting_names_the_field(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, pixels=X[:, :3], note=NOTES, target=Y)
    with pytest.raises(ValidationError, match="pixels") as err:
        load_dataset(path).inputs_for(CONTRACT)
    assert err.value.field == "pixels"
    np.savez(path, pixels=X, target=Y)
    with pytest.raises(ValidationError, match="no column for input field 'note'") as err:
        load_dataset(path).inputs_for(CONTRACT)
    assert err.value.field == "note"
    np.savez(path, pixels=X.astype(np.float64), note=np.array([1, 2, 3]), target=Y)
    with pytest.raises(ValidationError, match="'note'"):
        load_dataset(path).inputs_for(CONTRACT)
    np.savez(path, pixels=X, note=NOTES)
    with pytest.raises(ValidationError, match="no target column 'target'"):
        load_dataset(path)
    np.savez(path, pixels=X[:2], note=NOTES[:2], target=Y)
    with pytest.raises(ValidationError, match="2 rows but the target has 3"):
        load_dataset(path).inputs_for(CONTRACT)


def test_npz_object_arrays_are_refused(tmp_path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, pixels=X, note=NOTES.astype(object), target=Y)
    with pytest.raises(InvalidArgument, match="object arrays"):
        load_dataset(path)


def test_csv_with_split_vector_columns(tmp_path) -> None:
    frame = pd.DataFrame({f"pixels_{i}": X[:, i] for i in range(4)})
    frame["note"] = NOTES
    frame["label_text"] = ["x", "y", "z"]
    frame["target"] = Y
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    cols = load_dataset(path).inputs_for(CONTRACT)
    assert np.array_equal(cols["pixels"], X.astype(np.float32))
    frame.drop(columns=["pixels_3"]).to_csv(path, index=False)
    with pytest.raises(ValidationError, match="pixels"):
        load_dataset(path).inputs_for(CONTRACT)


def test_parquet_with_list_columns(tmp_path) -> None:
    frame = pd.DataFrame({"pixels": list(X), "note": NOTES, "y": Y})
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    ds = load_dataset(path, target="y")
    cols = ds.inputs_for(CONTRACT)
    assert cols["pixels"].shape == (3, 4) and np.array_equal(ds.target, Y)


def make_data() -> tuple[dict[str, np.ndarray], np.ndarray]:
    return {"pixels": X, "note": NOTES}, Y


def make_frame() -> pd.DataFrame:
    return pd.DataFrame({"pixels": list(X), "note": NOTES, "target": Y})


def test_callables(tmp_path) -> None:
    a = load_dataset(f"{__name__}:make_data")
    b = load_dataset(make_data)
    assert a.sha256 == b.sha256 and a.inputs_for(CONTRACT)["pixels"].shape == (3, 4)
    c = load_dataset(f"{__name__}:make_frame")
    assert c.inputs_for(CONTRACT)["note"].tolist() == ["a", "b", "c"]
    with pytest.raises(InvalidArgument, match="returned int"):
        load_dataset(lambda: 3)
    with pytest.raises(InvalidArgument, match="failed: ZeroDivisionError"):
        load_dataset(lambda: 1 / 0)


def test_unknown_sources(tmp_path) -> None:
    with pytest.raises(NotFound, match="not found"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(InvalidArgument, match="unknown format .txt"):
        load_dataset(tmp_path / "d.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidArgument, match="broken.npz"):
        load_dataset(tmp_path / "broken.npz")
    with pytest.raises(InvalidArgument, match="cannot import"):
        load_dataset("no_such_module_q:fn")
