"""Pipeline spec parsing: one-line errors naming the step and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelrunner.contract import DType
from modelrunner.errors import PipelineError
from modelrunner.pipelines.spec import Source, load_spec, parse_source, parse_spec, parse_type

BASE = {"name": "p", "input": {"x": "bytes"}, "output": {"y": "a.out"}}


def test_example_spec_parses() -> None:
    spec = load_spec(Path(__file__).parents[2] / "examples" / "ocr" / "pipeline.yaml")
    assert list(spec.steps) == ["decode", "segment", "recognize", "assemble"]
    assert spec.steps["recognize"].map and spec.steps["segment"].kind == "model"
    assert spec.steps["recognize"].sources() == {"input": Source("segment", "crops")}
    assert spec.steps["decode"].sources() == {"data": Source(None, "image")}
    assert spec.input_fields()[0].dtype is DType.BYTES


@pytest.mark.parametrize(
    ("text", "dtype", "shape"),
    [
        ("bytes", DType.BYTES, ()),
        ("float32[?,64]", DType.FLOAT32, (-1, 64)),
        ("int64[3]", DType.INT64, (3,)),
        ({"dtype": "float64", "shape": [2, -1]}, DType.FLOAT64, (2, -1)),
    ],
)
def test_types(text: object, dtype: DType, shape: tuple[int, ...]) -> None:
    field = parse_type("x", text)
    assert (field.dtype, field.shape) == (dtype, shape)


@pytest.mark.parametrize("text", ["float99", "float32[a]", "", "float32[0]"])
def test_bad_type_names_the_input(text: str) -> None:
    with pytest.raises(PipelineError, match="input 'x': bad type"):
        parse_type("x", text)


@pytest.mark.parametrize("text", ["nodot", ".field", "bad step.x", "$input."])
def test_bad_source(text: str) -> None:
    with pytest.raises(PipelineError, match="bad edge source"):
        parse_source(text)


def test_step_needs_exactly_one_kind() -> None:
    data = {**BASE, "steps": {"a": {"model": "m@1", "transform": "text.join_labels", "inputs": {}}}}
    with pytest.raises(PipelineError, match=r"steps\.a: a step needs exactly one of") as info:
        parse_spec(data, "p.yaml")
    assert info.value.step == "a"


def test_unknown_key_and_bad_ref() -> None:
    with pytest.raises(PipelineError, match=r"steps\.a\.modle: unknown key"):
        parse_spec({**BASE, "steps": {"a": {"modle": "m", "model": "m"}}})
    with pytest.raises(PipelineError, match="invalid model reference"):
        parse_spec({**BASE, "steps": {"a": {"model": "m@@1"}}})


def test_bad_edge_names_step_and_field() -> None:
    with pytest.raises(PipelineError, match="step 'a' input 'data': bad edge source 'nope'") as info:
        parse_spec({**BASE, "steps": {"a": {"transform": "t", "inputs": {"data": "nope"}}}})
    assert (info.value.step, info.value.field) == ("a", "data")


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="must be a mapping"):
        parse_spec(["a"])
    bad = tmp_path / "p.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(PipelineError, match="no pipeline file"):
        load_spec(tmp_path / "missing.yaml")


def test_no_steps_and_bad_name() -> None:
    with pytest.raises(PipelineError, match="at least one step"):
        parse_spec({**BASE, "steps": {}})
    with pytest.raises(PipelineError, match="invalid model name"):
        parse_spec({**BASE, "name": "a b", "steps": {"a": {"transform": "t"}}})


def test_round_trip_yaml() -> None:
    spec = parse_spec({**BASE, "steps": {"a": {"transform": "t", "inputs": {"data": "$input.x"}}}})
    import yaml

    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec
