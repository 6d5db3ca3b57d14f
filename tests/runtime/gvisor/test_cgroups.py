"""Finding and removing runsc's cgroups from the filesystem alone, on fake v1 and v2 trees
(runsc's own cgroup writes are exercised for real, on v1, by test_tier.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runtime.gvisor.cgroups import SandboxCgroups


def _v1(root: Path, sid: str) -> None:
    for ctrl in ("memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer"):
        d = root / ctrl / "grp" / sid
        d.mkdir(parents=True)
    mem = root / "memory" / "grp" / sid
    (mem / "memory.usage_in_bytes").write_text("4096\n")
    (mem / "memory.limit_in_bytes").write_text("536870912\n")
    (mem / "memory.stat").write_text("cache 1024\nrss 3072\ntotal_cache 2048\n")
    (root / "cpuacct" / "grp" / sid / "cpuacct.usage").write_text("5000000\n")


def _v2(root: Path, sid: str) -> None:
    d = root / "grp" / sid
    d.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (d / "cgroup.controllers").write_text("cpu memory pids\n")
    (d / "memory.current").write_text("8192\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 100\nfile 4096\n")
    (d / "cpu.stat").write_text("usage_usec 777\nuser_usec 700\n")


def test_v1_every_controller_is_found(tmp_path: Path) -> None:
    _v1(tmp_path, "sbx1")
    cg = SandboxCgroups("grp", tmp_path)
    assert cg.list_ids() == ["sbx1"]
    assert len(cg.dirs("sbx1")) == 7
    assert cg.memory_bytes("sbx1") == (4096, 2048, 536870912)
    assert cg.cpu_usage_usec("sbx1") == 5000


def test_v2_unified_tree(tmp_path: Path) -> None:
    _v2(tmp_path, "sbx2")
    cg = SandboxCgroups("grp", tmp_path)
    assert cg.list_ids() == ["sbx2"]
    assert cg.dirs("sbx2") == [tmp_path / "grp" / "sbx2"]
    assert cg.memory_bytes("sbx2") == (8192, 4096, 0)
    assert cg.cpu_usage_usec("sbx2") == 777


def test_other_groups_are_not_ours(tmp_path: Path) -> None:
    _v1(tmp_path, "sbx1")
    (tmp_path / "memory" / "other" / "x").mkdir(parents=True)
    assert SandboxCgroups("other", tmp_path).list_ids() == ["x"]
    assert SandboxCgroups("grp", tmp_path).list_ids() == ["sbx1"]


def test_destroy_removes_empty_dirs_and_reports_busy_ones(tmp_path: Path) -> None:
    cg = SandboxCgroups("grp", tmp_path)
    for ctrl in ("memory", "pids"):
        (tmp_path / ctrl / "grp" / "s").mkdir(parents=True)
    cg.destroy("s")
    assert not cg.exists("s")
    cg.destroy("s")  # idempotent
    busy = tmp_path / "pids" / "grp" / "b"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text("")   # a regular file: rmdir fails with ENOTEMPTY
    with pytest.raises(Exception, match="still busy"):
        cg.destroy("b", timeout=0.05)
