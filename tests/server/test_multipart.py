"""Form requests (multipart / urlencoded) -> one row of columns checked against the contract."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from starlette.datastructures import Headers

from modelrunner.contract import DType, Field
from modelrunner.errors import InvalidArgument, ValidationError
from modelrunner.server.native.multipart import form_columns, is_form, parse_form

FIELDS = [
    Field(name="image", dtype=DType.BYTES),
    Field(name="note", dtype=DType.STRING),
    Field(name="x", dtype=DType.FLOAT64, shape=(3,)),
    Field(name="k", dtype=DType.INT64, optional=True, default=1),
]
BOUNDARY = "b0und"


def multipart_body(parts: list[tuple[str, bytes, bool]]) -> bytes:
    chunks = []
    for name, value, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="f.png"' if is_file else "")
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        chunks.append(head + value + b"\r\n")
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def parse(body: bytes, kind: str = f"multipart/form-data; boundary={BOUNDARY}") -> dict[str, bytes | str]:
    return asyncio.run(parse_form(Headers({"content-type": kind}), body, 1 << 20))


def test_multipart_file_and_text_parts_make_one_row() -> None:
    form = parse(
        multipart_body(
            [("image", b"\x89PNG\x00\x01", True), ("note", b"hello", False), ("x", b"[1, 2.5, 3]", False)]
        )
    )
    cols = form_columns(form, FIELDS)
    assert cols["image"].dtype == object and cols["image"][0] == b"\x89PNG\x00\x01"
    assert cols["note"].tolist() == ["hello"]
    np.testing.assert_allclose(cols["x"], [[1.0, 2.5, 3.0]])
    assert "k" not in cols  # optional: the validator fills the default


def test_urlencoded_form() -> None:
    assert is_form({"content-type": "application/x-www-form-urlencoded"})
    assert not is_form({"content-type": "application/json"})
    form = parse(b"image=abc&note=hi&x=%5B1%2C2%2C3%5D", "application/x-www-form-urlencoded")
    assert form_columns(form, FIELDS)["image"][0] == b"abc"


def test_form_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="missing form field 'image' \\(bytes\\)"):
        form_columns({"note": "a", "x": "[1,2,3]"}, FIELDS)
    with pytest.raises(ValidationError, match="unknown form field 'img'"):
        form_columns({"img": b"", "note": "a", "x": "[1,2,3]"}, FIELDS)
    with pytest.raises(ValidationError, match="form field 'x': expected JSON for float64\\[3\\]"):
        form_columns({"image": b"", "note": "a", "x": "one two"}, FIELDS)
    with pytest.raises(ValidationError) as info:
        form_columns({"image": b"", "note": "a", "x": "[1, 2]"}, FIELDS)
    assert info.value.field == "x"
    with pytest.raises(InvalidArgument, match="given more than once"):
        parse(multipart_body([("note", b"a", False), ("note", b"b", False)]))
