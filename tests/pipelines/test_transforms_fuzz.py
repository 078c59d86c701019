"""Property tests of image decoding (pipelines/transforms/image.py): any bytes -- mangled PNGs and JPEGs,
lying headers -- decode to an image or raise one of our errors, never another exception; a header that
claims a huge image is refused before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from modelrunner.pipelines.transforms import get_transform
from support.fuzz_helpers import FUZZ, only_our_errors


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (12, 16), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = [_encoded("PNG"), _encoded("JPEG")]
DECODE = get_transform("image.decode_grayscale")


def _mangled(seed: int, edits: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(SEEDS[seed])
    for pos, value in edits:
        data[pos % len(data)] = value
    return bytes(data[: max(cut, 1)])


def _decode(*items: bytes) -> np.ndarray:
    column = np.empty(len(items), dtype=object)
    column[:] = list(items)
    return DECODE.predict({"data": column})["image"]


@FUZZ
@given(
    seed=st.integers(0, 1),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 4000),
)
def test_mangled_images(seed: int, edits: list[tuple[int, int]], cut: int) -> None:
    only_our_errors(lambda: _decode(_mangled(seed, edits, cut)))


def _png_header(width: int, height: int, depth: int, color: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8))


@FUZZ
@given(
    width=st.integers(0, 2**31 - 1),
    height=st.integers(0, 2**31 - 1),
    depth=st.sampled_from([1, 8, 16, 3]),
    color=st.sampled_from([0, 2, 3, 4, 6, 5]),
    copies=st.integers(1, 5),
)
def test_lying_png_headers(width: int, height: int, depth: int, color: int, copies: int) -> None:
    """Huge declared sizes are refused from the header (ResourceExhausted), never decoded."""
    only_our_errors(lambda: _decode(*[_png_header(width, height, depth, color)] * copies))
