"""The public surface of ``import modelrunner``: exported names, lazy Registry, a cheap import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import modelrunner as mr

EXPECTED = {
    "save_model",
    "load_model",
    "open_bundle",
    "Bundle",
    "Manifest",
    "Predictor",
    "Contract",
    "Field",
    "DType",
    "Registry",
    "ModelrunnerError",
    "InvalidArgument",
    "ContractError",
    "ValidationError",
    "BundleError",
    "FlavorError",
    "RequirementError",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "IncompatibleContract",
    "SwapFailed",
    "MissingExtra",
    "Unavailable",
    "StorageError",
    "Unauthenticated",
    "DeadlineExceeded",
    "__version__",
    "Client",
    "AsyncClient",
}


def test_exported_names() -> None:
    assert set(mr.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(mr, name) is not None


def test_registry_is_lazy_and_real() -> None:
    from modelrunner.registry import Registry

    assert mr.Registry is Registry


def test_client_is_lazy_and_real() -> None:
    from modelrunner.client import AsyncClient, Client

    assert mr.Client is Client
    assert mr.AsyncClient is AsyncClient


def test_import_is_cheap() -> None:
    heavy = ["sklearn", "xgboost", "lightgbm", "onnxruntime", "pandas", "fastapi", "sqlalchemy", "grpc"]
    code = f"import modelrunner, sys; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        mr.no_such_name  # noqa: B018
