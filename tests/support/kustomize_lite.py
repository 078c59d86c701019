"""The subset of kustomize that ``deploy/kubernetes`` uses, to render its overlays where ``kubectl kustomize``
is not installed: ``resources`` (files and directories) and ``patches`` (strategic merge by kind + name;
list items merged by ``name`` or ``mountPath``, ``null`` deleting a key). Anything else is refused, so a
manifest change that needs more fails here instead of rendering wrongly."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "patches"}
MERGE_KEYS = ("name", "mountPath")


def render(folder: Path) -> list[dict[str, Any]]:
    """The resources of the kustomization in ``folder``, patched."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    if unknown:
        raise ValueError(f"{folder}: kustomization fields {sorted(unknown)} are not supported here")
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        docs.extend(render(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d])
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{folder}: only file patches (path:) are supported, not {patch}")
        for doc in yaml.safe_load_all((folder / patch["path"]).read_text()):
            target = _find(docs, doc["kind"], doc["metadata"]["name"])
            merged = merge(target, doc)
            docs[docs.index(target)] = merged
    return docs


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise ValueError(f"patch target {kind}/{name} not among the resources")


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch: maps merge, ``None`` deletes, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = _without_nulls(value)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = _merge_key(base + patch)
        if key is None:
            return copy.deepcopy(patch)
        out = copy.deepcopy(base)
        for item in patch:
            match = next((i for i, b in enumerate(out) if b.get(key) == item.get(key)), None)
            if match is None:
                out.append(_without_nulls(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def _merge_key(items: list[Any]) -> str | None:
    for key in MERGE_KEYS:
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def kubectl_kustomize(folder: Path) -> list[dict[str, Any]] | None:
    """``kubectl kustomize folder`` when kubectl is installed, else None."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    proc = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder}: {proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]
