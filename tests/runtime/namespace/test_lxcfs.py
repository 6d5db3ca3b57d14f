"""The server's lxcfs: started once, adopted by a restarted server, replaced when it died, and
gone (process and mount) when the last sandbox is."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from corral.runtime.namespace.janitor import stop_lxcfs_if_unused
from corral.runtime.namespace.lxcfs import Lxcfs, sandbox_binds

pytestmark = pytest.mark.root


@pytest.fixture
def lxcfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("lxcfs mounts a FUSE filesystem: needs root")
    sup = Lxcfs(tmp_path)
    if sup.binary is None:
        pytest.fail("lxcfs is not installed (it is in the Makefile's APT_PACKAGES)")
    yield sup
    sup.stop()


def _mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def test_started_adopted_replaced_and_stopped(lxcfs: Lxcfs, tmp_path: Path) -> None:
    root = lxcfs.ensure()
    assert root == str(tmp_path / "lxcfs") and lxcfs.serving()
    first = lxcfs._pid()
    assert first is not None
    # What a sandbox gets bound over its /proc, read here through lxcfs itself.
    binds = dict((dst, src) for src, dst in sandbox_binds(root))
    assert {"/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/uptime"} <= set(binds)
    assert Path(binds["/proc/meminfo"]).read_text().startswith("MemTotal:")
    # A restarted server adopts the running one.
    assert Lxcfs(tmp_path).ensure() == root and lxcfs._pid() == first
    # A killed lxcfs leaves a dead mount: the next ensure() detaches it and starts another.
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lxcfs._pid() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not lxcfs.serving()
    assert lxcfs.ensure() == root and lxcfs._pid() not in (None, first)
    lxcfs.stop()
    assert not _mounted(tmp_path / "lxcfs") and lxcfs._pid() is None
    assert not (tmp_path / "lxcfs").exists()


class _Group:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def list_ids(self) -> list[str]:
        return self.ids


def test_janitor_stops_lxcfs_only_when_no_sandbox_is_left(lxcfs: Lxcfs) -> None:
    root = lxcfs.ensure()
    assert root is not None
    stop_lxcfs_if_unused(_Group(["somesandbox"]), root)  # type: ignore[arg-type]
    assert lxcfs.serving()
    stop_lxcfs_if_unused(_Group([]), root)  # type: ignore[arg-type]
    assert not lxcfs.serving() and not _mounted(Path(root))


def test_servers_sharing_a_state_dir_have_their_own_lxcfs(tmp_path: Path) -> None:
    """Two servers (cgroup groups) under one state dir: the janitor of one, seeing its own last
    sandbox gone, stops its lxcfs and leaves the other's serving (CI ran many servers so, and a
    sandbox of one saw the host's 24 GB after another's janitor stopped the shared lxcfs)."""
    from corral.runtime.namespace.tier import NamespaceTier

    if os.geteuid() != 0:
        pytest.skip("lxcfs mounts a FUSE filesystem: needs root")
    a = NamespaceTier(tmp_path, cgroup_group="corral-a")._lxcfs
    b = NamespaceTier(tmp_path, cgroup_group="corral-b")._lxcfs
    try:
        root_a, root_b = a.ensure(), b.ensure()
        assert root_a and root_b and root_a != root_b
        stop_lxcfs_if_unused(_Group([]), root_a)  # type: ignore[arg-type]
        assert not a.serving() and b.serving()
        assert Path(root_b, "proc", "meminfo").read_text().startswith("MemTotal:")
    finally:
        a.stop()
        b.stop()
