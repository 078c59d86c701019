"""python flavor: a user class with ``predict(columns) -> columns``, saved as source + pickled state.

Saving copies the source file of the module that defines the class (``code/model.py``) and pickles the
instance's state (``state.pkl``, standard pickle). Loading **executes that module's code and unpickles the
state**: only load bundles you trust. The module runs under a private name, so its
``if __name__ == "__main__":`` block does not run, but other top-level code does. The module must be
self-contained (no relative imports); state objects must be importable or defined in the same module.

``predict`` gets a dict of numpy columns and must return a dict of columns (or one array, served as the
``output`` field). Calls are serialised with a lock unless the class sets ``thread_safe = True``. Requests
are merged into one call (batching by default) only when the class sets ``batch_safe = True``: its
``predict`` answers each row from that row alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import io
import pickle
import sys
import threading
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import Columns, Flavor, PredictFn
from modelrunner.errors import BundleError, FlavorError

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

CODE_FILE = "code/model.py"
STATE_FILE = "state.pkl"


def _matches(obj: Any) -> bool:
    cls = type(obj)
    return (
        not isinstance(obj, type)
        and callable(getattr(obj, "predict", None))
        and cls.__module__ not in ("builtins",)
    )


def _source_of(cls: type) -> str:
    module = inspect.getmodule(cls)
    if module is None:
        raise FlavorError(f"python flavor: cannot find the module defining {cls.__qualname__}")
    try:
        return inspect.getsource(module)
    except (OSError, TypeError) as exc:
        raise FlavorError(
            f"python flavor: {cls.__qualname__} must be defined in a source file (not interactively): {exc}"
        ) from exc


def _state(obj: Any) -> Any:
    getstate = getattr(obj, "__getstate__", None)
    return getstate() if getstate is not None else dict(vars(obj))


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    cls = type(obj)
    if "<locals>" in cls.__qualname__:
        raise FlavorError(f"python flavor: {cls.__qualname__} must be a module-level class")
    source = _source_of(cls)
    code = directory / CODE_FILE
    code.parent.mkdir(parents=True, exist_ok=True)
    code.write_text(source, encoding="utf-8")
    try:
        (directory / STATE_FILE).write_bytes(pickle.dumps(_state(obj), protocol=4))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise FlavorError(f"python flavor: the state of {cls.__qualname__} cannot be pickled: {exc}") from exc
    return {"code": CODE_FILE, "state": STATE_FILE, "module": cls.__module__, "class": cls.__qualname__}


class _Unpickler(pickle.Unpickler):
    """Resolves classes of the original module to the bundle's copy of it."""

    def __init__(self, data: bytes, original: str, module: types.ModuleType) -> None:
        super().__init__(io.BytesIO(data))
        self._original = original
        self._module = module

    def find_class(self, module: str, name: str) -> Any:
        if module == self._original:
            return _qualname(self._module, name)
        return super().find_class(module, name)


def _qualname(module: types.ModuleType, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _import_source(path: Path) -> types.ModuleType:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    name = f"_modelrunner_bundle_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BundleError(f"python flavor: cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _instance(directory: Path, opts: Mapping[str, Any]) -> Any:
    code, state = directory / str(opts.get("code", CODE_FILE)), directory / str(opts.get("state", STATE_FILE))
    if not code.is_file() or not state.is_file():
        raise BundleError(f"python bundle is missing {CODE_FILE} or {STATE_FILE}")
    module = _import_source(code)
    try:
        cls = _qualname(module, str(opts["class"]))
    except (KeyError, AttributeError) as exc:
        raise BundleError(f"python bundle: class {opts.get('class')!r} not found in its code") from exc
    obj = cls.__new__(cls)
    data = _Unpickler(state.read_bytes(), str(opts.get("module", "")), module).load()
    if hasattr(obj, "__setstate__"):
        obj.__setstate__(data)
    elif data:
        obj.__dict__.update(data)
    return obj


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    obj = _instance(directory, manifest.flavor_options)
    lock = None if getattr(obj, "thread_safe", False) else threading.Lock()
    batch_safe = getattr(obj, "batch_safe", False) is True

    def predict(columns: Columns) -> Columns:
        if lock is None:
            out = obj.predict(columns)
        else:
            with lock:
                out = obj.predict(columns)
        if isinstance(out, Mapping):
            return {str(k): np.asarray(v) for k, v in out.items()}
        return {"output": np.asarray(out)}

    setattr(predict, "batch_safe", batch_safe)  # noqa: B010 - read by Bundle.load
    return predict


FLAVOR = Flavor(name="python", extra=None, packages=(), matches=_matches, save=_save, load=_load, pickle=True)
