"""Save a model as a bundle, open a bundle (folder or archive), load it as a Predictor."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelrunner.bundle import archive, provenance, trust
from modelrunner.bundle.examples import head, read_example, write_example
from modelrunner.bundle.flavors import Flavor, detect_flavor, get_flavor
from modelrunner.bundle.licenses import normalize_license
from modelrunner.bundle.manifest import EXAMPLE_FILE, MANIFEST_FILE, Lineage, Manifest, check_fields
from modelrunner.bundle.predictor import FunctionPredictor, Predictor
from modelrunner.contract import Contract, Field
from modelrunner.contract.derive import (
    as_columns,
    example_columns,
    fields_from_annotations,
    fields_from_output,
    fields_from_sample,
)
from modelrunner.errors import BundleError, ModelrunnerError, ValidationError

Columns = dict[str, np.ndarray]

LOAD_LOCK = threading.RLock()
"""Held while a flavor loads a model, one load per process at a time. Unpickling imports the model's
modules, and Python's import locks are per module: two threads importing libraries that import each other
(scikit-learn's ``linear_model`` and ``svm``) can deadlock, and Python breaks the deadlock by handing one of
them a partially initialised module (``ImportError: cannot import name 'BaseLibSVM' from partially
initialized module``). Loads are import- and GIL-bound anyway, so serialising them costs little."""


@dataclass(frozen=True)
class Bundle:
    """A bundle on disk: ``path`` (a folder holding ``modelrunner.yaml``) and its ``manifest``."""

    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def contract(self) -> Contract:
        return self.manifest.contract

    def load(self) -> Predictor:
        """Load the model (runs the flavor's loader; pickles and python code execute here)."""
        flavor = get_flavor(self.manifest.flavor)
        if flavor.pickle:
            trust.check(self.path, flavor.name)  # the one choke point: a policy may refuse (docs/security.md)
        try:
            with LOAD_LOCK:
                fn = flavor.load(self.path, self.manifest)
        except ModelrunnerError:
            raise
        except Exception as exc:  # a corrupt model file, a library version mismatch, ...
            where = f"the {flavor.name} model in {self.path}"
            raise BundleError(f"cannot load {where}: {_one_line(exc)}") from exc
        batch_safe = bool(getattr(fn, "batch_safe", flavor.batch_safe))
        return FunctionPredictor(self.manifest.contract, fn, batch_safe=batch_safe)

    def profile(self) -> Any:
        """The reference profile saved with the bundle (``monitoring.profile.Profile``), or None."""
        name = self.manifest.profile
        if not name or not (self.path / name).is_file():
            return None
        from modelrunner.monitoring.profile import Profile

        return Profile.read(self.path / name)

    def example_input(self) -> Columns:
        """The saved example batch (a few rows of the sample), or zeros fitting the contract."""
        name = self.manifest.example_input
        if name and (self.path / name).is_file():
            return read_example(self.path / name, self.manifest.contract)
        return example_columns(self.manifest.contract.inputs)


def open_bundle(path: str | Path, *, cache_dir: str | Path | None = None) -> Bundle:
    """Open a bundle folder, or a ``.tar.gz``/``.tgz``/``.zip`` of one (unpacked safely, cached by sha256)."""
    p = Path(path)
    if p.is_dir():
        return Bundle(p, Manifest.read(p))
    if not p.is_file():
        raise BundleError(f"no bundle at {p}")
    if cache_dir is None:
        from modelrunner.settings import Settings

        cache_dir = Settings().resolved_cache_dir()
    try:
        root = archive.extract_cached(p, Path(cache_dir) / "bundles", provenance.sha256_file(p))
    except BundleError as exc:
        raise BundleError(f"{p}: {exc}") from exc
    return Bundle(root, Manifest.read(root))


def load_model(path: str | Path) -> Predictor:
    """``open_bundle(path).load()``; a registry ref (``digits@production``, ``digits@3``, ``digits``) that
    is not a path is fetched from the registry of the environment (``MODELRUNNER_HOME``) first."""
    if isinstance(path, str) and _is_ref(path):
        from modelrunner.registry import Registry  # the registry builds on bundles: imported when used

        with Registry.from_env() as registry:
            return open_bundle(registry.fetch(path)).load()
    return open_bundle(path).load()


def _is_ref(text: str) -> bool:
    """A model ref rather than a path: no such file, no folder separator, no archive suffix."""
    return (
        not Path(text).exists()
        and not any(c in text for c in "/\\")
        and not text.endswith(archive.ARCHIVE_SUFFIXES)
        and bool(text.strip())
    )


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    name: str | None = None,
    sample: Any = None,
    signature: Any = None,
    contract: Contract | None = None,
    license: str | None = None,
    description: str = "",
    metrics: Mapping[str, float] | None = None,
    training_data: Any = None,
    parent: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Bundle:
    """Save ``model`` as a bundle folder at ``path`` (or a ``.tar.gz`` when ``path`` ends so).

    The flavor is detected from the object unless named. Inputs come from ``contract``, ``signature``
    (a dataclass/NamedTuple/TypedDict, or an ``(inputs, outputs)`` pair), ``sample`` or the model itself
    (ONNX); outputs are derived by running the model on the sample. Replaces an existing bundle at ``path``.
    """
    fl = get_flavor(flavor) if flavor is not None else detect_flavor(model)
    dest = Path(path)
    packed = dest.name.endswith(archive.ARCHIVE_SUFFIXES)
    _check_dest(dest, packed)
    inputs, declared_out = _declared_fields(model, fl, sample, signature, contract)
    default_name = inputs[0].name if len(inputs) == 1 else "input"
    example = head(as_columns(sample, default_name)) if sample is not None else example_columns(inputs)
    meta: dict[str, Any] = {
        "name": name or _default_name(dest),
        "flavor": fl.name,
        "license": normalize_license(license) if license is not None else None,
        "description": description,
        "metrics": _metrics(metrics),
        "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        "python": provenance.python_version(),
        "requirements": provenance.requirements(_packages(fl, sample)),
        "example_input": EXAMPLE_FILE,
        "created_at": provenance.created_at(),
        "lineage": _lineage(training_data, parent),
    }
    check_fields(description=description, tags=meta["tags"], metrics=meta["metrics"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    work.chmod(0o755)
    try:
        manifest = _write_bundle(fl, model, work, meta, contract, inputs, declared_out, example)
        if training_data is not None:
            manifest = _write_profile(fl, work, manifest, training_data)
        if packed:
            with dest.open("wb") as out:
                archive.write_archive(work, out)
            return open_bundle(dest)
        _install(work, dest)
        return Bundle(dest, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_bundle(
    fl: Flavor,
    model: Any,
    work: Path,
    meta: dict[str, Any],
    base: Contract | None,
    inputs: tuple[Field, ...],
    declared: tuple[Field, ...] | None,
    example: Columns,
) -> Manifest:
    """Flavor files, then a load-and-run check that derives the outputs, then example and manifest."""
    draft = Manifest(
        **meta, flavor_options=_save_files(fl, model, work), contract=_with_outputs(base, inputs, ())
    )
    outputs = _derive_outputs(fl, work, draft, example, declared)
    manifest = draft.model_copy(update={"contract": _with_outputs(base, inputs, outputs)})
    write_example(work / EXAMPLE_FILE, example)
    manifest.dump(work)
    return manifest


def _write_profile(fl: Flavor, work: Path, manifest: Manifest, training_data: Any) -> Manifest:
    """The reference profile of the training data (``profile.json``, see docs/monitoring.md), when the data
    reads as the model's inputs; the manifest names it."""
    from modelrunner.monitoring.profile import PROFILE_FILE, profile_training_data  # numpy + contract only

    predictor = FunctionPredictor(manifest.contract, fl.load(work, manifest))
    try:
        profile = profile_training_data(manifest.contract, predictor.predict, training_data)
    finally:
        predictor.close()
    if profile is None:
        return manifest
    profile.write(work)
    manifest = manifest.model_copy(update={"profile": PROFILE_FILE})
    manifest.dump(work)
    return manifest


def _check_dest(dest: Path, packed: bool) -> None:
    if packed:
        if dest.is_dir():
            raise BundleError(f"cannot save to {dest}: a folder of that name exists")
        return
    if dest.is_file():
        raise BundleError(f"cannot save to {dest}: a file of that name exists")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MANIFEST_FILE).is_file():
        raise BundleError(f"cannot save to {dest}: the folder exists, is not empty and is not a bundle")


def _default_name(dest: Path) -> str:
    name = dest.name
    for suffix in archive.ARCHIVE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _install(work: Path, dest: Path) -> None:
    """Move the finished bundle into place, replacing an older bundle there."""
    if dest.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}-old-", dir=dest.parent))
        dest.rename(trash / "old")
        work.rename(dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        work.rename(dest)


def _declared_fields(
    model: Any, fl: Flavor, sample: Any, signature: Any, contract: Contract | None
) -> tuple[tuple[Field, ...], tuple[Field, ...] | None]:
    """(inputs, outputs or None when they are to be derived from running the model)."""
    if contract is not None:
        if not isinstance(contract, Contract):
            raise BundleError(f"contract must be a modelrunner Contract, got {type(contract).__name__}")
        return contract.inputs, (contract.outputs or None)
    if signature is not None:
        if isinstance(signature, tuple):
            if len(signature) != 2:
                raise BundleError("signature must be an input type or an (input type, output type) pair")
            return fields_from_annotations(signature[0]), fields_from_annotations(signature[1])
        return fields_from_annotations(signature), None
    if sample is not None:
        return fields_from_sample(sample), None
    if fl.infer_inputs is not None:
        return fl.infer_inputs(model), None
    raise BundleError(
        f"cannot derive the input contract of a {fl.name} model: pass sample=, signature= or contract="
    )


def _with_outputs(base: Contract | None, inputs: tuple[Field, ...], outputs: tuple[Field, ...]) -> Contract:
    if base is None:
        return Contract.build(inputs, outputs)
    return Contract.build(
        inputs,
        outputs,
        version=base.version,
        reserved_inputs=base.reserved_inputs,
        reserved_outputs=base.reserved_outputs,
    )


def _save_files(fl: Flavor, model: Any, work: Path) -> dict[str, Any]:
    try:
        return fl.save(model, work)
    except ModelrunnerError:
        raise
    except Exception as exc:
        raise BundleError(f"the {fl.name} flavor could not save the model: {_one_line(exc)}") from exc


def _derive_outputs(
    fl: Flavor, work: Path, draft: Manifest, example: Columns, declared: tuple[Field, ...] | None
) -> tuple[Field, ...]:
    """Load the just-saved model and run it on the example: proves the bundle loads, gives outputs."""
    try:
        predictor = FunctionPredictor(draft.contract, fl.load(work, draft))
    except ModelrunnerError:
        raise
    except Exception as exc:
        raise BundleError(f"the saved {fl.name} model does not load back: {_one_line(exc)}") from exc
    try:
        out = predictor.predict(example)
    except ValidationError as exc:
        raise ValidationError(f"the sample does not fit the contract: {exc}", field=exc.field) from exc
    except ModelrunnerError:
        raise
    except Exception as exc:
        raise BundleError(f"the model failed on the sample: {_one_line(exc)}") from exc
    finally:
        predictor.close()
    derived = fields_from_output(out)
    if declared is None:
        return derived
    _check_declared(declared, derived)
    return declared


def _check_declared(declared: tuple[Field, ...], derived: tuple[Field, ...]) -> None:
    got = {f.name: f for f in derived}
    for f in declared:
        if f.name not in got:
            raise BundleError(
                f"declared output {f.name!r} is not produced by the model (it returns {', '.join(got)})"
            )
        actual = got[f.name]
        same_kind = (
            f.dtype.is_numeric
            and actual.dtype.is_numeric
            and np.can_cast(actual.dtype.numpy(), f.dtype.numpy(), casting="same_kind")
        )
        if actual.dtype != f.dtype and not same_kind:
            raise BundleError(
                f"declared output {f.name!r} is {f.dtype.value} but the model returns {actual.dtype.value}"
            )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"metric {key!r} must be a number, got {value!r}") from exc
    return out


def _packages(fl: Flavor, sample: Any) -> list[str]:
    extra = ["pandas"] if type(sample).__name__ == "DataFrame" else []
    return ["numpy", *fl.packages, *extra]


def _lineage(training_data: Any, parent: str | None) -> Lineage:
    commit, dirty = provenance.git_commit()
    if parent is not None and (not isinstance(parent, str) or not parent.strip()):
        raise BundleError(f"parent must be a model ref such as 'digits@3', got {parent!r}")
    return Lineage(
        git_commit=commit,
        git_dirty=dirty,
        training_data_sha256=provenance.sha256_of(training_data) if training_data is not None else None,
        parent=parent,
    )
