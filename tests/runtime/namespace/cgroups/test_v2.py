"""cgroup v2 manager against a fake cgroupfs tree in tmp (this VM runs v1, so v2 cannot be
exercised for real here; the files and values written are what the kernel's v2 ABI expects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runtime.base import Limits
from corral.runtime.namespace.cgroups import CgroupError, detect
from corral.runtime.namespace.cgroups.v2 import CgroupV2


def fake_root(tmp_path: Path, controllers: str = "cpuset cpu io memory hugetlb pids") -> Path:
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return tmp_path


def add_kernel_files(d: Path) -> None:
    """What the kernel would create in a new cgroup directory."""
    for name, text in {"cgroup.controllers": "cpu memory pids\n", "cgroup.subtree_control": "",
                       "memory.max": "max\n", "memory.swap.max": "max\n", "memory.oom.group": "0\n",
                       "pids.max": "max\n", "cpu.max": "max 100000\n", "cgroup.procs": "",
                       "cgroup.freeze": "0\n", "cgroup.events": "populated 0\nfrozen 0\n",
                       "cgroup.kill": "", "cpu.stat": "usage_usec 1234\nuser_usec 1000\n",
                       "memory.current": "4096\n", "memory.stat": "anon 100\nfile 2048\n",
                       "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
                       "pids.events": "max 7\n", "memory.min": "0\n", "cpu.weight": "100\n"}.items():
        (d / name).write_text(text)


def test_detect_prefers_v2(tmp_path: Path) -> None:
    assert isinstance(detect(fake_root(tmp_path)), CgroupV2)


def test_detect_refuses_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(CgroupError):
        detect(tmp_path)


def test_create_writes_limits_and_enables_controllers(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_root(tmp_path)
    cg = CgroupV2(root, "corral")
    (root / "corral").mkdir()
    add_kernel_files(root / "corral")
    orig_mkdir = Path.mkdir

    def mkdir_with_kernel_files(self: Path, *a: object, **kw: object) -> None:
        orig_mkdir(self, *a, **kw)  # type: ignore[arg-type]
        if self.is_relative_to(root / "corral") and self != root / "corral":
            add_kernel_files(self)

    monkeypatch.setattr(Path, "mkdir", mkdir_with_kernel_files)
    cg.create("sbx1", Limits(cpu_count=2, memory_mb=1024, pids_max=100))
    d = root / "corral" / "sbx1"
    assert (d / "memory.max").read_text() == str(1024 * 1024 * 1024)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "100"
    assert (d / "cpu.max").read_text() == "200000 100000"
    assert (root / "corral" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    # No process in a cgroup with controllers for its children: the init goes to a `daemon` leaf,
    # user processes to a `user` leaf whose limits sit below the sandbox's (envd's headroom).
    assert (d / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (d / "daemon" / "memory.min").read_text() == str(64 * 1024 * 1024)
    assert (d / "user" / "memory.max").read_text() == str((1024 - 64) * 1024 * 1024)
    assert (d / "user" / "memory.swap.max").read_text() == "0"
    assert (d / "user" / "pids.max").read_text() == "84"
    assert (d / "user" / "cpu.weight").read_text() == "50"
    assert cg.user_procs_files("sbx1") == [d / "user" / "cgroup.procs"]
    with pytest.raises(FileExistsError):
        cg.create("sbx1", Limits())
    assert cg.list_ids() == ["sbx1"]
    assert cg.exists("sbx1")
    st = cg.stats("sbx1")
    assert (st.cpu_usage_usec, st.memory_bytes, st.memory_cache_bytes) == (1234, 4096, 2048)
    assert cg.events("sbx1") == {"oom_kill": 1, "pids_max": 7}
    cg.kill("sbx1")
    assert (d / "cgroup.kill").read_text() == "1"
    cg.join("sbx1", 4242)
    assert (d / "daemon" / "cgroup.procs").read_text() == "4242"
    (d / "user" / "cgroup.procs").write_text("4343\n")
    assert cg.pids("sbx1") == [4242, 4343]


def test_missing_controllers_are_a_clear_error(tmp_path: Path) -> None:
    root = fake_root(tmp_path, controllers="hugetlb")
    with pytest.raises(CgroupError, match="lacks controllers"):
        CgroupV2(root, "corral").create("x", Limits())


def test_freeze_waits_for_events(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    d = root / "corral" / "sbx"
    d.mkdir(parents=True)
    add_kernel_files(d)
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    CgroupV2(root, "corral").set_frozen("sbx", True)
    assert (d / "cgroup.freeze").read_text() == "1"
