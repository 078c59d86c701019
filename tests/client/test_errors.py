"""HTTP error answers -> the modelrunner error tree (the shapes server/wire.py and FastAPI render)."""

from __future__ import annotations

import modelrunner as mr
from modelrunner.client.errors import error_for
from modelrunner.errors import ResourceExhausted


def test_native_error_body_keeps_code_message_and_field() -> None:
    body = {
        "error": {"code": "invalid_argument", "message": "input 'x': bad", "field": "x", "expected": "(4,)"}
    }
    exc = error_for(422, body, "POST", "/v1/endpoints/e/predict")
    assert isinstance(exc, mr.ValidationError) and exc.field == "x" and str(exc) == "input 'x': bad"
    assert exc.details["expected"] == "(4,)"
    assert type(error_for(404, {"error": {"code": "not_found", "message": "no"}}, "GET", "/")) is mr.NotFound


def test_status_decides_without_a_code_and_fastapi_detail_names_the_field() -> None:
    assert isinstance(error_for(503, None, "GET", "/x"), mr.Unavailable)
    assert "GET /x: HTTP 503" in str(error_for(503, None, "GET", "/x"))
    assert isinstance(error_for(413, {"error": "too big"}, "POST", "/v2/models/m/infer"), ResourceExhausted)
    detail = {"detail": [{"loc": ["body", "timeout_s"], "msg": "Input should be greater than 0"}]}
    exc = error_for(422, detail, "PUT", "/admin/endpoints/e")
    assert isinstance(exc, mr.ValidationError) and exc.field == "timeout_s" and "greater than 0" in str(exc)
    assert (
        type(error_for(500, {"error": {"code": "internal", "message": "boom"}}, "GET", "/"))
        is mr.ModelrunnerError
    )


def test_incompatible_contract_keeps_its_reasons() -> None:
    body = {
        "error": {"code": "failed_precondition", "message": "breaks clients", "reasons": ["input x removed"]}
    }
    exc = error_for(409, body, "PUT", "/admin/endpoints/e")
    assert isinstance(exc, mr.IncompatibleContract) and exc.reasons == ["input x removed"]
