"""Contract compatibility (may a new version replace an old one under live clients?) and field numbering.

The rules (docs/contracts.md) say a new version may accept more and return more:

inputs
  * a new input must be optional (old clients do not send it); an optional input may not become required;
  * an input may not be removed (old clients still send it, and unknown inputs are rejected);
  * dtype: the new dtype must accept every value of the old one with the same protobuf wire encoding
    (:meth:`DType.accepts`: bool -> int, int widening, uint -> wider uint/int, float widening);
  * shape: same rank, and each dimension equal to the old one or variable (-1) in the new one;
  * categories: a category input may add categories or drop its declared set (accept any string), never
    remove one; category -> string is safe, string -> category only without a declared set; a timestamp
    stays a timestamp (an int64 of microseconds is the same wire but not the same meaning).
outputs
  * an output may not be dropped;
  * dtype: the old dtype must accept every value of the new one (a narrowing or the same); a category
    output may remove categories, not add them;
  * shape: same rank, and each dimension equal to the old one, or variable in the old one.
both
  * a field keeps its number; a number is never reused for another field or taken from the reserved ones.
"""

from __future__ import annotations

from modelrunner.contract.types import Contract, DType, Field, format_shape

__all__ = ["bump_version", "check_compatible", "renumber"]


def check_compatible(old: Contract, new: Contract) -> list[str]:
    """Reasons a swap from ``old`` to ``new`` would break a client; empty when it breaks none."""
    reasons: list[str] = []
    old_in = {f.name: f for f in old.inputs}
    for f in new.inputs:
        before = old_in.get(f.name)
        if before is None:
            if not f.optional:
                reasons.append(
                    f"input {f.name!r} is new and required: old clients do not send it "
                    "(make it optional with a default)"
                )
        else:
            reasons += _input_change(before, f)
    new_in = {f.name for f in new.inputs}
    reasons += [
        f"input {f.name!r} was removed: old clients still send it" for f in old.inputs if f.name not in new_in
    ]
    new_out = {f.name: f for f in new.outputs}
    for f in old.outputs:
        after = new_out.get(f.name)
        if after is None:
            reasons.append(f"output {f.name!r} was dropped: old clients read it")
        else:
            reasons += _output_change(f, after)
    reasons += _number_reuse("input", old.inputs, old.reserved_inputs, new.inputs)
    reasons += _number_reuse("output", old.outputs, old.reserved_outputs, new.outputs)
    return reasons


def _input_change(old: Field, new: Field) -> list[str]:
    out = []
    what = f"input {old.name!r}"
    if old.optional and not new.optional:
        out.append(f"{what} became required: old clients may omit it")
    if not _accepts(new, old):
        out.append(
            f"{what} dtype {old.dtype.value} -> {new.dtype.value} does not accept every "
            f"{old.dtype.value} value old clients send"
        )
    if not _shape_fits(old.shape, new.shape):
        out.append(f"{what} shape {_shape(old)} -> {_shape(new)} rejects rows old clients send")
    return out + _number_change(what, old, new)


def _output_change(old: Field, new: Field) -> list[str]:
    out = []
    what = f"output {old.name!r}"
    if not _accepts(old, new):
        out.append(
            f"{what} dtype {old.dtype.value} -> {new.dtype.value}: old clients expecting "
            f"{old.dtype.value} cannot hold every {new.dtype.value} value"
        )
    if not _shape_fits(new.shape, old.shape):
        out.append(f"{what} shape {_shape(old)} -> {_shape(new)} returns rows old clients do not expect")
    return out + _number_change(what, old, new)


def _accepts(wide: Field, narrow: Field) -> bool:
    """Every value of ``narrow`` is a value of ``wide``: the dtypes (DType.accepts), then the categories."""
    if wide.dtype is DType.CATEGORY and narrow.dtype in (DType.STRING, DType.CATEGORY):
        if not wide.categories:
            return True  # a category without a declared set holds any string
        return bool(narrow.categories) and set(narrow.categories) <= set(wide.categories)
    return wide.dtype.accepts(narrow.dtype)


def _shape_fits(rows: tuple[int, ...], accepted: tuple[int, ...]) -> bool:
    """True when every row of per-row shape ``rows`` fits per-row shape ``accepted``."""
    return len(rows) == len(accepted) and all(a in (-1, r) for r, a in zip(rows, accepted, strict=True))


def _shape(f: Field) -> str:
    return format_shape(f.shape)


def _number_change(what: str, old: Field, new: Field) -> list[str]:
    if old.number and new.number and old.number != new.number:
        return [f"{what} changed field number {old.number} -> {new.number}: protobuf clients use the old one"]
    return []


def _number_reuse(
    side: str, old: tuple[Field, ...], reserved: tuple[int, ...], new: tuple[Field, ...]
) -> list[str]:
    by_number = {f.number: f.name for f in old if f.number}
    out = []
    for f in new:
        if f.number in reserved:
            out.append(f"{side} {f.name!r} takes reserved number {f.number} (a removed field's)")
        elif f.number in by_number and by_number[f.number] != f.name:
            out.append(f"{side} {f.name!r} reuses number {f.number} of old {side} {by_number[f.number]!r}")
    return out


def renumber(old: Contract | None, new: Contract) -> Contract:
    """``new`` numbered against ``old``: same-named fields keep their numbers, new fields get numbers above
    every number used or reserved so far, removed fields' numbers are reserved (old reservations kept).

    A same-named field whose protobuf wire type changed (e.g. int -> float, scalar -> array) gets a new
    number too, and its old number is reserved, so old stubs can never send it garbage.
    """
    if old is None:
        return Contract.build(
            new.inputs,
            new.outputs,
            version=new.version,
            reserved_inputs=new.reserved_inputs,
            reserved_outputs=new.reserved_outputs,
        )
    inputs, res_in = _renumber_side(old.inputs, old.reserved_inputs, new.inputs)
    outputs, res_out = _renumber_side(old.outputs, old.reserved_outputs, new.outputs)
    return new.model_copy(
        update={
            "inputs": inputs,
            "outputs": outputs,
            "version": max(old.version, new.version),
            "reserved_inputs": res_in,
            "reserved_outputs": res_out,
        }
    )


def _renumber_side(
    old: tuple[Field, ...], reserved: tuple[int, ...], new: tuple[Field, ...]
) -> tuple[tuple[Field, ...], tuple[int, ...]]:
    old_by_name = {f.name: f for f in old}
    kept = {
        f.name: old_by_name[f.name].number
        for f in new
        if f.name in old_by_name
        and old_by_name[f.name].number
        and _wire_key(old_by_name[f.name]) == _wire_key(f)
    }
    used = {f.number for f in old} | set(reserved)
    nxt = max(used, default=0) + 1
    out = []
    for f in new:
        number = kept.get(f.name)
        if number is None:
            number, nxt = nxt, nxt + 1
        out.append(f if f.number == number else f.model_copy(update={"number": number}))
    taken = {f.number for f in out}
    res = sorted((set(reserved) | {f.number for f in old if f.number}) - taken)
    return tuple(out), tuple(res)


def _wire_key(f: Field) -> tuple[str, bool, bool]:
    """What decides a field's protobuf wire encoding (see proto.py)."""
    return (
        f.dtype.proto_type if f.dtype.kind not in "biu" else "varint",
        bool(f.shape),
        sum(d == -1 for d in f.shape) > 1,
    )


def bump_version(old: Contract, new: Contract) -> Contract:
    """``new`` renumbered against ``old`` with version ``old.version + 1``: a forced, breaking change."""
    return renumber(old, new).model_copy(update={"version": old.version + 1})
