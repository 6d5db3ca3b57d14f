"""The launcher's bind targets are made inside the sandbox root, never through a planted link."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runtime.gvisor.launcher import _mkdirs_inside


def test_mount_points_are_created_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _mkdirs_inside(str(root), "/.corral/python")
    assert (root / ".corral" / "python").is_dir()
    _mkdirs_inside(str(root), "/.corral/python")   # idempotent


@pytest.mark.parametrize("dest", ["/.corral/python", "/.corral/../etc"])
def test_a_planted_symlink_or_dotdot_is_refused(tmp_path: Path, dest: str) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / ".corral").symlink_to(outside)
    with pytest.raises(OSError):
        _mkdirs_inside(str(root), dest)
    assert list(outside.iterdir()) == []
