"""The installed package's version (what ``/v2``, gRPC's ``ServerMetadata`` and the OpenAPI document say)."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def package_version() -> str:
    """``modelrunner``'s distribution version, ``0+unknown`` when it is not installed (a bare checkout)."""
    try:
        return metadata.version("modelrunner")
    except metadata.PackageNotFoundError:
        return "0+unknown"
