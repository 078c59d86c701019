"""torch flavor: a PyTorch ``nn.Module`` (compiled with TorchScript), a ``ScriptModule`` (``torch.jit.script``
or ``torch.jit.trace``), or a ``torch.export`` ``ExportedProgram``; served on CPU without the model's class.

TorchScript is what a plain module becomes: ``torch.jit.script`` needs no example input (the flavor's save
gets none) and the saved file loads with ``torch.jit.load`` alone. A module TorchScript cannot compile is
refused with a hint to trace it or export it first. An ``ExportedProgram`` (``torch.export.export(model,
(x,), dynamic_shapes=...)``, the successor PyTorch recommends) is saved with ``torch.export.save``.

Inputs are the contract's fields in order, each a tensor (``model(*tensors)``). Outputs: a tensor ->
``output``; a tuple or list -> ``output_0``, ``output_1``, ...; a dict of tensors -> its keys (so a module
can return ``{"label": ..., "proba": ...}`` as classifiers of the other flavors do).

Threads: ``torch.set_num_threads`` is per process. It is ``MODELRUNNER_TORCH_THREADS`` when set, else the
cores divided by the worker processes (``MODELRUNNER_WORKERS``, set by ``modelrunner serve --workers``),
at least 1.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.flavors.base import Columns, Flavor, PredictFn
from modelrunner.errors import BundleError, FlavorError, require

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

SCRIPT_FILE = "model.pt"
EXPORT_FILE = "model.pt2"


def _matches(obj: Any) -> bool:
    """An nn.Module (a subclass defined anywhere), a ScriptModule or an ExportedProgram; no torch import."""
    return any(
        c.__module__.split(".")[0] == "torch" and c.__name__ in ("Module", "ExportedProgram")
        for c in type(obj).__mro__
    )


def torch_threads(environ: Any = None) -> int:
    """The intra-op threads of a worker (see the module docstring)."""
    env = os.environ if environ is None else environ
    for name, whole in (("MODELRUNNER_TORCH_THREADS", True), ("MODELRUNNER_WORKERS", False)):
        text = env.get(name, "").strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            raise FlavorError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise FlavorError(f"{name} must be at least 1, got {value}")
        return value if whole else max(1, (os.cpu_count() or 1) // value)
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """TorchScript's save/load warn that torch.jit is deprecated (in favour of torch.export): not news to
    the person serving a model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _save(obj: Any, directory: Path) -> dict[str, Any]:
    torch = require("torch", "torch")
    if type(obj).__name__ == "ExportedProgram":
        torch.export.save(obj, str(directory / EXPORT_FILE))
        return {"file": EXPORT_FILE, "format": "export"}
    with _quiet():
        scripted = obj if isinstance(obj, torch.jit.ScriptModule) else _script(torch, obj)
        torch.jit.save(scripted, str(directory / SCRIPT_FILE))
    return {"file": SCRIPT_FILE, "format": "torchscript"}


def _script(torch: Any, module: Any) -> Any:
    module.eval()
    try:
        return torch.jit.script(module)
    except Exception as exc:  # TorchScript's frontend raises many types; the first line says what failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FlavorError(
            f"torch flavor: TorchScript cannot compile {type(module).__name__}: {first}; "
            "save torch.jit.trace(model, example) or torch.export.export(model, (example,)) "
            "instead"
        ) from exc


def _load_module(torch: Any, path: Path, fmt: str) -> Any:
    if fmt == "export":
        return torch.export.load(str(path)).module()
    with _quiet():
        module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    return module


def _outputs(out: Any) -> Columns:
    if isinstance(out, dict):
        return {str(k): _array(v) for k, v in out.items()}
    if isinstance(out, tuple | list):
        return {f"output_{i}": _array(v) for i, v in enumerate(out)}
    return {"output": _array(out)}


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()  # type: ignore[no-any-return]
    return np.asarray(value)


def _load(directory: Path, manifest: Manifest) -> PredictFn:
    torch = require("torch", "torch")
    options = manifest.flavor_options
    path = directory / str(options.get("file", SCRIPT_FILE))
    if not path.is_file():
        raise BundleError(f"torch bundle is missing {path.name}")
    torch.set_num_threads(torch_threads())
    module = _load_module(torch, path, str(options.get("format", "torchscript")))
    names = [f.name for f in manifest.contract.inputs]

    def predict(columns: Columns) -> Columns:
        tensors = [torch.from_numpy(np.ascontiguousarray(columns[n])) for n in names if n in columns]
        with torch.inference_mode():
            return _outputs(module(*tensors))

    return predict


FLAVOR = Flavor(
    name="torch",
    extra="torch",
    packages=("torch",),
    matches=_matches,
    save=_save,
    load=_load,
    batch_safe=True,
)
