"""save_model / open_bundle / load_model with the sklearn flavor: contracts, manifest, provenance, errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelrunner as mr
from modelrunner.bundle import archive
from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import BundleError, FlavorError, MissingExtra, ValidationError


def test_digits_round_trip(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, _ = digits
    bundle = mr.save_model(
        digits_lr,
        tmp_path / "digits-lr",
        sample=x[:20],
        license="MIT",
        description="8x8 digit classifier",
        metrics={"accuracy": 0.97},
    )
    m = bundle.manifest
    assert (m.name, m.flavor, m.license, m.metrics) == ("digits-lr", "sklearn", "MIT", {"accuracy": 0.97})
    assert [(f.name, f.dtype, f.shape) for f in m.contract.inputs] == [("input", DType.FLOAT64, (64,))]
    assert [(f.name, f.dtype, f.shape) for f in m.contract.outputs] == [
        ("label", DType.INT64, ()),
        ("proba", DType.FLOAT64, (10,)),
    ]
    assert any(r.startswith("scikit-learn==") for r in m.requirements)
    assert any(r.startswith("numpy==") for r in m.requirements)
    assert m.python.count(".") == 2
    assert bundle.example_input()["input"].shape == (5, 64)

    model = mr.load_model(tmp_path / "digits-lr")
    out = model.predict({"input": x[600:700]})
    np.testing.assert_array_equal(out["label"], digits_lr.predict(x[600:700]))
    np.testing.assert_allclose(out["proba"], digits_lr.predict_proba(x[600:700]))
    model.close()


def test_regressor_outputs_prediction(tmp_path: Path, digits: Any) -> None:
    from sklearn.linear_model import Ridge

    x, y = digits
    reg = Ridge().fit(x[:300], y[:300].astype(float))
    bundle = mr.save_model(reg, tmp_path / "ridge", sample=x[:3])
    assert [f.name for f in bundle.contract.outputs] == ["prediction"]
    out = bundle.load().predict({"input": x[:4]})
    np.testing.assert_allclose(out["prediction"], reg.predict(x[:4]))


def test_string_labels_are_object_columns(tmp_path: Path, iris_frame: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    frame, y = iris_frame
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame.to_numpy(), names)
    bundle = mr.save_model(clf, tmp_path / "tree", sample=frame.to_numpy()[:5])
    assert bundle.contract.output("label").dtype is DType.STRING
    out = bundle.load().predict({"input": frame.to_numpy()[:3]})
    assert out["label"].dtype == object and out["label"][0] == "setosa"


def test_dataframe_sample_gives_one_field_per_column(tmp_path: Path, iris_frame: Any) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y = iris_frame
    cols = ["petal length (cm)", "sepal width (cm)"]  # selected by name: needs a DataFrame at predict time
    pipe = make_pipeline(ColumnTransformer([("s", StandardScaler(), cols)]), LogisticRegression())
    pipe.fit(frame, y)
    bundle = mr.save_model(pipe, tmp_path / "iris", sample=frame.head(8))
    names = [f.name for f in bundle.contract.inputs]
    assert names == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    assert any(r.startswith("pandas==") for r in bundle.manifest.requirements)
    columns = {name: frame.iloc[:, i].to_numpy() for i, name in enumerate(names)}
    out = mr.load_model(tmp_path / "iris").predict(columns)
    np.testing.assert_array_equal(out["label"], pipe.predict(frame))


@dataclasses.dataclass
class IrisRow:
    sepal_length: float
    sepal_width: float
    petal_length: float
    petal_width: float


def test_signature_from_annotations(tmp_path: Path, iris_frame: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, y = iris_frame
    x = frame.to_numpy()
    clf = LogisticRegression(max_iter=300).fit(x, y)
    bundle = mr.save_model(clf, tmp_path / "iris-sig", signature=IrisRow)
    assert [f.name for f in bundle.contract.inputs] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert {f.name for f in bundle.contract.outputs} == {"label", "proba"}
    cols = {f.name: x[:10, i] for i, f in enumerate(bundle.contract.inputs)}
    np.testing.assert_array_equal(bundle.load().predict(cols)["label"], clf.predict(x[:10]))


def test_declared_output_must_exist(tmp_path: Path, iris_frame: Any) -> None:
    from typing import TypedDict

    from sklearn.linear_model import LogisticRegression

    class Out(TypedDict):
        score: float

    frame, y = iris_frame
    clf = LogisticRegression(max_iter=300).fit(frame.to_numpy(), y)
    with pytest.raises(BundleError, match="declared output 'score'"):
        mr.save_model(clf, tmp_path / "b", signature=(IrisRow, Out))


def test_explicit_contract_keeps_names(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, _ = digits
    contract = Contract.build([Field(name="pixels", dtype=DType.FLOAT32, shape=(64,), description="8x8")])
    bundle = mr.save_model(digits_lr, tmp_path / "c", contract=contract, sample=x[:3])
    assert bundle.contract.inputs[0].name == "pixels"
    assert bundle.contract.inputs[0].description == "8x8"
    assert bundle.example_input()["pixels"].shape == (3, 64)
    out = bundle.load().predict({"pixels": x[:5].astype(np.float32)})
    assert out["label"].shape == (5,)


def test_sample_that_does_not_fit_the_model(tmp_path: Path, digits_lr: Any) -> None:
    with pytest.raises(BundleError, match="model failed on the sample: ValueError"):
        mr.save_model(digits_lr, tmp_path / "bad", sample=np.zeros((2, 3)))
    assert not (tmp_path / "bad").exists()


def test_sample_that_does_not_fit_the_contract(tmp_path: Path, digits_lr: Any) -> None:
    contract = Contract.build([Field(name="pixels", dtype=DType.FLOAT64, shape=(64,))])
    with pytest.raises(ValidationError, match="sample does not fit") as err:
        mr.save_model(digits_lr, tmp_path / "bad", contract=contract, sample={"pixels": np.zeros((2, 8))})
    assert err.value.field == "pixels"


def test_no_contract_source(tmp_path: Path, digits_lr: Any) -> None:
    with pytest.raises(BundleError, match="pass sample=, signature= or contract="):
        mr.save_model(digits_lr, tmp_path / "b")


@pytest.mark.parametrize("bad", ["GPL", "MIT OR", "Apache 2.0", "BSD", "MIT WITH Foo", "(MIT", "GPL 2.0+"])
def test_bad_license(tmp_path: Path, digits: Any, digits_lr: Any, bad: str) -> None:
    with pytest.raises(BundleError, match="license"):
        mr.save_model(digits_lr, tmp_path / "b", sample=digits[0][:2], license=bad)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("apache-2.0", "Apache-2.0"),
        ("MIT OR Apache-2.0", "MIT OR Apache-2.0"),
        ("Proprietary", "LicenseRef-Proprietary"),
        ("LicenseRef-acme", "LicenseRef-acme"),
        # the full SPDX list, not a short one: these were refused by a 75-id list
        ("LGPL-2.0-only", "LGPL-2.0-only"),
        ("cc-by-sa-2.0", "CC-BY-SA-2.0"),
        ("Artistic-1.0", "Artistic-1.0"),
        ("GPL-2.0+", "GPL-2.0-or-later"),  # deprecated SPDX ids are stored in their current form
        ("gpl-2.0-only with classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("LicenseRef-MIT-TC", "LicenseRef-MIT-TC"),  # a LicenseRef stays as written, never mapped to an id
        ("OpenRAIL", "OpenRAIL"),
    ],
)
def test_license_normalised(tmp_path: Path, digits: Any, digits_lr: Any, given: str, stored: str) -> None:
    bundle = mr.save_model(digits_lr, tmp_path / "b", sample=digits[0][:2], license=given)
    assert bundle.manifest.license == stored


def test_unknown_flavor_lists_known(tmp_path: Path, digits_lr: Any) -> None:
    with pytest.raises(FlavorError, match="unknown flavor 'tensorflow'.*sklearn"):
        mr.save_model(digits_lr, tmp_path / "b", flavor="tensorflow")


def test_object_no_flavor_matches(tmp_path: Path) -> None:
    with pytest.raises(FlavorError, match="no flavor can save"):
        mr.save_model(object(), tmp_path / "b", sample=np.zeros((2, 2)))


def test_lineage(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, y = digits
    bundle = mr.save_model(digits_lr, tmp_path / "b", sample=x[:2], training_data=x[:600], parent="digits@2")
    lin = bundle.manifest.lineage
    assert lin.parent == "digits@2" and lin.git_commit is None
    again = mr.save_model(digits_lr, tmp_path / "c", sample=x[:2], training_data=x[:600].copy())
    assert again.manifest.lineage.training_data_sha256 == lin.training_data_sha256
    other = mr.save_model(digits_lr, tmp_path / "d", sample=x[:2], training_data=x[:601])
    assert other.manifest.lineage.training_data_sha256 != lin.training_data_sha256


def test_lineage_git_commit(tmp_path: Path, digits: Any, digits_lr: Any, monkeypatch: Any) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    monkeypatch.chdir(repo)
    lin = mr.save_model(digits_lr, tmp_path / "b", sample=digits[0][:2]).manifest.lineage
    assert (lin.git_commit, lin.git_dirty) == (head.strip(), False)
    (repo / "train.py").write_text("x = 2\n")
    assert mr.save_model(digits_lr, tmp_path / "b", sample=digits[0][:2]).manifest.lineage.git_dirty is True


def test_identical_saves_give_identical_archives(
    tmp_path: Path, digits: Any, digits_lr: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    x, _ = digits
    a = mr.save_model(digits_lr, tmp_path / "a" / "digits", sample=x[:5], license="MIT")
    b = mr.save_model(digits_lr, tmp_path / "b" / "digits", sample=x[:5], license="MIT")
    os.utime(b.path / "model.joblib", (1, 1))
    assert archive.pack(a.path) == archive.pack(b.path)
    c = mr.save_model(digits_lr, tmp_path / "c" / "digits", sample=x[1:6], license="MIT")
    assert archive.pack(a.path) != archive.pack(c.path)


def test_save_replaces_bundle_but_not_other_folders(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, _ = digits
    mr.save_model(digits_lr, tmp_path / "b", sample=x[:2], description="one")
    assert (
        mr.save_model(digits_lr, tmp_path / "b", sample=x[:2], description="two").manifest.description
        == "two"
    )
    assert mr.open_bundle(tmp_path / "b").manifest.description == "two"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle"):
        mr.save_model(digits_lr, tmp_path / "notes", sample=x[:2])
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_load_from_archive(tmp_path: Path, digits: Any, digits_lr: Any, suffix: str) -> None:
    import shutil

    x, _ = digits
    bundle = mr.save_model(digits_lr, tmp_path / "digits", sample=x[:5])
    if suffix == ".zip":
        path = Path(shutil.make_archive(str(tmp_path / "digits"), "zip", tmp_path, "digits"))
    else:
        path = tmp_path / "digits.tar.gz"
        path.write_bytes(archive.pack(bundle.path))
    opened = mr.open_bundle(path)
    assert opened.manifest == bundle.manifest and opened.path != bundle.path
    out = opened.load().predict({"input": x[:10]})
    np.testing.assert_array_equal(out["label"], digits_lr.predict(x[:10]))
    assert mr.open_bundle(path).path == opened.path  # cached by sha256


def test_save_to_archive_path(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, _ = digits
    bundle = mr.save_model(digits_lr, tmp_path / "digits.tar.gz", sample=x[:5])
    assert (tmp_path / "digits.tar.gz").is_file() and bundle.name == "digits"
    assert mr.load_model(tmp_path / "digits.tar.gz").predict({"input": x[:2]})["label"].shape == (2,)


def test_open_bundle_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle at"):
        mr.open_bundle(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not a bundle"):
        mr.open_bundle(tmp_path / "empty")


def test_predictor_validates_inputs(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    x, _ = digits
    model = mr.save_model(digits_lr, tmp_path / "b", sample=x[:2]).load()
    with pytest.raises(ValidationError, match="missing input 'input'"):
        model.predict({"pixels": x[:2]})
    with pytest.raises(ValidationError, match=r"expected per-row shape \(64,\)") as err:
        model.predict({"input": x[:2, :10]})
    assert err.value.field == "input"
    with pytest.raises(ValidationError, match="expected dtype float64, got object"):
        model.predict({"input": np.array([["a"] * 64], dtype=object)})
    assert model.predict({"input": x[:2].astype(np.int64)})["label"].shape == (2,)


def test_missing_extra_names_the_extra(tmp_path: Path, digits: Any, digits_lr: Any, monkeypatch: Any) -> None:
    x, _ = digits
    bundle = mr.save_model(digits_lr, tmp_path / "b", sample=x[:2])
    monkeypatch.setitem(__import__("sys").modules, "joblib", None)
    with pytest.raises(MissingExtra, match=r"modelrunner\[sklearn\]"):
        bundle.load()


def test_corrupt_model_file_is_a_bundle_error(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    bundle = mr.save_model(digits_lr, tmp_path / "b", sample=digits[0][:2])
    (bundle.path / "model.joblib").write_bytes(b"\x80\x04garbage")
    with pytest.raises(BundleError, match="cannot load the sklearn model in .*: ValueError"):
        bundle.load()


def test_text_pipeline_takes_one_string_column(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    docs = ["good movie", "bad movie", "great film", "awful film"] * 3
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs, [1, 0, 1, 0] * 3)
    bundle = mr.save_model(pipe, tmp_path / "text", sample=docs[:3])
    assert [(f.name, f.dtype, f.shape) for f in bundle.contract.inputs] == [("input", DType.STRING, ())]
    assert list(bundle.example_input()["input"]) == docs[:3]
    out = bundle.load().predict({"input": np.array(["great movie", "awful movie"], dtype=object)})
    np.testing.assert_array_equal(out["label"], pipe.predict(["great movie", "awful movie"]))


def test_concurrent_predict(tmp_path: Path, digits: Any, digits_lr: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    x, _ = digits
    model = mr.save_model(digits_lr, tmp_path / "b", sample=x[:2]).load()
    batches = [x[i * 50 : (i + 1) * 50] for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda b: model.predict({"input": b})["label"], batches))
    for batch, labels in zip(batches, results, strict=True):
        np.testing.assert_array_equal(labels, digits_lr.predict(batch))


def test_the_spdx_list_is_read_from_the_package_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from modelrunner.bundle import licenses

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the SPDX license list must not be fetched over the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    licenses._licensing.cache_clear()
    try:
        assert licenses.normalize_license("BlueOak-1.0.0 OR 0bsd") == "BlueOak-1.0.0 OR 0BSD"
    finally:
        licenses._licensing.cache_clear()
