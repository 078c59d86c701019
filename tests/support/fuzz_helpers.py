"""Shared pieces of the decoder fuzz tests (hypothesis): JSON values, contracts, and the rule they check.

The rule: whatever the bytes or values, a decoder either returns or raises one of our errors
(:class:`~modelrunner.errors.ModelrunnerError`: a 4xx / INVALID_ARGUMENT / RESOURCE_EXHAUSTED naming what is
wrong), never another exception (a 500), and never allocates by a claimed size (a shape of ``[1, 2**40]``).
Each test is bounded: a fixed number of examples, no example database on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import ModelrunnerError

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""A few seconds per test on a loaded 2-core machine."""

INTS = st.one_of(st.integers(-3, 300), st.integers(-(2**63), 2**64 - 1), st.sampled_from([2**31, 2**40]))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "aGk=", "not base64!", "\u00e9\u4e2d"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.sampled_from(["x", "k", "s", "b", "t", "age", "zz"]), inner, max_size=5),
    ),
    max_leaves=20,
)
"""JSON values shaped like requests: field names of the contracts below, nested lists, odd scalars."""

CONTRACTS = [
    Contract.build(
        [
            Field(name="x", dtype=DType.FLOAT32, shape=(2,)),
            Field(name="k", dtype=DType.INT64),
            Field(name="s", dtype=DType.STRING),
            Field(name="b", dtype=DType.BYTES, optional=True),
            Field(name="t", dtype=DType.FLOAT64, optional=True, default=0.5),
        ],
        [Field(name="y", dtype=DType.FLOAT64)],
    ),
    Contract.build([Field(name="x", dtype=DType.UINT8, shape=(-1, 2))], [Field(name="y", dtype=DType.INT8)]),
    Contract.build([Field(name="x", dtype=DType.BOOL, shape=(-1, -1))], [Field(name="y", dtype=DType.BOOL)]),
    Contract.build([Field(name="s", dtype=DType.STRING, shape=(-1,))], [Field(name="y", dtype=DType.INT32)]),
]


def only_our_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``: our errors are fine (returns None); anything else fails the test with the exception."""
    try:
        return fn()
    except ModelrunnerError:
        return None


def varint(n: int) -> bytes:
    """``n`` as a protobuf base-128 varint (to write wire bytes by hand)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
