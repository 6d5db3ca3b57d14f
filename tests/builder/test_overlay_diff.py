"""Applying an overlay upper dir: whiteouts, opaque dirs, owners shifted back, exclusions."""

import os
from pathlib import Path

import pytest

from corral.builder import overlay_diff

pytestmark = pytest.mark.root
BASE = 5_000_000


def test_apply_upper(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mknod, chown, trusted xattrs)")
    parent = tmp_path / "parent"
    (parent / "keep").mkdir(parents=True)
    (parent / "gone.txt").write_text("x")
    (parent / "opaque").mkdir()
    (parent / "opaque" / "old").write_text("old")
    (parent / "shared").write_text("parent")
    tree = tmp_path / "tree"
    os.system(f"cp -al {parent} {tree}")
    upper = tmp_path / "upper"
    (upper / "opaque").mkdir(parents=True)
    os.setxattr(upper / "opaque", overlay_diff.OPAQUE_XATTR, b"y")
    (upper / "opaque" / "new").write_text("new")
    os.mknod(upper / "gone.txt", 0o600 | 0o020000, os.makedev(0, 0))
    (upper / "shared").write_text("changed")
    os.chown(upper / "shared", BASE + 1000, BASE + 1000)
    (upper / "etc").mkdir()
    (upper / "etc" / "resolv.conf").write_text("nameserver 1.2.3.4")
    (upper / ".corral-build").mkdir()
    (upper / "weird").write_text("x")
    os.chown(upper / "weird", 77, 77)                       # outside the sandbox's range
    stats = overlay_diff.apply(str(upper), str(tree), BASE)
    assert not (tree / "gone.txt").exists() and (parent / "gone.txt").exists()
    assert sorted(os.listdir(tree / "opaque")) == ["new"]
    assert (tree / "shared").read_text() == "changed" and (parent / "shared").read_text() == "parent"
    assert (os.stat(tree / "shared").st_uid, os.stat(tree / "shared").st_gid) == (1000, 1000)
    assert os.stat(tree / "weird").st_uid == overlay_diff.NOBODY
    assert not (tree / "etc" / "resolv.conf").exists() and not (tree / ".corral-build").exists()
    assert stats.deleted == 1
