"""Built-in transforms: their contracts, options, and one-line errors on bad images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from modelrunner.errors import PipelineError, ResourceExhausted, ValidationError
from modelrunner.pipelines.transforms import TRANSFORMS, get_transform, transform_info
from support.pipeline_helpers import header_only_png


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def column(*items: bytes) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def decode(*items: bytes, **options: object) -> np.ndarray:
    return get_transform("image.decode_grayscale", options).predict({"data": column(*items)})["image"]


def test_library_lists_its_transforms_with_contracts() -> None:
    assert {"image.decode_grayscale", "text.join_labels", "array.max", "array.argmax"} <= set(TRANSFORMS)
    info = transform_info("image.decode_grayscale")
    assert info.contract.outputs[0].shape == (-1, -1)
    with pytest.raises(PipelineError, match=r"unknown transform 'image.decode' \(known: array.argmax"):
        transform_info("image.decode")


def test_decode_grayscale_png_and_jpeg() -> None:
    img = np.full((6, 10), 255, dtype=np.uint8)
    img[2:4, 3:6] = 0
    out = decode(png(img))
    assert out.shape == (1, 6, 10) and out.dtype == np.float32
    assert out[0, 0, 0] == 1.0 and out[0, 2, 3] == 0.0
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    assert decode(png(rgb, "JPEG")).shape == (1, 8, 8)


def test_images_of_different_sizes_make_a_ragged_column() -> None:
    out = decode(png(np.zeros((4, 5), np.uint8)), png(np.zeros((7, 3), np.uint8)))
    assert out.dtype == object and [o.shape for o in out] == [(4, 5), (7, 3)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "field 'data': empty image (0 bytes)"),
        (b"GIF89a not really", "field 'data': not a PNG/JPEG image (17 bytes that no accepted decoder"),
        (b"%PDF-1.4 hello", "not a PNG/JPEG image"),
    ],
)
def test_bad_images_are_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        decode(data)
    assert message in str(info.value) and info.value.field == "data"


def test_gif_is_refused_unless_allowed() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(buf, format="GIF")
    with pytest.raises(ValidationError, match="not a PNG/JPEG image"):
        decode(buf.getvalue())
    assert decode(buf.getvalue(), formats=["GIF"]).shape == (1, 3, 3)


def test_corrupt_png() -> None:
    data = png(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8))
    with pytest.raises(ValidationError, match="field 'data': corrupt PNG image"):
        decode(data[: len(data) // 2])


def test_fifty_megapixels_is_refused_from_the_header() -> None:
    with pytest.raises(ResourceExhausted, match=r"image is 10000x5000 \(50.0 megapixels\); the limit is 4.0"):
        decode(header_only_png(10000, 5000))
    with pytest.raises(ResourceExhausted, match="limit is 0.0"):
        decode(png(np.zeros((10, 10), np.uint8)), max_pixels=50)


def test_pixels_of_a_request_are_budgeted_from_the_headers() -> None:
    # header-only PNGs: decoding any of them would fail as corrupt, so the budget is checked first
    with pytest.raises(
        ResourceExhausted,
        match=r"the 50 images hold 200.0 megapixels together; at most "
        r"16.0 are decoded per request \(option max_total_pixels\)",
    ):
        decode(*[header_only_png(2000, 2000)] * 50)
    with pytest.raises(ResourceExhausted, match="at most 0.0 are decoded"):
        decode(png(np.zeros((10, 10), np.uint8)), png(np.zeros((10, 10), np.uint8)), max_total_pixels=150)
    assert decode(png(np.zeros((10, 10), np.uint8)), max_total_pixels=100).shape == (1, 10, 10)


def test_options_are_checked() -> None:
    known = "max_pixels, max_total_pixels, formats"
    with pytest.raises(PipelineError, match=rf"unknown option\(s\) max_px \(options: {known}\)"):
        get_transform("image.decode_grayscale", {"max_px": 3})
    with pytest.raises(PipelineError, match="option 'max_pixels' must be int"):
        get_transform("image.decode_grayscale", {"max_pixels": "big"})


def test_join_labels_orders_by_box() -> None:
    join = get_transform("text.join_labels")
    labels = np.array([[4, 0, 1]])
    boxes = np.array([[[50, 0, 60, 9], [10, 0, 20, 9], [30, 0, 40, 9]]])
    assert join.predict({"labels": labels, "boxes": boxes})["text"].tolist() == ["014"]
    assert join.predict({"labels": labels})["text"].tolist() == ["401"]
    spaced = get_transform("text.join_labels", {"separator": " "})
    assert spaced.predict({"labels": labels})["text"].tolist() == ["4 0 1"]
    with pytest.raises(ValidationError, match="2 boxes for 3 labels"):
        join.predict({"labels": labels, "boxes": boxes[:, :2]})


def test_array_max_and_argmax() -> None:
    values = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert get_transform("array.max").predict({"values": values})["max"].tolist() == [0.7, 0.5]
    assert get_transform("array.argmax").predict({"values": values})["index"].tolist() == [1, 0]
