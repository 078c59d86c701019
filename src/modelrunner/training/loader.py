"""Load a user's Python callable from ``pkg.module:function`` or ``path/to/file.py:function``, with the
version of its code (sha256 of the source file, git commit of its folder) for the lineage.

Every failure is one line (InvalidArgument naming what was given), never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from modelrunner.bundle.provenance import git_commit, sha256_file
from modelrunner.errors import InvalidArgument

_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_FUNC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass(frozen=True)
class Loaded:
    """A loaded callable and where its code came from (``code`` goes into the bundle's lineage)."""

    fn: Callable[..., Any]
    spec: str
    code: dict[str, Any] = field(default_factory=dict)


def load_callable(spec: str, *, what: str = "trainer") -> Loaded:
    """``pkg.module:function`` or ``file.py:function`` -> the callable (InvalidArgument, one line)."""
    text = (spec or "").strip()
    module_part, sep, func = text.rpartition(":")
    if not sep or not module_part or not _FUNC.match(func):
        raise InvalidArgument(
            f"--{what} must be 'pkg.module:function' or 'path/file.py:function', got {spec!r}", field=what
        )
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        module = _from_file(Path(module_part), what)
    elif _MODULE.match(module_part):
        module = _from_import(module_part, what)
    else:
        raise InvalidArgument(
            f"--{what} {spec!r}: {module_part!r} is neither a module name nor a .py file", field=what
        )
    obj: Any = module
    for part in func.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InvalidArgument(f"--{what} {spec!r}: {module_part} has no {func!r}", field=what)
    if not callable(obj):
        raise InvalidArgument(
            f"--{what} {spec!r}: {func!r} is a {type(obj).__name__}, not a function", field=what
        )
    return Loaded(fn=obj, spec=text, code=code_version(module, text))


def _from_file(path: Path, what: str) -> ModuleType:
    if not path.is_file():
        raise InvalidArgument(f"--{what}: file {str(path)!r} not found", field=what)
    resolved = path.resolve()
    name = f"_modelrunner_{what}_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"--{what}: cannot load {str(path)!r} as Python", field=what)
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file may import its siblings
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: one line naming it
        raise InvalidArgument(f"--{what}: loading {str(path)!r} failed: {_brief(exc)}", field=what) from exc
    sys.modules[name] = module
    return module


def _from_import(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - the user's module: one line naming it
        raise InvalidArgument(f"--{what}: cannot import {name!r}: {_brief(exc)}", field=what) from exc


def _brief(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def code_version(module: ModuleType, spec: str) -> dict[str, Any]:
    """``{"spec", "sha256" (of the module's source file), "git_commit", "git_dirty"}`` (None when unknown)."""
    source = getattr(module, "__file__", None)
    out: dict[str, Any] = {"spec": spec, "sha256": None, "git_commit": None, "git_dirty": None}
    if source and Path(source).is_file():
        out["sha256"] = sha256_file(source)
        commit, dirty = git_commit(Path(source).resolve().parent)
        out["git_commit"], out["git_dirty"] = commit, dirty
    return out
