"""modelrunner: reusable MLOps — bundles with typed contracts, a registry, a runner that hot-swaps live.

    import modelrunner as mr
    mr.save_model(clf, "bundles/digits-lr", sample=X[:5], license="MIT")
    model = mr.load_model("bundles/digits-lr")
    model.predict({"input": X})          # -> {"label": ..., "proba": ...}

Importing this package is cheap (the command line and every worker start with it): errors are imported at
once; bundles, contracts and the registry on first use of their names; no ML library until a flavor needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelrunner.errors import (
    AlreadyExists,
    BundleError,
    ContractError,
    DeadlineExceeded,
    FailedPrecondition,
    FlavorError,
    IncompatibleContract,
    InvalidArgument,
    MissingExtra,
    ModelrunnerError,
    NotFound,
    RequirementError,
    StorageError,
    SwapFailed,
    Unauthenticated,
    Unavailable,
    ValidationError,
)

if TYPE_CHECKING:
    from modelrunner.bundle import Bundle, Manifest, Predictor, load_model, open_bundle, save_model
    from modelrunner.client import AsyncClient, Client
    from modelrunner.contract import Contract, DType, Field
    from modelrunner.registry import Registry

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(
        ("Bundle", "Manifest", "Predictor", "load_model", "open_bundle", "save_model"), "modelrunner.bundle"
    ),
    **dict.fromkeys(("Contract", "DType", "Field"), "modelrunner.contract"),
    "Registry": "modelrunner.registry",
    **dict.fromkeys(("AsyncClient", "Client"), "modelrunner.client"),
}

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "Bundle",
    "BundleError",
    "Client",
    "Contract",
    "ContractError",
    "DType",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Field",
    "FlavorError",
    "IncompatibleContract",
    "InvalidArgument",
    "Manifest",
    "MissingExtra",
    "ModelrunnerError",
    "NotFound",
    "Predictor",
    "Registry",
    "RequirementError",
    "StorageError",
    "SwapFailed",
    "Unauthenticated",
    "Unavailable",
    "ValidationError",
    "__version__",
    "load_model",
    "open_bundle",
    "save_model",
]


def __getattr__(name: str) -> Any:
    """Lazy names (bundles, contracts, ``Registry``): imported on first access so ``import modelrunner``
    stays cheap."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modelrunner' has no attribute {name!r}")
