"""`sandbox.files` through the official SDK: read/write (text, binary, many), listing, stat,
directories, rename, remove and directory watching.

One sandbox for the module; every test works in its own directory under /home/user.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from e2b import FileType, FilesystemEventType, Sandbox
from e2b.exceptions import FileNotFoundException, SandboxException
from tests.tiers import tiered_sdk, tiered_server

pytestmark = pytest.mark.e2e

# The SDK's boundary tests run on every isolation tier this machine has (tests/tiers.py).
sdk = tiered_sdk
server = tiered_server


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=600)
    yield sandbox
    sandbox.kill()


@pytest.fixture
def workdir(sbx: Sandbox) -> str:
    path = f"/home/user/t-{uuid.uuid4().hex[:10]}"
    assert sbx.files.make_dir(path) is True
    return path


def test_text_round_trip(sbx: Sandbox, workdir: str) -> None:
    text = "héllo wörld ✓\nsecond line\n"
    info = sbx.files.write(f"{workdir}/hello.txt", text)
    assert info.path == f"{workdir}/hello.txt"
    assert info.name == "hello.txt"
    assert sbx.files.read(f"{workdir}/hello.txt") == text
    # What the files API wrote is what a process inside sees, owned by the default user.
    assert sbx.commands.run(f"cat {workdir}/hello.txt").stdout == text
    # (find, not stat: the Debian bookworm runsc rejects the statx flag coreutils' stat passes)
    assert sbx.commands.run(f"find {workdir}/hello.txt -printf '%u:%g\\n'").stdout == "user:user\n"


def test_binary_round_trip(sbx: Sandbox, workdir: str) -> None:
    blob = bytes(range(256)) * 64 + os.urandom(200_000)
    sbx.files.write(f"{workdir}/blob.bin", blob)
    assert sbx.files.read(f"{workdir}/blob.bin", format="bytes") == bytes(blob)
    assert sbx.commands.run(f"find {workdir}/blob.bin -printf '%s\\n'").stdout == f"{len(blob)}\n"


def test_overwrite_replaces_content(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/f.txt", "a much longer first version")
    sbx.files.write(f"{workdir}/f.txt", "short")
    assert sbx.files.read(f"{workdir}/f.txt") == "short"


def test_relative_path_is_in_home(sbx: Sandbox) -> None:
    name = f"rel-{uuid.uuid4().hex[:8]}.txt"
    sbx.files.write(name, "relative")
    assert sbx.commands.run(f"cat /home/user/{name}").stdout == "relative"


def test_write_creates_parent_directories(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/a/b/c/deep.txt", "deep")
    assert sbx.files.read(f"{workdir}/a/b/c/deep.txt") == "deep"


def test_write_files_many_at_once(sbx: Sandbox, workdir: str) -> None:
    entries = [
        {"path": f"{workdir}/one.txt", "data": "first"},
        {"path": f"{workdir}/sub/two.bin", "data": b"\x00\x01\x02second"},
        {"path": f"{workdir}/sub/three.txt", "data": "third"},
    ]
    infos = sbx.files.write_files(entries)
    assert sorted(i.path for i in infos) == sorted(e["path"] for e in entries)
    assert sbx.files.read(f"{workdir}/one.txt") == "first"
    assert sbx.files.read(f"{workdir}/sub/two.bin", format="bytes") == b"\x00\x01\x02second"
    assert sbx.files.read(f"{workdir}/sub/three.txt") == "third"


def test_read_missing_file_raises(sbx: Sandbox, workdir: str) -> None:
    with pytest.raises(FileNotFoundException):
        sbx.files.read(f"{workdir}/nope.txt")


def test_list(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/file.txt", "12345")
    sbx.files.make_dir(f"{workdir}/dir")
    sbx.files.write(f"{workdir}/dir/nested.txt", "x")
    entries = {e.name: e for e in sbx.files.list(workdir)}
    assert set(entries) == {"file.txt", "dir"}
    assert entries["file.txt"].type == FileType.FILE
    assert entries["file.txt"].size == 5
    assert entries["file.txt"].path == f"{workdir}/file.txt"
    assert entries["dir"].type == FileType.DIR
    deep = {e.path for e in sbx.files.list(workdir, depth=2)}
    assert deep == {f"{workdir}/file.txt", f"{workdir}/dir", f"{workdir}/dir/nested.txt"}


def test_list_missing_directory_raises(sbx: Sandbox, workdir: str) -> None:
    with pytest.raises(FileNotFoundException):
        sbx.files.list(f"{workdir}/missing")


def test_exists(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/here.txt", "x")
    assert sbx.files.exists(f"{workdir}/here.txt") is True
    assert sbx.files.exists(workdir) is True
    assert sbx.files.exists(f"{workdir}/not-here.txt") is False


def test_get_info(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/info.txt", "0123456789")
    info = sbx.files.get_info(f"{workdir}/info.txt")
    assert info.name == "info.txt"
    assert info.path == f"{workdir}/info.txt"
    assert info.type == FileType.FILE
    assert info.size == 10
    assert info.owner == "user"
    dinfo = sbx.files.get_info(workdir)
    assert dinfo.type == FileType.DIR
    with pytest.raises(FileNotFoundException):
        sbx.files.get_info(f"{workdir}/absent")


def test_make_dir_true_then_false(sbx: Sandbox, workdir: str) -> None:
    assert sbx.files.make_dir(f"{workdir}/newdir") is True
    assert sbx.files.make_dir(f"{workdir}/newdir") is False
    assert sbx.files.make_dir(f"{workdir}/p/q/r") is True
    assert sbx.files.get_info(f"{workdir}/p/q/r").type == FileType.DIR


def test_rename(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/old.txt", "moving")
    entry = sbx.files.rename(f"{workdir}/old.txt", f"{workdir}/new.txt")
    assert entry.path == f"{workdir}/new.txt"
    assert sbx.files.exists(f"{workdir}/old.txt") is False
    assert sbx.files.read(f"{workdir}/new.txt") == "moving"
    with pytest.raises(FileNotFoundException):
        sbx.files.rename(f"{workdir}/old.txt", f"{workdir}/again.txt")


def test_remove(sbx: Sandbox, workdir: str) -> None:
    sbx.files.write(f"{workdir}/gone.txt", "bye")
    sbx.files.write(f"{workdir}/tree/leaf.txt", "bye")
    sbx.files.remove(f"{workdir}/gone.txt")
    assert sbx.files.exists(f"{workdir}/gone.txt") is False
    sbx.files.remove(f"{workdir}/tree")
    assert sbx.files.exists(f"{workdir}/tree") is False
    with pytest.raises(FileNotFoundException):
        sbx.files.read(f"{workdir}/gone.txt")


def test_default_user_cannot_write_outside_its_reach(sbx: Sandbox) -> None:
    with pytest.raises(SandboxException):
        sbx.files.write("/etc/corral-should-not-exist", "x")
    assert sbx.files.exists("/etc/corral-should-not-exist") is False
    # root may.
    sbx.files.write("/etc/corral-root-wrote", "x", user="root")
    assert sbx.files.read("/etc/corral-root-wrote") == "x"
    sbx.files.remove("/etc/corral-root-wrote", user="root")


def test_watch_dir_reports_events(sbx: Sandbox, workdir: str) -> None:
    handle = sbx.files.watch_dir(workdir)
    try:
        sbx.files.write(f"{workdir}/watched.txt", "v1")
        sbx.files.rename(f"{workdir}/watched.txt", f"{workdir}/renamed.txt")
        sbx.files.remove(f"{workdir}/renamed.txt")
        seen: set[tuple[str, FilesystemEventType]] = set()
        deadline = time.monotonic() + 30
        wanted = {("watched.txt", FilesystemEventType.CREATE), ("renamed.txt", FilesystemEventType.REMOVE)}
        while time.monotonic() < deadline and not wanted <= seen:
            seen.update((e.name, e.type) for e in handle.get_new_events())
            time.sleep(0.2)
        assert wanted <= seen, seen
        assert any(name == "watched.txt" and t == FilesystemEventType.RENAME for name, t in seen), seen
    finally:
        handle.stop()
    with pytest.raises(SandboxException):
        handle.get_new_events()


def test_watch_dir_recursive(sbx: Sandbox, workdir: str) -> None:
    sbx.files.make_dir(f"{workdir}/inner")
    handle = sbx.files.watch_dir(workdir, recursive=True)
    try:
        sbx.files.write(f"{workdir}/inner/deep.txt", "x")
        names: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(n.endswith("deep.txt") for n in names):
            names.update(e.name for e in handle.get_new_events())
            time.sleep(0.2)
        assert any(n.endswith("deep.txt") for n in names), names
    finally:
        handle.stop()


def test_watch_missing_dir_raises(sbx: Sandbox, workdir: str) -> None:
    with pytest.raises(SandboxException):
        sbx.files.watch_dir(f"{workdir}/no-such-dir")
