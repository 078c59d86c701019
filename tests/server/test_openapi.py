"""The served OpenAPI document (server/openapi.py) tells the truth: schemathesis sends every operation valid
and invalid requests generated from ``/openapi.json`` of a real served registry (digits models, the default
loopback setup) and checks each answer: never a 5xx, status, content type and body as documented."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from support.server_helpers import Stack

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 5
"""Per operation and generation mode (valid, invalid): ~30 operations, the whole run in ~30 s on one core."""
SERVED = "digits"


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]


def _modes(operation: Any, modes: Any) -> list[tuple[Any, bool]]:
    """``(generation mode, pinned)``: valid requests; invalid ones where something can be invalid, a body or
    a query parameter (any string is a valid path parameter: generating "invalid" ones only burns time);
    and, for reads and inference, valid ones to the served endpoint (``pinned``), so the data plane gets
    bodies, not only 404s. Changes (PUT, DELETE, load, ...) get random names: the endpoint stays served."""
    definition = operation.definition.raw
    queries = [p for p in definition.get("parameters", []) if p.get("in") == "query"]
    invalid = "requestBody" in definition or bool(queries)
    safe = operation.method.upper() == "GET" or operation.path.endswith(("/predict", "/infer"))
    pinned = safe and "{name}" in operation.path
    out = [(modes.POSITIVE, False), (modes.POSITIVE, True)] if pinned else [(modes.POSITIVE, False)]
    return out + [(modes.NEGATIVE, pin) for _, pin in out] if invalid else out


def test_the_document_declares_our_errors_and_no_swagger_ui(open_stack: Stack) -> None:
    doc = open_stack.anon.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"] and '"detail"' not in str(doc)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code in ("4XX", "5XX"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("V2Error" if path.startswith("/v2") else "/Error"), (method, path)
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    proto = doc["paths"]["/v1/endpoints/{name}/contract.proto"]["get"]["responses"]["200"]["content"]
    assert list(proto) == ["text/plain"]
    predict = doc["paths"]["/v1/endpoints/{name}/predict"]["post"]["requestBody"]["content"]
    assert {"instances", "inputs"} <= set(str(predict["application/json"]["schema"]).split("'"))
    assert open_stack.anon.get("/docs").status_code == 404  # Swagger UI needs a CDN: blank offline
    assert open_stack.anon.get("/redoc").status_code == 404
    r = open_stack.anon.get("/admin/workers", params={"alive_within_s": "x"})
    assert r.status_code == 422 and set(r.json()["error"]) >= {"code", "message", "field"}


def _fuzz(operation: Any, mode: Any, pinned: bool, url: str, failures: list[str]) -> None:
    """Send ``operation`` EXAMPLES generated requests; a failed check is appended to ``failures``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    checks = _checks()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if pinned:
            case.path_parameters["name"] = SERVED
        response = case.call(base_url=url, timeout=30)  # the server must answer each request: no hang
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # every failure is collected, then reported
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{_titles(exc)} {response.text[:200]!r}"
            )

    with contextlib.suppress(Unsatisfiable):  # an operation with nothing to get wrong: no invalid request
        run()


def _titles(exc: BaseException) -> str:
    """The failed checks of a schemathesis failure (group): 'Response violates schema', ..."""
    found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return "; ".join(str(getattr(e, "title", "") or e).splitlines()[0] for e in found)


def test_every_operation_answers_as_documented(open_stack: Stack) -> None:
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{open_stack.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        for mode, pinned in _modes(operation, GenerationMode):
            _fuzz(operation, mode, pinned, open_stack.url, failures)
    assert not failures, "\n".join(sorted(set(failures)))
    assert open_stack.anon.get("/readyz").status_code == 200  # the served endpoint survived the run
