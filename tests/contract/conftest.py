"""Fixtures for contract tests: compiling a rendered ``.proto`` with grpc_tools' protoc and importing it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

_COUNTER = itertools.count()


@pytest.fixture
def compile_proto(tmp_path: Path) -> Iterator[Callable[[str], ModuleType]]:
    """Compile proto text with protoc (grpc_tools) and import the generated ``*_pb2`` module.

    Each call uses a new file name; callers use a new package each time, since generated modules register in
    the process-wide default descriptor pool.
    """
    from grpc_tools import protoc

    names: list[str] = []

    def compile_(text: str) -> ModuleType:
        stem = f"contract_test_{next(_COUNTER)}"
        (tmp_path / f"{stem}.proto").write_text(text, encoding="utf-8")
        args = ["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", str(tmp_path / f"{stem}.proto")]
        rc = protoc.main(args)
        assert rc == 0, f"protoc failed on:\n{text}"
        spec = importlib.util.spec_from_file_location(f"{stem}_pb2", tmp_path / f"{stem}_pb2.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        names.append(spec.name)
        spec.loader.exec_module(module)
        return module

    yield compile_
    for name in names:
        sys.modules.pop(name, None)
