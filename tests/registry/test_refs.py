from __future__ import annotations

import pytest

from modelrunner.errors import InvalidArgument
from modelrunner.registry.refs import LATEST, Ref, check_alias, check_name, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digits", Ref("digits", alias=LATEST)),
        ("digits@latest", Ref("digits", alias=LATEST)),
        ("digits@3", Ref("digits", version=3)),
        ("digits@production", Ref("digits", alias="production")),
        ("my-model.v2_x@canary-1", Ref("my-model.v2_x", alias="canary-1")),
        ("  digits@12  ", Ref("digits", version=12)),
    ],
)
def test_parse_ref_grammar(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


def test_ref_str_round_trips() -> None:
    for text in ("digits@3", "digits@production", "digits@latest"):
        assert str(parse_ref(text)) == text
    assert str(parse_ref("digits")) == "digits@latest"
    assert parse_ref("digits").is_latest and not parse_ref("digits@3").is_latest


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected name"),
        ("@3", "bad model name"),
        ("digits@", "version number or an alias"),
        ("digits@0", "versions start at 1"),
        ("digits@-1", "version number or an alias"),
        ("digits@3@4", "version number or an alias"),
        ("dig its", "bad model name"),
        ("digits@prod uction", "version number or an alias"),
        ("../etc@1", "bad model name"),
    ],
)
def test_parse_ref_errors_are_one_line_invalid_argument(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_ref(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_check_name_and_alias() -> None:
    assert check_name("digits") == "digits"
    assert check_alias("production") == "production"
    for bad in ("", "a@b", "x" * 129, "-lead", "a/b"):
        with pytest.raises(InvalidArgument):
            check_name(bad)
    for bad in ("latest", "3", "1abc", "", "a b"):
        with pytest.raises(InvalidArgument):
            check_alias(bad)
