"""Property tests of protobuf request decoding (contract/proto.py): any bytes give a validated batch or one of
our errors, and the wire row count agrees with the parser while never building a message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelrunner.contract import Contract
from modelrunner.contract.proto import count_rows, message_classes, request_to_columns
from support.fuzz_helpers import CONTRACTS, FUZZ, only_our_errors, varint

PACKAGE = "fuzz.model"


# wire fields: (field number, wire type, payload) -- close enough to real messages to get past the parser
FIELDS = st.tuples(
    st.sampled_from([1, 2, 3, 5, 1048577]), st.sampled_from([0, 1, 2, 5]), st.binary(max_size=12)
)


def _wire(fields: list[tuple[int, int, bytes]]) -> bytes:
    out = b""
    for number, kind, payload in fields:
        out += varint(number << 3 | kind)
        if kind == 0:
            out += varint(int.from_bytes(payload[:9] or b"\0", "little"))
        elif kind == 1:
            out += payload[:8].ljust(8, b"\0")
        elif kind == 5:
            out += payload[:4].ljust(4, b"\0")
        else:
            out += varint(len(payload)) + payload
    return out


ROWS = st.lists(st.lists(FIELDS, max_size=4).map(_wire), max_size=6)
"""Request bytes: rows (field 1) whose InputRow bytes are random fields of the contracts' numbers."""


def _request(rows: list[bytes], junk: bytes = b"") -> bytes:
    return b"".join(b"\x0a" + varint(len(r)) + r for r in rows) + junk


@FUZZ
@given(data=st.binary(max_size=200), contract=st.sampled_from(CONTRACTS), max_rows=st.sampled_from([None, 2]))
def test_any_bytes(data: bytes, contract: Contract, max_rows: int | None) -> None:
    only_our_errors(lambda: request_to_columns(data, contract, PACKAGE, max_rows=max_rows))


@FUZZ
@given(rows=ROWS, contract=st.sampled_from(CONTRACTS))
def test_structured_rows(rows: list[bytes], contract: Contract) -> None:
    only_our_errors(lambda: request_to_columns(_request(rows), contract, PACKAGE))


@FUZZ
@given(rows=ROWS, stop=st.integers(0, 8), contract=st.sampled_from(CONTRACTS))
def test_count_rows_agrees_with_the_parser(rows: list[bytes], stop: int, contract: Contract) -> None:
    data = _request(rows)
    request = message_classes(contract, PACKAGE)[0]
    try:
        parsed = len(request.FromString(data).rows)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - bytes the parser refuses: the count only has to stop
        count_rows(data, stop)
        return
    assert count_rows(data, stop) == min(parsed, stop + 1)


def test_a_million_empty_rows_are_counted_in_milliseconds() -> None:
    import time

    data = b"\x0a\x00" * 8_000_000  # 16 MB; parsing it took minutes and gigabytes
    start = time.perf_counter()
    assert count_rows(data, 100_000) == 100_001
    assert time.perf_counter() - start < 5  # about 30 ms; generous for a loaded machine
    assert count_rows(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10) == 1  # no endless varint
