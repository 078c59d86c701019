"""The fast way from JSON numbers to a numeric column: typed C conversion instead of numpy's dtype discovery.

``np.asarray(values)`` (what :mod:`.validate` does, then checks the dtype it found) looks at every value to
choose a dtype, then converts: for 100 rows of 64 floats that discovery costs about as much as the
conversion. :func:`json_numbers` packs each innermost list with ``struct`` (``d`` / ``q``) instead, which
takes a Python float, int or bool and refuses anything else (a string, null, a list, an object), and
returns None whenever the result might not be exactly what the exact path would give, so that the exact
path then decides (and names the bad value):

- values of a float field: ints and floats alike become float64 (the exact path: int64 or float64, then
  the same cast); any magnitude of 2**53 or more (or NaN/inf) -> None, since an int that large may be out
  of int64 (the exact path refuses it as an object) or rounded twice on the way to float32;
- values of an int field: ints (and bools) only, within int64 (a float or larger int -> None), then
  narrowed by the same range check;
- bools convert as 1/0, as the exact path converts a bool array (or bools among numbers).

The values must be JSON values (what ``orjson.loads``/``json.loads`` return: dict, list, str, int, float,
bool, None): a Python object with ``__float__`` (a ``Decimal``) would be converted here and refused there.
Only lists of lists, every level of one length, are converted (a field's per-row shape of any rank); a
tuple, an array or a ragged row -> None.
"""

from __future__ import annotations

import math
import struct
from itertools import chain, starmap
from typing import Any

import numpy as np

from modelrunner.contract.types import DType, Field

__all__ = ["json_flat", "json_numbers"]

_EXACT = float(2**53)
"""Every integer of a smaller magnitude is exactly a float64."""

_min, _max = np.minimum.reduce, np.maximum.reduce  # arr.min() without its Python frame

_CODE = {DType.FLOAT64: "d", DType.FLOAT32: "d", **{d: "q" for d in DType if d.kind in "iu"}}
"""Dtypes converted here, and the struct format they are packed as: an int field's column is read as int64
(and then narrowed, as the exact path narrows its int64 array). Not float16: the exact path casts an int64
array to float16 without an overflow check (65520 -> inf) but a float64 one with it."""

_DTYPE = {"d": np.dtype("=f8"), "q": np.dtype("=i8")}  # struct's native formats: native order, 8 bytes

MIN_VALUES = 384
"""Fewer values are left to the exact path: ``np.asarray`` of a few values is cheaper than this path's fixed
cost (~3 µs); at 384 they cost the same for rows of 4 values, and from 512 of rows of 64 this is faster."""

_STRUCTS: dict[tuple[str, int], struct.Struct] = {}


def _packer(code: str, size: int) -> struct.Struct:
    s = _STRUCTS.get((code, size))
    if s is None:
        if len(_STRUCTS) >= 256:
            _STRUCTS.clear()
        s = _STRUCTS[code, size] = struct.Struct(f"{size}{code}")
    return s


def json_numbers(values: Any, field: Field) -> np.ndarray | None:
    """``values`` (one JSON value per row) as a float64 or int64 array of shape ``(n, *field.shape)``, or
    None when this cannot prove the exact path would give the same (see the module docstring)."""
    code = _CODE.get(field.dtype)
    shape = field.shape
    if code is None or type(values) is not list:
        return None
    if -1 not in shape and len(values) * math.prod(shape) < MIN_VALUES:
        return None  # (a 1-row request: no dims walked)
    dims, level = _dims(values, shape)
    return None if level is None or math.prod(dims) < MIN_VALUES else _pack(code, dims, level)


def json_flat(values: Any, dtype: DType) -> np.ndarray | None:
    """A flat list of JSON numbers (a V2 tensor's ``data``) as a 1-D float64 or int64 array, or None (a
    nested list, or anything :func:`json_numbers` would not convert)."""
    code = _CODE.get(dtype)
    if code is None or type(values) is not list or len(values) < MIN_VALUES:
        return None
    return _pack(code, [len(values)], values)


def _pack(code: str, dims: list[int], level: list[Any]) -> np.ndarray | None:
    """The innermost lists of ``level`` (``level`` itself when ``dims`` is 1-D) packed into one array."""
    if 0 in dims:
        return None  # no values: the exact path gives them its own dtype (float64 for [[], []])
    try:
        if len(dims) == 1:
            buf = bytearray(_packer(code, dims[0]).pack(*level))
        else:  # one C conversion per innermost list, joined into one (writable) buffer
            buf = bytearray().join(starmap(_packer(code, dims[-1]).pack, level))
    except (struct.error, TypeError, OverflowError, ValueError):
        return None  # a value that is not a number (or an int out of int64): the exact path names it
    arr = np.frombuffer(buf, dtype=_DTYPE[code]).reshape(dims)
    if code == "d" and not (_min(arr, None) > -_EXACT and _max(arr, None) < _EXACT):
        return None  # a huge int (or NaN, inf, a float of 2**53 or more): the exact path decides
    return arr


def _dims(values: list[Any], shape: tuple[int, ...]) -> tuple[list[int], list[Any] | None]:
    """The array's dimensions and the list of innermost lists (``values`` itself for a scalar per row;
    None when some level is not all lists of one length matching ``shape``)."""
    dims = [len(values)]
    level = values
    for depth, want in enumerate(shape):
        if set(map(type, level)) != {list}:
            return dims, None
        lengths = set(map(len, level))
        if len(lengths) != 1:
            return dims, None
        (size,) = lengths
        if want not in (-1, size):
            return dims, None
        dims.append(size)
        if depth < len(shape) - 1:
            level = list(chain.from_iterable(level))
    return dims, level
