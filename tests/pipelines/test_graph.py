"""Graph checks: unknown step, missing edge, unknown field, cycle, type fit; map; the derived contract."""

from __future__ import annotations

import pytest

from modelrunner.contract import DType
from modelrunner.errors import PipelineError
from modelrunner.pipelines.graph import build_graph, fit_problem
from support.pipeline_helpers import contract, f, spec

SEG = contract([f("image", "float32", -1, -1)], [f("crops", "float32", -1, 64), f("boxes", "int32", -1, 4)])
REC = contract([f("input", "float64", 64)], [f("label", "int64"), f("proba", "float64", 10)])
JOIN = contract([f("labels", "int64", -1), f("boxes", "int64", -1, 4, optional=True)], [f("text", "string")])
DEC = contract([f("data", "bytes")], [f("image", "float32", -1, -1)])

OCR_STEPS = {
    "decode": {"transform": "d", "inputs": {"data": "$input.image"}},
    "segment": {"model": "seg@1", "inputs": {"image": "decode.image"}},
    "recognize": {"model": "rec@1", "inputs": {"input": "segment.crops"}, "map": True},
    "assemble": {"transform": "j", "inputs": {"labels": "recognize.label", "boxes": "segment.boxes"}},
}
OCR_OUT = {"text": "assemble.text", "boxes": "segment.boxes", "confidence": "recognize.proba"}
OCR_CONTRACTS = {"decode": DEC, "segment": SEG, "recognize": REC, "assemble": JOIN}


def ocr(steps: dict | None = None, output: dict | None = None):  # type: ignore[no-untyped-def]
    return spec(steps or OCR_STEPS, inputs={"image": "bytes"}, output=output or dict(OCR_OUT))


def problem(steps: dict, contracts: dict, output: dict | None = None) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        build_graph(ocr(steps, output), contracts)
    return info.value


def test_ocr_graph_and_derived_contract() -> None:
    graph = build_graph(ocr(), OCR_CONTRACTS)
    assert graph.order == ("decode", "segment", "recognize", "assemble")
    assert graph.deps["assemble"] == {"recognize", "segment"}
    c = graph.contract
    assert [(x.name, x.dtype, x.shape) for x in c.inputs] == [("image", DType.BYTES, ())]
    outs = {x.name: (x.dtype, x.shape) for x in c.outputs}
    assert outs == {
        "text": (DType.STRING, ()),
        "boxes": (DType.INT32, (-1, 4)),
        "confidence": (DType.FLOAT64, (-1, 10)),
    }  # map adds the list dimension
    assert [x.number for x in c.outputs] == [1, 2, 3]


def test_unknown_step() -> None:
    steps = {**OCR_STEPS, "recognize": {"model": "rec@1", "inputs": {"input": "segmnt.crops"}, "map": True}}
    err = problem(steps, OCR_CONTRACTS)
    assert "step 'recognize' input 'input' reads segmnt.crops: unknown step 'segmnt'" in str(err)
    assert (err.step, err.field) == ("recognize", "input")


def test_missing_edge() -> None:
    steps = {**OCR_STEPS, "segment": {"model": "seg@1", "inputs": {}}}
    err = problem(steps, OCR_CONTRACTS)
    assert "missing edge: step 'segment' (seg@1) input 'image' (float32[?x?]) is not connected" in str(err)
    assert (err.step, err.field) == ("segment", "image")


def test_optional_input_may_stay_unconnected() -> None:
    steps = {**OCR_STEPS, "assemble": {"transform": "j", "inputs": {"labels": "recognize.label"}}}
    build_graph(ocr(steps), OCR_CONTRACTS)


def test_unknown_fields() -> None:
    inputs = {"image": "decode.img", "mask": "decode.image"}
    err = problem({**OCR_STEPS, "segment": {"model": "seg@1", "inputs": inputs}}, OCR_CONTRACTS)
    assert (
        "step 'segment' input 'image' reads decode.img: step 'decode' has no output 'img' (outputs: image)"
    ) in err.problems
    assert "step 'segment' (seg@1) has no input 'mask' (inputs: image)" in err.problems
    err = problem(OCR_STEPS, OCR_CONTRACTS, {"text": "assemble.txt"})
    assert "output 'text' reads assemble.txt: step 'assemble' has no output 'txt'" in str(err)
    steps = {**OCR_STEPS, "decode": {"transform": "d", "inputs": {"data": "$input.img"}}}
    assert "the pipeline has no input 'img' (inputs: image)" in str(problem(steps, OCR_CONTRACTS))


def test_cycle_is_rejected_naming_the_steps() -> None:
    steps = {**OCR_STEPS, "segment": {"model": "seg@1", "inputs": {"image": "assemble.text"}}}
    err = problem(steps, OCR_CONTRACTS)
    assert "cycle: segment -> recognize -> assemble -> segment" in str(err)
    self_loop = {"a": {"transform": "d", "inputs": {"data": "a.image"}}}
    err = problem(self_loop, {"a": DEC}, {"y": "a.image"})
    assert "cycle: a -> a" in str(err)


def test_type_mismatch_names_the_edge() -> None:
    narrow = contract([f("input", "float32", 64)], [f("label", "int64"), f("proba", "float64", 10)])
    ok = build_graph(ocr(), {**OCR_CONTRACTS, "recognize": narrow})  # float32 -> float32: fine
    assert ok.contract
    wrong_size = contract([f("input", "float64", 32)], [f("label", "int64"), f("proba", "float64", 10)])
    err = problem(OCR_STEPS, {**OCR_CONTRACTS, "recognize": wrong_size})
    assert "edge segment.crops -> recognize.input: float32[64] does not fit float64[32]" in str(err)
    assert (err.step, err.field) == ("recognize", "input")
    text_labels = contract([f("input", "float64", 64)], [f("label", "string"), f("proba", "float64", 10)])
    err = problem(OCR_STEPS, {**OCR_CONTRACTS, "recognize": text_labels})
    assert "edge recognize.label -> assemble.labels: string does not fit int64" in str(err)


def test_map_needs_a_list() -> None:
    steps = {**OCR_STEPS, "recognize": {"model": "rec@1", "inputs": {"input": "$input.image"}, "map": True}}
    err = problem(steps, OCR_CONTRACTS)
    assert "step 'recognize' maps over input 'input', but $input.image (bytes) is not a list" in str(err)


def test_without_map_a_list_does_not_fit_a_row() -> None:
    steps = {**OCR_STEPS, "recognize": {"model": "rec@1", "inputs": {"input": "segment.crops"}}}
    err = problem(steps, OCR_CONTRACTS)
    assert "edge segment.crops -> recognize.input" in str(err)
    assert "different number of dimensions" in str(err)


def test_all_problems_are_listed() -> None:
    steps = {
        **OCR_STEPS,
        "segment": {"model": "seg@1", "inputs": {}},
        "recognize": {"model": "rec@1", "inputs": {"input": "nope.crops"}, "map": True},
    }
    err = problem(steps, OCR_CONTRACTS)
    assert len(err.problems) == 2 and "(and 1 more problem(s))" in str(err)


@pytest.mark.parametrize(
    ("src", "dst", "fits"),
    [
        (f("a", "int32"), f("b", "int64"), True),
        (f("a", "float32"), f("b", "float64"), True),
        (f("a", "int32"), f("b", "float64"), True),
        (f("a", "bool"), f("b", "int8"), True),
        (f("a", "float64"), f("b", "float32"), False),
        (f("a", "int64"), f("b", "int32"), False),
        (f("a", "string"), f("b", "bytes"), False),
        (f("a", "float64", 3), f("b", "float64", -1), True),
        (f("a", "float64", -1), f("b", "float64", 3), False),
        (f("a", "float64", 3), f("b", "float64", 3, 1), False),
    ],
)
def test_fit_rules(src, dst, fits) -> None:  # type: ignore[no-untyped-def]
    assert (fit_problem(src, dst) is None) is fits
