"""Contract types: typed input/output fields with stable protobuf field numbers.

A :class:`Field` describes one column of a batch: its dtype and its *per-row* shape (``()`` for a scalar per
row, ``(64,)`` for a vector of 64, ``-1`` for a variable dimension). A :class:`Contract` is the inputs and
outputs of a model or pipeline. Batches are columnar: ``{field name: numpy array of shape (n, *shape)}``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as Attribute

from modelrunner.errors import ContractError


class DType(StrEnum):
    BOOL = "bool"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BYTES = "bytes"
    TIMESTAMP = "timestamp"  # datetime64[us], UTC (an aware time is converted to UTC, then made naive)
    CATEGORY = "category"  # a string out of an optional declared set (Field.categories); pandas Categorical

    @property
    def is_numeric(self) -> bool:
        return self not in (DType.STRING, DType.BYTES, DType.BOOL, DType.TIMESTAMP, DType.CATEGORY)

    @property
    def kind(self) -> str:
        """``b`` bool, ``i`` signed int, ``u`` unsigned int, ``f`` float, ``S`` string (and category),
        ``B`` bytes, ``M`` timestamp."""
        return _KIND[self]

    @property
    def bits(self) -> int:
        """Width in bits of a numeric or bool dtype (0 for string and bytes)."""
        return _BITS[self]

    @property
    def proto_type(self) -> str:
        """The proto3 scalar type carrying this dtype on the wire (see docs/contracts.md)."""
        return _PROTO_TYPE[self]

    def accepts(self, other: DType) -> bool:
        """True when every value of ``other`` is a value of ``self`` with the same protobuf wire encoding.

        This is the widening relation the compatibility rules use: bool -> any int; intN -> intM (M >= N);
        uintN -> uintM (M >= N) or intM (M > N); floatN -> floatM (M >= N); string accepts category (the
        same text on every wire). Integers never widen to floats (a protobuf varint is not a double);
        bytes, timestamp and category only accept themselves (a category's declared set is compared by
        the compatibility rules, contract/compat.py).
        """
        if self is other:
            return True
        if self is DType.STRING and other is DType.CATEGORY:
            return True
        a, b = self.kind, other.kind
        if "M" in (a, b) or DType.CATEGORY in (self, other):
            return False
        if b == "b":
            return a in ("i", "u")
        if a == "i" and b == "i" or a == "u" and b == "u" or a == "f" and b == "f":
            return self.bits >= other.bits
        if a == "i" and b == "u":
            return self.bits > other.bits
        return False

    def numpy(self) -> np.dtype[Any]:
        """The numpy dtype used for this field's column (object for string and bytes)."""
        if self in (DType.STRING, DType.BYTES, DType.CATEGORY):
            return np.dtype(object)
        if self is DType.TIMESTAMP:
            return np.dtype("datetime64[us]")
        return np.dtype(self.value)

    @classmethod
    def from_numpy(cls, dtype: Any) -> DType:
        dt = np.dtype(dtype)
        if dt.kind in ("U", "O"):
            return cls.STRING
        if dt.kind == "S":
            return cls.BYTES
        if dt.kind == "M":
            return cls.TIMESTAMP
        try:
            return cls(dt.name)
        except ValueError as exc:
            raise ContractError(f"unsupported dtype {dt.name!r}") from exc


_KIND = {
    DType.BOOL: "b",
    DType.STRING: "S",
    DType.BYTES: "B",
    DType.INT8: "i",
    DType.INT16: "i",
    DType.INT32: "i",
    DType.INT64: "i",
    DType.UINT8: "u",
    DType.UINT16: "u",
    DType.UINT32: "u",
    DType.UINT64: "u",
    DType.FLOAT16: "f",
    DType.FLOAT32: "f",
    DType.FLOAT64: "f",
    DType.TIMESTAMP: "M",
    DType.CATEGORY: "S",
}
_BITS = {d: (np.dtype(d.value).itemsize * 8 if d.kind in "iuf" else 0) for d in DType}
_BITS[DType.BOOL] = 1
_PROTO_TYPE = {
    DType.BOOL: "bool",
    DType.STRING: "string",
    DType.BYTES: "bytes",
    DType.INT8: "int32",
    DType.INT16: "int32",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.UINT8: "uint32",
    DType.UINT16: "uint32",
    DType.UINT32: "uint32",
    DType.UINT64: "uint64",
    DType.FLOAT16: "double",
    DType.FLOAT32: "double",
    DType.FLOAT64: "double",
    DType.TIMESTAMP: "int64",
    DType.CATEGORY: "string",  # int64: microseconds since 1970-01-01T00:00Z
}


class Field(BaseModel):
    """One typed column. ``number`` is the stable protobuf field number (0 = not yet assigned)."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: DType
    shape: tuple[int, ...] = ()
    description: str = ""
    number: int = 0
    optional: bool = False
    default: Any = None
    # the column label the field was derived from when it is no identifier ("income ($k)" for income_k):
    # requests may name the field by it; left out of the contract's dict when empty (older contracts)
    alias: str = Attribute(default="", exclude_if=lambda v: not v)
    # a category field's allowed values (empty: any string); left out of the dict when empty
    categories: tuple[str, ...] = Attribute(default=(), exclude_if=lambda v: not v)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not v or not (v[0].isalpha() or v[0] == "_") or not all(c.isalnum() or c == "_" for c in v):
            raise ValueError(f"field name {v!r} must be an identifier (letters, digits, _)")
        return v

    @field_validator("categories")
    @classmethod
    def _valid_categories(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"categories {list(v)} repeat a value")
        return v

    def model_post_init(self, __context: Any) -> None:
        if self.categories and self.dtype is not DType.CATEGORY:
            raise ContractError(
                f"field {self.name!r}: categories are declared only on category fields, "
                f"not {self.dtype.value}"
            )

    @field_validator("shape")
    @classmethod
    def _valid_shape(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < -1 or d == 0 for d in v):
            raise ValueError(f"shape {v} may only hold positive sizes or -1 (variable)")
        return v

    def describe(self) -> str:
        dims = "x".join("?" if d == -1 else str(d) for d in self.shape)
        return f"{self.dtype.value}[{dims}]" if self.shape else self.dtype.value


class Contract(BaseModel):
    """Inputs and outputs of a model or pipeline, with a contract version bumped on breaking changes."""

    model_config = ConfigDict(frozen=True)

    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...] = ()
    version: int = 1
    reserved_inputs: tuple[int, ...] = ()
    reserved_outputs: tuple[int, ...] = ()

    def model_post_init(self, __context: Any) -> None:
        for side, fields in (("input", self.inputs), ("output", self.outputs)):
            names = [f.name for f in fields]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ContractError(f"duplicate {side} field name(s): {', '.join(dupes)}")
            clash = next(
                (
                    f.alias
                    for f in fields
                    if f.alias and (f.alias in names or sum(g.alias == f.alias for g in fields) > 1)
                ),
                None,
            )
            if clash:
                raise ContractError(f"{side} alias {clash!r} is another field's name or alias")
        for side, fields, reserved in (
            ("input", self.inputs, self.reserved_inputs),
            ("output", self.outputs, self.reserved_outputs),
        ):
            _check_numbers(side, fields, reserved)

    @classmethod
    def build(
        cls, inputs: list[Field] | tuple[Field, ...], outputs: list[Field] | tuple[Field, ...] = (), **kw: Any
    ) -> Contract:
        """A contract with field numbers assigned (1, 2, ... in order) where they are 0."""
        return cls(
            inputs=_numbered(inputs, kw.get("reserved_inputs", ())),
            outputs=_numbered(outputs, kw.get("reserved_outputs", ())),
            **kw,
        )

    def input(self, name: str) -> Field:
        for f in self.inputs:
            if f.name == name:
                return f
        raise ContractError(f"no input field {name!r}")

    def output(self, name: str) -> Field:
        for f in self.outputs:
            if f.name == name:
                return f
        raise ContractError(f"no output field {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contract:
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise ContractError(f"invalid contract: {exc}") from exc


def format_shape(shape: tuple[int, ...]) -> str:
    """A per-row shape as text: ``(64,)``, ``(?, 3)`` (``?`` = variable), ``()`` for a scalar."""
    dims = ", ".join("?" if d == -1 else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


MAX_FIELD_NUMBER = (1 << 20) - 1
"""Contract field numbers stay below 2**20; protobuf companion fields use numbers above (see proto.py)."""


def _check_numbers(side: str, fields: tuple[Field, ...], reserved: tuple[int, ...]) -> None:
    seen: dict[int, str] = {}
    for f in fields:
        if not f.number:
            continue
        if f.number < 0 or f.number > MAX_FIELD_NUMBER or 19000 <= f.number <= 19999:
            raise ContractError(
                f"{side} field {f.name!r} has invalid number {f.number} "
                f"(1..{MAX_FIELD_NUMBER}, not 19000-19999)"
            )
        if f.number in seen:
            raise ContractError(f"{side} fields {seen[f.number]!r} and {f.name!r} share number {f.number}")
        if f.number in reserved:
            raise ContractError(f"{side} field {f.name!r} uses reserved number {f.number}")
        seen[f.number] = f.name


def _numbered(fields: list[Field] | tuple[Field, ...], reserved: tuple[int, ...] = ()) -> tuple[Field, ...]:
    used = {f.number for f in fields if f.number} | set(reserved)
    nxt = 1
    out = []
    for f in fields:
        if f.number:
            out.append(f)
            continue
        while nxt in used:
            nxt += 1
        used.add(nxt)
        out.append(f.model_copy(update={"number": nxt}))
    return tuple(out)
