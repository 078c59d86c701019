"""One error tree for modelrunner, with protocol-neutral codes.

    ModelrunnerError                 code="internal"
    ├── InvalidArgument              code="invalid_argument"     (HTTP 400 / 422, gRPC INVALID_ARGUMENT)
    │   ├── ContractError            a contract or field definition is wrong
    │   ├── ValidationError          a request/batch does not fit a contract (names the field)
    │   ├── BundleError              not a bundle, corrupt archive, unsafe paths, bad manifest
    │   ├── FlavorError              unknown flavor / object no flavor can save
    │   ├── RequirementError         a gate / requirement string that does not parse
    │   ├── PipelineError            a pipeline spec or graph is wrong (names the step and field)
    │   └── UnsupportedMediaType     code="unsupported_media_type" a body of a type the route does not read
    │                                (HTTP 415, gRPC INVALID_ARGUMENT)
    ├── NotFound                     code="not_found"            (HTTP 404, gRPC NOT_FOUND)
    ├── AlreadyExists                code="already_exists"       (HTTP 409, gRPC ALREADY_EXISTS)
    ├── FailedPrecondition           code="failed_precondition"  (HTTP 409, gRPC FAILED_PRECONDITION)
    │   ├── IncompatibleContract     a swap would break clients (carries the reasons)
    │   └── SwapFailed               load / warm-up failed; the old version keeps serving
    ├── MissingExtra                 code="failed_precondition"  an optional pip extra is not installed
    ├── Unavailable                  code="unavailable"          (HTTP 503, gRPC UNAVAILABLE)
    │   └── StorageError             the database or artifact store cannot be reached
    ├── Unauthenticated              code="unauthenticated"      (HTTP 401, gRPC UNAUTHENTICATED)
    ├── PermissionDenied             code="permission_denied"    (HTTP 403, gRPC PERMISSION_DENIED)
    ├── ResourceExhausted            code="resource_exhausted"   (HTTP 413, gRPC RESOURCE_EXHAUSTED)
    │   └── DiskFull                 a write ran out of disk space (nothing half-written is kept)
    └── DeadlineExceeded             code="deadline_exceeded"    (HTTP 504, gRPC DEADLINE_EXCEEDED)

The core raises these; protocol adapters (server/) map `code` to HTTP statuses and gRPC codes. Foreign
exceptions are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar


class ModelrunnerError(Exception):
    """Base of every error modelrunner raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ModelrunnerError):
    code = "invalid_argument"


class ContractError(InvalidArgument):
    """A contract or field definition is wrong."""


class ValidationError(InvalidArgument):
    """Input does not fit a contract. ``field`` names the offending field when known."""

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class BundleError(InvalidArgument):
    """Not a bundle, a corrupt or unsafe archive, or a bad manifest."""


class FlavorError(InvalidArgument):
    """Unknown flavor, or an object no flavor knows how to save."""


class RequirementError(InvalidArgument):
    """A requirement / gate expression that does not parse."""


class PipelineError(InvalidArgument):
    """A pipeline spec or graph is wrong: ``step`` and ``field`` name where; ``problems`` lists them all."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        field: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(message, step=step, field=field, problems=list(problems or [message]))
        self.step = step
        self.field = field
        self.problems = list(problems or [message])


class UnsupportedMediaType(InvalidArgument):
    """A request body of a media type the route does not read (``text/csv`` to predict); names the types it
    does."""

    code = "unsupported_media_type"


class NotFound(ModelrunnerError):
    code = "not_found"


class AlreadyExists(ModelrunnerError):
    code = "already_exists"


class FailedPrecondition(ModelrunnerError):
    code = "failed_precondition"


class IncompatibleContract(FailedPrecondition):
    """A swap would break clients; ``reasons`` lists why."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message, reasons=list(reasons or []))
        self.reasons = list(reasons or [])


class SwapFailed(FailedPrecondition):
    """Loading or warming up the new version failed; the old version keeps serving."""


class MissingExtra(FailedPrecondition):
    """An optional dependency is missing; the message names the pip extra."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"the '{extra}' extra is not installed (missing module '{module}'): "
            f"pip install 'modelrunner[{extra}]'",
            extra=extra,
        )
        self.extra = extra


class Unavailable(ModelrunnerError):
    code = "unavailable"


class StorageError(Unavailable):
    """The database or the artifact store cannot be reached or is inconsistent."""


class Unauthenticated(ModelrunnerError):
    code = "unauthenticated"


class PermissionDenied(ModelrunnerError):
    """Authenticated, but the token's role does not allow the call (the message names the role needed)."""

    code = "permission_denied"


class ResourceExhausted(ModelrunnerError):
    """A request is bigger than the server accepts (or another hard limit is hit)."""

    code = "resource_exhausted"


class DiskFull(ResourceExhausted):
    """A write ran out of space (ENOSPC, EDQUOT, EFBIG); what was half-written has been removed."""


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(exc: BaseException, what: str) -> DiskFull | None:
    """``DiskFull("disk full while writing <what>: No space left on device")`` for an out-of-space
    OSError (also when wrapped as the cause of another exception), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS:
            return DiskFull(f"disk full while writing {what}: {seen.strerror or 'No space left on device'}")
        seen = seen.__cause__ or seen.__context__
    return None


class DeadlineExceeded(ModelrunnerError):
    code = "deadline_exceeded"


HTTP_STATUS: dict[str, int] = {
    "internal": 500,
    "invalid_argument": 400,
    "unsupported_media_type": 415,
    "not_found": 404,
    "already_exists": 409,
    "failed_precondition": 409,
    "unavailable": 503,
    "unauthenticated": 401,
    "permission_denied": 403,
    "resource_exhausted": 413,
    "deadline_exceeded": 504,
}
"""Protocol-neutral code -> HTTP status; kept here as plain ints so the core imports no web framework."""


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingExtra` naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(extra, module) from exc


BY_CODE: dict[str, type[ModelrunnerError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unavailable,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        DeadlineExceeded,
    )
}
"""A protocol-neutral ``code`` -> the class that raises it (errors crossing a process or HTTP boundary)."""
