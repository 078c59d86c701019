"""Error bodies (server/wire.py): the server's local folders stay out of what clients read, over real HTTP."""

from __future__ import annotations

from pathlib import Path

from modelrunner.errors import StorageError
from modelrunner.server import wire
from modelrunner.settings import Settings
from support.server_helpers import Stack


def test_error_messages_hide_local_folders(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", store_url=str(tmp_path / "store"))
    wire.hide_paths(settings)
    exc = StorageError(
        f"database sqlite:///{tmp_path}/home/registry.db: disk I/O error; "
        f"artifact in {tmp_path}/store/sha256/ab; cache {tmp_path}/home/cache/x"
    )
    status, body, _ = wire.modelrunner_error("/admin/models", exc)
    message = body["error"]["message"]
    assert status == 503 and str(tmp_path) not in message
    assert message == (
        "database sqlite:///<database>: disk I/O error; artifact in <store>/sha256/ab; cache <cache>/x"
    )
    _, body, _ = wire.modelrunner_error("/v2/repository/index", exc)
    assert str(tmp_path) not in body["error"]


def test_a_failed_load_does_not_show_the_store_path(open_stack: Stack) -> None:
    """A swap to a version whose artifact is gone: the refusal names the artifact, not the server's folder."""
    home = str(open_stack.registry.settings.home)
    sha = open_stack.registry.model("digits").versions[-1].sha256
    for artifact in Path(home, "artifacts").rglob(f"*{sha}*"):
        artifact.unlink()
    r = open_stack.anon.put(
        "/admin/endpoints/digits", json={"target": "digits@2", "wait": True, "timeout_s": 20}
    )
    assert r.status_code == 409, r.text
    assert sha in r.text and "<store>" in r.text and home not in r.text
    listed = open_stack.anon.get("/admin/endpoints")
    assert "<store>" in listed.text and home not in listed.text
    index = open_stack.anon.post("/v2/repository/index")
    assert home not in index.text
    r = open_stack.anon.post("/v2/repository/models/digits/load", json={"parameters": {"timeout_s": 20}})
    assert r.status_code == 409 and "<store>" in r.json()["error"] and home not in r.text
