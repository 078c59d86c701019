"""``modelrunner import mlflow``: an MLflow model folder (``MLmodel``) -> a bundle.

Native flavors are preferred to ``python_function`` because they load without mlflow: ``onnx`` (the .onnx
file), ``sklearn`` (pickle or cloudpickle; skops when skops is installed), ``xgboost`` (its own format),
``lightgbm`` (a Booster file or a pickled sklearn-API model). A folder with only ``python_function`` is kept
whole inside a python-flavor bundle and served through ``mlflow.pyfunc`` (mlflow must be importable).

The signature becomes the input contract (see ``signature``), ``input_example.json`` the example input (the
outputs are derived by running the model on it, as ``save_model`` does), ``requirements.txt`` the bundle's
requirements; the run id, model uuid, MLflow version and ``metadata`` go to lineage and tags; ``MLmodel`` and
the environment files are copied into the bundle under ``mlflow/``.
"""

from __future__ import annotations

import importlib
import json
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelrunner.bundle.archive import ARCHIVE_SUFFIXES
from modelrunner.bundle.bundle import Bundle, save_model
from modelrunner.bundle.manifest import Lineage
from modelrunner.contract import Contract, Field
from modelrunner.errors import BundleError, FailedPrecondition, FlavorError, InvalidArgument, require
from modelrunner.onboarding import signature as sig

MLMODEL = "MLmodel"
NATIVE = ("onnx", "sklearn", "xgboost", "lightgbm")
SUPPORTED = (*NATIVE, "python_function")
ENV_FILES = ("MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml")


@dataclass(frozen=True)
class MlflowModel:
    """A parsed MLflow model folder."""

    path: Path
    spec: dict[str, Any]

    @property
    def flavors(self) -> dict[str, Any]:
        flavors = self.spec.get("flavors")
        return flavors if isinstance(flavors, dict) else {}

    def flavor(self) -> str:
        """The flavor used to import: the first native one, else python_function."""
        for name in SUPPORTED:
            if name in self.flavors:
                return name
        found = ", ".join(sorted(self.flavors)) or "none"
        raise FlavorError(
            f"{self.path}: unsupported MLflow flavor(s) {found}; supported: {', '.join(SUPPORTED)}"
        )

    def options(self, flavor: str) -> dict[str, Any]:
        opts = self.flavors.get(flavor)
        return opts if isinstance(opts, dict) else {}

    def file(self, rel: Any, what: str) -> Path:
        """A file of the folder named in MLmodel; refuses paths leaving the folder."""
        if not isinstance(rel, str) or not rel:
            raise BundleError(f"{self.path}: MLmodel names no {what} file")
        path = (self.path / rel).resolve()
        if not path.is_relative_to(self.path.resolve()) or not path.exists():
            raise BundleError(f"{self.path}: the {what} file {rel!r} named in MLmodel is missing")
        return path


def read_mlflow(directory: str | Path) -> MlflowModel:
    """Parse ``DIR/MLmodel``; one-line errors when DIR is not an MLflow model folder."""
    path = Path(directory)
    if not path.is_dir():
        raise InvalidArgument(f"{path} is not a folder (an MLflow model folder holds an MLmodel file)")
    mlmodel = path / MLMODEL
    if not mlmodel.is_file():
        raise InvalidArgument(f"{path} is not an MLflow model folder: no {MLMODEL} file")
    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mlmodel} is not valid YAML ({type(exc).__name__})") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise BundleError(f"{mlmodel} has no flavors: not an MLflow model")
    return MlflowModel(path, spec)


# --- loading the model object per flavor -----------------------------------------------------------


def _load_pickled(path: Path, fmt: str, opts: dict[str, Any]) -> Any:
    if fmt == "skops":
        skops_io = require("skops.io", "skops")
        return skops_io.load(path, trusted=opts.get("skops_trusted_types") or None)
    if fmt not in ("pickle", "cloudpickle"):
        raise FlavorError(f"unsupported MLflow serialization format {fmt!r} (pickle, cloudpickle, skops)")
    if fmt == "cloudpickle":
        require("cloudpickle", "sklearn")  # cloudpickled objects may reference its helpers
    with path.open("rb") as fh:
        return pickle.load(fh)  # noqa: S301 - importing a model runs its pickle, as MLflow's loader does


def _sklearn(model: MlflowModel) -> tuple[str, Any]:
    opts = model.options("sklearn")
    path = model.file(opts.get("pickled_model"), "pickled model")
    require("sklearn", "sklearn")
    return "sklearn", _load_pickled(path, str(opts.get("serialization_format", "cloudpickle")), opts)


def _model_class(qualname: Any, package: str) -> Any:
    text = str(qualname or "")
    module, _, cls = text.rpartition(".")
    if not module.startswith(f"{package}.") or not cls:
        raise FlavorError(f"MLflow model_class {text!r} is not a {package} class")
    return getattr(importlib.import_module(module), cls)


def _xgboost(model: MlflowModel) -> tuple[str, Any]:
    opts = model.options("xgboost")
    path = model.file(opts.get("data"), "xgboost model")
    xgb = require("xgboost", "xgboost")
    cls = _model_class(opts.get("model_class", "xgboost.core.Booster"), "xgboost")
    if cls is xgb.Booster:
        return "xgboost", xgb.Booster(model_file=str(path))
    obj = cls()
    obj.load_model(str(path))
    return "xgboost", obj


def _lightgbm(model: MlflowModel) -> tuple[str, Any]:
    opts = model.options("lightgbm")
    path = model.file(opts.get("data"), "lightgbm model")
    lgb = require("lightgbm", "lightgbm")
    cls = _model_class(opts.get("model_class", "lightgbm.basic.Booster"), "lightgbm")
    if cls is lgb.Booster:
        return "lightgbm", lgb.Booster(model_file=str(path))
    return "lightgbm", _load_pickled(path, str(opts.get("serialization_format", "cloudpickle")), opts)


def _onnx(model: MlflowModel) -> tuple[str, Any]:
    return "onnx", model.file(model.options("onnx").get("data"), "onnx model")


def _pyfunc(model: MlflowModel, originals: dict[str, str], tensor: bool) -> tuple[str, Any]:
    try:
        importlib.import_module("mlflow.pyfunc")
    except ImportError as exc:
        raise FailedPrecondition(
            f"{model.path}: an MLflow python_function model needs mlflow to load: pip install mlflow-skinny"
        ) from exc
    from modelrunner.onboarding.pyfunc_model import MlflowPyfunc

    files = {
        p.relative_to(model.path).as_posix(): p.read_bytes()
        for p in sorted(model.path.rglob("*"))
        if p.is_file()
    }
    return "python", MlflowPyfunc(files, originals, tensor)


_LOADERS = {"onnx": _onnx, "sklearn": _sklearn, "xgboost": _xgboost, "lightgbm": _lightgbm}


# --- contract, example, metadata ---------------------------------------------------------------------


def _inputs(model: MlflowModel) -> tuple[tuple[Field, ...] | None, dict[str, str], bool]:
    """(input fields or None without a signature, field -> MLflow name, tensor-based?)."""
    signature = model.spec.get("signature")
    specs = sig.parse_spec(signature.get("inputs") if isinstance(signature, dict) else None, "inputs")
    if not specs:
        return None, {}, False
    fields = sig.fields_from_signature(specs)
    originals = {f.name: str(s["name"]) for f, s in zip(fields, specs, strict=True) if s.get("name")}
    return fields, originals, all(s.get("type") == "tensor" for s in specs)


def _example_data(model: MlflowModel) -> Any:
    info = model.spec.get("saved_input_example_info")
    rel = info.get("artifact_path") if isinstance(info, dict) else None
    path = model.path / str(rel or "input_example.json")
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from exc


def _requirements(model: MlflowModel) -> list[str]:
    path = model.path / "requirements.txt"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def _package(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _lineage(model: MlflowModel, flavor: str, base: Lineage) -> Lineage:
    keys = ("run_id", "model_uuid", "model_id", "mlflow_version", "utc_time_created", "artifact_path")
    extra = {"source": "mlflow", "mlflow_flavor": flavor, "mlflow_path": str(model.path.resolve())}
    extra.update(
        {f"mlflow_{k.removeprefix('mlflow_')}": str(model.spec[k]) for k in keys if model.spec.get(k)}
    )
    return base.model_copy(update={"extra": {**base.extra, **extra}})


def _tags(model: MlflowModel, flavor: str) -> dict[str, str]:
    tags = {"source": "mlflow", "mlflow.flavor": flavor}
    if model.spec.get("run_id"):
        tags["mlflow.run_id"] = str(model.spec["run_id"])
    metadata = model.spec.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            tags[f"mlflow.metadata.{key}"] = text
    return tags


def import_mlflow(directory: str | Path, dest: str | Path, *, name: str) -> Bundle:
    """Write a bundle at ``dest`` from the MLflow model folder ``directory`` (see the module docstring)."""
    if Path(dest).name.endswith(ARCHIVE_SUFFIXES):  # the manifest is completed after saving: a folder
        raise InvalidArgument(f"{dest}: an imported MLflow bundle is written as a folder, not an archive")
    model = read_mlflow(directory)
    flavor = model.flavor()
    fields, originals, tensor = _inputs(model)
    if fields is None and flavor == "onnx":  # no signature: the graph knows its inputs
        from modelrunner.onboarding.onnx_file import graph_fields, read_graph

        fields = graph_fields(read_graph(_onnx(model)[1]).get_inputs(), "input")
    data = _example_data(model)
    example = None
    if data is not None and fields is not None:
        example = sig.example_columns(data, fields, originals)
    elif data is not None:
        example, originals = sig.raw_example(data)
        fields = sig.guess_fields(example)
        tensor = list(example) == ["input"]
    if fields is None:
        raise BundleError(
            f"{model.path}: the model has neither a signature nor an input example; "
            "save it with signature= or input_example= to import it"
        )
    ours, obj = _pyfunc(model, originals, tensor) if flavor == "python_function" else _LOADERS[flavor](model)
    bundle = save_model(
        obj,
        dest,
        flavor=ours,
        name=name,
        contract=Contract.build(fields),
        sample=example,
        description=f"imported from the MLflow model {model.path.name} ({flavor} flavor)",
        tags=_tags(model, flavor),
    )
    return _finish(bundle, model, flavor)


def _finish(bundle: Bundle, model: MlflowModel, flavor: str) -> Bundle:
    """Carry requirements and lineage over; keep MLmodel and the environment files under ``mlflow/``."""
    manifest = bundle.manifest
    have = {_package(r) for r in manifest.requirements}
    skip = have | ({"mlflow", "mlflow-skinny"} if flavor != "python_function" else set())
    merged = [*manifest.requirements, *(r for r in _requirements(model) if _package(r) not in skip)]
    manifest = manifest.model_copy(
        update={"requirements": merged, "lineage": _lineage(model, flavor, manifest.lineage)}
    )
    keep = bundle.path / "mlflow"
    keep.mkdir(exist_ok=True)
    for file in ENV_FILES:
        if (model.path / file).is_file():
            shutil.copyfile(model.path / file, keep / file)
    manifest.dump(bundle.path)
    return Bundle(bundle.path, manifest)
