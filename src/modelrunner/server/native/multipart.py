"""Form predict requests (``multipart/form-data`` or urlencoded): one form field per input, one row.

``curl -F image=@line.png .../predict`` sends a file part named after a ``bytes`` input; text parts fill
``string`` inputs as they are and other inputs as JSON (``-F 'x=[1, 2, 3]'``). The body was already read
(and size-limited) by the caller; this only parses it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from modelrunner.contract import DType, Field
from modelrunner.contract.validate import coerce_column
from modelrunner.errors import InvalidArgument, ValidationError

MAX_PARTS = 64


def is_form(headers: Mapping[str, str]) -> bool:
    kind = headers.get("content-type", "").lower()
    return kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded"))


async def parse_form(headers: Headers, body: bytes, max_part_bytes: int) -> dict[str, bytes | str]:
    """The form's fields: file parts as bytes, text parts as str; InvalidArgument if malformed."""
    if not headers.get("content-type", "").lower().startswith("multipart/"):
        return _urlencoded(body)

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        headers, stream(), max_files=MAX_PARTS, max_fields=MAX_PARTS, max_part_size=max_part_bytes
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidArgument(f"malformed multipart form: {exc.message}") from exc
    out: dict[str, bytes | str] = {}
    try:
        for key, value in form.multi_items():
            if key in out:
                raise InvalidArgument(f"form field {key!r} is given more than once; send one row per request")
            out[key] = await value.read() if isinstance(value, UploadFile) else str(value)
    finally:
        await form.close()
        # starlette drops a file part the body cuts off without closing its temporary file
        for spooled in getattr(parser, "_files_to_close_on_error", ()):
            spooled.close()
    return out


def _urlencoded(body: bytes) -> dict[str, bytes | str]:
    from urllib.parse import parse_qsl

    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(f"malformed urlencoded form: {exc}") from exc
    out: dict[str, bytes | str] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidArgument(f"form field {key!r} is given more than once; send one row per request")
        out[key] = value
    return out


def form_columns(form: Mapping[str, bytes | str], fields: Sequence[Field]) -> dict[str, np.ndarray]:
    """One row of columns from form fields, checked against the contract's inputs."""
    known = {f.name: f for f in fields}
    unknown = sorted(set(form) - set(known))
    if unknown:
        raise ValidationError(
            f"unknown form field {unknown[0]!r} (inputs: {', '.join(known)})", field=unknown[0]
        )
    columns: dict[str, np.ndarray] = {}
    for name, field in known.items():
        if name not in form:
            if field.optional:
                continue
            raise ValidationError(f"missing form field {name!r} ({field.describe()})", field=name)
        columns[name] = coerce_column(field, [_value(field, form[name])])
    return columns


def _value(field: Field, raw: bytes | str) -> Any:
    if field.dtype is DType.BYTES:
        return raw.encode() if isinstance(raw, str) else raw
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if field.dtype is DType.STRING:
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"form field {field.name!r}: expected JSON for {field.describe()}, got {text[:40]!r}",
            field=field.name,
        ) from exc
