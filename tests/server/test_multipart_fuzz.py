"""Property tests of form decoding (server/native/multipart.py): any multipart or urlencoded body gives one
row of columns or one of our errors, never another exception."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from modelrunner.contract import Contract
from modelrunner.server.native import multipart
from support.fuzz_helpers import CONTRACTS, FUZZ, only_our_errors

BOUNDARY = "fuzzboundary"
NAMES = st.sampled_from(["x", "k", "s", "b", "t", "nope", "", 'x"y'])
VALUES = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"[1, 2]", b"[[1, 2]]", b"7", b"null", b"\xff", b"[true, false]", b"1e999"]),
)


def _part(name: str, value: bytes, filename: str | None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n").encode() + value + b"\r\n"


PARTS = st.lists(st.builds(_part, NAMES, VALUES, st.one_of(st.none(), st.just("a.png"))), max_size=4)


def _columns(content_type: str, body: bytes, contract: Contract) -> None:
    headers = Headers({"content-type": content_type})
    form = asyncio.run(multipart.parse_form(headers, body, 1024))
    multipart.form_columns(form, contract.inputs)


@FUZZ
@given(
    parts=PARTS,
    end=st.sampled_from([f"--{BOUNDARY}--\r\n".encode(), b"", b"--"]),
    contract=st.sampled_from(CONTRACTS),
)
def test_multipart_forms(parts: list[bytes], end: bytes, contract: Contract) -> None:
    body = b"".join(parts) + end
    only_our_errors(lambda: _columns(f"multipart/form-data; boundary={BOUNDARY}", body, contract))


@FUZZ
@given(
    body=st.binary(max_size=80),
    boundary=st.sampled_from([BOUNDARY, "", "a" * 80]),
    contract=st.sampled_from(CONTRACTS),
)
def test_any_bytes_as_a_form(body: bytes, boundary: str, contract: Contract) -> None:
    only_our_errors(lambda: _columns(f"multipart/form-data; boundary={boundary}", body, contract))
    only_our_errors(lambda: _columns("application/x-www-form-urlencoded", body, contract))
