"""Pipeline specs: the YAML file a user writes, parsed into :class:`PipelineSpec`.

.. code-block:: yaml

    name: digits-ocr
    input:  {image: bytes}
    steps:
      decode:    {transform: image.decode_grayscale, inputs: {data: $input.image}}
      segment:   {model: digit-segmenter@production, inputs: {image: decode.image}}
      recognize: {model: digit-recognizer@production, inputs: {input: segment.crops}, map: true}
      assemble:  {transform: text.join_labels, inputs: {labels: recognize.label, boxes: segment.boxes}}
    output: {text: assemble.text, boxes: segment.boxes, confidence: recognize.proba}

A step is exactly one of ``model`` (a registry ref), ``transform`` (a built-in) or ``bundle`` (a bundle
folder, relative to the spec file). An edge source is ``$input.<field>`` or ``<step>.<field>``. Types are
``dtype`` or ``dtype[d1,d2]`` with ``?`` for a variable size, or ``{dtype:, shape:, description:}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from modelrunner.contract import DType
from modelrunner.contract import Field as ContractField
from modelrunner.errors import InvalidArgument, PipelineError
from modelrunner.registry.refs import check_name, parse_ref

INPUT = "$input"
STEP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
TYPE_RE = re.compile(r"^\s*([a-z0-9]+)\s*(?:\[\s*([^\]]*)\])?\s*$")
SPEC_FILE = "pipeline.yaml"


@dataclass(frozen=True)
class Source:
    """Where an edge starts: a pipeline input (``step is None``) or a step's output field."""

    step: str | None
    field: str

    def __str__(self) -> str:
        return f"{INPUT}.{self.field}" if self.step is None else f"{self.step}.{self.field}"


def parse_source(text: str) -> Source:
    """``$input.image`` or ``segment.crops`` -> :class:`Source`; PipelineError otherwise."""
    head, dot, field = str(text).strip().rpartition(".")
    if not dot or not head or not field.isidentifier():
        raise PipelineError(f"bad edge source {text!r}: expected $input.<field> or <step>.<field>")
    if head == INPUT:
        return Source(None, field)
    if not STEP_RE.match(head):
        raise PipelineError(f"bad edge source {text!r}: {head!r} is not a step name")
    return Source(head, field)


def parse_type(name: str, value: Any) -> ContractField:
    """A pipeline input declaration (``bytes``, ``float32[?,64]`` or a mapping) -> a contract Field."""
    if not str(name).isidentifier():
        raise PipelineError(f"input {name!r}: not a valid field name (letters, digits, _)", field=str(name))
    if isinstance(value, dict):
        data = dict(value)
        shape = data.get("shape", ())
        text = f"{data.get('dtype', '')}[{','.join(str(d) for d in shape)}]" if shape else data.get("dtype")
        base = parse_type(name, text)
        return base.model_copy(
            update={
                "description": str(data.get("description", "")),
                "optional": bool(data.get("optional", False)),
            }
        )
    match = TYPE_RE.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise PipelineError(
            f"input {name!r}: bad type {value!r}: expected e.g. bytes or float32[?,64]", field=name
        )
    dtype_text, dims_text = match.groups()
    try:
        dtype = DType(dtype_text)
        dims = [d.strip() for d in dims_text.split(",")] if dims_text and dims_text.strip() else []
        shape = tuple(-1 if d in ("?", "-1") else int(d) for d in dims)
        return ContractField(name=name, dtype=dtype, shape=shape)
    except ValueError as exc:
        known = ", ".join(d.value for d in DType)
        raise PipelineError(f"input {name!r}: bad type {value!r} (dtypes: {known})", field=name) from exc


class StepSpec(BaseModel):
    """One step: what runs (model / transform / bundle), its input edges, and whether it maps over lists."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    model: str | None = None
    transform: str | None = None
    bundle: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    map: bool = False
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        kinds = [k for k in ("model", "transform", "bundle") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a step needs exactly one of model:, transform: or bundle:")
        if self.model:
            try:
                parse_ref(self.model)
            except InvalidArgument as exc:
                raise ValueError(str(exc)) from exc
        return self

    @property
    def kind(self) -> str:
        return "model" if self.model else "transform" if self.transform else "bundle"

    @property
    def target(self) -> str:
        return str(self.model or self.transform or self.bundle)

    def sources(self) -> dict[str, Source]:
        return {name: parse_source(src) for name, src in self.inputs.items()}


class PipelineSpec(BaseModel):
    """A parsed pipeline file. ``steps`` keeps the file's order."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    description: str = ""
    input: dict[str, Any]
    steps: dict[str, StepSpec]
    output: dict[str, str]
    example: dict[str, str] = Field(default_factory=dict)  # input field -> file (relative to the spec)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            return check_name(v)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("steps")
    @classmethod
    def _step_names(cls, v: dict[str, StepSpec]) -> dict[str, StepSpec]:
        if not v:
            raise ValueError("a pipeline needs at least one step")
        for name in v:
            if not STEP_RE.match(name) or name == INPUT:
                raise ValueError(f"bad step name {name!r}: use letters, digits, '_' or '-'")
        return v

    def input_fields(self) -> tuple[ContractField, ...]:
        return tuple(parse_type(name, value) for name, value in self.input.items())

    def output_sources(self) -> dict[str, Source]:
        return {name: parse_source(src) for name, src in self.output.items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False)


def parse_spec(data: Any, origin: str = "pipeline") -> PipelineSpec:
    """Validate a loaded YAML document; PipelineError with one line naming the place otherwise."""
    if not isinstance(data, dict):
        raise PipelineError(f"{origin}: a pipeline file must be a mapping with name, input, steps, output")
    try:
        spec = PipelineSpec.model_validate(data)
    except PydanticError as exc:
        step, field = _where(exc)
        raise PipelineError(f"{origin}: {_first_error(exc)}", step=step, field=field) from exc
    for name in spec.input:
        parse_type(name, spec.input[name])
    for step, s in spec.steps.items():
        for field, src in s.inputs.items():
            try:
                parse_source(src)
            except PipelineError as exc:
                raise PipelineError(f"step {step!r} input {field!r}: {exc}", step=step, field=field) from exc
    return spec


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and parse a pipeline YAML file."""
    p = Path(path)
    if not p.is_file():
        raise PipelineError(f"no pipeline file at {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{p}: not valid YAML ({exc.__class__.__name__})") from exc
    return parse_spec(data, origin=str(p))


def _first_error(exc: PydanticError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}" if loc else msg


def _where(exc: PydanticError) -> tuple[str | None, str | None]:
    loc = [str(x) for x in exc.errors()[0].get("loc", ())]
    if len(loc) >= 2 and loc[0] == "steps":
        return loc[1], (loc[3] if len(loc) >= 4 and loc[2] == "inputs" else None)
    return None, None
