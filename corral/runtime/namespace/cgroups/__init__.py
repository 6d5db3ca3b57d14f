"""Per-sandbox cgroups: one small interface, one module per cgroup version.

Paths are derived from the sandbox id only (``corral/<id>``), so a restarted server finds every
sandbox's cgroup again without any saved state.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.runtime.namespace.cgroups.base import CgroupError, CgroupManager, CgroupStats

__all__ = ["CgroupError", "CgroupManager", "CgroupStats", "detect"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def detect(root: Path = CGROUP_ROOT, group: str = "corral") -> CgroupManager:
    """v2 when /sys/fs/cgroup is itself a cgroup2 mount with our controllers, else v1."""
    from corral.runtime.namespace.cgroups.v1 import CgroupV1
    from corral.runtime.namespace.cgroups.v2 import CgroupV2

    if (root / "cgroup.controllers").exists():
        return CgroupV2(root, group)
    if (root / "memory").is_dir() and (root / "pids").is_dir():
        return CgroupV1(root, group)
    raise CgroupError(f"no usable cgroup hierarchy under {root} (need v2, or v1 memory+pids)")


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)
