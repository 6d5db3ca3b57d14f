"""Templates across machines: a template published on one node's store is pushed to the shared,
content-addressed depot, and another node's store fetches it, with owners, modes, symlinks and
xattrs intact; a damaged archive never becomes a template. (The fetch a create waits for:
tests/cluster/test_fetch.py.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from corral.templates import TemplateStore
from corral.templates.depot import DepotError, TemplateDepot
from tests.templates.helpers import make_template, store_entries

pytestmark = pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")


def _tiny(store: TemplateStore, name: str, text: str) -> None:
    make_template(store, name, {"etc/hostname": text, "usr/bin/tool": "#!/bin/sh\n"})
    tool = store.path_for(name) / "rootfs/usr/bin/tool"
    if os.geteuid() == 0:
        os.chown(tool, 1000, 1000)
    os.chmod(tool, 0o4755)     # (after the chown, which clears set-uid)
    (store.path_for(name) / "rootfs/etc/link").symlink_to("/etc/hostname")
    try:
        os.setxattr(tool, "user.corral.test", b"kept")
    except OSError:
        pass   # a file system without user xattrs: the rest still holds


def test_a_template_built_on_one_node_is_fetched_by_another_and_refreshed_when_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_TEMPLATE_DEPOT", raising=False)
    depot = TemplateDepot(tmp_path / "depot")
    a = TemplateStore(tmp_path / "node-a", depot=depot)
    b = TemplateStore(tmp_path / "node-b", depot=depot)
    _tiny(a, "tiny", "one\n")
    # make_template published before _tiny's extra files: publish again so the archive has them.
    ref = depot.push(a, "tiny")
    assert (depot.blobs / ref.digest).is_file() and depot.ref("tiny") == ref
    assert json.loads((depot.refs / "tiny.json").read_text())["digest"] == ref.digest
    assert depot.wanted(a, "tiny") is None, "the node that pushed it has it"

    assert not b.exists("tiny") and depot.wanted(b, "tiny") == ref
    got = depot.fetch(b, "tiny")
    assert got.name == "tiny" and b.get("tiny").rootfs.is_dir()
    root = b.path_for("tiny") / "rootfs"
    assert (root / "etc/hostname").read_text() == "one\n"
    assert os.readlink(root / "etc/link") == "/etc/hostname"      # a link, not what it points at
    st = (root / "usr/bin/tool").stat()
    assert st.st_mode & 0o7777 == 0o4755
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    try:
        assert os.getxattr(root / "usr/bin/tool", "user.corral.test") == b"kept"
    except OSError:
        pass
    assert depot.wanted(b, "tiny") is None and depot.cached_digest(b, "tiny") == ref.digest
    assert ".depot" in store_entries(b.root) and [t.name for t in b.list()] == ["tiny"]

    # Rebuilt on A: a new archive (pushed on publish), and B's copy is now out of date.
    make_template(a, "tiny", {"etc/hostname": "two\n"})
    newer = depot.ref("tiny")
    assert newer is not None and newer.digest != ref.digest
    assert depot.wanted(b, "tiny") == newer
    depot.fetch(b, "tiny")
    assert (b.path_for("tiny") / "rootfs/etc/hostname").read_text() == "two\n"
    # B's fetches were not pushed back (the ref still names A's archive).
    assert depot.ref("tiny") == newer

    # A template B built itself (no depot copy of it was ever fetched) is left as it is.
    make_template(TemplateStore(b.root), "local", {"x": "b\n"})     # (no depot in the environment)
    make_template(a, "local", {"x": "a\n"})
    assert depot.wanted(b, "local") is None


def test_a_damaged_or_missing_archive_never_becomes_a_template(tmp_path: Path) -> None:
    depot = TemplateDepot(tmp_path / "depot")
    a = TemplateStore(tmp_path / "a", depot=depot)
    b = TemplateStore(tmp_path / "b", depot=depot)
    make_template(a, "tiny", {"etc/hostname": "x\n"})
    ref = depot.ref("tiny")
    assert ref is not None
    blob = depot.blobs / ref.digest
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DepotError, match="damaged"):
        depot.fetch(b, "tiny")
    assert not b.exists("tiny") and [e for e in store_entries(b.root) if e.startswith(".build-")] == []
    blob.unlink()
    with pytest.raises(DepotError, match="missing"):
        depot.fetch(b, "tiny")
    with pytest.raises(DepotError, match="not in the depot"):
        depot.fetch(b, "other")
    assert depot.wanted(b, "other") is None
    (depot.refs / "bad.json").write_text("{not json")
    with pytest.raises(DepotError, match="unreadable ref"):
        depot.ref("bad")
    from corral.templates.names import TemplateNameError
    with pytest.raises(TemplateNameError):
        depot.ref("../etc")


def test_a_publish_on_a_servers_event_loop_pushes_in_a_thread(tmp_path: Path) -> None:
    import asyncio
    import threading

    depot = TemplateDepot(tmp_path / "depot")
    a = TemplateStore(tmp_path / "a", depot=depot)

    async def build() -> list[threading.Thread]:
        make_template(a, "tiny", {"etc/hostname": "x\n"})       # as the builder does, on the loop
        return [t for t in threading.enumerate() if t.name == "corral-push-tiny"]

    pushing = asyncio.run(build())
    for t in pushing:
        t.join(timeout=120)
    assert depot.ref("tiny") is not None and depot.cached_digest(a, "tiny") == depot.ref("tiny").digest
