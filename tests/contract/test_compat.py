"""Compatibility rules (one test per rule, both directions) and field renumbering across versions."""

from __future__ import annotations

from typing import Any

import pytest

from modelrunner.contract import Contract, DType, Field, bump_version, check_compatible, renumber


def f(name: str, dtype: str = "float32", shape: tuple[int, ...] = (), **kw: Any) -> Field:
    return Field(name=name, dtype=DType(dtype), shape=shape, **kw)


def c(inputs: list[Field], outputs: list[Field] | None = None, **kw: Any) -> Contract:
    return Contract.build(inputs, outputs if outputs is not None else [f("y", "int64")], **kw)


BASE = c([f("x", shape=(4,)), f("k", "int32")], [f("y", "int64"), f("p", shape=(3,))])


def test_identical_contracts_are_compatible() -> None:
    assert check_compatible(BASE, BASE) == []


def test_new_optional_input_and_new_output_are_compatible() -> None:
    new = renumber(
        BASE, c([*BASE.inputs, f("t", optional=True, default=0.5)], [*BASE.outputs, f("extra", "string")])
    )
    assert check_compatible(BASE, new) == []


def test_new_required_input_breaks() -> None:
    new = renumber(BASE, c([*BASE.inputs, f("t")], list(BASE.outputs)))
    (reason,) = check_compatible(BASE, new)
    assert "input 't' is new and required" in reason


def test_optional_input_becoming_required_breaks() -> None:
    old = c([f("x"), f("t", optional=True)])
    new = c([f("x"), f("t")])
    assert check_compatible(old, new) == ["input 't' became required: old clients may omit it"]
    assert check_compatible(new, old) == []  # required -> optional accepts more


def test_removed_input_breaks() -> None:
    new = renumber(BASE, c([BASE.inputs[0]], list(BASE.outputs)))
    (reason,) = check_compatible(BASE, new)
    assert "input 'k' was removed" in reason


def test_dropped_output_breaks() -> None:
    new = renumber(BASE, c(list(BASE.inputs), [BASE.outputs[0]]))
    (reason,) = check_compatible(BASE, new)
    assert "output 'p' was dropped" in reason


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int32", "int64"),
        ("int8", "int16"),
        ("uint8", "uint16"),
        ("uint16", "int32"),
        ("uint32", "int64"),
        ("bool", "int8"),
        ("bool", "uint64"),
        ("float16", "float32"),
        ("float32", "float64"),
        ("int64", "int64"),
    ],
)
def test_input_dtype_widening_is_compatible(old: str, new: str) -> None:
    assert check_compatible(c([f("a", old)]), c([f("a", new)])) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int64", "int32"),
        ("float64", "float32"),
        ("int32", "uint32"),
        ("uint32", "int32"),
        ("uint64", "int64"),
        ("int32", "float64"),
        ("int8", "float32"),
        ("bool", "float32"),
        ("int8", "bool"),
        ("string", "bytes"),
        ("bytes", "string"),
        ("float32", "string"),
        ("string", "int64"),
    ],
)
def test_input_dtype_narrowing_or_kind_change_breaks(old: str, new: str) -> None:
    (reason,) = check_compatible(c([f("a", old)]), c([f("a", new)]))
    assert f"input 'a' dtype {old} -> {new}" in reason


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int64", "int32"),
        ("float64", "float32"),
        ("int64", "bool"),
        ("int64", "uint32"),
        ("float64", "float16"),
    ],
)
def test_output_dtype_narrowing_is_compatible(old: str, new: str) -> None:
    assert check_compatible(c([f("x")], [f("y", old)]), c([f("x")], [f("y", new)])) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int32", "int64"),
        ("float32", "float64"),
        ("int64", "float64"),
        ("uint64", "int64"),
        ("string", "bytes"),
    ],
)
def test_output_dtype_widening_breaks(old: str, new: str) -> None:
    (reason,) = check_compatible(c([f("x")], [f("y", old)]), c([f("x")], [f("y", new)]))
    assert f"output 'y' dtype {old} -> {new}" in reason


@pytest.mark.parametrize(
    ("old", "new"), [((4,), (-1,)), ((2, 3), (2, -1)), ((2, 3), (-1, -1)), ((-1,), (-1,))]
)
def test_input_shape_fixed_to_variable_is_compatible(old: tuple[int, ...], new: tuple[int, ...]) -> None:
    assert check_compatible(c([f("a", shape=old)]), c([f("a", shape=new)])) == []


@pytest.mark.parametrize(
    ("old", "new"), [((-1,), (4,)), ((4,), (5,)), ((4,), ()), ((), (1,)), ((4,), (4, 1))]
)
def test_input_shape_change_breaks(old: tuple[int, ...], new: tuple[int, ...]) -> None:
    (reason,) = check_compatible(c([f("a", shape=old)]), c([f("a", shape=new)]))
    assert "input 'a' shape" in reason and "rejects rows old clients send" in reason


def test_output_shape_variable_to_fixed_is_compatible_but_not_the_reverse() -> None:
    var = c([f("x")], [f("y", shape=(-1,))])
    fixed = c([f("x")], [f("y", shape=(3,))])
    assert check_compatible(var, fixed) == []
    (reason,) = check_compatible(fixed, var)
    assert "output 'y' shape (3,) -> (?,)" in reason


def test_changed_field_number_breaks() -> None:
    old = c([f("a"), f("b")])
    new = c([f("b"), f("a")])  # numbered by position: the numbers swap
    reasons = check_compatible(old, new)
    assert any("input 'a' changed field number 1 -> 2" in r for r in reasons)
    assert check_compatible(old, renumber(old, new)) == []


def test_reusing_a_reserved_or_foreign_number_breaks() -> None:
    old = c([f("a"), f("b", optional=True)], reserved_inputs=(7,))
    new = Contract(inputs=(f("a", number=1), f("z", optional=True, number=7)), outputs=old.outputs)
    assert any("takes reserved number 7" in r for r in check_compatible(old, new))
    new = Contract(inputs=(f("a", number=1), f("z", optional=True, number=2)), outputs=old.outputs)
    assert any("reuses number 2 of old input 'b'" in r for r in check_compatible(old, new))


def test_several_reasons_are_all_reported() -> None:
    new = renumber(BASE, c([f("x", "int8", shape=(4,)), f("new")], []))
    reasons = check_compatible(BASE, new)
    expected = [
        "input 'x' dtype",
        "input 'x' changed field number 1 -> 3",  # a new wire type: a new number
        "input 'new' is new",
        "input 'k' was removed",
        "output 'y' was dropped",
        "output 'p' was dropped",
    ]
    assert len(reasons) == len(expected)
    assert all(any(r.startswith(e) for r in reasons) for e in expected), reasons


def test_renumber_keeps_same_names_and_reserves_removed() -> None:
    v1 = c([f("a"), f("b"), f("c")], [f("y"), f("z")])
    v2 = renumber(v1, c([f("c"), f("d", optional=True), f("a")], [f("z"), f("w")]))
    assert {x.name: x.number for x in v2.inputs} == {"c": 3, "d": 4, "a": 1}
    assert v2.reserved_inputs == (2,)
    assert {x.name: x.number for x in v2.outputs} == {"z": 2, "w": 3}
    assert v2.reserved_outputs == (1,)
    # v3 brings "b" back: a removed number is never reused, the old reservation stays
    v3 = renumber(v2, c([f("a"), f("b", optional=True)], [f("z")]))
    assert {x.name: x.number for x in v3.inputs} == {"a": 1, "b": 5}
    assert v3.reserved_inputs == (2, 3, 4)
    assert v3.reserved_outputs == (1, 3)


def test_renumber_is_idempotent_and_keeps_version() -> None:
    v1 = c([f("a")], version=3)
    v2 = renumber(v1, c([f("a"), f("b", optional=True)]))
    assert renumber(v1, v2) == v2
    assert v2.version == 3


def test_renumber_gives_a_new_number_when_the_wire_type_changes() -> None:
    v1 = c([f("a", "int32"), f("b", "float32")])
    v2 = renumber(v1, c([f("a", "float32"), f("b", "float64")]))
    assert {x.name: x.number for x in v2.inputs} == {"a": 3, "b": 2}  # float32 -> float64: same wire type
    assert v2.reserved_inputs == (1,)


def test_renumber_without_old_numbers_in_order() -> None:
    v = renumber(None, Contract(inputs=(f("a"), f("b")), outputs=(f("y"),)))
    assert [x.number for x in v.inputs] == [1, 2] and v.outputs[0].number == 1


def test_bump_version_is_old_plus_one() -> None:
    v1 = c([f("a")], version=4)
    v2 = bump_version(v1, c([f("a", "string")]))
    assert v2.version == 5
    assert check_compatible(v1, v2)  # still breaking: bumping records it, it does not hide it


def test_dtype_accepts_table_matches_numpy_safe_casts_within_a_kind() -> None:
    import numpy as np

    for a in DType:
        for b in DType:
            if a.kind in "iuf" and b.kind in "iuf" and (a.kind == "f") == (b.kind == "f"):
                assert a.accepts(b) == bool(np.can_cast(b.numpy(), a.numpy(), "safe")), (a, b)


@pytest.mark.parametrize(
    ("old", "new", "side", "safe"),
    [
        (("a", "b"), ("a", "b", "c"), "input", True),  # a new category accepted
        (("a", "b"), ("a",), "input", False),  # old clients still send "b"
        (("a", "b"), (), "input", True),  # no declared set: any string
        (("a", "b"), ("a",), "output", True),  # fewer values returned
        (("a",), ("a", "b"), "output", False),  # "b" is new to old clients
    ],
)
def test_category_sets(old: tuple[str, ...], new: tuple[str, ...], side: str, safe: bool) -> None:
    def field(cats: tuple[str, ...]) -> Field:
        return f("k", "category", categories=cats)

    if side == "input":
        a, b = c([field(old)]), c([field(new)])
    else:
        a, b = c([f("x")], [field(old)]), c([f("x")], [field(new)])
    assert (check_compatible(a, b) == []) is safe, check_compatible(a, b)


def test_category_string_and_timestamp_changes() -> None:
    cat, text = f("k", "category", categories=("a",)), f("k", "string")
    assert check_compatible(c([cat]), c([text])) == []  # an input accepting any string: safe
    assert check_compatible(c([text]), c([cat]))  # old clients send strings out of the set
    assert check_compatible(c([text]), c([f("k", "category")])) == []
    assert check_compatible(c([f("t", "timestamp")]), c([f("t", "int64")]))  # same wire, not the same meaning
    assert check_compatible(c([f("t", "int64")]), c([f("t", "timestamp")]))
