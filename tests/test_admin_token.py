"""admin_token.check_token: the server's admin token, checked for /admin and the catalog's sign-in."""

from __future__ import annotations

import pytest

from modelrunner.admin_token import check_token
from modelrunner.errors import Unauthenticated


def test_no_token_configured_lets_everyone_in() -> None:
    check_token(None, None, None)
    check_token("", "Basic", "whatever")


def test_the_right_bearer_token_passes_any_case_of_scheme() -> None:
    check_token("s3cret", "Bearer", "s3cret")
    check_token("s3cret", "bearer", "s3cret")


@pytest.mark.parametrize(
    ("scheme", "given", "message"),
    [
        (None, None, "needs 'Authorization: Bearer <admin token>'"),
        ("Basic", "s3cret", "needs 'Authorization: Bearer <admin token>'"),
        ("Bearer", "wrong", "wrong admin token"),
    ],
)
def test_a_missing_or_wrong_token_is_refused(scheme: str | None, given: str | None, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        check_token("s3cret", scheme, given)
