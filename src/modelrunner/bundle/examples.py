"""The bundle's example input (``example.npz``): written deterministically, read without pickle."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from modelrunner.contract import Contract, DType
from modelrunner.errors import BundleError

Columns = dict[str, np.ndarray]
EXAMPLE_ROWS = 5
_EPOCH = (1980, 1, 1, 0, 0, 0)


def head(columns: Mapping[str, np.ndarray], rows: int = EXAMPLE_ROWS) -> Columns:
    return {name: np.asarray(arr)[:rows] for name, arr in columns.items()}


def write_example(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    """An ``.npz`` with fixed timestamps and sorted entries; strings stored as unicode, bytes as ``S``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(columns):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, _storable(name, columns[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def _storable(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype != object:
        return arr
    if arr.size and all(isinstance(v, bytes) for v in arr.flat):
        return arr.astype(bytes)
    try:
        return arr.astype(str)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"example column {name!r} cannot be stored: {exc}") from exc


def read_example(path: Path, contract: Contract) -> Columns:
    """Load ``example.npz``; string and bytes columns come back as ``object`` arrays."""
    try:
        with np.load(path, allow_pickle=False) as data:
            columns = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot read example input {path.name}: {exc}") from exc
    for f in contract.inputs:
        if f.name in columns and f.dtype in (DType.STRING, DType.BYTES):
            columns[f.name] = columns[f.name].astype(object)
    return columns
