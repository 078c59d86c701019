"""Framing of the binary tensor data extension of the V2 REST API (tritonclient's default).

A request or response body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the raw
tensors, in the order of the JSON ``inputs``/``outputs`` that carry ``parameters.binary_data_size``. The raw
encoding itself (little-endian, BYTES length-prefixed) is ``contract.codecs.column_from_raw/column_to_raw``.
"""

from __future__ import annotations

from typing import Any

from modelrunner.errors import InvalidArgument

HEADER = "inference-header-content-length"


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary tail) of a request body; the whole body is JSON without the header."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        raise InvalidArgument(f"{HEADER} must be an integer, got {header_length!r}") from None
    if not 0 <= n <= len(body):
        raise InvalidArgument(f"{HEADER} is {n} but the body has {len(body)} bytes")
    return body[:n], body[n:]


def binary_size(tensor: dict[str, Any]) -> int | None:
    """``parameters.binary_data_size`` of a request input, if it has one."""
    params = tensor.get("parameters")
    if not isinstance(params, dict) or params.get("binary_data_size") is None:
        return None
    size = params["binary_data_size"]
    if not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"input {tensor.get('name')!r}: binary_data_size must be an integer >= 0")
    return size
